"""Reports of a run, and of a run compared with a baseline: Markdown for a
pull-request comment, a self-contained HTML page with plots, JSON, the
input of github-action-benchmark, HdrHistogram interval logs and a
fixed-width terminal table.

Data flows one way: everything here reads a :class:`RunResult` and, when
given, a :class:`Comparison` of it against a baseline; nothing here changes
them or measures anything.

Which metrics a report shows, and where, is what each metric declares
(:class:`~caxton_meter._model.Kind` and
:class:`~caxton_meter._model.Direction`).  A metric is reported when it is
graded against the targets table or compared (its direction is not NONE):
counts, flags and the load a config asks for are the test's set-up, not a
result.  Reported metrics fall into four sections by kind:

* Throughput: throughputs (events per second);
* Latency: latencies (the time one event takes), the percentiles of one
  histogram in percentile order;
* Resource usage: memory and CPU;
* Other metrics: durations (spawn, recovery), ratios and the rest.

Plots need matplotlib (the ``plots`` extra); it is imported when an HTML
report is made, and without it the page still holds every table.  Figures
are built with the object-oriented API (``matplotlib.figure.Figure``), so
no pyplot state is touched and no GUI backend is needed, and embedded as
SVG data URIs: each is a document of its own, so their internal ids cannot
collide, and the page opens offline.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._compare import Comparison, MetricComparison
from ._core import Histogram
from ._hdrlog import HistogramLogWriter
from ._regression import Change, Verdict
from ._results import RunResult, Trials, json_safe, run_date, write_atomic
from ._units import format_change, format_quantity
from ._model import Direction, Grade, MetricSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._capacity import CapacityResult

__all__ = [
    "COMPARISON_FORMAT_VERSION",
    "REPORT_FORMATS",
    "capacity_html",
    "capacity_table",
    "github_benchmark",
    "html_report",
    "json_report",
    "markdown_report",
    "terminal_summary",
    "write_interval_logs",
    "write_reports",
]

REPORT_FORMATS = ("md", "html", "json")

# The JSON comparison document (json_report with a comparison).  Without a
# comparison json_report writes the result format itself (RunResult.to_json,
# versioned in _results.FORMAT_VERSION).  Strict JSON: NaN and infinities
# are written as null.
#
#   {"kind": "caxton_meter.comparison", "format": 1,
#    "current": <the run, as RunResult.to_dict: RunResult.from_dict reads it>,
#    "baseline_metadata": <the baseline run's metadata>,
#    "summary": {"compared": n, "regressions": n, "improvements": n,
#                "not_gateable": n, "transient": <changes a re-run did not repeat>,
#                "family": <comparisons tested together>,
#                "significance": <the whole run's false-alarm rate (Holm)>,
#                "history_runs": <saved runs behind the baseline>,
#                "passed": <no graded metric of the run FAILED>},
#    "comparisons": [{"scenario", "metric", "unit",
#                     "verdict": "regressed" | "improved" | "no change" | "within noise"
#                                | "not gateable" | "transient",
#                     "baseline", "current": the two estimates (Change.baseline/current),
#                     "change", "ci_low", "ci_high": relative changes (0.1 = +10 %),
#                     "p_value": number or null, "method": str,
#                     "higher_is_better": bool, "exceeds_threshold": bool,
#                     "baseline_n": saved runs, "current_n": this run's trials,
#                     "spread": run-to-run spread (relative) or null,
#                     "detectable": smallest detectable relative change or null,
#                     "adjusted_p": the Holm-adjusted p-value or null,
#                     "left_out": saved runs left out of the spread as outliers,
#                     "grade": the grade of the run's mean for the metric, or null}, ...],
#    "missing": ["scenario/metric" of the run with no baseline counterpart, ...],
#    "warnings": [str, ...]}
#
# History:
#   1: the first version.
#   2: verdicts against a history of saved runs: "not gateable", the family
#      and its significance in the summary, spread / detectable / adjusted_p
#      per comparison; baseline_n counts saved runs.
#   3: left_out per comparison (baseline_n counts the saved runs used).
COMPARISON_FORMAT_VERSION = 3
_COMPARISON_KIND = "caxton_meter.comparison"

_GRADE_ICON = {Grade.TARGET: "✅", Grade.ACCEPTABLE: "🟡", Grade.CRITICAL: "🟠",
               Grade.FAILED: "❌"}
_VERDICT_ICON = {Verdict.REGRESSED: "🔴", Verdict.IMPROVED: "🟢", Verdict.NO_CHANGE: "⚪",
                 Verdict.WITHIN_NOISE: "🟡", Verdict.NOT_GATEABLE: "❔",
                 Verdict.TRANSIENT: "〰️"}
_PLOTS_NOTE = "plots need matplotlib: pip install 'caxton_meter[plots]'"
_DASH = "—"


# -- values on plot axes ------------------------------------------------------------------------

def _scale_of(value: float, scales: Sequence[tuple[float, str]]) -> tuple[float, str]:
    """The largest (factor, label) of ``scales`` (largest first) that
    ``value`` reaches once rounded to three digits: 999.7 ns is 1 µs, not
    1000 ns.  The last scale when it reaches none."""
    a = abs(value)
    for factor, label in scales:
        if a >= factor * (1 - 5e-4):
            return factor, label
    return scales[-1]


_TIME = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
_BYTES = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB"), (1.0, "B"))


def _signed_percent(x: float, *, sign: bool = True) -> str:
    if math.isnan(x):
        return _DASH
    if math.isinf(x):
        return "+∞" if x > 0 else "−∞"
    return f"{x * 100:+.1f}" if sign else f"{x * 100:.1f}"


def _change_text(change: Change) -> str:
    """The relative change, its interval when it has one, and the p-value:
    "+12.3 % [+9.8, +14.9] (p=0.004)"."""
    text = format_change(change.change)
    if not text.endswith("%"):          # a factor: the interval in percent would say nothing
        return text
    lo, hi = change.ci_low, change.ci_high
    if math.isfinite(lo) and math.isfinite(hi) and not (lo == hi == change.change):
        text += f" [{_signed_percent(lo)}, {_signed_percent(hi)}]"
    if change.p_value is not None and math.isfinite(change.p_value):
        p = change.p_value
        text += " (p<0.001)" if p < 0.001 else f" (p={p:.3f})"
    return text


def _verdict_text(change: Change, *, icon: bool = True) -> str:
    """The verdict in words, with what the test could see: "no change
    (detects ≥ 6.2 %)", "not gateable here (spread 31 %)"."""
    text = change.verdict.value
    if change.verdict is Verdict.NOT_GATEABLE:
        text += (f" here (spread {_signed_percent(change.spread, sign=False)} %, detects "
                 f"≥ {_signed_percent(change.detectable, sign=False)} %{_left_out(change)})"
                 if change.spread is not None and change.detectable is not None
                 else f" yet ({change.method})")
    elif change.detectable is not None:
        text += (f" (detects ≥ {_signed_percent(change.detectable, sign=False)} %"
                 f"{_left_out(change)})")
    return f"{_VERDICT_ICON[change.verdict]} {text}" if icon else text


def _left_out(change: Change) -> str:
    """", 1 outlying saved run left out" when the spread left runs out."""
    if not change.left_out:
        return ""
    return f", {_plural(change.left_out, 'outlying saved run')} left out"


def _grade_text(grade: Grade | None) -> str:
    return _DASH if grade is None else f"{_GRADE_ICON[grade]} {grade.value}"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


# -- what a report shows ----------------------------------------------------------------------

_SECTIONS = (("throughput", "Throughput"), ("latency", "Latency"),
             ("resources", "Resource usage"), ("other", "Other metrics"))


@dataclass(frozen=True)
class _Row:
    """One reported metric of one scenario."""
    scenario: str
    metric: str
    unit: str
    values: tuple[float, ...]             # finite values, one per trial that measured it
    grade: Grade | None
    compared: MetricComparison | None
    missing: bool                         # no counterpart in the baseline
    spec: MetricSpec                      # the metric's declaration
    trial_grades: tuple[Grade, ...] = ()  # each trial's grade
    indistinct: str | None = None         # "below resolution", "noise" (Trials.indistinct)
    resolution: float | None = None

    def grade_note(self) -> str:
        """" (2 of 5 trials critical)" when some trials were graded worse
        than the figure shown (their mean): the spread, in grades."""
        if self.grade is None or len(self.trial_grades) < 2:
            return ""
        worst = max(self.trial_grades, key=lambda g: g.rank)
        if worst.rank <= self.grade.rank:
            return ""
        n = sum(1 for g in self.trial_grades if g is worst)
        return f" ({n} of {len(self.trial_grades)} trials {worst.value})"

    @property
    def section(self) -> str:
        return self.spec.kind.section

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / len(self.values) if self.values else math.nan

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    def current_text(self) -> str:
        text = format_quantity(self.mean, self.unit)
        if len(self.values) > 1:
            text += f" ± {format_quantity(self.stdev, self.unit)}"
        if self.indistinct == "below resolution" and self.resolution is not None:
            text += f" (below resolution, {format_quantity(self.resolution, self.unit)})"
        elif self.indistinct is not None:
            text += f" ({self.indistinct})"
        return text


def _reported(trials: Trials, name: str) -> bool:
    return trials.grade(name) is not None or trials.spec(name).compared


def _rows(run: RunResult, comparison: Comparison | None) -> list[_Row]:
    compared = {(m.scenario, m.metric): m for m in comparison.metrics} if comparison else {}
    missing = set(comparison.missing) if comparison else set()
    rows = []
    for t in run.scenarios:
        for name in t.metric_names:
            if not _reported(t, name):
                continue
            rows.append(_Row(t.scenario, name, t.unit(name), t.values(name), t.grade(name),
                             compared.get((t.scenario, name)),
                             f"{t.scenario}/{name}" in missing or f"{t.scenario}/*" in missing,
                             t.spec(name), t.trial_grades(name), t.indistinct(name),
                             t.resolution(name)))
    return rows


def _by_section(rows: Sequence[_Row]) -> list[tuple[str, str, list[_Row]]]:
    """The non-empty sections: (key, title, rows), rows in scenario order;
    the percentiles of one histogram in percentile order, where the first
    of them stood."""
    out = []
    for key, title in _SECTIONS:
        chosen = [r for r in rows if r.section == key]
        groups: dict[tuple[str, str], int] = {}
        for r in chosen:
            groups.setdefault((r.scenario, r.spec.histogram or f"/{r.metric}"), len(groups))
        chosen.sort(key=lambda r: (groups[r.scenario, r.spec.histogram or f"/{r.metric}"],
                                   r.spec.percentile or 0.0))
        if chosen:
            out.append((key, title, chosen))
    return out


def _cells(row: _Row, comparison: Comparison | None) -> list[str]:
    """A row's cells, as plain text (the caller escapes them)."""
    if comparison is None:
        return [row.scenario, row.metric, row.current_text(),
                _grade_text(row.grade) + row.grade_note()]
    current = row.current_text()
    if row.grade is not None:
        current += f" {_GRADE_ICON[row.grade]}"
    c = row.compared
    if c is None:
        why = "no baseline" if row.missing else "not compared"
        return [row.scenario, row.metric, _DASH, current, _DASH, why]
    return [row.scenario, row.metric, format_quantity(c.change.baseline, row.unit), current,
            _change_text(c.change), _verdict_text(c.change)]


def _headers(comparison: Comparison | None) -> list[str]:
    if comparison is None:
        return ["Scenario", "Metric", "Current", "Grade"]
    return ["Scenario", "Metric", "Baseline", "Current", "Change", "Verdict"]


_RIGHT = {"Baseline", "Current", "Change"}


@dataclass(frozen=True)
class _Summary:
    """What the Summary section says, as (icon, text) lines and quoted
    warnings/information (icon, text)."""
    lines: list[tuple[str, str]]
    notices: list[tuple[str, str]]


def _listing(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _summary(run: RunResult, rows: Sequence[_Row], comparison: Comparison | None) -> _Summary:
    lines: list[tuple[str, str]] = []
    notices: list[tuple[str, str]] = []
    graded = [r for r in rows if r.grade is not None]
    failed = [f"{r.scenario}/{r.metric} ({r.grade.value})" for r in graded
              if r.grade in (Grade.FAILED, Grade.CRITICAL)]
    below = [f"{r.scenario}/{r.metric} ({r.grade.value})" for r in graded
             if r.grade is Grade.ACCEPTABLE]
    if not graded:
        lines.append(("ℹ️", "No metric is graded against a target"))
    elif failed:
        lines.append(("❌", f"{_plural(len(failed), 'metric')} graded critical or failed "
                            f"(the command line's default --fail-on): {_listing(failed)}"))
    elif below:
        lines.append(("✅", f"No metric critical or failed; {len(below)} of {len(graded)} "
                            f"graded acceptable, short of the target: {_listing(below)}"))
    else:
        lines.append(("✅", f"All performance targets met ({_plural(len(graded), 'metric')} "
                            "graded)"))
    if comparison is not None:
        n = len(comparison.regressions)
        if n:
            regressed = [f"{m.scenario}/{m.metric}" for m in comparison.regressions]
            lines.append(("⚠️", f"{n} performance regression{'s' if n != 1 else ''} detected: "
                                f"{_listing(regressed)}"))
        else:
            lines.append(("✅", "No regressions"))
        gated = comparison.family
        lines.append(("ℹ️", f"{_plural(gated, 'comparison')} against {comparison.history_runs} "
                            f"saved run(s), false-alarm rate {comparison.significance:g} for "
                            "the whole run (Holm)"
                            + (f"; {len(comparison.not_gateable)} not gateable here"
                               if comparison.not_gateable else "")))
        k = len(comparison.improvements)
        if k:
            lines.append(("📈", _plural(k, "improvement")))
        if comparison.transient:
            lines.append(("〰️", f"{_plural(len(comparison.transient), 'change')} not repeated "
                                 "on a re-run of the same code (transient, not failed): "
                                 + _listing([f"{m.scenario}/{m.metric}"
                                             for m in comparison.transient])))
        for w in comparison.warnings:
            notices.append(("⚠️", w))
        if comparison.missing:
            notices.append(("ℹ️", "Not compared, no counterpart in the baseline: "
                                  + _listing(list(comparison.missing))))
        gone = _baseline_only(comparison.baseline, run)
        if gone:
            notices.append(("ℹ️", "In the baseline but not in this run: " + _listing(gone)))
    if run.metadata.get("stopped_early"):
        notices.append(("⚠️", "The run stopped early (interrupted): some scenarios or trials "
                              "are missing"))
    partial = [t.scenario for t in run.scenarios if t.partial]
    if partial:
        notices.append(("⚠️", "Partial results (a trial was interrupted): "
                              + _listing(partial)))
    return _Summary(lines, notices)


def _baseline_only(baseline: RunResult, run: RunResult) -> list[str]:
    """Reported metrics of the baseline that this run does not have."""
    out = []
    for t in baseline.scenarios:
        here = set(run.scenario(t.scenario).metric_names) if t.scenario in run.names else None
        if here is None:
            out.append(f"{t.scenario}/*")
            continue
        out.extend(f"{t.scenario}/{n}" for n in t.metric_names
                   if n not in here and _reported(t, n))
    return out


def _notes(run: RunResult) -> list[tuple[str, str]]:
    """(scenario, text) for each distinct note and partial trial, the
    trials it came from named."""
    out = []
    for t in run.scenarios:
        seen: dict[str, list[int]] = {}
        for i, r in enumerate(t.results, 1):
            if r.partial:
                seen.setdefault("partial result: the trial was cut short (a deadline or "
                                "Ctrl-C; its figures cover the part that ran)", []).append(i)
            for note in r.notes:
                seen.setdefault(note, []).append(i)
        for text, trials in seen.items():
            which = (f"trial {trials[0]}" if len(trials) == 1
                     else "trials " + ", ".join(map(str, trials)))
            if len(t.results) > 1:
                text = f"({which}) {text}"
            out.append((t.scenario, text))
    return out


def _load_facts(run: RunResult) -> list[tuple[str, str]]:
    """(scenario, text): what became of the load each scenario asked for --
    the rate achieved beside the rate asked (open loops), and the requests
    dropped and failed whenever there were any -- over all its trials."""
    out = []
    for t in run.scenarios:
        parts = []
        names = t.metric_names
        if "achieved_rate" in names and "intended_rate" in names:
            achieved, asked = t.values("achieved_rate"), t.values("intended_rate")
            if achieved and asked:
                a, w = math.fsum(achieved) / len(achieved), math.fsum(asked) / len(asked)
                share = f" ({a / w:.1%})" if w > 0 else ""
                parts.append(f"achieved {format_quantity(a, t.unit('achieved_rate'))} of "
                             f"{format_quantity(w, t.unit('intended_rate'))} asked{share}")
        for count in ("dropped", "failed"):
            if count in names:
                n = math.fsum(t.values(count))
                if n > 0:
                    injected = (count == "failed" and "faults" in names
                                and math.fsum(t.values("faults")) == n)
                    parts.append(f"{int(n):,} {count}"
                                 + (" (each a fault the scenario injects)" if injected else ""))
        if t.partial:
            parts.append(f"partial ({sum(1 for r in t.results if r.partial)} of "
                         f"{_plural(len(t.results), 'trial')}; see the notes)")
        machine = run.metadata.get("machine_state", {}).get(t.scenario, {})
        late, steal = machine.get("wake_late_p99_ns", 0), machine.get("steal_percent", 0.0)
        if late >= _NOISY_WAKE_NS or steal >= _NOISY_STEAL:
            parts.append(f"a noisy machine: timer wake-ups late by {late / 1e3:,.0f} us at p99, "
                         f"steal time {steal:.1f} %")
        if parts:
            out.append((t.scenario, "; ".join(parts)))
    return out


# The machine's state worth a line under the table (_machine_state): a sleeping
# thread woken a millisecond late at p99, or the host taking 1 % of the CPU.
_NOISY_WAKE_NS = 1_000_000
_NOISY_STEAL = 1.0


def _date(meta: Mapping[str, Any]) -> str:
    when = run_date(meta)
    if when is None:
        return "unknown"
    if isinstance(when, str):
        return when
    return when.strftime("%Y-%m-%d %H:%M:%S" + (" UTC" if when.tzinfo is not None else ""))


def _commit(meta: Mapping[str, Any]) -> str:
    git = meta.get("git")
    if not isinstance(git, Mapping) or not isinstance(git.get("commit"), str):
        return "unknown (not a git checkout)"
    text: str = git["commit"][:7]
    if git.get("dirty"):
        text += "+dirty"
    branch = git.get("branch")
    if isinstance(branch, str) and branch and branch != "HEAD":
        text += f" ({branch})"
    return text


def _environment(meta: Mapping[str, Any]) -> str:
    def get(*path: str) -> Any:
        node: Any = meta
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    parts = []
    cpu = get("cpu", "model")
    count = get("cpu", "logical")
    parts.append(f"{cpu or 'unknown CPU'}" + (f" ×{count}" if count else ""))
    system = " ".join(str(x) for x in (get("os", "system"), get("os", "release")) if x)
    if system:
        parts.append(system)
    if get("python", "version"):
        parts.append(f"Python {get('python', 'version')}")
    if get("packages", "caxton_meter"):
        parts.append(f"caxton_meter {get('packages', 'caxton_meter')}")
    text = ", ".join(parts)
    profile, trials = meta.get("profile"), meta.get("trials")
    extra = []
    if profile:
        extra.append(f"profile {profile}")
    if isinstance(trials, int):
        extra.append(_plural(trials, "trial"))
    return text + ("; " + ", ".join(extra) if extra else "")


def _check_comparison(run: RunResult, comparison: Comparison | None) -> None:
    if comparison is not None and comparison.current is not run \
            and comparison.current.to_json() != run.to_json():
        raise ValueError("the comparison was made for another run: pass the run it compared "
                         "(comparison.current)")


# -- Markdown ---------------------------------------------------------------------------------

def _md(text: str) -> str:
    """``text`` safe in a GitHub Markdown table cell or line: backslashes
    and pipes escaped, line breaks as spaces, '<' as an entity (GitHub
    would read it as HTML)."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace("\r", " ").replace("\n", " "))


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in headers) + " |",
             "|" + "".join(" ---: |" if h in _RIGHT else " --- |" for h in headers)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def markdown_report(run: RunResult, comparison: Comparison | None = None) -> str:
    """The run (and its comparison with a baseline) as GitHub Markdown,
    fit for a pull-request comment: header, Summary, one table per section
    (Throughput, Latency, Resource usage, Other metrics) and the notes of
    partial results.  ValueError if ``comparison`` is of another run."""
    _check_comparison(run, comparison)
    rows = _rows(run, comparison)
    meta = run.metadata
    out = ["# Performance Report", "",
           f"**Date**: {_md(_date(meta))}\\",
           f"**Commit**: {_md(_commit(meta))}\\",
           f"**Environment**: {_md(_environment(meta))}"]
    if comparison is not None:
        out[-1] += "\\"
        base = comparison.baseline.metadata
        out.append(f"**Baseline**: {_md(_commit(base))} of {_md(_date(base))}")
    summary = _summary(run, rows, comparison)
    out += ["", "## Summary", ""]
    out += [f"{icon} {_md(text)}\\" for icon, text in summary.lines]
    out[-1] = out[-1][:-1]
    if summary.notices:
        out.append("")
        for i, (icon, text) in enumerate(summary.notices):
            if i:
                out.append(">")
            out.append(f"> {icon} {_md(text)}")
    for _, title, chosen in _by_section(rows):
        out += ["", f"## {title}", ""]
        out += _md_table(_headers(comparison), (_cells(r, comparison) for r in chosen))
    notes = _load_facts(run) + _notes(run)
    if notes:
        out += ["", "## Notes", ""]
        out += [f"- **{_md(s)}**: {_md(text)}" for s, text in notes]
    return "\n".join(out) + "\n"


# -- terminal ---------------------------------------------------------------------------------

_ANSI_GRADE = {Grade.TARGET: "32", Grade.ACCEPTABLE: "33", Grade.CRITICAL: "35",
               Grade.FAILED: "1;31"}
_ANSI_VERDICT = {Verdict.REGRESSED: "1;31", Verdict.IMPROVED: "32", Verdict.NO_CHANGE: "2",
                 Verdict.WITHIN_NOISE: "33", Verdict.NOT_GATEABLE: "2", Verdict.TRANSIENT: "33"}


def terminal_summary(run: RunResult, comparison: Comparison | None = None, *,
                     color: bool = False) -> str:
    """A fixed-width table of the reported metrics (scenario, metric,
    current value, grade and, with a comparison, change and verdict), the
    metrics not compared for want of a baseline counterpart, and a closing
    count of grades, regressions and improvements.  The comparison's
    warnings are not repeated here.  ANSI colours only when ``color``."""
    _check_comparison(run, comparison)
    rows = _rows(run, comparison)
    headers = ["scenario", "metric", "current", "grade"]
    if comparison is not None:
        headers += ["change", "verdict"]
    table: list[tuple[list[str], list[str | None]]] = []
    for r in rows:
        cells = [r.scenario, r.metric, r.current_text(),
                 r.grade.value + r.grade_note() if r.grade is not None else "-"]
        colors: list[str | None] = [None, None, None,
                                    _ANSI_GRADE[r.grade] if r.grade is not None else None]
        if comparison is not None:
            c = r.compared
            if c is None:
                cells += ["-", "no baseline" if r.missing else "not compared"]
                colors += [None, "2"]
            else:
                cells += [_change_text(c.change), _verdict_text(c.change, icon=False)]
                colors += [None, _ANSI_VERDICT[c.change.verdict]]
        table.append((cells, colors))
    widths = [max([len(h)] + [len(cells[i]) for cells, _ in table])
              for i, h in enumerate(headers)]
    right = {2, 4}

    def line(cells: Sequence[str], colors: Sequence[str | None]) -> str:
        parts = []
        for i, (text, code) in enumerate(zip(cells, colors)):
            padded = text.rjust(widths[i]) if i in right else text.ljust(widths[i])
            if color and code:
                padded = f"\x1b[{code}m{padded}\x1b[0m"
            parts.append(padded)
        return "  ".join(parts).rstrip()

    bold = "1" if color else None
    out = [line(headers, [bold] * len(headers)),
           "  ".join("-" * w for w in widths)]
    out += [line(cells, colors) for cells, colors in table]
    facts = _load_facts(run)
    # what went wrong, beside the table: partial trials' notes and loops
    # that fell behind their schedule
    told = [(scenario, text) for scenario, text in _notes(run)
            if "fell behind its schedule" in text
            or any(t.scenario == scenario and t.partial for t in run.scenarios)]
    if facts or told:
        out.append("")
        out += [f"{scenario}: {text}" for scenario, text in facts + told]
    # The comparison's warnings are left to the caller (the CLI prints them
    # to stderr); the metrics left out are part of the table's story.
    if comparison is not None:
        if comparison.missing:
            out.append(f"not compared (no baseline): {_listing(list(comparison.missing))}")
    counts = {g: sum(1 for r in rows if r.grade is g) for g in Grade}
    graded = sum(counts.values())
    final = (f"{_plural(len(run.scenarios), 'scenario')}, {_plural(graded, 'metric')} graded: "
             + ", ".join(f"{counts[g]} {g.value}" for g in Grade))
    if comparison is not None:
        final += (f"; {_plural(len(comparison.regressions), 'regression')}, "
                  f"{_plural(len(comparison.improvements), 'improvement')}")
    out.append(final)
    return "\n".join(out) + "\n"


# -- JSON -------------------------------------------------------------------------------------

def _comparison_entry(m: MetricComparison) -> dict[str, Any]:
    c = m.change
    return {"scenario": m.scenario, "metric": m.metric, "unit": m.unit,
            "verdict": c.verdict.value, "baseline": c.baseline, "current": c.current,
            "change": c.change, "ci_low": c.ci_low, "ci_high": c.ci_high,
            "p_value": c.p_value, "method": c.method, "higher_is_better": c.higher_is_better,
            "exceeds_threshold": c.exceeds_threshold, "baseline_n": c.baseline_n,
            "current_n": c.current_n, "spread": c.spread, "detectable": c.detectable,
            "adjusted_p": c.adjusted_p, "left_out": c.left_out,
            "grade": m.grade.value if m.grade is not None else None}


def json_report(run: RunResult, comparison: Comparison | None = None) -> str:
    """The run in the result format (``run.to_json()``) without a
    comparison; with one, the comparison document described at
    COMPARISON_FORMAT_VERSION.  Strict JSON either way."""
    _check_comparison(run, comparison)
    if comparison is None:
        return run.to_json()
    doc = {"kind": _COMPARISON_KIND, "format": COMPARISON_FORMAT_VERSION,
           "current": run.to_dict(),
           "baseline_metadata": comparison.baseline.metadata,
           "summary": {"compared": len(comparison.metrics),
                       "regressions": len(comparison.regressions),
                       "improvements": len(comparison.improvements),
                       "not_gateable": len(comparison.not_gateable),
                       "transient": len(comparison.transient),
                       "family": comparison.family,
                       "significance": comparison.significance,
                       "history_runs": comparison.history_runs,
                       "passed": run.passed},
           "comparisons": [_comparison_entry(m) for m in comparison.metrics],
           "missing": list(comparison.missing),
           "warnings": list(comparison.warnings)}
    return json.dumps(json_safe(doc), indent=1, allow_nan=False, ensure_ascii=False) + "\n"


def github_benchmark(run: RunResult, *, bigger_is_better: bool) -> str:
    """JSON for github-action-benchmark's ``customBiggerIsBetter``
    (``bigger_is_better=True``: throughputs, success rates) or
    ``customSmallerIsBetter`` tool (times, memory, CPU): one entry per
    metric of that direction with a finite value, named
    "<scenario>/<metric>", its value the mean over the trials."""
    if not isinstance(bigger_is_better, bool):
        raise TypeError(f"bigger_is_better must be a bool, not {type(bigger_is_better).__name__}")
    entries: list[dict[str, Any]] = []
    for t in run.scenarios:
        for name in t.metric_names:
            spec = t.spec(name)
            unit = spec.unit
            wanted = Direction.HIGHER if bigger_is_better else Direction.LOWER
            if spec.direction is not wanted:
                continue
            values = t.values(name)
            if not values:
                continue
            mean = math.fsum(values) / len(values)
            if not math.isfinite(mean):
                continue
            entry: dict[str, Any] = {"name": f"{t.scenario}/{name}", "unit": unit, "value": mean}
            if len(values) > 1:
                entry["range"] = f"± {statistics.stdev(values):.6g}"
            grade = t.grade(name)
            entry["extra"] = _plural(len(values), "trial") + (
                f"; grade {grade.value}" if grade is not None else "")
            entries.append(entry)
    return json.dumps(entries, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


# -- interval logs ----------------------------------------------------------------------------

def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _wall_offset(run: RunResult, trials: Trials) -> float:
    """Seconds to add to the core's monotonic clock to get the time since
    the epoch: from a resource profile of the scenario (its start reading
    has both clocks), else of any scenario of the run (one process, one
    monotonic clock), else by putting the first interval at the run's date."""
    for source in (trials, *run.scenarios):
        for r in source.results:
            if r.resources is not None:
                return r.resources.start_wall_time - r.resources.start_time
    first = min(iv.start_ns for r in trials.results for iv in r.intervals) / 1e9
    raw = run.metadata.get("date")
    try:
        date = _dt.datetime.fromisoformat(raw).timestamp() if isinstance(raw, str) else None
    except ValueError:
        date = None
    return (date if date is not None else 0.0) - first


def _interval_log(run: RunResult, trials: Trials) -> str:
    offset = _wall_offset(run, trials)
    start = min(iv.start_ns for r in trials.results for iv in r.intervals) / 1e9 + offset
    buf = io.StringIO()
    writer = HistogramLogWriter(buf)
    comment = f"[caxton_meter scenario {trials.scenario}; intervals tagged trial-<index>]"
    writer.write_header(start, base_time=start,
                        comment=comment if comment.isascii() and comment.isprintable() else None)
    for i, r in enumerate(trials.results):
        for iv in r.intervals:
            writer.output_interval_histogram(Histogram.decode(iv.latency),
                                             start_time=iv.start_ns / 1e9 + offset,
                                             end_time=iv.end_ns / 1e9 + offset,
                                             tag=f"trial-{i}")
    writer.close()
    return buf.getvalue()


def write_interval_logs(run: RunResult, directory: str | os.PathLike[str]) -> list[Path]:
    """One HdrHistogram interval log (``<scenario>.hlog``) per scenario with
    intervals, in ``directory`` (created if missing): every trial's
    intervals in order, tagged ``trial-<index>`` (from 0), timestamps in
    seconds since the epoch.  Each file is written atomically."""
    paths = []
    for t in run.scenarios:
        if any(r.intervals for r in t.results):
            path = Path(directory) / f"{_safe_filename(t.scenario)}.hlog"
            paths.append(write_atomic(path, _interval_log(run, t)))
    return paths


# -- writing reports --------------------------------------------------------------------------

def write_reports(run: RunResult, comparison: Comparison | None, formats: Sequence[str],
                  directory: str | os.PathLike[str]) -> list[Path]:
    """Write the reports of ``formats`` (of REPORT_FORMATS) to ``directory``
    (created if missing): ``report.md``, ``report.html``, ``report.json``;
    "json" also writes ``benchmark-bigger.json`` and ``benchmark-smaller.json``
    (github-action-benchmark) and the interval logs.  Each file is written
    atomically.  The files an earlier call wrote to the folder and this one
    did not (another run's interval logs, a format not asked for now) are
    removed, so the folder holds one run's reports; the folder's list of
    what it wrote is ``.caxton_meter-report``, and nothing else in the folder
    is touched.  ValueError, before writing anything, for an unknown format;
    an OSError writing propagates.  Returns the paths written."""
    if isinstance(formats, str):
        raise TypeError(f"formats must be a sequence of format names, such as ({formats!r},), "
                        "not a str")
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(REPORT_FORMATS)}")
    _check_comparison(run, comparison)
    folder = Path(directory)
    paths = []
    for fmt in dict.fromkeys(formats):
        if fmt == "md":
            paths.append(write_atomic(folder / "report.md", markdown_report(run, comparison)))
        elif fmt == "html":
            paths.append(write_atomic(folder / "report.html", html_report(run, comparison)))
        else:
            paths.append(write_atomic(folder / "report.json", json_report(run, comparison)))
            paths.append(write_atomic(folder / "benchmark-bigger.json",
                                      github_benchmark(run, bigger_is_better=True)))
            paths.append(write_atomic(folder / "benchmark-smaller.json",
                                      github_benchmark(run, bigger_is_better=False)))
            paths += write_interval_logs(run, folder)
    manifest = folder / _MANIFEST
    written = {p.name for p in paths}
    try:
        earlier = manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        earlier = []
    for name in earlier:
        stale = folder / name
        if name and name not in written and stale.parent == folder and stale.is_file():
            stale.unlink()
    write_atomic(manifest, "".join(f"{n}\n" for n in sorted(written)))
    return paths


_MANIFEST = ".caxton_meter-report"


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #fff; --muted: #656d76;
        --line: #d0d7de; --head: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --head: #161b22; }
  figure.plot img { background: #fff; }
}
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { margin-top: 0; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
ul.summary { list-style: none; padding-left: 0; }
.notice { border-left: 4px solid #d4a72c; padding: .2rem .8rem; margin: .4rem 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-bottom: 1rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
th { background: var(--head); } td.num { text-align: right; white-space: nowrap; }
tr.verdict-regressed td { background: rgba(207, 34, 46, .12); }
tr.verdict-improved td { background: rgba(26, 127, 55, .12); }
figure.plot { margin: 1rem 0 2rem; } figure.plot img { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; }
p.note { color: var(--muted); font-style: italic; }
.mark { display: inline-block; width: .8em; height: .8em; border-radius: 50%;
        vertical-align: -.08em; margin-right: .3em; box-sizing: border-box; }
.mark.ok { background: #1a7f37; } .mark.warn { background: #d4a72c; }
.mark.critical { background: #e16f24; } .mark.bad { background: #cf222e; }
.mark.none { border: 2px solid #8c959f; } .mark.info { background: #0969da; }
.mark.unknown { border: 2px dashed #8c959f; }
.mark.transient { background: #8c959f; border-radius: .2em; }
"""

_esc = html.escape

# The icons of the text reports, drawn in HTML with CSS (a coloured mark and
# its name as a tooltip): emoji need an emoji font, which many machines
# lack, and render there as empty boxes.
_HTML_MARKS = {"✅": ("ok", "met"), "🟡": ("warn", "acceptable / within noise"),
               "🟠": ("critical", "critical"), "❌": ("bad", "failed"),
               "🔴": ("bad", "regressed"), "🟢": ("ok", "improved"),
               "⚪": ("none", "no change"), "❔": ("unknown", "not gateable"),
               "〰️": ("transient", "transient"), "⚠️": ("warn", "warning"),
               "ℹ️": ("info", "information")}
_MARK_RE = re.compile("|".join(sorted(map(re.escape, _HTML_MARKS), key=len, reverse=True)))


def _html(text: str) -> str:
    """``text`` escaped for HTML, its icons drawn as marks."""
    def mark(m: re.Match[str]) -> str:
        cls, name = _HTML_MARKS[m.group(0)]
        return f'<span class="mark {cls}" role="img" aria-label="{name}" title="{name}"></span>'
    return _MARK_RE.sub(mark, _esc(text))


def _html_table(rows: Sequence[_Row], comparison: Comparison | None, section: str) -> str:
    headers = _headers(comparison)
    out = [f'<table class="metrics" id="table-{section}">', "<thead><tr>"]
    out += [f'<th scope="col">{_esc(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for r in rows:
        cls = ""
        if r.compared is not None:
            cls = f' class="verdict-{r.compared.change.verdict.name.lower().replace("_", "-")}"'
        cells = _cells(r, comparison)
        tds = ["<td class=\"num\">" if h in _RIGHT else "<td>" for h in headers]
        out.append(f"<tr{cls}>" + "".join(f"{td}{_html(c)}</td>" for td, c in zip(tds, cells))
                   + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


@dataclass(frozen=True)
class _Plot:
    id: str
    title: str
    alt: str
    caption: str
    draw: Callable[[Figure], None]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _time_axis(max_ns: float) -> tuple[float, str]:
    """Divisor and unit label for an axis of times up to ``max_ns``."""
    return _scale_of(max_ns if max_ns > 0 else 1.0, _TIME)


# HdrHistogram's percentile axis: x = 1/(1-p), so each "nine" is a decade.
_NINES = ((1.0, "0%"), (2.0, "50%"), (10.0, "90%"), (100.0, "99%"), (1e3, "99.9%"),
          (1e4, "99.99%"), (1e5, "99.999%"), (1e6, "99.9999%"), (1e7, "99.99999%"))


def _spectrum(h: Histogram) -> tuple[list[float], list[float]]:
    """(x = 1/(1-p), value) pairs from the minimum to the maximum, five
    points per halving of the distance to 100 %, as HdrHistogram's
    percentile distribution output."""
    total = h.total_count
    if total == 0:
        return [], []
    limit = float(max(total, 2))
    xs: list[float] = []
    ps: list[float] = []
    k = 0
    while True:
        x = 2.0 ** (k / 5)
        if x >= limit:
            break
        xs.append(x)
        ps.append(100.0 * (1 - 1 / x))
        k += 1
    ys = [float(v) for v in h.percentiles(ps)]
    xs.append(limit)
    ys.append(float(h.max))
    return xs, ys


def _merged(trials: Trials, name: str) -> Histogram | None:
    return trials.histogram(name) if name in trials.histogram_names else None


def _spectrum_plot(trials: Trials, base: Trials | None) -> _Plot | None:
    curves: list[tuple[str, Histogram, bool]] = []
    for name in ("latency", "round_trip"):
        h = _merged(trials, name)
        if h is None or h.total_count == 0:
            continue
        curves.append((name, h, False))
        b = _merged(base, name) if base is not None else None
        if b is not None and b.total_count > 0:
            curves.append((name, b, True))
    if not curves:
        return None
    first = curves[0][0]
    per_trial = [Histogram.decode(r.histograms[first]) for r in trials.results
                 if first in r.histograms] if len(trials.results) > 1 else []

    def draw(fig: Figure) -> None:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        ax = fig.add_subplot()
        data = [(name, is_base, *_spectrum(h)) for name, h, is_base in curves]
        colors = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(n for n, _, _ in curves))}
        overlay = any(is_base for _, _, is_base in curves)
        for name, is_base, xs, ys in data:
            who = "baseline" if is_base else "current"
            ax.plot(xs, ys, linestyle="--" if is_base else "-", color=colors[name],
                    label=f"{name} ({who})" if overlay else name, drawstyle="steps-post")
        ax.set_xscale("log")
        for h in per_trial:
            xs, ys = _spectrum(h)
            ax.plot(xs, ys, color="0.6", linewidth=0.7, alpha=0.6, drawstyle="steps-post")
        if per_trial:
            ax.plot([], [], color="0.6", linewidth=0.7, label="each trial")
        right = max(max(xs) for _, _, xs, _ in data)
        # from 50 %: "0%" and "50%" a step apart would overlap; the labels
        # turned so that the nines do not run into each other
        ticks = [(x, t) for x, t in _NINES if 2.0 <= x <= right * 1.0001]
        ax.set_xticks([x for x, _ in ticks], [t for _, t in ticks], rotation=30)
        ax.set_xlim(1.0, right)
        low = min(min(ys) for *_, ys in data)
        high = max(max(ys) for *_, ys in data)
        ax.minorticks_off()
        if low > 0:
            ax.set_yscale("log")
            # 1-2-5 ticks unless the range spans many decades
            subs = (1.0, 2.0, 5.0) if high / low < 1e3 else (1.0,)
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
            ax.minorticks_off()
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_quantity(v, "ns")))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper left")
        ax.set_title(f"{trials.scenario}: latency by percentile")

    names = ", ".join(dict.fromkeys(n for n, _, _ in curves))
    counts = ", ".join(f"{n}: {h.total_count:,} values" for n, h, b in curves if not b)
    baseline = "; the baseline dashed" if any(b for _, _, b in curves) else ""
    return _Plot(
        f"spectrum-{_slug(trials.scenario)}", f"Latency percentile spectrum: {trials.scenario}",
        f"Latency percentile spectrum of {trials.scenario} ({names})",
        f"Latency of {trials.scenario} at each percentile, the {_plural(len(trials.results), 'trial')}"
        f" merged ({counts}){baseline}"
        + (f"; each trial's {first} in grey. The tables give the mean of the trials' "
           "percentiles: a slower trial puts the merged curve's tail above that mean"
           if per_trial else "")
        + ". The x axis is HdrHistogram's 1/(1−p): each step to the right is one more "
        "nine; the right end is the maximum.", draw)


def _over_time_plot(trials: Trials) -> _Plot | None:
    series = []
    for i, r in enumerate(trials.results):
        if not r.intervals:
            continue
        t0 = r.intervals[0].start_ns
        xs, rates, p99s = [], [], []
        for iv in r.intervals:
            seconds = (iv.end_ns - iv.start_ns) / 1e9
            h = Histogram.decode(iv.latency)
            xs.append((iv.end_ns - t0) / 1e9)
            rates.append(iv.completed / seconds if seconds > 0 else math.nan)
            p99s.append(float(h.value_at_percentile(99.0)) if h.total_count else math.nan)
        series.append((i, xs, rates, p99s))
    if not series:
        return None

    def draw(fig: Figure) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        finite = [p for *_, p99s in series for p in p99s if math.isfinite(p)]
        div, label = _time_axis(max(finite) if finite else 1.0)
        for i, xs, rates, p99s in series:
            top.plot(xs, rates, marker="o", markersize=3, label=f"trial {i + 1}")
            bottom.plot(xs, [p / div for p in p99s], marker="o", markersize=3,
                        label=f"trial {i + 1}")
        top.set_ylabel("completed/s")
        # headroom above the highest point: a rate held flat at the offered
        # load would otherwise lie on the frame and vanish
        peak_rate = max((r for _, _, rates, _ in series for r in rates if math.isfinite(r)),
                        default=0.0)
        top.set_ylim(0, max(peak_rate * 1.15, 1.0))
        bottom.set_ylabel(f"p99 ({label})")
        bottom.set_ylim(bottom=0)
        bottom.set_xlabel("seconds since the first interval (interval end)")
        top.set_title(f"{trials.scenario}: throughput and p99 per interval")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        if len(series) > 1:
            top.legend(loc="lower right")

    n = sum(len(xs) for _, xs, _, _ in series)
    return _Plot(
        f"overtime-{_slug(trials.scenario)}", f"Throughput and p99 over time: {trials.scenario}",
        f"Throughput and interval p99 latency over time of {trials.scenario}",
        f"Completed requests per second and the p99 latency of each interval of "
        f"{trials.scenario} ({_plural(n, 'interval')}, one line per trial).", draw)


def _resources_plot(trials: Trials) -> _Plot | None:
    series = []
    for i, r in enumerate(trials.results):
        prof = r.resources
        if prof is None or not prof.samples:
            continue
        xs = [s.time - prof.start_time for s in prof.samples]
        # A sample's CPU % covers the time since the previous reading; over a
        # short span (the final reading stop() takes) it is mostly clock-tick
        # quantization, so, as max_cpu_percent, only spans of half an interval
        # or more are drawn.
        spans = [b - a for a, b in zip([0.0] + xs, xs)]
        cpu = [(x, s.cpu_percent) for x, s, span in zip(xs, prof.samples, spans)
               if span >= prof.interval / 2]
        series.append((i, [0.0] + xs, [float(prof.rss_start)] + [float(s.rss_bytes)
                                                                   for s in prof.samples],
                       [x for x, _ in cpu], [c for _, c in cpu]))
    if not series:
        return None

    def draw(fig: Figure) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        div, label = _scale_of(max(max(rss) for _, _, rss, _, _ in series), _BYTES)
        for i, rx, rss, cx, cpu in series:
            top.plot(rx, [v / div for v in rss], marker="o", markersize=3,
                     label=f"trial {i + 1}")
            bottom.plot(cx, cpu, marker="o", markersize=3, label=f"trial {i + 1}")
        top.set_ylabel(f"RSS ({label})")
        top.ticklabel_format(axis="y", style="plain", useOffset=False)
        # at least 5 % of the level on the axis: a run of milliseconds moves
        # RSS by a few pages, and ticks 38.429 ... 38.432 MB say nothing
        lo = min(min(rss) for _, _, rss, _, _ in series) / div
        hi = max(max(rss) for _, _, rss, _, _ in series) / div
        pad = max((hi - lo) * 0.1, hi * 0.025)
        top.set_ylim(max(lo - pad, 0.0), hi + pad)
        bottom.set_ylabel("CPU (%)")
        peak = max((max(cpu) for *_, cpu in series if cpu), default=0.0)
        bottom.set_ylim(0, max(peak * 1.1, 1.0))
        bottom.set_xlabel("seconds since the sampler started")
        top.set_title(f"{trials.scenario}: memory and CPU")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        if len(series) > 1:
            top.legend(loc="lower right")

    return _Plot(
        f"resources-{_slug(trials.scenario)}", f"Resources over time: {trials.scenario}",
        f"Resident memory and CPU over time of {trials.scenario}",
        f"The process's resident set size and CPU use (100 % is one core) while "
        f"{trials.scenario} ran, one line per trial; memory in decimal units.", draw)


_SCALED = re.compile(r"(throughput|spawn_time)@(\d+)")


def _scaling_points(trials: Trials) -> dict[str, list[tuple[int, float, float]]]:
    """metric stem -> [(agents, mean, stdev)] sorted by agents."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for name in trials.metric_names:
        m = _SCALED.fullmatch(name)
        values = trials.values(name)
        if m is None or not values:
            continue
        mean = math.fsum(values) / len(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        out.setdefault(m.group(1), []).append((int(m.group(2)), mean, sd))
    for points in out.values():
        points.sort()
    return out


def _scaling_plot(trials: Trials, base: Trials | None) -> _Plot | None:
    points = _scaling_points(trials)
    if not points:
        return None
    old = _scaling_points(base) if base is not None else {}

    agents = sorted({n for pts in points.values() for n, _, _ in pts})

    def draw(fig: Figure) -> None:
        stems = [s for s in ("throughput", "spawn_time") if s in points]
        axes = fig.subplots(len(stems), 1, sharex=True, squeeze=False)[:, 0]
        for ax, stem in zip(axes, stems):
            every = [m for _, m, _ in points[stem]] + [m for _, m, _ in old.get(stem, [])]
            if stem == "throughput":
                div, label = _scale_of(max(every), ((1e9, "G"), (1e6, "M"), (1e3, "K"),
                                                    (1.0, "")))
                ylabel = f"throughput ({label}req/s)"
            else:
                div, label = _time_axis(max(every))
                ylabel = f"spawn time ({label})"
            for who, data, style in (("current", points[stem], "-"),
                                     ("baseline", old.get(stem, []), "--")):
                if not data:
                    continue
                ax.errorbar([n for n, _, _ in data], [m / div for _, m, _ in data],
                            yerr=[s / div for _, _, s in data], linestyle=style, marker="o",
                            capsize=3, label=who)
            ax.set_xscale("log")
            ax.set_xticks(agents, [str(n) for n in agents])
            ax.minorticks_off()
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            if old:
                ax.legend(loc="best")
        axes[-1].set_xlabel("agents")
        axes[0].set_title(f"{trials.scenario}: scaling with the number of agents")
    return _Plot(
        f"scaling-{_slug(trials.scenario)}", f"Scaling: {trials.scenario}",
        f"Throughput and spawn time against the number of agents ({trials.scenario})",
        f"Throughput and spawn time of {trials.scenario} at "
        f"{', '.join(map(str, agents))} agents (log scale), the mean over the trials with "
        "one standard deviation" + ("; the baseline dashed." if old else "."), draw)


def _plots(run: RunResult, comparison: Comparison | None) -> list[tuple[str, list[_Plot]]]:
    def base(name: str) -> Trials | None:
        if comparison is None or name not in comparison.baseline.names:
            return None
        return comparison.baseline.scenario(name)

    groups: list[tuple[str, list[_Plot | None]]] = [
        ("Latency percentile spectrum", [_spectrum_plot(t, base(t.scenario))
                                         for t in run.scenarios]),
        ("Throughput and latency over time", [_over_time_plot(t) for t in run.scenarios]),
        ("Memory and CPU over time", [_resources_plot(t) for t in run.scenarios]),
        ("Scaling", [_scaling_plot(t, base(t.scenario)) for t in run.scenarios
                     if t.scenario == "horizontal_scaling" or _scaling_points(t)]),
    ]
    return [(title, [p for p in plots if p is not None]) for title, plots in groups
            if any(p is not None for p in plots)]


def _render_svg(plot: _Plot) -> str:
    """The plot as a base64 SVG document.  Text stays text (svg.fonttype
    "none": a third of the size, and searchable), ids are salted with a
    constant and the date left out, so the same run gives the same bytes."""
    import matplotlib
    from matplotlib.figure import Figure
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "caxton_meter"}):
        fig = Figure(figsize=(8.0, 4.5), layout="constrained")
        plot.draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots_html(run: RunResult, comparison: Comparison | None) -> str:
    try:
        import matplotlib  # noqa: F401  (only whether it is there)
    except ImportError:
        return f'<p class="note" id="plots-missing">{_esc(_PLOTS_NOTE)}</p>'
    groups = _plots(run, comparison)
    if not groups:
        return '<p class="note">No plots: the run has no histograms, intervals, resource ' \
               "profiles or scaling metrics.</p>"
    out = []
    for title, plots in groups:
        out.append(f"<h3>{_esc(title)}</h3>")
        for p in plots:
            try:
                data = _render_svg(p)
            except ValueError as e:      # e.g. an undecodable histogram in a loaded result
                out.append(f'<p class="note plot-error" id="{_esc(p.id)}">{_esc(p.title)} '
                           f"could not be drawn: {_esc(str(e))}</p>")
                continue
            out.append(f'<figure class="plot" id="{_esc(p.id)}">'
                       f'<img src="data:image/svg+xml;base64,{data}" alt="{_esc(p.alt)}">'
                       f"<figcaption>{_esc(p.caption)}</figcaption></figure>")
    return "\n".join(out)


def html_report(run: RunResult, comparison: Comparison | None = None) -> str:
    """The Markdown report's content as one self-contained HTML page (inline
    CSS, plots as SVG data URIs; opens offline): header, Summary, the
    section tables, plots (latency percentile spectra with the baseline
    overlaid, throughput and p99 per interval, memory and CPU over time,
    scaling curves) and notes.  Without matplotlib the page says how to get
    the plots.  ValueError if ``comparison`` is of another run."""
    _check_comparison(run, comparison)
    rows = _rows(run, comparison)
    meta = run.metadata
    fields = [("Date", _date(meta)), ("Commit", _commit(meta)),
              ("Environment", _environment(meta))]
    if comparison is not None:
        base = comparison.baseline.metadata
        fields.append(("Baseline", f"{_commit(base)} of {_date(base)}"))
    summary = _summary(run, rows, comparison)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Performance Report {_esc(_date(meta))}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>", "<main>",
           "<h1>Performance Report</h1>", '<dl class="meta">']
    out += [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in fields]
    out += ["</dl>", '<section id="summary">', "<h2>Summary</h2>", '<ul class="summary">']
    out += [f"<li>{_html(icon)} {_esc(text)}</li>" for icon, text in summary.lines]
    out.append("</ul>")
    out += [f'<p class="notice">{_html(icon)} {_esc(text)}</p>' for icon, text in summary.notices]
    out.append("</section>")
    for key, title, chosen in _by_section(rows):
        out += [f'<section id="{key}">', f"<h2>{_esc(title)}</h2>",
                _html_table(chosen, comparison, key), "</section>"]
    out += ['<section id="plots">', "<h2>Plots</h2>", _plots_html(run, comparison), "</section>"]
    notes = _load_facts(run) + _notes(run)
    if notes:
        out += ['<section id="notes">', "<h2>Notes</h2>", "<ul>"]
        out += [f"<li><strong>{_esc(s)}</strong>: {_esc(text)}</li>" for s, text in notes]
        out += ["</ul>", "</section>"]
    out += ["</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"



# -- capacity searches ---------------------------------------------------------------------------

def _capacity_columns(result: CapacityResult) -> tuple[list[str], list[list[str]]]:
    q = result.percentile
    own = q not in (50.0, 99.0)
    headers = ["#", "phase", "asked", "achieved", "requests", "p50", "p99"]
    if own:
        headers.append(f"p{q:g}")
    headers += ["failed", "dropped", "verdict"]
    rows = []
    for i, s in enumerate(result.steps):
        def t(v: float | None) -> str:
            return format_quantity(v, "ns") if v is not None else _DASH
        row = [str(i + 1), s.phase, format_quantity(s.rate, "/s"),
               format_quantity(s.achieved, "/s"), f"{s.requests:,}", t(s.p50), t(s.p99)]
        if own:
            row.append(t(s.value))
        row += [f"{s.failed:,}", f"{s.dropped:,}",
                "pass" if s.passed else f"FAIL: {s.reason}"]
        rows.append(row)
    return headers, rows


def capacity_table(result: CapacityResult) -> str:
    """A capacity search's steps as a fixed-width table, then its verdict."""
    headers, rows = _capacity_columns(result)
    # the verdict column is not padded: a reason may be long
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            if i == len(cells) - 1:
                out.append(c)
            elif i == 1:
                out.append(c.ljust(w))
            else:
                out.append(c.rjust(w))
        return "  ".join(out).rstrip()
    lines = [line(headers)] + [line(r) for r in rows]
    lines.append(result.verdict)
    return "\n".join(lines)


def _capacity_plot(result: CapacityResult) -> _Plot | None:
    points = sorted((s for s in result.steps if s.p50 is not None), key=lambda s: s.rate)
    if not points:
        return None
    q = result.percentile
    def ns(values: Iterable[float | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]
    series = [("p50", ns(s.p50 for s in points)), ("p99", ns(s.p99 for s in points))]
    if q not in (50.0, 99.0):
        series.append((f"p{q:g}", ns(s.value for s in points)))
    bound: float | None = None
    for text in result.slo:
        from ._expressions import parse_threshold
        expr = parse_threshold(text)
        if expr.metric == "p" and expr.percentile == q and expr.operator in ("<", "<="):
            bound = expr.value

    def draw(fig: Figure) -> None:
        from matplotlib.ticker import FuncFormatter
        ax = fig.add_subplot()
        xs = [s.rate for s in points]
        for i, (label, ys) in enumerate(series):
            ax.plot(xs, ys, color=f"C{i}", label=label, linewidth=1.2)
            ok = [(x, y) for x, y, s in zip(xs, ys, points) if s.passed and math.isfinite(y)]
            bad = [(x, y) for x, y, s in zip(xs, ys, points)
                   if not s.passed and math.isfinite(y)]
            if ok:
                ax.plot(*zip(*ok), linestyle="none", marker="o", color=f"C{i}", markersize=4)
            if bad:
                ax.plot(*zip(*bad), linestyle="none", marker="x", color=f"C{i}", markersize=6)
        if bound is not None:
            ax.axhline(bound, color="0.3", linestyle="--", linewidth=1,
                       label=f"SLO p{q:g} bound")
        if result.capacity is not None:
            ax.axvline(result.capacity, color="C2", linewidth=1,
                       label=f"capacity {format_quantity(result.capacity, '/s')}")
        if result.knee is not None:
            ax.axvline(result.knee, color="C1", linestyle=":", linewidth=1.2,
                       label=f"knee {format_quantity(result.knee, '/s')}")
        ax.set_xscale("log")
        # the rising (or falling) steps' rates as ticks: geometric, so their
        # labels do not collide; the bisection's lie between them
        ladder = sorted({s.rate for s in points if s.phase != "bisect"}) or [xs[0]]
        ax.set_xticks(ladder, [format_quantity(x, "/s") for x in ladder])
        ax.minorticks_off()
        ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
        values = [y for _, ys in series for y in ys if math.isfinite(y) and y > 0]
        if bound is not None:
            values.append(bound)
        if values and max(values) / min(values) > 20:
            ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_quantity(v, "ns")))
        ax.set_xlabel("arrival rate asked (per second)")
        ax.set_ylabel("latency from intended start")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        ax.set_title("latency against arrival rate")

    return _Plot(
        "capacity", "Latency against arrival rate",
        "Latency percentiles against the arrival rate of each step of the capacity search",
        f"p50 and p99 (and the SLO's p{q:g}) of each step, from each request's intended "
        "start, against the rate asked (log scale); a dot is a step that passed, a cross one "
        "that failed (the SLO broken, the rate not held, requests dropped or failed). The "
        "solid vertical line is the capacity, the dotted one the knee (above which the "
        f"percentile stays at or over {result.knee_factor:g} times its lowest-rate value).",
        draw)


def capacity_html(result: CapacityResult) -> str:
    """A capacity search as one self-contained HTML page: the verdict, the
    latency-against-rate plot (with matplotlib; without it the page says
    how to get it) and the steps."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Capacity: {_esc(result.target)}</title>", f"<style>{_CSS}</style>",
           "</head>", "<body>", "<main>", "<h1>Capacity search</h1>", '<dl class="meta">',
           f"<dt>Target</dt><dd>{_esc(result.target)}</dd>",
           f"<dt>SLO</dt><dd>{_esc(' and '.join(result.slo))}</dd>",
           f"<dt>Steps</dt><dd>{len(result.steps)} in {result.elapsed:.1f} s</dd>",
           "</dl>", '<section id="summary">', "<h2>Verdict</h2>",
           f'<p id="verdict">{_esc(result.verdict)}</p>', "</section>",
           '<section id="plots">', "<h2>Latency against rate</h2>"]
    plot = _capacity_plot(result)
    try:
        import matplotlib  # noqa: F401  (only whether it is there)
        have = True
    except ImportError:
        have = False
    if not have:
        out.append(f'<p class="note" id="plots-missing">{_esc(_PLOTS_NOTE)}</p>')
    elif plot is None:
        out.append('<p class="note">No plot: no step completed a request.</p>')
    else:
        out.append(f'<figure class="plot" id="{plot.id}">'
                   f'<img src="data:image/svg+xml;base64,{_render_svg(plot)}" '
                   f'alt="{_esc(plot.alt)}"><figcaption>{_esc(plot.caption)}</figcaption>'
                   "</figure>")
    out += ["</section>", '<section id="steps">', "<h2>Steps</h2>",
            '<table class="metrics" id="table-steps">', "<thead><tr>"]
    headers, rows = _capacity_columns(result)
    out += [f'<th scope="col">{_esc(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = [f'<td class="num">{_esc(c)}</td>' for c in row[:-1]]
        cells.append(f"<td>{_esc(row[-1])}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody></table>", "</section>", "</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
