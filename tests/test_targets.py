"""The Target protocol: a user's own system driven by the load loops, with
its setup and teardown around the measurement."""
import asyncio
import socket
import threading

import pytest

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
    assert res.planned == res.requests == res.completed == 100


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
