"""caxton_meter's pytest plugin (registered through the ``pytest11`` entry
point, so it is active wherever caxton_meter is installed): its options,
the ``meter`` marker, and the ``meter`` and ``meter_session`` fixtures.

The fixture hands each test a :class:`~caxton_meter._meter.Meter` (which
imports no pytest: ``caxton_meter.Meter`` works without it)::

    def test_parse(meter):
        with meter.time("parse"):            # timed in compiled code (the core's Timer)
            parse(document)
        meter(parse, document)               # calibrated rounds, as pytest-benchmark
        meter.load(client, rate="2K/s", duration="2s")  # an open loop; async targets too
        meter.check("p(99) < 10ms", name="parse")

    @pytest.mark.meter(thresholds=["p(99) < 10ms", "error_rate < 1%"])
    def test_service(meter): ...

Thresholds are k6-like expressions (:mod:`caxton_meter._expressions`); a
malformed one in a marker fails the collection, with a caret under the
error.  The session (:mod:`caxton_meter._session`) gathers every test's
measurements, merges pytest-xdist workers' ones, lists them in a table at
the end, saves them as a new run of a baseline (``--meter-save-baseline
NAME``; not from a session that was interrupted, had collection errors or
a failed test -- unless ``--meter-save-on-failure`` -- or measured nothing)
or compares them with one (``--meter-baseline NAME``: a regression by
:func:`caxton_meter._compare.compare`'s test against the saved runs fails
the session), and writes the reports.

Each measurement becomes a scenario ``"<test nodeid>::<name>"`` of the
run (``"session::<name>"`` for the session-wide ``meter_session``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from ._expressions import ThresholdExpression, ThresholdExpressionError, parse_threshold
from ._meter import Meter
from ._session import _MeterSession, _Options, _XdistController

__all__: list[str] = []

_SESSION_TEST = "session"           # the "test" of meter_session's measurements

_STATE = pytest.StashKey[_MeterSession]()
_THRESHOLDS = pytest.StashKey[tuple[tuple[str | None, ThresholdExpression], ...]]()


# -- the marker ------------------------------------------------------------------------------

class _MarkerError(Exception):
    """A @pytest.mark.meter that cannot be used: reported as a collection error."""


def _marker_thresholds(item: pytest.Item) -> tuple[tuple[str | None, ThresholdExpression], ...]:
    checks: list[tuple[str | None, ThresholdExpression]] = []
    markers = list(item.iter_markers("meter"))
    for marker in markers:
        unknown = sorted(set(marker.kwargs) - {"thresholds", "name"})
        if unknown:
            raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter got unknown argument(s) "
                               f"{', '.join(unknown)}; it takes thresholds= and name=")
        spec: Any = list(marker.args) + _as_list(marker.kwargs.get("thresholds", []), item)
        name = marker.kwargs.get("name")
        if name is not None and not isinstance(name, str):
            raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter name= must be a str, "
                               f"got {name!r}")
        by_name: list[tuple[str | None, Any]] = []
        for entry in spec:
            if isinstance(entry, Mapping):
                for key, texts in entry.items():
                    by_name += [(str(key), t) for t in _as_list(texts, item)]
            else:
                by_name.append((name, entry))
        for target, text in by_name:
            if not isinstance(text, str):
                raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds must be "
                                   f"strings such as 'p(99) < 10ms', got {text!r}")
            try:
                checks.append((target, parse_threshold(text)))
            except ThresholdExpressionError as e:
                raise _MarkerError(f"{item.nodeid}: bad threshold in @pytest.mark.meter:\n"
                                   f"{e}") from None
    if checks and "meter" not in getattr(item, "fixturenames", ()):
        raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds are checked "
                           "against the test's `meter` fixture, which it does not use; "
                           "add `meter` to its arguments")
    return tuple(checks)


def _as_list(value: Any, item: pytest.Item) -> list[Any]:
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds must be a string, a "
                       f"list of strings or a mapping of name to strings, got {value!r}")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # A bad marker is reported as a collection error of its test (which is
    # then not run): unlike a UsageError it reaches the controller intact
    # from xdist workers.
    bad: list[pytest.Item] = []
    for item in items:
        try:
            checks = _marker_thresholds(item)
        except _MarkerError as e:
            bad.append(item)
            config.hook.pytest_collectreport(report=pytest.CollectReport(
                item.nodeid, "failed", str(e), []))
            continue
        if checks:
            item.stash[_THRESHOLDS] = checks
    if bad:
        items[:] = [item for item in items if item not in bad]


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    checks = item.stash.get(_THRESHOLDS, None)
    if not checks or item.config.stash[_STATE].options.disabled:
        return
    meter = getattr(item, "funcargs", {}).get("meter")
    if not isinstance(meter, Meter):
        return
    _, failures = meter._evaluate(checks)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


# -- options, the session, the fixtures ----------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("caxton_meter", "caxton_meter performance measurement")
    group.addoption("--meter-save-baseline", metavar="NAME", default=None,
                    help="save the session's measurements as a new run of baseline NAME; "
                         "not when the session is interrupted, has collection errors, has a "
                         "failed test or measured nothing (the session then fails)")
    group.addoption("--meter-save-on-failure", action="store_true", default=False,
                    help="with --meter-save-baseline: save even when tests failed (the "
                         "measurements of the tests that passed)")
    group.addoption("--meter-no-confirm", action="store_true", default=False,
                    help="do not re-run the tests that changed to confirm the changes (by "
                         "default a change must show again in a re-run to fail the session)")
    group.addoption("--meter-baseline", metavar="NAME", default=None,
                    help="compare the session's measurements with baseline NAME; a "
                         "regression fails the session")
    group.addoption("--meter-baseline-dir", metavar="DIR", default=None,
                    help="where baselines are kept (default: .caxton_meter/baselines under "
                         "the rootdir)")
    group.addoption("--meter-report", metavar="FORMATS", action="append", default=[],
                    help="write reports in these formats (md, html, json; a comma list)")
    group.addoption("--meter-output", metavar="DIR", default=None,
                    help="write the session's result (result.json) and the reports to DIR "
                         "(reports default to .caxton_meter/reports under the rootdir)")
    group.addoption("--meter-disable", action="store_true", default=False,
                    help="run measured code once without timing; do not check thresholds")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "meter(thresholds=[...], name=None): threshold expressions (as 'p(99) < 10ms') "
        "checked against the test's `meter` measurements after the test")
    options = _read_options(config)
    state = _MeterSession(config, options)
    if not options.disabled and options.baseline and not state.worker:
        from ._baselines import BaselineNotFoundError, BaselineStore
        from ._results import ResultFormatError

        try:
            state.baseline = BaselineStore(options.baseline_dir).history(options.baseline)
        except (BaselineNotFoundError, ResultFormatError) as e:
            raise pytest.UsageError(f"--meter-baseline: {e}") from None
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "caxton_meter-session")
    if config.pluginmanager.hasplugin("xdist") and not state.worker:
        config.pluginmanager.register(_XdistController(state), "caxton_meter-xdist")


def _read_options(config: pytest.Config) -> _Options:
    def opt(name: str) -> Any:
        return config.getoption(name)

    here = config.invocation_params.dir
    reports: list[str] = []
    for value in opt("meter_report") or []:
        reports += [f.strip().lower() for f in str(value).split(",") if f.strip()]
    if reports:
        from ._reports import REPORT_FORMATS

        unknown = [f for f in reports if f not in REPORT_FORMATS]
        if unknown:
            raise pytest.UsageError(f"--meter-report: unknown format(s) "
                                    f"{', '.join(map(repr, unknown))}; choose from "
                                    f"{', '.join(REPORT_FORMATS)}")
    baseline_dir = (here / opt("meter_baseline_dir") if opt("meter_baseline_dir")
                    else config.rootpath / ".caxton_meter" / "baselines")
    options = _Options(
        disabled=bool(opt("meter_disable")), save_baseline=opt("meter_save_baseline"),
        baseline=opt("meter_baseline"), reports=tuple(dict.fromkeys(reports)),
        output=here / opt("meter_output") if opt("meter_output") else None,
        baseline_dir=baseline_dir, save_on_failure=bool(opt("meter_save_on_failure")),
        confirm=not opt("meter_no_confirm"))
    for flag, name in (("--meter-save-baseline", options.save_baseline),
                       ("--meter-baseline", options.baseline)):
        if name is not None:
            from ._baselines import BaselineStore

            try:
                BaselineStore(baseline_dir).path(name)
            except ValueError as e:
                raise pytest.UsageError(f"{flag}: {e}") from None
    return options


@pytest.fixture
def meter(request: pytest.FixtureRequest) -> Iterator[Meter]:
    """Measurements of this test: ``meter.time(name)``, ``meter(fn, ...)``,
    ``meter.load(target, rate=..., duration=...)``, ``meter.resources(name)``,
    ``meter.check("p(99) < 10ms")``, ``meter.grade()``.  Each name becomes
    the scenario ``"<nodeid>::<name>"`` of the session's result."""
    state = request.config.stash[_STATE]
    m = Meter(request.node.nodeid, disabled=state.options.disabled)
    yield m
    if not m.disabled:
        state.absorb(m)


@pytest.fixture(scope="session")
def meter_session(request: pytest.FixtureRequest) -> Iterator[Meter]:
    """A Meter shared by every test of the session (and merged across xdist
    workers): a name used by several tests gathers all their values, as the
    scenario ``"session::<name>"``."""
    state = request.config.stash[_STATE]
    m = Meter(_SESSION_TEST, disabled=state.options.disabled)
    yield m
    if not m.disabled:
        state.absorb(m)
