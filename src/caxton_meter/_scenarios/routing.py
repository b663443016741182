"""Scenarios driven by a closed loop through the router: message
throughput, task processing, crash recovery and agent response time."""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._core import Histogram, Router, closed_loop
from .._model import Direction, Grade, Kind, Metric, MetricSpec, ScenarioResult, Threshold
from ._base import (
    THROUGHPUT,
    THROUGHPUT_UNGRADED,
    AgentsConfig,
    GuardedRun,
    closed_loop_rates,
    count,
    counted,
    field,
    latency_metrics,
    latency_specs,
    router_histograms,
    scenario,
    spawn_echoes,
)


def _closed(config: Any, router: Router, agents: list[int], requests: int,
            fill: bytes) -> tuple[GuardedRun, Any, float, int, int]:
    """A guarded closed loop of ``requests`` over ``agents``, ``window`` in
    flight: (run, loop result or None, completed/s, completed, failed)."""
    run = GuardedRun(config)
    res = run.call(lambda: run.loop(closed_loop, router, agents, requests,
                                    window=config.window, content=fill * config.message_size))
    return (run, res) + closed_loop_rates(res, router, run, requests)


# -- message throughput ------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MessageThroughputConfig(AgentsConfig):
    """The guide's message throughput: route ``messages`` (10,000) through
    ``agents`` echo agents ("native" or "python"), ``window`` in flight at
    once (a closed loop), each ``message_size`` bytes."""
    messages: int = field(10_000, count)
    window: int = field(1000, count)

    QUICK: ClassVar[Mapping[str, Any]] = {"messages": 1000, "window": 100}


_LATENCY = latency_specs("round_trip")
_MESSAGES_PER_SECOND = MetricSpec("messages_per_second", "msg/s", Kind.THROUGHPUT)
_MESSAGE_COUNTS = (counted("completed", "messages"), counted("failed", "messages"))


@scenario("message_throughput", MessageThroughputConfig,
          (THROUGHPUT, _MESSAGES_PER_SECOND) + _MESSAGE_COUNTS + _LATENCY)
def run_message_throughput(config: MessageThroughputConfig,
                           thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``throughput`` (completed round trips per second, graded),
    ``messages_per_second`` (requests and replies), ``latency_p50``/``_p99``
    of the router's round trip (graded)."""
    router = Router(keep_replies=False)
    echoes = spawn_echoes(router, config.agent_kind, config.agents)
    run, res, per_second, completed, failed = _closed(config, router, echoes, config.messages,
                                                      b"x")
    metrics = [THROUGHPUT.graded(per_second, thresholds),
               _MESSAGES_PER_SECOND(res.messages_per_second if res is not None
                                    else 2 * per_second),
               _MESSAGE_COUNTS[0](completed), _MESSAGE_COUNTS[1](failed)]
    metrics += latency_metrics(router.round_trip, _LATENCY, thresholds, run.notes)
    return run.result("message_throughput", metrics, router_histograms(router), router=router)


# -- task processing ---------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TaskProcessingConfig(AgentsConfig):
    """The guide's task processing: a pool of ``agents`` (10) compute agents
    ("native" or "wasm") processing ``tasks`` (1000) with ``window`` (1000)
    in flight at once; each task is ``units`` of the core's reference
    computation."""
    tasks: int = field(1000, count)
    window: int = field(1000, count)
    units: int = field(1000, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = ("native", "wasm")
    QUICK: ClassVar[Mapping[str, Any]] = {"tasks": 200, "window": 200, "units": 100}


_TASKS_PER_SECOND = MetricSpec("throughput", "tasks/s", Kind.THROUGHPUT, graded_by="throughput")
_TASK_COUNTS = (counted("completed", "tasks"), counted("failed", "tasks"))


@scenario("task_processing", TaskProcessingConfig,
          (_TASKS_PER_SECOND,) + _TASK_COUNTS + _LATENCY)
def run_task_processing(config: TaskProcessingConfig,
                        thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``throughput`` (tasks completed per second, graded by the
    throughput row: a task is one request and its reply),
    ``latency_p50``/``_p99`` of a task's round trip (graded)."""
    router = Router(keep_replies=False)
    if config.agent_kind == "wasm":
        from ._base import ids, wasm_module
        pool = ids(router.spawn_wasm(wasm_module("compute"), count=config.agents,
                                     units=config.units))
    else:
        pool = list(router.spawn_native("compute", count=config.agents, units=config.units))
    run, _, per_second, completed, failed = _closed(config, router, pool, config.tasks, b"t")
    metrics = [_TASKS_PER_SECOND.graded(per_second, thresholds),
               _TASK_COUNTS[0](completed), _TASK_COUNTS[1](failed)]
    metrics += latency_metrics(router.round_trip, _LATENCY, thresholds, run.notes)
    return run.result("task_processing", metrics, router_histograms(router), router=router)


# -- crash recovery ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CrashRecoveryConfig(AgentsConfig):
    """The guide's agent crash recovery time: ``messages`` through
    ``agents`` fail-every-n agents (each faults on every ``fail_every``-th
    message it handles, is restarted, and the message is dead-lettered),
    ``window`` in flight at once."""
    messages: int = field(100_000, count)
    fail_every: int = field(100, count)
    window: int = field(100, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = ("native",)
    QUICK: ClassVar[Mapping[str, Any]] = {"messages": 5000, "fail_every": 50}


_RECOVERY = (
    MetricSpec("recovery_time_max", "ns", Kind.DURATION, histogram="recovery_time",
               percentile=100, graded_by="recovery_time"),
    MetricSpec("recovery_time_p50", "ns", Kind.DURATION, histogram="recovery_time",
               percentile=50),
    MetricSpec("recovery_time_p99", "ns", Kind.DURATION, histogram="recovery_time",
               percentile=99))
_RECOVERY_COUNTS = (counted("recoveries", "recoveries"), counted("faults", "faults"),
                    counted("dead_letters", "messages"), counted("completed", "messages"),
                    counted("failed", "messages"))


@scenario("crash_recovery", CrashRecoveryConfig,
          _RECOVERY + _RECOVERY_COUNTS + (THROUGHPUT_UNGRADED,))
def run_crash_recovery(config: CrashRecoveryConfig,
                       thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Agent crash recovery time under a closed loop.  Metrics:
    ``recovery_time_max`` graded as recovery_time (the guide bounds every
    recovery, so the worst one is graded, not a percentile),
    ``recovery_time_p50``/``_p99``, ``recoveries``, ``faults``,
    ``dead_letters`` (should equal the faults), ``completed``, ``failed``,
    and ``throughput`` (ungraded: faults are the point here)."""
    router = Router(keep_replies=False)
    agents = list(router.spawn_native("fail-every-n", count=config.agents,
                                      every=config.fail_every))
    run, _, per_second, completed, failed = _closed(config, router, agents, config.messages,
                                                    b"c")
    rec = router.recovery_time
    dead = router.counts.dead_lettered
    faults = sum(router.agent(a).faults for a in agents)
    if rec.total_count == 0:
        run.notes.append("no agent crashed (messages per agent < fail_every): "
                         "recovery time not measured")
        metrics = [_RECOVERY[0](math.nan)]
    else:
        p50, p99 = rec.percentiles([50, 99])
        metrics = [_RECOVERY[0].graded(rec.max, thresholds), _RECOVERY[1](p50),
                   _RECOVERY[2](p99)]
    metrics += [spec(v) for spec, v in zip(_RECOVERY_COUNTS,
                                           (rec.total_count, faults, dead, completed, failed))]
    metrics.append(THROUGHPUT_UNGRADED(per_second))
    if dead != faults:
        run.notes.append(f"dead letters ({dead}) differ from agent faults ({faults})")
    return run.result("crash_recovery", metrics,
                      {"recovery_time": rec.encode(), "round_trip": router.round_trip.encode()},
                      router=router)


# -- agent response time -----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class AgentResponseTimeConfig(AgentsConfig):
    """The guide's agent response time: a closed loop of ``messages``
    (10,000) over ``agents`` (10) echo agents of ``agent_kind`` ("native",
    "python" or "wasm"), ``window`` in flight, timed per agent by the
    router (``Router(per_agent_histograms=True)``)."""
    messages: int = field(10_000, count)
    window: int = field(100, count)

    AGENT_KINDS: ClassVar[tuple[str, ...]] = ("native", "python", "wasm")
    QUICK: ClassVar[Mapping[str, Any]] = {"messages": 1000}


def _handling(name: str, graded_by: str | None = None) -> MetricSpec:
    return MetricSpec(name, "ns", Kind.LATENCY, graded_by=graded_by)


_RESPONSE = (_handling("response_p99_worst", "latency_p99"), _handling("response_p99_median"),
             _handling("response_p50_median"), _handling("queue_p99_worst"),
             _handling("queue_p99_median"),
             MetricSpec("worst_agent", "agent id", Kind.COUNT, Direction.NONE))
_RESPONSE_COUNTS = (counted("agents_measured", "agents"), counted("completed", "messages"),
                    counted("failed", "messages"))


@scenario("agent_response_time", AgentResponseTimeConfig,
          _RESPONSE + _RESPONSE_COUNTS + (THROUGHPUT_UNGRADED,))
def run_agent_response_time(config: AgentResponseTimeConfig,
                            thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """An agent's response time is its handling time (from the start to the
    end of its handler, as the router times it); the time a message waited
    in the agent's mailbox is its queue time, reported beside it.

    Over the agents that handled a message: ``response_p99_worst`` (the
    largest per-agent handling p99, graded as latency_p99),
    ``response_p99_median``, ``response_p50_median``, ``queue_p99_worst``,
    ``queue_p99_median``, ``worst_agent``; ``agents_measured``,
    ``completed``, ``failed``, ``throughput`` (ungraded).  Histograms:
    ``handling_time``, ``queue_time`` (all agents) and
    ``handling_time_worst`` (the worst agent's)."""
    router = Router(keep_replies=False, per_agent_histograms=True)
    agents = spawn_echoes(router, config.agent_kind, config.agents)
    run, _, per_second, completed, failed = _closed(config, router, agents, config.messages,
                                                    b"x")
    per_agent: list[tuple[int, Histogram, Histogram]] = []
    for aid in agents:
        queue, handling = router.agent_histograms(aid)
        if handling.total_count:
            per_agent.append((aid, queue, handling))
    metrics: list[Metric] = []
    histograms = router_histograms(router, ("handling_time", "queue_time"))
    if not per_agent:
        run.notes.append("no agent handled a message: response time is FAILED")
        metrics.append(_RESPONSE[0](math.nan, Grade.FAILED))
    else:
        p99s = [float(h.value_at_percentile(99)) for _, _, h in per_agent]
        worst = max(range(len(per_agent)), key=lambda i: p99s[i])
        histograms["handling_time_worst"] = per_agent[worst][2].encode()
        queue_p99s = [float(q.value_at_percentile(99)) for _, q, _ in per_agent]
        metrics += [
            _RESPONSE[0].graded(p99s[worst], thresholds),
            _RESPONSE[1](statistics.median(p99s)),
            _RESPONSE[2](statistics.median([float(h.value_at_percentile(50))
                                            for _, _, h in per_agent])),
            _RESPONSE[3](max(queue_p99s)), _RESPONSE[4](statistics.median(queue_p99s)),
            _RESPONSE[5](per_agent[worst][0])]
        if len(per_agent) < len(agents):
            run.notes.append(f"{len(agents) - len(per_agent)} of {len(agents)} agents handled "
                             "no message (fewer messages than agents?)")
    metrics += [spec(v) for spec, v in zip(_RESPONSE_COUNTS, (len(per_agent), completed, failed))]
    metrics.append(THROUGHPUT_UNGRADED(per_second))
    return run.result("agent_response_time", metrics, histograms, router=router)
