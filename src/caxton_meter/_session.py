"""The pytest session's side of caxton_meter's plugin: the measurements of
every test gathered (and merged across pytest-xdist workers), saved as a
baseline, compared with one, reported, and listed in the summary table.

Saving.  A baseline is a history of runs that later sessions are judged
against, so a session that would make a poor reference is not saved: one
interrupted (Ctrl-C, ``pytest.exit``), one with collection errors, one in
which a test failed (unless ``--meter-save-on-failure``: then the
measurements of the tests that passed are saved), one that measured
nothing, or one the store refuses (:class:`~caxton_meter._baselines.BaselineRefusedError`).
The summary says why, the baseline is untouched, and the session's exit
status is not 0.  A session that ran a subset (``-k``) saves what it
measured: the baseline's newest result of each scenario is what later
sessions are compared with (:meth:`~caxton_meter._baselines.BaselineHistory.latest`),
so the other scenarios keep theirs.

Comparing.  :func:`caxton_meter._compare.compare` against the baseline's
history; not at all when the session's timings are not like the
baseline's: a different number of xdist workers (workers share the CPU),
or more workers than the machine has cores.

The hooks and fixtures that create and feed it are in
:mod:`caxton_meter._plugin`; the object a test measures with is
:class:`caxton_meter._meter.Meter`.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._meter import Meter, _build_run, _Series
from ._units import format_change, format_quantity

if TYPE_CHECKING:
    from ._baselines import BaselineHistory
    from ._compare import Comparison, MetricComparison
    from ._results import RunResult

__all__: list[str] = []

# The xdist payload: what a worker leaves in workeroutput["caxton_meter"]
# for the controller.  History:
#   1: {"format": 1, "series": [_Series.to_payload(), ...]}
#   2: each series carries its "notes" (how a load loop fell behind).
#   3: and its "error_kinds", "status_classes", "connect_time" (network
#      loads) and "capacities" (capacity searches).
_PAYLOAD_FORMAT = 3

# Saved runs a metric needs before the comparison can test it (compare's
# min_history; the summary's advice names the same number).
_MIN_HISTORY = 3

_Line = tuple[str, dict[str, bool]]
_WARN = {"yellow": True}
_ERROR = {"red": True, "bold": True}


@dataclasses.dataclass(frozen=True)
class _Options:
    disabled: bool
    save_baseline: str | None
    baseline: str | None
    reports: tuple[str, ...]
    output: Path | None
    baseline_dir: Path
    save_on_failure: bool = False
    confirm: bool = True


class _MeterSession:
    """The session's measurements and the hooks that save, compare and
    report them (one per pytest config)."""

    def __init__(self, config: pytest.Config, options: _Options) -> None:
        self.config = config
        self.options = options
        self.worker = hasattr(config, "workerinput")
        self.series: dict[str, _Series] = {}
        self.baseline: BaselineHistory | None = None
        self.comparison: Comparison | None = None
        self.lines: list[_Line] = []                # for the terminal summary
        self.xdist_workers = 0                      # workers started; 0 without xdist
        # What decides whether the session may be saved (the controller's
        # view: xdist forwards the workers' reports to it).
        self.failed_tests: dict[str, None] = {}     # node ids, in order
        self.collection_errors: dict[str, None] = {}
        self.interruption: str | None = None

    # -- gathering
    def absorb(self, meter: Meter) -> None:
        for s in meter._series.values():
            self.add(s)

    def add(self, s: _Series) -> None:
        if s.empty:
            return
        mine = self.series.get(s.key)
        if mine is None:
            self.series[s.key] = s
        else:
            mine.merge(s)

    def merge_payload(self, payload: Mapping[str, Any]) -> None:
        if payload.get("format") != _PAYLOAD_FORMAT:
            raise ValueError(f"caxton_meter: a worker sent payload format "
                             f"{payload.get('format')!r}; this one reads {_PAYLOAD_FORMAT}")
        for data in payload["series"]:
            self.add(_Series.from_payload(data))

    # -- what happened to the tests
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors[report.nodeid or "<the session>"] = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:                # a failed call, or an error in setup or teardown
            self.failed_tests[report.nodeid] = None

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        e = excinfo.value
        if isinstance(e, pytest.exit.Exception):
            self.interruption = f"the session was ended by pytest.exit({e.msg!r})"
        elif isinstance(e, pytest.Session.Interrupted):
            # collection errors stop the session this way; they are told apart
            self.interruption = f"the session was stopped ({e})"
        else:
            self.interruption = "the session was interrupted (Ctrl-C)"

    # -- hooks
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.worker:
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput")
            workeroutput["caxton_meter"] = {
                "format": _PAYLOAD_FORMAT,
                "series": [s.to_payload() for s in self.series.values()]}
            return
        if self.options.disabled:
            self.lines.append(("measurement disabled (--meter-disable): nothing was timed, "
                               "thresholds were not checked", _WARN))
            return
        try:
            failed = self._finish(exitstatus)
        except (OSError, ValueError) as e:
            self.lines.append((f"error: {e}", {"red": True}))
            failed = True
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = (pytest.ExitCode.INTERRUPTED if self.interruption
                                  else pytest.ExitCode.TESTS_FAILED)

    def _finish(self, exitstatus: int) -> bool:
        """Save, compare and report; True when the session should fail."""
        from ._results import collect_metadata, write_atomic

        opts = self.options
        if not self.series:
            if opts.save_baseline:
                self._refused(opts.save_baseline, self._refusals(exitstatus)
                              + ["nothing was measured"])
                return True
            if opts.baseline or opts.reports:
                self.lines.append(("nothing was measured: no baseline compared, no report "
                                   "written", _WARN))
            return False
        if not (opts.save_baseline or opts.baseline or opts.reports or opts.output):
            return False
        metadata = collect_metadata(cwd=str(self.config.rootpath))
        metadata["profile"] = "pytest"
        metadata["pytest"] = {"version": pytest.__version__,
                              "args": list(self.config.invocation_params.args),
                              "xdist_workers": self.xdist_workers,
                              "failed_tests": len(self.failed_tests),
                              "collection_errors": len(self.collection_errors)}
        if self.interruption:
            metadata["stopped_early"] = True
        run = _build_run(self.series.values(), metadata)
        failed = False
        if self.baseline is not None:
            failed = self._compare(self.baseline, run)
        if opts.save_baseline:
            failed = self._save(opts.save_baseline, run, exitstatus) or failed
        if opts.output is not None:
            path = write_atomic(opts.output / "result.json", run.to_json())
            self.lines.append((f"wrote the result: {path}", {}))
        if opts.reports:
            from ._reports import write_reports

            directory = opts.output if opts.output is not None else _default_output(self.config)
            paths = write_reports(run, self.comparison, opts.reports, directory)
            self.lines.append((f"wrote {len(paths)} report file(s) to {directory}: "
                               + ", ".join(p.name for p in paths[:6])
                               + (" ..." if len(paths) > 6 else ""), {}))
        return failed

    # -- comparing
    def _compare(self, history: BaselineHistory, run: RunResult) -> bool:
        """Compare ``run`` with the baseline unless its timings are not
        comparable; True on a regression."""
        from ._compare import compare

        why = self._incomparable(history)
        if why is not None:
            self.lines.append((f"not compared with baseline {history.name!r}: {why}", _WARN))
            return False
        self.comparison = compare(history, run, lenient=True, min_history=_MIN_HISTORY)
        if self.options.confirm and self.comparison.changed_scenarios():
            self.comparison = self._confirmed(history, self.comparison)
        return bool(self.comparison.regressions)

    def _confirmed(self, history: BaselineHistory, comparison: Comparison) -> Comparison:
        """Re-run the tests that changed, in a pytest process of their own,
        and keep only the changes the re-run repeats (the others become
        transient: a slow spell of the machine, not the code)."""
        import subprocess
        import sys
        import tempfile

        from ._compare import compare, confirm
        from ._results import read_result

        tests = list(dict.fromkeys(name.rsplit("::", 1)[0]
                                   for name in comparison.changed_scenarios()))
        with tempfile.TemporaryDirectory(prefix="caxton-meter-confirm-") as tmp:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider",
                 f"--rootdir={self.config.rootpath}", "--meter-output", tmp],
                cwd=self.config.rootpath,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                again = read_result(Path(tmp) / "result.json")
            except (OSError, ValueError) as e:
                self.lines.append((f"the re-run to confirm the changes failed (exit "
                                   f"{done.returncode}: {e}): they stand unconfirmed", _WARN))
                return comparison
        self.lines.append((f"re-ran {_plural(len(tests), 'test')} to confirm their changes", {}))
        return confirm(comparison, compare(history, again, lenient=True,
                                           min_history=_MIN_HISTORY))

    def _incomparable(self, history: BaselineHistory) -> str | None:
        """Why this session's timings cannot be compared with the
        baseline's, or None: workers that compete for the CPU, or a worker
        count unlike the baseline's newest run's."""
        cores = os.cpu_count() or 1
        mine = self.xdist_workers
        if mine > cores:
            return (f"this session ran {mine} xdist workers on {_plural(cores, 'core')}, so "
                    "they competed for the CPU and the timings measure that contention; "
                    f"run with at most -n {cores}")
        recorded = history.runs[-1].metadata.get("pytest")
        theirs = recorded.get("xdist_workers") if isinstance(recorded, Mapping) else None
        if isinstance(theirs, int) and not isinstance(theirs, bool) and theirs != mine:
            return (f"its newest run was measured {_workers(theirs)} and this session "
                    f"{_workers(mine)}, and tests that share the CPU with other workers run "
                    f"slower; run {'with -n ' + str(theirs) if theirs else 'without -n'} "
                    "to compare")
        return None

    # -- saving
    def _refusals(self, exitstatus: int) -> list[str]:
        """Why this session must not be saved as a baseline (empty: it may be)."""
        reasons: list[str] = []
        collection = list(self.collection_errors)
        stopped_by_collection = (collection and self.interruption is not None
                                 and self.interruption.startswith("the session was stopped"))
        if self.interruption and not stopped_by_collection:
            reasons.append(self.interruption)
        if collection:
            reasons.append(f"{_plural(len(collection), 'collection error')} "
                           f"({_listed(collection)})")
        failed = list(self.failed_tests)
        if failed and not self.options.save_on_failure:
            reasons.append(f"{_plural(len(failed), 'test')} failed ({_listed(failed)}); "
                           "--meter-save-on-failure saves the measurements of the tests "
                           "that passed")
        if not reasons and exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            reasons.append(f"pytest ended with exit status {int(exitstatus)}")
        return reasons

    def _save(self, name: str, run: RunResult, exitstatus: int) -> bool:
        """Save ``run`` as baseline ``name`` unless the session must not be
        saved; True when it was refused."""
        from ._baselines import BaselineRefusedError, BaselineStore
        from ._results import RunResult

        reasons = self._refusals(exitstatus)
        if reasons:
            self._refused(name, reasons)
            return True
        if self.failed_tests:           # --meter-save-on-failure: the tests that passed
            # (a meter_session name gathers every test's values: it stays)
            dropped = {key for key, s in self.series.items() if s.test in self.failed_tests}
            kept = tuple(t for t in run.scenarios if t.scenario not in dropped)
            left_out = len(run.scenarios) - len(kept)
            if not kept:
                self._refused(name, ["no test that passed measured anything"])
                return True
            run = RunResult(run.metadata, kept)
            if left_out:
                self.lines.append((f"{_plural(left_out, 'measurement')} of the failed tests "
                                   f"left out of baseline {name!r}", _WARN))
        store = BaselineStore(self.options.baseline_dir)
        try:
            path = store.save(name, run)
        except BaselineRefusedError as e:
            self.lines.append((str(e), _ERROR))
            return True
        runs = len(store.run_files(name))
        self.lines.append((f"saved baseline {name!r} ({_plural(runs, 'saved run')}): {path}",
                           {}))
        return False

    def _refused(self, name: str, reasons: Sequence[str]) -> None:
        self.lines.append((f"not saved as baseline {name!r}: {'; '.join(reasons)}; the "
                           "baseline is unchanged", _ERROR))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, exitstatus: int,
                                config: pytest.Config) -> None:
        if self.worker or not (self.series or self.lines):
            return
        terminalreporter.write_sep("-", "caxton_meter")
        if self.series:
            for line in _summary_table(self.series.values()):
                terminalreporter.write_line(line)
        if self.comparison is not None:
            for text, markup in _comparison_lines(self.comparison, self.options.baseline or ""):
                terminalreporter.write_line(text, **markup)
        for text, markup in self.lines:
            terminalreporter.write_line(f"caxton_meter: {text}", **markup)


class _XdistController:
    """Registered on the xdist controller only: counts the workers started
    and merges their measurements as each worker finishes."""

    def __init__(self, state: _MeterSession) -> None:
        self.state = state

    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Sequence[Any]) -> None:
        self.state.xdist_workers = len(specs)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        payload = getattr(node, "workeroutput", {}).get("caxton_meter")
        if payload is not None:
            self.state.merge_payload(payload)


def _default_output(config: pytest.Config) -> Path:
    return config.rootpath / ".caxton_meter" / "reports"


# -- the terminal summary --------------------------------------------------------------------

def _summary_table(series: Iterable[_Series]) -> list[str]:
    headers = ["test / name", "kind", "count", "errors", "p50", "p99", "mean", "throughput",
               "late p99", "rss peak", "cpu"]
    rows = []
    for s in sorted(series, key=lambda s: s.key):
        h = s.histogram
        timed = s.timed
        mean = s.mean_ns
        rate = s.throughput
        rss = s.rss_peak
        cpu = s.cpu_percent
        rows.append([
            f"{s.test} / {s.name}", s.kind, f"{s.count:,}" if s.kind != "resources" else "-",
            f"{s.errors:,}" if s.kind in ("load", "capacity") else "-",
            format_quantity(h.value_at_percentile(50.0), "ns") if timed else "-",
            format_quantity(h.value_at_percentile(99.0), "ns") if timed else "-",
            format_quantity(mean, "ns") if mean is not None else "-",
            format_quantity(rate, "/s") if rate is not None else "-",
            format_quantity(s.lateness.value_at_percentile(99.0), "ns")
            if s.lateness is not None and s.lateness.total_count else "-",
            format_quantity(rss, "bytes") if rss is not None else "-",
            format_quantity(cpu, "percent") if cpu is not None else "-"])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    # a load loop that fell behind its schedule says so under the table
    behind = [f"{s.test} / {s.name}: {note}" for s in sorted(series, key=lambda s: s.key)
              for note in dict.fromkeys(s.notes)]
    return [line(headers)] + [line(r) for r in rows] + behind


_SHOWN = 5      # not-gateable metrics and warnings listed one by one; the rest counted


def _comparison_lines(comparison: Comparison, name: str) -> list[_Line]:
    regressions = comparison.regressions
    hidden = [m for m in comparison.not_gateable if m.change.spread is not None]
    untested = [m for m in comparison.not_gateable if m.change.spread is None]
    out: list[_Line] = [
        (f"compared with baseline {name!r}: {len(comparison.metrics)} metric(s), "
         f"{len(regressions)} regression(s), {len(comparison.improvements)} improvement(s), "
         f"{len(comparison.missing)} without a baseline counterpart", {}),
        (f"  {_plural(comparison.family, 'comparison')} against "
         f"{_plural(comparison.history_runs, 'saved run')}, false-alarm rate "
         f"{comparison.significance:g} for the session (Holm); "
         f"{len(comparison.not_gateable)} not gateable here", {})]
    for m in regressions:
        out.append((f"  REGRESSED {m.scenario}: {_change(m)}", _ERROR))
    for m in comparison.improvements:
        out.append((f"  improved {m.scenario}: {_change(m)}", {"green": True}))
    for m in comparison.transient:
        out.append((f"  transient {m.scenario}: {_change(m)} -- not repeated on a re-run "
                    "of the same code: not failed", _WARN))
    for m in hidden[:_SHOWN]:
        c = m.change
        assert c.spread is not None and c.detectable is not None
        out.append((f"  not gateable here {m.scenario}: {m.metric} varies by "
                    f"{format_quantity(c.spread, 'ratio')} between saved runs; only changes of "
                    f"{format_quantity(c.detectable, 'ratio')} or more would be seen", _WARN))
    if len(hidden) > _SHOWN:
        out.append((f"  ... and {len(hidden) - _SHOWN} more not gateable here", _WARN))
    if untested:
        why = "; ".join(sorted({m.change.method for m in untested}))
        # (caxton-meter calibrate runs the library's scenarios, not these tests: pytest
        # saves their runs)
        out.append((f"  {_plural(len(untested), 'metric')} not gateable ({why}): save "
                    f"{_MIN_HISTORY} runs or more of unchanged code (`pytest "
                    f"--meter-save-baseline {name}`, once per run) before the baseline can gate",
                    _WARN))
    for w in comparison.warnings[:_SHOWN]:
        out.append((f"  warning: {w}", _WARN))
    if len(comparison.warnings) > _SHOWN:
        out.append((f"  ... and {len(comparison.warnings) - _SHOWN} more warning(s)", _WARN))
    if regressions:
        out.append((f"caxton_meter: {_plural(len(regressions), 'performance regression')} "
                    f"against baseline {name!r}: the session fails", _ERROR))
    return out


def _change(m: MetricComparison) -> str:
    """``metric before -> after (+12.3 %; how it was tested)``, in the metric's unit."""
    c = m.change
    how = c.method
    if c.baseline_n:
        how += f" over {_plural(c.baseline_n, 'saved run')}"
    if c.adjusted_p is not None:
        how += f", p={c.adjusted_p:.2g} after Holm"
    return (f"{m.metric} {format_quantity(c.baseline, m.unit)} -> "
            f"{format_quantity(c.current, m.unit)} "
            f"({format_change(c.change)}; {how})")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _listed(names: Sequence[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more"
                                       if len(names) > shown else "")


def _workers(n: int) -> str:
    return "without xdist" if n == 0 else f"with {_plural(n, 'xdist worker')}"
