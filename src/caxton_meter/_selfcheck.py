"""The core's self-check: is the compiled core exact, and what does it cost
here?  A few seconds; what ``python -m caxton_meter.run --quick`` prints
until the scenarios take over its main job.

Every figure is measured on this machine in this run, beside what a Python
user would otherwise do (the ``hdrhistogram`` package, ``perf_counter_ns``).
The ``hdrhistogram`` package is not a dependency: without it the figures
stand alone and a note says how to get the comparison.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ._core import Histogram, Recorder, Timer, clock_info

__all__ = ["Check", "Figure", "SelfCheckResult", "run_self_check"]

# A published vector: 10,000 x 1000 and 1 x 100,000,000 in (1, 3600000000, 3),
# as HdrHistogram_c and the hdrhistogram package encode it.
_VECTOR = "HISTFAAAACl4nJNpmSzMwMDAyQABzFCaEURcm7yEwf4DROA8/4I5jNM7mJgAjtkHzg=="


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    alternative: float | None = None
    alternative_name: str = ""

    @property
    def ratio(self) -> float | None:
        if self.alternative is None or self.value <= 0:
            return None
        return self.alternative / self.value


@dataclass(frozen=True)
class SelfCheckResult:
    checks: tuple[Check, ...]
    figures: tuple[Figure, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _best_ns_per_op(fn: Callable[[int], object], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def _check_vector() -> Check:
    h = Histogram(1, 3_600_000_000, 3)
    h.record(1000, 10_000)
    h.record(100_000_000)
    encoded = h.encode()
    back = Histogram.decode(_VECTOR)
    ok = encoded == _VECTOR and back == h and back.value_at_percentile(99.999) == 100_007_935
    return Check("codec vector", ok, "encode/decode agree with HdrHistogram_c" if ok
                 else f"encode() gave {encoded}")


def _check_threads(values_per_thread: int) -> Check:
    import numpy as np

    rec = Recorder(1, 10**9, 3)
    data = np.random.default_rng(1).integers(0, 10**9, size=values_per_thread)
    done = threading.Event()
    seen = Histogram(1, 10**9, 3)

    def reader() -> None:
        while not done.is_set():
            seen.add(rec.interval_histogram())

    writers = [threading.Thread(target=rec.record_array, args=(data,)) for _ in range(2)]
    r = threading.Thread(target=reader)
    r.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    r.join()
    seen.add(rec.interval_histogram())
    ok = seen.total_count == 2 * values_per_thread
    return Check("threaded recording", ok,
                 f"2 writers without the GIL, reader swapping intervals: {seen.total_count:,} "
                 f"of {2 * values_per_thread:,} values")


_NO_HDRH = ("the hdrhistogram package is not installed: the figures stand without the "
            "Python alternative beside them (pip install hdrhistogram to compare)")


def _figures(quick: bool) -> list[Figure]:
    import numpy as np
    try:
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
    except ImportError:
        HdrHistogram = None

    n = 100_000 if quick else 1_000_000
    repeats = 3 if quick else 7
    values = [int(v) for v in np.random.default_rng(2).lognormal(11.5, 1.0, size=n).astype(np.int64)]
    figures: list[Figure] = []

    info = clock_info()
    figures.append(Figure("clock read from compiled code", info.overhead_ns, "ns"))
    figures.append(Figure("clock resolution (smallest step seen)", float(info.resolution_ns), "ns"))

    h = Histogram(1, 3_600_000_000_000, 3)
    oracle = HdrHistogram(1, 3_600_000_000_000, 3) if HdrHistogram is not None else None

    def beside(fn: Callable[[int], object], n: int, scale: float = 1.0) -> float | None:
        return _best_ns_per_op(fn, n, repeats) * scale if oracle is not None else None
    small = values[: max(n // 20, 1000)]

    def ours(k: int) -> None:
        record = h.record
        for v in values[:k]:
            record(v)

    def theirs(k: int) -> None:
        assert oracle is not None
        record = oracle.record_value
        for v in small[:k]:
            record(v)

    figures.append(Figure("Histogram.record() from Python", _best_ns_per_op(ours, n, repeats), "ns/value",
                          beside(theirs, len(small)), "hdrhistogram record_value"))

    arr = np.asarray(values, dtype=np.int64)
    bulk = Histogram(1, 3_600_000_000_000, 3)
    figures.append(Figure("Histogram.record_array()", _best_ns_per_op(lambda k: bulk.record_array(arr), n, repeats),
                          "ns/value"))

    def timed(k: int) -> None:
        for _ in range(k):
            with Timer(h):
                pass

    def by_hand(k: int) -> None:
        clock = time.perf_counter_ns
        assert oracle is not None
        record = oracle.record_value
        for _ in range(k // 20):
            t0 = clock()
            record(clock() - t0)

    figures.append(Figure("with Timer(h): (timed empty block)", _best_ns_per_op(timed, n, repeats), "ns",
                          beside(by_hand, n, 20), "perf_counter_ns x2 + record_value"))

    def p99(k: int) -> None:
        for _ in range(k):
            h.value_at_percentile(99.0)

    def p99_theirs(k: int) -> None:
        assert oracle is not None
        for _ in range(k):
            oracle.get_value_at_percentile(99.0)

    figures.append(Figure("value_at_percentile(99)", _best_ns_per_op(p99, 200, repeats) / 1000, "us",
                          beside(p99_theirs, 5, 1 / 1000), "get_value_at_percentile"))
    return figures


def run_self_check(quick: bool = True) -> SelfCheckResult:
    checks = (_check_vector(), _check_threads(200_000 if quick else 2_000_000))
    try:
        import hdrh  # type: ignore[import-untyped]  # noqa: F401
        notes: tuple[str, ...] = ()
    except ImportError:
        notes = (_NO_HDRH,)
    return SelfCheckResult(checks, tuple(_figures(quick)), notes)


def format_self_check(result: SelfCheckResult) -> str:
    info = clock_info()
    lines = [f"caxton_meter core self-check — clock {info.implementation}: "
             f"read {info.overhead_ns:.1f} ns, resolution {info.resolution_ns} ns",
             ""]
    for c in result.checks:
        lines.append(f"  [{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}")
    lines.append("")
    width = max(len(f.name) for f in result.figures)
    for f in result.figures:
        row = f"  {f.name:<{width}}  {f.value:10.2f} {f.unit}"
        if f.ratio is not None:
            row += f"   vs {f.alternative:10.2f} ({f.alternative_name}): {f.ratio:.1f}x"
        lines.append(row)
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)
