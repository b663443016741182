"""python -m caxton_meter.run, run as a user runs it."""
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "caxton_meter.run", *args],
                          capture_output=True, text=True, timeout=300)


def test_quick_self_check_prints_the_floor_and_figures():
    result = run("--self-check", "--quick")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "clock clock_gettime" in out or "clock QueryPerformanceCounter" in out
    assert "[ok] codec vector" in out
    assert "[ok] threaded recording" in out
    assert "Histogram.record() from Python" in out
    assert "hdrhistogram record_value" in out
    assert "FAILED" not in out


def test_unknown_option_is_a_usage_error():
    result = run("--no-such-option")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_help():
    result = run("--help")
    assert result.returncode == 0
    assert "--quick" in result.stdout


def test_import_is_cheap():
    code = "import sys, caxton_meter; print(sorted(m for m in ('numpy', 'hdrh', 'psutil', 'wasmtime', 're') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
