"""caxton_meter: performance measurement for message-routing and multi-agent
systems, with a compiled core.

The names below are the public API; everything else lives in private
modules.  Importing the package is cheap: numpy and the plotting and
statistics libraries load when first used.
"""
from ._core import (
    PERFORMATIVES,
    AgentInfo,
    BackpressureError,
    Checkpoint,
    ClockInfo,
    DeadLetter,
    Histogram,
    HistogramDecodeError,
    Message,
    Recorder,
    Router,
    RouterCounts,
    RoutingError,
    Timer,
    WasmInstance,
    WasmModule,
    WasmTrap,
    clock_info,
    now_ns,
    wall_time,
)

__version__ = "0.1.0"

# Loaded on first use (PEP 562), so that ``import caxton_meter`` stays cheap.
_LAZY = {
    "ResourceProfile": "._sampling",
    "ResourceSample": "._sampling",
    "ResourceSampler": "._sampling",
    "cpu_per_agent": "._sampling",
    "memory_per_agent": "._sampling",
    "HistogramLogError": "._hdrlog",
    "HistogramLogReader": "._hdrlog",
    "HistogramLogWriter": "._hdrlog",
    "read_log": "._hdrlog",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'caxton_meter' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


TYPE_CHECKING = False    # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:        # for type checkers and readers: the lazy names
    from ._hdrlog import HistogramLogError, HistogramLogReader, HistogramLogWriter, read_log
    from ._sampling import (
        ResourceProfile,
        ResourceSample,
        ResourceSampler,
        cpu_per_agent,
        memory_per_agent,
    )

__all__ = [
    "PERFORMATIVES",
    "AgentInfo",
    "BackpressureError",
    "Checkpoint",
    "ClockInfo",
    "DeadLetter",
    "Message",
    "Router",
    "RouterCounts",
    "RoutingError",
    "Histogram",
    "HistogramDecodeError",
    "HistogramLogError",
    "HistogramLogReader",
    "HistogramLogWriter",
    "Recorder",
    "Timer",
    "WasmInstance",
    "WasmModule",
    "WasmTrap",
    "__version__",
    "clock_info",
    "cpu_per_agent",
    "memory_per_agent",
    "now_ns",
    "read_log",
    "wall_time",
]
del TYPE_CHECKING
