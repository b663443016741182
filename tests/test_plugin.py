"""The pytest plugin, run the way users run it: pytester sessions of small
test files, in process where possible, in a subprocess for exit codes and
pytest-xdist."""
import json

import psutil  # noqa: F401
import pytest

import caxton_meter._reports  # noqa: F401
from caxton_meter._baselines import BaselineStore
from caxton_meter._results import read_result

# psutil and the modules the plugin loads when it saves, compares or
# reports are imported above, before pytester's in-process runs: a run
# unloads the modules it imported, and numpy cannot be imported twice in
# one process.

pytest_plugins = ["pytester"]


def _history(pytester, name, directory=".caxton_meter/baselines"):
    """The saved runs of baseline ``name``, oldest first."""
    return BaselineStore(pytester.path / directory).history(name).runs


def _baseline(pytester, name, directory=".caxton_meter/baselines"):
    """The newest saved run of baseline ``name``."""
    return _history(pytester, name, directory)[-1]


def _saved_runs(pytester, name, directory=".caxton_meter/baselines"):
    return len(BaselineStore(pytester.path / directory).run_files(name))


# -- the fixture ------------------------------------------------------------------------------

def test_timed_blocks_and_decorated_functions(pytester):
    pytester.makepyfile("""
        def test_blocks(meter):
            for _ in range(50):
                with meter.time("blk") as t:
                    sum(range(100))
            assert t.elapsed_ns > 0

            @meter.time("deco")
            def f(x):
                return x * 2

            assert [f(i) for i in range(7)] == [i * 2 for i in range(7)]
            assert meter.names == ("blk", "deco")
            m = meter.measurement("blk")
            assert m.count == 50 and m.histogram.total_count == 50
            assert 0 < m.histogram.value_at_percentile(50) <= m.histogram.max
            assert m.throughput > 0 and m.rss_peak is None
            assert meter.measurement("deco").count == 7
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_calibrated_calls_return_the_result(pytester):
    pytester.makepyfile("""
        import pytest

        def add(a, b=0):
            return a + b

        def test_call(meter):
            assert meter(add, 2, b=3) == 5
            m = meter.measurement("add")
            assert m.count >= 10          # ten rounds, each of at least one call
            assert m.throughput > 0 and m.histogram.total_count == m.count

        def test_call_with_settings(meter):
            calls = []
            result = meter.call(calls.append, (1,), name="append", rounds=3, min_time="1ms")
            assert result is None
            # the warm-up and calibration calls are not counted
            assert 3 <= meter.measurement("append").count < len(calls)
            with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
                meter.call(add, (1,), rounds=0)
            with pytest.raises(TypeError, match="min_time must be a number or a string"):
                meter.call(add, (1,), min_time=True)     # True is not one second
            with pytest.raises(ValueError, match="already holds calls results"):
                meter.time("append")
    """)
    pytester.runpytest().assert_outcomes(passed=2)


def test_loads_of_callables_targets_and_coroutines(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        class Client:
            def __init__(self):
                self.log = []
            def setup(self):
                self.log.append("setup")
            def request(self, payload):
                self.log.append(payload)
                if len(self.log) % 2:
                    raise ConnectionError("every other request fails")
            def teardown(self):
                self.log.append("teardown")

        class AsyncClient:
            async def request(self, payload):
                await asyncio.sleep(0)
                return payload

        def test_callable(meter):
            r = meter.load(lambda: None, rate=200, duration=0.25)
            assert r.planned == 50 and r.completed == r.planned and r.failed == 0
            m = meter.measurement("load")
            assert m.count == r.completed and m.histogram.total_count == r.completed
            assert m.throughput > 20
            assert m.rss_peak > 1_000_000 and m.cpu_percent is not None
            meter.check("error_rate < 1%", "throughput > 20/s", "rss < 100GB")

        def test_target_object(meter):
            client = Client()
            r = meter.load(client, rate="200/s", duration="100ms", payload=b"ping",
                           name="client")
            assert client.log[0] == "setup" and client.log[-1] == "teardown"
            assert b"ping" in client.log
            m = meter.measurement("client")
            assert m.errors == r.failed > 0 and m.count == r.completed > 0
            with pytest.raises(AssertionError, match="threshold 'error_rate < 1%' failed for "
                               "client: error_rate = "):
                meter.check("error_rate < 1%")

        def test_coroutine_function(meter):
            async def request(delay):
                await asyncio.sleep(delay)

            r = meter.load(request, rate=100, duration=0.2, args=(0.002,), concurrency=20)
            assert r.completed == r.planned == 20
            # latency includes the 2 ms sleep
            assert meter.measurement().histogram.value_at_percentile(50) >= 1_900_000

        def test_async_target(meter):
            r = meter.load(AsyncClient(), rate=100, duration=0.1, payload=b"x")
            assert r.completed == 10 and meter.measurement().count == 10

        def test_inside_an_event_loop(meter):
            async def request():
                await asyncio.sleep(0)

            async def main():
                with pytest.raises(RuntimeError, match="use `await meter.load_async"):
                    meter.load(request, rate=100, duration=0.05)
                return await meter.load_async(request, rate=100, duration=0.1)

            assert asyncio.run(main()).completed == 10

        def test_misuse(meter):
            with pytest.raises(TypeError, match="must be a callable, a coroutine function"):
                meter.load(42, rate=1, duration=1)
            with pytest.raises(ValueError, match="rate= .* and duration="):
                meter.load(print, rate=1)
            with pytest.raises(TypeError, match="payload= is for a Target"):
                meter.load(print, rate=1, duration=1, payload=b"x")
    """)
    pytester.runpytest().assert_outcomes(passed=6)


def test_resources_and_grades(pytester):
    pytester.makepyfile("""
        from caxton_meter import Grade

        def test_resources(meter):
            with meter.resources("alloc"):
                block = bytearray(30_000_000)
                block[::4096] = b"x" * len(block[::4096])
            m = meter.measurement("alloc")
            assert m.rss_peak >= 30_000_000 and m.cpu_percent is not None
            meter.check("rss < 100GB", "cpu < 100000%", name="alloc")

        def test_grade(meter):
            for _ in range(100):
                with meter.time():
                    pass
            grades = meter.grade()
            assert set(grades) == {"latency_p50", "latency_p99", "throughput"}
            assert grades["latency_p50"] is Grade.TARGET
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*- caxton_meter -*",
        "test / name*kind*count*errors*p50*p99*mean*throughput*rss peak*cpu",
        "test_resources_and_grades.py::test_grade / default*time*100*",
        "test_resources_and_grades.py::test_resources / alloc*resources*MB*%",
    ])


# -- thresholds -------------------------------------------------------------------------------

def test_check_passes_and_fails_with_a_clear_message(pytester):
    pytester.makepyfile("""
        import pytest
        from caxton_meter._expressions import ThresholdExpressionError

        def test_passes(meter):
            with meter.time("blk"):
                pass
            evaluations = meter.check("p(99) < 10s", "count == 1")
            assert [e.passed for e in evaluations] == [True, True]

        def test_fails(meter):
            for _ in range(3):
                with meter.time("blk"):
                    pass
            meter.check("p(99) < 1ns", name="blk")

        def test_malformed(meter):
            with pytest.raises(ThresholdExpressionError) as info:
                meter.check("p99x < 1ms")
            assert "unknown metric 'p99x'" in str(info.value)
            assert "    ^^^^" in str(info.value).splitlines()

        def test_unmeasured(meter):
            with meter.time("blk"):
                pass
            with pytest.raises(AssertionError, match=r"rss was not measured for blk"):
                meter.check("rss < 1GB")
            with pytest.raises(AssertionError, match="nothing was measured under that name"):
                meter.check("p(99) < 1s", name="other")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.re_match_lines([
        r"E\s+AssertionError: threshold 'p\(99\) < 1ns' failed for blk: p\(99\) = [\d.]+ (ns|us)$",
    ])


def test_marker_thresholds_are_checked_after_the_test(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.meter(thresholds=["p(99) < 10s", "count >= 3"])
        def test_passes(meter):
            for _ in range(3):
                with meter.time():
                    pass

        @pytest.mark.meter(thresholds=["p(99) < 1ns"])
        def test_fails(meter):
            with meter.time():
                pass

        @pytest.mark.meter(thresholds={"fast": "max < 10s", "slow": ["p(50) < 1ns"]})
        def test_by_name(meter):
            with meter.time("fast"):
                pass
            with meter.time("slow"):
                pass

        @pytest.mark.meter(thresholds=["p(99) < 1s"])
        def test_measures_nothing(meter):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "threshold 'p(99) < 1ns' failed for default: p(99) = *",
        "threshold 'p(50) < 1ns' failed for slow: p(50) = *",
        "threshold 'p(99) < 1s' failed: nothing was measured*",
    ])
    result.stdout.no_fnmatch_line("*failed for fast*")


def test_a_malformed_marker_fails_the_collection(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.meter(thresholds=["p(99) < 10 parsecs"])
        def test_bad(meter):
            open("ran", "w").close()

        def test_other():
            pass
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*test_bad: bad threshold in @pytest.mark.meter:",
        "invalid threshold expression: unknown unit 'parsecs' for p(99), a time",
        "    p(99) < 10 parsecs",
        "               ^^^^^^^",
        "valid: ns, us, ms, s, m, h*",
    ])
    assert not (pytester.path / "ran").exists()


def test_a_marker_without_the_fixture_fails_the_collection(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.meter(thresholds=["p(99) < 1ms"])
        def test_no_fixture():
            pass
    """)
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*does not use; add `meter` to its arguments"])


def test_a_malformed_marker_under_xdist(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.meter(thresholds=["p(99) = 1ms"])
        def test_bad(meter):
            open("ran", "w").close()

        def test_other():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines([
        "*'=' is not an operator; write '=='*",
        "    p(99) = 1ms",
        "          ^",
    ])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert not (pytester.path / "ran").exists()


# -- options ----------------------------------------------------------------------------------

_MEASURED = """
    import os
    import time
    import pytest

    DELAY = float(os.environ.get("METER_TEST_DELAY", "0"))

    def work():
        if DELAY:
            time.sleep(DELAY)

    def test_calls(meter):
        meter.call(work, rounds=5, min_time="1ms")

    def test_blocks(meter):
        for _ in range(10):
            with meter.time("blk"):
                work()
        meter.grade()
"""


def test_save_baseline_writes_a_valid_result(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    result = pytester.runpytest("--meter-save-baseline", "base")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["caxton_meter: saved baseline 'base' (1 saved run): "
                                 "*base/runs/*.json"])
    run = _baseline(pytester, "base")
    assert run.names == ("test_measured.py::test_blocks::blk", "test_measured.py::test_calls::work")
    blocks = run.scenario("test_measured.py::test_blocks::blk")
    assert len(blocks.results) == 1
    assert blocks.histogram("latency").total_count == 10
    assert {"latency_p50", "latency_p99", "count"} <= set(blocks.metric_names)
    assert blocks.unit("latency_p99") == "ns"
    assert blocks.grade("latency_p50").value == "target"
    calls = run.scenario("test_measured.py::test_calls::work")
    assert len(calls.results) == 5                       # one trial per round
    assert {"time_per_call", "throughput"} <= set(calls.metric_names)
    assert calls.unit("throughput") == "calls/s" and calls.unit("time_per_call") == "ns"
    assert all(v > 0 for v in calls.values("time_per_call"))
    assert run.metadata["profile"] == "pytest"


def test_baseline_dir_and_a_missing_baseline(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    pytester.runpytest("--meter-save-baseline", "one", "--meter-baseline-dir", "kept")
    assert _baseline(pytester, "one", "kept").names
    result = pytester.runpytest("--meter-baseline", "two", "--meter-baseline-dir", "kept")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--meter-baseline: no baseline 'two' in *kept; "
                                 "saved baselines: one"])
    result = pytester.runpytest("--meter-save-baseline", "../x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--meter-save-baseline: baseline name '../x' is not valid*"])


def _save_runs(pytester, name, runs, *args):
    """Save ``runs`` sessions of the same code as baseline ``name``."""
    for _ in range(runs):
        result = pytester.runpytest("--meter-save-baseline", name, *args)
        assert result.ret == 0, result.stdout.str()
    assert _saved_runs(pytester, name) == runs


def test_a_regression_fails_the_session(pytester, monkeypatch):
    pytester.makepyfile(test_measured=_MEASURED)
    # Four runs of 2 ms blocks and calls: the run-to-run spread to judge by.
    monkeypatch.setenv("METER_TEST_DELAY", "0.002")
    _save_runs(pytester, "base", 4)
    # Faster than the baseline: improvements, the session passes.
    monkeypatch.setenv("METER_TEST_DELAY", "0")
    fast = pytester.runpytest("--meter-baseline", "base")
    assert fast.ret == 0, fast.stdout.str()
    fast.stdout.fnmatch_lines([
        "compared with baseline 'base': * 0 regression(s)*",
        "  * comparisons against 4 saved runs, false-alarm rate 0.05 for the session (Holm); "
        "* not gateable here",
        # which metrics are gateable depends on the 4 saved runs' spread (a
        # busy machine can hide one of them); the improvements that are
        # seen say how they were judged
        "*improved test_measured.py::test_*: * -> * (1/* of the baseline; run-to-run over 4 "
        "saved runs, p=* after Holm)",
    ])
    # 2 ms -> 20 ms, ten times any run-to-run noise: the tests pass, the session fails.
    monkeypatch.setenv("METER_TEST_DELAY", "0.02")
    regressed = pytester.runpytest("--meter-baseline", "base")
    regressed.assert_outcomes(passed=2)
    assert regressed.ret == pytest.ExitCode.TESTS_FAILED
    regressed.stdout.fnmatch_lines([
        "*REGRESSED test_measured.py::test_blocks::blk: latency_p50 2.* ms -> 2*.* ms "
        "(+*; run-to-run over 4 saved runs, p=* after Holm)",
        "*REGRESSED test_measured.py::test_calls::work: time_per_call 2.* ms -> 2*.* ms *",
        "caxton_meter: * performance regression* against baseline 'base': the session fails",
    ])
    assert _saved_runs(pytester, "base") == 4           # comparing saves nothing


def test_a_baseline_of_one_run_cannot_gate(pytester, monkeypatch):
    pytester.makepyfile(test_measured=_MEASURED)
    monkeypatch.setenv("METER_TEST_DELAY", "0.002")
    _save_runs(pytester, "base", 1)
    # Ten times slower, and yet no verdict: one run says nothing of the spread.
    monkeypatch.setenv("METER_TEST_DELAY", "0.02")
    result = pytester.runpytest("--meter-baseline", "base")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "compared with baseline 'base': * metric(s), 0 regression(s), 0 improvement(s), "
        "0 without a baseline counterpart",
        "  0 comparisons against 1 saved run, false-alarm rate 0.05 for the session (Holm); "
        "* not gateable here",
        "  * metrics not gateable (history of 1 run(s), 3 needed): save 3 runs or more of "
        "unchanged code (`pytest --meter-save-baseline base`, once per run) before the "
        "baseline can gate",
    ])
    result.stdout.no_fnmatch_line("*REGRESSED*")


def test_a_baseline_whose_runs_vary_too_much_cannot_gate(pytester, monkeypatch):
    pytester.makepyfile(test_measured=_MEASURED)
    for delay in ("0.001", "0.003", "0.002"):       # runs that differ by half their mean
        monkeypatch.setenv("METER_TEST_DELAY", delay)
        assert pytester.runpytest("--meter-save-baseline", "base").ret == 0
    assert _saved_runs(pytester, "base") == 3
    monkeypatch.setenv("METER_TEST_DELAY", "0.002")
    result = pytester.runpytest("--meter-baseline", "base")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "  * comparisons against 3 saved runs, false-alarm rate 0.05 for the session (Holm); "
        "* not gateable here",
        "  not gateable here test_measured.py::test_calls::work: time_per_call varies by "
        "* % between saved runs; only changes of * % or more would be seen",
    ])
    result.stdout.no_fnmatch_line("*REGRESSED*")


# -- what is saved ----------------------------------------------------------------------------

def test_an_interrupted_session_saves_nothing(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    _save_runs(pytester, "base", 1)
    before = _baseline(pytester, "base")
    pytester.makepyfile(test_measured=_MEASURED + """
    def test_zz_interrupted(meter):
        with meter.time("cut"):
            raise KeyboardInterrupt         # what Ctrl-C raises
    """)
    # in a subprocess: in process, pytester raises the KeyboardInterrupt again
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--meter-save-baseline", "base")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "test_measured.py::test_blocks / blk*",         # measured before the interruption
        "caxton_meter: not saved as baseline 'base': the session was interrupted (Ctrl-C); "
        "the baseline is unchanged",
    ])
    result.stdout.no_fnmatch_line("*saved baseline 'base' (*")
    assert _saved_runs(pytester, "base") == 1
    assert _baseline(pytester, "base").to_json() == before.to_json()


def test_collection_errors_save_nothing(pytester):
    pytester.makepyfile(test_measured=_MEASURED, test_broken="def test_broken(:\n    pass\n")
    result = pytester.runpytest("--meter-save-baseline", "base")
    assert result.ret == pytest.ExitCode.INTERRUPTED       # pytest stops at collection errors
    result.stdout.fnmatch_lines([
        "caxton_meter: not saved as baseline 'base': 1 collection error (test_broken.py); "
        "nothing was measured; the baseline is unchanged",
    ])
    # Told to go on, pytest runs the other tests: they are measured, and not saved.
    result = pytester.runpytest("--meter-save-baseline", "base",
                                "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "test_measured.py::test_blocks / blk*",
        "caxton_meter: not saved as baseline 'base': 1 collection error (test_broken.py); "
        "the baseline is unchanged",
    ])
    assert not BaselineStore(pytester.path / ".caxton_meter/baselines").exists("base")


_FAILING = _MEASURED + """
    def test_fails(meter):
        with meter.time("before_the_failure"):
            pass
        assert False, "the code under test is broken"

    @pytest.mark.meter(thresholds=["p(99) < 1ns"])
    def test_too_slow(meter):
        with meter.time("slow"):
            pass
"""


def test_a_failed_test_saves_nothing_unless_asked(pytester):
    pytester.makepyfile(test_measured=_FAILING)
    result = pytester.runpytest("--meter-save-baseline", "base")
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "caxton_meter: not saved as baseline 'base': 2 tests failed (test_measured.py::"
        "test_fails, test_measured.py::test_too_slow); --meter-save-on-failure saves the "
        "measurements of the tests that passed; the baseline is unchanged",
    ])
    assert not BaselineStore(pytester.path / ".caxton_meter/baselines").exists("base")
    # Asked to: the measurements of the tests that passed are saved.
    result = pytester.runpytest("--meter-save-baseline", "base", "--meter-save-on-failure")
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED      # the tests still failed
    result.stdout.fnmatch_lines([
        "caxton_meter: 2 measurements of the failed tests left out of baseline 'base'",
        "caxton_meter: saved baseline 'base' (1 saved run): *",
    ])
    assert _baseline(pytester, "base").names == ("test_measured.py::test_blocks::blk",
                                                 "test_measured.py::test_calls::work")


def test_an_empty_session_saves_nothing(pytester):
    pytester.makepyfile("""
        def test_plain():
            pass

        def test_measures_nothing(meter):
            pass
    """)
    result = pytester.runpytest("--meter-save-baseline", "base")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "caxton_meter: not saved as baseline 'base': nothing was measured; the baseline is "
        "unchanged",
    ])
    assert not BaselineStore(pytester.path / ".caxton_meter/baselines").exists("base")


def test_a_subset_session_updates_only_what_it_measured(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    _save_runs(pytester, "base", 1)
    result = pytester.runpytest("-k", "blocks", "--meter-save-baseline", "base")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == 0
    full, subset = _history(pytester, "base")
    assert full.names == ("test_measured.py::test_blocks::blk",
                          "test_measured.py::test_calls::work")
    assert subset.names == ("test_measured.py::test_blocks::blk",)
    # every test of a full session still has its counterpart
    result = pytester.runpytest("--meter-baseline", "base")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "compared with baseline 'base': * 0 without a baseline counterpart",
        "  0 comparisons against 2 saved runs, *",
    ])


def test_reports_are_written(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    result = pytester.runpytest("--meter-save-baseline", "base")
    # in a subprocess: the HTML report loads matplotlib
    result = pytester.runpytest_subprocess("--meter-baseline", "base", "--meter-report",
                                           "md,json", "--meter-report", "html",
                                           "--meter-output", "out")
    result.stdout.fnmatch_lines(["caxton_meter: wrote the result: *result.json",
                                 "caxton_meter: wrote * report file(s) to *out: report.md*"])
    out = pytester.path / "out"
    for name in ("report.md", "report.html", "report.json", "result.json"):
        assert (out / name).is_file(), name
    assert "test_measured.py::test_calls::work" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["kind"] == "caxton_meter.comparison"
    assert read_result(out / "result.json").names == _baseline(pytester, "base").names


def test_reports_go_to_the_default_folder_and_bad_formats_are_refused(pytester):
    pytester.makepyfile(test_measured=_MEASURED)
    pytester.runpytest("--meter-report", "md")
    assert (pytester.path / ".caxton_meter" / "reports" / "report.md").is_file()
    result = pytester.runpytest("--meter-report", "md,pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--meter-report: unknown format(s) 'pdf'; choose from md, "
                                 "html, json"])


def test_disable_runs_the_code_once_and_checks_nothing(pytester):
    pytester.makepyfile("""
        import pytest

        calls = []

        @pytest.mark.meter(thresholds=["p(99) < 1ns"])
        def test_disabled(meter):
            assert meter.disabled
            assert meter(calls.append, "call") is None
            with meter.time("blk"):
                calls.append("block")
            meter.load(lambda: calls.append("load"), rate=1000, duration=5)
            with meter.resources():
                calls.append("resources")
            assert calls == ["call", "block", "load", "resources"]
            assert meter.check("p(99) < 1ns") == ()
            assert meter.measurement().count == 0 and meter.grade() == {}
    """)
    result = pytester.runpytest("--meter-disable", "--meter-save-baseline", "x")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["caxton_meter: measurement disabled (--meter-disable)*"])
    assert not (pytester.path / ".caxton_meter").exists()


# -- pytest-xdist -----------------------------------------------------------------------------

_SHARED = """
    import os
    import pytest

    @pytest.mark.parametrize("i", range(3))
    def test_record(meter_session, meter, i):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
        with open(f"worker-{worker}-{__name__}-{i}", "w"):
            pass
        for _ in range(25):
            with meter_session.time("shared"):
                pass
            with meter.time("own"):
                pass
"""


def test_workers_measurements_are_merged(pytester):
    pytester.makepyfile(test_one=_SHARED, test_two=_SHARED)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                           "--meter-save-baseline", "merged")
    result.assert_outcomes(passed=6)
    assert result.ret == 0
    workers = {p.name.split("-")[1] for p in pytester.path.glob("worker-*")}
    assert workers == {"gw0", "gw1"}               # the values came from two processes
    run = _baseline(pytester, "merged")
    assert run.scenario("session::shared").histogram("latency").total_count == 2 * 3 * 25
    own = [t for t in run.scenarios if t.scenario.endswith("::own")]
    assert len(own) == 6
    assert all(t.histogram("latency").total_count == 25 for t in own)
    assert run.metadata["pytest"]["xdist_workers"] == 2
    result.stdout.fnmatch_lines(["session / shared*time*150*"])


_ONE_TEST = """
    def test_timed(meter):
        for _ in range(20):
            with meter.time("blk"):
                pass
"""


def test_a_baseline_of_another_worker_count_is_not_compared(pytester):
    pytester.makepyfile(test_one=_ONE_TEST)
    saved = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                          "--meter-save-baseline", "par")
    assert saved.ret == 0, saved.stdout.str()
    assert _baseline(pytester, "par").metadata["pytest"]["xdist_workers"] == 2
    # without xdist: the tests ran alone, the baseline's shared the CPU
    result = pytester.runpytest("--meter-baseline", "par")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "caxton_meter: not compared with baseline 'par': its newest run was measured with 2 "
        "xdist workers and this session without xdist, and tests that share the CPU with "
        "other workers run slower; run with -n 2 to compare",
    ])
    result.stdout.no_fnmatch_line("compared with baseline*")


def test_more_workers_than_cores_are_not_compared(pytester):
    pytester.makepyfile(test_one=_ONE_TEST)
    saved = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                          "--meter-save-baseline", "par")
    assert saved.ret == 0, saved.stdout.str()
    # The same two workers on a machine that reports one core (two real
    # workers on every machine, not more than it has).
    pytester.makeconftest("""
        import os

        os.cpu_count = lambda: 1
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                           "--meter-baseline", "par")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "caxton_meter: not compared with baseline 'par': this session ran 2 xdist workers "
        "on 1 core, so they competed for the CPU and the timings measure that contention; "
        "run with at most -n 1",
    ])
    result.stdout.no_fnmatch_line("compared with baseline*")


def test_the_plugin_is_quiet_when_nothing_is_measured(pytester):
    pytester.makepyfile("""
        def test_plain():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*- caxton_meter -*")
    result.stdout.no_fnmatch_line("caxton_meter:*")


_SPELL = """
    import os
    import time
    from pathlib import Path

    FLAG = Path(os.environ["METER_SPELL_FLAG"])

    def work():
        time.sleep(0.002 if not os.environ.get("METER_SPELL") or FLAG.exists() else 0.02)

    def test_calls(meter):
        meter.call(work, rounds=5, min_time="1ms")
        FLAG.touch()           # a slow spell: only the first session of the run is slow
"""


def test_a_change_a_rerun_does_not_repeat_is_transient_and_the_session_passes(pytester,
                                                                              monkeypatch):
    pytester.makepyfile(test_spell=_SPELL)
    monkeypatch.setenv("METER_SPELL_FLAG", str(pytester.path / "flag"))
    _save_runs(pytester, "base", 4)
    (pytester.path / "flag").unlink()
    monkeypatch.setenv("METER_SPELL", "1")
    result = pytester.runpytest("--meter-baseline", "base")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*transient test_spell.py::test_calls::work: time_per_call * -> * ms * not repeated on "
        "a re-run of the same code: not failed",
        "*re-ran 1 test to confirm their changes"])
    # without the re-run the spell fails the session
    (pytester.path / "flag").unlink()
    result = pytester.runpytest("--meter-baseline", "base", "--meter-no-confirm")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*REGRESSED test_spell.py::test_calls::work: time_per_call*"])
