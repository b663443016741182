"""WebAssembly scenarios: the execution overhead of a WASM agent against
the native one on the same work, and the memory limits of WASM agents.
No row of the targets table applies to them: nothing is graded."""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._checks import ArgumentError, number
from .._core import Router, closed_loop
from .._model import Direction, Kind, Metric, MetricSpec, ScenarioResult, Threshold
from ._base import (
    GuardedRun,
    ScenarioConfig,
    ascending,
    count,
    counted,
    field,
    ids,
    keep_finished_points,
    scenario,
    size,
    wasm_module,
)

_MB = 1_000_000           # bytes (the guide's MB, decimal)
_PAGE = 65536


# -- WASM execution overhead -------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class WasmOverheadConfig(ScenarioConfig):
    """WASM execution overhead: the bundled WASM compute agent against the
    native compute agent on the same work (same messages, same ``units``),
    ``agents`` of each kind, ``messages`` per measurement, ``window`` in
    flight.  Measured at units=0 (the call alone: echo-like) and at
    ``heavy_units`` (compute-bound).  The guide gives no figures for this
    scenario: these defaults are chosen (10,000 messages, 100,000 units)."""
    messages: int = field(10_000, count)
    heavy_units: int = field(100_000, count)
    agents: int = field(1, count)
    window: int = field(100, count)
    message_size: int = field(64, size)
    check_messages: int = field(8, count)

    QUICK: ClassVar[Mapping[str, Any]] = {"messages": 1000, "heavy_units": 5000}


def _ns(name: str) -> MetricSpec:
    return MetricSpec(name, "ns", Kind.LATENCY)


_OVERHEAD = (_ns("native_ns"), _ns("wasm_ns"), _ns("handling_p50_native"),
             _ns("handling_p50_wasm"),
             MetricSpec("call_overhead_ns", "ns", Kind.LATENCY),
             MetricSpec("compute_ratio", "ratio", Kind.RATIO, Direction.LOWER),
             counted("mismatches", "messages"))


def _spawn_compute(router: Router, kind: str, n: int, units: int, module: Any) -> list[int]:
    if kind == "wasm":
        return ids(router.spawn_wasm(module, count=n, units=units))
    return ids(router.spawn_native("compute", count=n, units=units))


@scenario("wasm_overhead", WasmOverheadConfig, _OVERHEAD)
def run_wasm_overhead(config: WasmOverheadConfig,
                      thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """For units in (0, ``heavy_units``) and each kind, a fresh router:
    first ``check_messages`` requests (distinct 8-byte prefixes, on a
    router of their own) whose replies must equal :func:`compute_reference`
    (a mismatch is noted and ``mismatches`` counts it: the comparison is
    void then), then a closed loop of ``messages``.  Time per message = the
    loop's elapsed time / completed.  Metrics: ``native_ns@U``,
    ``wasm_ns@U`` (per message), ``call_overhead_ns`` = wasm_ns@0 -
    native_ns@0 (the per-call cost of entering WASM, routing being equal;
    may be negative within noise), ``compute_ratio`` = wasm_ns@heavy /
    native_ns@heavy (the compute-bound slowdown),
    ``handling_p50_native@U``/``_wasm@U`` (the router's per-message
    handling time, without the loop's overhead), and ``mismatches``.
    Histograms ``handling_time_<kind>@U``."""
    from .._core import compute_reference
    module = wasm_module("compute")
    run = GuardedRun(config)
    per_msg: dict[tuple[str, int], float] = {}
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    mismatches = 0
    per_message = {"native": _OVERHEAD[0], "wasm": _OVERHEAD[1]}
    handling_p50 = {"native": _OVERHEAD[2], "wasm": _OVERHEAD[3]}

    def measure() -> None:
        nonlocal mismatches
        for units in (0, config.heavy_units):
            for kind in ("native", "wasm"):
                run.remaining()
                checker = Router(keep_replies=True)
                agents = _spawn_compute(checker, kind, config.agents, units, module)
                for i in range(config.check_messages):
                    content = i.to_bytes(8, "little") + b"w" * max(config.message_size - 8, 0)
                    reply = checker.request(agents[i % len(agents)], content)
                    if reply is None or bytes(reply.content) != compute_reference(content, units):
                        mismatches += 1
                        run.notes.append(f"{kind} compute agent at units={units}: reply to "
                                         f"check message {i} differs from compute_reference")
                del checker
                router = Router(keep_replies=False)
                agents = _spawn_compute(router, kind, config.agents, units, module)
                res = run.loop(closed_loop, router, agents, config.messages,
                               window=config.window, content=b"w" * config.message_size)
                ns = res.elapsed_ns / res.completed if res.completed else math.nan
                per_msg[kind, units] = ns
                if res.failed:
                    run.notes.append(f"{kind} at units={units}: {res.failed} requests failed")
                handling = router.handling_time
                metrics.append(per_message[kind].at(units)(ns))
                metrics.append(handling_p50[kind].at(units)(handling.value_at_percentile(50)))
                histograms[f"handling_time_{kind}@{units}"] = handling.encode()

    run.call(measure)
    if ("wasm", 0) in per_msg and ("native", 0) in per_msg:
        metrics.append(_OVERHEAD[4](per_msg["wasm", 0] - per_msg["native", 0]))
    heavy = config.heavy_units
    if ("wasm", heavy) in per_msg and ("native", heavy) in per_msg:
        metrics.append(_OVERHEAD[5](per_msg["wasm", heavy] / per_msg["native", heavy]))
    metrics.append(_OVERHEAD[6](mismatches))
    return run.result("wasm_overhead", metrics, histograms)


# -- WASM memory limits ------------------------------------------------------------------

def _limit_mb(value: object, what: str) -> float:
    mb = number(value, what)
    if not _PAGE <= round(mb * _MB) <= 1 << 32:
        raise ArgumentError(f"{what} must be within [0.065536, 4294.967296] MB (one 64 KiB "
                            f"page to 4 GiB), got {value!r}")
    return mb


@dataclass(frozen=True, kw_only=True)
class WasmMemoryLimitsConfig(ScenarioConfig):
    """WASM memory limits: for each limit in ``limits_mb`` (1, 10, 100,
    1000 MB, decimal; ascending, each at least one 64 KiB page and at most
    4 GiB) a bundled alloc agent (``WasmModule(alloc, memory_limit=L)``)
    grows its memory until ``memory.grow`` refuses, then handles
    ``messages`` (100) requests at the limit."""
    limits_mb: tuple[float, ...] = field((1, 10, 100, 1000), ascending(_limit_mb))
    messages: int = field(100, count)
    window: int = field(10, count)

    QUICK: ClassVar[Mapping[str, Any]] = {"limits_mb": (1, 10), "messages": 20}


def _bytes(name: str) -> MetricSpec:
    # the limit the config sets decides these: reported, not compared
    return MetricSpec(name, "bytes", Kind.MEMORY, Direction.NONE)


_LIMITS = (_bytes("max_memory"), _bytes("largest_allocation"),
           MetricSpec("fill_seconds", "s", Kind.DURATION, Direction.NONE),
           counted("fill_requests", "requests"), _ns("ns_per_message"),
           _ns("refused_ns_per_message"), _ns("fresh_ns_per_message"))


def _grow_reply(router: Router, agent: int, pages: int) -> int:
    reply = router.request(agent, pages.to_bytes(4, "little"))
    if reply is None:
        raise RuntimeError(f"the alloc agent gave no reply to a request for {pages} pages")
    return int.from_bytes(bytes(reply.content)[:4], "little", signed=True)


def _fill_memory(router: Router, agent: int) -> tuple[int, int]:
    """Grow the alloc agent's memory as far as it goes: ask for ``step``
    pages, doubling the step after a success and halving it after a
    refusal, until a one-page request is refused.  Returns (pages at the
    end, requests made): O(log(limit)) requests, each page touched once."""
    pages = _grow_reply(router, agent, 0)     # the current size (memory.grow(0))
    step, requests = 1, 1
    while True:
        old = _grow_reply(router, agent, step)
        requests += 1
        if old >= 0:
            pages = old + step
            step *= 2
        elif step == 1:
            return pages, requests
        else:
            step //= 2


@scenario("wasm_memory_limits", WasmMemoryLimitsConfig, _LIMITS)
def run_wasm_memory_limits(config: WasmMemoryLimitsConfig,
                           thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """For each limit L (MB), a fresh router and alloc agent (no epoch
    deadline: touching a GB of pages takes longer than the default
    100 ms); its memory is grown by :func:`_fill_memory`'s doubling/halving
    search until a single page is refused.  Metrics per L:

    * ``max_memory@L``: the agent's memory at the end (bytes, whole pages;
      at most L) -- the largest memory that succeeds;
    * ``largest_allocation@L``: what the agent allocated beyond its initial
      page (bytes);
    * ``fill_seconds@L``, ``fill_requests@L``: the search's cost;
    * ``ns_per_message@L``: a closed loop of ``messages`` 0-page requests
      (memory.grow(0): the call alone) at the limit, per message;
    * ``refused_ns_per_message@L``: the same with 1-page requests, each
      refused (-1) -- performance at the limit;
    * ``fresh_ns_per_message@L``: 0-page requests to a fresh agent of the
      same module, for comparison.

    Histograms ``handling_time@L`` (the filled agent: its fill requests and
    the at-limit loops).  A stop keeps the limits finished before it."""
    from .. import agents as bundled
    from .._core import WasmModule
    source = bundled.path("alloc").read_text()
    run = GuardedRun(config)
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    done: list[str] = []
    max_memory, largest, fill_seconds, fill_requests, at_limit, refused, fresh_ns = _LIMITS

    def loop_ns(router: Router, agent: int, pages: int) -> float:
        res = run.loop(closed_loop, router, [agent], config.messages, window=config.window,
                       content=pages.to_bytes(4, "little"))
        return res.elapsed_ns / res.completed if res.completed else math.nan

    def limits() -> None:
        for mb in config.limits_mb:
            run.remaining()
            key = f"{mb:g}"
            limit = round(mb * _MB)
            module = WasmModule(source, memory_limit=limit, epoch_deadline_ms=None)
            router = Router(keep_replies=True, max_content=64)
            agent = router.spawn_wasm(module)
            initial = _grow_reply(router, agent, 0)
            started = time.perf_counter_ns()
            pages, requests = _fill_memory(router, agent)
            fill = time.perf_counter_ns() - started
            fresh_router = Router(keep_replies=False)
            fresh = fresh_router.spawn_wasm(module)
            metrics.extend([max_memory.at(key)(pages * _PAGE),
                            largest.at(key)((pages - initial) * _PAGE),
                            fill_seconds.at(key)(fill / 1e9), fill_requests.at(key)(requests)])
            metrics.extend([at_limit.at(key)(loop_ns(router, agent, 0)),
                            refused.at(key)(loop_ns(router, agent, 1)),
                            fresh_ns.at(key)(loop_ns(fresh_router, fresh, 0))])
            histograms[f"handling_time@{key}"] = router.handling_time.encode()
            if pages * _PAGE > limit:
                run.notes.append(f"{key} MB: the agent grew past its limit "
                                 f"({pages * _PAGE} > {limit} bytes)")
            run.remaining()               # a limit the deadline cut short is left out
            done.append(key)
            del router, fresh_router, module

    run.call(limits)
    return run.result("wasm_memory_limits", metrics,
                      keep_finished_points(run, done, metrics, histograms))
