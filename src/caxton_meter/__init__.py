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
    closed_loop,
    LoadInterval,
    LoadResult,
    now_ns,
    open_loop,
    open_loop_call,
    OpenLoopResult,
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
    "SCENARIOS": "._scenarios",
    "DEFAULT_THRESHOLDS": "._scenarios",
    "Grade": "._scenarios",
    "Threshold": "._scenarios",
    "Metric": "._scenarios",
    "Interval": "._scenarios",
    "ScenarioResult": "._scenarios",
    "grade": "._scenarios",
    "run_scenario": "._scenarios",
    "scenario_config": "._scenarios",
    "MessageThroughputConfig": "._scenarios",
    "TaskProcessingConfig": "._scenarios",
    "LatencyConfig": "._scenarios",
    "AgentResponseTimeConfig": "._scenarios",
    "CrashRecoveryConfig": "._scenarios",
    "HorizontalScalingConfig": "._scenarios",
    "LoadTestConfig": "._scenarios",
    "BurstTrafficConfig": "._scenarios",
    "WasmOverheadConfig": "._scenarios",
    "MemoryProfileConfig": "._scenarios",
    "CpuProfileConfig": "._scenarios",
    "WasmMemoryLimitsConfig": "._scenarios",
    "SustainedLoadConfig": "._scenarios",
    "PeakLoadConfig": "._scenarios",
    "AsyncLoadResult": "._aioload",
    "open_loop_async": "._aioload",
    "MultiLoadResult": "._multiload",
    "WorkerError": "._multiload",
    "run_processes": "._multiload",
    "AsyncTarget": "._targets",
    "Target": "._targets",
    "drive": "._targets",
    "drive_async": "._targets",
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
    from ._scenarios import (
        AgentResponseTimeConfig,
        BurstTrafficConfig,
        CpuProfileConfig,
        CrashRecoveryConfig,
        DEFAULT_THRESHOLDS,
        Grade,
        HorizontalScalingConfig,
        Interval,
        LatencyConfig,
        LoadTestConfig,
        MemoryProfileConfig,
        MessageThroughputConfig,
        Metric,
        PeakLoadConfig,
        SCENARIOS,
        ScenarioResult,
        SustainedLoadConfig,
        TaskProcessingConfig,
        Threshold,
        WasmMemoryLimitsConfig,
        WasmOverheadConfig,
        grade,
        run_scenario,
        scenario_config,
    )
    from ._aioload import AsyncLoadResult, open_loop_async
    from ._multiload import MultiLoadResult, WorkerError, run_processes
    from ._targets import AsyncTarget, Target, drive, drive_async

__all__ = [
    "AgentInfo",
    "AgentResponseTimeConfig",
    "AsyncLoadResult",
    "AsyncTarget",
    "BackpressureError",
    "BurstTrafficConfig",
    "Checkpoint",
    "clock_info",
    "ClockInfo",
    "closed_loop",
    "cpu_per_agent",
    "CpuProfileConfig",
    "CrashRecoveryConfig",
    "DeadLetter",
    "DEFAULT_THRESHOLDS",
    "drive",
    "drive_async",
    "grade",
    "Grade",
    "Histogram",
    "HistogramDecodeError",
    "HistogramLogError",
    "HistogramLogReader",
    "HistogramLogWriter",
    "HorizontalScalingConfig",
    "Interval",
    "LatencyConfig",
    "LoadInterval",
    "LoadResult",
    "LoadTestConfig",
    "memory_per_agent",
    "MemoryProfileConfig",
    "Message",
    "MessageThroughputConfig",
    "Metric",
    "MultiLoadResult",
    "now_ns",
    "open_loop",
    "open_loop_async",
    "open_loop_call",
    "OpenLoopResult",
    "PeakLoadConfig",
    "PERFORMATIVES",
    "read_log",
    "Recorder",
    "ResourceProfile",
    "ResourceSample",
    "ResourceSampler",
    "Router",
    "RouterCounts",
    "RoutingError",
    "run_processes",
    "run_scenario",
    "scenario_config",
    "ScenarioResult",
    "SCENARIOS",
    "SustainedLoadConfig",
    "Target",
    "TaskProcessingConfig",
    "Threshold",
    "Timer",
    "wall_time",
    "WasmInstance",
    "WasmMemoryLimitsConfig",
    "WasmModule",
    "WasmOverheadConfig",
    "WasmTrap",
    "WorkerError",
    "__version__",
]
del TYPE_CHECKING
