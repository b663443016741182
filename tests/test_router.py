"""The agent router: native and Python agents end to end, capabilities,
backpressure, supervision, dead letters and the conservation of counts."""
import pytest

from caxton_meter._core import (
    PERFORMATIVES,
    BackpressureError,
    Message,
    Router,
    RoutingError,
    closed_loop,
    compute_reference,
)


def conserved(r):
    c = r.counts
    assert c.sent == c.delivered + c.dead_lettered + c.rejected + c.in_flight
    return c


# --- native agents ---------------------------------------------------------------------

def test_echo_replies_to_the_sender_with_the_content():
    r = Router()
    echo = r.spawn_native("echo")
    mid = r.send(echo, b"ping", conversation_id=7, reply_with=99)
    r.run()
    reply = r.receive()
    assert reply.content == b"ping" and bytes(memoryview(reply)) == b"ping"
    assert (reply.sender, reply.receiver, reply.performative) == (echo, 0, "inform")
    assert (reply.conversation_id, reply.in_reply_to) == (7, 99)
    assert reply.id != mid and reply.origin_ns > 0
    assert r.receive() is None
    c = conserved(r)
    assert (c.sent, c.delivered, c.in_flight) == (2, 2, 0)
    assert r.round_trip.total_count == 1 and r.queue_time.total_count == 1
    assert r.request(echo, b"x").in_reply_to == mid + 2      # in_reply_to defaults to the id


def test_sink_consumes_without_a_reply():
    r = Router()
    sink = r.spawn_native("sink")
    for _ in range(5):
        r.send(sink, b"data")
    assert r.counts.in_flight == 5
    assert r.run() == 5
    assert r.receive() is None
    c = conserved(r)
    assert (c.sent, c.delivered) == (5, 5)
    assert r.agent(sink).handled == 5 and r.delivery.total_count == 5


def test_forward_relays_and_the_reply_goes_to_the_origin():
    r = Router()
    echo = r.spawn_native("echo")
    fwd = r.spawn_native("forward", target=echo)
    fwd2 = r.spawn_native("forward", target=fwd)
    reply = r.request(fwd2, b"hop")
    assert reply.content == b"hop" and reply.sender == echo
    c = conserved(r)
    assert (c.sent, c.delivered) == (4, 4)        # client->fwd2->fwd->echo, echo->client


def test_compute_does_the_reference_work():
    r = Router()
    comp = r.spawn_native("compute", units=5000)
    assert r.request(comp, b"seed-1").content == compute_reference(b"seed-1", 5000)
    assert compute_reference(b"seed-1", 5000) != compute_reference(b"seed-2", 5000)
    assert compute_reference(b"seed-1", 5000) != compute_reference(b"seed-1", 5001)
    assert len(compute_reference(b"", 0)) == 8


def test_fail_every_n_faults_restarts_and_dead_letters():
    r = Router()
    f = r.spawn_native("fail-every-n", every=3)
    for i in range(9):
        r.send(f, bytes([i]))
    r.run()
    replies = []
    while (m := r.receive()) is not None:
        replies.append(m.content[0])
    assert replies == [0, 1, 3, 4, 6, 7]
    dead = r.dead_letters()
    assert [d.message.content[0] for d in dead] == [2, 5, 8]
    assert all(d.reason == f"agent fault: fail-every-n agent {f} faulted" for d in dead)
    info = r.agent(f)
    assert (info.faults, info.restarts, info.state) == (3, 3, "ready")
    assert r.recovery_time.total_count == 3
    c = conserved(r)
    assert (c.dead_lettered, c.restarts) == (3, 3)


def test_counts_add_up_exactly_under_faults_over_a_million_messages():
    r = Router(keep_replies=False)
    agents = r.spawn_native("fail-every-n", every=7, count=10)
    res = closed_loop(r, agents, 1_000_000, window=500)
    c = conserved(r)
    assert c.in_flight == 0 and c.rejected == 0
    # each agent handles 100,000: every 7th faults
    assert c.dead_lettered == 10 * (100_000 // 7) == len(r.dead_letters())
    assert res.requests == 1_000_000
    assert res.failed == c.dead_lettered
    assert res.completed == 1_000_000 - c.dead_lettered
    assert c.sent == 1_000_000 + res.completed
    assert r.round_trip.total_count == res.completed
    assert sum(r.agent(a).faults for a in agents) == c.dead_lettered


# --- Python agents ---------------------------------------------------------------------

def test_python_callable_and_handle_object():
    r = Router()
    upper = r.spawn_python(lambda m: m.content.upper())

    class Counter:
        def __init__(self):
            self.n = 0

        def handle(self, m):
            self.n += 1
            return str(self.n).encode()

    counter = Counter()
    c = r.spawn_python(counter)
    assert r.request(upper, b"abc").content == b"ABC"
    assert r.request(c, b"").content == b"1"
    assert r.request(c, b"").content == b"2"
    assert counter.n == 2


def test_python_agent_sees_every_field_and_reads_without_copying():
    seen = []

    def agent(m):
        seen.append((m.id, m.performative, m.sender, m.receiver, m.conversation_id, m.reply_with,
                     bytes(memoryview(m)), len(m)))
        return m            # replying with the message shares its content

    r = Router()
    a = r.spawn_python(agent)
    mid = r.send(a, b"zero-copy", performative="query-ref", conversation_id=5, reply_with=6)
    r.run()
    assert seen == [(mid, "query-ref", 0, a, 5, 6, b"zero-copy", 9)]
    reply = r.receive()
    assert reply.content == b"zero-copy"
    with pytest.raises(TypeError, match="read-only"):
        memoryview(reply)[0:1] = b"x"        # content is shared: never writable
    assert len(Message.__new__(Message)) == 0


def test_python_fault_is_dead_lettered_and_a_class_agent_gets_a_fresh_instance():
    class Fragile:
        instances = 0

        def __init__(self):
            Fragile.instances += 1
            self.seen = 0

        def handle(self, m):
            self.seen += 1
            if m.content == b"boom":
                raise ValueError("cannot handle boom")
            return str(self.seen).encode()

    r = Router()
    a = r.spawn_python(Fragile)
    assert Fragile.instances == 1
    assert r.request(a, b"x").content == b"1"
    assert r.request(a, b"x").content == b"2"
    assert r.request(a, b"boom") is None
    assert Fragile.instances == 2
    assert r.request(a, b"x").content == b"1"     # a fresh instance
    [dead] = r.dead_letters()
    assert dead.reason == "agent fault: ValueError: cannot handle boom"
    assert dead.message.content == b"boom"
    assert r.agent(a).restarts == 1 and r.recovery_time.total_count == 1
    conserved(r)


def test_an_instance_agent_is_kept_and_told_to_restart():
    class Agent:
        def __init__(self):
            self.restarts = 0

        def handle(self, m):
            raise RuntimeError("always")

        def restart(self):
            self.restarts += 1

    agent = Agent()
    r = Router()
    a = r.spawn_python(agent)
    r.send(a, b"1")
    r.send(a, b"2")
    r.run()
    assert agent.restarts == 2 and r.agent(a).faults == 2
    assert len(r.dead_letters()) == 2


@pytest.mark.parametrize("reply, what", [(42, "int"), ("text", "str"), ([b"x"], "list")])
def test_a_wrong_reply_type_is_dead_lettered_with_the_reason(reply, what):
    r = Router()
    a = r.spawn_python(lambda m: reply)
    assert r.request(a, b"q") is None
    [dead] = r.dead_letters()
    assert dead.reason.startswith(f"bad reply: python agent {a} returned {what}; expected bytes-like")
    assert dead.message.content == b"q"
    c = conserved(r)
    assert c.dead_lettered == 1 and c.delivered == 0


def test_python_agents_may_send_from_their_handler():
    r = Router()
    sink = r.spawn_native("sink")

    refusals = []

    def relay(m):
        r.send(sink, m.content + b"!")
        try:
            r.run()
        except RuntimeError as e:       # asserted outside: a failure in here would be a fault
            refusals.append(str(e))

    a = r.spawn_python(relay)
    r.send(a, b"hi")
    r.run()
    assert r.agent(sink).handled == 1
    assert refusals == ["run: the router is already running (an agent cannot call run)"]
    assert r.dead_letters() == []
    conserved(r)


def test_spawn_python_rejects_what_cannot_handle_messages():
    r = Router()
    with pytest.raises(TypeError, match="callable or have handle"):
        r.spawn_python(42)

    class Broken:
        def __init__(self):
            raise OSError("no")

    with pytest.raises(OSError):
        r.spawn_python(Broken)
    assert r.agent_count == 0


# --- capabilities -------------------------------------------------------------------------

def test_capability_strategies():
    r = Router()
    a, b, c = r.spawn_native("echo", count=3, capabilities=["echo", "any"])
    r.spawn_native("sink", capabilities="any")
    assert r.capability("echo") == [a, b, c]
    assert r.request("echo", b"s").sender == a                  # single: the first
    senders = []
    for _ in range(6):
        senders.append(r.request("echo", b"", ).sender)
    assert senders == [a] * 6
    rr = []
    for _ in range(6):
        r.send("echo", b"", strategy="round_robin")
        r.run()
        rr.append(r.receive().sender)
    assert rr == [a, b, c, a, b, c]
    ids = r.send("echo", b"all", strategy="broadcast")
    assert len(ids) == 3
    r.run()
    assert sorted(r.receive().sender for _ in range(3)) == [a, b, c]
    r.stop(a)
    assert r.capability("echo") == [b, c]
    assert r.request("echo", b"").sender == b
    with pytest.raises(RoutingError, match="no agent has capability 'nope'; known: any, echo"):
        r.send("nope")
    with pytest.raises(ValueError, match="unknown strategy 'random'"):
        r.send("echo", strategy="random")
    r.stop([b, c])
    with pytest.raises(RoutingError, match="every agent with capability 'echo' is stopped"):
        r.send("echo")
    with pytest.raises(ValueError, match="capability must be a non-empty str"):
        r.spawn_native("echo", capabilities=[""])


# --- backpressure ---------------------------------------------------------------------------

def test_a_full_mailbox_rejects_and_counts():
    r = Router(mailbox_capacity=4)
    sink = r.spawn_native("sink")
    ids = [r.send(sink, b"x") for _ in range(6)]
    assert ids[:4] == [1, 2, 3, 4] and ids[4:] == [None, None]
    c = conserved(r)
    assert (c.rejected, c.in_flight) == (2, 4)
    assert [d.reason for d in r.dead_letters()] == ["mailbox full", "mailbox full"]
    r.run()
    assert r.send(sink, b"x") is not None


def test_a_full_mailbox_raises_when_configured():
    r = Router(mailbox_capacity=2, on_full="raise")
    sink = r.spawn_native("sink")
    r.send(sink)
    r.send(sink)
    with pytest.raises(BackpressureError, match="agent 1's mailbox is full \\(2 messages\\)"):
        r.send(sink)
    c = conserved(r)
    assert (c.rejected, c.in_flight) == (1, 2)


def test_an_agents_send_into_a_full_mailbox_is_kept_as_rejected():
    r = Router(mailbox_capacity=2, batch_size=8)
    sink = r.spawn_native("sink")
    fwd = r.spawn_native("forward", target=sink)
    for _ in range(2):
        r.send(fwd, b"m")
    r.run(max_messages=2)            # the forwards fill the sink's mailbox
    for _ in range(2):
        r.send(fwd, b"m")
    r.run()
    c = conserved(r)
    assert c.in_flight == 0
    assert c.rejected == len([d for d in r.dead_letters() if d.reason == "mailbox full"])
    assert r.agent(sink).handled + c.rejected == 4


def test_mailboxes_grow_on_demand():
    r = Router(mailbox_capacity=1000)
    sink = r.spawn_native("sink")
    assert r.agent(sink).mailbox_allocated == 0
    for _ in range(100):
        r.send(sink)
    info = r.agent(sink)
    assert info.mailbox == 100 and 100 <= info.mailbox_allocated <= 1000


# --- bad input ---------------------------------------------------------------------------------

def test_unknown_receiver_is_dead_lettered_or_raises():
    r = Router()
    r.send(42, b"lost?")
    [dead] = r.dead_letters()
    assert dead.reason == "unknown receiver" and dead.message.receiver == 42
    conserved(r)
    strict = Router(on_unknown="raise")
    with pytest.raises(RoutingError, match="no live agent 42"):
        strict.send(42)
    assert strict.counts.sent == 0


def test_bad_sends():
    r = Router(max_content=8)
    echo = r.spawn_native("echo")
    with pytest.raises(ValueError, match="unknown performative 'shout'; expected one of request, inform"):
        r.send(echo, b"x", performative="shout")
    with pytest.raises(RoutingError, match="content of 9 bytes is larger than max_content 8"):
        r.send(echo, b"123456789")
    with pytest.raises(TypeError, match="content must be bytes-like, got str"):
        r.send(echo, "text")
    with pytest.raises(TypeError, match="got float"):
        r.send(echo, 1.5)
    with pytest.raises(TypeError, match="agent id \\(int\\) or a capability"):
        r.send(1.0, b"")
    assert r.counts.sent == 0
    assert set(PERFORMATIVES) >= {"request", "inform", "query-if", "not-understood"}


def test_a_reply_larger_than_max_content_is_dead_lettered():
    r = Router(max_content=4)
    a = r.spawn_python(lambda m: b"far too long")
    assert r.request(a, b"q") is None
    [dead] = r.dead_letters()
    assert dead.reason == "content too large" and dead.message.sender == a
    conserved(r)


def test_stopping_an_agent_dead_letters_its_mailbox():
    r = Router()
    sink = r.spawn_native("sink")
    for _ in range(3):
        r.send(sink, b"pending")
    r.stop(sink)
    r.send(sink, b"late")
    dead = r.dead_letters()
    assert [d.reason for d in dead] == ["receiver stopped"] * 4
    c = conserved(r)
    assert (c.dead_lettered, c.in_flight) == (4, 0)
    assert r.agent(sink).state == "stopped"
    with pytest.raises(ValueError, match="no agent 9"):
        r.stop(9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="teleport"), "unknown kind 'teleport'; expected one of echo, sink, forward"),
    (dict(kind="echo", count=0), "count must be >= 1, got 0"),
    (dict(kind="compute", units=-1), "units must be >= 0"),
    (dict(kind="forward"), "needs target="),
    (dict(kind="forward", target=5), "forward target 5 is not a live agent"),
    (dict(kind="fail-every-n"), "needs every="),
    (dict(kind="fail-every-n", every=0), "every must be >= 1"),
])
def test_bad_spawns(kwargs, message):
    r = Router()
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        r.spawn_native(kind, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mailbox_capacity=0), "mailbox_capacity must be within"),
    (dict(on_full="drop"), "on_full must be 'reject' or 'raise'"),
    (dict(on_unknown="ignore"), "on_unknown must be 'dead_letter' or 'raise'"),
    (dict(max_content=-1), "max_content must be >= 0"),
    (dict(batch_size=0), "batch_size must be within"),
])
def test_bad_router_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Router(**kwargs)


# --- the closed loop -------------------------------------------------------------------------------

def test_closed_loop_request_response_and_one_way():
    r = Router(keep_replies=False)
    echoes = r.spawn_native("echo", count=4)
    res = closed_loop(r, echoes, 10_000, window=64, content=b"x" * 100)
    assert (res.requests, res.completed, res.messages) == (10_000, 10_000, 20_000)
    assert res.elapsed_ns > 0 and res.messages_per_second > 0
    assert r.round_trip.total_count == 10_000
    assert r.receive() is None
    sinks = r.spawn_native("sink", count=2)
    res = closed_loop(r, sinks, 5_000, window=10, one_way=True)
    assert (res.completed, res.messages) == (5_000, 5_000)
    assert sum(r.agent(s).handled for s in sinks) == 5_000
    conserved(r)


def test_closed_loop_bad_input():
    r = Router()
    e = r.spawn_native("echo")
    with pytest.raises(ValueError, match="total must be >= 1"):
        closed_loop(r, [e], 0)
    with pytest.raises(ValueError, match="window must be >= 1"):
        closed_loop(r, [e], 10, window=0)
    with pytest.raises(ValueError, match="targets is empty"):
        closed_loop(r, [], 10)
    with pytest.raises(ValueError, match="target 7 is not a live agent"):
        closed_loop(r, [7], 10)


# --- checkpoints -----------------------------------------------------------------------------------

def test_checkpoint_and_restore_a_python_agent():
    class Tally:
        def __init__(self):
            self.total = 0

        def handle(self, m):
            self.total += len(m)
            return str(self.total).encode()

        def checkpoint(self):
            return self.total.to_bytes(8, "little")

        def restore(self, state):
            self.total = int.from_bytes(state, "little")

    r = Router()
    a = r.spawn_python(Tally)
    r.request(a, b"12345")
    cp = r.checkpoint(a)
    assert (cp.agent, cp.kind, cp.size, cp.state) == (a, "python", 8, (5).to_bytes(8, "little"))
    assert cp.elapsed_ns >= 0
    r.request(a, b"123")
    assert r.restore(a, cp) >= 0
    assert r.request(a, b"1").content == b"6"           # 5 restored, then 1


def test_checkpoint_of_a_native_agent_keeps_its_counter():
    r = Router()
    f = r.spawn_native("fail-every-n", every=3)
    r.request(f, b"1")
    r.request(f, b"2")
    cp = r.checkpoint(f)                 # two messages since the start
    assert r.request(f, b"3") is None    # the third faults (and restarts: counter 0)
    r.restore(f, cp)
    assert r.request(f, b"again") is None    # the restored counter makes this the third


def test_checkpoint_bad_input():
    r = Router()
    plain = r.spawn_python(lambda m: None)
    echo = r.spawn_native("echo")
    with pytest.raises(TypeError, match="has no checkpoint\\(\\) method"):
        r.checkpoint(plain)
    cp = r.checkpoint(echo)
    with pytest.raises(ValueError, match="the checkpoint is of a echo agent; agent 1 is python"):
        r.restore(plain, cp)
    with pytest.raises(TypeError):
        r.restore(echo, b"state")
    r.stop(echo)
    with pytest.raises(ValueError, match="agent 2 is stopped"):
        r.checkpoint(echo)


# --- the MessageBatcher ------------------------------------------------------------------------------

def test_batched_sends_wait_for_a_full_batch():
    r = Router(flush_size=4)
    sink = r.spawn_native("sink")
    for _ in range(3):
        r.send(sink, b"x")
    c = conserved(r)
    assert (c.sent, c.in_flight) == (3, 3) and r.agent(sink).mailbox == 0
    r.send(sink, b"x")                      # the fourth fills the batch
    assert r.agent(sink).mailbox == 4 and r.flushes == 1
    r.send(sink, b"y")
    assert r.flush() == 1 and r.agent(sink).mailbox == 5
    r.run()
    c = conserved(r)
    assert (c.delivered, c.in_flight) == (5, 0)


def test_run_flushes_a_partial_batch_instead_of_idling():
    r = Router(flush_size=100)
    echo = r.spawn_native("echo")
    assert r.request(echo, b"now").content == b"now"
    conserved(r)


def test_a_batch_is_flushed_when_its_oldest_send_has_waited_the_timeout():
    import time

    r = Router(flush_size=1000, flush_timeout=0.001, batch_size=1)
    sink = r.spawn_native("sink")

    def slow(m):                 # sends while the router is busy with it
        time.sleep(0.002)        # longer than the timeout
        r.send(sink, b"from-handler")

    a = r.spawn_python(slow)
    for _ in range(4):
        r.send(a, b"work")
    assert r.flushes == 0
    r.run()
    # the first four sends were flushed by the idle rule (one batch); while
    # the slow agent works, each of its sends waits >= 2 ms, past the timeout
    assert r.flushes >= 3
    assert r.agent(sink).handled == 4
    c = conserved(r)
    assert c.in_flight == 0
    # the wait is part of the latency: from send to delivery >= the timeout
    assert r.delivery.max >= 1_000_000


def test_batching_bad_configuration():
    with pytest.raises(ValueError, match="flush_size must be within"):
        Router(flush_size=0)
    with pytest.raises(ValueError, match="flush_timeout must be within"):
        Router(flush_timeout=-1)


# --- worker threads ---------------------------------------------------------------------------------

def test_workers_run_native_agents_and_counts_stay_exact():
    r = Router(workers=2, keep_replies=False)
    agents = r.spawn_native("fail-every-n", every=5, count=8)
    assert {r.agent(a).kind for a in agents} == {"fail-every-n"}
    res = closed_loop(r, agents, 400_000, window=256)
    c = conserved(r)
    assert c.in_flight == 0
    assert res.requests == 400_000 and res.completed + res.failed == 400_000
    assert c.dead_lettered == res.failed == 8 * (50_000 // 5) == len(r.dead_letters())
    assert r.round_trip.total_count == res.completed
    assert r.recovery_time.total_count == c.restarts == c.dead_lettered


def test_workers_with_run_send_receive_and_cross_thread_forwards():
    r = Router(workers=2)
    e1, e2 = r.spawn_native("echo", count=2)        # one on each worker
    fwd = r.spawn_native("forward", target=e2)      # on the first worker: crosses threads
    py = r.spawn_python(lambda m: m.content.upper())   # on the calling thread
    assert r.workers == 2
    assert r.request(e1, b"a").content == b"a"
    assert r.request(fwd, b"b").content == b"b"
    assert r.request(py, b"c").content == b"C"
    for i in range(1000):
        r.send([e1, e2, fwd][i % 3], b"%d" % i)
    r.run()
    got = []
    while (m := r.receive()) is not None:
        got.append(int(m.content))
    assert sorted(got) == list(range(1000))
    c = conserved(r)
    assert c.in_flight == 0 and c.dead_lettered == 0


def test_python_agents_send_to_workers_while_they_run():
    r = Router(workers=2)
    sinks = r.spawn_native("sink", count=2)

    def fan_out(m):
        for s in sinks:
            r.send(s, m.content)

    a = r.spawn_python(fan_out)
    for _ in range(100):
        r.send(a, b"x")
    r.run()
    assert [r.agent(s).handled for s in sinks] == [100, 100]
    assert conserved(r).in_flight == 0


def test_workers_refuse_what_cannot_run_concurrently():
    r = Router(workers=2)
    echo = r.spawn_native("echo")

    def spawner(m):
        r.spawn_native("sink")

    a = r.spawn_python(spawner)
    r.send(a, b"")
    r.run()                     # the spawn raised inside the agent: a fault
    [dead] = r.dead_letters()
    assert "cannot spawn while the router's workers run" in dead.reason
    with pytest.raises(ValueError, match="max_messages needs workers=0"):
        r.run(max_messages=10)
    with pytest.raises(ValueError, match="target 2 is a Python agent"):
        closed_loop(r, [a], 10)
    with pytest.raises(ValueError, match="workers must be within"):
        Router(workers=-1)
    assert r.request(echo, b"still fine").content == b"still fine"


# --- WebAssembly agents ----------------------------------------------------------------------------

def wasm_module(name, **options):
    from caxton_meter import agents
    from caxton_meter._core import WasmModule

    with open(agents.path(name)) as f:
        return WasmModule(f.read(), **options)


@pytest.fixture(scope="module")
def echo_wasm():
    return wasm_module("echo")


def test_wasm_agents_reply_compute_and_fault(echo_wasm):
    r = Router()
    e = r.spawn_wasm(echo_wasm, capabilities="wasm-echo")
    comp = r.spawn_wasm(wasm_module("compute"), units=2500)
    trap = r.spawn_wasm(wasm_module("trap"))
    loop = r.spawn_wasm(wasm_module("loop", epoch_deadline_ms=20))
    assert r.agent(e).kind == "wasm"
    assert r.request("wasm-echo", b"hello").content == b"hello"
    # the same work as the native compute agent, to the bit
    assert r.request(comp, b"seed").content == compute_reference(b"seed", 2500)
    native = r.spawn_native("compute", units=2500)
    assert r.request(native, b"seed").content == r.request(comp, b"seed").content
    assert r.request(trap, b"x") is None
    assert r.request(loop, b"x") is None               # stopped by its epoch deadline
    assert [d.reason for d in r.dead_letters()] == [
        "agent fault: wasm trap: unreachable", "agent fault: wasm trap: interrupt"]
    for agent in (trap, loop):
        info = r.agent(agent)
        assert (info.faults, info.restarts, info.state) == (1, 1, "ready")
    assert r.recovery_time.total_count == 2
    c = conserved(r)
    assert c.in_flight == 0 and c.dead_lettered == 2


def test_wasm_agents_on_workers_keep_counts_exact(echo_wasm):
    r = Router(workers=2, keep_replies=False)
    agents = r.spawn_wasm(echo_wasm, count=6)
    res = closed_loop(r, agents, 60_000, window=64, content=b"x" * 64)
    c = conserved(r)
    assert (res.completed, c.in_flight, c.dead_lettered) == (60_000, 0, 0)
    assert sum(r.agent(a).handled for a in agents) == 60_000


def test_wasm_checkpoint_and_restore(echo_wasm):
    r = Router()
    comp = r.spawn_wasm(wasm_module("compute"), units=10)
    cp = r.checkpoint(comp)
    assert cp.kind == "wasm" and cp.size > 0
    assert r.restore(comp, cp) >= 0
    assert r.request(comp, b"k").content == compute_reference(b"k", 10)
    with pytest.raises(ValueError, match="restore:"):
        r.restore(comp, type(cp).__new__(type(cp)))


def test_spawn_wasm_bad_input(echo_wasm):
    r = Router()
    with pytest.raises(TypeError, match="module must be a WasmModule, got bytes"):
        r.spawn_wasm(b"\0asm")
    with pytest.raises(ValueError, match="count must be >= 1"):
        r.spawn_wasm(echo_wasm, count=0)
    with pytest.raises(RuntimeError, match="spawn_wasm: .*cm_set_param"):
        r.spawn_wasm(echo_wasm, units=5)       # echo has no parameter to set
    assert r.agent_count == 0


RELAY_WAT = """
;; sends the message's bytes after the first 4 to the agent whose id the
;; first 4 bytes hold (little-endian), then replies with cm.send's result
(module
  (import "cm" "send" (func $send (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (local.get $ptr)
      (call $send (i32.load (local.get $ptr))
                  (i32.add (local.get $ptr) (i32.const 4))
                  (i32.sub (local.get $len) (i32.const 4))))
    (i32.const 4)))
"""


def test_wasm_agents_send_through_the_router():
    from caxton_meter._core import WasmModule

    for workers in (0, 2):
        r = Router(workers=workers)
        sink = r.spawn_native("sink")
        relay = r.spawn_wasm(WasmModule(RELAY_WAT))
        reply = r.request(relay, sink.to_bytes(4, "little") + b"payload")
        assert int.from_bytes(reply.content, "little", signed=True) == 0     # accepted
        assert r.agent(sink).handled == 1
        r.request(relay, (999).to_bytes(4, "little") + b"lost?")
        [dead] = r.dead_letters()
        assert dead.reason == "unknown receiver" and dead.message.sender == relay
        assert dead.message.content == b"lost?"
        c = conserved(r)
        assert c.in_flight == 0


def test_per_agent_histograms():
    for workers in (0, 2):
        r = Router(per_agent_histograms=True, workers=workers, keep_replies=False)
        fast = r.spawn_native("echo")
        slow = r.spawn_native("compute", units=200_000)
        closed_loop(r, [fast, fast, fast, slow], 400, window=4)
        (fq, fh), (sq, sh) = r.agent_histograms(fast), r.agent_histograms(slow)
        assert (fh.total_count, sh.total_count) == (300, 100)
        assert fq.total_count == 300 and sq.total_count == 100
        assert sh.value_at_percentile(50) > fh.value_at_percentile(50)
        assert fh.total_count + sh.total_count == r.handling_time.total_count
    plain = Router()
    e = plain.spawn_native("echo")
    with pytest.raises(ValueError, match="keeps no per-agent histograms"):
        plain.agent_histograms(e)


def test_a_wasm_agent_out_of_fuel_or_over_its_memory_cap_is_handled():
    r = Router()
    runaway = r.spawn_wasm(wasm_module("loop", fuel=100_000, epoch_deadline_ms=None))
    assert r.request(runaway, b"spin") is None
    [dead] = r.dead_letters()
    assert dead.reason == "agent fault: wasm trap: out of fuel"
    assert r.agent(runaway).restarts == 1
    conserved(r)
    alloc = r.spawn_wasm(wasm_module("alloc", memory_limit=256 * 1024))
    grown = r.request(alloc, (1).to_bytes(4, "little"))
    assert int.from_bytes(grown.content, "little", signed=True) == 1       # pages before
    capped = r.request(alloc, (10).to_bytes(4, "little"))
    assert int.from_bytes(capped.content, "little", signed=True) == -1     # over the cap
    assert r.request(alloc, b"") is None           # the agent refuses: not a fault
    assert r.dead_letters()[-1].reason.startswith("wasm agent error: ")
    assert r.agent(alloc).restarts == 0
    conserved(r)
