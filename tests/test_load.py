"""The compiled load loops: the open loop's schedule (k6's arrival-rate
semantics), coordinated-omission correction, dropped requests and intervals."""
import time

import pytest

from caxton_meter import Router
from caxton_meter._core import closed_loop, open_loop


def test_a_constant_rate_sends_exactly_the_planned_requests():
    r = Router(keep_replies=False)
    echoes = r.spawn_native("echo", count=4)
    res = open_loop(r, echoes, [(2000, 0.5)], interval=0.1)
    assert res.planned == res.requests == 1000          # 2000/s for 0.5 s
    assert res.completed == 1000 and res.failed == res.dropped == 0
    assert res.achieved_rate == pytest.approx(1000e9 / max(res.duration_ns, res.last_send_ns))
    assert res.achieved_rate == pytest.approx(2000, rel=0.05)
    assert res.latency.total_count == res.latency_uncorrected.total_count == 1000
    assert res.send_jitter.total_count == 1000
    # the intervals partition the run
    assert sum(iv.sent for iv in res.intervals) == 1000
    assert sum(iv.completed for iv in res.intervals) == 1000
    assert sum(iv.latency.total_count for iv in res.intervals) == 1000
    assert 4 <= len(res.intervals) <= 7
    assert all(a.end_ns == b.start_ns for a, b in zip(res.intervals, res.intervals[1:]))


def test_interval_histograms_are_kept_packed_and_lose_no_count():
    r = Router(keep_replies=False)
    echoes = r.spawn_native("echo", count=2)
    res = open_loop(r, echoes, [(5000, 0.4)], interval=0.05)
    merged = res.intervals[0].latency
    for iv in res.intervals[1:]:
        merged.add(iv.latency)
    # the intervals' histograms add up to the run's, bucket for bucket
    assert merged == res.latency
    for iv in res.intervals:
        h = iv.latency
        assert h.total_count == iv.completed
        assert h.counts_len == res.latency.counts_len      # the full layout comes back
        assert iv.packed_size < h.counts_len                # a byte per bucket or less
        assert iv.latency == h                              # rebuilt the same each time


def test_ramping_stages_follow_k6s_linear_rate():
    r = Router(keep_replies=False)
    sink = r.spawn_native("sink")
    # 0 -> 4000/s over 0.5 s (1000 arrivals), 0.25 s at 4000/s (1000), a jump
    # to 1000/s held 0.2 s (200)
    res = open_loop(r, [sink], [(4000, 0.5), (4000, 0.25), (1000, 0), (1000, 0.2)],
                    start_rate=0, one_way=True)
    assert res.planned == pytest.approx(2200, abs=2)
    assert res.requests == res.completed == res.planned
    firsts = [iv.sent for iv in res.intervals]
    assert sum(firsts) == res.requests


def test_requests_due_while_the_window_is_full_are_dropped_and_counted():
    r = Router(keep_replies=False)

    def slow(m):
        time.sleep(0.002)
        return m

    a = r.spawn_python(slow)
    res = open_loop(r, [a], [(2000, 0.3)], max_in_flight=1)
    assert res.planned == 600
    assert res.dropped > 0
    assert res.requests + res.dropped == res.planned
    assert res.completed == res.requests
    assert sum(iv.dropped for iv in res.intervals) == res.dropped


def test_coordinated_omission_is_measured_not_hidden():
    """A target that stalls for 100 ms once every 1000 requests, at 1000/s:
    about 10% of the requests are due while it stalls, their latencies
    spread evenly over 0-100 ms.  From intended send times the percentiles
    in that top 10% follow: p(100 - x) = 100 ms * (1 - x / 10%)."""
    r = Router(keep_replies=False)

    class Stalls:
        n = 0

        def handle(self, m):
            self.n += 1
            if self.n % 1000 == 500:
                time.sleep(0.1)
            return m

    agent = r.spawn_python(Stalls())
    res = open_loop(r, [agent], [(1000, 3.0)])
    assert res.completed == 3000 and res.dropped == 0
    ms = 1_000_000
    expected = {95.0: 50 * ms, 97.0: 70 * ms, 99.0: 90 * ms}
    for p, value in expected.items():
        assert abs(res.latency.value_at_percentile(p) - value) < 6 * ms, p
    assert res.latency.value_at_percentile(80) < 2 * ms
    # measured from the real sends, the stall shows in one request per stall
    assert res.latency_uncorrected.value_at_percentile(99) < 2 * ms
    # and a closed loop waits for each reply: the stall hides just the same
    closed = Router(keep_replies=False)
    c_agent = closed.spawn_python(Stalls())
    closed_loop(closed, [c_agent], 3000, window=1)
    assert closed.round_trip.value_at_percentile(99) < 2 * ms


@pytest.mark.parametrize("stages, kwargs, message", [
    ([], {}, "the stages last no time"),
    ([(100, 0)], {}, "the stages last no time"),
    ([(-1, 1)], {}, "stage 0's rate must be >= 0"),
    ([(10, float("nan"))], {}, "stage 0's duration must be >= 0"),
    ([(10, 1), "x"], {}, "stage 1 must be \\(rate per second, duration in seconds\\)"),
    ([(10, 1)], {"max_in_flight": 0}, "max_in_flight must be >= 1"),
    ([(10, 1)], {"interval": 0}, "interval must be > 0 seconds"),
    ([(10, 1)], {"start_rate": -5}, "start_rate must be >= 0"),
])
def test_open_loop_bad_input(stages, kwargs, message):
    r = Router()
    e = r.spawn_native("echo")
    with pytest.raises(ValueError, match=message):
        open_loop(r, [e], stages, **kwargs)
    assert r.counts.sent == 0


def test_open_loop_refuses_what_it_cannot_drive():
    r = Router()
    with pytest.raises(ValueError, match="targets is empty"):
        open_loop(r, [], [(1, 1)])
    with pytest.raises(ValueError, match="target 3 is not a live agent"):
        open_loop(r, [3], [(1, 1)])
    with pytest.raises(TypeError, match="on_interval must be callable, got int"):
        open_loop(r, [r.spawn_native("echo")], [(1, 1)], on_interval=3)


# --- a Python callable as the target, and the schedule on its own --------------------------------

from caxton_meter._core import Schedule, open_loop_call  # noqa: E402


def test_open_loop_call_paces_counts_errors_and_corrects_for_stalls():
    calls = []

    def target(tag):
        calls.append(tag)
        if len(calls) % 50 == 0:
            raise KeyError("every 50th")
        if len(calls) == 101:
            time.sleep(0.05)          # one stall: the calls due meanwhile are late

    res = open_loop_call(target, [(1000, 0.5)], args=("t",), interval=0.1)
    assert res.planned == res.requests == len(calls) == 500 and calls[0] == "t"
    assert res.failed == 10 and res.errors == {"KeyError": 10}
    assert res.completed == 490 and res.dropped == 0 and not res.interrupted
    assert res.latency.total_count == res.latency_uncorrected.total_count == 490
    # ~50 calls were due during the 50 ms stall: from their intended starts,
    # the top of the distribution reaches tens of ms; from their real starts not
    assert res.latency.value_at_percentile(99) > 20_000_000
    assert res.latency_uncorrected.value_at_percentile(99) < 5_000_000
    assert sum(iv.sent for iv in res.intervals) == 500
    assert sum(iv.failed for iv in res.intervals) == 10


def test_open_loop_call_drops_what_is_too_late():
    def slow():
        time.sleep(0.01)

    res = open_loop_call(slow, [(1000, 0.2)], max_lateness=0.001)
    assert res.planned == 200
    assert res.dropped > 100 and res.requests + res.dropped == 200
    assert res.completed == res.requests


def test_open_loop_call_bad_input():
    with pytest.raises(TypeError, match="fn must be callable"):
        open_loop_call(42, [(1, 1)])
    with pytest.raises(ValueError, match="stage 0's rate must be >= 0"):
        open_loop_call(print, [(-1, 1)])
    with pytest.raises(ValueError, match="max_lateness must be >= 0"):
        open_loop_call(print, [(1, 1)], max_lateness=-1)


def test_schedule_gives_k6s_due_times():
    s = Schedule([(1000, 1.0)])
    assert [s.due_ns(n) for n in range(3)] == [0, 1_000_000, 2_000_000]
    assert s.due_ns(999) == 999_000_000 and s.due_ns(1000) is None
    ramp = Schedule([(2000, 1.0)], start_rate=0)        # 1000 arrivals, the n-th at sqrt(n/1000) s
    assert ramp.due_ns(250) == pytest.approx(500_000_000, rel=1e-6)
    assert ramp.due_ns(999) < 1_000_000_000 and ramp.due_ns(1000) is None
    with pytest.raises(ValueError, match="in order"):
        ramp.due_ns(10)
    assert s.duration_ns == 1_000_000_000


# --- deadlines and Ctrl-C: the partial result, nothing left in flight --------------------------------

import signal  # noqa: E402


def interrupt_after(seconds):
    """A SIGALRM that raises KeyboardInterrupt, as Ctrl-C would."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def restore(previous):
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("workers", [0, 2])
def test_closed_loop_stops_at_its_deadline_or_on_ctrl_c(workers):
    r = Router(keep_replies=False, workers=workers)
    echoes = r.spawn_native("compute", units=2000, count=4)
    res = closed_loop(r, echoes, 10**9, window=16, deadline=0.2)
    assert res.deadline_reached and not res.interrupted
    assert 0 < res.requests < 10**9 and res.completed == res.requests
    assert r.counts.in_flight == 0
    previous = interrupt_after(0.2)
    try:
        res = closed_loop(r, echoes, 10**9, window=16)
    finally:
        restore(previous)
    assert res.interrupted and not res.deadline_reached
    assert 0 < res.requests < 10**9
    assert res.completed == res.requests, (res.completed, res.failed, r.counts,
                                           r.dead_letters()[:3])
    assert r.counts.in_flight == 0


def test_open_loops_stop_at_their_deadline_or_on_ctrl_c():
    r = Router(keep_replies=False)
    sinks = r.spawn_native("sink", count=2)
    res = open_loop(r, sinks, [(1000, 60)], one_way=True, deadline=0.2)
    assert 150 <= res.planned <= 260 and res.completed == res.requests
    assert res.deadline_reached and not res.interrupted
    # the rates are over the part of the schedule that ran, not its 60 s
    assert 0.2e9 <= res.duration_ns < 0.3e9
    assert res.achieved_rate == pytest.approx(1000, rel=0.1)
    previous = interrupt_after(0.2)
    try:
        res = open_loop(r, sinks, [(1000, 60)], one_way=True)
    finally:
        restore(previous)
    assert res.interrupted and res.planned < 60_000 and res.completed == res.requests
    assert not res.deadline_reached and res.duration_ns < 10e9
    assert r.counts.in_flight == 0
    res = open_loop_call(lambda: None, [(1000, 60)], deadline=0.2)
    assert 150 <= res.planned <= 260 and not res.interrupted
    assert res.deadline_reached and res.achieved_rate == pytest.approx(1000, rel=0.1)
    with pytest.raises(ValueError, match="deadline must be > 0 seconds"):
        open_loop_call(lambda: None, [(1, 1)], deadline=0)
    with pytest.raises(ValueError, match="deadline must be > 0 seconds"):
        closed_loop(r, sinks, 10, deadline=-1)


def test_a_threaded_closed_loop_interrupted_many_times_returns_only_finished_drives():
    # Ctrl-C lands at varying points of the drivers' start-up and run; each
    # time the result must be whole: every request sent has ended.  (Thread
    # .join() alone is not reliable after an interrupt: the loop waits for
    # each driver's own "done" flag.)
    for delay in (0.0005, 0.002, 0.01, 0.05):
        r = Router(keep_replies=False, workers=2)
        echoes = r.spawn_native("compute", units=2000, count=4)
        previous = interrupt_after(delay)
        try:
            try:
                res = closed_loop(r, echoes, 10**9, window=16)
            except KeyboardInterrupt:
                continue          # landed before the loop began: nothing was sent
        finally:
            restore(previous)
        assert res.interrupted
        assert res.completed + res.failed == res.requests
        assert r.counts.in_flight == 0


# --- the open loop over a router with worker threads --------------------------------------

@pytest.mark.parametrize("one_way, kind", [(False, "echo"), (True, "sink")])
def test_a_threaded_open_loop_counts_every_request_and_its_latency(one_way, kind):
    r = Router(keep_replies=False, workers=2)
    agents = r.spawn_native(kind, count=6)            # spread over both workers
    res = open_loop(r, agents, [(20_000, 0.3)], one_way=one_way, interval=0.05)
    assert res.planned == res.requests == 6000 and res.dropped == 0
    assert res.completed == 6000 and res.failed == 0
    # every completion's latency, from whichever thread recorded it
    assert res.latency.total_count == 6000
    assert sum(iv.completed for iv in res.intervals) == 6000
    assert sum(iv.latency.total_count for iv in res.intervals) == 6000
    c = r.counts
    assert c.in_flight == 0 and c.sent == c.delivered


def test_a_threaded_open_loop_drives_python_and_failing_native_agents_together():
    r = Router(keep_replies=False, workers=1)
    flaky = r.spawn_native("fail-every-n", every=10, count=2)    # on the worker
    python = r.spawn_python(lambda m: m.content)                  # on this thread
    res = open_loop(r, list(flaky) + [python], [(15_000, 0.2)], interval=0.05)
    assert res.requests == 3000
    assert res.failed == 200                   # every 10th of the 2000 sent to flaky
    assert res.completed == 2800 and res.latency.total_count == 2800
    assert sum(iv.failed for iv in res.intervals) == 200
    assert r.counts.in_flight == 0


def test_a_threaded_open_loop_stops_at_its_deadline_or_on_ctrl_c():
    r = Router(keep_replies=False, workers=2)
    echoes = r.spawn_native("echo", count=4)
    res = open_loop(r, echoes, [(2000, 60)], deadline=0.2)
    assert res.deadline_reached and 300 <= res.planned <= 520
    assert res.completed == res.requests and r.counts.in_flight == 0
    previous = interrupt_after(0.2)
    try:
        res = open_loop(r, echoes, [(2000, 60)])
    finally:
        restore(previous)
    assert res.interrupted and res.planned < 120_000
    assert res.completed == res.requests and r.counts.in_flight == 0


def test_every_driver_records_in_the_load_loops_histogram_layout():
    from caxton_meter._core import latency_histogram
    h = latency_histogram()
    res = open_loop_call(lambda: None, [(1000, 0.02)])
    for other in (res.latency, res.latency_uncorrected, res.send_jitter):
        assert (other.lowest_discernible_value, other.highest_trackable_value,
                other.significant_figures) == (h.lowest_discernible_value,
                                               h.highest_trackable_value, h.significant_figures)
    h.add(res.latency)                       # merges without re-bucketing
    assert h == res.latency


# -- the one load result, made from Python --------------------------------------------------

def _histogram(*values):
    from caxton_meter._core import latency_histogram

    h = latency_histogram()
    for v in values:
        h.record(v)
    return h


def _result(**changes):
    from caxton_meter._core import OpenLoopResult

    fields = dict(requests=3, completed=2, failed=1, dropped=1, planned=4, elapsed_ns=10,
                  duration_ns=8, latency=_histogram(5, 7), latency_uncorrected=_histogram(4, 6),
                  send_jitter=_histogram(1, 1, 1), errors={"ValueError": 1})
    fields.update(changes)
    return OpenLoopResult(**fields)


def test_a_load_result_is_made_from_python_with_its_fields_checked():
    from caxton_meter._core import LoadInterval

    iv = LoadInterval(start_ns=100, end_ns=110, sent=3, completed=2, failed=1, dropped=1,
                      latency=_histogram(5, 7))
    assert (iv.sent, iv.completed, iv.failed, iv.dropped) == (3, 2, 1, 1)
    assert iv.latency == _histogram(5, 7)
    res = _result(intervals=[iv])
    assert res.planned == res.requests + res.dropped
    assert res.achieved_rate == pytest.approx(3 / 8e-9)
    assert res.intended_rate == pytest.approx(4 / 8e-9)
    assert res.parts == () and res.source == "" and res.intervals == (iv,)
    assert not res.interrupted and not res.deadline_reached
    with pytest.raises(AttributeError):
        res.requests = 0                         # immutable


@pytest.mark.parametrize("change, error, message", [
    ({"requests": True}, TypeError, "OpenLoopResult: requests must be an int >= 0, got bool True"),
    ({"failed": 1.0}, TypeError, "OpenLoopResult: failed must be an int >= 0, got float 1.0"),
    ({"dropped": -1}, ValueError, "OpenLoopResult: dropped must be >= 0, got -1"),
    ({"planned": 5}, ValueError, r"planned \(5\) must be requests \+ dropped \(3 \+ 1\)"),
    ({"latency": None}, TypeError, "OpenLoopResult: latency must be a Histogram, got NoneType"),
    ({"intervals": [1]}, TypeError, r"intervals\[0\] must be a LoadInterval, got int"),
    ({"errors": {"KeyError": 2}}, ValueError, r"errors count 2 failures, more than failed \(1\)"),
    ({"errors": {3: 1}}, TypeError, "errors' keys must be exception type names"),
    ({"interrupted": 1}, TypeError, "OpenLoopResult: interrupted must be a bool, got int 1"),
    ({"source": None}, TypeError, "OpenLoopResult: source must be a str, got NoneType"),
    ({"parts": ["x"]}, TypeError, r"parts\[0\] must be an OpenLoopResult, got str"),
])
def test_a_load_result_refuses_a_wrong_field_naming_it(change, error, message):
    with pytest.raises(error, match=message):
        _result(**change)


def test_a_load_interval_refuses_a_wrong_field_naming_it():
    from caxton_meter._core import LoadInterval

    fields = dict(start_ns=10, end_ns=20, sent=1, completed=1, failed=0, dropped=0,
                  latency=_histogram(3))
    with pytest.raises(ValueError, match=r"end_ns \(5\) is before start_ns \(10\)"):
        LoadInterval(**{**fields, "end_ns": 5})
    with pytest.raises(TypeError, match="LoadInterval: sent must be an int >= 0, got str '1'"):
        LoadInterval(**{**fields, "sent": "1"})
    with pytest.raises(TypeError, match="LoadInterval: latency must be a Histogram, got list"):
        LoadInterval(**{**fields, "latency": [3]})


def test_results_merge_bucket_for_bucket_and_keep_their_parts():
    from caxton_meter._core import LoadInterval, OpenLoopResult

    def part(source, values, start):
        ivs = [LoadInterval(start_ns=start + 10 * k, end_ns=start + 10 * (k + 1), sent=1,
                            completed=1, failed=0, dropped=0, latency=_histogram(v))
               for k, v in enumerate(values)]
        return OpenLoopResult(requests=len(values), completed=len(values), failed=0, dropped=0,
                              planned=len(values), elapsed_ns=50, duration_ns=40,
                              latency=_histogram(*values), latency_uncorrected=_histogram(*values),
                              send_jitter=_histogram(1), intervals=ivs, source=source)

    a, b = part("a", [5, 7, 9], 100), part("b", [6, 1000], 103)
    merged = OpenLoopResult.merge([a, b], source="two")
    assert merged.parts == (a, b) and [p.source for p in merged.parts] == ["a", "b"]
    assert merged.source == "two" and merged.requests == merged.planned == 5
    assert merged.latency == _histogram(5, 7, 9, 6, 1000)
    assert merged.achieved_rate == pytest.approx(a.achieved_rate + b.achieved_rate)
    # the k-th intervals are added; the longer part's last stands alone
    assert [iv.sent for iv in merged.intervals] == [2, 2, 1]
    assert merged.intervals[0].latency == _histogram(5, 6)
    assert (merged.intervals[1].start_ns, merged.intervals[1].end_ns) == (110, 123)
    with pytest.raises(ValueError, match=r"requests \(5\) must be the parts' sum \(3\)"):
        _result(requests=5, planned=6, completed=5, parts=[a])
    with pytest.raises(ValueError, match="no results to merge"):
        OpenLoopResult.merge([])


def test_a_load_result_and_its_intervals_survive_pickling():
    import pickle

    from caxton_meter._core import open_loop_call

    res = open_loop_call(int, [(1000, 0.02)], interval=0.01)
    back = pickle.loads(pickle.dumps(res))
    for name in ("requests", "completed", "failed", "dropped", "planned", "elapsed_ns",
                 "duration_ns", "errors", "interrupted", "deadline_reached", "parts", "source",
                 "latency", "latency_uncorrected", "send_jitter"):
        assert getattr(back, name) == getattr(res, name), name
    assert [iv.latency for iv in back.intervals] == [iv.latency for iv in res.intervals]


def test_record_clamped_counts_what_is_outside_the_range():
    from caxton_meter._core import latency_histogram, record_clamped

    h = latency_histogram()
    record_clamped(h, -3)                      # below zero: recorded as 0
    record_clamped(h, 10**30, 2)               # beyond the range (and 64 bits): overflow
    record_clamped(h, 42, 3)
    assert h.total_count == 4 and h.overflow_count == 2
    assert h.min == 0 and h.max == h.highest_equivalent_value(42)
    with pytest.raises(TypeError, match="record_clamped: value must be an int"):
        record_clamped(h, 1.5)
    with pytest.raises(ValueError, match="record_clamped: count must be >= 1, got 0"):
        record_clamped(h, 1, 0)

# --- one way in and out of a run: run() and every load loop ---------------------------------------

@pytest.mark.parametrize("loop", ["closed_loop", "open_loop"])
def test_an_agent_cannot_start_a_load_loop_on_its_own_router(loop):
    r = Router(keep_replies=False)
    echo = r.spawn_native("echo")
    refusals = []

    def starter(m):
        try:
            if loop == "closed_loop":
                closed_loop(r, [echo], 10)
            else:
                open_loop(r, [echo], [(1000, 0.01)])
        except RuntimeError as e:           # asserted outside: a failure in here would be a fault
            refusals.append(str(e))

    a = r.spawn_python(starter)
    r.send(a, b"go")
    r.run()
    assert refusals == [f"{loop}: the router is already running (an agent cannot call {loop})"]
    assert r.agent(echo).handled == 0 and r.counts.in_flight == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_a_load_loop_that_ends_in_an_error_leaves_the_router_ready(workers):
    r = Router(workers=workers)
    echoes = r.spawn_native("echo", count=4)

    def stop_at_the_first_interval(interval):
        raise LookupError("enough")

    with pytest.raises(LookupError, match="enough"):
        open_loop(r, echoes, [(5000, 10)], interval=0.02, on_interval=stop_at_the_first_interval)
    # the workers stopped and what they held waits in the mailboxes: the
    # router runs, spawns and drives again as if nothing had happened
    r.run()
    while r.receive() is not None:               # the replies of what was in flight
        pass
    assert r.counts.in_flight == 0
    more = r.spawn_native("echo")
    assert closed_loop(r, list(echoes) + [more], 500, window=20).completed == 500
    r.send(more, b"kept")
    r.run()
    assert r.receive().content == b"kept"        # replies are kept again outside a load loop


def test_a_closed_loop_with_workers_drives_some_shards_and_runs_the_others():
    r = Router(keep_replies=False, workers=2)
    echo = r.spawn_native("echo")                      # on worker 1, which no loop drives
    forward = r.spawn_native("forward", target=echo)   # on worker 2, driven
    res = closed_loop(r, [forward], 2000, window=50)
    # every reply came from the echo: worker 1's thread ran it
    assert res.completed == 2000 and res.failed == 0
    assert r.agent(echo).handled == 2000 and r.counts.in_flight == 0
    assert res.messages == 6000                        # request, forward, reply


# -- a loop that cannot keep up says so -----------------------------------------------------

def test_a_deadline_holds_at_any_rate_and_every_arrival_is_counted():
    r = Router(keep_replies=False)
    a = r.spawn_native("echo")
    started = time.monotonic()
    res = open_loop(r, [a], [(1e9, 30.0)], max_in_flight=8, deadline=0.3)
    assert time.monotonic() - started < 5           # not the 93 s of counting one by one
    assert res.deadline_reached and res.planned == res.requests + res.dropped
    # every arrival due before the stop was sent or dropped: about 1e9/s x 0.3 s
    assert res.planned == pytest.approx(1e9 * res.duration_ns / 1e9, rel=0.01)
    assert not res.kept_schedule and "fell behind" in res.schedule_note()
    # without a deadline a short schedule at the top rate ends, every arrival counted
    res = open_loop(r, [a], [(1e9, 0.05)], max_in_flight=8)
    assert abs(res.planned - 50_000_000) <= 1 and res.requests + res.dropped == res.planned


def test_a_rate_beyond_one_arrival_per_nanosecond_is_refused():
    r = Router(keep_replies=False)
    a = r.spawn_native("echo")
    with pytest.raises(ValueError, match=r"rate 2e\+09/s cannot be scheduled: arrivals are "
                                         r"timed in nanoseconds, at most 1e\+09/s"):
        open_loop(r, [a], [(2e9, 1.0)])
    from caxton_meter import drive

    class Quiet:
        def request(self, payload):
            return None

    with pytest.raises(ValueError, match="drive: rate '2G/s' cannot be scheduled"):
        drive(Quiet(), rate="2G/s", duration=1)


def test_a_loop_that_falls_behind_reports_the_rate_it_achieved():
    def slow():
        time.sleep(0.001)                  # at most ~1000 calls a second, one at a time

    res = open_loop_call(slow, [(3000, 0.2)])
    assert res.planned == res.requests == 600 and res.dropped == 0
    assert res.last_send_ns > res.duration_ns and res.behind_ns > 0
    # sent over the time it took, not over the schedule's 0.2 s
    span = max(res.duration_ns, res.last_send_ns) / 1e9
    assert res.achieved_rate == pytest.approx(600 / span)
    assert res.achieved_rate < 0.6 * res.intended_rate
    assert not res.kept_schedule
    note = res.schedule_note()
    assert note.startswith("the load loop fell behind its schedule: ")
    assert "after the schedule's end" in note and "send lateness p50 " in note
    # a loop that keeps its schedule says nothing: kept means nothing dropped
    # and the last send within 1 % (1 ms at least) of the end -- a host that
    # stalls the process longer at the very end makes it false, and says so
    ok = open_loop_call(lambda: None, [(200, 1.0)])
    assert ok.kept_schedule == (ok.dropped == 0 and ok.behind_ns <= 10_000_000)
    assert (ok.schedule_note() is None) == ok.kept_schedule
    assert ok.achieved_rate == pytest.approx(ok.intended_rate, rel=0.05)


def test_the_async_loop_counts_a_backlog_and_its_sends():
    import asyncio

    from caxton_meter._aioload import open_loop_async

    async def stuck():
        await asyncio.sleep(0.3)

    res = asyncio.run(open_loop_async(stuck, [(1e6, 0.2)], concurrency=2, deadline=0.2))
    assert res.requests == 2 and res.planned == res.requests + res.dropped
    assert res.planned == pytest.approx(1e6 * res.duration_ns / 1e9, rel=0.02)
    assert res.last_send_ns < 50_000_000 and not res.kept_schedule
