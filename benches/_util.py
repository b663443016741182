"""Shared helpers of the benchmarks: timing, test data, result rows, the table.

Every figure is the best of several repeats (the smallest time per operation,
hence the largest rate): on a shared, noisy machine the minimum is the figure
least disturbed by other processes.  The median is kept too, in --json output.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

# numpy's OpenBLAS starts threads that spin in the background; the benchmarks
# use no BLAS, and on a 2-core machine the spinning would steal from them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# The histogram every benchmark uses: 1 ns to one hour, 3 significant figures.
LOWEST, HIGHEST, SIGFIGS = 1, 3_600_000_000_000, 3


class Timing(NamedTuple):
    """A figure over repeats: best and median."""
    best: float
    median: float

    def per_second(self) -> "Timing":
        """ns per operation -> operations per second (best stays best)."""
        return Timing(1e9 / self.best, 1e9 / self.median)


class Config(NamedTuple):
    quick: bool
    repeat: int          # repeats of each measurement
    min_time: float      # seconds one repeat should last at least (autorange)


def config(quick: bool) -> Config:
    return Config(quick, 3, 0.02) if quick else Config(quick, 7, 0.1)


def time_runs(runs: list[tuple[Callable[[], object], int]], repeat: int) -> list[Timing]:
    """ns per operation of each (run, ops) pair, where run() performs ops
    operations, over `repeat` rounds.  The rounds interleave the runs (A B A
    B ...) so that a noisy spell on the shared machine hits every side of a
    comparison alike.  The collector is off while timing (as in timeit): a
    collection landing in one side's loop would skew a comparison."""
    samples: list[list[float]] = [[] for _ in runs]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for (run, ops), out in zip(runs, samples):
                t0 = time.perf_counter_ns()
                run()
                out.append((time.perf_counter_ns() - t0) / ops)
    finally:
        if was_enabled:
            gc.enable()
    return [Timing(min(s), statistics.median(s)) for s in samples]


def time_run(run: Callable[[], object], ops: int, repeat: int) -> Timing:
    return time_runs([(run, ops)], repeat)[0]


def time_calls(fns: list[Callable[[], object]], cfg: Config) -> list[Timing]:
    """ns per call of each fn(), called in a loop long enough that one
    repeat lasts about cfg.min_time (calibrated like timeit.autorange).  The
    loop's own cost (a few ns per call) is included, the same for all."""
    def loop(fn, number):
        def run():
            for _ in range(number):
                fn()
        return run

    runs = []
    for fn in fns:
        number = 1
        while (total := time_run(loop(fn, number), 1, 1).best) < cfg.min_time * 1e8:
            number *= 10
        number = max(1, round(number * cfg.min_time * 1e9 / total))
        runs.append((loop(fn, number), number))
    return time_runs(runs, cfg.repeat)


def latencies(n: int, seed: int = 1) -> np.ndarray:
    """n latency-like values in ns as int64: lognormal, median 100 us, with a
    tail reaching tens of ms, clipped to the histogram's range."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=np.log(100_000), sigma=1.0, size=n)
    return np.clip(values, LOWEST, HIGHEST).astype(np.int64)


@dataclass
class Row:
    """One line of the table.  ours/alt: a Timing (in `unit`), a plain value,
    or None.  ratio: how many times better ours is; for rates (higher is
    better) ours / alt, otherwise alt / ours.  ok: PASS/MISS, None for a
    figure without a target."""
    what: str
    unit: str
    ours: object
    alt: object = None
    target: str = "-"
    ok: bool | None = None
    higher_is_better: bool = False
    section: str = ""

    @property
    def ratio(self) -> float | None:
        if not (isinstance(self.ours, Timing) and isinstance(self.alt, Timing)):
            return None
        if not (self.ours.best and self.alt.best):        # a figure of 0: no ratio
            return None
        if self.higher_is_better:
            return self.ours.best / self.alt.best
        return self.alt.best / self.ours.best

    def as_dict(self) -> dict:
        def figure(x):
            return {"best": x.best, "median": x.median} if isinstance(x, Timing) else x
        return {"section": self.section, "what": self.what, "unit": self.unit,
                "caxton_meter": figure(self.ours), "alternative": figure(self.alt),
                "ratio": self.ratio, "target": self.target, "pass": self.ok}


def _fmt(x, unit: str) -> str:
    if isinstance(x, Timing):
        x = x.best
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not isinstance(x, (int, float)):
        return str(x)
    if unit == "/s":
        return f"{x / 1e6:,.1f} M/s"
    if unit == "ns":
        scale, unit = next((s, u) for s, u in ((1e6, "ms"), (1e3, "us"), (1, "ns")) if x >= s or s == 1)
        x /= scale
    return (f"{x:#.3g} {unit}" if x < 100 else f"{x:,.0f} {unit}").rstrip()


def print_table(rows: list[Row], cfg: Config, title: str) -> None:
    header = ("what", "caxton_meter", "alternative", "ratio", "target", "PASS/MISS")
    lines = []
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            lines.append(section)
        ratio = "-" if r.ratio is None else f"{r.ratio:,.1f}x"
        verdict = "" if r.ok is None else ("PASS" if r.ok else "MISS")
        lines.append(("  " + r.what, _fmt(r.ours, r.unit), _fmt(r.alt, r.unit),
                      ratio, r.target, verdict))
    cells = [line for line in lines if isinstance(line, tuple)]
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(len(header))]

    def fmt(c):
        return "  ".join([c[0].ljust(widths[0])] + [c[i].rjust(widths[i]) for i in range(1, 5)]
                         + [c[5]]).rstrip()
    # the load average says how busy the shared machine was during the run
    print(f"\n{title}  ({'--quick, ' if cfg.quick else ''}best of {cfg.repeat} repeats, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          "ratio = how many times better caxton_meter is)")
    print(fmt(header))
    print("-" * (sum(widths) + 2 * len(widths)))
    for line in lines:
        print(line if isinstance(line, str) else fmt(line))
    sys.stdout.flush()


def parse_args(description: str, with_json: bool = False) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    if with_json:
        p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    return p.parse_args()


def main(run: Callable[[Config], list[Row]], title: str) -> None:
    """The entry point of one bench script."""
    args = parse_args(title)
    cfg = config(args.quick)
    print_table(run(cfg), cfg, title)
