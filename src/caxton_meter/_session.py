"""The pytest session's side of caxton_meter's plugin: the measurements of
every test gathered (and merged across pytest-xdist workers), saved as a
baseline, compared with one, reported, and listed in the summary table.

The hooks and fixtures that create and feed it are in
:mod:`caxton_meter._plugin`; the object a test measures with is
:class:`caxton_meter._meter.Meter`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._expressions import format_value
from ._meter import METRICS, Meter, _build_run, _Series
from ._model import Kind

if TYPE_CHECKING:
    from ._compare import Comparison
    from ._baselines import BaselineHistory
    from ._results import RunResult

__all__: list[str] = []

# The xdist payload: what a worker leaves in workeroutput["caxton_meter"]
# for the controller.  History:
#   1: {"format": 1, "series": [_Series.to_payload(), ...]}
_PAYLOAD_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class _Options:
    disabled: bool
    save_baseline: str | None
    baseline: str | None
    reports: tuple[str, ...]
    output: Path | None
    baseline_dir: Path


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
        self.lines: list[tuple[str, dict[str, bool]]] = []     # for the terminal summary
        self.workers = 0

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
        self.workers += 1

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
                               "thresholds were not checked", {"yellow": True}))
            return
        if not self.series:
            if self.options.baseline or self.options.save_baseline or self.options.reports:
                self.lines.append(("nothing was measured: no baseline saved or compared, no "
                                   "report written", {"yellow": True}))
            return
        try:
            failed = self._finish()
        except (OSError, ValueError) as e:
            self.lines.append((f"error: {e}", {"red": True}))
            failed = True
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finish(self) -> bool:
        """Save, compare and report; True when the session should fail."""
        from ._baselines import BaselineStore
        from ._results import collect_metadata, write_atomic

        opts = self.options
        if not (opts.save_baseline or opts.baseline or opts.reports or opts.output):
            return False
        metadata = collect_metadata(cwd=str(self.config.rootpath))
        metadata["profile"] = "pytest"
        metadata["pytest"] = {"version": pytest.__version__,
                              "args": list(self.config.invocation_params.args),
                              "xdist_workers": self.workers}
        run = _build_run(self.series.values(), metadata)
        failed = False
        store = BaselineStore(opts.baseline_dir)
        if self.baseline is not None:
            from ._compare import compare

            self.comparison = compare(self.baseline, run, lenient=True)
            failed = bool(self.comparison.regressions)
        if opts.save_baseline:
            path = store.save(opts.save_baseline, run)
            self.lines.append((f"saved baseline {opts.save_baseline!r}: {path}", {}))
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
    """Registered on the xdist controller only: merges the workers'
    measurements as each worker finishes."""

    def __init__(self, state: _MeterSession) -> None:
        self.state = state

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        payload = getattr(node, "workeroutput", {}).get("caxton_meter")
        if payload is not None:
            self.state.merge_payload(payload)


def _default_output(config: pytest.Config) -> Path:
    return config.rootpath / ".caxton_meter" / "reports"


# -- the terminal summary --------------------------------------------------------------------

def _summary_table(series: Iterable[_Series]) -> list[str]:
    headers = ["test / name", "kind", "count", "errors", "p50", "p99", "mean", "throughput",
               "rss peak", "cpu"]
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
            f"{s.errors:,}" if s.kind == "load" else "-",
            format_value(h.value_at_percentile(50.0), "time") if timed else "-",
            format_value(h.value_at_percentile(99.0), "time") if timed else "-",
            format_value(mean, "time") if mean is not None else "-",
            format_value(rate, "rate") if rate is not None else "-",
            format_value(rss, "size") if rss is not None else "-",
            format_value(cpu, "percent") if cpu is not None else "-"])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers)] + [line(r) for r in rows]


# How format_value writes a metric of each kind (it reads the metric's
# declaration in METRICS, not its unit).
_VALUE_KIND = {Kind.THROUGHPUT: "rate", Kind.LATENCY: "time", Kind.DURATION: "time",
               Kind.MEMORY: "size", Kind.CPU: "percent", Kind.RATIO: "ratio",
               Kind.COUNT: "count", Kind.FLAG: "count"}


def _value_kind(metric: str) -> str:
    spec = METRICS.get(metric)
    return _VALUE_KIND[spec.kind] if spec is not None else "count"


def _comparison_lines(comparison: Comparison, name: str) -> list[tuple[str, dict[str, bool]]]:
    regressions = comparison.regressions
    out: list[tuple[str, dict[str, bool]]] = [(
        f"compared with baseline {name!r}: {len(comparison.metrics)} metric(s), "
        f"{len(regressions)} regression(s), {len(comparison.improvements)} improvement(s), "
        f"{len(comparison.missing)} without a baseline counterpart", {})]
    for m in regressions:
        c = m.change
        kind = _value_kind(m.metric)
        p = f", p={c.p_value:.2g}" if c.p_value is not None else ""
        out.append((f"  REGRESSED {m.scenario}: {m.metric} {format_value(c.baseline, kind)} -> "
                    f"{format_value(c.current, kind)} ({c.change:+.1%}; {c.method}{p})",
                    {"red": True, "bold": True}))
    for m in comparison.improvements:
        c = m.change
        kind = _value_kind(m.metric)
        out.append((f"  improved {m.scenario}: {m.metric} {format_value(c.baseline, kind)} -> "
                    f"{format_value(c.current, kind)} ({c.change:+.1%})", {"green": True}))
    for w in comparison.warnings[:5]:
        out.append((f"  warning: {w}", {"yellow": True}))
    if len(comparison.warnings) > 5:
        out.append((f"  ... and {len(comparison.warnings) - 5} more warning(s)",
                    {"yellow": True}))
    if regressions:
        out.append((f"caxton_meter: {len(regressions)} performance regression(s) against "
                    f"baseline {name!r}: the session fails", {"red": True, "bold": True}))
    return out


