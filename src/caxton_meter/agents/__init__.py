"""The bundled WebAssembly agents (text format), for ``WasmModule``:
echo, compute, alloc, trap and loop.  Each file's header says what it does;
echo.wat describes the agent ABI."""
from pathlib import Path

_HERE = Path(__file__).resolve().parent
NAMES = ("echo", "compute", "alloc", "trap", "loop")


def path(name: str) -> Path:
    """The path of the bundled agent ``name`` (e.g. ``"echo"``)."""
    if name not in NAMES:
        raise ValueError(f"no bundled agent {name!r}; the agents are " + ", ".join(NAMES))
    return _HERE / f"{name}.wat"
