"""Resource sampler benchmarks (Part 3): what one sample costs, against a
plain psutil RSS read and against the same reads without oneshot(); what a
USS read costs against an RSS read; and the sampler's own overhead at 10 Hz
over ~2 s as % of one core, against a naive sampler (a thread that sleeps the
interval, then calls cpu_percent(), memory_info() and num_threads()), both
measured in the same run.

    python benches/bench_sampling.py [--quick]
"""
from __future__ import annotations

import threading
import time
from typing import NamedTuple

import psutil

from caxton_meter._sampling import ResourceSampler
from _util import Config, Row, Timing, main, time_calls


class Figures(NamedTuple):
    overhead_percent: float     # CPU of the sampling, % of one core over the window
    sample_ns: float            # mean wall time of one periodic sample
    lag_ms: float               # the most a sample came after its intended tick


def naive_sampler(interval: float, seconds: float) -> Figures:
    """The sampler one writes first: a thread that sleeps the interval, then
    reads.  Its ticks drift by the cost of each read and each late wake-up."""
    p = psutil.Process()
    p.cpu_percent()                       # primes psutil's previous reading
    samples: list[tuple[float, float, int, int]] = []
    stop = threading.Event()
    cost = [0.0, 0.0]

    def run() -> None:
        cpu0 = time.thread_time()
        spent = 0
        while not stop.is_set():
            time.sleep(interval)
            t0 = time.perf_counter_ns()
            samples.append((time.monotonic(), p.cpu_percent(), p.memory_info().rss,
                            p.num_threads()))
            spent += time.perf_counter_ns() - t0
        cost[0] = time.thread_time() - cpu0
        cost[1] = spent

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    elapsed = time.monotonic() - start
    lag = max(t - (start + (i + 1) * interval) for i, (t, *_) in enumerate(samples))
    return Figures(100 * cost[0] / elapsed, cost[1] / len(samples), lag * 1e3)


def ours(interval: float, seconds: float, uss: bool) -> tuple[Figures, float | None]:
    """ResourceSampler's figures over the same window, and the mean wall ns
    of one USS read when uss."""
    with ResourceSampler(interval, uss=uss) as sampler:
        time.sleep(seconds)
    p = sampler.profile
    assert p is not None and p.sample_cost_us is not None
    figures = Figures(p.overhead_percent, p.sample_cost_us * 1e3, p.max_lag * 1e3)
    return figures, None if p.uss_cost_us is None else p.uss_cost_us * 1e3


def run(cfg: Config) -> list[Row]:
    # the sampler's own reading: status, cpu_times, memory_info, num_threads
    read_one_sample = ResourceSampler(0.1)._read
    proc = psutil.Process()

    def without_oneshot() -> None:
        proc.status()
        proc.cpu_times()
        proc.memory_info()
        proc.num_threads()

    t_sample, t_new_rss, t_rss, t_plain4, t_uss = time_calls(
        [read_one_sample, lambda: psutil.Process().memory_info(), proc.memory_info,
         without_oneshot, proc.memory_full_info], cfg)

    # The sampler's overhead: the samplers in turn, rounds interleaved so
    # that a busy spell of the shared machine hits them alike.
    interval, seconds = 0.1, (0.5 if cfg.quick else 2.0)
    rounds = 2 if cfg.quick else 3
    rss_only: list[Figures] = []
    with_uss: list[Figures] = []
    uss_ns: list[float] = []
    naive: list[Figures] = []
    for _ in range(rounds):
        rss_only.append(ours(interval, seconds, uss=False)[0])
        figures, uss_read = ours(interval, seconds, uss=True)
        with_uss.append(figures)
        assert uss_read is not None
        uss_ns.append(uss_read)
        naive.append(naive_sampler(interval, seconds))

    def timing(values: list[float]) -> Timing:
        values = sorted(values)
        return Timing(values[0], values[len(values) // 2])

    def field(runs: list[Figures], name: str) -> Timing:
        return timing([getattr(f, name) for f in runs])

    section = "15. resource sampling, one reading of this process (vs plain psutil calls)"
    section_b = (f"15b. the sampler at 10 Hz over {seconds:g} s, best of {rounds} "
                 "(vs a naive sleep-then-read sampler thread)")
    return [
        Row("one sample: RSS + CPU times + threads + status, oneshot()", "ns", t_sample,
            t_new_rss, section=section),
        Row("  vs psutil.Process() held: memory_info() alone", "ns", t_sample, t_rss,
            section=section),
        Row("  vs the same four reads without oneshot()", "ns", t_sample, t_plain4,
            section=section),
        Row("USS read memory_full_info() (vs RSS read memory_info())", "ns", t_uss, t_rss,
            section=section),
        Row("sampler overhead, % of one core (uss=False)", "%", field(rss_only, "overhead_percent"),
            field(naive, "overhead_percent"), section=section_b),
        Row("  the same with USS at both ends (default)", "%", field(with_uss, "overhead_percent"),
            field(naive, "overhead_percent"), section=section_b),
        Row("wall time of one sample in the running sampler (cold between ticks)", "ns",
            field(rss_only, "sample_ns"), field(naive, "sample_ns"), section=section_b),
        Row("wall time of one USS read in the running sampler", "ns", timing(uss_ns),
            section=section_b),
        Row("most a sample came after its tick, ms (paced vs sleep drift)", "ms",
            field(rss_only, "lag_ms"), field(naive, "lag_ms"), section=section_b),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter resource sampler benchmarks")
