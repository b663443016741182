"""Load runs as interval logs, and interval logs merged: distributed load
without a cluster engine.

Each machine runs its share of one schedule (a stripe, caxton_meter.stripes,
starting at an agreed time) and writes its run with :func:`write_load_log`:
an HdrHistogram interval log (``.hlog``, Java's format 1.3; every tool that
reads interval logs reads it) whose intervals carry wall-clock times, and
whose header carries the run's counts in one comment line that other
readers ignore::

    #[caxton_meter load: planned=50000 requests=50000 completed=49990 failed=10 dropped=0 duration_ns=10000000000 source=host-a]

:func:`merge_logs` (``caxton-meter merge A.hlog B.hlog ...``) reads them
back and merges exactly: the histograms add bucket for bucket, the counts
add, and the intervals are laid on one wall-clock timeline (the logs' own
absolute times) in steps of the shortest interval length.  A log without
the counts line (written by another tool) is merged for its latencies
only, and the merge says so.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._core import Histogram, OpenLoopResult, latency_histogram
from ._hdrlog import HistogramLogError, HistogramLogReader, HistogramLogWriter

__all__ = ["LogPart", "MergedLogs", "merge_logs", "write_load_log"]

_COUNTS = re.compile(r"^#\[caxton_meter load: (?P<fields>[^\]]*)\]\s*$")
_COUNT_NAMES = ("planned", "requests", "completed", "failed", "dropped", "duration_ns")


def write_load_log(result: OpenLoopResult, path: str | os.PathLike[str], *,
                   start_time: float, tag: str | None = None) -> None:
    """Write ``result``'s intervals to the interval log ``path``, the run
    having started at ``start_time`` (seconds since the epoch: time.time()
    when the loop began), with its counts in the header.  A result without
    intervals gets one interval holding its whole latency histogram."""
    if not isinstance(result, OpenLoopResult):
        raise TypeError(f"write_load_log: result must be an OpenLoopResult, not "
                        f"{type(result).__name__}")
    if not (isinstance(start_time, (int, float)) and math.isfinite(start_time)):
        raise ValueError(f"write_load_log: start_time must be seconds since the epoch, got "
                         f"{start_time!r}")
    source = (result.source or "").replace("]", ")").replace("\n", " ")
    counts = " ".join(f"{name}={getattr(result, name)}" for name in _COUNT_NAMES)
    with HistogramLogWriter(path) as log:
        log.write_header(start_time, base_time=start_time,
                         comment=f"[caxton_meter load: {counts} source={source}]")
        if result.intervals:
            t0 = result.intervals[0].start_ns
            for iv in result.intervals:
                log.output_interval_histogram(iv.latency,
                                              start_time=start_time + (iv.start_ns - t0) / 1e9,
                                              end_time=start_time + (iv.end_ns - t0) / 1e9,
                                              tag=tag)
        else:
            log.output_interval_histogram(result.latency, start_time=start_time,
                                          end_time=start_time + result.elapsed_ns / 1e9, tag=tag)


@dataclass(frozen=True)
class LogPart:
    """One log of a merge: its path, start time, intervals, latency
    histogram (the sum of its intervals) and counts (None when the log
    does not carry caxton_meter's counts line)."""
    path: str
    start_time: float
    intervals: tuple[Histogram, ...]
    latency: Histogram
    counts: dict[str, int] | None
    source: str


@dataclass(frozen=True)
class MergedLogs:
    """Interval logs merged: ``latency`` (every interval of every log,
    bucket for bucket), ``counts`` (summed over the logs that carry them;
    None if none does), ``series`` [(start, end, histogram), ...] on the
    common wall-clock timeline, in steps of ``step`` seconds, and ``parts``
    (each log on its own)."""
    latency: Histogram
    counts: dict[str, int] | None
    series: tuple[tuple[float, float, Histogram], ...]
    step: float
    parts: tuple[LogPart, ...]

    @property
    def start_skew(self) -> float:
        """The spread of the logs' start times, in seconds."""
        starts = [p.start_time for p in self.parts]
        return max(starts) - min(starts)

    @property
    def without_counts(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.parts if p.counts is None)


def _read_counts(path: str) -> tuple[dict[str, int] | None, str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                break
            m = _COUNTS.match(line)
            if m is None:
                continue
            fields = m.group("fields")
            head, _, source = fields.partition(" source=")
            counts: dict[str, int] = {}
            for item in head.split():
                name, sep, value = item.partition("=")
                if not sep or not value.isdigit():
                    raise HistogramLogError(f"the counts line holds {item!r}, not name=count",
                                            path=path)
                counts[name] = int(value)
            missing = [n for n in _COUNT_NAMES if n not in counts]
            if missing:
                raise HistogramLogError(f"the counts line lacks {', '.join(missing)}", path=path)
            if counts["planned"] != counts["requests"] + counts["dropped"]:
                raise HistogramLogError(f"the counts line's planned ({counts['planned']}) is not "
                                        f"requests + dropped", path=path)
            return counts, source
    return None, ""


def merge_logs(paths: Sequence[str | os.PathLike[str]]) -> MergedLogs:
    """Merge the interval logs at ``paths`` (see the module docstring).
    Raises HistogramLogError naming the file for one that cannot be read,
    and ValueError for no paths or a path given twice."""
    names = [os.fspath(p) for p in paths]
    if not names:
        raise ValueError("merge_logs: no logs to merge")
    seen = set()
    for name in names:
        real = os.path.realpath(name)
        if real in seen:
            raise ValueError(f"merge_logs: {name} is given twice; each log is merged once")
        seen.add(real)
    parts = []
    for name in names:
        counts, source = _read_counts(name)
        with HistogramLogReader(name) as reader:
            intervals = tuple(reader)
            start = reader.start_time
        total = latency_histogram()
        for h in intervals:
            total.add(h)
        parts.append(LogPart(name, start, intervals, total, counts, source))
    latency = latency_histogram()
    for part in parts:
        latency.add(part.latency)
    with_counts = [p.counts for p in parts if p.counts is not None]
    counts = ({n: sum(c[n] for c in with_counts) for n in _COUNT_NAMES[:-1]}
              if with_counts else None)
    if counts is not None:
        counts["duration_ns"] = max(c["duration_ns"] for c in with_counts)
    every = [h for p in parts for h in p.intervals]
    series: list[tuple[float, float, Histogram]] = []
    step = 0.0
    if every:
        lengths = [h.end_time - h.start_time for h in every if h.end_time > h.start_time]
        step = min(lengths) if lengths else 1.0
        origin = min(h.start_time for h in every)
        buckets: dict[int, Histogram] = {}
        for h in every:
            k = int(round((h.start_time - origin) / step, 6) // 1)
            buckets.setdefault(k, latency_histogram()).add(h)
        series = [(origin + k * step, origin + (k + 1) * step, buckets[k])
                  for k in sorted(buckets)]
    return MergedLogs(latency, counts, tuple(series), step, tuple(parts))


# --- the command: caxton-meter merge ------------------------------------------------------

_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _t(ns: float) -> str:
    from ._units import format_quantity
    return format_quantity(ns, "ns")


def _summary(h: Histogram) -> dict[str, int]:
    values = h.percentiles(list(_PERCENTILES)) if h.total_count else [0] * len(_PERCENTILES)
    out: dict[str, int] = {"count": h.total_count}
    out.update({f"p{p:g}": v for p, v in zip(_PERCENTILES, values)})
    out["max"] = h.max if h.total_count else 0
    return out


def _as_json(merged: MergedLogs) -> dict[str, object]:
    return {
        "format": 1,
        "latency": _summary(merged.latency),
        "latency_histogram": merged.latency.encode(),
        "counts": merged.counts,
        "start_skew_seconds": merged.start_skew,
        "step_seconds": merged.step,
        "series": [{"start": a, "end": b, **_summary(h)} for a, b, h in merged.series],
        "parts": [{"path": p.path, "start_time": p.start_time, "source": p.source,
                   "intervals": len(p.intervals), "counts": p.counts, **_summary(p.latency)}
                  for p in merged.parts],
    }


def _as_text(merged: MergedLogs) -> str:
    import datetime

    lines = [f"merged {len(merged.parts)} interval logs; their start times lie within "
             f"{merged.start_skew * 1e3:,.3f} ms"]
    for p in merged.parts:
        s = _summary(p.latency)
        when = datetime.datetime.fromtimestamp(p.start_time, datetime.timezone.utc)
        counts = ("no caxton_meter counts" if p.counts is None else
                  f"planned {p.counts['planned']:,}, sent {p.counts['requests']:,}, completed "
                  f"{p.counts['completed']:,}, failed {p.counts['failed']:,}, dropped "
                  f"{p.counts['dropped']:,}")
        lines.append(f"  {p.path}{' (' + p.source + ')' if p.source else ''}: started "
                     f"{when:%Y-%m-%d %H:%M:%S.%f} UTC, {len(p.intervals)} intervals, "
                     f"{s['count']:,} latencies, p50 {_t(s['p50'])}, p99 {_t(s['p99'])}, "
                     f"max {_t(s['max'])}; {counts}")
    s = _summary(merged.latency)
    lines.append(f"merged: {s['count']:,} latencies: p50 {_t(s['p50'])}, p90 {_t(s['p90'])}, "
                 f"p99 {_t(s['p99'])}, p99.9 {_t(s['p99.9'])}, max {_t(s['max'])}")
    if merged.counts is not None:
        c = merged.counts
        lines.append(f"  planned {c['planned']:,}, sent {c['requests']:,}, completed "
                     f"{c['completed']:,}, failed {c['failed']:,}, dropped {c['dropped']:,}")
    for path in merged.without_counts:
        lines.append(f"  note: {path} carries no caxton_meter counts line: its latencies are "
                     f"merged, what it sent, dropped or failed is not known")
    if merged.series:
        origin = merged.series[0][0]
        lines.append(f"per interval (steps of {merged.step:.3f} s on the logs' common clock):")
        for a, _, h in merged.series:
            s = _summary(h)
            lines.append(f"  +{a - origin:8.3f} s  {s['count']:>10,}  p50 {_t(s['p50']):>10}  "
                         f"p99 {_t(s['p99']):>10}  max {_t(s['max']):>10}")
    return "\n".join(lines)


def main_merge(argv: list[str], prog: str) -> int:
    """``merge A.hlog B.hlog ...``: merge interval logs written by several
    machines (or any tool writing HdrHistogram interval logs) and report
    the merged latencies, counts and per-interval series.  Exit 0; 2 for a
    usage error or a log that cannot be read."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(
        prog=prog, description="Merge HdrHistogram interval logs (.hlog) exactly: the "
        "histograms add bucket for bucket, caxton_meter's counts add, and the intervals are "
        "laid on the logs' common wall-clock timeline.")
    parser.add_argument("logs", metavar="LOG", nargs="+", help="an interval log (.hlog)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="also write the merged intervals as one interval log")
    args = parser.parse_args(argv)
    if args.output is not None and os.path.exists(args.output):
        print(f"{prog}: error: --output {args.output} exists; give a new file", file=sys.stderr)
        return 2
    try:
        merged = merge_logs(args.logs)
    except (OSError, ValueError) as e:      # HistogramLogError is a ValueError
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if args.output is not None:
        start = merged.series[0][0] if merged.series else min(p.start_time for p in merged.parts)
        with HistogramLogWriter(args.output) as log:
            log.write_header(start, base_time=start,
                             comment=f"[merged by caxton_meter from {len(merged.parts)} logs]")
            for a, b, h in merged.series:
                log.output_interval_histogram(h, start_time=a, end_time=b, tag=None)
    print(json.dumps(_as_json(merged), indent=2) if args.json else _as_text(merged))
    return 0
