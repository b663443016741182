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

import psutil

from caxton_meter._sampling import ResourceSampler
from _util import Config, Row, Timing, main, time_calls


def naive_sampler(interval: float, seconds: float) -> tuple[float, int, float]:
    """(CPU % of one core, samples taken, mean wall ns per sample) of the
    sampler one writes first: sleep, read, repeat.  Its ticks drift by the
    cost of each read and each late wake-up."""
    p = psutil.Process()
    p.cpu_percent()                       # primes psutil's previous reading
    samples: list[tuple[float, float, int, int]] = []
    stop = threading.Event()
    cost = [0.0, 0]

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
    start = time.perf_counter()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    return 100 * cost[0] / elapsed, len(samples), cost[1] / max(len(samples), 1)


def ours(interval: float, seconds: float) -> tuple[float, int, float, float]:
    """(overhead % of one core, periodic samples, mean wall ns per sample,
    mean wall ns per USS read) of ResourceSampler over the same window."""
    with ResourceSampler(interval) as sampler:
        time.sleep(seconds)
    p = sampler.profile
    assert p is not None and p.sample_cost_us is not None and p.uss_cost_us is not None
    return (p.overhead_percent, len(p.samples) - 1 + p.missed_ticks,
            p.sample_cost_us * 1e3, p.uss_cost_us * 1e3)


def run(cfg: Config) -> list[Row]:
    sampler = ResourceSampler(0.1)
    sampler.start()                       # _read needs the start reading's state
    sampler.stop()
    read_one_sample = sampler._read       # status, cpu_times, memory_info, num_threads
    proc = psutil.Process()

    def without_oneshot() -> None:
        proc.status()
        proc.cpu_times()
        proc.memory_info()
        proc.num_threads()

    t_sample, t_new_rss, t_rss, t_plain4, t_uss = time_calls(
        [read_one_sample, lambda: psutil.Process().memory_info(), proc.memory_info,
         without_oneshot, proc.memory_full_info], cfg)

    # The sampler's overhead: both samplers in turn, rounds interleaved so
    # that a busy spell of the shared machine hits both alike.
    interval, seconds = 0.1, (0.5 if cfg.quick else 2.0)
    rounds = 2 if cfg.quick else 3
    mine, naive = [], []
    for _ in range(rounds):
        mine.append(ours(interval, seconds))
        naive.append(naive_sampler(interval, seconds))

    def timing(values: list[float]) -> Timing:
        values = sorted(values)
        return Timing(values[0], values[len(values) // 2])

    section = "15. resource sampling, one reading of this process (vs plain psutil calls)"
    section_b = (f"15b. the sampler at 10 Hz over {seconds:g} s, best of {rounds} "
                 "(vs a naive sleep-then-read sampler thread)")
    expected = round(seconds / interval)
    return [
        Row("one sample: RSS + CPU times + threads + status, oneshot()", "ns", t_sample,
            t_new_rss, section=section),
        Row("  vs psutil.Process() held: memory_info() alone", "ns", t_sample, t_rss,
            section=section),
        Row("  vs the same four reads without oneshot()", "ns", t_sample, t_plain4,
            section=section),
        Row("USS read memory_full_info() (vs RSS read memory_info())", "ns", t_uss, t_rss,
            section=section),
        Row("sampler overhead, % of one core", "%", timing([m[0] for m in mine]),
            timing([n[0] for n in naive]), section=section_b),
        Row(f"ticks in the window (intended {expected}; naive drifts)", "",
            max(m[1] for m in mine), max(n[1] for n in naive), section=section_b),
        Row("wall time of one sample inside the running sampler (idle between ticks)", "ns",
            timing([m[2] for m in mine]), timing([n[2] for n in naive]), section=section_b),
        Row("wall time of one USS read inside the sampler (start and end)", "ns",
            timing([m[3] for m in mine]), section=section_b),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter resource sampler benchmarks")
