"""WebSocket targets against real servers: the websockets package's server
(echo, text and binary, 16- and 64-bit lengths, fragments, pings, closes,
answers out of order) and small asyncio servers of these tests' own for
the handshake's and the frames' faults.  Every run is bounded (a duration,
a deadline, a timeout); nothing here asserts a speed."""
import asyncio
import os
import sys
import threading
import time

import pytest

import caxton_meter as cm
from caxton_meter import WebSocketTarget, load_network
from caxton_meter._network import websocket_accept

from nginx_server import free_port
from test_network import assert_conserved, serve  # noqa: F401  (serve: a fixture)

ws_server = pytest.importorskip("websockets.asyncio.server")
from websockets.exceptions import ConnectionClosed  # noqa: E402

MS = 1_000_000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the network loop is Linux's (epoll) for now")


class WsServer:
    """The websockets package's server on 127.0.0.1, in a thread of its
    own: ``handler`` (a ServerConnection) serves each connection; ``url``
    is where it listens.  ``close()`` ends it."""

    def __init__(self, handler, **options):
        self.handler = handler
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete,
                                       args=(self._main(options),), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the websockets server did not start"

    async def _serve(self, ws):
        self.connections += 1
        try:
            await self.handler(ws)
        except ConnectionClosed:
            pass

    async def _main(self, options):
        self.stop = asyncio.Event()
        options = {"compression": None, "ping_interval": None, "close_timeout": 1, **options}
        async with ws_server.serve(self._serve, "127.0.0.1", 0, **options) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{self.port}/ws"
            self.ready.set()
            await self.stop.wait()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)
        self.loop.close()


@pytest.fixture
def ws_serve():
    servers = []

    def start(handler, **options):
        server = WsServer(handler, **options)
        servers.append(server)
        return server
    yield start
    for s in servers:
        s.close()


def echo_into(received):
    """An echo handler that keeps what it received."""
    async def handler(ws):
        async for message in ws:
            received.append(message)
            await ws.send(message)
    return handler


def header_size(n):
    """A server frame's header for an n-byte payload (unmasked)."""
    return 2 if n < 126 else (4 if n < 65536 else 10)


def handshake_bytes(res, frames):
    """What res received beyond ``frames`` bytes of frames: each
    connection's 101 reply, all of one size."""
    extra = res.bytes_received - frames
    assert extra % res.connects == 0 and 100 < extra // res.connects < 1000, extra
    return extra // res.connects


# --- against the websockets package's server ----------------------------------------------

def test_an_echo_server_answers_every_binary_message_of_an_open_loop(ws_serve):
    received = []
    server = ws_serve(echo_into(received))
    payload = os.urandom(32)                  # masked on the way: the server must unmask it
    target = WebSocketTarget(server.url, payload=payload, connections=2, timeout=5)
    res = load_network(target, rate=200, duration=0.5, interval=0.1)
    assert_conserved(res)
    assert res.planned == res.completed == 100 and res.failed == 0 and res.errors == {}
    assert received == [payload] * 100
    assert res.protocol == "websocket" and res.connections == 2
    # the handshake is the connect: timed apart from the requests
    assert res.connects == res.connect_time.total_count == server.connections == 2
    assert res.status_classes["1xx"] == 2 and res.connection_errors == {}
    handshake_bytes(res, 100 * (2 + 32))                  # frames of 2-byte headers, unmasked
    assert res.bytes_sent > 100 * (2 + 4 + 32)          # masked, and the two handshakes
    assert res.latency.max < 5_000 * MS


@pytest.mark.parametrize("size", [0, 125, 126, 1000, 65535, 65536, 70_000])
def test_payload_lengths_of_7_16_and_64_bits_each_way(ws_serve, size):
    received = []
    server = ws_serve(echo_into(received))
    payload = os.urandom(size)
    res = load_network(WebSocketTarget(server.url, payload=payload, connections=2),
                       closed=True, duration=0.2)
    assert_conserved(res)
    assert res.completed > 0 and res.errors == {}
    assert len(received) == res.completed and all(m == payload for m in received)
    handshake_bytes(res, res.completed * (header_size(size) + size))


def test_text_messages_arrive_as_text(ws_serve):
    received = []
    server = ws_serve(echo_into(received))
    target = WebSocketTarget(server.url, payload="héllo ✓".encode(), opcode="text",
                             connections=1)
    res = load_network(target, rate=100, duration=0.2)
    assert_conserved(res)
    assert res.completed == 20 and received == ["héllo ✓"] * 20


def test_a_closed_loop_keeps_each_connection_busy(ws_serve):
    server = ws_serve(echo_into([]))
    res = load_network(WebSocketTarget(server.url, payload=b"x" * 64, connections=4),
                       closed=True, duration=0.3)
    assert_conserved(res)
    assert res.closed_loop and res.completed > 4 and res.failed == 0 and res.dropped == 0
    assert res.latency.total_count == res.latency_uncorrected.total_count == res.completed
    # four messages outstanding on each connection, answered in order
    res = load_network(WebSocketTarget(server.url, payload=b"x" * 64, connections=2, pipeline=4),
                       closed=True, duration=0.3)
    assert_conserved(res)
    assert res.completed > 8 and res.errors == {}


def test_the_handshake_carries_the_path_and_the_users_headers(ws_serve):
    seen = []

    async def handler(ws):
        seen.append((ws.request.path, ws.request.headers.get("X-Run")))
        async for message in ws:
            await ws.send(message)

    server = ws_serve(handler)
    target = WebSocketTarget(server.url + "?q=1", payload=b"p", headers={"X-Run": "7"},
                             connections=3)
    res = load_network(target, rate=100, duration=0.1)
    assert_conserved(res)
    assert res.completed == 10 and seen == [("/ws?q=1", "7")] * 3


def test_a_server_that_does_not_answer_fails_requests_as_timeout(ws_serve):
    async def handler(ws):
        async for _ in ws:
            pass

    server = ws_serve(handler)
    res = load_network(WebSocketTarget(server.url, payload=b"p", connections=2, timeout=0.1),
                       rate=20, duration=0.2)
    assert_conserved(res)
    assert res.requests == 4 and res.errors == {"timeout": 4} and res.completed == 0


def test_fragmented_replies_are_joined_into_one_message(ws_serve):
    async def handler(ws):
        async for message in ws:
            await ws.send([message[i:i + 3] for i in range(0, len(message), 3)])

    server = ws_serve(handler)
    res = load_network(WebSocketTarget(server.url, payload=b"abcdefghijklmnopq", connections=2),
                       rate=100, duration=0.3)
    assert_conserved(res)
    assert res.completed == 30 and res.errors == {}
    handshake_bytes(res, 30 * (6 * 2 + 17))              # 6 frames, 2-byte headers, 17 bytes


def test_pings_are_answered_with_pongs_busy_or_idle(ws_serve):
    pongs = []

    async def handler(ws):
        n = 0
        async for message in ws:
            n += 1
            if n % 2:                          # before the reply: a request is outstanding
                waiter = await ws.ping(b"before")
                await ws.send(message)
            else:                              # after it: the connection is idle
                await ws.send(message)
                waiter = await ws.ping(b"after")
            await asyncio.wait_for(waiter, 2)
            pongs.append(n)

    server = ws_serve(handler)
    # 19 messages: the last one's ping comes before its reply, so the run
    # does not end before its pong is sent
    res = load_network(WebSocketTarget(server.url, payload=b"ping me", connections=1,
                                       timeout=3), rate=50, duration=0.38)
    assert_conserved(res)
    assert res.completed == 19 and res.errors == {} and res.connection_errors == {}
    end = time.monotonic() + 5                 # the server's thread may see the last pong later
    while len(pongs) < 19 and time.monotonic() < end:
        time.sleep(0.01)
    assert pongs == list(range(1, 20))


def test_a_server_close_mid_run_closes_the_connection_and_the_next_request_reconnects(ws_serve):
    codes = []

    async def handler(ws):
        for _ in range(5):
            await ws.send(await ws.recv())
        await ws.close(1000, "enough")
        codes.append(ws.close_code)             # the code the client answered with

    server = ws_serve(handler)
    res = load_network(WebSocketTarget(server.url, payload=b"m", connections=1, timeout=3),
                       rate=100, duration=0.5)
    assert_conserved(res)
    assert res.completed == 50 and res.failed == 0
    # ten connections served five messages each; each close came while idle
    assert res.connects == server.connections == 10
    assert 9 <= res.connection_errors.get("closed", 0) <= 10
    # each close was answered with its code echoed (the last may find the run over)
    assert codes.count(1000) >= 9
    # a closed loop sends at once after a reply: the close may find a request on it
    closed = load_network(WebSocketTarget(server.url, payload=b"m", connections=2, timeout=3),
                          closed=True, duration=0.3)
    assert_conserved(closed)
    assert set(closed.errors) <= {"closed"} and closed.completed > 5
    assert closed.connects > 2


def test_a_message_beyond_max_response_fails_as_framing(ws_serve):
    server = ws_serve(echo_into([]))
    target = WebSocketTarget(server.url, payload=b"y" * 200, max_response=100, connections=1)
    res = load_network(target, rate=50, duration=0.2)
    assert_conserved(res)
    assert res.completed == 0 and res.errors == {"framing": 10}


# --- correlation: replies out of order ----------------------------------------------------

def reversed_pairs(received, size=2):
    """Answers each ``size`` messages in reverse order, once all are in."""
    async def handler(ws):
        pending = []
        async for message in ws:
            received.append(message)
            pending.append(message)
            if len(pending) == size:
                for m in reversed(pending):
                    await ws.send(m)
                pending.clear()
    return handler


def test_correlation_pairs_replies_answered_out_of_order(ws_serve):
    received = []
    server = ws_serve(reversed_pairs(received))
    target = WebSocketTarget(server.url, payload=b"\0" * 4 + b"-the rest", connections=1,
                             pipeline=2, correlation=(0, 4), timeout=3)
    assert target.pairing == "correlation"
    res = load_network(target, rate=100, duration=0.5)
    assert_conserved(res)
    assert res.completed == 50 and res.errors == {} and res.connection_errors == {}
    # the core wrote each request's id, big-endian, at the window
    assert [int.from_bytes(m[:4], "big") for m in received] == list(range(50))
    assert all(m[4:] == b"-the rest" for m in received)
    # the first of each pair waited for the second, 10 ms later; the second did not
    late = sum(count for value, count in res.latency if value >= 5 * MS)
    assert 20 <= late <= 30


@pytest.mark.parametrize("length", [1, 2])
def test_correlation_in_a_closed_loop_with_replies_in_order(ws_serve, length):
    server = ws_serve(echo_into([]))
    res = load_network(WebSocketTarget(server.url, payload=b"\0" * 8, connections=2, pipeline=4,
                                       correlation=(2, length), timeout=3),
                       closed=True, duration=0.3)
    assert_conserved(res)
    assert res.completed > 8 and res.errors == {}
    if length == 1:
        assert res.completed > 2 * 256         # the 256 one-byte ids wrapped around


def test_text_correlation_ids_are_hex_digits(ws_serve):
    received = []
    server = ws_serve(reversed_pairs(received, size=3))
    target = WebSocketTarget(server.url, payload=b"id=....;", opcode="text", connections=1,
                             pipeline=3, correlation=(3, 4), timeout=3)
    res = load_network(target, rate=150, duration=0.2)
    assert_conserved(res)
    assert res.completed == 30 and res.errors == {}
    assert [m[3:7] for m in received] == [f"{i:04x}" for i in range(30)]


def test_a_reply_with_no_outstanding_id_fails_as_framing(ws_serve):
    async def handler(ws):
        async for message in ws:
            await ws.send(b"\xff\xff" + message[2:])

    server = ws_serve(handler)
    target = WebSocketTarget(server.url, payload=b"\0\0abc", connections=1, pipeline=2,
                             correlation=(0, 2))
    res = load_network(target, rate=50, duration=0.2)
    assert_conserved(res)
    assert res.completed == 0 and res.errors == {"framing": 10}


# --- servers of the tests' own: handshakes and frames gone wrong --------------------------

async def read_upgrade(reader):
    """An Upgrade request's head; returns its Sec-WebSocket-Key."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(f"no Sec-WebSocket-Key in {head!r}")


def switching(key, *, accept=None, upgrade=b"websocket"):
    accept = websocket_accept(key).encode() if accept is None else accept
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + upgrade +
            b"\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


@pytest.mark.parametrize("reply, status_class", [
    (lambda key: switching(key, accept=b"dGhlIHNhbXBsZSBub25jZQ=="), "1xx"),  # a wrong accept
    (lambda key: switching(key, upgrade=b"h2c"), "1xx"),
    (lambda key: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "4xx"),
    (lambda key: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "2xx"),
    (lambda key: switching(key)[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
     "1xx"),
], ids=["wrong accept", "not websocket", "403", "200", "an extension not offered"])
def test_a_handshake_not_answered_101_with_the_accept_fails_as_handshake(serve, reply,
                                                                          status_class):
    async def handler(reader, writer):
        writer.write(reply(await read_upgrade(reader)))
        await reader.read()                    # until the client closes

    server = serve(handler)
    target = WebSocketTarget(f"ws://127.0.0.1:{server.port}/", payload=b"x", connections=2,
                             timeout=2)
    res = load_network(target, rate=50, duration=0.2)
    assert_conserved(res)
    # two connections up front, then a connection for each request: each refused
    assert res.connection_errors == {"handshake": 2}
    assert res.requests == 10 and res.errors == {"handshake": 10} and res.completed == 0
    assert res.connects == 0 and res.connect_time.total_count == 0
    assert res.status_classes[status_class] == 12


def test_a_handshake_our_own_server_accepts_makes_the_connection_up(serve):
    async def handler(reader, writer):
        writer.write(switching(await read_upgrade(reader)))
        while True:                            # a one-byte reply to each (small) frame
            head = await reader.readexactly(2)
            await reader.readexactly(4 + (head[1] & 0x7F))
            writer.write(b"\x82\x01!")

    server = serve(handler)
    res = load_network(WebSocketTarget(f"ws://localhost:{server.port}/", payload=b"abc",
                                       connections=1), rate=50, duration=0.2)
    assert_conserved(res)
    assert res.completed == 10 and res.connects == 1
    assert res.bytes_received == 10 * 3 + len(switching("a2V5"))


@pytest.mark.parametrize("garbage", [
    b"\xc2\x02hi",                             # RSV1 set, no extension agreed
    b"\x82\x82\x00\x00\x00\x00hi",             # a masked frame from the server
    b"\x83\x02hi",                             # a reserved opcode
    b"\x89\x7e\x00\x80" + b"p" * 128,          # a ping longer than 125 bytes
    b"\x09\x00",                               # a fragmented ping
    b"\x80\x02hi",                             # a continuation of no message
    b"\x02\x01a\x82\x01b",                     # a message begun inside another
    b"\x82\x7f\x80" + b"\x00" * 7,             # a 64-bit length with its top bit set
], ids=["rsv", "masked", "opcode", "long ping", "fragmented ping", "continuation",
        "interleaved", "length"])
def test_frames_that_break_rfc_6455_fail_as_framing(serve, garbage):
    async def handler(reader, writer):
        writer.write(switching(await read_upgrade(reader)))
        await reader.read(1)                   # a request is on its way
        writer.write(garbage)
        await reader.read()

    server = serve(handler)
    target = WebSocketTarget(f"ws://127.0.0.1:{server.port}/", payload=b"x", connections=1,
                             timeout=2)
    res = load_network(target, rate=50, duration=0.2)
    assert_conserved(res)
    assert res.completed == 0 and res.errors == {"framing": 10}
    assert res.connects == 10                  # each failure closed the connection


def test_a_refused_websocket_connection_fails_each_request_as_refused():
    port = free_port()
    res = load_network(WebSocketTarget(f"ws://127.0.0.1:{port}/", payload=b"x", connections=2,
                                       timeout=1), rate=50, duration=0.1)
    assert_conserved(res)
    assert res.connection_errors == {"refused": 2} and res.errors == {"refused": 5}


# --- arguments ----------------------------------------------------------------------------

def test_the_accept_is_rfc_6455s():
    # RFC 6455, 1.3's example
    assert websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_handshake_request_upgrades_with_the_key_and_the_user_headers():
    t = WebSocketTarget("ws://localhost:9000/chat?room=1", payload=b"hi",
                        headers={"Sec-WebSocket-Protocol": "chat"})
    assert t.handshake("a2V5") == (
        b"GET /chat?room=1 HTTP/1.1\r\nHost: localhost:9000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    assert t.pairing == "order" and t.opcode == "binary" and t.pipeline == 1
    with pytest.raises(AttributeError, match="immutable"):
        t.pipeline = 2


@pytest.mark.parametrize("url, kwargs, error, message", [
    ("http://127.0.0.1:9000/", {}, cm.ArgumentError, "url must be ws://HOST"),
    ("wss://127.0.0.1:9000/", {}, cm.ArgumentError, "wss is not supported yet"),
    ("ws://example.com/", {}, cm.ArgumentError, "loopback"),
    ("ws://127.0.0.1:9000/", {"payload": "text"}, cm.ArgumentTypeError, "bytes-like, got str"),
    ("ws://127.0.0.1:9000/", {"opcode": "txt"}, cm.ArgumentError, "did you mean 'text'"),
    ("ws://127.0.0.1:9000/", {"opcode": "text", "payload": b"\xff"}, cm.ArgumentError,
     "must be UTF-8"),
    ("ws://127.0.0.1:9000/", {"headers": {"Upgrade": "h2c"}}, cm.ArgumentError,
     r"written by the target itself \(the WebSocket handshake's\)"),
    ("ws://127.0.0.1:9000/", {"pipeline": 0}, cm.ArgumentError, "pipeline must be >= 1"),
    ("ws://127.0.0.1:9000/", {"correlation": (3, 4)}, cm.ArgumentError,
     "beyond the 4-byte payload"),
    ("ws://127.0.0.1:9000/", {"correlation": (0, 9)}, cm.ArgumentError, "length must be <= 8"),
    ("ws://127.0.0.1:9000/", {"correlation": 4}, cm.ArgumentTypeError, r"\(offset, length\)"),
    ("ws://127.0.0.1:9000/", {"correlation": (0, 1), "opcode": "text", "pipeline": 16},
     cm.ArgumentError, "give 16 ids, too few for pipeline=16"),
])
def test_websocket_target_arguments_are_checked(url, kwargs, error, message):
    kwargs = {"payload": b"abcd", **kwargs}
    with pytest.raises(error, match=message):
        WebSocketTarget(url, **kwargs)


def test_the_network_loop_says_what_this_platform_lacks():
    assert issubclass(cm.UnsupportedPlatformError, cm.CaxtonMeterError)
    assert issubclass(cm.UnsupportedPlatformError, NotImplementedError)
