"""Clock benchmarks (Part 1, item 6): now_ns() against time.perf_counter_ns()
from Python, and the floor clock_info() measures, in the same run.

    python benches/bench_clock.py [--quick]
"""
from __future__ import annotations

import statistics
import time

from caxton_meter import clock_info, now_ns
from _util import Config, Row, Timing, main, time_calls


def _smallest_step(clock, trials: int) -> int:
    """The smallest non-zero difference between two successive reads from
    Python: what a Python caller can resolve (call cost included)."""
    best = None
    for _ in range(trials):
        t0 = clock()
        t1 = clock()
        while t1 == t0:
            t1 = clock()
        if best is None or t1 - t0 < best:
            best = t1 - t0
    return best


def _over_repeats(values) -> Timing:
    """Best (smallest) and median of a figure measured once per repeat."""
    return Timing(min(values), statistics.median(values))


def run(cfg: Config) -> list[Row]:
    infos = [clock_info() for _ in range(cfg.repeat)]
    pc = time.get_clock_info("perf_counter")
    trials = 1_000 if cfg.quick else 10_000
    section = f"6. clock, {infos[0].implementation} (vs time.perf_counter_ns, {pc.implementation})"
    ours, alt = time_calls([now_ns, time.perf_counter_ns], cfg)
    return [
        Row("now_ns() per call from Python", "ns", ours, alt, section=section),
        Row("smallest step between two reads from Python", "ns",
            _over_repeats([_smallest_step(now_ns, trials) for _ in range(cfg.repeat)]),
            _over_repeats([_smallest_step(time.perf_counter_ns, trials) for _ in range(cfg.repeat)]),
            section=section),
        Row("clock_info: reported resolution (vs get_clock_info)", "ns",
            infos[0].reported_resolution_ns, pc.resolution * 1e9, section=section),
        Row("clock_info: measured resolution (step seen in C)", "ns",
            _over_repeats([i.resolution_ns for i in infos]), section=section),
        Row("clock_info: one read from compiled code", "ns",
            _over_repeats([i.overhead_ns for i in infos]), section=section),
        Row("clock_info: one now_ns() call from Python", "ns",
            _over_repeats([i.python_overhead_ns for i in infos]), section=section),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter clock benchmarks")
