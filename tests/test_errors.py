"""One root error: every exception caxton_meter raises on purpose descends
from CaxtonMeterError, keeps its builtin base, and is importable from the
package."""
import importlib
import inspect
import pkgutil

import pytest

import caxton_meter as cm


def _exception_classes():
    """Every exception class defined in caxton_meter's modules."""
    found = {}
    modules = [importlib.import_module(f"caxton_meter.{m.name}")
               for m in pkgutil.walk_packages(cm.__path__)
               if m.name not in ("run", "_plugin", "_session")]   # those load pytest hooks
    modules.append(importlib.import_module("caxton_meter._plugin"))
    for module in modules:
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) \
                    and obj.__module__ == module.__name__ and not name.startswith("_"):
                found[name] = obj
    return found


def test_every_error_descends_from_the_root_and_is_exported():
    errors = _exception_classes()
    assert {"ArgumentError", "UnitError", "ResultFormatError", "BaselineNotFoundError",
            "MissingCounterpartError", "ThresholdExpressionError", "MissingMeasurementError",
            "HistogramLogError", "WorkerError", "HistogramDecodeError", "WasmTrap",
            "RoutingError", "BackpressureError", "CaxtonMeterError"} <= set(errors)
    for name, cls in errors.items():
        assert issubclass(cls, cm.CaxtonMeterError), name
        assert getattr(cm, name) is cls, f"{name} is not exported from caxton_meter"
        assert name in cm.__all__, name


@pytest.mark.parametrize("error, builtin", [
    ("ArgumentError", ValueError), ("ArgumentTypeError", TypeError), ("UnitError", ValueError),
    ("ResultFormatError", ValueError), ("BaselineNotFoundError", LookupError),
    ("MissingCounterpartError", LookupError), ("ThresholdExpressionError", ValueError),
    ("MissingMeasurementError", LookupError), ("HistogramLogError", ValueError),
    ("WorkerError", RuntimeError), ("HistogramDecodeError", ValueError),
    ("WasmTrap", RuntimeError), ("RoutingError", ValueError),
    ("BackpressureError", RuntimeError), ("UnsupportedPlatformError", NotImplementedError)])
def test_each_error_keeps_its_builtin_base(error, builtin):
    assert issubclass(getattr(cm, error), builtin)


def test_a_bad_argument_anywhere_is_caught_by_the_root():
    with pytest.raises(cm.CaxtonMeterError, match="agent_kind must be one of"):
        cm.run_scenario("latency", agent_kind="jvm")
    with pytest.raises(cm.CaxtonMeterError, match="unknown scenario"):
        cm.scenario_config("latnecy")
    with pytest.raises(cm.CaxtonMeterError):
        cm.Histogram.decode("not a histogram")
    with pytest.raises(cm.CaxtonMeterError, match="unknown metric"):
        cm.parse_threshold("p99x < 1ms")
    with pytest.raises(cm.CaxtonMeterError, match="a finite number > 0"):
        cm.LatencyConfig(duration=0)


def test_the_version_comes_from_the_package_metadata():
    from importlib import metadata
    assert cm.__version__ == metadata.version("caxton_meter")
    source = inspect.getsource(cm)
    assert cm.__version__ not in source        # written once, in pyproject.toml
