"""Histogram benchmarks (Part 1, targets 1, 3, 4, 5, and threaded recording),
each against the hdrhistogram package measured in the same run.

    python benches/bench_histogram.py [--quick]
"""
from __future__ import annotations

import threading

from hdrh.histogram import HdrHistogram

from caxton_meter import Histogram, Recorder
from _util import (HIGHEST, LOWEST, SIGFIGS, Config, Row, Timing, latencies, main,
                   time_calls, time_runs)

PERCENTILES = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0]


def _pair() -> tuple[Histogram, HdrHistogram]:
    return Histogram(LOWEST, HIGHEST, SIGFIGS), HdrHistogram(LOWEST, HIGHEST, SIGFIGS)


def bench_record(cfg: Config) -> tuple[list[Row], Timing]:
    """1. record() from Python; returns the package's ns per value too (the
    alternative of the compiled-recording figures)."""
    values = latencies(20_000 if cfg.quick else 100_000).tolist()
    h, hh = _pair()

    # The call is written as users write it (h.record(v), method looked up
    # each time) on both sides; the values vary so that neither side keeps
    # hitting one counter.
    def ours():
        for v in values:
            h.record(v)

    def alt():
        for v in values:
            hh.record_value(v)

    def empty():
        for v in values:
            pass

    # The floor of any one-argument call of a C method from Python.
    d: dict[int, int] = {}

    def floor():
        for v in values:
            d.get(v)

    t_ours, t_alt, t_loop, t_floor = time_runs(
        [(f, len(values)) for f in (ours, alt, empty, floor)], cfg.repeat)
    section = "1. record() from Python, ns per call in a for-loop (vs hdrh record_value)"
    ok = t_alt.best / t_ours.best >= 30
    return [Row("h.record(v)", "ns", t_ours, t_alt, ">=30x, ~<=50 ns", ok, section=section),
            Row("  of which the empty for-loop (Python's share)", "ns", t_loop, section=section),
            Row("  floor: d.get(v), the cheapest C method call", "ns", t_floor, section=section)], t_alt


def bench_record_array(cfg: Config, values, per_value_alt: Timing) -> list[Row]:
    """3. Recording from compiled code: record_array over a large array."""
    h = Histogram(LOWEST, HIGHEST, SIGFIGS)
    n = len(values)
    plain, atomic = time_runs([(lambda: h.record_array(values), n),
                               (lambda: h.record_array(values, atomic=True), n)], cfg.repeat)
    section = (f"3. compiled recording, record_array of {n / 1e6:g}M lognormal int64, "
               "ns per value (vs hdrh record_value loop)")
    return [
        Row("record_array(a)", "ns", plain, per_value_alt, "<=5 ns", plain.best <= 5, section=section),
        Row("record_array(a, atomic=True), no contention", "ns", atomic, per_value_alt, "<=20 ns",
            atomic.best <= 20, section=section),
        Row("record_array(a) throughput", "/s", plain.per_second(), per_value_alt.per_second(),
            ">=100 M/s", 1e9 / plain.best >= 100e6, higher_is_better=True, section=section),
    ]


def bench_queries_and_codec(cfg: Config) -> list[Row]:
    """4. Percentile queries and 5. the codec, on the same data in both."""
    values = latencies(100_000 if cfg.quick else 1_000_000, seed=3)
    h, hh = _pair()
    h.record_array(values)
    for v in values.tolist():
        hh.record_value(v)

    alt_dict = hh.get_percentile_to_value_dict(PERCENTILES)
    same = (h.percentiles(PERCENTILES) == [alt_dict[p] for p in PERCENTILES]
            and all(h.value_at_percentile(p) == hh.get_value_at_percentile(p) for p in PERCENTILES))
    vap, vap_alt, pct, pct_alt = time_calls([
        lambda: h.value_at_percentile(99.9), lambda: hh.get_value_at_percentile(99.9),
        lambda: h.percentiles(PERCENTILES), lambda: hh.get_percentile_to_value_dict(PERCENTILES),
    ], cfg)
    s4 = (f"4. queries on a ({LOWEST}, {HIGHEST:.2g}, {SIGFIGS}) histogram of {len(values) / 1e6:g}M "
          "values, per call (vs hdrh)")
    rows = [
        Row("value_at_percentile(99.9)", "ns", vap, vap_alt, ">=100x",
            vap_alt.best / vap.best >= 100, section=s4),
        Row(f"percentiles({len(PERCENTILES)} values) vs get_percentile_to_value_dict", "ns", pct,
            pct_alt, ">=100x", pct_alt.best / pct.best >= 100, section=s4),
        Row("  results equal to the package's", "", same, None, "equal", same, section=s4),
    ]

    encoded, encoded_alt = h.encode(), hh.encode()        # str; the package's is bytes
    identical = encoded == encoded_alt.decode("ascii")
    round_trip = Histogram.decode(encoded_alt) == h
    enc, enc_alt, dec, dec_alt = time_calls([
        h.encode, hh.encode,
        lambda: Histogram.decode(encoded), lambda: HdrHistogram.decode(encoded_alt),
    ], cfg)
    s5 = f"5. codec, same histogram ({len(encoded):,} base64 chars), per call (vs hdrh)"
    return rows + [
        Row("encode()", "ns", enc, enc_alt, ">=1x", enc_alt.best >= enc.best, section=s5),
        Row("Histogram.decode(s)", "ns", dec, dec_alt, ">=1x", dec_alt.best >= dec.best, section=s5),
        Row("  encode() string identical to the package's", "", identical, None, "equal",
            identical, section=s5),
        Row("  decode(package's string) == original", "", round_trip, None, "equal",
            round_trip, section=s5),
    ]


def _in_threads(*calls) -> None:
    threads = [threading.Thread(target=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def bench_threads(cfg: Config, values) -> list[Row]:
    """Concurrent atomic recording, and a Recorder read while it is written.
    The alternative is the same work without the concurrency, so the ratio is
    what the concurrency gains or costs.  Thread start-up (~0.1 ms) is inside
    the timing: it is <1% of a run."""
    n = len(values)
    halves = values[: n // 2], values[n // 2:]
    one, shared = Histogram(LOWEST, HIGHEST, SIGFIGS), Histogram(LOWEST, HIGHEST, SIGFIGS)
    own = Histogram(LOWEST, HIGHEST, SIGFIGS), Histogram(LOWEST, HIGHEST, SIGFIGS)
    t_one, t_shared, t_own = time_runs([
        (lambda: one.record_array(values, atomic=True), n),
        (lambda: _in_threads(*(lambda a=a: shared.record_array(a, atomic=True)
                               for a in halves)), n),
        # a histogram per thread: the hardware's parallelism without the
        # cache-line traffic of shared counters
        (lambda: _in_threads(*(lambda h=h, a=a: h.record_array(a, atomic=True)
                               for h, a in zip(own, halves))), n),
    ], cfg.repeat)

    # The writer records the array several times so that a run spans enough
    # 10 ms reads to matter.
    rounds = max(1, (10_000_000 if cfg.quick else 50_000_000) // n)
    recorder = Recorder(LOWEST, HIGHEST, SIGFIGS)
    counted, reads = 0, 0

    def write():
        for _ in range(rounds):
            recorder.record_array(values)

    def write_while_read():
        done = threading.Event()

        def reader():
            nonlocal counted, reads
            while not done.wait(0.010):
                counted += recorder.interval_histogram().total_count
                reads += 1
        t = threading.Thread(target=reader)
        t.start()
        write()
        done.set()
        t.join()

    t_read, t_alone = time_runs([(write_while_read, n * rounds), (write, n * rounds)], cfg.repeat)
    counted += recorder.interval_histogram().total_count
    all_counted = (counted == 2 * n * rounds * cfg.repeat
                   and one.total_count == shared.total_count == n * cfg.repeat)
    section = "7. threads, values/s (vs the same work without concurrency)"
    return [
        Row(f"record_array(atomic), {n / 1e6:g}M: 2 threads into 1 histogram vs 1 thread", "/s",
            t_shared.per_second(), t_one.per_second(), "- (ideal 2x)", higher_is_better=True,
            section=section),
        Row("  2 threads, a histogram each, vs 1 thread", "/s", t_own.per_second(),
            t_one.per_second(), "- (ideal 2x)", higher_is_better=True, section=section),
        Row(f"Recorder.record_array, {n * rounds / 1e6:g}M: reader every 10 ms "
            f"({reads / cfg.repeat:.0f} reads/run) vs none", "/s", t_read.per_second(),
            t_alone.per_second(), "-", higher_is_better=True, section=section),
        Row("  every value counted once (threads, Recorder intervals)", "", all_counted, None,
            "equal", all_counted, section=section),
    ]


def run(cfg: Config) -> list[Row]:
    rows, per_value_alt = bench_record(cfg)
    values = latencies(1_000_000 if cfg.quick else 10_000_000, seed=2)
    rows += bench_record_array(cfg, values, per_value_alt)
    rows += bench_queries_and_codec(cfg)
    rows += bench_threads(cfg, values)
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter histogram benchmarks")
