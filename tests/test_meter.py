"""The Meter, the object a test measures with: it works without pytest,
reads its arguments through caxton_meter's one set of checks, and declares
every metric it produces, so that a comparison with a baseline knows which
way each one is better."""
import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import caxton_meter
from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._core import CaxtonMeterError
from caxton_meter._meter import METRICS, Meter, _build_run, _Series
from caxton_meter._model import Direction, Grade, Kind

PACKAGE = pathlib.Path(caxton_meter.__file__).resolve().parent
BLOCKED = ("pytest", "_pytest", "pluggy")

# Uses a Meter for real and prints what it saw as JSON: timed blocks, a
# calibrated call, a short open loop, thresholds that pass and one that
# fails, grades.
USE = """
import json, sys
import caxton_meter

meter = caxton_meter.Meter("standalone")
for _ in range(50):
    with meter.time("block"):
        sum(range(100))
assert meter(sorted, [3, 1, 2]) == [1, 2, 3]
r = meter.load(lambda: None, rate="200/s", duration="100ms")
meter.check("p99 < 1s", "count == 50", name="block")
meter.check("p99 < 1s", "error_rate < 1%", name="load")
try:
    meter.check("p99 < 1ns", name="block")
except AssertionError as e:
    failure = str(e)
print(json.dumps({
    "file": caxton_meter.__file__, "names": meter.names, "planned": r.planned,
    "completed": r.completed, "failure": failure, "grades": sorted(meter.grade("block")),
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
"""


def _check_use(out: str) -> None:
    seen = json.loads(out)
    assert pathlib.Path(seen["file"]).resolve().parent == PACKAGE
    assert seen["names"] == ["block", "sorted", "load"]
    assert seen["planned"] == seen["completed"] == 20
    assert seen["failure"].startswith("threshold 'p99 < 1ns' failed for block: p(99) = ")
    assert seen["grades"] == ["latency_p50", "latency_p99", "throughput"]
    assert seen["loaded"] == []


# -- without pytest ---------------------------------------------------------------------------

def test_the_meter_works_when_pytest_cannot_be_imported():
    # A finder at the head of sys.meta_path refuses pytest, _pytest and
    # pluggy, and notes every attempt: caxton_meter must not even try.
    code = textwrap.dedent("""
        import importlib.abc, sys
        BLOCKED = {blocked!r}
        attempts = []

        class NoPytest(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    attempts.append(name)
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
                return None

        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        sys.meta_path.insert(0, NoPytest())
        sys.path.insert(0, {parent!r})
    """).format(blocked=BLOCKED, parent=str(PACKAGE.parent)) + USE + textwrap.dedent("""
        assert attempts == [], attempts
    """)
    # -I: no PYTHONPATH, no user site, not the working directory; the
    # package's own folder is put first instead
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    _check_use(done.stdout)


def _pytest_free(name: str) -> bool:
    top = name.split("-")[0].split(".")[0].lower()
    return not (top in ("py", "pluggy", "xdist", "caxton_meter") or "pytest" in top
                or name.startswith("__editable__") or name.endswith(".pth"))


@pytest.mark.skipif(sys.platform == "win32", reason="links the packages with symlinks")
def test_the_meter_works_in_a_virtual_environment_without_pytest(tmp_path):
    # A virtual environment holding this one's packages except pytest,
    # pluggy and pytest's plugins (linked into its site-packages), and
    # caxton_meter as imported here: pytest is absent, not hidden.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = pathlib.Path(subprocess.run(
        [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "caxton_meter").symlink_to(PACKAGE, target_is_directory=True)
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for folder in [p for p in sys.path if p in here or p.endswith(("site-packages",
                                                                   "dist-packages"))]:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if _pytest_free(entry) and not (site / entry).exists() and entry != "__pycache__":
                (site / entry).symlink_to(os.path.join(folder, entry))
    code = textwrap.dedent("""
        import importlib.util
        BLOCKED = {blocked!r}
        assert all(importlib.util.find_spec(n) is None for n in BLOCKED)
    """).format(blocked=BLOCKED) + USE
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _check_use(done.stdout)


# -- what a Meter produces ------------------------------------------------------------------

def _failing_every(n):
    calls = [0]

    def request():
        calls[0] += 1
        if calls[0] % n == 0:
            raise ConnectionError(f"every {n}th request fails")

    return request


def _measured(failing_every=10):
    meter = Meter("test_x.py::test_x")
    for _ in range(20):
        with meter.time("blocks"):
            pass
    meter.call(sum, ([1, 2],), name="calls", rounds=3, min_time="1ms")
    meter.load(_failing_every(failing_every), rate=400, duration=0.05, name="load")
    with meter.resources("memory"):
        bytearray(1000)
    meter.grade("blocks")
    return meter


def test_every_metric_a_meter_produces_is_declared_with_its_direction():
    run = _build_run(_measured()._series.values(), {})
    assert run.names == tuple(f"test_x.py::test_x::{n}"
                              for n in ("blocks", "calls", "load", "memory"))
    produced = set()
    for trials in run.scenarios:
        for result in trials.results:
            for m in result.metrics:
                spec = METRICS[m.name]
                assert (m.unit, m.kind, m.direction) == (spec.unit, spec.kind, spec.direction)
                assert isinstance(m.direction, Direction), m.name
                assert (m.histogram, m.percentile) == (spec.histogram, spec.percentile)
                produced.add(m.name)
    # capacity searches' metrics: tests/test_capacity.py
    assert produced == set(METRICS) - {"capacity", "knee", "capacity_steps"}
    blocks = run.scenario("test_x.py::test_x::blocks")
    assert blocks.grade("latency_p50") is Grade.TARGET


def test_throughput_is_calls_per_second_and_more_is_better():
    spec = METRICS["throughput"]
    assert (spec.unit, spec.kind, spec.direction) == ("calls/s", Kind.THROUGHPUT,
                                                      Direction.HIGHER)
    assert all(s.unit != "msg/s" for s in METRICS.values())


def test_counts_are_not_compared_and_the_error_rate_is_lower_is_better():
    for name in ("count", "calls", "requests", "completed", "failed", "dropped"):
        assert (METRICS[name].kind, METRICS[name].compared) == (Kind.COUNT, False), name
    assert (METRICS["error_rate"].kind, METRICS["error_rate"].direction) == (Kind.RATIO,
                                                                             Direction.LOWER)
    for p in (50, 90, 99):
        spec = METRICS[f"latency_p{p}"]
        assert (spec.histogram, spec.percentile, spec.direction) == ("latency", p,
                                                                     Direction.LOWER)


def test_a_higher_error_rate_is_a_regression():
    from caxton_meter._compare import compare

    from caxton_meter._baselines import BaselineHistory
    metadata = {"profile": "pytest"}
    saved = [_build_run(_measured(failing_every=10)._series.values(), metadata)
             for _ in range(3)]                   # the gate needs 3 saved runs
    current = _build_run(_measured(failing_every=2)._series.values(), metadata)
    load = "test_x.py::test_x::load"
    assert saved[0].scenario(load).values("error_rate") == (0.1,)
    assert current.scenario(load).values("error_rate") == (0.5,)
    comparison = compare(BaselineHistory("base", tuple(saved)), current)
    compared = {m.metric: m for m in comparison.for_scenario(load)}
    assert "error_rate" in compared
    assert compared["error_rate"].is_regression
    assert not {"requests", "completed", "failed", "dropped"} & set(compared)


# -- arguments --------------------------------------------------------------------------------

def test_quantities_are_read_with_their_units():
    meter = Meter("t")
    r = meter.load(lambda: None, rate="2K/s", duration="25ms", resources=False)
    assert r.planned == 50
    meter.load(lambda: None, stages=[("1K/s", "20ms"), (0, "10ms")], name="ramp",
               start_rate="500/s", max_lateness="1s", interval="5ms", resources=False)
    assert meter._series["ramp"].config["stages"] == [[1000.0, 0.02], [0.0, 0.01]]
    meter.call(len, ("abc",), min_time="500us", rounds=2)
    with meter.resources("sampled", interval="10ms"):
        pass
    assert meter.names == ("load", "ramp", "len", "sampled")


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.load(print, rate=100, duration=True), ArgumentTypeError,
     "meter.load: duration must be a number or a string with a unit"),
    (lambda m: m.load(print, rate=True, duration=1), ArgumentTypeError,
     "meter.load: rate must be a number or a string with a unit"),
    (lambda m: m.load(print, rate=0, duration=1), ArgumentError,
     r"meter.load: rate must be a finite number > 0, got 0"),
    (lambda m: m.load(print, rate=10, duration="5 parsecs"), ArgumentError,
     "meter.load: duration: .*unknown unit 'parsecs'"),
    (lambda m: m.load(print, stages=[(10,)]), ArgumentError,
     r"stage 0 must be \(rate per second, duration in seconds\)"),
    (lambda m: m.load(print, stages=[]), ArgumentError, "stages is empty"),
    (lambda m: m.load(print, rate=10, duration=1, concurrency=0), ArgumentError,
     "concurrency must be >= 1"),
    (lambda m: m.load(print, rate=10, duration=1, resources=1), ArgumentTypeError,
     "resources must be a bool"),
    (lambda m: m.load(print, rate=10, duration=1, payload="x"), ArgumentTypeError,
     "payload must be bytes"),
    (lambda m: m.load(42, rate=10, duration=1), ArgumentTypeError,
     "the target must be a callable"),
    (lambda m: m.call(len, ("a",), rounds=True), ArgumentTypeError,
     "rounds must be an int, not bool"),
    (lambda m: m.call(len, ("a",), min_time=0), ArgumentError,
     "min_time must be a finite number > 0, got 0"),
    (lambda m: m.time(" padded"), ArgumentError, "without surrounding spaces"),
    (lambda m: m.time(3), ArgumentTypeError, "a measurement name must be a str, not int"),
    (lambda m: m.measurement("nothing"), ArgumentError, "no measurement 'nothing'"),
    (lambda m: Meter("t", disabled=1), ArgumentTypeError, "disabled must be a bool"),
])
def test_a_wrong_argument_is_refused_with_what_would_be_right(call, error, message):
    with pytest.raises(error, match=message) as info:
        call(Meter("t"))
    assert isinstance(info.value, CaxtonMeterError)


def test_a_name_holds_one_kind_of_measurement():
    meter = Meter("t")
    with meter.time("x"):
        pass
    with pytest.raises(ArgumentError, match="'x' already holds time results; record "
                                            "calibrated calls under another name"):
        meter.call(len, ("a",), name="x")
    with meter.resources("x"):           # a resource profile may join any kind
        pass


# -- the series between processes ------------------------------------------------------------

def test_a_series_survives_the_xdist_payload_and_merges_grades():
    meter = _measured()
    for s in meter._series.values():
        again = _Series.from_payload(json.loads(json.dumps(s.to_payload())))
        assert again.to_payload() == s.to_payload()
    blocks = meter._series["blocks"]
    other = _Series.from_payload(blocks.to_payload())
    other.grades["latency_p99"] = "critical"
    blocks.merge(other)
    assert blocks.grades["latency_p99"] == "critical"
    assert blocks.count == 40
