"""Run every benchmark and print one summary table; --json FILE also writes
the figures (best and median of each) with the environment they came from,
so that the README's figures can be regenerated.

    python benches/run_all.py [--quick] [--json FILE]
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib.metadata import version

import bench_clock
import bench_histogram
import bench_load
import bench_monitor
import bench_regression
import bench_router
import bench_sampling
import bench_timer
import bench_wasm
import caxton_meter
from _util import config, parse_args, print_table

BENCHES = (bench_histogram, bench_timer, bench_clock, bench_router, bench_wasm, bench_load,
           bench_sampling, bench_regression, bench_monitor)


def _section_order(row) -> tuple[int, str]:
    """Sections are numbered "8. ...", "8b. ...", "10. ...": by number, then letter."""
    head = row.section.split(" ", 1)[0].rstrip(".")
    digits = "".join(ch for ch in head if ch.isdigit())
    return (int(digits) if digits else 0, head)


def main() -> None:
    args = parse_args("Run all caxton_meter benchmarks.", with_json=True)
    cfg = config(args.quick)
    rows = []
    for bench in BENCHES:
        print(f"running {bench.__name__} ...", file=sys.stderr, flush=True)
        rows += bench.run(cfg)
    rows.sort(key=_section_order)          # the sort is stable: rows keep their order
    print_table(rows, cfg, "caxton_meter benchmarks")
    if args.json:
        meta = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": cfg.quick, "repeat": cfg.repeat, "figure": "best (min time) of repeat",
            "python": sys.version, "platform": platform.platform(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "versions": {p: version(p) for p in ("caxton_meter", "hdrhistogram", "numpy")},
            "clock_info": caxton_meter.clock_info().as_dict(),
        }
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w") as f:          # atomically: temporary file, then rename
            json.dump({"meta": meta, "rows": [r.as_dict() for r in rows]}, f, indent=1)
        os.replace(tmp, args.json)
        print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
