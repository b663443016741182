"""Load beyond one process (Part 10): run_distributed on a Dask LocalCluster
of 2 worker processes against nginx on the loopback, beside the same load
from this process alone (load_network) and from 2 processes of
run_processes, measured in the same run.

- The merged run against the rate asked: achieved rate, planned arrivals
  (the schedule's exactly, whatever the split), dropped and failed.
- The clocks: each worker's offset and its uncertainty (half the shortest of
  16 round trips through the scheduler), and the start skew achieved.
- The control plane's cost: seconds from the call to the common start
  (clock exchange and the lead), beside run_processes's start (spawning
  its processes and loading the target).

    python benches/bench_distributed.py [--quick]
"""
from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import distributed

from caxton_meter import HttpTarget, load_network, run_distributed, run_processes
from _util import Config, Row, Timing, main

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from nginx_server import Nginx  # noqa: E402

RATE = 10_000
CONNECTIONS = 16


def run(cfg: Config) -> list[Row]:
    seconds = 2 if cfg.quick else 5
    repeats = 2 if cfg.quick else 3
    section = (f"22. beyond one process: {RATE:,}/s for {seconds} s against nginx, "
               f"{CONNECTIONS} connections in all (vs one process; vs run_processes)")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        nginx = Nginx(pathlib.Path(tmp))
        try:
            with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                          dashboard_address="127.0.0.1:0", host="127.0.0.1",
                                          scheduler_port=0) as lc, \
                    distributed.Client(lc) as client:
                dist, alone, procs = [], [], []
                for _ in range(repeats):
                    called = time.monotonic()
                    r = run_distributed(HttpTarget(nginx.url, connections=CONNECTIONS),
                                        rate=RATE, duration=seconds, cluster=client)
                    dist.append((r, time.monotonic() - called))
                    alone.append(load_network(HttpTarget(nginx.url, connections=CONNECTIONS),
                                              rate=RATE, duration=seconds))
                    called = time.monotonic()
                    p = run_processes(HttpTarget(nginx.url, connections=CONNECTIONS), rate=RATE,
                                      duration=seconds, processes=2)
                    procs.append((p, time.monotonic() - called - p.elapsed_ns / 1e9))
        finally:
            nginx.stop()
    planned = RATE * seconds
    best = max(dist, key=lambda d: d[0].result.achieved_rate)[0]
    rows.append(Row("achieved rate, merged (best run)", "req/s",
                    Timing(best.result.achieved_rate, best.result.achieved_rate),
                    Timing(max(a.achieved_rate for a in alone),
                           max(a.achieved_rate for a in alone)),
                    "within 1 % of asked",
                    all(abs(d.result.achieved_rate - RATE) / RATE <= 0.01 for d, _ in dist),
                    higher_is_better=True, section=section))
    rows.append(Row("planned arrivals (every run; the schedule's own)", "count",
                    ", ".join(f"{d.result.planned:,}" for d, _ in dist),
                    ", ".join(f"{a.planned:,}" for a in alone), f"{planned:,}",
                    all(d.result.planned == planned for d, _ in dist), section=section))
    rows.append(Row("dropped / failed, over the runs", "count",
                    f"{sum(d.result.dropped for d, _ in dist)} / "
                    f"{sum(d.result.failed for d, _ in dist)}",
                    f"{sum(a.dropped for a in alone)} / {sum(a.failed for a in alone)}",
                    section=section))
    rows.append(Row("p50 / p99 from intended starts, merged (best run)", "ms",
                    "{:.2f} / {:.2f}".format(*(v / 1e6 for v in
                                               best.result.latency.percentiles([50, 99]))),
                    "{:.2f} / {:.2f}".format(*(v / 1e6 for v in
                                               alone[0].latency.percentiles([50, 99]))),
                    section=section))
    offsets = [w for d, _ in dist for w in d.workers]
    rows.append(Row("clock offsets, each worker (us, ± uncertainty)", "us",
                    "; ".join(f"{w.offset_ns / 1e3:+.0f} ± {w.uncertainty_ns / 1e3:.0f}"
                              for w in offsets), section=section))
    rows.append(Row("start skew, each worker (us)", "us",
                    ", ".join(f"{w.start_skew_ns / 1e3:+.0f}" for w in offsets
                              if w.start_skew_ns is not None), section=section))
    setup = [d.setup_seconds for d, _ in dist]
    spawn = [s for _, s in procs]
    rows.append(Row("control plane: seconds from the call to the start (the lead of 1 s in it)",
                    "s", Timing(min(setup), sorted(setup)[len(setup) // 2]),
                    Timing(min(spawn), sorted(spawn)[len(spawn) // 2]), "stated", None,
                    section=section))
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter distributed-load benchmark (alternative: one process; "
              "run_processes for the start)")
