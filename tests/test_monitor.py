"""The production monitor: snapshots that hold exactly what each interval
recorded, alerts with hysteresis (driven by poll() and a fake clock, no
sleeping), callbacks that raise, the Prometheus exposition parsed back and
compared with prometheus_client's own output, the background thread with
writers in several threads, and bad inputs."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import sys
import threading
import time
from typing import Any, Iterator, Mapping

import numpy as np
import pytest

from caxton_meter import Histogram, Recorder
from caxton_meter._core import CaxtonMeterError
from caxton_meter._expressions import ThresholdExpressionError
from caxton_meter._monitor import (
    CONTENT_TYPE,
    MONITOR_METRICS,
    Alert,
    AlertRule,
    Monitor,
    Snapshot,
)

MS = 1_000_000
RANGE = (1, 3_600_000_000_000, 3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 10.0) -> None:
        self.now += seconds


class Counter:
    """A cumulative counter the monitor reads."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def lognormal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(100_000), 1.0, n), 1, RANGE[1]).astype(np.int64)


def reference(values: np.ndarray) -> Histogram:
    h = Histogram(*RANGE)
    for v in values.tolist():
        h.record(v)
    return h


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def monitor_with(clock: FakeClock, **watch: Any) -> tuple[Monitor, Recorder]:
    monitor = Monitor(clock=clock)
    recorder = Recorder(*RANGE)
    monitor.watch("api", recorder, **watch)
    return monitor, recorder


def collect_alerts(monitor: Monitor) -> list[Alert]:
    alerts: list[Alert] = []
    monitor.on_alert(alerts.append)
    return alerts


# -- snapshots ---------------------------------------------------------------------------

def test_snapshots_hold_exactly_what_each_interval_recorded(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    monitor.threshold("api", "p(95) < 1s")        # asks for one more percentile
    for seed, n in ((1, 5000), (2, 1234)):
        values = lognormal(n, seed)
        start = clock.now
        for v in values[: n // 2].tolist():           # record() and record_array() alike
            recorder.record(v)
        recorder.record_array(values[n // 2:])
        clock.advance(10.0)
        snapshots = monitor.poll()
        assert list(snapshots) == ["api"]
        s = snapshots["api"]
        ref = reference(values)
        assert (s.name, s.start, s.end, s.duration) == ("api", start, clock.now, 10.0)
        assert s.count == ref.total_count == n
        assert s.overflow == 0
        assert s.requests == n and s.errors == 0
        assert s.throughput == n / 10.0
        assert math.isnan(s.error_rate)             # no errors counter
        assert [s.p50, s.p90, s.p99, s.p999] == ref.percentiles([50, 90, 99, 99.9])
        assert s.max == ref.max and s.mean == ref.mean
        assert dict(s.percentiles) == dict(zip([50.0, 90.0, 95.0, 99.0, 99.9],
                                               ref.percentiles([50, 90, 95, 99, 99.9])))
        assert s.value("p95") == s.value("p(95)") == ref.value_at_percentile(95)
        assert s.value("p99.9") == s.value("p(99.9)") == s.p999
        assert s.value("max") == s.max and s.value("avg") == s.value("mean") == s.mean
        assert Histogram.decode(s.histogram) == ref
        assert monitor.latest["api"] is s


def test_an_empty_interval_has_no_latency_data(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    clock.advance(5.0)
    s = monitor.poll()["api"]
    assert (s.count, s.requests, s.p99, s.max, s.mean, s.throughput) == (0, 0, 0, 0, 0.0, 0.0)
    assert math.isnan(s.value("p99")) and math.isnan(s.value("mean"))
    assert s.value("throughput") == 0.0
    with pytest.raises(ValueError, match=r"'p\(12\.5\)' was not computed for this snapshot; "
                                         r"computed: p50, p90, p99, p\(99\.9\)"):
        s.value("p(12.5)")


def test_values_recorded_before_watch_are_not_in_any_snapshot(clock: FakeClock) -> None:
    recorder = Recorder(*RANGE)
    recorder.record(5 * MS)
    monitor = Monitor(clock=clock)
    monitor.watch("api", recorder)
    recorder.record(1 * MS)
    clock.advance()
    assert monitor.poll()["api"].count == 1


def test_overflow_is_counted_as_requests_not_in_percentiles(clock: FakeClock) -> None:
    monitor = Monitor(clock=clock)
    recorder = Recorder(1, 1000, 3)
    monitor.watch("small", recorder)
    assert recorder.record_array(np.array([5, 7, 10**6])) == 1
    clock.advance(1.0)
    s = monitor.poll()["small"]
    assert (s.count, s.overflow, s.requests, s.max) == (2, 1, 3, 7)


def test_counters_give_requests_errors_and_rates(clock: FakeClock) -> None:
    errors, requests = Counter(), Counter()
    errors.value, requests.value = 7, 100                 # the baseline, read at watch()
    monitor, recorder = monitor_with(clock, errors=errors, requests=requests)
    recorder.record_array(np.full(50, MS))
    errors.value, requests.value = 17, 300
    clock.advance(4.0)
    s = monitor.poll()["api"]
    assert (s.count, s.requests, s.errors) == (50, 200, 10)
    assert (s.throughput, s.error_rate) == (50.0, 0.05)
    # a counter that went down was reset: its value is the increase
    errors.value, requests.value = 3, 30
    clock.advance(3.0)
    s = monitor.poll()["api"]
    assert (s.requests, s.errors, s.throughput, s.error_rate) == (30, 3, 10.0, 0.1)
    # no requests: no error rate
    clock.advance(1.0)
    s = monitor.poll()["api"]
    assert (s.requests, s.errors) == (0, 0) and math.isnan(s.error_rate)


def test_snapshots_and_alerts_are_immutable(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    clock.advance()
    s = monitor.poll()["api"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.count = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        monitor.latest["x"] = s  # type: ignore[index]
    assert isinstance(dataclasses.asdict(s), dict)


# -- alerts ------------------------------------------------------------------------------

def poll_with(monitor: Monitor, recorder: Recorder, clock: FakeClock, latency_ms: float,
              n: int = 100) -> Snapshot:
    recorder.record_array(np.full(n, int(latency_ms * MS)))
    clock.advance()
    return monitor.poll()["api"]


def test_an_alert_fires_once_and_resolves_once(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    rule = monitor.threshold("api", "p99 < 10ms")
    alerts = collect_alerts(monitor)
    poll_with(monitor, recorder, clock, 5)
    assert alerts == [] and not monitor.firing
    poll_with(monitor, recorder, clock, 20)
    assert len(alerts) == 1
    fired = alerts[0]
    assert (fired.name, fired.metric, fired.op, fired.threshold, fired.state) == \
        ("api", "p99", "<", 10 * MS, "firing")
    assert fired.value == pytest.approx(20 * MS, rel=1e-3) and fired.time == clock.now
    assert fired.expression == rule.expression == "p99 < 10ms"
    assert monitor.firing == (rule,)
    for _ in range(3):                                   # still bad: no new alert
        poll_with(monitor, recorder, clock, 30)
    assert len(alerts) == 1
    poll_with(monitor, recorder, clock, 2)
    assert [a.state for a in alerts] == ["firing", "resolved"]
    assert alerts[1].value == pytest.approx(2 * MS, rel=1e-3)
    assert not monitor.firing
    poll_with(monitor, recorder, clock, 3)
    poll_with(monitor, recorder, clock, 50)               # a new crossing fires again
    assert [a.state for a in alerts] == ["firing", "resolved", "firing"]


def test_clear_after_needs_consecutive_good_intervals(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    monitor.threshold("api", "max", "<=", "10ms", clear_after=3)
    alerts = collect_alerts(monitor)
    poll_with(monitor, recorder, clock, 20)
    poll_with(monitor, recorder, clock, 1)
    poll_with(monitor, recorder, clock, 1)
    poll_with(monitor, recorder, clock, 20)              # breaks the streak
    poll_with(monitor, recorder, clock, 1)
    poll_with(monitor, recorder, clock, 1)
    assert [a.state for a in alerts] == ["firing"]
    clock.advance()
    monitor.poll()                                       # no data: neither good nor bad
    assert [a.state for a in alerts] == ["firing"]
    poll_with(monitor, recorder, clock, 1)
    assert [a.state for a in alerts] == ["firing", "resolved"]


def test_empty_intervals_change_no_latency_alert(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    monitor.threshold("api", "p(99.9) < 10ms")
    alerts = collect_alerts(monitor)
    poll_with(monitor, recorder, clock, 20)
    for _ in range(3):
        clock.advance()
        monitor.poll()
    assert [a.state for a in alerts] == ["firing"]


def test_throughput_and_error_rate_thresholds(clock: FakeClock) -> None:
    errors = Counter()
    monitor, recorder = monitor_with(clock, errors=errors)
    monitor.threshold("api", "throughput > 5/s")
    monitor.threshold("api", "error_rate", "<", "1%", clear_after=2)
    alerts = collect_alerts(monitor)
    poll_with(monitor, recorder, clock, 1, n=100)        # 10/s, no errors
    assert alerts == []
    errors.value = 5
    poll_with(monitor, recorder, clock, 1, n=100)        # 5 % errors
    assert [(a.metric, a.state, a.value) for a in alerts] == [("error_rate", "firing", 0.05)]
    clock.advance()
    monitor.poll()                                       # traffic stopped: 0/s
    assert [(a.metric, a.state) for a in alerts][1:] == [("throughput", "firing")]
    poll_with(monitor, recorder, clock, 1, n=100)
    poll_with(monitor, recorder, clock, 1, n=100)
    assert [(a.metric, a.state) for a in alerts][2:] == [("throughput", "resolved"),
                                                          ("error_rate", "resolved")]


def test_thresholds_on_several_watches_are_independent(clock: FakeClock) -> None:
    monitor = Monitor(clock=clock)
    fast, slow = Recorder(*RANGE), Recorder(*RANGE)
    monitor.watch("fast", fast)
    monitor.watch("slow", slow)
    monitor.threshold("fast", "p50 < 1ms")
    monitor.threshold("slow", "p50 < 1ms")
    alerts = collect_alerts(monitor)
    fast.record(100_000)
    slow.record(5 * MS)
    clock.advance()
    assert set(monitor.poll()) == {"fast", "slow"}
    assert [(a.name, a.state) for a in alerts] == [("slow", "firing")]


# -- callbacks that raise ----------------------------------------------------------------

def test_a_raising_callback_does_not_stop_monitoring(clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monitor, recorder = monitor_with(clock)
    monitor.threshold("api", "p99 < 10ms")

    def broken(alert: Alert) -> None:
        raise RuntimeError(f"pager down ({alert.state})")

    monitor.on_alert(broken)
    alerts = collect_alerts(monitor)            # registered after the broken one
    snapshots: list[Mapping[str, Snapshot]] = []
    monitor.on_snapshot(snapshots.append)
    with caplog.at_level(logging.ERROR, logger="caxton_meter.monitor"):
        poll_with(monitor, recorder, clock, 20)
        poll_with(monitor, recorder, clock, 1)
    assert [a.state for a in alerts] == ["firing", "resolved"]
    assert len(snapshots) == 2
    errors = monitor.callback_errors
    assert [(e.error_type, e.message) for e in errors] == [
        ("RuntimeError", "pager down (firing)"), ("RuntimeError", "pager down (resolved)")]
    assert errors[0].alert == alerts[0] and errors[0].time == alerts[0].time
    assert "broken" in errors[0].callback
    records = [r for r in caplog.records if r.name == "caxton_meter.monitor"]
    assert len(records) == 2
    assert "pager down (firing)" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError


def test_a_raising_snapshot_callback_and_counter(clock: FakeClock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    requests = Counter()
    reads: Iterator[int | Exception] = iter([0, OSError("stats endpoint unreachable"), 4])

    def flaky_errors() -> int:        # reads 0 at watch(), then fails once, then 4
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return value

    monitor, recorder = monitor_with(clock, requests=requests, errors=flaky_errors)

    def bad_snapshot(_: Mapping[str, Snapshot]) -> None:
        raise ValueError("disk full")

    monitor.on_snapshot(bad_snapshot)
    requests.value = 10
    with caplog.at_level(logging.ERROR, logger="caxton_meter.monitor"):
        s = poll_with(monitor, recorder, clock, 1)
    assert s.requests == 10 and s.errors == 0 and math.isnan(s.error_rate)
    assert [e.error_type for e in monitor.callback_errors] == ["OSError", "ValueError"]
    assert "errors counter of 'api'" in monitor.callback_errors[0].callback
    assert monitor.callback_errors[1].alert is None
    assert len([r for r in caplog.records if r.name == "caxton_meter.monitor"]) == 2
    requests.value = 20
    s = poll_with(monitor, recorder, clock, 1)
    assert s.errors == 4 and s.error_rate == 0.4          # the missed increase is not lost


# -- exposition --------------------------------------------------------------------------

needs_prometheus_client = pytest.mark.skipif(
    importlib.util.find_spec("prometheus_client") is None,
    reason="prometheus_client is not installed (caxton_meter[prometheus])")


def test_the_exposition_format_without_prometheus_client(clock: FakeClock) -> None:
    monitor = Monitor(clock=clock, namespace="app")
    recorder = Recorder(*RANGE)
    monitor.watch('say "hi"', recorder)
    monitor.threshold('say "hi"', "max < 1s")
    recorder.record_array(np.full(4, 2 * MS))
    clock.advance(2.0)
    monitor.poll()
    label = 'name="say \\"hi\\""'
    # 2 ms is reported as its bucket's highest equivalent value at 3 significant
    # figures, 2000895 ns, as Histogram.value_at_percentile does.
    assert monitor.exposition() == f"""\
# HELP app_latency_seconds Latency: quantiles over the latest interval; _sum and _count since the watch began.
# TYPE app_latency_seconds summary
app_latency_seconds{{{label},quantile="0.5"}} 0.002000895
app_latency_seconds{{{label},quantile="0.9"}} 0.002000895
app_latency_seconds{{{label},quantile="0.99"}} 0.002000895
app_latency_seconds{{{label},quantile="0.999"}} 0.002000895
app_latency_seconds_sum{{{label}}} 0.008001536
app_latency_seconds_count{{{label}}} 4.0
# HELP app_latency_max_seconds Largest latency in the latest interval.
# TYPE app_latency_max_seconds gauge
app_latency_max_seconds{{{label}}} 0.002000895
# HELP app_requests_total Requests since the watch began.
# TYPE app_requests_total counter
app_requests_total{{{label}}} 4.0
# HELP app_latency_overflow_total Latencies above the recorder's range since the watch began (not in the quantiles).
# TYPE app_latency_overflow_total counter
app_latency_overflow_total{{{label}}} 0.0
# HELP app_requests_per_second Requests per second over the latest interval.
# TYPE app_requests_per_second gauge
app_requests_per_second{{{label}}} 2.0
# HELP app_alert_firing 1 while the threshold's alert is firing, else 0.
# TYPE app_alert_firing gauge
app_alert_firing{{{label},threshold="max < 1s"}} 0.0
"""


def exposed(monitor: Monitor) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f for f in text_string_to_metric_families(monitor.exposition())}


def samples_of(text: str) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], str]]:
    from prometheus_client.parser import text_string_to_metric_families
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((family.name, family.type, s.name, tuple(sorted(s.labels.items())),
                        repr(s.value)))       # repr: NaN compares equal
    return out


def busy_monitor(clock: FakeClock) -> Monitor:
    monitor = Monitor(clock=clock, namespace="svc")
    errors = Counter()
    api, db = Recorder(*RANGE), Recorder(*RANGE)
    monitor.watch('api "v2"\\path\nline', api, errors=errors)
    monitor.watch("db", db)
    monitor.threshold('api "v2"\\path\nline', "p99 < 10ms")
    monitor.threshold('api "v2"\\path\nline', "error_rate < 0.5%")
    monitor.threshold("db", "mean <= 2.5ms")
    api.record_array(lognormal(1000, 3))
    api.record(50 * MS)
    errors.value = 20
    clock.advance(2.0)
    monitor.poll()
    clock.advance(2.0)                          # db empty now, api gets a second interval
    api.record_array(np.full(99, 3 * MS))
    errors.value = 25
    monitor.poll()
    return monitor


@needs_prometheus_client
def test_the_exposition_parses_back(clock: FakeClock) -> None:
    monitor = busy_monitor(clock)
    s = monitor.latest['api "v2"\\path\nline']
    families = exposed(monitor)
    assert {name: f.type for name, f in families.items()} == {
        "svc_latency_seconds": "summary",
        "svc_latency_max_seconds": "gauge",
        "svc_requests": "counter",
        "svc_latency_overflow": "counter",
        "svc_errors": "counter",
        "svc_requests_per_second": "gauge",
        "svc_error_ratio": "gauge",
        "svc_alert_firing": "gauge",
    }
    api = {"name": 'api "v2"\\path\nline'}
    summary = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
               for smp in families["svc_latency_seconds"].samples}
    for q, ns in (("0.5", s.p50), ("0.9", s.p90), ("0.99", s.p99), ("0.999", s.p999)):
        key = ("svc_latency_seconds", tuple(sorted({**api, "quantile": q}.items())))
        assert summary[key] == ns / 1e9
    first_sum = reference(np.append(lognormal(1000, 3), 50 * MS))
    assert summary[("svc_latency_seconds_count", tuple(api.items()))] == 1100
    assert summary[("svc_latency_seconds_sum", tuple(api.items()))] == pytest.approx(
        (first_sum.mean * 1001 + s.mean * 99) / 1e9)
    db_q = summary[("svc_latency_seconds", (("name", "db"), ("quantile", "0.99")))]
    assert math.isnan(db_q)                                   # empty interval: NaN
    requests = {smp.labels["name"]: smp.value for smp in families["svc_requests"].samples}
    assert requests == {api["name"]: 1100.0, "db": 0.0}
    assert [smp.name for smp in families["svc_requests"].samples] == ["svc_requests_total"] * 2
    errors = families["svc_errors"].samples
    assert [(smp.labels, smp.value) for smp in errors] == [(api, 25.0)]   # db has no counter
    ratio = families["svc_error_ratio"].samples
    assert [(smp.labels, smp.value) for smp in ratio] == [(api, 5 / 99)]
    rate = {smp.labels["name"]: smp.value for smp in families["svc_requests_per_second"].samples}
    assert rate == {api["name"]: 99 / 2.0, "db": 0.0}
    firing = {(smp.labels["name"], smp.labels["threshold"]): smp.value
              for smp in families["svc_alert_firing"].samples}
    assert firing == {(api["name"], "p99 < 10ms"): 0.0,
                      (api["name"], "error_rate < 0.5%"): 1.0,
                      ("db", "mean <= 2.5ms"): 0.0}        # no data yet
    text = monitor.exposition()
    assert "# TYPE svc_requests_total counter\n" in text
    assert '{name="api \\"v2\\"\\\\path\\nline"}' in text       # escaped label value
    assert text.endswith("\n") and CONTENT_TYPE.startswith("text/plain; version=0.0.4")


@needs_prometheus_client
def test_the_exposition_is_what_prometheus_client_writes(clock: FakeClock) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    monitor = busy_monitor(clock)
    registry = CollectorRegistry()
    collector = monitor.register(registry)
    theirs = generate_latest(registry).decode()
    ours = monitor.exposition()
    assert samples_of(ours) == samples_of(theirs)
    assert ours == theirs
    clock.advance()
    monitor.poll()                                  # the collector reads the latest state
    assert generate_latest(registry).decode() == monitor.exposition()
    registry.unregister(collector)
    assert generate_latest(registry) == b""


@needs_prometheus_client
def test_an_unpolled_monitor_exposes_only_its_alert_states(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    assert monitor.exposition() == ""
    monitor.threshold("api", "p50 < 1ms")
    assert list(exposed(monitor)) == ["caxton_meter_alert_firing"]


@needs_prometheus_client
def test_register_detects_a_duplicate_and_explains_a_missing_library(
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry(auto_describe=True)
    Monitor(clock=clock).register(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Monitor(clock=clock).register(registry)
    Monitor(clock=clock, namespace="other").register(registry)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'caxton_meter\[prometheus\]'"):
        Monitor(clock=clock).register()


# -- the background thread ---------------------------------------------------------------

def test_the_thread_polls_and_stop_takes_the_final_snapshot() -> None:
    monitor = Monitor(interval=0.05)
    recorder = Recorder(*RANGE)
    monitor.watch("api", recorder)
    seen: list[Mapping[str, Snapshot]] = []
    two = threading.Event()

    def on_snapshot(snapshots: Mapping[str, Snapshot]) -> None:
        seen.append(snapshots)
        if len(seen) >= 2:
            two.set()

    monitor.on_snapshot(on_snapshot)
    with pytest.raises(RuntimeError, match="not running"):
        monitor.stop()
    monitor.start()
    assert monitor.running
    with pytest.raises(RuntimeError, match="already running"):
        monitor.start()
    recorder.record(MS)
    assert two.wait(10.0)
    recorder.record(2 * MS)
    final = monitor.stop()
    assert not monitor.running
    assert seen[-1]["api"] is final["api"] is monitor.latest["api"]
    assert sum(s["api"].count for s in seen) == 2
    ends = [s["api"].end for s in seen]
    assert all(b > a for a, b in zip(ends, ends[1:]))
    assert all(s["api"].start == prev["api"].end for prev, s in zip(seen, seen[1:]))
    assert not any(t.name == "caxton_meter-monitor" for t in threading.enumerate())


def test_writers_in_several_threads_lose_nothing_while_polled() -> None:
    monitor = Monitor(interval=0.01)
    recorder = Recorder(*RANGE)
    monitor.watch("api", recorder)
    counts: list[int] = []
    monitor.on_snapshot(lambda s: counts.append(s["api"].count))
    threads = 4
    recorded = [0] * threads
    go = threading.Barrier(threads + 1)

    def writer(i: int) -> None:
        values = lognormal(1000, i).tolist()
        go.wait()
        # at least 20k values each, and on until polls have cut the stream:
        # ten snapshots, two of them with values (on a busy machine the first
        # polls may all come before a writer records anything); bounded in time
        give_up = time.monotonic() + 60
        while (recorded[i] < 20_000 or len(counts) < 10
               or sum(1 for c in counts if c) < 2) and time.monotonic() < give_up:
            for v in values:
                recorder.record(v)
            recorded[i] += len(values)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    with monitor:
        for w in workers:
            w.start()
        go.wait()
        while any(w.is_alive() for w in workers):
            monitor.poll()                  # the user polls too, concurrently
        for w in workers:
            w.join()
    assert len(counts) >= 11
    assert sum(counts) == sum(recorded)
    assert sum(1 for c in counts if c) >= 2         # the values were spread over intervals


def test_stop_from_a_callback_ends_the_thread() -> None:
    monitor = Monitor(interval=0.01)
    monitor.watch("api", Recorder(*RANGE))
    stopped = threading.Event()

    def stop_now(_: Mapping[str, Snapshot]) -> None:
        if not stopped.is_set():
            monitor.stop()                  # from the monitor's thread: no join
            stopped.set()

    monitor.on_snapshot(stop_now)
    monitor.start()
    assert stopped.wait(10.0)
    assert not monitor.running
    monitor.start()                         # and it can be started again
    monitor.stop()


# -- thresholds written as text ----------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("p99 < 10ms", ("p99", "<", 10e6)),
    ("p(99.9)<=1.5s", ("p(99.9)", "<=", 1.5e9)),
    ("p99.9 < 250us", ("p(99.9)", "<", 250e3)),
    ("  p95>=  2ms ", ("p95", ">=", 2e6)),
    ("p100 < 1s", ("p100", "<", 1e9)),
    ("max < 100", ("max", "<", 100e6)),          # a bare time is ms, as in k6
    ("mean > 0.5ms", ("mean", ">", 0.5e6)),
    ("avg > 0.5ms", ("mean", ">", 0.5e6)),
    ("mean == 2ms", ("mean", "==", 2e6)),
    ("max != 0", ("max", "!=", 0.0)),
    ("error_rate < 1%", ("error_rate", "<", 0.01)),
    ("error_rate <= 0.001", ("error_rate", "<=", 0.001)),
    ("throughput > 50K/s", ("throughput", ">", 50e3)),
])
def test_thresholds_are_read_in_the_monitors_metric_set(text: str,
                                                        expected: tuple[str, str, float]) -> None:
    e = MONITOR_METRICS.parse(text)
    assert (e.label, e.operator) == expected[:2] and e.value == pytest.approx(expected[2])


def test_p999_is_refused_with_the_spellings_that_mean_it(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    with pytest.raises(ThresholdExpressionError) as info:
        monitor.threshold("api", "p999 < 250us")
    assert str(info.value).splitlines()[0] == (
        "invalid threshold expression: percentile 999 is out of range: it must be from 0 to "
        "100; write p99.9 or p(99.9)")
    with pytest.raises(ValueError, match="write p99.9 or p"):
        monitor.threshold("api", "p999", "<", "250us")
    assert monitor.rules == ()


def test_equality_and_avg_thresholds_alert(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    monitor.threshold("api", "max == 1us")             # below 2048 ns values are exact
    differs = monitor.threshold("api", "avg", "!=", "1us")
    assert (differs.metric, differs.op, differs.expression) == ("mean", "!=", "mean != 1us")
    alerts = collect_alerts(monitor)
    poll_with(monitor, recorder, clock, 0.001)         # every latency 1 µs
    assert [(a.expression, a.state) for a in alerts] == [("mean != 1us", "firing")]
    poll_with(monitor, recorder, clock, 0.0015)        # every latency 1.5 µs
    assert [(a.expression, a.state, a.value) for a in alerts][1:] == [
        ("max == 1us", "firing", 1500.0), ("mean != 1us", "resolved", 1500.0)]


def test_a_threshold_error_is_a_caxton_meter_error(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    with pytest.raises(CaxtonMeterError):
        monitor.threshold("api", "p99 <")
    with pytest.raises(CaxtonMeterError):
        monitor.threshold("api", "p99", "=~", 1)


def test_rules_canonicalise_their_expression(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    rule = monitor.threshold("api", "p(99.9)", "<", 10_000_000)
    assert rule == AlertRule("api", "p(99.9)", "<", 10e6, 1)
    assert rule.expression == "p(99.9) < 10ms"
    with pytest.raises(ValueError, match=r"watch 'api' has the threshold 'p\(99\.9\) < 10ms' "
                                         "already"):
        monitor.threshold("api", "p99.9 < 10ms")
    assert monitor.rules == (rule,)


# -- bad inputs --------------------------------------------------------------------------

@pytest.mark.parametrize("interval", [0, -1.0, math.nan, math.inf, 3601])
def test_bad_interval(interval: float) -> None:
    with pytest.raises(ValueError, match=r"interval must be in \(0, 3600\] seconds"):
        Monitor(interval=interval)


def test_bad_monitor_arguments() -> None:
    with pytest.raises(TypeError, match="interval must be a number of seconds, not str"):
        Monitor(interval="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="interval must be a number of seconds, not bool"):
        Monitor(interval=True)
    with pytest.raises(ValueError, match=r"namespace must match .* got 'my-app'"):
        Monitor(namespace="my-app")
    with pytest.raises(TypeError, match="clock must be a callable"):
        Monitor(clock=1.0)  # type: ignore[arg-type]


def test_bad_watches(clock: FakeClock) -> None:
    monitor, recorder = monitor_with(clock)
    with pytest.raises(ValueError, match="a watch named 'api' exists already; watches: api"):
        monitor.watch("api", Recorder(*RANGE))
    with pytest.raises(ValueError, match="this recorder is watched already as 'api'"):
        monitor.watch("other", recorder)
    with pytest.raises(ValueError, match="a watch name must be a non-empty str"):
        monitor.watch("", Recorder(*RANGE))
    with pytest.raises(TypeError, match="recorder must be a caxton_meter.Recorder, not Histogram"):
        monitor.watch("h", Histogram(*RANGE))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="errors must be a callable returning a count, not int"):
        monitor.watch("e", Recorder(*RANGE), errors=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"the requests counter of 'n' returned -1; expected a "
                                         "whole number >= 0"):
        monitor.watch("n", Recorder(*RANGE), requests=lambda: -1)
    with pytest.raises(TypeError, match="the errors counter of 's' returned str"):
        monitor.watch("s", Recorder(*RANGE), errors=lambda: "3")  # type: ignore[arg-type, return-value]
    clock.advance()
    assert list(monitor.poll()) == ["api"]


@pytest.mark.parametrize("args, error, match", [
    (("nope", "p99 < 1ms"), ValueError, r"threshold on unknown watch 'nope'; watches: api"),
    (("api", "p98.5.1 < 1ms"), ValueError,
     r"unknown metric 'p98\.5\.1'\n    p98\.5\.1 < 1ms\n    \^{7}\n"
     r"metrics: p\(N\), avg, max, error_rate, throughput"),
    (("api", "latency < 1ms"), ValueError,
     r"unknown metric 'latency'\n(.*\n){2}metrics: p\(N\), avg, max, error_rate, throughput"),
    (("api", "latency", "<", 1), ValueError, r"unknown metric 'latency'"),
    (("api", "p99", "=<", 1), ValueError,
     r"unknown operator '=<'; operators: <, <=, >, >=, ==, !="),
    (("api", "p99 ~ 10ms"), ValueError,
     r"expected a comparison operator \(<, <=, >, >=, ==, !=\)\n    p99 ~ 10ms\n        \^\n"),
    (("api", "p99 < 10 furlongs"), ValueError,
     r"unknown unit 'furlongs' for p99, a time\n    p99 < 10 furlongs\n             \^{8}\n"
     r"valid: ns, us, ms, s"),
    (("api", "p99", "<", "10 furlongs"), ValueError,
     r"unknown unit 'furlongs' for p99, a time\n    10 furlongs\n       \^{8}\n"),
    (("api", "p99", "<", -1), ValueError, r"threshold p99 <: the value must be a finite number "
                                           r">= 0 \(in ns\), got -1"),
    (("api", "p99", "<", None, ), TypeError, "give both op and value"),
    (("api", "p(101) < 1s"), ValueError,
     r"percentile 101 is out of range: it must be from 0 to 100\n"),
    (("api", "error_rate < 1%"), ValueError,
     r"the watch has no errors counter; pass errors= to watch\(\)"),
    (("api", "p99", "<"), TypeError, "give both op and value, or one expression"),
])
def test_bad_thresholds(clock: FakeClock, args: tuple[Any, ...], error: type[Exception],
                        match: str) -> None:
    monitor, _ = monitor_with(clock)
    with pytest.raises(error, match=match):
        monitor.threshold(*args)
    assert monitor.rules == ()


def test_bad_clear_after_and_callbacks(clock: FakeClock) -> None:
    monitor, _ = monitor_with(clock)
    with pytest.raises(ValueError, match="clear_after must be >= 1 .* got 0"):
        monitor.threshold("api", "p99 < 1ms", clear_after=0)
    with pytest.raises(TypeError, match="clear_after must be an int, not float"):
        monitor.threshold("api", "p99 < 1ms", clear_after=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_alert: callback must be callable"):
        monitor.on_alert("print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_snapshot: callback must be callable"):
        monitor.on_snapshot(None)  # type: ignore[arg-type]
