"""Capacity search: the search's logic on fake steps whose answer is known
(a threshold, an M/M/1 queue), a callable whose capacity follows from its
service time, nginx on a free loopback port, and the result's form.  Every
search is bounded by a small budget and few steps; traffic goes to
127.0.0.1 only."""
import json
import math
import sys
import time

import numpy as np
import psutil  # noqa: F401  (before pytester's in-process runs: see test_plugin.py)
import pytest

import caxton_meter as cm
from caxton_meter import CapacityResult, CapacityStep, HttpTarget, find_capacity
from caxton_meter._capacity import (
    RATE_TOLERANCE,
    _search,
    _slo_expressions,
    knee_of,
    result_of,
    step_duration,
)
from caxton_meter._checks import ArgumentError
from caxton_meter._core import OpenLoopResult, latency_histogram
from caxton_meter._expressions import ThresholdExpressionError

from nginx_server import free_port

pytest_plugins = ["pytester"]

MS = 1_000_000
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the network loop is Linux's (epoll) for now")


# --- fake steps ---------------------------------------------------------------------------

def fake_result(rate, length, *, latencies_ns, behind=1.0, failed=0, dropped=0, errors=None):
    """An OpenLoopResult of a step at ``rate`` for ``length`` seconds whose
    completed requests took ``latencies_ns`` (a sample of the distribution)
    and whose last request went out ``behind`` times the schedule's length
    after the start (1: on time)."""
    planned = max(1, round(rate * length))
    requests = planned - dropped
    completed = requests - failed
    h = latency_histogram()
    if completed:
        h.record_array(np.asarray(latencies_ns, dtype=np.int64))
    duration_ns = int(length * 1e9)
    last = int(duration_ns * behind)
    return OpenLoopResult(
        requests=requests, completed=completed, failed=failed, dropped=dropped,
        planned=planned, elapsed_ns=max(duration_ns, last), duration_ns=duration_ns,
        latency=h, latency_uncorrected=h.copy(), send_jitter=latency_histogram(),
        errors=errors or ({"TimeoutError": failed} if failed else {}), last_send_ns=last)


def exponential(mean_s, m=20_000):
    """m evenly spaced quantiles of an exponential distribution, in ns."""
    u = (np.arange(m) + 0.5) / m
    return np.maximum(1, -np.log1p(-u) * mean_s * 1e9).astype(np.int64)


class Threshold:
    """A system that answers in 1 ms up to ``capacity`` requests/s and in
    1 s beyond it."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.rates = []

    def __call__(self, rate, length, deadline):
        self.rates.append(rate)
        latency = 1 * MS if rate <= self.capacity else 1000 * MS
        return fake_result(rate, length, latencies_ns=[latency] * 100)


class MM1:
    """An M/M/1 queue served at ``mu`` requests/s: the response time is
    exponential with mean 1/(mu - rate); at or beyond mu the queue grows
    without bound and the loop offers only mu."""

    def __init__(self, mu):
        self.mu = mu

    def __call__(self, rate, length, deadline):
        if rate < self.mu:
            return fake_result(rate, length, latencies_ns=exponential(1 / (self.mu - rate)))
        return fake_result(rate, length, latencies_ns=exponential(length),
                           behind=rate / self.mu)


def search(measure, slo="p99 < 10ms", *, start_rate=1000.0, max_rate=1e6, factor=2.0,
           precision=0.05, max_steps=25, budget=1e9, min_step=1.0, tail_samples=50,
           max_error_rate=0.0, clock=time.monotonic):
    expressions = _slo_expressions(slo, "test")
    percentile = max(e.percentile for e in expressions if e.metric == "p")
    steps, stopped, low, high, elapsed = _search(
        measure, expressions=expressions, percentile=percentile, start_rate=start_rate,
        max_rate=max_rate, factor=factor, precision=precision, max_steps=max_steps,
        budget=budget, min_step=min_step, tail_samples=tail_samples,
        max_error_rate=max_error_rate, drain=0.0, clock=clock)
    return result_of(steps, stopped=stopped, low=low, high=high, elapsed=elapsed,
                     target="fake", slo=tuple(e.text for e in expressions),
                     percentile=percentile, precision=precision, knee_factor=2.0)


def test_rising_steps_double_then_bisection_brackets_the_capacity_to_the_precision():
    system = Threshold(capacity=5000)
    res = search(system)
    # x2 from 1000 until 8000 fails, then halving the bracket [4000, 8000]
    assert system.rates == [1000, 2000, 4000, 8000, 6000, 5000, 5500, 5250]
    assert [s.phase for s in res.steps] == ["rise"] * 4 + ["bisect"] * 4
    assert [s.passed for s in res.steps] == [True, True, True, False, False, True, False,
                                             False]
    assert res.capacity == 5000 and res.limit == 5250
    assert res.converged and res.stopped == "converged"
    assert res.limit - res.capacity <= 0.05 * res.capacity
    assert res.steps[3].reason == "p(99) = 1 s, not < 10 ms"


def test_the_capacity_of_an_mm1_queue_matches_its_analytic_value():
    # p99 of M/M/1's response time is ln(100) / (mu - rate): "p99 < 10ms"
    # holds up to mu - ln(100) / 10 ms
    mu = 10_000.0
    analytic = mu - math.log(100) / 0.010              # 9539.5/s
    res = search(MM1(mu), precision=0.02)
    assert res.converged
    assert analytic * (1 - 0.02) <= res.capacity <= analytic < res.limit
    # the rates beyond mu fail because the loop could not offer them
    beyond = [s for s in res.steps if s.rate > mu]
    assert beyond and all(not s.passed and "the loop fell behind" in s.reason for s in beyond)
    for s in res.steps:
        if s.rate < mu:
            expected = math.log(100) / (mu - s.rate) * 1e9
            assert s.p99 == pytest.approx(expected, rel=0.01)


def test_the_knee_is_where_the_percentile_doubles_interpolated_between_steps():
    # M/M/1: every percentile is proportional to 1 / (mu - rate), so it is
    # twice its value at rate r0 at (mu + r0) / 2
    mu, r0 = 10_000.0, 1000.0
    dense = [CapacityStep(rate=r, duration=1, achieved=r, requests=1, completed=1, failed=0,
                          dropped=0, p50=None, p99=None, value=1e9 / (mu - r),
                          slo_values=(), errors=(), passed=True, reason="", phase="rise")
             for r in np.arange(r0, 9500, 50.0)]
    assert knee_of(dense, 2.0) == pytest.approx((mu + r0) / 2, rel=1e-3)
    assert knee_of(dense, 3.0) == pytest.approx(mu - (mu - r0) / 3, rel=1e-3)
    assert knee_of(dense[:10], 2.0) is None           # never doubled over 1000..1450/s
    # a search's knee: the linear interpolation between the two steps around
    # the crossing (4000/s at 1.5x, 8000/s at 4.5x the value at 1000/s)
    res = search(MM1(mu))
    by_rate = {s.rate: s.value for s in res.steps}
    base, v0, v1 = by_rate[1000], by_rate[4000], by_rate[8000]
    assert res.knee == pytest.approx(4000 + (2 * base - v0) * 4000 / (v1 - v0))
    assert 4000 < res.knee < 8000


def test_a_first_step_that_fails_makes_the_rate_fall_until_one_passes():
    system = Threshold(capacity=300)
    res = search(system)
    assert [s.phase for s in res.steps[:3]] == ["rise", "fall", "fall"]
    assert system.rates[:3] == [1000, 500, 250]
    assert res.capacity <= 300 < res.limit and res.converged


def test_a_step_passes_only_when_the_loop_held_the_rate_and_nothing_failed():
    expressions = _slo_expressions("p99 < 10ms", "test")

    def judged(res, max_error_rate=0.0):
        from caxton_meter._capacity import _judge
        return _judge(res, 1000.0, 1.0, expressions, 99.0, max_error_rate, "rise")

    fast = [1 * MS] * 100
    assert judged(fake_result(1000, 1, latencies_ns=fast)).passed
    # the SLO holds but the loop sent 2 % behind its schedule
    late = judged(fake_result(1000, 1, latencies_ns=fast, behind=1 + 2 * RATE_TOLERANCE))
    assert not late.passed and "the loop fell behind" in late.reason
    dropped = judged(fake_result(1000, 1, latencies_ns=fast, dropped=3))
    assert not dropped.passed and "3 of 1,000 arrivals dropped" in dropped.reason
    failed = fake_result(1000, 1, latencies_ns=fast, failed=5)
    assert "5 of 1,000 requests failed (0.50%, allowed 0.00%): TimeoutError 5" in \
        judged(failed).reason
    assert judged(failed, max_error_rate=0.01).passed     # within the allowance


def test_the_search_is_bounded_by_its_budget_steps_and_max_rate():
    now = [0.0]

    def clock():
        return now[0]

    def quick(rate, length, deadline):
        now[0] += length                  # a step takes its length on this clock
        return fake_result(rate, length, latencies_ns=[MS] * 10)

    res = search(quick, budget=10.0, min_step=2.0, tail_samples=1, clock=clock)
    assert res.stopped == "budget" and len(res.steps) == 4     # 4 x 2 s; a fifth won't fit
    assert sum(s.duration for s in res.steps) <= 10.0
    assert res.limit is None and "capacity 8.0K/s" in res.verdict
    res = search(Threshold(5000), max_steps=5, tail_samples=1)
    assert res.stopped == "max_steps" and len(res.steps) == 5 and not res.converged
    assert "stopped at max_steps" in res.verdict
    res = search(Threshold(1e9), max_rate=3000, tail_samples=1)
    assert [s.rate for s in res.steps] == [1000, 2000, 3000]
    assert res.stopped == "max_rate" and res.capacity == 3000 and res.limit is None
    assert "at least 3.0K/s" in res.verdict


def test_a_target_that_completes_nothing_stops_the_search_at_once():
    def refused(rate, length, deadline):
        n = round(rate * length)
        return fake_result(rate, length, latencies_ns=[], failed=n, errors={"refused": n})

    res = search(refused)
    assert len(res.steps) == 1 and res.stopped == "unreachable"
    assert res.capacity is None and not res.found
    assert "refused" in res.steps[0].reason and "is the target up?" in res.verdict


def test_a_step_lasts_until_the_percentiles_tail_holds_enough_requests():
    assert step_duration(1000, 99.0) == pytest.approx(5.0)          # 5,000 requests
    assert step_duration(1000, 99.9) == pytest.approx(50.0)         # 50,000
    assert step_duration(100_000, 99.0) == 2.0                      # the floor
    assert step_duration(1000, 50.0, min_step=0.01) == pytest.approx(0.1)
    assert step_duration(1000, 10.0, tail_samples=20, min_step=0) == pytest.approx(0.2)
    res = search(Threshold(5000), slo="p99.9 < 10ms", start_rate=10_000, max_steps=1)
    assert res.steps[0].duration == pytest.approx(5.0)              # 50,000 at 10K/s


def test_the_result_is_immutable_and_its_json_reads_back():
    res = search(Threshold(5000))
    assert isinstance(res, CapacityResult)
    with pytest.raises(AttributeError):
        res.capacity = 1.0
    with pytest.raises(AttributeError):
        res.steps[0].passed = False
    data = json.loads(res.to_json())
    assert data["kind"] == "caxton_meter.capacity" and data["format"] == 1
    assert data["capacity"] == 5000 and data["limit"] == 5250 and data["stopped"] == "converged"
    assert [s["rate"] for s in data["steps"]] == [s.rate for s in res.steps]
    assert data["steps"][0]["slo_values"] == {"p(99)": pytest.approx(1 * MS, rel=1e-3)}


# --- argument checks ------------------------------------------------------------------------

def slow(seconds=0.002):
    def call():
        time.sleep(seconds)
    return call


@pytest.mark.parametrize("kwargs, message", [
    ({"slo": "max < 1s"}, "max cannot judge a step"),
    ({"slo": "p(100) < 1s"}, "extremes of a step"),
    ({"slo": "rss < 1GB"}, "does not sample memory"),
    ({"slo": []}, "slo is empty"),
    ({"slo": "p99 < 1ms", "start_rate": 2000, "max_rate": 1000}, "below start_rate"),
    ({"slo": "p99 < 1ms", "factor": 1.01}, "factor must be 1.1 or more"),
    ({"slo": "p99 < 1ms", "precision": "0%"}, "precision must be a fraction"),
    ({"slo": "p99 < 1ms", "budget": "1s", "start_rate": 100}, "would not fit in the budget"),
    ({"slo": "p99 < 1ms", "payload": b"x"}, "payload= is for a Target"),
    ({"slo": "p99 < 1ms", "agents": [1]}, "agents= is for a Router"),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, message):
    calls = []
    with pytest.raises(ArgumentError, match=message):
        find_capacity(lambda: calls.append(1), **kwargs)
    assert calls == []


def test_a_malformed_slo_points_at_the_fault():
    with pytest.raises(ThresholdExpressionError, match="unknown unit 'parsecs'"):
        find_capacity(slow(), slo="p99 < 10 parsecs")
    with pytest.raises(TypeError, match="must be a callable"):
        find_capacity(42, slo="p99 < 10ms")


# --- a callable whose capacity follows from its service time ---------------------------------

def test_a_slow_function_saturates_at_one_over_its_service_time():
    # open_loop_call makes one call at a time: a call that sleeps S seconds
    # (never less) cannot be made more than 1/S times a second, so no step
    # above 1/S can hold its rate within 1 %; below it the latency is S
    service = 0.002
    ceiling = 1 / service                                    # 500/s
    t0 = time.monotonic()
    res = find_capacity(slow(service), slo="p90 < 20ms", start_rate=200, precision=0.1,
                        min_step=0.25, tail_samples=20, budget=20, max_steps=12)
    assert time.monotonic() - t0 < 25
    assert res.found and res.stopped == "converged", res.verdict
    assert 0.6 * ceiling <= res.capacity <= ceiling / (1 - RATE_TOLERANCE), res.verdict
    assert res.limit > res.capacity
    passing = [s for s in res.steps if s.passed]
    assert all(s.p50 >= service * 1e9 for s in passing)     # a call takes S at least
    failing = [s for s in res.steps if not s.passed]
    assert failing and all(s.rate > 0.6 * ceiling for s in failing)
    # the knee: where the tail reached 2x its low-rate value; at the latest by
    # the first rising step that failed, whose queue grew through the step
    first_failure = min(s.rate for s in res.steps if s.phase == "rise" and not s.passed)
    assert res.knee is not None and res.steps[0].rate < res.knee <= first_failure


def test_a_target_object_is_set_up_once_and_torn_down_after_the_search():
    class Client:
        def __init__(self):
            self.events = []

        def setup(self):
            self.events.append("setup")

        def request(self, payload):
            assert payload == b"ping"

        def teardown(self):
            self.events.append("teardown")

    client = Client()
    res = find_capacity(client, slo="p50 < 50ms", payload=b"ping", start_rate=500,
                        max_rate=1000, min_step=0.5, tail_samples=10, budget=5)
    assert client.events == ["setup", "teardown"]
    assert res.found and [s.rate for s in res.steps] == [500, 1000]


def test_the_router_agents_are_a_target():
    router = cm.Router(keep_replies=False)
    echoes = router.spawn_native("echo", count=2)
    res = find_capacity(router, agents=echoes, slo="p99 < 50ms", payload=b"x" * 16,
                        start_rate=2000, max_rate=8000, min_step=0.3, tail_samples=10,
                        budget=5)
    assert res.found and res.capacity >= 2000
    assert [s.rate for s in res.steps][:1] == [2000]
    assert all(s.completed == s.requests for s in res.steps if s.passed)


# --- nginx -------------------------------------------------------------------------------------

@linux_only
def test_nginx_keeps_a_loose_slo_at_every_rate_of_a_short_search(nginx):
    t0 = time.monotonic()
    res = find_capacity(HttpTarget(nginx.url, connections=8, timeout=2), slo="p99 < 100ms",
                        start_rate=1000, max_rate=8000, min_step=0.25, tail_samples=10,
                        budget=8)
    assert time.monotonic() - t0 < 8 + 2 + 1                  # budget + a timeout's drain
    assert res.found and res.capacity >= 1000, res.verdict
    assert res.stopped in ("max_rate", "converged", "budget"), res.verdict
    for s in res.steps:
        if s.passed:
            assert s.achieved >= (1 - RATE_TOLERANCE) * s.rate
            assert s.dropped == 0 and s.failed == 0 and s.p99 < 100 * MS
            assert s.completed == s.requests and s.errors == ()
    assert res.steps[0].rate == 1000 and res.steps[0].phase == "rise"
    assert res.target.startswith("HttpTarget(") and nginx.url in res.target


@linux_only
def test_a_server_that_is_not_there_is_unreachable_at_the_first_step():
    target = HttpTarget(f"http://127.0.0.1:{free_port()}/", connections=2, timeout=1)
    res = find_capacity(target, slo="p99 < 10ms", start_rate=100, min_step=0.2,
                        tail_samples=1, budget=5)
    assert res.stopped == "unreachable" and len(res.steps) == 1 and not res.found
    assert "refused" in res.steps[0].reason


# --- the meter fixture ---------------------------------------------------------------------------

_METER_TESTS = """
import pytest
import caxton_meter as cm

URL = {url!r}

def test_http(meter):
    r = meter.load(cm.HttpTarget(URL, connections=2), rate=200, duration=0.25, name="get")
    assert isinstance(r, cm.NetworkResult) and r.completed == 50
    m = meter.measurement("get")
    assert m.count == 50 and m.errors == 0 and m.histogram.total_count == 50
    meter.check("p(99) < 1s", "error_rate == 0", name="get")
    missing = cm.HttpTarget(URL.replace("hello.txt", "missing"), connections=1)
    meter.load(missing, rate=100, duration=0.1, name="missing")
    assert meter.measurement("missing").errors == 10
    with pytest.raises(TypeError, match="not for a network target"):
        meter.load(cm.HttpTarget(URL), rate=1, duration=1, payload=b"x")

def test_capacity(meter):
    res = meter.capacity(cm.HttpTarget(URL, connections=4, timeout=1), slo="p99 < 100ms",
                         start_rate=500, max_rate=1000, min_step=0.25, tail_samples=5,
                         budget=5)
    assert res.found and res.capacity >= 500, res.verdict
    assert meter.measurement("capacity").throughput == res.capacity
    meter.check("throughput >= 500/s", name="capacity")
"""


@linux_only
def test_the_meter_fixture_loads_and_searches_an_http_target(pytester, nginx):
    pytester.makepyfile(test_net=_METER_TESTS.format(url=nginx.url))
    result = pytester.runpytest("--meter-save-baseline", "net")
    result.assert_outcomes(passed=2)
    from caxton_meter._baselines import BaselineStore
    run = BaselineStore(pytester.path / ".caxton_meter" / "baselines").history("net").runs[-1]
    get = run.scenario("test_net.py::test_http::get").results[0]
    assert get.metric("completed").value == 50 and get.metric("failed").value == 0
    assert "HTTP status classes: 2xx 50" in get.notes
    assert get.histogram("connect_time").total_count == 2
    assert get.config["target"] == "network target" and nginx.url in get.config["network_target"]
    missing = run.scenario("test_net.py::test_http::missing").results[0]
    assert "HTTP status classes: 4xx 10" in missing.notes
    assert "failures by kind: status 10" in missing.notes
    assert missing.metric("error_rate").value == 1.0
    searched = run.scenario("test_net.py::test_capacity::capacity").results[0]
    assert searched.metric("capacity").value >= 500
    assert searched.metric("capacity").direction is cm.Direction.HIGHER
    assert searched.metric("capacity_steps").value >= 2
    assert any(n.startswith("capacity ") for n in searched.notes)
    assert searched.config["slo"] == ["p99 < 100ms"]


def test_the_knee_is_the_last_crossing_so_one_noisy_step_below_does_not_mark_it():
    def step(rate, value):
        return CapacityStep(rate=rate, duration=1, achieved=rate, requests=1, completed=1,
                            failed=0, dropped=0, p50=None, p99=None, value=value,
                            slo_values=(), errors=(), passed=True, reason="", phase="rise")
    # 2x the value at 1000/s is 2; the step at 2000/s (3) is a hiccup
    steps = [step(r * 1000.0, v) for r, v in ((1, 1.0), (2, 3.0), (3, 1.2), (4, 1.5),
                                              (5, 5.0), (6, 10.0))]
    assert knee_of(steps) == pytest.approx(4000 + (2 - 1.5) / (5 - 1.5) * 1000)
    assert knee_of(steps[:4]) is None                  # the highest step is below 2x


def test_ctrl_c_ends_the_search_with_the_steps_so_far():
    calls = []

    def interrupted_at_the_third(rate, length, deadline):
        calls.append(rate)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_result(rate, length, latencies_ns=[MS] * 10)

    res = search(interrupted_at_the_third, tail_samples=1)
    assert res.stopped == "interrupted" and [s.rate for s in res.steps] == [1000, 2000]
    assert res.capacity == 2000 and "interrupted before the precision" in res.verdict


def test_coroutine_functions_and_async_targets_are_searched_on_the_asyncio_loop():
    import asyncio

    async def handle():
        await asyncio.sleep(0.001)

    res = find_capacity(handle, slo="p50 < 50ms", start_rate=200, max_rate=400,
                        min_step=0.3, tail_samples=10, budget=5, concurrency=20)
    assert res.found and [s.rate for s in res.steps] == [200, 400], res.verdict
    assert all(s.p50 >= 1 * MS for s in res.steps)

    class Client:
        def __init__(self):
            self.events = []

        async def setup(self):
            self.events.append("setup")

        async def request(self, payload):
            assert payload == b"ping"
            await asyncio.sleep(0)

        async def teardown(self):
            self.events.append("teardown")

    client = Client()
    res = find_capacity(client, slo="p50 < 50ms", payload=b"ping", start_rate=200,
                        max_rate=400, min_step=0.3, tail_samples=10, budget=5)
    assert res.found and len(res.steps) == 2
    assert client.events == ["setup", "teardown"] * 2          # around each step
