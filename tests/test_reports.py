"""Reports: Markdown, HTML (with and without matplotlib), JSON, the
github-action-benchmark lists, interval logs, the terminal table and
writing them all, against a real (quick) run and hand-built runs whose
comparison is known."""
import base64
import json
import math
import os
import re
import statistics
import sys
from html.parser import HTMLParser

import pytest

from caxton_meter import Histogram, read_log
from caxton_meter._compare import compare
from caxton_meter._reports import (
    COMPARISON_FORMAT_VERSION,
    REPORT_FORMATS,
    github_benchmark,
    html_report,
    json_report,
    markdown_report,
    terminal_summary,
    write_interval_logs,
    write_reports,
)
from caxton_meter._results import RunResult, Trials, run_suite
from caxton_meter._units import format_quantity
from caxton_meter._model import Grade, Kind, MetricSpec, ScenarioResult

SCENARIOS = ["latency", "burst_traffic", "horizontal_scaling", "message_throughput"]


@pytest.fixture(scope="module")
def run():
    return run_suite(SCENARIOS, trials=2, quick=True)


@pytest.fixture(scope="module")
def self_comparison(run):
    return compare(run, run)


@pytest.fixture(scope="module")
def html_with_plots(run, self_comparison):
    pytest.importorskip("matplotlib")
    return html_report(run, self_comparison)


# -- hand-built runs ---------------------------------------------------------------------

META = {"date": "2026-01-02T03:04:05+00:00",
        "git": {"commit": "abcdef1234567890abcdef1234567890abcdef12", "dirty": True,
                "branch": "main"},
        "host": "bench-1", "cpu": {"model": "Test CPU", "logical": 8, "physical": 4},
        "os": {"system": "Linux", "release": "6.1.0", "machine": "x86_64"},
        "python": {"version": "3.11.7"}, "packages": {"caxton_meter": "0.1.0"},
        "trials": 5, "profile": "quick"}


def M(name, value, unit, grade=None):
    """A metric declared as the scenarios declare theirs: counts are not
    compared, throughputs are better higher, times lower."""
    kind = {"ns": Kind.LATENCY, "msg/s": Kind.THROUGHPUT}.get(unit, Kind.COUNT)
    return MetricSpec(name, unit, kind)(value, grade)


def synthetic(p99s, *, extra=(), notes=()):
    """A "latency" scenario of len(p99s) trials: p50, p99, throughput
    nearly constant, p99 as given, a count (not reported) and ``extra``."""
    results = []
    for i, p99 in enumerate(p99s):
        metrics = (M("latency_p50", 1000 + i, "ns", Grade.TARGET),
                   M("latency_p99", p99, "ns", Grade.TARGET),
                   M("throughput", 1e6 + 10 * i, "msg/s", Grade.TARGET),
                   M("requests", 1000, "requests"), *extra)
        results.append(ScenarioResult("latency", {"rate": 1000}, metrics, {},
                                      notes=tuple(notes) if i == 0 else ()))
    return RunResult(dict(META), (Trials("latency", {"rate": 1000}, tuple(results)),))


BASE_P99 = [10_000, 10_100, 9_900, 10_050, 9_950]


@pytest.fixture(scope="module")
def regression():
    """Four saved runs of five trials each; only latency_p99 doubled:
    exactly one regression."""
    from caxton_meter._baselines import BaselineHistory
    baseline = BaselineHistory("main", tuple(synthetic([v * f for v in BASE_P99])
                                             for f in (1.0, 1.01, 0.99, 1.005)))
    current = synthetic([2 * v for v in BASE_P99])
    return current, compare(baseline, current)


# -- helpers -----------------------------------------------------------------------------

def md_sections(text):
    """{"## title": (header cells, [row cells])} for each table; asserts the
    separator row follows the header and every row has the header's cells."""
    out = {}
    title = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            title = line[3:]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            cells = [split_row(b) for b in block]
            header, sep, rows = cells[0], cells[1], cells[2:]
            assert all(re.fullmatch(r"-{3,}:?", c) for c in sep), block[1]
            assert len(sep) == len(header)
            for row, raw in zip(rows, block[2:]):
                assert len(row) == len(header), raw
            out[title] = (header, rows)
            continue
        i += 1
    return out


def split_row(line):
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def reported(run):
    return {(t.scenario, n) for t in run.scenarios for n in t.metric_names
            if t.grade(n) is not None or t.spec(n).compared}


def mean_sd(values):
    return statistics.fmean(values), statistics.stdev(values)


class StrictHTML(HTMLParser):
    """Fails on unbalanced tags; collects figures, tables and images."""
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.figures = {}
        self.tables = []
        self.imgs = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.figures[attrs["id"]] = attrs
        if tag == "table":
            self.tables.append(attrs.get("id"))
        if tag == "img":
            self.imgs.append(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text):
    p = StrictHTML()
    p.feed(text)
    p.close()
    assert p.stack == []
    return p


def svg_of(html_text, figure_id):
    m = re.search(rf'<figure class="plot" id="{re.escape(figure_id)}">'
                  r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">', html_text)
    assert m, f"no figure {figure_id}"
    return base64.b64decode(m.group(1)).decode("utf-8")


# -- humanize ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, unit, text", [
    (850, "ns", "850 ns"), (12_345, "ns", "12.3 µs"), (1_234_567, "ns", "1.23 ms"),
    (2.5e9, "ns", "2.5 s"), (999.7, "ns", "1 µs"), (-1500, "ns", "-1.5 µs"),
    (0.0025, "s", "2.5 ms"), (512, "bytes", "512 B"), (12_345_678, "bytes", "12.3 MB"),
    (1_500, "bytes", "1.5 KB"), (3e9, "bytes", "3 GB"), (2e6, "bytes/s", "2 MB/s"),
    (123_400, "msg/s", "123.4K msg/s"), (1_234_567, "msg/s", "1.2M msg/s"),
    (850, "msg/s", "850 msg/s"), (999_990, "msg/s", "1.0M msg/s"),
    (3.21, "percent", "3.2 %"), (0.995, "ratio", "99.5 %"), (1.0, "bool", "yes"),
    (0.0, "bool", "no"), (1000, "requests", "1,000 requests"), (2.5, "agents", "2.5 agents"),
    (math.nan, "ns", "—"), (math.nan, "msg/s", "—"),
])
def test_format_quantity(value, unit, text):
    assert format_quantity(value, unit) == text


# -- Markdown ----------------------------------------------------------------------------

def test_markdown_header_and_summary(run):
    md = markdown_report(run)
    assert md.startswith("# Performance Report\n")
    assert run.metadata["date"][:10] in md
    git = run.metadata.get("git")
    if git:
        assert f"**Commit**: {git['commit'][:7]}" in md
    assert f"Python {run.metadata['python']['version']}" in md
    assert "profile quick, 2 trials" in md
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    graded = [(t, n) for t in run.scenarios for n in t.metric_names if t.grade(n)]
    if all(t.grade(n) is Grade.TARGET for t, n in graded):
        assert f"✅ All performance targets met ({len(graded)} metrics graded)" in summary
    assert "regression" not in summary            # no comparison: no such line


def test_markdown_tables_without_comparison(run):
    sections = md_sections(markdown_report(run))
    for title in ("Throughput", "Latency", "Resource usage"):
        header, rows = sections[title]
        assert header == ["Scenario", "Metric", "Current", "Grade"]
        assert rows
    seen = [(r[0], r[1]) for _, rows in sections.values() for r in rows]
    assert len(seen) == len(set(seen))
    assert set(seen) == reported(run)
    units = {(t.scenario, n): t.unit(n) for t in run.scenarios for n in t.metric_names}
    assert all(units[r[0], r[1]].endswith("/s") for r in sections["Throughput"][1])
    assert all(units[r[0], r[1]] == "ns" for r in sections["Latency"][1])
    # a row's values: the trials' mean ± stdev, and the grade
    t = run.scenario("message_throughput")
    row = next(r for r in sections["Throughput"][1] if r[:2] == ["message_throughput", "throughput"])
    mean, sd = mean_sd(t.values("throughput"))
    unit = t.unit("throughput")
    assert unit == "req/s"
    assert row[2] == f"{format_quantity(mean, unit)} ± {format_quantity(sd, unit)}"
    icons = {Grade.TARGET: "✅", Grade.ACCEPTABLE: "🟡", Grade.CRITICAL: "🟠", Grade.FAILED: "❌"}
    g = t.grade("throughput")            # the grade of the mean shown
    assert row[3].startswith(f"{icons[g]} {g.value}")
    # the latency table of a scenario lists percentiles in order
    order = [r[1] for r in sections["Latency"][1] if r[0] == "latency"]
    assert order == ["latency_p50", "latency_p90", "latency_p95", "latency_p99",
                     "latency_p99_9", "latency_max"]


def test_markdown_tables_with_comparison(run, self_comparison):
    md = markdown_report(run, self_comparison)
    assert "**Baseline**:" in md
    sections = md_sections(md)
    for title in ("Throughput", "Latency", "Resource usage"):
        header, rows = sections[title]
        assert header == ["Scenario", "Metric", "Baseline", "Current", "Change", "Verdict"]
    seen = {(r[0], r[1]) for _, rows in sections.values() for r in rows}
    assert seen == reported(run)
    compared = {(m.scenario, m.metric) for m in self_comparison.metrics}
    for _, rows in sections.values():
        for r in rows:
            if (r[0], r[1]) in compared:      # a run against itself: nothing changed
                # and one saved run cannot gate: no spread is known yet
                assert r[4].startswith("+0.0 %"), r
                assert r[5] == "❔ not gateable yet (history of 1 run(s), 3 needed)", r
    assert "✅ No regressions" in md


def test_markdown_shows_a_synthetic_regression(regression):
    current, comparison = regression
    assert [(m.scenario, m.metric) for m in comparison.regressions] == [("latency", "latency_p99")]
    md = markdown_report(current, comparison)
    assert "⚠️ 1 performance regression detected: latency/latency_p99" in md
    assert "**Date**: 2026-01-02 03:04:05 UTC" in md
    assert "**Commit**: abcdef1+dirty (main)" in md
    assert "Test CPU ×8, Linux 6.1.0" in md
    header, rows = md_sections(md)["Latency"]
    by_metric = {r[1]: r for r in rows}
    p99 = by_metric["latency_p99"]
    assert re.fullmatch(r"🔴 regressed \(detects ≥ \d+\.\d %\)", p99[5]), p99[5]
    assert "3 comparisons against 4 saved run(s), false-alarm rate 0.05 for the whole run (Holm)" in md
    base_p99 = statistics.fmean(statistics.fmean([v * f for v in BASE_P99])
                                for f in (1.0, 1.01, 0.99, 1.005))
    assert p99[2] == format_quantity(base_p99, "ns")
    assert re.fullmatch(r"\+\d+\.\d % \[\+\d+\.\d, \+\d+\.\d\] \(p(<|&lt;)0\.001\)", p99[4]), p99[4]
    assert "🔴" not in by_metric["latency_p50"][5]
    assert sum(line.count("🔴") for line in md.splitlines()) == 1
    # the count is not reported; the latency table holds p50 and p99
    assert "requests" not in md


def test_markdown_missing_metrics_warnings_notes_and_escaping():
    baseline = synthetic(BASE_P99)
    weird = M("odd|name", 5.0, "ns", Grade.FAILED)
    current = synthetic(BASE_P99, extra=(weird,), notes=("a note | with a pipe",))
    current = RunResult({**current.metadata, "host": "other"}, current.scenarios)
    comparison = compare(baseline, current, lenient=True)
    assert comparison.missing == ("latency/odd|name",)
    md = markdown_report(current, comparison)
    assert "❌ 1 metric graded critical or failed (the command line's default --fail-on): " \
           "latency/odd\\|name (failed)" in md
    assert "> ℹ️ Not compared, no counterpart in the baseline: latency/odd\\|name" in md
    assert "> ⚠️ the baseline was measured on a different machine" in md
    header, rows = md_sections(md)["Latency"]          # its declared kind is a latency
    row = next(r for r in rows if r[1] == "odd\\|name")
    assert row[2] == "—" and row[5] == "no baseline"
    assert row[3].endswith("❌")
    assert md.rstrip().endswith("- **latency**: (trial 1) a note \\| with a pipe")


def test_markdown_rejects_a_comparison_of_another_run(run, regression):
    _, comparison = regression
    with pytest.raises(ValueError, match="another run"):
        markdown_report(run, comparison)


# -- terminal ----------------------------------------------------------------------------

def test_terminal_summary(run, regression):
    text = terminal_summary(run)
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "metric", "current", "grade"]
    from caxton_meter._reports import _load_facts
    facts = _load_facts(run)
    # the table, then what became of the load (a blank line first), then the count
    assert len(lines) >= 2 + len(reported(run)) + 1 + len(facts) + 1
    assert lines[2 + len(reported(run))] == ""
    assert [x for x in lines if x.startswith("latency: achieved ")]
    grades = [t.grade(n) for t in run.scenarios for n in t.metric_names if t.grade(n)]
    assert lines[-1] == (f"4 scenarios, {len(grades)} metrics graded: "
                         + ", ".join(f"{sum(g is x for g in grades)} {x.value}" for x in Grade))
    assert "\x1b[" not in text

    current, comparison = regression
    text = terminal_summary(current, comparison, color=True)
    assert "\x1b[1;31m" in text
    plain = terminal_summary(current, comparison)
    p99 = next(line for line in plain.splitlines() if "latency_p99" in line)
    assert re.search(r"regressed \(detects ≥ \d+\.\d %\)$", p99.rstrip()), p99
    assert plain.splitlines()[-1] == ("1 scenario, 3 metrics graded: 3 target, 0 acceptable, "
                                      "0 critical, 0 failed; 1 regression, 0 improvements")
    # columns line up: "current" is right-aligned under its header, "grade" starts under its
    lines = plain.splitlines()
    end = lines[0].index("current") + len("current")
    grade_at = lines[0].index("grade")
    for line in lines[2:2 + 3]:
        assert line[end - 1] != " " and line[end] == " ", line
        assert line[grade_at - 1] == " " and line[grade_at:].startswith("target"), line


# -- HTML --------------------------------------------------------------------------------

def test_html_tables_and_plots(run, html_with_plots):
    page = parse_html(html_with_plots)
    assert {"table-throughput", "table-latency", "table-resources"} <= set(page.tables)
    expected = {"spectrum-latency", "spectrum-burst_traffic", "spectrum-message_throughput",
                "overtime-latency", "overtime-burst_traffic", "scaling-horizontal_scaling",
                *(f"resources-{s}" for s in SCENARIOS)}
    assert expected <= set(page.figures)
    for fid in expected:
        svg = svg_of(html_with_plots, fid)
        assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert all(img["alt"] and img["src"].startswith("data:image/svg+xml;base64,")
               for img in page.imgs)
    assert html_with_plots.count("<figcaption>") == len(page.figures)
    # the baseline is overlaid on the spectrum and the scaling curves
    assert "latency (baseline)" in svg_of(html_with_plots, "spectrum-latency")
    assert "baseline" in svg_of(html_with_plots, "scaling-horizontal_scaling")
    assert "99.9%" in svg_of(html_with_plots, "spectrum-latency")
    assert "plots need matplotlib" not in html_with_plots
    # every reported metric is in a table
    text = "".join(page.text)
    assert all(m in text for _, m in reported(run))


def test_html_without_matplotlib(run, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    text = html_report(run)
    page = parse_html(text)
    assert not page.figures
    assert "plots need matplotlib: pip install &#x27;caxton_meter[plots]&#x27;" in text
    assert {"table-throughput", "table-latency", "table-resources"} <= set(page.tables)


def test_html_escapes_text():
    current = synthetic(BASE_P99, extra=(M("<b>x</b>", 5.0, "ns", Grade.TARGET),),
                        notes=("<script>alert(1)</script>",))
    text = html_report(current)
    assert "<script>alert" not in text and "<b>x</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    parse_html(text)


# -- JSON --------------------------------------------------------------------------------

def no_constants(name):
    raise AssertionError(f"not strict JSON: {name}")


def test_json_round_trips(run):
    text = json_report(run)
    json.loads(text, parse_constant=no_constants)
    assert text == run.to_json()
    back = RunResult.from_json(text)
    assert json.loads(back.to_json()) == json.loads(run.to_json())


def test_json_comparison_document(regression):
    current, comparison = regression
    nan_metric = M("latency_max", math.nan, "ns")
    doc = json.loads(json_report(current, comparison), parse_constant=no_constants)
    assert doc["kind"] == "caxton_meter.comparison"
    assert doc["format"] == COMPARISON_FORMAT_VERSION == 3
    assert RunResult.from_dict(doc["current"]).to_json() == current.to_json()
    assert doc["baseline_metadata"] == comparison.baseline.metadata
    assert doc["summary"] == {"compared": 3, "regressions": 1, "improvements": 0,
                              "not_gateable": 0, "transient": 0, "family": 3,
                              "significance": 0.05,
                              "history_runs": 4, "passed": True}
    entries = {e["metric"]: e for e in doc["comparisons"]}
    assert set(entries) == {"latency_p50", "latency_p99", "throughput"}
    p99 = entries["latency_p99"]
    assert p99["verdict"] == "regressed" and p99["higher_is_better"] is False
    assert p99["change"] == pytest.approx(1.0, rel=0.01)
    assert p99["spread"] > 0 and p99["detectable"] > 0 and p99["adjusted_p"] < 0.05
    assert set(p99) >= {"scenario", "metric", "unit", "verdict", "baseline", "current", "change",
                        "ci_low", "ci_high", "p_value", "method", "higher_is_better",
                        "exceeds_threshold"}
    assert entries["throughput"]["higher_is_better"] is True
    assert doc["missing"] == [] and doc["warnings"] == []
    # NaN becomes null
    run = synthetic([1.0], extra=(nan_metric,))
    doc = json.loads(json_report(run, compare(run, run, lenient=True)), parse_constant=no_constants)
    values = [m["value"] for m in doc["current"]["scenarios"][0]["trials"][0]["metrics"]]
    assert None in values


# -- github-action-benchmark -------------------------------------------------------------

def test_github_benchmark(run):
    bigger = json.loads(github_benchmark(run, bigger_is_better=True), parse_constant=no_constants)
    smaller = json.loads(github_benchmark(run, bigger_is_better=False),
                         parse_constant=no_constants)
    big = {e["name"]: e for e in bigger}
    small = {e["name"]: e for e in smaller}
    assert not set(big) & set(small)
    assert "message_throughput/throughput" in big and "horizontal_scaling/throughput@10" in big
    assert "latency/latency_p99" in small and "latency/latency_p50" in small
    assert all(e["unit"].endswith("/s") for e in bigger)
    assert not any(e["unit"].endswith("/s") for e in smaller)
    assert "latency/requests" not in big and "latency/requests" not in small
    assert "latency/achieved_rate" not in big          # a config's load, not compared
    for entries in (big, small):
        for name, e in entries.items():
            scenario, metric = name.split("/", 1)
            values = run.scenario(scenario).values(metric)
            assert e["value"] == pytest.approx(statistics.fmean(values))
            assert e["range"] == f"± {statistics.stdev(values):.6g}"
            assert e["extra"].startswith("2 trials")
    grade = run.scenario("latency").grade("latency_p99").value
    assert small["latency/latency_p99"]["extra"] == f"2 trials; grade {grade}"
    single = json.loads(github_benchmark(synthetic([5.0]), bigger_is_better=False))
    assert [e["name"] for e in single] == ["latency/latency_p50", "latency/latency_p99"]
    assert "range" not in single[0] and single[0]["extra"] == "1 trial; grade target"


# -- interval logs -----------------------------------------------------------------------

def test_interval_logs_read_back(run, tmp_path):
    paths = write_interval_logs(run, tmp_path / "logs")
    with_intervals = [t for t in run.scenarios if any(r.intervals for r in t.results)]
    assert {p.name for p in paths} == {f"{t.scenario}.hlog" for t in with_intervals}
    assert "latency.hlog" in {p.name for p in paths}
    for t in with_intervals:
        read = read_log(tmp_path / "logs" / f"{t.scenario}.hlog")
        expected = [(i, iv) for i, r in enumerate(t.results) for iv in r.intervals]
        assert len(read) == len(expected)
        for h, (i, iv) in zip(read, expected):
            assert h == Histogram.decode(iv.latency)
            assert h.tag == f"trial-{i}"
            assert h.end_time - h.start_time == pytest.approx((iv.end_ns - iv.start_ns) / 1e9,
                                                              abs=2e-3)
        starts = [h.start_time for h in read]
        assert starts == sorted(starts)
    assert not list((tmp_path / "logs").glob("*.tmp"))


# -- writing -----------------------------------------------------------------------------

@pytest.fixture
def no_matplotlib(monkeypatch):
    """Plots are tested above; here they would only cost time."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_write_reports(run, self_comparison, tmp_path, no_matplotlib):
    paths = write_reports(run, self_comparison, REPORT_FORMATS, tmp_path / "out")
    names = [p.name for p in paths]
    assert names[:5] == ["report.md", "report.html", "report.json", "benchmark-bigger.json",
                         "benchmark-smaller.json"]
    assert set(names[5:]) == {"latency.hlog", "burst_traffic.hlog"}
    assert all(p.is_file() for p in paths)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        names + [".caxton_meter-report"])                 # what the folder holds of ours
    assert (tmp_path / "out" / "report.md").read_text(encoding="utf-8") == \
        markdown_report(run, self_comparison)
    doc = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert doc["kind"] == "caxton_meter.comparison"

    only = write_reports(run, None, ["md"], tmp_path / "md")
    assert [p.name for p in only] == ["report.md"]


def test_write_reports_unknown_format(run, tmp_path):
    with pytest.raises(ValueError, match=r"'pdf'.*md, html, json"):
        write_reports(run, None, ["md", "pdf"], tmp_path / "out")
    assert not (tmp_path / "out").exists()          # nothing written
    with pytest.raises(TypeError):
        write_reports(run, None, "md", tmp_path / "out")


def test_write_reports_read_only_directory(tmp_path):
    run = synthetic([1.0, 2.0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root ignores permission bits: /proc is read-only even for root
        if not os.path.isdir("/proc/self"):
            pytest.skip("root, and no read-only /proc to write into")
        with pytest.raises(OSError):
            write_reports(run, None, ["md"], "/proc/self")
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OSError):
            write_reports(run, None, ["md"], folder)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_write_reports_oserror_propagates(tmp_path):
    """Runs as root too: the target folder is a file."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        write_reports(synthetic([1.0]), None, ["md", "json"], blocker)
    with pytest.raises(OSError):
        write_reports(synthetic([1.0]), None, ["md"], blocker / "below")
    assert blocker.read_text() == "not a folder"


# -- the HTML page's plots and marks, as drawn -----------------------------------------

def _drawn(run, plot_id):
    """The figure of plot ``plot_id`` of ``run``, drawn."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from caxton_meter._reports import _plots
    plot = next(p for _, plots in _plots(run, None) for p in plots if p.id == plot_id)
    fig = Figure()
    plot.draw(fig)
    return fig, plot


def test_the_throughput_line_has_room_above_it(run):
    fig, _ = _drawn(run, "overtime-latency")
    top = fig.axes[0]
    highest = max(max(line.get_ydata()) for line in top.get_lines())
    assert top.get_ylim()[1] >= 1.1 * highest > 0


def test_the_percentile_axis_labels_do_not_crowd(run):
    fig, plot = _drawn(run, "spectrum-latency")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "50%" and "0%" not in labels
    assert all(t.get_rotation() == 30 for t in ax.get_xticklabels())
    # each trial beside the merged curve, and the caption says what the table shows
    assert len(ax.get_lines()) >= 1 + 2
    assert "the mean of the trials' percentiles" in plot.caption


def test_the_memory_axis_spans_a_readable_range(run):
    fig, _ = _drawn(run, "resources-latency")
    low, high = fig.axes[0].get_ylim()
    data = [y for line in fig.axes[0].get_lines() for y in line.get_ydata()]
    # at least 5 % of the level (2.5 % each side of flat data), not 38.429 ... 38.432 MB
    assert high - low >= 0.05 * max(data) * 0.999 and low <= min(data) and high >= max(data)


def test_html_draws_marks_not_emoji(html_with_plots):
    for icon in ("✅", "🟡", "🟠", "❌", "🔴", "🟢", "⚪", "❔", "〰", "⚠", "ℹ"):
        assert icon not in html_with_plots, icon
    assert '<span class="mark ok" role="img" aria-label="met" title="met"></span>' \
        in html_with_plots
    parse_html(html_with_plots)


def _browser():
    import shutil
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_browser() is None, reason="no Chromium (.ci/run installs Debian's)")
def test_the_html_report_renders_in_a_real_browser(html_with_plots, tmp_path):
    """Headless Chromium loads the page: its DOM keeps every table and
    figure, every plot image decodes, and the grade marks are painted (the
    screenshot holds their colour)."""
    import subprocess
    page = tmp_path / "report.html"
    page.write_text(html_with_plots, encoding="utf-8")
    # an image that failed to decode would have no width: mark each one
    probe = html_with_plots.replace("</body>", """<script>
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.images) { img.decode().then(
      () => img.setAttribute("data-decoded", img.naturalWidth),
      () => img.setAttribute("data-decoded", "failed")); }
});</script></body>""")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(probe, encoding="utf-8")
    common = [_browser(), "--headless=new", "--no-sandbox", "--disable-gpu",
              "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run(common + ["--dump-dom", probe_page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    parsed = parse_html(dom)
    assert {"table-throughput", "table-latency"} <= set(parsed.tables)
    widths = re.findall(r'data-decoded="([^"]+)"', dom)
    assert len(widths) == len(parsed.imgs) > 0
    assert all(w.isdigit() and int(w) > 100 for w in widths), widths
    shot = tmp_path / "shot.png"
    subprocess.run(common + ["--window-size=1200,1400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    green = (abs(pixels[..., 0] - 0x1a / 255) < 0.03) & (abs(pixels[..., 1] - 0x7f / 255) < 0.03) \
        & (abs(pixels[..., 2] - 0x37 / 255) < 0.03)
    assert green.sum() > 20            # the "met" marks of the summary and the tables
