"""The command line end to end, run as a user runs it: exit codes, files
written, report contents, baseline semantics and every bad input."""
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FAST = ["message_throughput", "task_processing", "--quick", "--trials", "4", "--quiet"]


def cli(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "caxton_meter.run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with a baseline 'main' of the two fast scenarios: three
    runs saved by calibrate, so the gate knows their run-to-run spread."""
    d = tmp_path_factory.mktemp("project")
    r = cli("calibrate", "main", *FAST, "--runs", "3", cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def baseline_file(d, name="main"):
    """A baseline of the 0.1 format: one file."""
    return Path(d) / ".caxton_meter" / "baselines" / f"{name}.json"


def baseline_runs(d, name="main"):
    """The saved runs of a baseline, oldest first."""
    return sorted((Path(d) / ".caxton_meter" / "baselines" / name / "runs").glob("*.json"))


def snapshot(d, name="main"):
    return {p.name: p.read_bytes() for p in baseline_runs(d, name)}


def test_list_names_every_scenario(tmp_path):
    r = cli("--list", cwd=tmp_path)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert names[:2] == ["message_throughput", "task_processing"]
    assert len(names) == 14 and "peak_load" in names
    # descriptions are wrapped at word boundaries, without reST markup
    assert all(len(line) <= 100 for line in lines) and "``" not in r.stdout
    assert "message_throughput     The guide's message throughput: route messages (10,000)" in r.stdout


def test_help_documents_the_options_and_exit_codes(tmp_path):
    r = cli("--help", cwd=tmp_path)
    assert r.returncode == 0
    for option in ("--quick", "--duration", "--rate", "--agents", "--message-size",
                   "--agent-kind", "--save-baseline", "--baseline", "--baseline-lenient",
                   "--load-baseline", "--threshold", "--noise-threshold", "--significance",
                   "--report", "--output", "--slo", "--quiet", "exit codes", "130"):
        assert option in r.stdout, option


def test_the_console_script_is_installed(tmp_path):
    script = Path(sys.executable).with_name("caxton-meter")
    if not script.exists():
        pytest.skip("no console script beside this interpreter (not a venv install)")
    r = subprocess.run([str(script), "--list"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "burst_traffic" in r.stdout


def test_save_baseline_appends_to_the_history_and_compares_on_the_next_save(project):
    runs = baseline_runs(project)
    assert len(runs) == 3
    data = json.loads(runs[0].read_text())
    assert data["kind"] == "caxton_meter.result"
    assert [s["scenario"] for s in data["scenarios"]] == ["message_throughput", "task_processing"]
    assert all(len(s["trials"]) == 4 for s in data["scenarios"])
    r = cli(*FAST, "--save-baseline", "second", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "baseline 'second': run saved (1 in its history, the last 20 kept)" in r.stdout
    first = snapshot(project, "second")
    r = cli(*FAST, "--save-baseline", "second", cwd=project)     # exists now: compared
    assert r.returncode == 0, r.stderr                         # one saved run cannot gate
    assert "not gateable yet (history of 1 run(s), 3 needed)" in r.stdout
    assert "baseline 'second': run saved (2 in its history" in r.stdout
    after = snapshot(project, "second")
    assert len(after) == 2 and all(after[k] == v for k, v in first.items())   # appended


def test_baseline_compares_and_writes_reports(project, tmp_path):
    before = snapshot(project)
    out = tmp_path / "reports"
    r = cli(*FAST, "--baseline", "main", "--report", "md,html,json", "--output", out,
            cwd=project)
    assert r.returncode in (0, 1), r.stderr
    assert "change" in r.stdout and "verdict" in r.stdout
    md = (out / "report.md").read_text()
    assert md.startswith("# Performance Report") and "## Summary" in md
    assert "| Baseline | Current | Change |" in md.replace("Scenario | Metric | ", "")
    assert "<html" in (out / "report.html").read_text().lower()
    doc = json.loads((out / "report.json").read_text())
    assert doc["kind"] == "caxton_meter.comparison"
    assert json.loads((out / "benchmark-bigger.json").read_text())
    assert doc["summary"]["history_runs"] >= 3 and doc["summary"]["family"] > 0
    assert "comparisons against" in r.stdout or "comparisons against" in md
    assert snapshot(project) == before                            # --baseline never writes


def test_a_missing_counterpart_fails_unless_lenient(project):
    extra = ["message_throughput", "task_processing", "crash_recovery", "--quick",
             "--trials", "4", "--quiet"]
    r = cli(*extra, "--baseline", "main", cwd=project)
    assert r.returncode == 1
    assert "no counterpart in the baseline: crash_recovery/*" in r.stderr
    r = cli(*extra, "--baseline", "main", "--baseline-lenient", cwd=project)
    assert r.returncode in (0, 1) and "no counterpart" not in r.stderr


def test_a_regression_exits_1(project, tmp_path):
    fast = project / ".caxton_meter" / "baselines" / "fast" / "runs"
    fast.mkdir(parents=True, exist_ok=True)
    # a history 10x faster than anything here, each run's throughput within
    # 1 % of the others (the calibrated quick runs may vary by more than the
    # three runs' t test can see through)
    means = {}
    for path in baseline_runs(project):
        for s in json.loads(path.read_text())["scenarios"]:
            values = [m["value"] for t in s["trials"] for m in t["metrics"]
                      if m["name"] == "throughput"]
            means.setdefault(s["scenario"], []).extend(values)
    for k, path in enumerate(baseline_runs(project)):
        data = json.loads(path.read_text())
        for s in data["scenarios"]:
            fast_value = 10 * sum(means[s["scenario"]]) / len(means[s["scenario"]])
            for t in s["trials"]:
                for m in t["metrics"]:
                    if m["name"] == "throughput":
                        m["value"] = fast_value * (1, 1.01, 0.99)[k % 3]
        (fast / path.name).write_text(json.dumps(data))
    r = cli(*FAST, "--baseline", "fast", "--report", "md", "--output", tmp_path, cwd=project)
    assert r.returncode == 1
    assert "regressed" in r.stdout
    md = (tmp_path / "report.md").read_text()
    import re
    found = re.search(r"⚠️ (\d+) performance regressions? detected", md)
    assert found and int(found.group(1)) >= 2              # both throughputs, at least
    rows = [line for line in md.splitlines() if line.startswith("| ") and "| throughput |" in line]
    assert len(rows) == 2 and all("🔴 regressed" in row for row in rows)


def test_load_baseline_compares_two_saved_results_without_running(project):
    r = cli("--load-baseline", "main", "--baseline", "main", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "regressed" not in r.stdout and "improved" not in r.stdout
    r = cli("--load-baseline", "nope", cwd=project)
    assert r.returncode == 2 and "no baseline 'nope'" in r.stderr
    assert "saved baselines: " in r.stderr and "main" in r.stderr


def test_a_failed_target_exits_1(tmp_path):
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"format": 1, "thresholds": {
        "throughput": {"target": "1000G/s", "acceptable": "900G/s", "critical": "800G/s"}}}))
    r = cli("message_throughput", "--quick", "--trials", "1", "--slo", slo, cwd=tmp_path)
    assert r.returncode == 1
    assert "failed" in r.stdout


def test_overrides_reach_the_configs(tmp_path):
    r = cli("latency", "--quick", "--trials", "1", "--rate", "500", "--duration", "0.2",
            "--agents", "3", "--message-size", "16", "--agent-kind", "python",
            "--report", "json", "--output", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "o" / "report.json").read_text())["scenarios"][0]["config"]
    assert (config["rate"], config["duration"], config["agents"], config["message_size"],
            config["agent_kind"]) == (500.0, 0.2, 3, 16, "python")


def test_set_reaches_any_field_of_a_config(tmp_path):
    r = cli("task_processing", "message_throughput", "--quick", "--trials", "1",
            "--set", "task_processing.units=150", "--set", "window=20",
            "--set", "task_processing.tasks=300",
            "--report", "json", "--output", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    configs = {s["scenario"]: s["config"] for s in
               json.loads((tmp_path / "o" / "report.json").read_text())["scenarios"]}
    assert (configs["task_processing"]["units"], configs["task_processing"]["tasks"]) == (150, 300)
    assert configs["task_processing"]["window"] == configs["message_throughput"]["window"] == 20
    assert configs["message_throughput"]["messages"] == 1000          # the quick profile's


@pytest.mark.parametrize("args, message", [
    (["task_processing", "--set", "units"], "'units': write [SCENARIO.]FIELD=VALUE"),
    (["task_processing", "--set", ".units=3"], "write [SCENARIO.]FIELD=VALUE"),
    (["task_processing", "--set", "task_procesing.units=3"],
     "unknown scenario 'task_procesing' (did you mean 'task_processing'?)"),
    (["task_processing", "--set", "latency.rate=5"],
     "latency is not among the selected scenarios (task_processing)"),
    (["task_processing", "--set", "unit=3"],
     "no selected scenario has the field 'unit' (did you mean 'units'?)"),
    (["task_processing", "--set", "task_processing.unitz=3"],
     "has no field 'unitz' (did you mean 'units'?)"),
    (["task_processing", "--set", "units=-3"], "units must be >= 1, got -3"),
    (["task_processing", "--set", "units=many"], "units must be an int, not str"),
])
def test_a_bad_set_is_a_usage_error_before_anything_runs(tmp_path, args, message):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown scenario 'nope'; scenarios: message_throughput, task_processing"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option; valid options: "
                           "--agent-kind, --agents"),
    (["--basline", "main"], "--basline: did you mean --baseline?"),
    (["--threshold", "ten"], "argument --threshold: 'ten' is not a percentage"),
    (["--significance", "2"], "argument --significance: '2' must be between 0 and 1"),
    (["--report", "pdf"], "unknown report format 'pdf'; formats: md, html, json"),
    (["--trials", "0"], "argument --trials: '0' must be > 0"),
    (["--baseline", "nope"], "--baseline: no baseline 'nope'"),
    (["--baseline", "../etc"], "baseline name '../etc' is not valid"),
    (["crash_recovery", "--rate", "5"], "--rate applies to none of the selected scenarios"),
    (["latency", "--agent-kind", "wasm"], "--agent-kind wasm: supported by none"),
    (["--save-baseline", "a", "--baseline", "b"], "--save-baseline cannot be combined"),
    (["--slo", "missing.json"], "--slo missing.json: cannot be read"),
    (["--agent-kind", "java"], "argument --agent-kind: invalid choice: 'java'"),
])
def test_usage_errors_exit_2_naming_the_option(tmp_path, args, message):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr


@pytest.mark.parametrize("slo, message", [
    ("{", "not valid JSON"),
    ('{"format": 1, "thresholds": {"latncy_p99": {"target": "1ms"}}}',
     "unknown metric 'latncy_p99'; metrics: cpu_per_agent"),
    ('{"format": 1, "thresholds": {"latency_p99": {"target": "10 parsecs"}}}',
     "unknown unit 'parsecs' for a time"),
    ('{"format": 1, "thresholds": {"latency_p99": {"target": "90ms"}}}',
     "target <= acceptable <= critical"),
    ('{"thresholds": {}}', 'expected {"format": 1'),
])
def test_a_bad_slo_file_is_a_usage_error(tmp_path, slo, message):
    (tmp_path / "slo.json").write_text(slo)
    r = cli("latency", "--quick", "--slo", "slo.json", cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.mark.parametrize("content, problem", [
    ("{garbage", "not valid JSON"),
    ('{"kind": "caxton_meter.result", "format": 7}', "format version 7 is newer"),
])
def test_a_damaged_baseline_names_the_file_and_is_not_overwritten(tmp_path, content, problem):
    path = baseline_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    for option in ("--baseline", "--save-baseline"):
        r = cli("message_throughput", "--quick", option, "main", cwd=tmp_path)
        assert r.returncode == 2
        assert str(Path(".caxton_meter") / "baselines" / "main.json") in r.stderr
        assert problem in r.stderr and "nothing was overwritten" in r.stderr
        assert path.read_text() == content


def test_an_output_that_cannot_be_a_folder_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for output in (tmp_path / "file", tmp_path / "file" / "reports"):
        started = time.monotonic()
        r = cli("message_throughput", "--quick", "--trials", "1", "--report", "md",
                "--output", output, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert f"--output {output}" in r.stderr and r.stdout == ""
        assert not (tmp_path / ".caxton_meter" / "runs").exists()       # nothing ran
    assert time.monotonic() - started < 30


def test_a_write_failure_is_reported_and_the_run_is_kept(tmp_path):
    (tmp_path / "o" / "report.md").mkdir(parents=True)         # report.md cannot be a file
    r = cli("message_throughput", "--quick", "--trials", "1", "--report", "md",
            "--output", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 1
    assert "the reports could not be written to" in r.stderr
    assert "message_throughput" in r.stdout and "throughput" in r.stdout
    (kept,) = (tmp_path / ".caxton_meter" / "runs").glob("*.json")
    assert f"this run's result is kept in {Path('.caxton_meter') / 'runs' / kept.name}" \
        in r.stderr
    doc = json.loads(kept.read_text())
    assert [s["scenario"] for s in doc["scenarios"]] == ["message_throughput"]


def test_output_alone_writes_every_report_and_a_reused_folder_holds_one_run(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    r = cli("latency", "--quick", "--trials", "1", "--duration", "0.3", "--output", out,
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "report.json", "latency.hlog", "mine.txt"} <= first
    r = cli("message_throughput", "--quick", "--trials", "1", "--report", "md", "--output", out,
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "mine.txt", ".caxton_meter-report"}
    assert "message_throughput" in (out / "report.md").read_text()


def test_kept_runs_are_pruned_to_the_newest(tmp_path):
    from caxton_meter._baselines import keep_run
    from caxton_meter._results import RunResult
    run = RunResult({"host": "h"}, ())
    paths = [keep_run(run, tmp_path / "runs", keep=3) for _ in range(5)]
    assert sorted((tmp_path / "runs").glob("*.json")) == paths[2:]
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        keep_run(run, tmp_path / "runs", keep=0)


def test_fail_on_chooses_the_grade_that_fails_the_run(tmp_path):
    # p99 certainly between 1 ns and an hour: critical against these targets
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"format": 1, "thresholds": {
        "latency_p99": {"target": "1ns", "acceptable": "2ns", "critical": "1h"}}}))
    base = ("message_throughput", "--quick", "--trials", "2", "--quiet", "--slo", slo)
    r = cli(*base, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "latency_p99" in r.stdout and "critical" in r.stdout
    assert "1 figure(s) graded critical or worse (--fail-on critical): " \
           "message_throughput/latency_p99 critical" in r.stderr
    r = cli(*base, "--fail-on", "failed", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # acceptable (between 1 ns and an hour): passes by default, fails --fail-on acceptable
    slo.write_text(json.dumps({"format": 1, "thresholds": {
        "latency_p99": {"target": "1ns", "acceptable": "1h", "critical": "2h"}}}))
    assert cli(*base, cwd=tmp_path).returncode == 0
    r = cli(*base, "--fail-on", "acceptable", cwd=tmp_path)
    assert r.returncode == 1 and "message_throughput/latency_p99 acceptable" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--baseline", ""], "argument --baseline: an empty name: give the baseline's NAME"),
    (["--save-baseline", ""], "argument --save-baseline: an empty name"),
    (["--save-baseline", " "], "argument --save-baseline: an empty name"),
    (["--load-baseline", "a/b"], "baseline name 'a/b' is not valid"),
    (["message_throughput", "--threshold", "latency_p9=5"],
     "no selected scenario compares a metric 'latency_p9' (did you mean 'latency_p99'?)"),
    (["message_throughput", "--threshold", "foo=5"], "compared metrics: latency_p50, "),
    (["--threshold", "=5"], "no metric before '='"),
    (["--fail-on", "target"], "a figure graded target never fails a run"),
    (["--fail-on", "critcal"], "choose acceptable, critical, failed (did you mean 'critical'?)"),
])
def test_empty_and_mistyped_values_are_refused(tmp_path, args, message):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr


def test_a_usage_error_is_one_line_and_a_pointer_to_help(tmp_path):
    for args in (["--trials", "0"], ["nope"]):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 2
        lines = r.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith("python -m caxton_meter.run: error: ")
        assert lines[1] == "(see: python -m caxton_meter.run --help)"


def test_the_terminal_shows_a_partial_run_and_the_load_it_achieved(tmp_path):
    r = cli("latency", "--quick", "--trials", "1", "--deadline", "0.2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("latency: achieved "))
    assert " asked (" in line and "partial (1 of 1 trial; see the notes)" in line
    assert "the deadline (0.2 s) was reached" in r.stdout


def test_ctrl_c_prints_the_partial_result_and_saves_no_baseline(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "caxton_meter.run", "latency", "--trials", "1",
                          "--duration", "60", "--rate", "1000", "--save-baseline", "x"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "latency_p99" in out
    assert "interrupted" in err and "baseline 'x' not saved" in err
    assert not baseline_file(tmp_path, "x").exists() and not baseline_runs(tmp_path, "x")


def test_the_sample_workflow_uses_only_real_options(tmp_path):
    import re
    workflow = Path(__file__).resolve().parent.parent / "examples" / "github-workflow.yml"
    text = workflow.read_text()
    commands = re.findall(r"python -m caxton_meter\.run((?:[^\n]|\\\n)*)", text)
    assert len(commands) >= 3
    help_text = cli("--help", cwd=tmp_path).stdout
    for command in commands:
        for option in re.findall(r"(--[a-z-]+)", command):
            assert option in help_text, option
    assert "--save-baseline main" in text and "--baseline main" in text
    assert "report/report.md" in text and "upload-artifact" in text


def test_live_progress_shows_time_rate_p99_and_errors():
    import io

    from caxton_meter import Router, open_loop
    from caxton_meter._cli import _Progress

    stream = io.StringIO()
    progress = _Progress(stream, total_trials=4)
    progress.begin("latency", 0, 2)
    router = Router(keep_replies=False)
    echoes = router.spawn_native("echo", count=2)
    open_loop(router, echoes, [(2000, 0.3)], interval=0.1,
              on_interval=lambda iv: progress.interval(iv))
    progress.trial_done()
    progress.begin("latency", 1, 2)
    progress.close()
    text = stream.getvalue()
    assert "[0/4] latency 1/2" in text and "[1/4] latency 2/2" in text
    assert "rate " in text and "req/s" in text and "p99 " in text and "errors 0" in text
    assert "remaining ~" in text                    # once a trial is done
    assert text.endswith("\r\x1b[K")                # the line is cleared at the end


def test_no_progress_when_not_a_terminal(tmp_path):
    r = cli("latency", "--quick", "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0
    assert "\r" not in r.stderr and "elapsed" not in r.stderr


def test_a_scenario_that_raises_loses_no_other_result(monkeypatch, capsys, tmp_path):
    from caxton_meter import _scenarios as sc
    from caxton_meter._cli import main

    def boom(config, *, thresholds=None):
        raise RuntimeError("the agent server went away")
    monkeypatch.setitem(sc.SCENARIOS, "task_processing",
                        dataclasses.replace(sc.SCENARIOS["task_processing"], run=boom))
    monkeypatch.chdir(tmp_path)
    code = main(["message_throughput", "task_processing", "crash_recovery", "--quick",
                 "--trials", "1", "--quiet", "--report", "json", "--output", "out"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "scenario task_processing failed: RuntimeError: the agent server went away" in err
    assert "message_throughput" in out and "crash_recovery" in out   # the others ran
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["scenario"] for s in saved["scenarios"]] == ["message_throughput", "crash_recovery"]
    assert saved["metadata"]["failed_scenarios"][0].startswith("task_processing: RuntimeError")


def test_load_baseline_keeps_the_selected_scenarios(project):
    r = cli("task_processing", "--load-baseline", "main", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "task_processing" in r.stdout and "message_throughput" not in r.stdout
    r = cli("latency", "--load-baseline", "main", cwd=project)
    assert r.returncode == 2
    assert "no scenario 'latency' in it; its scenarios: message_throughput, task_processing" \
        in r.stderr


def test_an_override_the_config_refuses_is_a_usage_error(tmp_path):
    r = cli("sustained_load", "--quick", "--duration", "0.3", cwd=tmp_path)
    assert r.returncode == 2
    assert "--duration 0.3: SustainedLoadConfig: duration (0.3 s) must cover at least two" \
        in r.stderr


def test_a_long_run_says_how_long_before_it_starts():
    from caxton_meter._cli import _planned_seconds, _span
    from caxton_meter._scenarios import BurstTrafficConfig, SustainedLoadConfig
    assert _planned_seconds(SustainedLoadConfig()) == 86_400.0
    assert _planned_seconds(BurstTrafficConfig()) == 30 + 10 + 300
    assert _planned_seconds(SustainedLoadConfig(deadline=60)) == 60
    assert _span(45) == "45 s" and _span(600) == "10 min" and _span(86_400 * 5) == "5.0 days"



def test_the_duration_note_comes_before_anything_runs(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "caxton_meter.run", "latency", "--trials", "2",
                          "--duration", "700", "--rate", "100"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
    finally:
        p.kill()
        p.communicate()
    assert line.startswith("note: this run lasts at least 23 min (2 trials; latency: 12 min "
                           "a trial)"), line


def test_slo_expressions_are_checked_against_the_scenarios_that_produce_their_metric(tmp_path):
    r = cli("latency", "message_throughput", "--quick", "--trials", "1", "--quiet",
            "--slo", "latency_p99 < 10s", "--slo", "throughput >= 1/s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "threshold 'latency_p99 < 10s' passed for latency: latency_p99 = " in r.stdout
    assert "threshold 'latency_p99 < 10s' passed for message_throughput" in r.stdout
    assert "threshold 'throughput >= 1/s' passed for message_throughput" in r.stdout
    assert "'throughput >= 1/s' passed for latency" not in r.stdout     # latency has none
    r = cli("latency", "--quick", "--trials", "1", "--quiet", "--slo", "latency_p50 < 1ns",
            cwd=tmp_path)
    assert r.returncode == 1
    assert "threshold 'latency_p50 < 1ns' failed for latency: latency_p50 = " in r.stdout


@pytest.mark.parametrize("slo, message", [
    ("latncy_p99 < 10ms", "unknown metric 'latncy_p99' (did you mean 'latency_p99'?)"),
    ("latency_p99 < 10 parsecs", "--slo 'latency_p99 < 10 parsecs'"),
    ("recovery_time_max < 1s", "no selected scenario (latency) produces its metric"),
])
def test_a_bad_slo_expression_is_a_usage_error_before_anything_runs(tmp_path, slo, message):
    r = cli("latency", "--quick", "--slo", slo, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / ".caxton_meter").exists()


def test_durations_and_rates_take_units_on_the_command_line(tmp_path):
    r = cli("latency", "--quick", "--trials", "1", "--quiet", "--duration", "200ms",
            "--rate", "1K/s", "--report", "json", "--output", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"][0]["config"]
    assert config["duration"] == 0.2 and config["rate"] == 1000.0
    r = cli("latency", "--quick", "--duration", "0", cwd=tmp_path)
    assert r.returncode == 2 and "--duration: must be a finite number > 0" in r.stderr


def test_a_partial_or_failed_run_is_never_saved_and_the_baseline_stays(project, tmp_path, capsys,
                                                                      monkeypatch):
    before = snapshot(project)
    r = cli("message_throughput", "--quick", "--trials", "1", "--quiet", "--deadline", "0.000001",
            "--save-baseline", "main", "--baseline-lenient", cwd=project)
    assert r.returncode == 1
    assert "not saved as baseline 'main': message_throughput is partial" in r.stderr
    assert snapshot(project) == before
    # every selected scenario failing leaves nothing to save, and nothing changes
    from caxton_meter import _scenarios as sc
    from caxton_meter._cli import main

    def boom(config, *, thresholds=None):
        raise RuntimeError("the agent server went away")
    for name in ("message_throughput", "task_processing"):
        monkeypatch.setitem(sc.SCENARIOS, name, dataclasses.replace(sc.SCENARIOS[name], run=boom))
    monkeypatch.chdir(project)
    code = main(["message_throughput", "task_processing", "--quick", "--trials", "1", "--quiet",
                 "--save-baseline", "main"])
    err = capsys.readouterr().err
    assert code == 1 and "not saved as baseline 'main'" in err
    assert snapshot(project) == before


def test_calibrate_saves_the_runs_and_prints_what_this_machine_can_detect(tmp_path):
    r = cli("calibrate", "cal", "message_throughput", "--quick", "--trials", "2", "--runs", "3",
            "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(baseline_runs(tmp_path, "cal")) == 3
    assert "baseline 'cal': 3 saved run(s)" in r.stdout
    line = next(x for x in r.stdout.splitlines() if "message_throughput/throughput " in x)
    assert "spread" in line and "detects >= " in line
    assert "this machine can detect (median over the metrics of each kind): >= " in r.stdout
    doc = json.loads((tmp_path / ".caxton_meter" / "baselines" / "cal" / "calibration.json")
                     .read_text())
    assert doc["kind"] == "caxton_meter.calibration" and doc["runs"] == 3
    entry = next(m for m in doc["metrics"] if m["metric"] == "throughput")
    assert entry["spread"] >= 0 and entry["detectable"] >= entry["spread"]
    r = cli("calibrate", "--quick", cwd=tmp_path)
    assert r.returncode == 2 and "give the baseline's NAME first" in r.stderr
    r = cli("calibrate", "cal", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "unknown scenario 'nope'" in r.stderr


def test_a_default_runs_folder_that_cannot_be_made_warns_and_the_run_goes_on(tmp_path):
    (tmp_path / ".caxton_meter").write_text("a file where the folder would be")
    r = cli("message_throughput", "--quick", "--trials", "1", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: this run's result will not be kept" in r.stderr and "give --runs-dir" \
        in r.stderr
    assert "message_throughput" in r.stdout
    # an explicit --runs-dir that cannot be one is refused before anything runs
    r = cli("message_throughput", "--quick", "--trials", "1", "--runs-dir",
            tmp_path / ".caxton_meter" / "runs", cwd=tmp_path)
    assert r.returncode == 2 and "--runs-dir" in r.stderr and r.stdout == ""
