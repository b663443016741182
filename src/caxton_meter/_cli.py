"""The command line: ``python -m caxton_meter.run`` and ``caxton-meter``.

One job: turn options into a run (or a loaded result), a comparison and
reports, and an exit code.  The work is done by the scenarios
(``_scenarios``), the results and baselines (``_results``), the comparison
(``_compare``) and the reports (``_reports``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0            # every threshold met, no regression
EXIT_FAILED = 1        # a regression, a failed threshold, a missing counterpart, a write error
EXIT_USAGE = 2         # bad options or input files: nothing was run
EXIT_INTERRUPTED = 130  # Ctrl-C: the partial results are printed, no baseline is saved

_EPILOG = """\
baselines (a history of runs each, the last 20 kept, nothing overwritten):
  --save-baseline NAME   run, compare with NAME if it exists, then add the run to
                         NAME's history (refused for a run with a failed, partial or
                         interrupted scenario: the baseline stays as it was)
  --baseline NAME        compare with NAME (never written); a scenario or metric
                         of the run missing from it is a failure (--baseline-lenient
                         skips those)
  --load-baseline NAME   use the saved NAME as this run's data (nothing runs); with
                         --baseline, compares two saved results
  baselines live in --baseline-dir (default .caxton_meter/baselines)
  caxton-meter calibrate NAME [SCENARIO ...] --runs 10   save 10 runs of unchanged code
                         and print what this machine can detect, metric by metric
  caxton-meter history NAME   a baseline's runs, and the change points in them

a server of your own (HTTP on this machine's loopback):
  caxton-meter http URL --rate 50K --duration 30s --connections 64
                         wrk2-style: a constant arrival rate, latency from each
                         request's intended start (--closed: wrk's closed loop)
  caxton-meter capacity --target URL --slo "p99 < 10ms" --output capacity.html
                         the highest rate at which the SLO holds (rising steps,
                         then bisection), the knee of the latency curve
  (each has its own --help, with its exit codes)

regression detection: each compared metric's mean in this run is tested
against the means of the baseline's saved runs (their run-to-run spread on
this machine; 3 runs at least), and Holm's correction holds --significance
for the whole run, not per metric.  A significant change beyond
--noise-threshold on the bad side is a regression; a change that is not
significant where this machine cannot detect one of --threshold is "not
gateable here".  The scenarios that changed are re-run once, in a process of
their own, and a change the re-run does not repeat is "transient" (a slow
spell of the machine), not a failure (--no-confirm turns this off).  The
report says how many comparisons were made and what each metric can detect.

SLOs (--slo, repeatable): an expression in the threshold grammar, checked
against every selected scenario that produces its metric (each trial's mean;
each point of a series), e.g. --slo "latency_p99 < 10ms" --slo "throughput >=
50K/s"; a failed one exits 1.  Or a JSON file of custom targets for grading:
{"format": 1, "thresholds": {"latency_p99": {"target": "10ms", "acceptable":
"50ms", "critical": "100ms"}}}; metrics not named keep the guide's targets.

grades: each figure shown (the mean over the trials) is graded against the
guide's targets: target, acceptable, critical or failed.  --fail-on GRADE
(default critical) fails the run when any figure is graded GRADE or worse:
--fail-on acceptable for "every target met", --fail-on failed for "nothing
failed".

exit codes:
  0    no figure graded --fail-on or worse, no regression, every SLO held
  1    a figure graded --fail-on or worse, a regression, a failed SLO, a
       scenario that failed to run, a metric missing from the baseline, or
       results that could not be written (the results are still printed)
  2    a usage error (the message names the option); nothing was run
  130  interrupted (Ctrl-C): partial results printed, no baseline saved
"""

_OVERRIDES = (("duration", "duration"), ("rate", "rate"), ("agents", "agents"),
              ("message_size", "message-size"), ("agent_kind", "agent-kind"))


def _checks_seconds(text: str, what: str) -> float:
    from ._checks import seconds
    return seconds(text, what)


def _checks_rate(text: str, what: str) -> float:
    from ._checks import rate
    return rate(text, what)


def _checks_size(text: str, what: str) -> int:
    from ._checks import size
    return size(text if not text.strip().isdigit() else int(text), what)


class _Usage(Exception):
    """A usage error: exit 2 with this message."""


def _percent(text: str) -> float:
    """"10", "10%" -> 0.10."""
    t = text.strip().removesuffix("%")
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (10 or 10%)") from None
    if not (math.isfinite(value) and 0 <= value < 1000):
        raise argparse.ArgumentTypeError(f"{text!r} must be a percentage from 0 to 1000")
    return value / 100


def _noise(text: str) -> float | str:
    """A percentage, or "auto" (from each metric's run-to-run spread)."""
    return "auto" if text.strip() == "auto" else _percent(text)


def _threshold(text: str) -> tuple[str | None, float]:
    """"10%" or "metric=10%"."""
    name, eq, value = text.rpartition("=")
    if eq and not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: no metric before '='; write "
                                         "METRIC=PCT or PCT")
    return (name.strip() if eq else None), _percent(value)


def _baseline_name(text: str) -> str:
    """A baseline's name, refused when empty or not a valid name."""
    from ._baselines import valid_baseline_name
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name: give the baseline's NAME")
    problem = valid_baseline_name(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _check_threshold_metrics(names: list[str], per_metric: dict[str, float]) -> None:
    """Each --threshold METRIC=PCT must name a compared metric of a selected
    scenario (a series by the name before its ``@``)."""
    from ._checks import did_you_mean
    from ._scenarios import SCENARIOS
    compared = sorted({s.name for n in names for s in SCENARIOS[n].metrics if s.compared})
    for metric in per_metric:
        if metric.split("@", 1)[0] not in compared:
            raise _Usage(f"--threshold {metric}=...: no selected scenario compares a metric "
                         f"{metric!r}{did_you_mean(metric, compared)}; compared metrics: "
                         f"{', '.join(compared)}")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < 1):
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (0.05)")
    return value


def _positive(kind: type) -> Any:
    """An argparse type for a whole number > 0."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value
    return parse


def _quantity(check: Any) -> Any:
    """An argparse type reading a quantity through the package's one check
    (units accepted: "30s", "500ms", "50K/s", "1KB")."""
    def parse(text: str) -> Any:
        from ._checks import ArgumentError, ArgumentTypeError
        try:
            return check(text, "value")
        except (ArgumentError, ArgumentTypeError) as e:
            raise argparse.ArgumentTypeError(str(e).replace("value: ", "", 1)
                                             .replace("value ", "", 1)) from None
    return parse


def _formats(text: str) -> list[str]:
    from ._reports import REPORT_FORMATS
    out = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in out if f not in REPORT_FORMATS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"unknown report format {bad[0] if bad else text!r}; "
                                         f"formats: {', '.join(REPORT_FORMATS)}")
    return out


def _check_folder(option: str, folder: Path) -> None:
    """A folder the run will write to, checked before anything runs (and
    left uncreated): an existing file, a path under a file or a place that
    cannot be written is a usage error now rather than after the run."""
    if folder.exists() and not folder.is_dir():
        raise _Usage(f"{option} {folder}: exists and is not a folder")
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _Usage(f"{option} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _Usage(f"{option} {folder}: {existing} is not writable")


def _keep(run: Any, folder: Path, err: TextIO) -> None:
    """Keep the run's result on disk before it is compared or reported."""
    from ._baselines import keep_run
    try:
        path = keep_run(run, folder)
    except OSError as e:
        print(f"warning: the run could not be kept in {folder}: {e.strerror or e}", file=err)
        return
    print(f"note: this run's result is kept in {path}", file=err)


def _see_help(prog: str) -> str:
    return f"(see: {prog} --help)\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            import difflib
            valid = sorted({o for a in self._actions for o in a.option_strings
                            if o.startswith("--")})
            hints = []
            for arg in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(arg.split("=")[0], valid, n=1)
                if close:
                    hints.append(f"{arg}: did you mean {close[0]}?")
            message += ("; " + "; ".join(hints) if hints else "") \
                + "; valid options: " + ", ".join(valid)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n{_see_help(self.prog)}")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Run the performance benchmarking guide's scenarios against "
                            "caxton_meter's agent router, grade them against the targets "
                            "table, compare with a baseline and write reports.",
                epilog=_EPILOG)
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenarios to run (default: all; --list shows them)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--quick", action="store_true",
                   help="the quick profile: every scenario in seconds (default: the guide's "
                        "full durations)")
    p.add_argument("--trials", type=_positive(int), default=None,
                   help="runs of each scenario (default 5; with fewer than 4 a side no "
                        "change can be significant at p < 0.05)")
    p.add_argument("--self-check", action="store_true",
                   help="run the compiled core's self-check (exactness and cost) and exit")
    g = p.add_argument_group("overrides (applied to every selected scenario that has the field)")
    g.add_argument("--duration", type=_quantity(_checks_seconds), metavar="SECONDS")
    g.add_argument("--rate", type=_quantity(_checks_rate), metavar="PER_SECOND")
    g.add_argument("--agents", type=_positive(int), metavar="N")
    g.add_argument("--message-size", type=_quantity(_checks_size), metavar="BYTES")
    g.add_argument("--agent-kind", choices=("native", "python", "wasm"))
    g.add_argument("--deadline", type=_quantity(_checks_seconds), metavar="SECONDS",
                   help="stop each scenario after this long, keeping its partial result")
    g.add_argument("--set", dest="sets", type=_setting, action="append", default=[],
                   metavar="[SCENARIO.]FIELD=VALUE",
                   help="any field of a scenario's config (repeatable), e.g. --set "
                        "task_processing.units=1100; without SCENARIO. every selected "
                        "scenario that has FIELD; VALUE as JSON or with units (500ms, 2K/s)")
    t = p.add_argument_group("a server of your own (the open-loop scenarios: latency, "
                             "load_test, burst_traffic, sustained_load, peak_load)")
    t.add_argument("--target", metavar="URL", default=None,
                   help="load this HTTP server (http://127.0.0.1:PORT/PATH) from the core's "
                        "network loop instead of the router's agents; without scenarios "
                        "named, the open-loop ones run")
    t.add_argument("--connections", type=_positive(int), default=None, metavar="N",
                   help="with --target: keep-alive connections (default 50)")
    t.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="with --target: run the load on a Dask cluster's workers "
                        "(tcp://HOST:8786), each taking its stripe of the schedule")
    t.add_argument("--workers", type=_positive(int), default=None, metavar="N",
                   help="with --cluster: how many of its workers (default: all)")
    b = p.add_argument_group("baselines")
    b.add_argument("--save-baseline", metavar="NAME", type=_baseline_name)
    b.add_argument("--baseline", metavar="NAME", type=_baseline_name)
    b.add_argument("--baseline-lenient", action="store_true")
    b.add_argument("--load-baseline", metavar="NAME", type=_baseline_name)
    b.add_argument("--baseline-dir", metavar="DIR", default=None,
                   help="where baselines are kept (default .caxton_meter/baselines)")
    r = p.add_argument_group("regression detection and thresholds")
    r.add_argument("--threshold", type=_threshold, action="append", default=[],
                   metavar="[METRIC=]PCT",
                   help="the size of change the gate must be able to detect, 10%% by default "
                        "(a metric whose spread hides it is not gateable); METRIC=PCT for "
                        "one metric (repeatable)")
    r.add_argument("--noise-threshold", type=_noise, default=0.05, metavar="PCT|auto",
                   help="significant changes within ±PCT are noise (default 5%%); auto: "
                        "twice each metric's run-to-run spread")
    r.add_argument("--no-confirm", dest="confirm", action="store_false",
                   help="do not re-run the scenarios that changed to confirm the changes "
                        "(by default a change must show again in a re-run to fail the run)")
    r.add_argument("--significance", type=_probability, default=0.05, metavar="ALPHA",
                   help="the false-alarm rate of the whole run (family-wise, Holm; "
                        "default 0.05)")
    r.add_argument("--fail-on", type=_fail_on, default="critical",
                   metavar="acceptable|critical|failed",
                   help="fail the run when a figure is graded this or worse (default "
                        "critical; acceptable: every target must be met)")
    r.add_argument("--slo", metavar="EXPR|FILE", action="append", default=[],
                   help="an SLO expression (\"latency_p99 < 10ms\") or a JSON file of "
                        "custom targets; see below")
    o = p.add_argument_group("output")
    o.add_argument("--report", type=_formats, default=[], metavar="md,html,json",
                   help="reports to write to --output (--output alone: all three)")
    o.add_argument("--output", metavar="DIR", default=None,
                   help="where reports go (default ./caxton_meter_report); files an "
                        "earlier run wrote there and this one does not are removed")
    o.add_argument("--runs-dir", metavar="DIR", default=None,
                   help="where every run's result is kept before anything else is done "
                        "with it (default .caxton_meter/runs, the last 100)")
    o.add_argument("--quiet", action="store_true", help="no live progress")
    return p


# -- inputs ------------------------------------------------------------------------------

def _slo(path: str) -> dict[str, Any]:
    from ._model import DEFAULT_THRESHOLDS, Threshold
    from ._units import UnitError, kind_of_unit, parse_quantity
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise _Usage(f"--slo {path}: cannot be read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _Usage(f"--slo {path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != 1 \
            or not isinstance(data.get("thresholds"), dict):
        raise _Usage(f"--slo {path}: expected {{\"format\": 1, \"thresholds\": {{...}}}}")
    out: dict[str, Any] = {}
    for name, bounds in data["thresholds"].items():
        if name not in DEFAULT_THRESHOLDS:
            raise _Usage(f"--slo {path}: unknown metric {name!r}; metrics: "
                         f"{', '.join(sorted(DEFAULT_THRESHOLDS))}")
        base = DEFAULT_THRESHOLDS[name]
        if not isinstance(bounds, dict) or set(bounds) - {"target", "acceptable", "critical"}:
            raise _Usage(f"--slo {path}: thresholds.{name} must be an object with target, "
                         "acceptable and critical")
        kind = kind_of_unit(base.unit)
        try:
            values = {k: (parse_quantity(bounds[k], kind) if kind != "count" else float(bounds[k]))
                      if k in bounds else getattr(base, k)
                      for k in ("target", "acceptable", "critical")}
            out[name] = Threshold(name, base.unit, **values)
        except (UnitError, ValueError, TypeError) as e:
            raise _Usage(f"--slo {path}: thresholds.{name}: {e}") from None
    return out


def _is_expression(text: str) -> bool:
    return any(op in text for op in "<>=!")


def _slo_expressions(texts: list[str], names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Each SLO expression parsed in the metric set of every selected
    scenario that declares its metric: [(text, {scenario: expression})].
    A usage error for a malformed one, or one no selected scenario produces."""
    from ._expressions import ThresholdExpressionError, scenario_metrics
    from ._scenarios import SCENARIOS
    out = []
    for text in texts:
        parsed: dict[str, Any] = {}
        problem: str | None = None
        for n in names:
            try:
                parsed[n] = scenario_metrics(SCENARIOS[n].metrics, name=n).parse(text)
            except ThresholdExpressionError as e:
                problem = problem or str(e)
        if not parsed:
            raise _Usage(f"--slo {text!r}: no selected scenario ({', '.join(names)}) "
                         f"produces its metric: {problem}")
        out.append((text, parsed))
    return out


def _check_slos(run: Any, slos: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], bool]:
    """Each SLO against each scenario's mean over its trials (every point
    of a series): the lines to print, and whether every one held."""
    from ._expressions import scenario_metrics
    lines: list[str] = []
    held = True
    for text, parsed in slos:
        for scenario, expression in parsed.items():
            if scenario not in run.names:
                continue
            trials = run.scenario(scenario)
            for name in trials.metric_names:
                if name.split("@", 1)[0] != expression.metric:
                    continue
                values = trials.values(name)
                if not values:
                    lines.append(f"SLO {text!r}: {scenario} {name} was not measured: failed")
                    held = False
                    continue
                mean = sum(values) / len(values)
                point = scenario_metrics([trials.spec(name)], name=scenario).parse(
                    text.replace(expression.metric, name, 1))
                result = point.evaluate({name: mean})
                held = held and result.passed
                lines.append(f"SLO {result.describe(f'{scenario}')}")
    return lines, held


def _fail_on(text: str) -> str:
    choices = ("acceptable", "critical", "failed")
    if text in choices:
        return text
    if text == "target":
        raise argparse.ArgumentTypeError(
            "'target': a figure graded target never fails a run; --fail-on acceptable fails "
            "every figure short of its target")
    from ._checks import did_you_mean
    raise argparse.ArgumentTypeError(f"{text!r}: choose {', '.join(choices)}"
                                     f"{did_you_mean(text, choices)}")


def _setting(text: str) -> tuple[str | None, str, Any, str]:
    """--set "[SCENARIO.]FIELD=VALUE" -> (scenario or None, field, value, text);
    VALUE read as JSON (numbers, lists, true/false), else kept as text for
    the field's own check ("500ms", "2K/s", "native")."""
    import json as _json
    key, sep, raw = text.partition("=")
    key = key.strip()
    scenario, dot, field = key.rpartition(".")
    if not sep or not field or not raw.strip() or (dot and not scenario):
        raise argparse.ArgumentTypeError(f"{text!r}: write [SCENARIO.]FIELD=VALUE, e.g. "
                                         "task_processing.units=1100")
    try:
        value = _json.loads(raw)
    except ValueError:
        value = raw.strip()
    return (scenario or None, field, value, text)


def _sets(args: argparse.Namespace, names: list[str],
          changes: dict[str, dict[str, Any]]) -> None:
    """Apply the --set options to ``changes``: a named scenario must be one
    of the selected ones; a bare FIELD goes to every selected scenario that
    has it (and to at least one)."""
    from ._checks import did_you_mean
    from ._scenarios import SCENARIOS
    for scenario, field, value, _ in args.sets:
        if scenario is not None and scenario not in SCENARIOS:
            raise _Usage(f"--set {scenario}.{field}: unknown scenario {scenario!r}"
                         f"{did_you_mean(scenario, SCENARIOS)}")
        if scenario is not None and scenario not in names:
            raise _Usage(f"--set {scenario}.{field}: {scenario} is not among the selected "
                         f"scenarios ({', '.join(names)})")
        takers = [scenario] if scenario is not None else \
            [n for n in names if field in SCENARIOS[n].config.field_names()]
        if not takers:
            fields = sorted({f for n in names for f in SCENARIOS[n].config.field_names()})
            raise _Usage(f"--set {field}: no selected scenario has the field {field!r}"
                         f"{did_you_mean(field, fields)}")
        for n in takers:
            changes[n][field] = value


def _target_scenarios(args: argparse.Namespace, names: list[str]) -> list[str]:
    """The scenarios to run when --target (and --connections, --cluster,
    --workers) is given: those named, each of which must be an open-loop
    one, or, with none named, every open-loop scenario."""
    from ._scenarios import SCENARIOS
    given = [o for o, v in (("--connections", args.connections), ("--cluster", args.cluster),
                            ("--workers", args.workers)) if v is not None]
    if args.target is None:
        if given:
            raise _Usage(f"{given[0]} is for a server of your own: give --target URL too")
        return names
    if args.workers is not None and args.cluster is None:
        raise _Usage("--workers is how many of a cluster's workers: give --cluster too")
    if args.cluster is not None:            # asked now, before anything runs
        from ._distributed import ClusterError, check_cluster
        try:
            check_cluster(args.cluster, args.workers, "--cluster")
        except (ClusterError, ValueError) as e:
            raise _Usage(str(e)) from None
    takers = [n for n in SCENARIOS if "target" in SCENARIOS[n].config.field_names()]
    if not args.scenarios:
        return takers
    others = [n for n in names if n not in takers]
    if others:
        raise _Usage(f"--target loads a server with the open-loop scenarios ({', '.join(takers)});"
                     f" {', '.join(others)} run on the router's agents only")
    return names


def _changes(args: argparse.Namespace, names: list[str], quick: bool,
             err: TextIO) -> dict[str, dict[str, Any]]:
    from ._scenarios import SCENARIOS, scenario_config
    changes: dict[str, dict[str, Any]] = {n: {} for n in names}
    if args.target is not None:
        for n in names:
            changes[n]["target"] = args.target
            for field in ("connections", "cluster", "workers"):
                if getattr(args, field) is not None:
                    changes[n][field] = getattr(args, field)
    _sets(args, names, changes)
    for field, option in _OVERRIDES + (("deadline", "deadline"),):
        value = getattr(args, field)
        if value is None:
            continue
        takers = [n for n in names if field in SCENARIOS[n].config.field_names()]
        if not takers:
            raise _Usage(f"--{option} applies to none of the selected scenarios "
                         f"({', '.join(names)})")
        skipped = []
        for n in takers:
            try:
                scenario_config(n, quick=quick, **{field: value})
            except (ValueError, TypeError) as e:
                if field == "agent_kind":
                    skipped.append(n)
                    continue
                raise _Usage(f"--{option} {value}: {e}") from None
            changes[n][field] = value
        if skipped:
            print(f"note: --agent-kind {value} is not supported by "
                  f"{', '.join(skipped)}: they run with their default", file=err)
            if len(skipped) == len(takers):
                raise _Usage(f"--agent-kind {value}: supported by none of the selected "
                             f"scenarios ({', '.join(names)})")
    for n in names:                       # the overrides together
        try:
            scenario_config(n, quick=quick, **changes[n])
        except (ValueError, TypeError) as e:
            given = " ".join(f"{f}={v}" for f, v in changes[n].items())
            raise _Usage(f"{n} with {given}: {e}") from None
    return changes


def _planned_seconds(config: Any) -> float:
    """The time a scenario's schedule lasts at least (its closed loops and
    spawns add to it); a deadline caps it."""
    seconds = float(config.planned_seconds())
    return min(seconds, float(config.deadline)) if config.deadline else seconds


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- live progress -----------------------------------------------------------------------

class _Progress:
    """One status line on a terminal, redrawn at most 5 times a second:
    the scenario and trial, elapsed and estimated remaining time, and from
    the open loops the current rate, interval p99 and errors."""

    def __init__(self, stream: TextIO, total_trials: int) -> None:
        self.stream = stream
        self.total = total_trials
        self.done = 0
        self.started = time.monotonic()
        self.label = ""
        self.rate = self.p99 = None  # type: float | None
        self.errors = 0
        self._drawn = 0.0

    def begin(self, scenario: str, trial: int, trials: int) -> None:
        self.label = f"{scenario} {trial + 1}/{trials}"
        self.rate = self.p99 = None
        self.draw(force=True)

    def trial_done(self) -> None:
        self.done += 1

    def interval(self, iv: Any) -> None:
        seconds = (iv.end_ns - iv.start_ns) / 1e9
        if seconds > 0:
            self.rate = iv.completed / seconds
        latency = iv.latency
        if latency.total_count:
            self.p99 = latency.value_at_percentile(99)
        self.errors += iv.failed + iv.dropped
        self.draw()

    def draw(self, force: bool = False) -> None:
        from ._units import format_quantity
        now = time.monotonic()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        elapsed = now - self.started
        parts = [f"[{self.done}/{self.total}] {self.label}", f"elapsed {elapsed:.0f} s"]
        if self.done:
            parts.append(f"remaining ~{elapsed / self.done * (self.total - self.done):.0f} s")
        if self.rate is not None:
            parts.append(f"rate {format_quantity(self.rate, 'req/s')}")
        if self.p99 is not None:
            parts.append(f"p99 {format_quantity(self.p99, 'ns')}")
        parts.append(f"errors {self.errors}")
        self.stream.write("\r\x1b[K" + " · ".join(parts))
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def _run(args: argparse.Namespace, names: list[str], quick: bool,
         changes: dict[str, dict[str, Any]], thresholds: Any, err: TextIO,
         ) -> tuple[Any, bool, list[str]]:
    """Run the selected scenarios, each ``--trials`` times, keeping every
    result a failing scenario does not take with it: (the run, whether
    Ctrl-C stopped it, the scenarios that failed)."""
    from ._results import RunResult, run_suite
    failures: list[str] = []
    trials = args.trials or 5
    from ._scenarios import scenario_config
    planned = {n: _planned_seconds(scenario_config(n, quick=quick, **changes[n]))
               for n in names}
    total = trials * sum(planned.values())
    if total >= 600 and not args.quiet:
        longest = max(planned, key=lambda n: planned[n])
        print(f"note: this run lasts at least {_span(total)} ({trials} trials; "
              f"{longest}: {_span(planned[longest])} a trial); --quick runs every "
              "scenario in seconds, --deadline caps each trial", file=err)
    progress = _Progress(err, trials * len(names)) \
        if not args.quiet and err.isatty() else None
    def on_trial(name: str, index: int, result: Any) -> None:
        if progress is not None:
            progress.trial_done()
            if index + 1 < trials:
                progress.begin(name, index + 1, trials)

    def on_interval(iv: Any) -> None:
        if progress is not None:
            progress.interval(iv)

    from ._results import collect_metadata
    from ._model import resolve_thresholds
    limits = resolve_thresholds(thresholds)
    interrupted = False
    all_trials: list[Any] = []
    meta: dict[str, Any] = {}
    try:
        meta = collect_metadata()
        for name in names:          # one scenario at a time, so progress can name it
            if progress is not None:
                progress.begin(name, 0, trials)
            try:
                part = run_suite([name], trials=trials, quick=quick, changes=changes,
                                 thresholds=limits, metadata=meta, on_trial=on_trial,
                                 on_interval=on_interval)
            except Exception as e:    # one scenario's failure loses no other result
                if progress is not None:
                    progress.close()
                failures.append(f"{name}: {type(e).__name__}: {e}")
                print(f"error: scenario {name} failed: {type(e).__name__}: {e}", file=err)
                continue
            all_trials.extend(part.scenarios)
            if part.metadata.get("stopped_early"):
                interrupted = True
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
    meta = dict(meta, trials=trials, profile="quick" if quick else "full")
    if interrupted:
        meta["stopped_early"] = True
    if failures:
        meta["failed_scenarios"] = failures
    current = RunResult(meta, tuple(all_trials))
    return current, interrupted, failures


# -- main --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the command line; returns the exit code.  The first word may
    name a command (``calibrate``, ``history``, ``http``, ``capacity``);
    otherwise the scenarios run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0]) or "caxton-meter"
    if argv and argv[0] in _COMMANDS:
        return _COMMANDS[argv[0]](argv[1:], f"{prog} {argv[0]}")
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except _Usage as e:
        print(f"{parser.prog}: error: {e}\n{_see_help(parser.prog)}", end="", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:             # `... | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(args: argparse.Namespace) -> int:
    from ._scenarios import SCENARIOS
    out, err = sys.stdout, sys.stderr
    if args.self_check:
        from ._selfcheck import format_self_check, run_self_check
        check = run_self_check(quick=args.quick)
        print(format_self_check(check), file=out, flush=True)
        return EXIT_OK if check.ok else EXIT_FAILED
    if args.list:
        import textwrap
        for name, found in SCENARIOS.items():
            print(textwrap.fill(found.summary, width=100, initial_indent=f"{name:22s} ",
                                subsequent_indent=" " * 23), file=out)
        return EXIT_OK

    # everything is checked before anything runs
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        from ._checks import did_you_mean
        raise _Usage(f"unknown scenario {unknown[0]!r}{did_you_mean(unknown[0], SCENARIOS)}; "
                     f"scenarios: {', '.join(SCENARIOS)}")
    names = list(dict.fromkeys(args.scenarios)) or list(SCENARIOS)
    names = _target_scenarios(args, names)
    if args.save_baseline and (args.baseline or args.load_baseline):
        raise _Usage("--save-baseline cannot be combined with --baseline or --load-baseline")
    if args.baseline_lenient and not (args.baseline or args.save_baseline):
        raise _Usage("--baseline-lenient needs --baseline")
    if args.output is not None and not args.report:
        args.report = ["md", "html", "json"]
    output = Path(args.output if args.output is not None else "caxton_meter_report")
    if args.report:
        _check_folder("--output", output)
    runs_dir = Path(args.runs_dir) if args.runs_dir is not None else None
    if not args.load_baseline and runs_dir is not None:
        _check_folder("--runs-dir", runs_dir)
    elif not args.load_baseline:
        from ._baselines import RUNS_DIR
        try:                      # the default place: a warning, not a refusal
            _check_folder("--runs-dir", RUNS_DIR)
            runs_dir = RUNS_DIR
        except _Usage as e:
            print(f"warning: this run's result will not be kept ({e}); give --runs-dir",
                  file=err)
    files = [v for v in args.slo if not _is_expression(v)]
    if len(files) > 1:
        raise _Usage(f"--slo: one targets file at most, got {', '.join(files)}")
    thresholds = _slo(files[0]) if files else None
    slos = _slo_expressions([v for v in args.slo if _is_expression(v)], names)
    fixed, per_metric = 0.10, {}
    for name, value in args.threshold:
        if name is None:
            fixed = value
        else:
            per_metric[name] = value
    if not args.load_baseline:
        _check_threshold_metrics(names, per_metric)

    from ._baselines import BASELINE_DIR, BaselineHistory, BaselineNotFoundError, \
        BaselineRefusedError, BaselineStore
    from ._compare import MissingCounterpartError, compare
    from ._results import ResultFormatError, RunResult
    store = BaselineStore(args.baseline_dir or BASELINE_DIR)

    def load(option: str, name: str, must_exist: bool = True) -> BaselineHistory | None:
        try:
            if not must_exist and not store.exists(name):
                return None
            return store.history(name)
        except ValueError as e:          # a bad name, a damaged or foreign file
            if isinstance(e, ResultFormatError):
                raise _Usage(f"--{option} {name}: {e}; nothing was overwritten") from None
            raise _Usage(f"--{option}: {e}") from None
        except BaselineNotFoundError as e:
            raise _Usage(f"--{option}: {e}") from None

    baseline = None
    if args.baseline:
        baseline = load("baseline", args.baseline)
    elif args.save_baseline:
        baseline = load("save-baseline", args.save_baseline, must_exist=False)
    quick = args.quick
    failures: list[str] = []
    if args.load_baseline:
        saved = load("load-baseline", args.load_baseline)
        assert saved is not None
        loaded = current = saved.latest()
        if args.scenarios:                # the selected scenarios of the saved run
            missing = [n for n in names if n not in loaded.names]
            if missing:
                raise _Usage(f"--load-baseline {args.load_baseline}: no scenario "
                             f"{missing[0]!r} in it; its scenarios: {', '.join(loaded.names)}")
            current = RunResult(loaded.metadata,
                                tuple(t for t in loaded.scenarios if t.scenario in names))
        interrupted = False
    else:
        changes = _changes(args, names, quick, err)
        # the baseline was read to check it; it is read again after the run,
        # so that the measuring process does not hold it (megabytes of
        # histories change what the process's own memory figures show)
        reread = (args.baseline or args.save_baseline) if baseline is not None else None
        baseline = None
        _release_memory()
        current, interrupted, failures = _run(args, names, quick, changes, thresholds, err)
        if runs_dir is not None:
            _keep(current, runs_dir, err)
        if reread:
            baseline = load("baseline" if args.baseline else "save-baseline", reread)

    comparison = None
    code = EXIT_OK
    if baseline is not None:
        try:
            comparison = compare(baseline, current, threshold=fixed, thresholds=per_metric,
                                 noise_threshold=args.noise_threshold,
                                 significance=args.significance,
                                 lenient=args.baseline_lenient or bool(args.save_baseline))
        except MissingCounterpartError as e:
            print(f"error: --baseline {args.baseline}: {e}", file=err)
            comparison = compare(baseline, current, threshold=fixed, thresholds=per_metric,
                                 noise_threshold=args.noise_threshold,
                                 significance=args.significance, lenient=True)
            code = EXIT_FAILED

    if comparison is not None and comparison.changed_scenarios() and args.confirm \
            and not args.load_baseline and not interrupted:
        comparison = _confirmed(args, comparison, baseline, fixed, per_metric, err)

    from ._reports import terminal_summary, write_reports
    print(terminal_summary(current, comparison, color=out.isatty()), file=out, flush=True)
    if comparison is not None:
        for w in comparison.warnings:
            print(f"warning: {w}", file=err)
    if args.report:
        try:
            paths = write_reports(current, comparison, args.report, output)
            print(f"reports: {', '.join(str(p) for p in paths)}", file=out)
        except OSError as e:
            print(f"error: the reports could not be written to {output}: "
                  f"{e.strerror or e} (the results are printed above)", file=err)
            code = EXIT_FAILED
    if args.save_baseline:
        if interrupted:
            print(f"note: the run was interrupted: baseline {args.save_baseline!r} not saved",
                  file=err)
        else:
            try:
                path = store.save(args.save_baseline, current)
                kept = len(store.run_files(args.save_baseline))
                print(f"baseline {args.save_baseline!r}: run saved ({kept} in its history, "
                      f"the last {store.keep} kept): {path}", file=out)
            except BaselineRefusedError as e:
                print(f"error: {e}", file=err)
                code = EXIT_FAILED
            except OSError as e:
                print(f"error: baseline {args.save_baseline!r} could not be saved to "
                      f"{store.directory}: {e.strerror or e}", file=err)
                code = EXIT_FAILED
    if interrupted:
        print("interrupted: the results above are partial", file=err)
        return EXIT_INTERRUPTED
    if comparison is not None and comparison.regressions:
        code = EXIT_FAILED
    if slos:
        lines, held = _check_slos(current, slos)
        for line in lines:
            print(line, file=out)
        if not held:
            code = EXIT_FAILED
    if failures:
        print(f"error: {len(failures)} scenario(s) failed to run: "
              + "; ".join(failures), file=err)
        code = EXIT_FAILED
    from ._model import Grade
    graded = current.graded_at_least(Grade(args.fail_on))
    if graded:
        shown = ", ".join(f"{s}/{m} {g.value}" for s, m, g in graded[:8])
        more = f" and {len(graded) - 8} more" if len(graded) > 8 else ""
        print(f"error: {len(graded)} figure(s) graded {args.fail_on} or worse "
              f"(--fail-on {args.fail_on}): {shown}{more}", file=err)
        code = EXIT_FAILED
    return code


# -- calibrate ---------------------------------------------------------------------------

def cmd_calibrate(argv: list[str], prog: str) -> int:
    """``calibrate NAME [SCENARIO ...] --runs N``: run the selected
    scenarios N times on unchanged code, add each run to baseline NAME's
    history, and print, metric by metric, the run-to-run spread and the
    smallest change the gate can detect here."""
    parser = _parser(prog)
    parser.description = (cmd_calibrate.__doc__ or "").split("\n\n")[0]
    parser.add_argument("--runs", type=_positive(int), default=10,
                        help="runs to save (default 10; the gate needs 3 at least)")
    parser.add_argument("--pytest", nargs=argparse.REMAINDER, default=None, metavar="ARGS",
                        help="calibrate a pytest suite that uses the meter fixture instead: "
                             "the rest of the line is pytest's arguments, run --runs times")
    args = parser.parse_args(argv)
    try:
        return _calibrate(args, argv)
    except _Usage as e:
        print(f"{prog}: error: {e}\n{_see_help(prog)}", end="", file=sys.stderr)
        return EXIT_USAGE


def _calibrate(args: argparse.Namespace, argv: list[str]) -> int:
    from ._baselines import BASELINE_DIR, BaselineStore
    from ._scenarios import SCENARIOS
    err = sys.stderr
    if not args.scenarios:
        raise _Usage("give the baseline's NAME first: calibrate NAME [SCENARIO ...]")
    name, *scenarios = args.scenarios
    for option in ("baseline", "save_baseline", "load_baseline", "self_check", "list"):
        if getattr(args, option):
            raise _Usage(f"--{option.replace('_', '-')} is not for calibrate, which saves "
                         f"its runs to baseline {name!r}")
    store = BaselineStore(args.baseline_dir or BASELINE_DIR)
    try:
        store.path(name)
    except ValueError as e:
        raise _Usage(str(e)) from None
    unknown = [n for n in scenarios if n not in SCENARIOS]
    if unknown:
        from ._checks import did_you_mean
        raise _Usage(f"unknown scenario {unknown[0]!r}{did_you_mean(unknown[0], SCENARIOS)}; "
                     f"scenarios: {', '.join(SCENARIOS)}")
    if args.pytest is not None:
        if scenarios:
            raise _Usage("--pytest calibrates a test suite: give no scenario")
        code = _calibrate_pytest(name, args, store)
        if code != EXIT_OK:
            return code
        return _print_calibration(name, store, args.significance)
    names = list(dict.fromkeys(scenarios)) or list(SCENARIOS)
    _changes(args, names, args.quick, err)          # bad options stop here, before any run
    # each run a process of its own, as CI runs them: what one process
    # carries from run to run (its memory, warmed caches) is not the spread
    import subprocess
    given = _without_runs(argv)
    given.remove(name)                               # the run's own options and scenarios
    for i in range(args.runs):
        if not args.quiet:
            print(f"calibrate: run {i + 1} of {args.runs}", file=err, flush=True)
        before = len(store.run_files(name))
        command = [sys.executable, "-m", "caxton_meter.run", *given, "--save-baseline", name,
                   "--baseline-dir", str(store.directory.resolve()), "--quiet"]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if done.returncode == EXIT_INTERRUPTED:
            print(f"interrupted: {i} run(s) saved to baseline {name!r}", file=err)
            return EXIT_INTERRUPTED
        if len(store.run_files(name)) <= before and store.keep > before:
            print(f"error: run {i + 1} was not saved to baseline {name!r} (exit "
                  f"{done.returncode}): {done.stderr.strip()}", file=err)
            return EXIT_FAILED
    return _print_calibration(name, store, args.significance)


def _confirmed(args: argparse.Namespace, comparison: Any, baseline: Any, fixed: float,
               per_metric: dict[str, float], err: TextIO) -> Any:
    """Re-run, in a process of its own, the scenarios that changed, and keep
    only the changes the re-run repeats (the others become transient)."""
    import subprocess
    import tempfile

    from ._compare import compare, confirm
    from ._results import read_result
    names = list(comparison.changed_scenarios())
    if not args.quiet:
        print(f"confirming: re-running {', '.join(names)}", file=err, flush=True)
    options = []
    for option in ("trials", "duration", "rate", "agents", "message_size", "agent_kind",
                   "deadline"):
        value = getattr(args, option)
        if value is not None:
            options += [f"--{option.replace('_', '-')}", str(value)]
    from ._scenarios import SCENARIOS
    for scenario, field, _, text in args.sets:       # those that apply to the re-run
        if scenario in names or (scenario is None and any(
                field in SCENARIOS[n].config.field_names() for n in names)):
            options += ["--set", text]
    with tempfile.TemporaryDirectory(prefix="caxton-meter-confirm-") as tmp:
        done = subprocess.run([sys.executable, "-m", "caxton_meter.run", *names, *options,
                               *(["--quick"] if args.quick else []), "--quiet",
                               "--report", "json", "--output", tmp],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            again = read_result(Path(tmp) / "report.json")
        except (OSError, ValueError) as e:
            print(f"warning: the re-run to confirm the changes failed (exit "
                  f"{done.returncode}: {done.stderr.strip() or e}): they stand unconfirmed",
                  file=err)
            return comparison
    second = compare(baseline, again, threshold=fixed, thresholds=per_metric,
                     noise_threshold=args.noise_threshold, significance=args.significance,
                     lenient=True)
    return confirm(comparison, second)


def _release_memory() -> None:
    """Collect garbage and hand the freed heap back to the system (glibc's
    malloc_trim, where there is one), so that a run's memory figures start
    from the same state whether or not a baseline was read before it."""
    import gc
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.malloc_trim(0)
        except (OSError, AttributeError):       # not glibc: nothing to trim
            pass


def _without_runs(argv: list[str]) -> list[str]:
    """``argv`` without its ``--runs N`` (or ``--runs=N``)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--runs":
            skip = True
        elif not token.startswith("--runs="):
            out.append(token)
    return out


def _calibrate_pytest(name: str, args: argparse.Namespace, store: Any) -> int:
    """Run pytest with ``--meter-save-baseline NAME`` ``--runs`` times, each
    session a process of its own, as CI runs it."""
    import subprocess
    err = sys.stderr
    for i in range(args.runs):
        if not args.quiet:
            print(f"calibrate: pytest session {i + 1} of {args.runs}", file=err, flush=True)
        command = [sys.executable, "-m", "pytest", *args.pytest, "--meter-save-baseline", name,
                   "--meter-baseline-dir", str(store.directory.resolve())]
        done = subprocess.run(command, stdout=subprocess.DEVNULL if args.quiet else None)
        if done.returncode != 0:
            print(f"error: the pytest session exited {done.returncode}: {i} session(s) saved "
                  f"to baseline {name!r} ({' '.join(command)})", file=err)
            return EXIT_INTERRUPTED if done.returncode == 2 else EXIT_FAILED
    return EXIT_OK


def _print_calibration(name: str, store: Any, significance: float) -> int:
    from ._compare import detectable_changes
    out = sys.stdout
    history = store.history(name)
    found = detectable_changes(history, significance=significance)
    print(f"baseline {name!r}: {len(history.runs)} saved run(s); what a run of these "
          f"{len(found)} comparisons can detect here (false-alarm rate "
          f"{significance:g} for the whole run, power 0.8):", file=out)
    from ._units import format_quantity
    width = max((len(f"{d.scenario}/{d.metric}") for d in found), default=10)
    for d in found:
        print(f"  {d.scenario + '/' + d.metric:<{width}}  spread "
              f"{format_quantity(d.spread, 'ratio'):>8}   detects >= "
              f"{format_quantity(d.detectable, 'ratio'):>8}"
              + (f"   ({d.left_out} outlying run(s) left out)" if d.left_out else ""), file=out)
    by_kind: dict[str, list[float]] = {}
    for d in found:
        by_kind.setdefault(d.spec.kind.value, []).append(d.detectable)
    if by_kind:
        import statistics
        print("this machine can detect (median over the metrics of each kind): "
              + ", ".join(f">= {format_quantity(statistics.median(v), 'ratio')} {kind}"
                          for kind, v in sorted(by_kind.items())) + " changes", file=out)
    _write_calibration(store.path(name) / "calibration.json", history, found, significance)
    return EXIT_OK


def _write_calibration(path: Any, history: Any, found: Any, significance: float) -> None:
    """The calibration as JSON beside the runs it was computed from
    (format 2: per metric its runs, spread, detectable change and the saved
    runs left out of the spread as outliers; format 1 had no left_out)."""
    import json as _json

    from ._results import write_atomic
    write_atomic(path, _json.dumps({
        "kind": "caxton_meter.calibration", "format": 2, "runs": len(history.runs),
        "significance": significance, "power": 0.8, "comparisons": len(found),
        "metrics": [{"scenario": d.scenario, "metric": d.metric, "runs": d.runs,
                     "spread": d.spread, "detectable": d.detectable,
                     "left_out": d.left_out} for d in found]},
        indent=1, allow_nan=False, default=float) + "\n")


def cmd_history(argv: list[str], prog: str) -> int:
    from ._history import main_history
    return main_history(argv, prog)


def cmd_merge(argv: list[str], prog: str) -> int:
    from ._logmerge import main_merge
    return main_merge(argv, prog)


def cmd_http(argv: list[str], prog: str) -> int:
    from ._cli_network import main_http
    return main_http(argv, prog)


def cmd_capacity(argv: list[str], prog: str) -> int:
    from ._cli_network import main_capacity
    return main_capacity(argv, prog)


_COMMANDS = {"calibrate": cmd_calibrate, "history": cmd_history, "merge": cmd_merge,
             "http": cmd_http, "capacity": cmd_capacity}
