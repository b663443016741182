"""caxton_meter: performance measurement for message-routing and multi-agent
systems, with a compiled core."""
from ._core import (
    ClockInfo,
    Histogram,
    HistogramDecodeError,
    Recorder,
    Timer,
    clock_info,
    now_ns,
    wall_time,
)

__version__ = "0.1.0"

__all__ = [
    "ClockInfo",
    "Histogram",
    "HistogramDecodeError",
    "Recorder",
    "Timer",
    "clock_info",
    "now_ns",
    "wall_time",
    "__version__",
]
