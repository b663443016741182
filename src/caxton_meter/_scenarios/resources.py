"""Scenarios about what agents cost: horizontal scaling (spawn time,
memory and throughput as the agent count grows), the memory profile and
the CPU profile."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .._core import Router, closed_loop, open_loop
from .._model import Kind, Metric, MetricSpec, ScenarioResult, Threshold
from .._sampling import ResourceProfile, ResourceSampler
from ._base import (
    THROUGHPUT,
    THROUGHPUT_UNGRADED,
    AgentsConfig,
    GuardedRun,
    ScenarioConfig,
    ascending,
    check_conservation,
    count,
    counted,
    field,
    keep_finished_points,
    memory_now,
    rate,
    scenario,
    seconds,
    size,
    spawn_echoes,
    wasm_module,
)

_C = TypeVar("_C")
_KINDS = ("native", "python", "wasm")


# -- horizontal scaling ------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class HorizontalScalingConfig(ScenarioConfig):
    """The guide's horizontal scaling: for each count in ``agent_counts``
    (1, 10, 100, 1000, 10,000; ascending, distinct) spawn that many echo
    agents ("native", "python" or "wasm") in a fresh router and route
    ``messages`` (10,000) through them, ``window`` in flight at once."""
    agent_counts: tuple[int, ...] = field((1, 10, 100, 1000, 10_000), ascending(count))
    agent_kind: str = "native"
    message_size: int = field(64, size)
    messages: int = field(10_000, count)
    window: int = field(1000, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = _KINDS
    QUICK: ClassVar[Mapping[str, Any]] = {"agent_counts": (1, 10, 100), "messages": 500,
                                          "window": 100}


_SCALING = (
    MetricSpec("spawn_time", "ns", Kind.DURATION, histogram="spawn_time", percentile=100,
               graded_by="spawn_time"),
    MetricSpec("spawn_time_p99", "ns", Kind.DURATION, histogram="spawn_time", percentile=99),
    MetricSpec("memory_per_agent", "bytes", Kind.MEMORY, graded_by="memory_per_agent"),
    THROUGHPUT, counted("completed", "messages"), counted("failed", "messages"))


@scenario("horizontal_scaling", HorizontalScalingConfig, _SCALING)
def run_horizontal_scaling(config: HorizontalScalingConfig,
                           thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """For each point N (a fresh router each):

    * ``spawn_time@N``: the slowest spawn (the router's spawn-time
      histogram's max), graded as spawn_time: the guide bounds every spawn,
      so the worst is graded, not a percentile; ``spawn_time_p99@N``
      beside it;
    * ``memory_per_agent@N``: (memory after spawning - before) / N, by
      :func:`memory_per_agent` (USS when readable, else RSS), graded.  At
      small N this is dominated by allocator granularity: read the large
      points.  May be negative (reported as is).  For "wasm" the module is
      compiled once before the first reading;
    * ``throughput@N``: completed round trips per second of a closed loop
      of ``messages`` over the N agents (round robin), graded;
    * ``completed@N``, ``failed@N``.

    Histograms ``spawn_time@N`` and ``round_trip@N``.  A stop keeps the
    points finished before it (partial)."""
    from .._sampling import memory_per_agent, memory_resolution
    content = b"x" * config.message_size
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    run = GuardedRun(config)
    done: list[int] = []
    # compiled once, before the first reading: the one-time compile is not per agent
    module = wasm_module("echo") if config.agent_kind == "wasm" else None
    spawn, spawn_p99, memory, throughput, completed, failed = _SCALING

    def points() -> None:
        for n in config.agent_counts:
            run.remaining()               # raises once the deadline has passed
            router = Router(keep_replies=False)
            before = memory_now(config.sample_interval)
            agents = spawn_echoes(router, config.agent_kind, n, module)
            after = memory_now(config.sample_interval)
            spawned = router.spawn_time
            res = run.loop(closed_loop, router, agents, config.messages,
                           window=config.window, content=content)
            metrics.extend([
                spawn.at(n).graded(spawned.max, thresholds),
                spawn_p99.at(n)(spawned.value_at_percentile(99)),
                memory.at(n).graded(memory_per_agent(before, after, n), thresholds,
                                    resolution=memory_resolution(n)),
                throughput.at(n).graded(res.completed_per_second, thresholds),
                completed.at(n)(res.completed), failed.at(n)(res.failed)])
            histograms[f"spawn_time@{n}"] = spawned.encode()
            histograms[f"round_trip@{n}"] = router.round_trip.encode()
            check_conservation(router, run.notes)
            run.remaining()               # a point the deadline cut short is left out
            done.append(n)
            del agents, router

    run.call(points)
    return run.result("horizontal_scaling", metrics, keep_finished_points(run, done, metrics, histograms))


# -- memory profile ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MemoryProfileConfig(AgentsConfig):
    """The guide's memory profile: spawn ``agents`` (100) echo agents of
    ``agent_kind``, route ``messages`` (1000) through them (``window`` in
    flight), checkpoint every agent."""
    agents: int = field(100, count)
    messages: int = field(1000, count)
    window: int = field(100, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = _KINDS
    QUICK: ClassVar[Mapping[str, Any]] = {"agents": 10}


def _memory(name: str, graded_by: str | None = None) -> MetricSpec:
    return MetricSpec(name, "bytes", Kind.MEMORY, graded_by=graded_by)


_MEMORY = (_memory("memory_per_agent", "memory_per_agent"), _memory("creation_bytes"),
           _memory("processing_rss_growth"), counted("completed", "messages"),
           counted("failed", "messages"), _memory("checkpoint_bytes"),
           MetricSpec("checkpoint_time_mean", "ns", Kind.LATENCY),
           MetricSpec("checkpoint_time_max", "ns", Kind.LATENCY),
           _memory("checkpoint_memory"), _memory("total_bytes"))


def _rss_now() -> int:
    from .._sampling import _psutil
    return int(_psutil().Process().memory_info().rss)


@scenario("memory_profile", MemoryProfileConfig, _MEMORY)
def run_memory_profile(config: MemoryProfileConfig,
                       thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Four phases on one router (memory read by :func:`memory_per_agent`'s
    rule: USS when readable, else RSS, after a garbage collection):

    * creation: ``memory_per_agent`` = (memory after spawning - before) / N,
      graded; ``creation_bytes`` the whole growth; for "wasm" the module is
      compiled before the first reading;
    * processing: a closed loop of ``messages``; ``processing_rss_growth``
      = RSS after - RSS before the loop (may be negative), ``completed``,
      ``failed``;
    * checkpoint: every agent checkpointed (the checkpoints kept);
      ``checkpoint_bytes`` (sum of the states' sizes),
      ``checkpoint_time_mean``/``_max`` (ns per checkpoint, the router's
      timing), ``checkpoint_memory`` (memory growth holding them);
    * ``total_bytes``: memory at the end - memory before spawning.

    Negative differences are reported as is (the allocator may return
    memory).  Histogram: ``round_trip``.  A stop keeps the phases finished
    before it."""
    from .._sampling import memory_per_agent, memory_resolution
    n = config.agents
    page = memory_resolution()
    run = GuardedRun(config)
    metrics: list[Metric] = []
    router = Router(keep_replies=False)
    if config.agent_kind == "wasm":
        wasm_module("echo")               # engine set-up before the first reading
    (per_agent, creation, growth, completed, failed, cp_bytes, cp_mean, cp_max, cp_memory,
     total) = _MEMORY

    def phases() -> None:
        start = memory_now(config.sample_interval)
        agents = spawn_echoes(router, config.agent_kind, n)
        spawned = memory_now(config.sample_interval)
        metrics.extend([per_agent.graded(memory_per_agent(start, spawned, n), thresholds,
                                         resolution=memory_resolution(n)),
                        creation(memory_per_agent(start, spawned, 1), resolution=page)])
        run.remaining()
        rss0 = _rss_now()
        res = run.loop(closed_loop, router, agents, config.messages, window=config.window,
                       content=b"x" * config.message_size)
        metrics.extend([growth(_rss_now() - rss0, resolution=page), completed(res.completed),
                        failed(res.failed)])
        run.remaining()
        before_cp = memory_now(config.sample_interval)
        checkpoints = [router.checkpoint(a) for a in agents]
        after_cp = memory_now(config.sample_interval)
        times = [c.elapsed_ns for c in checkpoints]
        metrics.extend([cp_bytes(sum(c.size for c in checkpoints)),
                        cp_mean(sum(times) / len(times)), cp_max(max(times)),
                        cp_memory(memory_per_agent(before_cp, after_cp, 1), resolution=page),
                        total(memory_per_agent(start, after_cp, 1), resolution=page)])
        del checkpoints

    run.call(phases)
    if run.partial:
        run.notes.append("the phases finished before the stop are reported")
    return run.result("memory_profile", metrics, {"round_trip": router.round_trip.encode()},
                      router=router)


# -- CPU profile -------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CpuProfileConfig(AgentsConfig):
    """The guide's CPU profile: ``agents`` (100) echo agents of
    ``agent_kind``; CPU % while spawning them, over ``idle`` seconds (1 s)
    with nothing to do, and while every agent handles ``rate_per_agent``
    (100) messages per second for ``duration`` seconds (5 s; an open loop,
    so that the load is the same whatever the agents cost).  Each phase has
    its own sampler at ``sample_interval``; ``sample_resources`` keeps the
    processing phase's profile as the result's resources."""
    agents: int = field(100, count)
    idle: float = field(1.0, seconds, timed=True)
    rate_per_agent: float = field(100.0, rate)
    duration: float = field(5.0, seconds, timed=True)
    max_in_flight: int = field(1_000_000, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = _KINDS
    QUICK: ClassVar[Mapping[str, Any]] = {"agents": 10, "idle": 0.5, "duration": 1.0,
                                          "sample_interval": 0.05}


def _cpu(name: str, graded_by: str | None = None) -> MetricSpec:
    return MetricSpec(name, "percent", Kind.CPU, graded_by=graded_by)


_CPU = (_cpu("cpu_spawning"), _cpu("cpu_idle"), _cpu("cpu_processing"),
        _cpu("cpu_per_agent", "cpu_per_agent"),
        MetricSpec("spawn_seconds", "s", Kind.DURATION), THROUGHPUT_UNGRADED)


@scenario("cpu_profile", CpuProfileConfig, _CPU)
def run_cpu_profile(config: CpuProfileConfig,
                    thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics (CPU % of the process, 100 % = one core, the mean over each
    phase from its cumulative CPU times, each with its resolution: one tick
    of the CPU-time clock over the phase): ``cpu_spawning``, ``cpu_idle``,
    ``cpu_processing``; ``cpu_per_agent`` = (cpu_processing - cpu_idle) / N,
    what the load adds shared by the agents, graded; ``spawn_seconds``,
    ``throughput`` (round trips completed per second of the processing
    phase).  The figures include the load generator and the router (one
    process).  A phase too short for a CPU reading is left out with a note.
    Histogram: ``round_trip``."""
    from .._sampling import cpu_resolution
    n = config.agents
    router = Router(keep_replies=False)
    if config.agent_kind == "wasm":
        wasm_module("echo")
    metrics: list[Metric] = []
    run = GuardedRun(config, sample=False)
    processing: ResourceProfile | None = None

    def phase(name: str, work: Callable[[], _C]) -> tuple[_C | None, ResourceProfile]:
        run.remaining()
        sampler = ResourceSampler(config.sample_interval)
        sampler.start()
        try:
            out = work()
        finally:
            prof = sampler.stop()
        if prof.mean_cpu_percent is None:
            run.notes.append(f"{name}: no CPU reading (the phase was too short)")
        else:
            metrics.append(_cpu(f"cpu_{name}")(prof.mean_cpu_percent,
                                               resolution=cpu_resolution(prof)))
        return out, prof

    def idle() -> None:
        left = run.remaining()
        time.sleep(config.idle if left is None else min(config.idle, left))

    def phases() -> None:
        nonlocal processing
        started = time.perf_counter_ns()
        agents, _ = phase("spawning", lambda: spawn_echoes(router, config.agent_kind, n))
        metrics.append(_CPU[4]((time.perf_counter_ns() - started) / 1e9))
        _, quiet = phase("idle", idle)
        res, processing = phase("processing", lambda: run.loop(
            open_loop, router, agents or [], [(config.rate_per_agent * n, config.duration)],
            max_in_flight=config.max_in_flight, content=b"x" * config.message_size))
        if processing.mean_cpu_percent is not None and quiet.mean_cpu_percent is not None:
            added = processing.mean_cpu_percent - quiet.mean_cpu_percent
            res_busy, res_quiet = cpu_resolution(processing, n), cpu_resolution(quiet, n)
            metrics.append(_CPU[3].graded(
                added / n, thresholds,
                resolution=None if res_busy is None or res_quiet is None
                else res_busy + res_quiet))
        if res is not None:
            metrics.append(THROUGHPUT_UNGRADED(res.completed * 1e9 / res.duration_ns
                                               if res.duration_ns else 0.0))
            behind = res.schedule_note()
            if behind is not None:
                run.notes.append(behind)

    run.call(phases)
    if run.partial:
        run.notes.append("the phases finished before the stop are reported")
    return run.result("cpu_profile", metrics, {"round_trip": router.round_trip.encode()},
                      router=router,
                      resources=processing if config.sample_resources else None)

