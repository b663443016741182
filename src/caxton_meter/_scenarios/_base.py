"""What every scenario shares: the base config, the registry, the guarded
run, and the measurements several scenarios take the same way.

A scenario is a config class (a keyword-only frozen dataclass deriving
from :class:`ScenarioConfig`, its fields declared with their checks), a run
function, and the metrics it produces (:class:`~caxton_meter._model.MetricSpec`
declarations); :func:`scenario` registers the three together.  Adding a
scenario is one decorated function and its config, in one module.
"""
from __future__ import annotations

import contextvars
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, TypeVar

from .. import _checks
from .._core import Histogram, OpenLoopResult, Router, open_loop
from .._model import (
    Direction,
    Grade,
    Interval,
    Kind,
    Metric,
    MetricSpec,
    ScenarioResult,
    Threshold,
    resolve_thresholds,
)
from .._sampling import ResourceProfile, ResourceSampler

_C = TypeVar("_C")
_Config = TypeVar("_Config", bound="ScenarioConfig")
_S = 1_000_000_000        # ns


# -- fields and the base config ----------------------------------------------------------

def field(default: Any, check: Callable[..., Any], *, timed: bool = False) -> Any:
    """A config field: its default, the check that validates (and
    normalises: "500ms" -> 0.5) its value, and whether it is part of the
    run's planned duration (``timed``)."""
    return dataclasses.field(default=default, metadata={"check": check, "timed": timed})


count = partial(_checks.integer, low=1)
"""At least one: messages, agents, a window."""
size = _checks.size
seconds = _checks.seconds
rate = _checks.rate
fraction = partial(_checks.fraction, strict_low=True)


def number_at_least_one(value: object, what: str) -> float:
    return _checks.number(value, what, low=1.0, strict=False)


def seconds_or_zero(value: object, what: str) -> float:
    return _checks.seconds(value, what, allow_zero=True)


def http_url(value: object, what: str) -> str:
    """A URL an HttpTarget takes (http://127.0.0.1:PORT/PATH), checked by
    making one."""
    from .._network import HttpTarget
    try:
        HttpTarget(value)  # type: ignore[arg-type]
    except (_checks.ArgumentError, _checks.ArgumentTypeError) as e:
        raise type(e)(f"{what}: {str(e).removeprefix('HttpTarget: ')}") from None
    assert isinstance(value, str)
    return value


def cluster_address(value: object, what: str) -> str:
    """A Dask scheduler's address, "tcp://HOST:PORT" (not asked here: the
    load asks it before anything is sent)."""
    if not isinstance(value, str) or "://" not in value or not value.split("://", 1)[1]:
        raise _checks.ArgumentError(f"{what} must be a scheduler address such as "
                                    f"'tcp://HOST:8786', got {value!r}")
    return value


def ascending(item: Callable[[object, str], Any]) -> Callable[[object, str], tuple[Any, ...]]:
    """A non-empty, strictly ascending tuple whose items pass ``item``."""
    def check(value: object, what: str) -> tuple[Any, ...]:
        if isinstance(value, list):
            value = tuple(value)          # a config read back from JSON
        if not isinstance(value, tuple):
            raise _checks.ArgumentTypeError(f"{what} must be a tuple, not {type(value).__name__}")
        if not value:
            raise _checks.ArgumentError(f"{what} must not be empty")
        out = tuple(item(v, f"{what}[{i}]") for i, v in enumerate(value))
        if any(b <= a for a, b in zip(out, out[1:])):
            raise _checks.ArgumentError(f"{what} must be strictly ascending, got {value!r}")
        return out
    return check


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig:
    """The fields every scenario has: whether to sample the process's
    resources (CPU, RSS) every ``sample_interval`` seconds during the run,
    and a ``deadline`` (seconds; None: none) after which the run stops and
    returns what it measured, marked partial.

    Fields are keyword-only and checked when the config is built (a bad
    value raises :class:`~caxton_meter._checks.ArgumentError` before
    anything runs); durations and rates may be written with units ("500ms",
    "2K/s")."""
    sample_resources: bool = field(True, _checks.flag)
    sample_interval: float = field(0.1, seconds)
    deadline: float | None = field(None, _checks.optional(seconds))

    QUICK: ClassVar[Mapping[str, Any]] = {}
    """The changes that make the quick profile (seconds-long, for CI)."""
    AGENT_KINDS: ClassVar[tuple[str, ...]] = ("native", "python")
    """The kinds of agent a config's ``agent_kind`` may name."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if "agent_kind" in self.field_names():
            _checks.choice(getattr(self, "agent_kind"), f"{owner}: agent_kind", self.AGENT_KINDS)
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(getattr(self, f.name), f"{owner}: {f.name}"))
        self.validate()

    def validate(self) -> None:
        """Checks across fields, after each field's own (override)."""

    @classmethod
    def quick(cls: type[_Config], **changes: Any) -> _Config:
        """The quick profile (the class's ``QUICK`` changes), with ``changes``."""
        return dataclasses.replace(cls(**cls.QUICK), **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def planned_seconds(self) -> float:
        """The run's length as planned: the sum of its timed fields (the
        load's schedule); runs measured in messages count 0."""
        return sum(float(getattr(self, f.name)) for f in dataclasses.fields(self)
                   if f.metadata.get("timed"))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _refuse(self, problem: str) -> None:
        raise _checks.ArgumentError(f"{type(self).__name__}: {problem}")


@dataclass(frozen=True, kw_only=True)
class AgentsConfig(ScenarioConfig):
    """A scenario over ``agents`` agents of ``agent_kind`` (one of the
    class's ``AGENT_KINDS``), exchanging messages of ``message_size`` bytes."""
    agents: int = field(10, count)
    agent_kind: str = "native"            # one of AGENT_KINDS
    message_size: int = field(64, size)


# -- the registry ------------------------------------------------------------------------

RunFunction = Callable[..., ScenarioResult]


@dataclass(frozen=True)
class Scenario:
    """A registered scenario: its name, config class, run function and the
    metrics it produces (a metric of a series, "throughput@100", is
    declared by its name before the ``@``)."""
    name: str
    config: type[ScenarioConfig]
    run: RunFunction
    metrics: tuple[MetricSpec, ...]

    @property
    def summary(self) -> str:
        """The config's docstring, as one paragraph of plain text."""
        doc = (self.config.__doc__ or "").strip().split("\n\n", 1)[0]
        return " ".join(doc.replace("``", "").split())

    def spec(self, name: str) -> MetricSpec:
        """The declaration of metric ``name`` (or of its series)."""
        base = name.split("@", 1)[0]
        for s in self.metrics:
            if s.name == base:
                return s
        raise KeyError(f"scenario {self.name!r} declares no metric {base!r}"
                       f"{_checks.did_you_mean(base, [s.name for s in self.metrics])}")


SCENARIOS: dict[str, Scenario] = {}
"""Scenario name -> :class:`Scenario`, in the guide's order."""


def scenario(name: str, config: type[ScenarioConfig],
             metrics: Iterable[MetricSpec]) -> Callable[[RunFunction], RunFunction]:
    """Register the decorated run function as scenario ``name``."""
    def register(run: RunFunction) -> RunFunction:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} is registered twice")

        @functools.wraps(run)
        def checked(cfg: ScenarioConfig | None = None, *,
                    thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
            cfg = config() if cfg is None else cfg
            if type(cfg) is not config:
                raise _checks.ArgumentTypeError(f"scenario {name!r} takes a {config.__name__}, "
                                                f"not {type(cfg).__name__}")
            return run(cfg, resolve_thresholds(thresholds))
        checked.__doc__ = f"The {name.replace('_', ' ')} scenario.  {run.__doc__ or ''}"
        SCENARIOS[name] = Scenario(name, config, checked, tuple(metrics))
        return checked
    return register


# -- metrics several scenarios produce ---------------------------------------------------

def counted(name: str, unit: str) -> MetricSpec:
    """A count: reported, never compared."""
    return MetricSpec(name, unit, Kind.COUNT)


# requests completed per second (a request and its reply count once): "req/s",
# beside a scenario's messages_per_second ("msg/s": every message delivered)
THROUGHPUT = MetricSpec("throughput", "req/s", Kind.THROUGHPUT, graded_by="throughput")
THROUGHPUT_UNGRADED = MetricSpec("throughput", "req/s", Kind.THROUGHPUT)


def latency_specs(histogram: str, *, extra: bool = False) -> tuple[MetricSpec, ...]:
    """latency_p50 and latency_p99 of ``histogram`` (graded), and with
    ``extra`` p90, p95, p99.9 and the maximum (ungraded)."""
    def p(name: str, percentile: float, graded: bool = False) -> MetricSpec:
        return MetricSpec(name, "ns", Kind.LATENCY, histogram=histogram, percentile=percentile,
                          graded_by=name if graded else None)
    out: tuple[MetricSpec, ...] = (p("latency_p50", 50, True), p("latency_p99", 99, True))
    if extra:
        out += (p("latency_p90", 90), p("latency_p95", 95), p("latency_p99_9", 99.9),
                p("latency_max", 100))
    return out


def latency_metrics(h: Histogram, specs: tuple[MetricSpec, ...], thresholds: Mapping[str, Threshold],
                    notes: list[str], *, graded: bool = True) -> list[Metric]:
    """The percentiles ``specs`` declare, read from ``h``; graded unless
    ``graded`` is False.  No samples: the graded ones are FAILED (NaN)."""
    if h.total_count == 0:
        notes.append("no latency was recorded (no request completed): latency is FAILED")
        return [s(math.nan, Grade.FAILED) for s in specs if s.graded_by is not None]
    values = h.percentiles([s.percentile for s in specs if s.percentile is not None])
    return [s.graded(float(v), thresholds) if graded and s.graded_by is not None
            else s(float(v)) for s, v in zip(specs, values)]


ROUTER_HISTOGRAMS = ("round_trip", "queue_time", "handling_time")


def router_histograms(router: Router, names: Iterable[str] = ROUTER_HISTOGRAMS) -> dict[str, str]:
    """The router's histograms ``names``, HDR-encoded."""
    return {n: getattr(router, n).encode() for n in names}


# -- agents ------------------------------------------------------------------------------

def ids(spawned: Any) -> list[int]:
    """The ids of a spawn: an int for count=1, an iterable of ids otherwise."""
    return [spawned] if isinstance(spawned, int) else list(spawned)


def wasm_module(name: str) -> Any:
    from .. import agents
    from .._core import WasmModule
    return WasmModule(agents.path(name).read_text())


class CheckpointableEcho:
    """A Python echo agent whose state (a message counter) can be checkpointed."""

    def __init__(self) -> None:
        self.handled = 0

    def handle(self, message: Any) -> Any:
        self.handled += 1
        return message

    def checkpoint(self) -> bytes:
        return self.handled.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        self.handled = int.from_bytes(state, "little")


def spawn_echoes(router: Router, kind: str, count: int, module: Any = None) -> list[int]:
    """``count`` echo agents of ``kind``: "native", "python" (an instance
    each, which can be checkpointed) or "wasm" (of ``module``, by default
    the bundled echo agent)."""
    if kind == "wasm":
        return ids(router.spawn_wasm(module if module is not None else wasm_module("echo"),
                                     count=count))
    if kind == "python":
        return ids(router.spawn_python(CheckpointableEcho, count=count))
    return ids(router.spawn_native("echo", count=count))


def check_conservation(router: Router, notes: list[str]) -> None:
    c = router.counts
    if c.sent != c.delivered + c.dead_lettered + c.rejected + c.in_flight:
        notes.append(f"router counts not conserved: sent {c.sent} != delivered {c.delivered} "
                     f"+ dead_lettered {c.dead_lettered} + rejected {c.rejected} "
                     f"+ in_flight {c.in_flight}")


def memory_now(interval: float) -> ResourceProfile:
    """A momentary memory reading (USS when readable), after a collection."""
    import gc
    gc.collect()
    sampler = ResourceSampler(interval)
    sampler.start()
    return sampler.stop()


# -- the guarded run ---------------------------------------------------------------------

# The on_interval callback of the open loops run by the current scenario
# (run_scenario's on_interval): live progress without a parameter on every
# run function.
ON_INTERVAL: contextvars.ContextVar[Callable[[Any], object] | None] = contextvars.ContextVar(
    "caxton_meter_on_interval", default=None)


class DeadlinePassed(Exception):
    """The scenario's deadline passed between two steps of a run."""


class GuardedRun:
    """One guarded run of a scenario: samples resources around the load
    call, passes the scenario's deadline to the loops, turns a
    KeyboardInterrupt or a passed deadline into a partial result, and
    assembles the result.

    Ctrl-C.  The compiled loops return their partial result on Ctrl-C;
    when the KeyboardInterrupt surfaces elsewhere inside a run (a Python
    agent's handler), the run keeps what the router recorded so far
    (``partial``, ``interrupted`` and a note) instead of raising."""

    def __init__(self, config: ScenarioConfig, *, sample: bool | None = None) -> None:
        sample = config.sample_resources if sample is None else sample
        self.config = config
        self.sampler = ResourceSampler(config.sample_interval) if sample else None
        self.partial = False
        self.interrupted = False
        self.notes: list[str] = []
        self.elapsed_ns = 0
        self.deadline = config.deadline
        self._ends_at: float | None = None

    def call(self, load: Callable[[], _C]) -> _C | None:
        result: _C | None = None
        started = time.perf_counter_ns()
        if self.deadline is not None:
            self._ends_at = time.monotonic() + self.deadline
        if self.sampler is not None:
            self.sampler.start()
        try:
            result = load()
        except KeyboardInterrupt:
            self.partial = self.interrupted = True
            self.notes.append("interrupted (KeyboardInterrupt): figures are what the router "
                              "recorded before the interrupt")
        except DeadlinePassed:
            self._deadline_note()
        finally:
            self.elapsed_ns = time.perf_counter_ns() - started
            if self.sampler is not None:
                self.sampler.stop()
        return result

    def _deadline_note(self) -> None:
        if not self.partial:
            self.partial = True
            self.notes.append(f"the deadline ({self.deadline:g} s) was reached: the figures "
                              "cover the part of the run before it")

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline), for a load
        loop's ``deadline=``; raises DeadlinePassed when none are left."""
        if self._ends_at is None:
            return None
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise DeadlinePassed
        return left

    def loop(self, fn: Callable[..., _C], *args: Any, **kwargs: Any) -> _C:
        """``fn(*args, **kwargs, deadline=...)`` for a load loop; a loop the
        deadline or Ctrl-C stopped marks the run partial."""
        watcher = ON_INTERVAL.get()
        if watcher is not None and (fn is open_loop or getattr(fn, "__name__", "")
                                    == "load_network"):
            kwargs["on_interval"] = watcher
        res = fn(*args, deadline=self.remaining(), **kwargs)
        if res.deadline_reached:  # type: ignore[attr-defined]
            self._deadline_note()
        if res.interrupted:  # type: ignore[attr-defined]
            self.interrupted = True
            if not self.partial:
                self.partial = True
                self.notes.append("the load loop was interrupted (Ctrl-C): the result is "
                                  "partial")
        return res

    @property
    def resources(self) -> ResourceProfile | None:
        return self.sampler.profile if self.sampler is not None else None

    def result(self, name: str, metrics: Iterable[Metric], histograms: dict[str, str], *,
               intervals: tuple[Interval, ...] = (), router: Router | None = None,
               resources: ResourceProfile | None | bool = True) -> ScenarioResult:
        """The scenario's result; the router's counts checked for
        conservation (a violation is noted, not raised)."""
        if router is not None:
            check_conservation(router, self.notes)
        profile = self.resources if resources is True else resources or None
        return ScenarioResult(name, self.config.as_dict(), tuple(metrics), histograms,
                              intervals, profile, self.partial, tuple(self.notes),
                              self.interrupted)


def keep_finished_points(run: GuardedRun, done: list[Any], metrics: list[Metric],
                 histograms: dict[str, str]) -> dict[str, str]:
    """After a stop, only the points finished before it are kept."""
    if not run.partial:
        return histograms
    run.notes.append(f"points finished before the stop: {done}")
    keep = {f"@{p}" for p in done}
    metrics[:] = [m for m in metrics if m.name[m.name.index("@"):] in keep]
    return {k: v for k, v in histograms.items() if k[k.index("@"):] in keep}


# -- closed loops ------------------------------------------------------------------------

def closed_loop_rates(res: Any, router: Router, run: GuardedRun, requests: int) -> tuple[float, int, int]:
    """(completed per second, completed, failed); from the router's counts
    over the measured wall time when the loop's result was lost."""
    if res is not None:
        return res.completed_per_second, res.completed, res.failed
    completed = router.round_trip.total_count
    failed = router.counts.dead_lettered + router.counts.rejected
    per_second = completed / (run.elapsed_ns / 1e9) if run.elapsed_ns > 0 else 0.0
    run.notes.append(f"{completed + failed} of {requests} requests ended before the interrupt")
    return per_second, completed, failed


# -- open loops --------------------------------------------------------------------------

OPEN_LOOP_HISTOGRAMS = ("latency", "latency_uncorrected", "send_jitter")
OPEN_LOOP_COUNTS = (
    MetricSpec("achieved_rate", "req/s", Kind.THROUGHPUT, Direction.NONE),
    MetricSpec("intended_rate", "req/s", Kind.THROUGHPUT, Direction.NONE),
    counted("requests", "requests"), counted("completed", "requests"),
    counted("failed", "requests"), counted("dropped", "requests"))
"""The open loop's counts: the load asked for and what became of it
(judged by the thresholds and notes, not compared: the config sets them)."""
OPEN_LOOP_METRICS = latency_specs("latency", extra=True) + OPEN_LOOP_COUNTS


@dataclass
class OpenRun:
    """What an open-loop scenario measured, before its own figures."""
    run: GuardedRun
    router: Router
    result: OpenLoopResult | None          # None: the loop's result was lost (Ctrl-C)
    latency: Histogram                     # corrected for coordinated omission
    counts: list[Metric]
    histograms: dict[str, str]
    intervals: tuple[Interval, ...]

    def latency_metrics(self, thresholds: Mapping[str, Threshold], *,
                        graded: bool = True) -> list[Metric]:
        return latency_metrics(self.latency, latency_specs("latency", extra=True), thresholds,
                               self.run.notes, graded=graded)


def _on_cluster(target: Any, stages: list[tuple[float, float]], *, cluster: str,
                workers: int | None, notes: list[str], **kwargs: Any) -> OpenLoopResult:
    """The load on a Dask cluster's workers (run_distributed): the merged
    result, each worker's trouble in ``notes``."""
    from .._distributed import run_distributed
    run = run_distributed(target, stages, cluster=cluster, workers=workers, **kwargs)
    notes.extend(w.note for w in run.workers if w.note)
    notes.append(f"run on {len(run.workers)} Dask workers; their clocks within "
                 f"{max(w.uncertainty_ns for w in run.workers) / 1e3:,.0f} us, their starts "
                 f"within {(run.max_start_skew_ns or 0) / 1e3:,.0f} us")
    return run.result


def run_open_loop(config: Any, stages: list[tuple[float, float]], *,
                  start_rate: float | None = None, run: GuardedRun | None = None) -> OpenRun:
    """An open loop over ``config.agents`` echo agents following
    ``stages``, guarded by a :class:`GuardedRun`; or, when the config names
    a ``target`` URL, over that server's HTTP/1.1 (the core's network loop;
    on a Dask ``cluster``'s workers when one is named)."""
    router = Router(keep_replies=False)
    run = run or GuardedRun(config)
    res: OpenLoopResult | None
    if getattr(config, "target", None) is not None:
        from .._network import HttpTarget, load_network
        target = HttpTarget(config.target, connections=config.connections)
        kwargs: dict[str, Any] = {"interval": config.interval}
        if start_rate is not None:
            kwargs["start_rate"] = start_rate
        if config.cluster is not None:
            res = run.call(lambda: run.loop(_on_cluster, target, stages, cluster=config.cluster,
                                            workers=config.workers, notes=run.notes, **kwargs))
        else:
            res = run.call(lambda: run.loop(load_network, target, stages,
                                            max_queue=config.max_in_flight, **kwargs))
        if res is not None and res.failed:
            run.notes.append("failed requests: " + ", ".join(
                f"{k}={v}" for k, v in sorted(res.errors.items())))
    else:
        echoes = spawn_echoes(router, config.agent_kind, config.agents)
        kwargs = {"max_in_flight": config.max_in_flight, "content": b"x" * config.message_size,
                  "interval": config.interval}
        if start_rate is not None:
            kwargs["start_rate"] = start_rate
        res = run.call(lambda: run.loop(open_loop, router, echoes, stages, **kwargs))
    if res is None:
        run.notes.append("intervals and send jitter are lost with the interrupted loop")
        latency = router.round_trip
        return OpenRun(run, router, None, latency,
                       [OPEN_LOOP_COUNTS[2](latency.total_count)],
                       {"latency": latency.encode(),
                        "latency_uncorrected": router.round_trip_uncorrected.encode()}, ())
    behind = res.schedule_note()
    if behind is not None:
        run.notes.append(behind + (f" (max_in_flight={config.max_in_flight})"
                                   if res.dropped else ""))
    if res.errors and getattr(config, "target", None) is None:
        run.notes.append("errors: " + ", ".join(f"{k}={v}" for k, v in sorted(res.errors.items())))
    values = (res.achieved_rate, res.intended_rate, res.requests, res.completed, res.failed,
              res.dropped)
    return OpenRun(run, router, res, res.latency,
                   [spec(v) for spec, v in zip(OPEN_LOOP_COUNTS, values)],
                   {n: getattr(res, n).encode() for n in OPEN_LOOP_HISTOGRAMS},
                   tuple(Interval(iv.start_ns, iv.end_ns, iv.sent, iv.completed, iv.failed,
                                  iv.dropped, iv.latency.encode()) for iv in res.intervals))


def merged_p99(hs: list[Histogram]) -> float | None:
    """The p99 of ``hs`` merged; None when there are none or no values."""
    if not hs:
        return None
    total = hs[0].copy()
    for h in hs[1:]:
        total.add(h)
    return float(total.value_at_percentile(99)) if total.total_count else None
