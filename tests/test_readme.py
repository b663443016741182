"""README's examples run as written, and its set-up block holds the two
commands CI runs."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("source", blocks("python"), ids=lambda s: s.splitlines()[0][:40])
def test_python_examples_run(source, capsys):
    exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})


def test_the_first_shell_block_holds_the_two_set_up_commands():
    first = [line for line in blocks("sh")[0].splitlines() if line.strip() and not line.startswith("#")]
    assert len(first) == 2
    assert "caxton_meter.run --quick" in first[0]
    assert "'.[test]'" in first[1] and "pytest" in first[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install '.[test]' && python -m pytest" in ci
