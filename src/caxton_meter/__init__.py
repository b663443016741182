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
    CaxtonMeterError,
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
    NetworkResult,
    now_ns,
    open_loop,
    open_loop_call,
    OpenLoopResult,
    wall_time,
)

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
    "Scenario": "._scenarios",
    "ScenarioConfig": "._scenarios",
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
    "DEFAULT_THRESHOLDS": "._model",
    "Direction": "._model",
    "Grade": "._model",
    "Interval": "._model",
    "Kind": "._model",
    "Metric": "._model",
    "MetricSpec": "._model",
    "ScenarioResult": "._model",
    "Threshold": "._model",
    "grade": "._model",
    "ArgumentError": "._checks",
    "ArgumentTypeError": "._checks",
    "UnitError": "._units",
    "open_loop_async": "._aioload",
    "WorkerError": "._multiload",
    "run_processes": "._multiload",
    "AsyncTarget": "._targets",
    "Target": "._targets",
    "drive": "._targets",
    "drive_async": "._targets",
    "HttpTarget": "._network",
    "TcpTarget": "._network",
    "load_network": "._network",
    "RunResult": "._results",
    "Trials": "._results",
    "BaselineStore": "._baselines",
    "ResultFormatError": "._results",
    "BaselineNotFoundError": "._baselines",
    "BaselineRefusedError": "._baselines",
    "BaselineHistory": "._baselines",
    "read_result": "._results",
    "run_suite": "._results",
    "collect_metadata": "._results",
    "Comparison": "._compare",
    "Detectable": "._compare",
    "detectable_changes": "._compare",
    "ChangePoint": "._history",
    "MetricHistory": "._history",
    "change_points": "._history",
    "metric_histories": "._history",
    "MissingCounterpartError": "._compare",
    "MetricComparison": "._compare",
    "compare": "._compare",
    "Change": "._regression",
    "Verdict": "._regression",
    "markdown_report": "._reports",
    "html_report": "._reports",
    "json_report": "._reports",
    "write_reports": "._reports",
    "terminal_summary": "._reports",
    "Meter": "._meter",
    "Measurement": "._expressions",
    "ThresholdExpression": "._expressions",
    "ThresholdExpressionError": "._expressions",
    "MissingMeasurementError": "._expressions",
    "parse_threshold": "._expressions",
    "MetricSet": "._expressions",
    "scenario_metrics": "._expressions",
    "format_quantity": "._units",
    "parse_quantity": "._units",
    "Monitor": "._monitor",
    "Snapshot": "._monitor",
    "Alert": "._monitor",
    "AlertRule": "._monitor",
    "CallbackError": "._monitor",
}


def __getattr__(name: str) -> object:
    if name == "__version__":           # one source: the installed package's metadata
        from importlib.metadata import version

        globals()[name] = value = version("caxton_meter")
        return value
    module = _LAZY.get(name)
    if module is None:
        if name.endswith("Config"):     # a registered scenario's config (a new one too)
            from ._scenarios import SCENARIOS

            for found in SCENARIOS.values():
                if found.config.__name__ == name:
                    globals()[name] = found.config
                    return found.config
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
    from ._checks import ArgumentError, ArgumentTypeError
    from ._units import UnitError, format_quantity, parse_quantity
    from ._model import (
        DEFAULT_THRESHOLDS,
        Direction,
        Grade,
        Interval,
        Kind,
        Metric,
        MetricSpec,
        ScenarioResult,
        Threshold,
        grade,
    )
    from ._scenarios import (
        SCENARIOS,
        AgentResponseTimeConfig,
        BurstTrafficConfig,
        CpuProfileConfig,
        CrashRecoveryConfig,
        HorizontalScalingConfig,
        LatencyConfig,
        LoadTestConfig,
        MemoryProfileConfig,
        MessageThroughputConfig,
        PeakLoadConfig,
        Scenario,
        ScenarioConfig,
        SustainedLoadConfig,
        TaskProcessingConfig,
        WasmMemoryLimitsConfig,
        WasmOverheadConfig,
        run_scenario,
        scenario_config,
    )
    from ._aioload import open_loop_async
    from ._multiload import WorkerError, run_processes
    from ._targets import AsyncTarget, Target, drive, drive_async
    from ._network import HttpTarget, TcpTarget, load_network
    from ._results import (
        ResultFormatError,
        RunResult,
        Trials,
        collect_metadata,
        read_result,
        run_suite,
    )
    from ._baselines import (
        BaselineHistory,
        BaselineNotFoundError,
        BaselineRefusedError,
        BaselineStore,
    )
    from ._compare import (
        Comparison,
        Detectable,
        MetricComparison,
        MissingCounterpartError,
        compare,
        detectable_changes,
    )
    from ._history import ChangePoint, MetricHistory, change_points, metric_histories
    from ._regression import Change, Verdict
    from ._meter import Meter
    from ._expressions import (
        Measurement,
        MetricSet,
        MissingMeasurementError,
        ThresholdExpression,
        ThresholdExpressionError,
        parse_threshold,
        scenario_metrics,
    )
    from ._monitor import Alert, AlertRule, CallbackError, Monitor, Snapshot
    from ._reports import html_report, json_report, markdown_report, terminal_summary, write_reports

__all__ = [
    "metric_histories",
    "change_points",
    "MetricHistory",
    "ChangePoint",
    "detectable_changes",
    "Detectable",
    "BaselineHistory",
    "BaselineRefusedError",
    "parse_quantity",
    "format_quantity",
    "scenario_metrics",
    "MetricSet",
    "UnitError",
    "ScenarioConfig",
    "Scenario",
    "MissingMeasurementError",
    "MissingCounterpartError",
    "MetricSpec",
    "Kind",
    "Direction",
    "CaxtonMeterError",
    "BaselineNotFoundError",
    "ArgumentTypeError",
    "ArgumentError",
    "AgentInfo",
    "AgentResponseTimeConfig",
    "Alert",
    "AlertRule",
    "AsyncTarget",
    "BackpressureError",
    "BaselineStore",
    "BurstTrafficConfig",
    "CallbackError",
    "Change",
    "Checkpoint",
    "clock_info",
    "ClockInfo",
    "closed_loop",
    "collect_metadata",
    "compare",
    "Comparison",
    "cpu_per_agent",
    "CpuProfileConfig",
    "CrashRecoveryConfig",
    "DeadLetter",
    "DEFAULT_THRESHOLDS",
    "drive",
    "drive_async",
    "Grade",
    "grade",
    "Histogram",
    "HistogramDecodeError",
    "HistogramLogError",
    "HistogramLogReader",
    "HistogramLogWriter",
    "HorizontalScalingConfig",
    "HttpTarget",
    "html_report",
    "Interval",
    "json_report",
    "LatencyConfig",
    "LoadInterval",
    "LoadResult",
    "LoadTestConfig",
    "load_network",
    "markdown_report",
    "Measurement",
    "memory_per_agent",
    "MemoryProfileConfig",
    "Message",
    "MessageThroughputConfig",
    "Meter",
    "Metric",
    "MetricComparison",
    "NetworkResult",
    "Monitor",
    "now_ns",
    "open_loop",
    "open_loop_async",
    "open_loop_call",
    "OpenLoopResult",
    "parse_threshold",
    "PeakLoadConfig",
    "PERFORMATIVES",
    "read_log",
    "read_result",
    "Recorder",
    "ResourceProfile",
    "ResourceSample",
    "ResourceSampler",
    "ResultFormatError",
    "Router",
    "RouterCounts",
    "RoutingError",
    "run_processes",
    "run_scenario",
    "run_suite",
    "RunResult",
    "scenario_config",
    "ScenarioResult",
    "SCENARIOS",
    "Snapshot",
    "SustainedLoadConfig",
    "Target",
    "TaskProcessingConfig",
    "TcpTarget",
    "terminal_summary",
    "Threshold",
    "ThresholdExpression",
    "ThresholdExpressionError",
    "Timer",
    "Trials",
    "Verdict",
    "wall_time",
    "WasmInstance",
    "WasmMemoryLimitsConfig",
    "WasmModule",
    "WasmOverheadConfig",
    "WasmTrap",
    "WorkerError",
    "write_reports",
    "__version__",
]
del TYPE_CHECKING
