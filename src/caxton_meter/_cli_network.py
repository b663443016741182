"""The command line's network commands: ``caxton-meter http URL`` (a
wrk2-style load of one HTTP server) and ``caxton-meter capacity --target
URL --slo EXPR`` (the highest rate at which the server keeps an SLO).

One job each: turn options into an HttpTarget and a run of the core's
network loop (:func:`caxton_meter.load_network`) or a capacity search
(:func:`caxton_meter.find_capacity`), print what happened and return an
exit code.  Every option is checked before anything is sent.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ._cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    _checks_rate,
    _checks_seconds,
    _Parser,
    _positive,
    _quantity,
    _see_help,
    _Usage,
)

__all__ = ["main_capacity", "main_http"]

HTTP_FORMAT_VERSION = 1
# The http command's --json document:
#   {"kind": "caxton_meter.http", "format": 1, "url", "method",
#    "mode": "open" | "closed", "rate": asked per second (null when closed),
#    "duration", "connections", "planned", "requests", "completed", "failed",
#    "dropped", "in_flight", "achieved_rate", "intended_rate",
#    "completed_per_second", "kept_schedule", "schedule_note" (or null),
#    "latency", "latency_uncorrected", "connect_time": {"p50", "p90", "p99",
#    "p99.9", "max", "mean", "count"} in ns,
#    "status_classes", "errors", "connection_errors": {name: count},
#    "bytes_sent", "bytes_received", "interrupted", "deadline_reached",
#    "exit_code", "histograms": {"latency", "latency_uncorrected",
#    "connect_time": HdrHistogram V2 encodings}}
# History:
#   1: the first version.

_PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)

_HTTP_EPILOG = """\
The load is an open loop, as wrk2's: requests are due at --rate whatever the
server does, and each one's latency counts from when it was due (its intended
start), so a server that stalls is not let off by the client waiting for it
(coordinated omission).  The latency from the real send is printed beside it.
A request due while every connection is busy waits for one (its wait is in its
latency); beyond --max-queue waiting the backlog is dropped and counted.
--closed runs wrk's closed loop instead: each connection sends again when its
reply is in, and the figure is the throughput.

Beyond one machine: --cluster tcp://HOST:8786 runs the load on the workers of
a Dask cluster (--workers N of them; pip install 'caxton_meter[dask]'), each
taking its stripe of the one schedule, started together and merged exactly;
the report adds each worker's clock offset and start skew.  Without a cluster,
run --share I/N --start-at UNIX_TIME --hlog FILE on each of N machines and
merge the logs with `caxton-meter merge`.

exit codes:
  0    every request completed with a 2xx reply, nothing was dropped and the
       loop kept its schedule (the rate achieved within 1 % of the rate asked)
  1    a request failed (a non-2xx reply, a timeout, a refused or reset
       connection...), arrivals were dropped, the loop fell behind its
       schedule, or --json could not be written (the result is printed)
  2    a usage error (the message names the option); nothing was sent
  130  interrupted (Ctrl-C): the partial result is printed
"""

_CAPACITY_EPILOG = """\
The search offers the server steps of constant arrival rate (open loops,
latency from each request's intended start): rising by --factor from
--start-rate until a step fails, then bisecting between the highest passing
and the lowest failing rate until they are within --precision.  A step passes
when every --slo holds AND the loop held the rate: achieved within 1 % of the
rate asked, nothing dropped, at most --max-error-rate of the requests failed.
Each step lasts until --tail-samples requests (50) lie beyond the SLO's
percentile (p99: 5,000 requests; p99.9: 50,000), --min-step at least.  The
knee is the rate above which that percentile stays at or over --knee-factor
times its value at the lowest rate measured.  docs/capacity.md explains the
method.

exit codes:
  0    a capacity was found (at least --min-capacity, when given)
  1    no rate passed, the capacity is below --min-capacity, or --output or
       --json could not be written (the steps are printed)
  2    a usage error (the message names the option); nothing was sent
  130  interrupted (Ctrl-C): the steps so far are printed
"""


# -- the HTTP target's options ----------------------------------------------------------------

def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write 'Name: value'")
    return name.strip(), value.strip()


def _target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the request")
    g.add_argument("--connections", "-c", type=_positive(int), default=50, metavar="N",
                   help="keep-alive connections, opened before the load (default 50)")
    g.add_argument("--method", "-m", default="GET", help="the HTTP method (default GET)")
    g.add_argument("--header", "-H", type=_header, action="append", default=[],
                   metavar="'NAME: VALUE'", help="a request header (repeatable)")
    g.add_argument("--body", "-b", default=None, metavar="TEXT|@FILE",
                   help="the request body: the text, or @FILE for a file's bytes "
                        "(Content-Length is set)")
    g.add_argument("--timeout", type=_quantity(_checks_seconds), default=10.0,
                   metavar="SECONDS", help="a request fails after this long (default 10s)")


def _http_target(args: argparse.Namespace, url: str, option: str) -> Any:
    """The HttpTarget the options describe; _Usage naming what is wrong."""
    from ._checks import ArgumentError, ArgumentTypeError
    from ._network import HttpTarget
    body = b""
    if args.body is not None:
        if args.body.startswith("@"):
            try:
                body = Path(args.body[1:]).read_bytes()
            except OSError as e:
                raise _Usage(f"--body {args.body}: cannot be read "
                             f"({e.strerror or e})") from None
        else:
            body = args.body.encode("utf-8")
    try:
        HttpTarget(url)                 # the URL alone first: its error names the option
    except (ArgumentError, ArgumentTypeError) as e:
        raise _Usage(f"{option} {url}: " + str(e).removeprefix("HttpTarget: ")) from None
    try:
        return HttpTarget(url, method=args.method, headers=args.header, body=body,
                          connections=args.connections, timeout=args.timeout)
    except (ArgumentError, ArgumentTypeError) as e:
        raise _Usage(str(e).removeprefix("HttpTarget: ")) from None


def _check_file(option: str, path: str | None) -> Path | None:
    """A file the command will write, checked before anything is sent
    ("-" is the standard output)."""
    if path is None or path == "-":
        return None
    import os
    p = Path(path)
    if p.is_dir():
        raise _Usage(f"{option} {path}: is a folder; give a file name")
    existing = p.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _Usage(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _Usage(f"{option} {path}: {existing} is not writable")
    return p


def _write(option: str, path: str, text: str, out: TextIO, err: TextIO) -> bool:
    """``text`` to ``path`` (or the standard output for "-"); False, with
    an error printed, when it cannot be written."""
    if path == "-":
        out.write(text)
        return True
    from ._results import write_atomic
    try:
        write_atomic(path, text)
    except OSError as e:
        print(f"error: {option} {path} could not be written: {e.strerror or e}", file=err)
        return False
    return True


def _usage(prog: str, e: Exception) -> int:
    print(f"{prog}: error: {e}\n{_see_help(prog)}", end="", file=sys.stderr)
    return EXIT_USAGE


# -- http ---------------------------------------------------------------------------------------

def _http_parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Load one HTTP/1.1 server on this machine's loopback from the "
                            "compiled core's network loop, as wrk2 does: a constant arrival "
                            "rate over keep-alive connections, latency from each request's "
                            "intended start.",
                epilog=_HTTP_EPILOG)
    p.add_argument("url", metavar="URL", help="http://127.0.0.1:PORT/PATH (or localhost)")
    g = p.add_argument_group("the load")
    g.add_argument("--rate", "-R", type=_quantity(_checks_rate), default=None,
                   metavar="PER_SECOND", help="arrivals per second (50K, 2000, 1.5M/s); "
                                              "needed unless --closed")
    g.add_argument("--duration", "-d", type=_quantity(_checks_seconds), default=10.0,
                   metavar="SECONDS", help="how long to load (30s, 2m; default 10s)")
    g.add_argument("--closed", action="store_true",
                   help="wrk's closed loop: each connection sends again when its reply is "
                        "in (no --rate)")
    g.add_argument("--max-queue", type=int, default=10_000, metavar="N",
                   help="requests that may wait for a busy connection before the backlog "
                        "is dropped (default 10000)")
    _target_options(p)
    d = p.add_argument_group("beyond one machine")
    d.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="a Dask scheduler (tcp://HOST:8786): its workers share the load")
    d.add_argument("--workers", type=_positive(int), default=None, metavar="N",
                   help="with --cluster: how many of its workers (default: all)")
    d.add_argument("--share", type=_share, default=None, metavar="I/N",
                   help="send only the I-th of N equal stripes of the schedule (each of N "
                        "machines runs one; merge their --hlog files)")
    d.add_argument("--start-at", type=float, default=None, metavar="UNIX_TIME",
                   help="wait until this wall-clock time (seconds since the epoch) to start")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", default=None,
                   help="also write the result as JSON to FILE ('-': the standard output, "
                        "instead of the text)")
    o.add_argument("--hlog", metavar="FILE", default=None,
                   help="also write the run as an HdrHistogram interval log, its counts in "
                        "the header (for caxton-meter merge)")
    return p


def _share(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be I/N (e.g. 1/3), got {text!r}") from None
    if not sep or n < 1 or not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"must be I/N with 1 <= I <= N (e.g. 1/3), got {text!r}")
    return i, n


def _distributed_checks(args: argparse.Namespace) -> None:
    if args.cluster is not None:
        if args.closed:
            raise _Usage("--cluster shares an arrival schedule: give --rate, not --closed")
        if args.share is not None or args.start_at is not None:
            raise _Usage("--cluster shares the schedule and sets the start itself: leave out "
                         "--share and --start-at")
        if args.hlog is not None:
            raise _Usage("--hlog writes one machine's run: use it with --share, not --cluster")
    elif args.workers is not None:
        raise _Usage("--workers is for --cluster (how many of its workers)")
    if args.share is not None and args.closed:
        raise _Usage("--share takes a stripe of an arrival schedule: give --rate, not --closed")
    if args.start_at is not None:
        import time
        if args.start_at < time.time() - 1.0:
            raise _Usage(f"--start-at {args.start_at:.3f} is in the past (now "
                         f"{time.time():.3f})")
    if args.hlog is not None:
        _check_file("--hlog", args.hlog)


def _run_on_cluster(args: argparse.Namespace, target: Any, prog: str) -> int:
    from ._distributed import ClusterError, run_distributed
    try:
        run = run_distributed(target, rate=args.rate, duration=args.duration,
                              cluster=args.cluster, workers=args.workers,
                              interval=min(1.0, args.duration))
    except ClusterError as e:
        return _usage(prog, e)
    result = run.result
    code = _http_exit(result)
    if run.partial:
        code = EXIT_FAILED if code == EXIT_OK else code
    if args.json != "-":
        print(http_summary(result, target, rate=args.rate, duration=args.duration))
        print(run.summary())
    if args.json is not None:
        document = http_document(result, target, rate=args.rate, duration=args.duration,
                                 exit_code=code)
        document["workers"] = [{"name": w.name, "host": w.host, "pid": w.pid, "share": w.share,
                                "offset_ns": w.offset_ns, "uncertainty_ns": w.uncertainty_ns,
                                "start_skew_ns": w.start_skew_ns, "state": w.state,
                                "note": w.note} for w in run.workers]
        text = json.dumps(document, indent=1, allow_nan=False) + "\n"
        if not _write("--json", args.json, text, sys.stdout, sys.stderr):
            code = EXIT_FAILED if code == EXIT_OK else code
    return code


def main_http(argv: list[str], prog: str) -> int:
    """``http URL --rate 50K --duration 30s --connections 64``."""
    args = _http_parser(prog).parse_args(argv)
    from ._checks import ArgumentError, ArgumentTypeError
    try:
        if args.closed and args.rate is not None:
            raise _Usage("--closed sends as fast as the replies come: give --rate or "
                         "--closed, not both")
        if not args.closed and args.rate is None:
            raise _Usage("give --rate (arrivals per second, e.g. --rate 50K), or --closed "
                         "for wrk's closed loop")
        if args.max_queue < 0:
            raise _Usage(f"--max-queue must be >= 0, got {args.max_queue}")
        target = _http_target(args, args.url, "URL")
        _check_file("--json", args.json)
        _distributed_checks(args)
    except (_Usage, ArgumentError, ArgumentTypeError) as e:
        return _usage(prog, e)
    if args.cluster is not None:
        return _run_on_cluster(args, target, prog)
    import time

    from ._network import load_network
    out, err = sys.stdout, sys.stderr
    stripe = None
    rate = args.rate
    if args.share is not None:
        from ._segments import stripes
        stripe = stripes([1] * args.share[1])[args.share[0] - 1] if args.share[1] > 1 else None
        rate = args.rate / args.share[1]          # this machine's part of the rate asked
    if args.start_at is not None:
        while (left := args.start_at - time.time()) > 0:
            time.sleep(min(left, 0.5) if left > 0.002 else 0)
    started = time.time()
    if args.closed:
        result = load_network(target, closed=True, duration=args.duration,
                              interval=min(1.0, args.duration))
    else:
        result = load_network(target, rate=args.rate, duration=args.duration,
                              max_queue=args.max_queue, interval=min(1.0, args.duration),
                              stripe=stripe)
    code = _http_exit(result)
    if args.hlog is not None:
        from ._logmerge import write_load_log
        try:
            write_load_log(result, args.hlog, start_time=started)
        except OSError as e:
            print(f"error: --hlog {args.hlog}: {e}", file=err)
            code = EXIT_FAILED if code == EXIT_OK else code
    if args.json != "-":
        print(http_summary(result, target, rate=rate, duration=args.duration), file=out)
    if args.json is not None:
        document = json.dumps(http_document(result, target, rate=rate,
                                            duration=args.duration, exit_code=code),
                              indent=1, allow_nan=False) + "\n"
        if not _write("--json", args.json, document, out, err):
            code = EXIT_FAILED if code == EXIT_OK else code
    if result.interrupted:
        print("interrupted: the result above is partial", file=err)
        return EXIT_INTERRUPTED
    return code


def _http_exit(result: Any) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.failed or result.dropped or result.deadline_reached:
        return EXIT_FAILED
    if not result.closed_loop and not result.kept_schedule:
        return EXIT_FAILED
    return EXIT_OK


def _stats(h: Any) -> dict[str, Any]:
    if not h.total_count:
        return {"count": 0}
    out: dict[str, Any] = {f"p{p:g}": h.value_at_percentile(p) for p in _PERCENTILES}
    out.update(max=h.max, mean=float(h.mean), count=h.total_count)
    return out


def http_document(result: Any, target: Any, *, rate: float | None, duration: float,
                  exit_code: int) -> dict[str, Any]:
    """The http command's result as its JSON document (HTTP_FORMAT_VERSION)."""
    return {
        "kind": "caxton_meter.http", "format": HTTP_FORMAT_VERSION, "url": target.url,
        "method": target.method, "mode": "closed" if result.closed_loop else "open",
        "rate": rate, "duration": duration, "connections": target.connections,
        "planned": result.planned, "requests": result.requests,
        "completed": result.completed, "failed": result.failed, "dropped": result.dropped,
        "in_flight": result.in_flight, "achieved_rate": result.achieved_rate,
        "intended_rate": result.intended_rate,
        "completed_per_second": result.completed_per_second,
        "kept_schedule": bool(result.kept_schedule) if not result.closed_loop else None,
        "schedule_note": result.schedule_note() if not result.closed_loop else None,
        "latency": _stats(result.latency),
        "latency_uncorrected": _stats(result.latency_uncorrected),
        "connect_time": _stats(result.connect_time),
        "status_classes": dict(result.status_classes), "errors": dict(result.errors),
        "connection_errors": dict(result.connection_errors),
        "bytes_sent": result.bytes_sent, "bytes_received": result.bytes_received,
        "interrupted": bool(result.interrupted),
        "deadline_reached": bool(result.deadline_reached), "exit_code": exit_code,
        "histograms": {"latency": result.latency.encode(),
                       "latency_uncorrected": result.latency_uncorrected.encode(),
                       "connect_time": result.connect_time.encode()},
    }


def _counts(counts: dict[str, int]) -> str:
    """"2xx 9,990, 5xx 10": the non-zero counts, the largest first."""
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(),
                                                     key=lambda kv: (-kv[1], kv[0])) if v)


def http_summary(result: Any, target: Any, *, rate: float | None, duration: float) -> str:
    """What an http run did, for a reader: the load asked and offered, the
    latency percentiles (from intended start, and from the send beside
    them), the status classes, failures by kind and the connect times."""
    from ._units import format_quantity as fq
    lines = []
    if result.closed_loop:
        lines.append(f"{target.method} {target.url}: closed loop over {target.connections:,} "
                     f"connections for {fq(duration * 1e9, 'ns')} (each connection sends "
                     f"again when its reply is in)")
    else:
        lines.append(f"{target.method} {target.url}: open loop at {fq(rate or 0.0, '/s')} "
                     f"for {fq(duration * 1e9, 'ns')} over {target.connections:,} connections")
    if result.interrupted or result.deadline_reached:
        why = "Ctrl-C" if result.interrupted else "the deadline"
        lines.append(f"stopped     by {why} after {fq(result.duration_ns, 'ns')}: the figures "
                     f"below are of the part that ran")
    lines.append(f"requests    {result.requests:,} sent, {result.completed:,} completed, "
                 f"{result.failed:,} failed, {result.dropped:,} dropped"
                 + (f", {result.in_flight:,} in flight when stopped" if result.in_flight
                    else ""))
    if result.closed_loop:
        lines.append(f"throughput  {fq(result.completed_per_second, '/s')} completed")
    else:
        note = result.schedule_note()
        lines.append(f"rate        {fq(result.achieved_rate, '/s')} sent of "
                     f"{fq(result.intended_rate, '/s')} asked: "
                     + ("the schedule was kept" if note is None else "FELL BEHIND"))
        if note is not None:
            lines.append(f"            {note}")
        lines.append(f"throughput  {fq(result.completed_per_second, '/s')} completed")
    corrected, uncorrected = result.latency, result.latency_uncorrected
    if corrected.total_count:
        first = "from intended start" if not result.closed_loop else "from send"
        lines.append(f"latency     {first:>20}  {'from send (uncorrected)':>24}")
        rows = [(f"p{p:g}", corrected.value_at_percentile(p),
                 uncorrected.value_at_percentile(p)) for p in _PERCENTILES]
        rows += [("max", corrected.max, uncorrected.max),
                 ("mean", corrected.mean, uncorrected.mean)]
        for label, a, b in rows:
            lines.append(f"  {label:<9} {fq(a, 'ns'):>20}  {fq(b, 'ns'):>24}")
    else:
        lines.append("latency     no request completed")
    if any(result.status_classes.values()):
        lines.append(f"status      {_counts(result.status_classes)}")
    lines.append(f"failures    {_counts(result.errors) if result.errors else 'none'}")
    ct = result.connect_time
    connect = (f"{result.connects:,} connects, p50 {fq(ct.value_at_percentile(50), 'ns')}, "
               f"p99 {fq(ct.value_at_percentile(99), 'ns')}, max {fq(ct.max, 'ns')}"
               if ct.total_count else f"{result.connects:,} connects")
    if result.connection_errors:
        connect += f"; connection errors: {_counts(result.connection_errors)}"
    lines.append(f"connect     {connect}")
    lines.append(f"transfer    {fq(result.bytes_sent, 'bytes')} sent, "
                 f"{fq(result.bytes_received, 'bytes')} received")
    return "\n".join(lines)


# -- capacity -----------------------------------------------------------------------------------

def _fraction(text: str, *, strict_low: bool = False) -> float:
    """"5%" or 0.05; above 0 with ``strict_low``."""
    from ._checks import ArgumentError, fraction
    try:
        return fraction(text, "value", strict_low=strict_low)
    except ArgumentError as e:
        raise argparse.ArgumentTypeError(str(e).replace("value ", "", 1)) from None


def _positive_fraction(text: str) -> float:
    return _fraction(text, strict_low=True)


def _number_above_one(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 1")
    return value


def _capacity_parser(prog: str) -> argparse.ArgumentParser:
    from ._capacity import TAIL_SAMPLES
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Find the highest arrival rate at which an HTTP server on this "
                            "machine's loopback keeps an SLO: rising steps, then bisection.",
                epilog=_CAPACITY_EPILOG)
    p.add_argument("--target", "-t", required=True, metavar="URL",
                   help="http://127.0.0.1:PORT/PATH (or localhost)")
    p.add_argument("--slo", action="append", default=[], required=True, metavar="EXPR",
                   help="an SLO every passing step keeps, in the threshold grammar "
                        "(\"p99 < 10ms\", \"avg < 2ms\", \"error_rate < 1%%\"); repeatable: "
                        "all must hold")
    s = p.add_argument_group("the search (every bound has a default)")
    s.add_argument("--start-rate", type=_quantity(_checks_rate), default=1000.0,
                   metavar="PER_SECOND", help="the first step's rate (default 1000/s)")
    s.add_argument("--max-rate", type=_quantity(_checks_rate), default=1e6,
                   metavar="PER_SECOND", help="no step above this (default 1M/s)")
    s.add_argument("--factor", type=_number_above_one, default=2.0, metavar="F",
                   help="each rising step this many times the last (default 2)")
    s.add_argument("--precision", type=_positive_fraction, default=0.05, metavar="PCT",
                   help="bisect until the failing rate is within this of the passing one "
                        "(default 5%%)")
    s.add_argument("--max-steps", type=_positive(int), default=25, metavar="N",
                   help="steps at most (default 25)")
    s.add_argument("--budget", type=_quantity(_checks_seconds), default=300.0,
                   metavar="SECONDS", help="wall time at most; a step that would end later "
                                           "is not started (default 5m)")
    s.add_argument("--min-step", type=_quantity(_checks_seconds), default=2.0,
                   metavar="SECONDS", help="a step lasts at least this long (default 2s)")
    s.add_argument("--tail-samples", type=_positive(int), default=TAIL_SAMPLES, metavar="N",
                   help=f"requests beyond the SLO's percentile in each step (default "
                        f"{TAIL_SAMPLES}: p99 needs {TAIL_SAMPLES * 100:,} requests)")
    s.add_argument("--max-error-rate", type=_fraction, default=0.0, metavar="PCT",
                   help="failed requests a passing step may have (default 0)")
    s.add_argument("--knee-factor", type=_number_above_one, default=2.0, metavar="K",
                   help="the knee: the rate above which the percentile stays at or over K "
                        "times its lowest-rate value (default 2)")
    s.add_argument("--max-queue", type=int, default=10_000, metavar="N",
                   help="requests that may wait for a busy connection before the backlog is "
                        "dropped (default 10000)")
    s.add_argument("--min-capacity", type=_quantity(_checks_rate), default=None,
                   metavar="PER_SECOND", help="exit 1 when the capacity found is below this")
    _target_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--output", "-o", metavar="FILE.html", default=None,
                   help="write an HTML page with the latency-against-rate plot and the steps")
    o.add_argument("--json", metavar="FILE", default=None,
                   help="write the result as JSON ('-': the standard output, instead of "
                        "the table)")
    o.add_argument("--quiet", "-q", action="store_true",
                   help="no line on the standard error as each step ends")
    return p


def _slo_texts(texts: list[str]) -> list[str]:
    from ._capacity import _slo_expressions
    from ._checks import ArgumentError
    from ._expressions import ThresholdExpressionError
    for text in texts:
        try:
            _slo_expressions(text, "--slo")
        except ThresholdExpressionError as e:
            raise _Usage(f"--slo {text!r}: {e.problem}"
                         + (f" ({e.hint})" if e.hint else "")) from None
        except ArgumentError as e:
            raise _Usage(str(e).replace(f"--slo: slo {text!r}", f"--slo {text!r}", 1)) from None
    return texts


def main_capacity(argv: list[str], prog: str) -> int:
    """``capacity --target URL --slo "p99<10ms"``."""
    args = _capacity_parser(prog).parse_args(argv)
    from ._checks import ArgumentError, ArgumentTypeError
    out, err = sys.stdout, sys.stderr
    try:
        slos = _slo_texts(args.slo)
        if args.max_queue < 0:
            raise _Usage(f"--max-queue must be >= 0, got {args.max_queue}")
        if args.max_rate < args.start_rate:
            raise _Usage(f"--max-rate {args.max_rate:g} is below --start-rate "
                         f"{args.start_rate:g}")
        target = _http_target(args, args.target, "--target")
        _check_file("--output", args.output)
        _check_file("--json", args.json)
    except (_Usage, ArgumentError, ArgumentTypeError) as e:
        return _usage(prog, e)
    from ._capacity import _search_percentile, _slo_expressions, find_capacity
    from ._units import format_quantity as fq
    result_percentile = _search_percentile(_slo_expressions(slos, "--slo"))

    def progress(step: Any) -> None:
        verdict = "pass" if step.passed else f"FAIL: {step.reason}"
        p = f", p{result_percentile:g} {fq(step.value, 'ns')}" if step.value is not None else ""
        print(f"step: {step.phase} {fq(step.rate, '/s')} for {step.duration:.3g} s: "
              f"{fq(step.achieved, '/s')} sent{p}: {verdict}", file=err, flush=True)

    try:
        result = find_capacity(
            target, slo=slos, start_rate=args.start_rate, max_rate=args.max_rate,
            factor=args.factor, precision=args.precision, max_steps=args.max_steps,
            budget=args.budget, min_step=args.min_step, tail_samples=args.tail_samples,
            max_error_rate=args.max_error_rate, knee_factor=args.knee_factor,
            max_queue=args.max_queue, on_step=None if args.quiet else progress)
    except (ArgumentError, ArgumentTypeError) as e:        # checked before anything is sent
        return _usage(prog, e)
    from ._reports import capacity_html, capacity_table
    if args.json != "-":
        print(capacity_table(result), file=out, flush=True)
    code = EXIT_OK
    if not result.found:
        code = EXIT_FAILED
    elif args.min_capacity is not None and (result.capacity or 0.0) < args.min_capacity:
        print(f"error: the capacity {fq(result.capacity or 0.0, '/s')} is below "
              f"--min-capacity {fq(args.min_capacity, '/s')}", file=err)
        code = EXIT_FAILED
    if args.output is not None:
        if _write("--output", args.output, capacity_html(result), out, err):
            if args.json != "-":
                print(f"report: {args.output}", file=out)
        else:
            code = EXIT_FAILED
    if args.json is not None and not _write("--json", args.json, result.to_json(), out, err):
        code = EXIT_FAILED
    if result.stopped == "interrupted":
        print("interrupted: the steps above are all that ran", file=err)
        return EXIT_INTERRUPTED
    return code
