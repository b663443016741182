"""README's examples run as written, and its set-up block holds the two
commands CI runs."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _is_test_file(source):
    first = source.splitlines()[0]
    return first.startswith("# test_") and first.endswith(".py")


@pytest.mark.parametrize("source", [b for b in blocks("python") if not _is_test_file(b)],
                         ids=lambda s: s.splitlines()[0][:40])
def test_python_examples_run(source, capsys):
    exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})


@pytest.mark.parametrize("source", [b for b in blocks("python") if _is_test_file(b)],
                         ids=lambda s: s.splitlines()[0][2:])
def test_pytest_examples_pass(source, tmp_path):
    """A block that starts with "# test_x.py" is a test file: pytest runs it."""
    import subprocess
    import sys
    name = source.splitlines()[0][2:]
    (tmp_path / name).write_text(source)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout and "failed" not in r.stdout
    assert "caxton_meter" in r.stdout                  # the plugin's summary table


def test_the_first_shell_block_holds_the_two_set_up_commands():
    first = [line for line in blocks("sh")[0].splitlines() if line.strip() and not line.startswith("#")]
    assert len(first) == 2
    assert "caxton_meter.run --quick" in first[0]
    assert "--upgrade-deps" in first[0]              # a pip that reads dependency groups
    assert "pip install --group test" in first[1] and "pytest" in first[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install --group test && python -m pytest" in ci
