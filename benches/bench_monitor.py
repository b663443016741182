"""Production monitor benchmarks (Part 5): what monitoring costs the recording
path -- Recorder.record() per call with a Monitor polling it every 10 ms in a
background thread against the same calls without a monitor, the two sides
interleaved in one run -- and what one poll costs (the interval swap,
percentiles, three threshold checks and the encoded histogram) against what a
Python user would write instead: a lock-protected list of latencies that the
poller swaps out and sorts for its percentiles (and, second, the same list
handed to numpy.percentile), both at the same values per interval.

While a Python thread records flat out, a poll takes a few GIL switch
intervals of wall time (5 ms each): the swap waits for writers without the
GIL, and getting it back takes a switch interval.  The writer is not slowed;
the poll is late, which is why the monitor polls fewer times than 10 ms
ticks during a loop.  Idle, a poll of 100k values takes the figure below.

    python benches/bench_monitor.py [--quick]
"""
from __future__ import annotations

import gc
import math
import statistics
import threading
import time
from typing import Callable

import numpy as np

from caxton_meter import Recorder
from caxton_meter._monitor import Monitor
from _util import HIGHEST, LOWEST, SIGFIGS, Config, Row, Timing, latencies, main

SECTION = "17. production monitor (vs no monitor; vs a locked list sorted per poll)"
PERCENTS = (50.0, 90.0, 99.0, 99.9)


class ListPoller:
    """The monitor a Python user writes first: writers append to a list
    under a lock; the poller swaps the list out, sorts it and reads the
    percentiles (nearest rank), max and mean, and checks its thresholds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: list[int] = []

    def record(self, value: int) -> None:
        with self.lock:
            self.values.append(value)

    def poll(self) -> dict[str, float]:
        with self.lock:
            values, self.values = self.values, []
        values.sort()
        n = len(values)
        if n == 0:
            return {}
        out: dict[str, float] = {f"p{p:g}": values[max(0, math.ceil(p / 100 * n) - 1)]
                                 for p in PERCENTS}
        out["max"] = values[-1]
        out["mean"] = sum(values) / n
        alerts = (out["p99"] >= 10e6, out["p99.9"] >= 50e6, out["max"] >= 1e9)
        out["alerts"] = sum(alerts)
        return out

    def start(self, interval: float) -> None:
        """Poll every `interval` seconds in a thread (sleep-paced), as the
        Monitor's thread does; stop() ends it."""
        self.polls = 0
        self.done = threading.Event()

        def run() -> None:
            while not self.done.wait(interval):
                self.poll()
                self.polls += 1

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def poll_numpy(self) -> dict[str, float]:
        with self.lock:
            values, self.values = self.values, []
        a = np.array(values, dtype=np.int64)
        ps = np.percentile(a, PERCENTS, method="inverted_cdf")
        out = {f"p{p:g}": float(v) for p, v in zip(PERCENTS, ps)}
        out["max"] = float(a.max())
        out["mean"] = float(a.mean())
        alerts = (out["p99"] >= 10e6, out["p99.9"] >= 50e6, out["max"] >= 1e9)
        out["alerts"] = sum(alerts)
        return out


def timing(samples: list[float]) -> Timing:
    return Timing(min(samples), statistics.median(samples))


def interleaved(sides: list[tuple[Callable[[], object], Callable[[], float]]],
                rounds: int) -> list[Timing]:
    """ns of each side's measure() over `rounds` rounds, the sides in turn
    (A B A B ...), each after its untimed setup(); the collector off."""
    samples: list[list[float]] = [[] for _ in sides]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for (setup, measure), out in zip(sides, samples):
                setup()
                out.append(measure())
    finally:
        if was_enabled:
            gc.enable()
    return [timing(s) for s in samples]


def recording_cost(cfg: Config) -> tuple[Timing, Timing, Timing, int, int, int]:
    """ns per record() with a monitor polling every 10 ms and without one,
    and ns per ListPoller.record() with its poller thread at 10 ms; the
    fewest polls the monitor and the list poller took during one timed loop,
    and how many values one loop records."""
    values = latencies(200_000).tolist()
    passes = 20 if cfg.quick else 60          # one loop: ~0.1 s / ~0.3 s of record() calls
    n = passes * len(values)
    monitor_polls: list[int] = []
    list_polls: list[int] = []

    def loop(record: Callable[[int], None]) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(passes):
            for v in values:
                record(v)
        return (time.perf_counter_ns() - t0) / n

    def without() -> float:
        return loop(Recorder(LOWEST, HIGHEST, SIGFIGS).record)

    def with_monitor() -> float:
        recorder = Recorder(LOWEST, HIGHEST, SIGFIGS)
        monitor = Monitor(interval=0.01)
        monitor.watch("api", recorder)
        monitor.threshold("api", "p99 < 10ms")
        polls: list[object] = []
        monitor.on_snapshot(polls.append)
        monitor.start()
        try:
            ns = loop(recorder.record)
            monitor_polls.append(len(polls))
            return ns
        finally:
            monitor.stop()

    def with_list_poller() -> float:
        poller = ListPoller()
        poller.start(0.01)
        try:
            ns = loop(poller.record)
            list_polls.append(poller.polls)
            return ns
        finally:
            poller.stop()

    def nothing() -> None:
        pass

    t_with, t_without, t_list = interleaved(
        [(nothing, with_monitor), (nothing, without), (nothing, with_list_poller)], cfg.repeat)
    return t_with, t_without, t_list, min(monitor_polls), min(list_polls), n


def poll_cost(cfg: Config, per_interval: int) -> tuple[Timing, Timing, Timing, Timing]:
    """ns per poll of `per_interval` values: the Monitor (one watch, three
    thresholds), the sorting ListPoller and its numpy variant; and ns of the
    interval histogram's encode() alone (part of the Monitor's poll)."""
    values = latencies(per_interval, seed=2)
    as_list = values.tolist()
    recorder = Recorder(LOWEST, HIGHEST, SIGFIGS)
    monitor = Monitor()
    monitor.watch("api", recorder)
    monitor.threshold("api", "p99 < 10ms")
    monitor.threshold("api", "p(99.9) < 50ms")
    monitor.threshold("api", "max < 1s")
    sorting, with_numpy = ListPoller(), ListPoller()
    monitor.poll()                          # the first poll allocates the spare histogram

    def timed(poll: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            t0 = time.perf_counter_ns()
            poll()
            return float(time.perf_counter_ns() - t0)
        return measure

    def fill_recorder() -> None:
        recorder.record_array(values)

    def fill(poller: ListPoller) -> Callable[[], None]:
        def setup() -> None:
            with poller.lock:
                poller.values.extend(as_list)
        return setup

    encoded = recorder.interval_histogram()   # the encode() inside a poll, alone

    def fill_encoded() -> None:
        encoded.reset()
        encoded.record_array(values)

    rounds = cfg.repeat * (5 if cfg.quick else 10)
    ours, t_sort, t_numpy, t_encode = interleaved(
        [(fill_recorder, timed(monitor.poll)), (fill(sorting), timed(sorting.poll)),
         (fill(with_numpy), timed(with_numpy.poll_numpy)),
         (fill_encoded, timed(encoded.encode))], rounds)
    # both sides read the same percentiles (within the histogram's 3 digits)
    snapshot = monitor.latest["api"]
    check = ListPoller()
    check.values = list(as_list)
    exact = check.poll()
    assert abs(snapshot.p99 - exact["p99"]) <= exact["p99"] * 1e-3 + 1, (snapshot, exact)
    assert snapshot.count == per_interval
    return ours, t_sort, t_numpy, t_encode


def run(cfg: Config) -> list[Row]:
    t_with, t_without, t_list, monitor_polls, list_polls, n = recording_cost(cfg)
    per_interval = 100_000
    t_poll, t_sort, t_numpy, t_encode = poll_cost(cfg, per_interval)
    return [
        Row("Recorder.record(), monitor polling every 10 ms (vs no monitor)", "ns", t_with,
            t_without, section=SECTION),
        Row("  vs the list poller's record() (lock + append), polled every 10 ms", "ns",
            t_with, t_list, section=SECTION),
        Row(f"  polls during one loop of {n / 1e6:g}M calls, fewest (monitor vs list poller)",
            "", monitor_polls, list_polls, section=SECTION),
        Row(f"poll(), {per_interval // 1000}k values: swap + percentiles + 3 thresholds "
            "+ encode (vs locked list, sort)", "ns", t_poll, t_sort, section=SECTION),
        Row("  vs the locked list handed to numpy.percentile", "ns", t_poll, t_numpy,
            section=SECTION),
        Row("  of which the snapshot's Histogram.encode()", "ns", t_encode, section=SECTION),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter production monitor benchmarks")
