"""python -m caxton_meter.run, run as a user runs it."""
import subprocess
import sys

import pytest


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


def test_the_self_check_runs_without_the_hdrhistogram_package_and_says_how_to_compare():
    # hdrhistogram is a test extra, not a dependency: hide it as a user without it has none
    code = ("import sys, runpy\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'hdrh' or name.startswith('hdrh.'):\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "sys.argv = ['caxton_meter.run', '--self-check', '--quick']\n"
            "runpy.run_module('caxton_meter.run', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "[ok] codec vector" in result.stdout
    assert "Histogram.record() from Python" in result.stdout
    assert "hdrhistogram record_value" not in result.stdout
    assert "note: the hdrhistogram package is not installed" in result.stdout
    assert "pip install hdrhistogram" in result.stdout


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+")
def test_hdrhistogram_is_a_test_dependency_not_a_runtime_one():
    import pathlib
    import tomllib
    from importlib import metadata
    requires = metadata.requires("caxton_meter") or []
    runtime = [r for r in requires if "extra ==" not in r]
    assert not any(r.startswith("hdrhistogram") for r in runtime), runtime
    root = pathlib.Path(__file__).resolve().parent.parent
    groups = tomllib.loads((root / "pyproject.toml").read_text())["dependency-groups"]
    assert any(r.startswith("hdrhistogram") for r in groups["test"])
