"""The hand-written stubs of the compiled core agree with its use: mypy
--strict accepts correct code and rejects wrong code."""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mypy")

GOOD = """
import asyncio
import numpy as np
import caxton_meter as cm

h: cm.Histogram = cm.Histogram(1, 3_600_000_000, 3)
h.record(10)
h.record_corrected(25, 10, count=2)
overflowed: int = h.record_array(np.arange(10), atomic=True)
p99: int = h.value_at_percentile(99.0)
ps: list[int] = h.percentiles([50, 99.9])
mean: float = h.mean
for value, count in h:
    total: int = value * count
h2 = cm.Histogram.decode(h.encode())
h2.add(h)
h2.tag = "x"
info: cm.ClockInfo = cm.clock_info()
rec = cm.Recorder(1, 10**9, 3)
rec.record(5)
interval: cm.Histogram = rec.interval_histogram(recycle=h2)
with cm.Timer(rec) as t:
    pass
elapsed: int = t.elapsed_ns

@cm.Timer(h)
def f(x: int) -> str:
    return str(x)

@cm.Timer(h)
async def g(x: int) -> int:
    return x

s: str = f(3)
r: int = asyncio.run(g(1))
with cm.HistogramLogWriter("/dev/null") as w:
    w.output_interval_histogram(h, start_time=0.0, end_time=1.0)
now: int = cm.now_ns()

router = cm.Router(workers=0, on_full="raise")
echo: int = router.spawn_native("echo")
py: int = router.spawn_python(lambda m: m.content.upper())
reply = router.request(echo, b"x")
if reply is not None:
    data: bytes = reply.content
    view = memoryview(reply)
counts: cm.RouterCounts = router.counts
p99_rt: int = router.round_trip.value_at_percentile(99)

found: cm.CapacityResult = cm.find_capacity(lambda: None, slo="p99 < 10ms", max_steps=3)
capacity: float | None = found.capacity
first: cm.CapacityStep = found.steps[0]
net: cm.NetworkResult = cm.load_network(cm.HttpTarget("http://127.0.0.1:8080/"), rate=10,
                                        duration=1)
"""

BAD = """
import caxton_meter as cm
h = cm.Histogram(1, 1000, 2)
h.record("x")
p: str = h.value_at_percentile(50)
@cm.Timer(h)
def f(x: int) -> str:
    return str(x)
f("no")
r = cm.Router(on_full="drop")
"""


def mypy(tmp_path, source):
    path = tmp_path / "sample.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--config-file", "", str(path)],
        capture_output=True, text=True, cwd=tmp_path)


def test_stubs_accept_correct_use(tmp_path):
    result = mypy(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_reject_wrong_use(tmp_path):
    result = mypy(tmp_path, BAD)
    assert result.returncode == 1
    assert 'Argument 1 to "record" of "Histogram" has incompatible type "str"' in result.stdout
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in result.stdout
    assert 'Argument 1 to "f" has incompatible type "str"' in result.stdout
    assert 'Argument "on_full" to "Router" has incompatible type' in result.stdout


def test_the_package_is_clean_under_mypy_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path),
         "--config-file", "", "-p", "caxton_meter"],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
