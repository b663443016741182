"""The Target protocol: a user's own system driven by the load loops, with
its setup and teardown around the measurement; and every driver's result,
the one OpenLoopResult."""
import asyncio
import socket
import threading

import pytest

from caxton_meter._aioload import open_loop_async
from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._core import OpenLoopResult, open_loop_call
from caxton_meter._multiload import run_processes
from caxton_meter._targets import AsyncTarget, Target, drive, drive_async


class EchoServer:
    """A TCP echo server on loopback, for a target that is a real client."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self):
        self.sock.close()


class Client:
    def __init__(self, port):
        self.port = port
        self.events = []

    def setup(self):
        self.conn = socket.create_connection(("127.0.0.1", self.port))
        self.events.append("setup")

    def request(self, payload):
        self.conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += self.conn.recv(65536)
        if got != payload:
            raise ValueError("echo mismatch")
        return got

    def teardown(self):
        self.conn.close()
        self.events.append("teardown")


def test_a_tcp_client_is_driven_between_its_setup_and_teardown():
    server = EchoServer()
    try:
        client = Client(server.port)
        assert isinstance(client, Target)
        res = drive(client, [(500, 0.2)], payload=b"ping" * 4)
        assert client.events == ["setup", "teardown"]
        assert res.planned == res.requests == res.completed == 100
        assert res.failed == 0 and res.errors == {}
        assert res.latency.total_count == 100
    finally:
        server.close()


def test_teardown_runs_after_a_load_whose_requests_all_fail():
    class Failing:
        def __init__(self):
            self.torn_down = False

        def request(self, payload):
            raise ConnectionError("refused")

        def teardown(self):
            self.torn_down = True

    t = Failing()
    res = drive(t, [(1000, 0.05)])
    assert t.torn_down and res.errors == {"ConnectionError": 50}


def test_async_targets():
    class AsyncClient:
        def __init__(self):
            self.events = []

        async def setup(self):
            self.events.append("setup")

        async def request(self, payload):
            await asyncio.sleep(0)
            return payload

        def teardown(self):
            self.events.append("teardown")

    client = AsyncClient()
    assert isinstance(client, AsyncTarget)
    res = asyncio.run(drive_async(client, [(400, 0.25)], payload=b"x", concurrency=4))
    assert client.events == ["setup", "teardown"]
    # four slots: a stall of the shared machine's event loop may drop one
    assert res.planned == res.requests + res.dropped == 100 and res.dropped <= 10
    assert res.completed == res.requests


def test_targets_are_checked():
    with pytest.raises(TypeError, match="needs a request\\(payload\\) method; int has none"):
        drive(42, [(1, 1)])

    class AsyncOnly:
        async def request(self, payload):
            return payload

    with pytest.raises(TypeError, match="use drive_async"):
        drive(AsyncOnly(), [(1, 1)])
    with pytest.raises(TypeError, match="payload must be bytes-like, got str"):
        drive(Client(0), [(1, 1)], payload="text")
    with pytest.raises(ArgumentTypeError, match="drive: interval must be a number or a string"):
        drive(Client(0), [(1, 1)], interval=True)
    with pytest.raises(ArgumentTypeError, match="drive_async: concurrency must be an int, not bool"):
        asyncio.run(drive_async(Client(0), [(1, 1)], concurrency=True))
    with pytest.raises(ArgumentError, match="drive: max_lateness must be a finite number >= 0, got -1"):
        drive(Client(0), [(1, 1)], max_lateness=-1)


class Noop:
    def request(self, payload):
        return payload


class AsyncNoop:
    async def request(self, payload):
        return payload


async def anoop():
    pass


def test_every_driver_returns_the_one_load_result_with_the_same_meaning():
    stages = [(400, 0.1)]                    # 40 arrivals in 0.1 s
    results = {
        "open_loop_call": open_loop_call(int, stages, interval=0.05),
        "open_loop_async": asyncio.run(open_loop_async(anoop, stages, interval=0.05)),
        "drive": drive(Noop(), stages, interval=0.05),
        "drive_async": asyncio.run(drive_async(AsyncNoop(), stages, interval=0.05)),
        "run_processes": run_processes("builtins:int", stages, processes=2, interval=0.05),
    }
    for name, res in results.items():
        assert type(res) is OpenLoopResult, name
        # every arrival is sent or dropped; every request sent ends one way
        assert res.planned == res.requests + res.dropped, name
        assert res.requests == res.completed + res.failed, name
        assert abs(res.planned - 40) <= len(res.parts), name    # each process rounds its own
        assert res.failed == 0 and res.errors == {}, name
        assert not res.interrupted and not res.deadline_reached, name
        assert res.duration_ns == 100_000_000, name
        assert res.achieved_rate == res.requests * 1e9 / res.duration_ns, name
        assert res.intended_rate == res.planned * 1e9 / res.duration_ns, name
        assert res.latency.total_count == res.latency_uncorrected.total_count == res.completed
        assert res.send_jitter.total_count == res.requests, name
        assert sum(iv.sent for iv in res.intervals) == res.requests, name
        assert sum(iv.dropped for iv in res.intervals) == res.dropped, name
        assert sum(iv.completed for iv in res.intervals) == res.completed, name
        assert sum(iv.latency.total_count for iv in res.intervals) == res.completed, name
    assert all(res.parts == () and res.source == "" for name, res in results.items()
               if name != "run_processes")
    merged = results["run_processes"]
    assert len(merged.parts) == 2 and merged.requests == sum(p.requests for p in merged.parts)


def test_drivers_take_a_deadline_and_units():
    # every arrival due before the deadline was sent, or counted as dropped
    # when a stall of the machine left the loop behind at that moment
    res = drive(Noop(), rate="1K/s", duration="10s", deadline="100ms")
    assert res.deadline_reached and 0 < res.requests < 10_000
    assert res.completed == res.requests and res.planned == res.requests + res.dropped
    assert res.planned == pytest.approx(1000 * res.duration_ns / 1e9, abs=2)
    res = asyncio.run(drive_async(AsyncNoop(), rate="1K/s", duration="10s", deadline=0.1))
    assert res.deadline_reached and 0 < res.requests < 10_000
    assert res.completed == res.requests and res.planned == res.requests + res.dropped
    assert res.planned == pytest.approx(1000 * res.duration_ns / 1e9, abs=2)
