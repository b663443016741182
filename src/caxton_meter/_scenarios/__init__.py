"""The scenarios of the benchmarking guide, as a registry.

A scenario is a config class (keyword-only, frozen, checked when built:
a bad value raises before anything runs; ``Config.quick()`` gives a
seconds-long variant for CI), a run function returning an immutable
:class:`~caxton_meter._model.ScenarioResult` graded against the guide's
targets, and the metrics it produces, each declared with its kind and
direction (:class:`~caxton_meter._model.MetricSpec`).  :data:`SCENARIOS`
maps a name to its :class:`Scenario`; a family module registers its
scenarios with the :func:`~caxton_meter._scenarios._base.scenario`
decorator, so adding one is a config and a decorated function in one
place.

The families: closed loops through the router (message throughput, task
processing, crash recovery, agent response time), open loops (latency,
load test, burst traffic, sustained load, peak load), what agents cost
(horizontal scaling, memory profile, CPU profile) and WebAssembly (WASM
overhead, WASM memory limits).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .._checks import ArgumentError, ArgumentTypeError, did_you_mean
from .._model import (
    DEFAULT_THRESHOLDS,
    Grade,
    Interval,
    Metric,
    ScenarioResult,
    Threshold,
    grade,
    resolve_thresholds,
)
from ._base import ON_INTERVAL, SCENARIOS, AgentsConfig, Scenario, ScenarioConfig
from .routing import (
    AgentResponseTimeConfig,
    CrashRecoveryConfig,
    MessageThroughputConfig,
    TaskProcessingConfig,
    run_agent_response_time,
    run_crash_recovery,
    run_message_throughput,
    run_task_processing,
)
from .load import (
    BurstTrafficConfig,
    LatencyConfig,
    LoadTestConfig,
    MemoryTrend,
    PeakLoadConfig,
    SustainedLoadConfig,
    rss_trend,
    run_burst_traffic,
    run_latency,
    run_load_test,
    run_peak_load,
    run_sustained_load,
)
from .resources import (
    CpuProfileConfig,
    HorizontalScalingConfig,
    MemoryProfileConfig,
    run_cpu_profile,
    run_horizontal_scaling,
    run_memory_profile,
)
from .wasm import (
    WasmMemoryLimitsConfig,
    WasmOverheadConfig,
    run_wasm_memory_limits,
    run_wasm_overhead,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SCENARIOS",
    "AgentResponseTimeConfig",
    "AgentsConfig",
    "BurstTrafficConfig",
    "CpuProfileConfig",
    "CrashRecoveryConfig",
    "Grade",
    "HorizontalScalingConfig",
    "Interval",
    "LatencyConfig",
    "LoadTestConfig",
    "MemoryProfileConfig",
    "MemoryTrend",
    "MessageThroughputConfig",
    "Metric",
    "PeakLoadConfig",
    "Scenario",
    "ScenarioConfig",
    "ScenarioResult",
    "SustainedLoadConfig",
    "TaskProcessingConfig",
    "Threshold",
    "WasmMemoryLimitsConfig",
    "WasmOverheadConfig",
    "grade",
    "resolve_thresholds",
    "rss_trend",
    "run_agent_response_time",
    "run_burst_traffic",
    "run_cpu_profile",
    "run_crash_recovery",
    "run_horizontal_scaling",
    "run_latency",
    "run_load_test",
    "run_memory_profile",
    "run_message_throughput",
    "run_peak_load",
    "run_scenario",
    "run_sustained_load",
    "run_task_processing",
    "run_wasm_memory_limits",
    "run_wasm_overhead",
    "scenario_config",
]


def _scenario_of(name: str) -> Scenario:
    if not isinstance(name, str) or name not in SCENARIOS:
        hint = did_you_mean(name, SCENARIOS) if isinstance(name, str) else ""
        raise ArgumentError(f"unknown scenario {name!r}{hint}; scenarios: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_config(scenario: str | ScenarioConfig, *, quick: bool = False,
                    **changes: Any) -> ScenarioConfig:
    """The config of ``scenario`` (a name of :data:`SCENARIOS` or a config)
    with ``changes`` applied: the guide's full values, or the quick profile
    when ``quick``.  An unknown name or field raises ArgumentError listing
    the valid ones (with a did-you-mean); a bad value raises as the config
    does, before anything runs."""
    if isinstance(scenario, ScenarioConfig):
        base = scenario
    elif isinstance(scenario, str):
        cls = _scenario_of(scenario).config
        base = cls.quick() if quick else cls()
    else:
        raise ArgumentTypeError(f"scenario must be a scenario name or config, "
                                f"not {type(scenario).__name__}")
    fields = base.field_names()
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise ArgumentError(f"{type(base).__name__} has no field {unknown[0]!r}"
                            f"{did_you_mean(unknown[0], fields)}; fields: "
                            f"{', '.join(sorted(fields))}")
    return dataclasses.replace(base, **changes) if changes else base


def run_scenario(scenario: str | ScenarioConfig, *, quick: bool = False,
                 thresholds: Mapping[str, Threshold] | None = None,
                 on_interval: Callable[[Any], object] | None = None,
                 **changes: Any) -> ScenarioResult:
    """Run ``scenario`` (a name of :data:`SCENARIOS` or a config), with
    ``changes`` to its config (:func:`scenario_config`), graded against the
    guide's targets overridden by ``thresholds``.  ``quick`` starts from the
    quick profile (every scenario in seconds).  ``on_interval`` is called
    with each LoadInterval of the scenario's open loops as it closes (live
    progress)."""
    config = scenario_config(scenario, quick=quick, **changes)
    limits = resolve_thresholds(thresholds)             # a bad name raises before the run
    if on_interval is not None and not callable(on_interval):
        raise ArgumentTypeError(f"on_interval must be callable, "
                                f"not {type(on_interval).__name__}")
    found = next((s for s in SCENARIOS.values() if type(config) is s.config), None)
    if found is None:
        raise ArgumentTypeError(f"{type(config).__name__} is not the config of a registered "
                                "scenario")
    token = ON_INTERVAL.set(on_interval)
    try:
        return found.run(config, thresholds=limits)
    finally:
        ON_INTERVAL.reset(token)
