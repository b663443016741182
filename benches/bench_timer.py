"""Timer benchmarks (Part 1, target 2): timing a block or a call into a
histogram, against two time.perf_counter_ns() reads plus the hdrhistogram
package's record_value, measured in the same run.

    python benches/bench_timer.py [--quick]
"""
from __future__ import annotations

from contextlib import nullcontext
from time import perf_counter_ns

from hdrh.histogram import HdrHistogram

from caxton_meter import Histogram, Timer
from _util import HIGHEST, LOWEST, SIGFIGS, Config, Row, main, time_runs


def run(cfg: Config) -> list[Row]:
    h = Histogram(LOWEST, HIGHEST, SIGFIGS)
    hh = HdrHistogram(LOWEST, HIGHEST, SIGFIGS)
    calls = range(20_000 if cfg.quick else 200_000)

    # Each side written as a user would write it, names looked up the same
    # way (module globals, attributes), in the same kind of loop.
    def with_timer():
        for _ in calls:
            with Timer(h):
                pass

    def by_hand():
        for _ in calls:
            t0 = perf_counter_ns()
            hh.record_value(perf_counter_ns() - t0)

    def empty():
        for _ in calls:
            pass

    # The with statement's own cost: CPython binds __enter__ and __exit__
    # and calls both for any context manager, even one that does nothing.
    idle = nullcontext()

    def with_nothing():
        for _ in calls:
            with idle:
                pass

    @Timer(h)
    def timed():
        pass

    def untimed():
        pass

    def timed_by_hand():
        t0 = perf_counter_ns()
        try:
            return untimed()
        finally:
            hh.record_value(perf_counter_ns() - t0)

    def call(f):
        def loop():
            for _ in calls:
                f()
        return loop

    n = len(calls)
    t_timer, t_hand, t_loop, t_with, t_deco, t_deco_hand, t_plain = time_runs(
        [(f, n) for f in (with_timer, by_hand, empty, with_nothing)]
        + [(call(f), n) for f in (timed, timed_by_hand, untimed)], cfg.repeat)
    section = "2. timing a block, ns per timed block (vs 2x perf_counter_ns + hdrh record_value)"
    return [
        Row("with Timer(h): pass", "ns", t_timer, t_hand, ">=15x",
            t_hand.best / t_timer.best >= 15, section=section),
        Row("  of which the empty for-loop", "ns", t_loop, section=section),
        Row("  floor: `with nullcontext(): pass` (the with statement alone)", "ns", t_with,
            section=section),
        Row("@Timer(h) no-op function call (vs try/finally wrapper)", "ns", t_deco, t_deco_hand,
            section=section),
        Row("  of which the untimed call in the loop", "ns", t_plain, section=section),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter timer benchmarks")
