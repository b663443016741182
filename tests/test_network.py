"""Network targets against real servers: nginx (Debian's, started on a free
loopback port with tests/nginx.conf) and small asyncio servers of these
tests' own for the framings and the faults.  Every run is bounded (a
duration, a deadline, a timeout); nothing here asserts a speed."""
import asyncio
import pickle
import signal
import socket
import struct
import sys
import threading
import time

import pytest

import caxton_meter as cm
from caxton_meter import HttpTarget, NetworkResult, TcpTarget, load_network

from nginx_server import BODY, free_port

MS = 1_000_000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the network loop is Linux's (epoll) for now")


# --- the servers --------------------------------------------------------------------------

class AsyncServer:
    """An asyncio server on 127.0.0.1 in a thread of its own: ``handler``
    (reader, writer) serves each connection.  ``close()`` ends every
    connection and the loop."""

    def __init__(self, handler):
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.connections = 0
        self.writers = set()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the test server did not start"

    async def _serve(self, reader, writer):
        self.connections += 1
        self.writers.add(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _main(self):
        self.stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        await self.stop.wait()
        server.close()
        for w in list(self.writers):
            w.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def serve():
    servers = []

    def start(handler):
        server = AsyncServer(handler)
        servers.append(server)
        return server
    yield start
    for s in servers:
        s.close()


async def read_http_request(reader):
    """One request's head (and its Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return head


def http_reply(status, body=b"ok", extra=b""):
    return (b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra)) + body


def assert_conserved(res):
    assert isinstance(res, NetworkResult) and isinstance(res, cm.OpenLoopResult)
    assert res.planned == res.requests + res.dropped
    assert res.requests == res.completed + res.failed + res.in_flight
    assert sum(res.errors.values()) == res.failed
    assert res.latency.total_count == res.completed
    assert sum(iv.sent for iv in res.intervals) == res.requests
    assert sum(iv.completed for iv in res.intervals) == res.completed
    assert sum(iv.failed for iv in res.intervals) == res.failed
    assert sum(iv.dropped for iv in res.intervals) == res.dropped
    if not res.interrupted:
        assert res.in_flight == 0


# --- HTTP against nginx -------------------------------------------------------------------

def test_an_open_loop_against_nginx_completes_every_request_with_2xx(nginx):
    target = HttpTarget(nginx.url, connections=4, timeout=5)
    res = load_network(target, rate=200, duration=0.5, interval=0.1)
    assert_conserved(res)
    assert res.planned == 100 and res.dropped == 0
    assert res.completed == res.requests == 100 and res.failed == 0 and res.errors == {}
    assert res.status_classes == {"1xx": 0, "2xx": 100, "3xx": 0, "4xx": 0, "5xx": 0}
    assert res.connect_time.total_count == res.connects == 4 and res.connection_errors == {}
    assert res.send_jitter.total_count == 100
    assert res.protocol == "http" and not res.closed_loop and res.connections == 4
    # each reply is nginx's head and the 6-byte body
    assert res.bytes_sent == 100 * len(target.request) and res.bytes_received > 100 * len(BODY)
    assert len(res.intervals) >= 4
    assert not res.interrupted and not res.deadline_reached and res.kept_schedule in (True, False)


def test_a_closed_loop_against_nginx_keeps_every_connection_busy_for_its_duration(nginx):
    res = load_network(HttpTarget(nginx.url, connections=8), closed=True, duration=0.3)
    assert_conserved(res)
    assert res.closed_loop and res.completed > 8 and res.failed == 0 and res.dropped == 0
    assert res.status_classes["2xx"] == res.completed and res.connects == 8
    assert res.duration_ns == 300 * MS and res.completed_per_second > 0
    # a closed loop sends each request when it means to: latency is from the real send
    assert res.latency.total_count == res.latency_uncorrected.total_count == res.completed


def test_nginx_404_and_405_are_failures_of_kind_status_counted_by_class(nginx):
    missing = HttpTarget(nginx.url.replace("hello.txt", "missing"), connections=2)
    res = load_network(missing, rate=100, duration=0.2)
    assert_conserved(res)
    assert res.completed == 0 and res.failed == res.requests == 20
    assert res.errors == {"status": 20} and res.status_classes["4xx"] == 20
    assert res.latency.total_count == 0
    # a POST with a body to a static file: nginx reads the body and answers 405
    post = HttpTarget(nginx.url, method="POST", body=b"x" * 3000, headers={"X-Test": "1"},
                      connections=2)
    assert post.request.endswith(b"Content-Length: 3000\r\n\r\n" + b"x" * 3000)
    res = load_network(post, rate=100, duration=0.2)
    assert_conserved(res)
    assert res.errors == {"status": 20} and res.status_classes["4xx"] == 20


def test_head_replies_have_no_body_to_wait_for(nginx):
    res = load_network(HttpTarget(nginx.url, method="HEAD", connections=2, timeout=2),
                       rate=100, duration=0.2)
    assert_conserved(res)
    assert res.completed == 20 and res.errors == {}


def test_the_deadline_stops_a_long_schedule(nginx):
    t0 = time.monotonic()
    res = load_network(HttpTarget(nginx.url, connections=2), rate=100, duration=60, deadline=0.3)
    assert time.monotonic() - t0 < 30
    assert_conserved(res)
    assert res.deadline_reached and not res.interrupted
    assert 300 * MS <= res.duration_ns < 60_000 * MS
    assert 0 < res.requests < 6000 and res.completed == res.requests


def test_results_pickle_with_their_network_fields(nginx):
    res = load_network(HttpTarget(nginx.url, connections=1), rate=50, duration=0.1)
    back = pickle.loads(pickle.dumps(res))
    assert isinstance(back, NetworkResult)
    assert (back.requests, back.completed, back.status_classes, back.connects, back.protocol) == \
        (res.requests, res.completed, res.status_classes, res.connects, res.protocol)
    assert back.connect_time.total_count == res.connect_time.total_count
    merged = cm.OpenLoopResult.merge([res, back])
    assert merged.completed == 2 * res.completed


def test_pipelined_requests_to_nginx_are_answered_in_order_on_each_connection(nginx):
    target = HttpTarget(nginx.url, connections=2, pipeline=4, timeout=5)
    res = load_network(target, closed=True, duration=0.3)
    assert_conserved(res)
    assert res.failed == 0 and res.completed > 8 and res.errors == {}
    assert res.status_classes["2xx"] == res.completed and res.connects == 2
    assert res.bytes_sent == res.requests * len(target.request)
    assert res.latency.total_count == res.completed
    # open: arrivals go to idle connections first, onto busy ones while there is room
    res = load_network(HttpTarget(nginx.url, connections=1, pipeline=2, timeout=5),
                       rate=500, duration=0.4)
    assert_conserved(res)
    assert res.completed == res.planned == 200 and res.failed == 0 and res.dropped == 0


# --- HTTP against servers of the tests' own -----------------------------------------------

def test_pipelined_requests_arrive_before_their_replies_are_sent(serve):
    """The server reads two requests before it answers either, and answers
    both in one write: only a pipelining client gets replies, and it must
    read two replies from one read.  Each first request waits 10 ms for the
    second's arrival: latency counts from each intended start."""
    seen = {"pairs": 0}

    async def handler(reader, writer):
        while True:
            await read_http_request(reader)
            await read_http_request(reader)
            seen["pairs"] += 1
            writer.write(http_reply(200, b"first") + http_reply(200, b"second!"))

    server = serve(handler)
    target = HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, pipeline=2,
                        timeout=2)
    res = load_network(target, rate=100, duration=0.3)
    assert_conserved(res)
    assert res.errors == {} and res.completed == 30 and seen["pairs"] == 15
    assert res.connects == 1 and res.connection_errors == {}
    waited = sum(count for value, count in res.latency if value >= 5 * MS)
    assert 12 <= waited <= 18 and res.latency.max < 1_000 * MS
    # unpipelined, the same server never answers: each request times out
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=4,
                                  timeout=0.1), rate=20, duration=0.2)
    assert_conserved(res)
    assert res.requests == 4 and res.completed == 0 and res.errors == {"timeout": 4}


def test_pipelined_chunked_replies_in_one_write_are_read_one_after_the_other(serve):
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"

    async def handler(reader, writer):
        while True:
            for _ in range(3):
                await read_http_request(reader)
            writer.write(chunked + http_reply(404) + chunked)

    server = serve(handler)
    target = HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, pipeline=3,
                        timeout=2)
    res = load_network(target, rate=100, duration=0.3)
    assert_conserved(res)
    assert res.completed == 20 and res.errors == {"status": 10}
    assert res.status_classes == {"1xx": 0, "2xx": 20, "3xx": 0, "4xx": 10, "5xx": 0}


def test_requests_behind_a_reply_that_closes_fail_as_closed(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        await read_http_request(reader)
        writer.write(http_reply(200, extra=b"Connection: close\r\n"))
        await writer.drain()

    server = serve(handler)
    target = HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, pipeline=2,
                        timeout=2)
    res = load_network(target, closed=True, duration=0.2)
    assert_conserved(res)
    assert res.completed > 0 and res.errors == {"closed": res.completed}
    assert res.connects == server.connections == res.completed


def test_a_timeout_fails_every_request_pipelined_on_the_connection(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        await asyncio.sleep(30)

    server = serve(handler)
    target = HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, pipeline=3,
                        timeout=0.15)
    res = load_network(target, rate=20, duration=0.3)
    assert_conserved(res)
    assert res.requests == 6 and res.completed == 0 and res.errors == {"timeout": 6}


def test_status_classes_are_counted_and_only_2xx_complete(serve):
    statuses = [200, 301, 404, 500, 204]

    async def handler(reader, writer):
        n = 0
        while True:
            await read_http_request(reader)
            status = statuses[n % len(statuses)]
            writer.write(http_reply(status, b"" if status == 204 else b"body"))
            n += 1

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1),
                       rate=100, duration=0.5)
    assert_conserved(res)
    assert res.requests == 50
    assert res.status_classes == {"1xx": 0, "2xx": 20, "3xx": 10, "4xx": 10, "5xx": 10}
    assert res.completed == 20 and res.errors == {"status": 30}


def test_chunked_replies_in_pieces_are_read_to_their_end(serve):
    async def handler(reader, writer):
        while True:
            await read_http_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.002)
            writer.write(b"6\r\n world\r\n0\r\n\r\n")

    server = serve(handler)
    res = load_network(HttpTarget(f"http://localhost:{server.port}/", connections=2, timeout=2),
                       rate=50, duration=0.4)
    assert_conserved(res)
    assert res.completed == 20 and res.errors == {} and res.connection_errors == {}


def test_a_body_until_close_and_connection_close_reconnect(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body runs to the close")
        await writer.drain()

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=2),
                       rate=50, duration=0.4)
    assert_conserved(res)
    assert res.completed == 20 and res.errors == {}
    assert res.connects >= 20 and server.connections >= 20     # a new connection per request


def test_a_stalling_server_shows_in_the_latency_from_intended_starts(serve):
    """Coordinated omission: one reply held 400 ms on a single connection.
    The requests due meanwhile wait for the connection; measured from their
    intended starts, about rate x 0.2 s of them are late by 200 ms or more,
    while measured from their real sends only the stalled one is."""
    state = {"n": 0}

    async def handler(reader, writer):
        while True:
            await read_http_request(reader)
            state["n"] += 1
            if state["n"] == 20:
                await asyncio.sleep(0.4)
            writer.write(http_reply(200))

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, timeout=5),
                       rate=100, duration=1.5)
    assert_conserved(res)
    assert res.completed == 150 and res.dropped == 0

    def at_least(h, ns):
        return sum(count for value, count in h if value >= ns)

    assert at_least(res.latency, 200 * MS) >= 10
    assert at_least(res.latency_uncorrected, 200 * MS) <= 3
    assert res.latency.value_at_percentile(95) >= 100 * MS
    assert res.latency.max >= 400 * MS
    # the wait for the connection is send lateness
    assert at_least(res.send_jitter, 100 * MS) >= 10


def test_a_reset_is_counted_and_the_connection_is_made_again(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=2, timeout=2),
                       rate=50, duration=0.2)
    assert_conserved(res)
    assert res.requests == 10 and res.failed == 10 and res.errors == {"reset": 10}
    assert res.connects >= 10                 # each request after a reset connects again


def test_a_stall_longer_than_the_timeout_fails_as_timeout(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        await asyncio.sleep(30)

    server = serve(handler)
    t0 = time.monotonic()
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=2,
                                  timeout=0.1), rate=20, duration=0.5)
    assert time.monotonic() - t0 < 15
    assert_conserved(res)
    assert res.completed == 0 and res.requests > 0 and res.errors == {"timeout": res.failed}
    assert res.failed == res.requests
    assert res.planned == 10


def test_a_half_written_reply_fails_as_closed(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it")
        await writer.drain()

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=2, timeout=2),
                       rate=50, duration=0.2)
    assert_conserved(res)
    assert res.errors == {"closed": 10} and res.completed == 0


@pytest.mark.parametrize("garbage", [b"SMTP ready\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                                     http_reply(200) + b"and more"])
def test_garbage_fails_as_framing(serve, garbage):
    async def handler(reader, writer):
        while True:
            await read_http_request(reader)
            writer.write(garbage)

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1, timeout=2),
                       rate=50, duration=0.2)
    assert_conserved(res)
    assert res.errors == {"framing": 10} and res.completed == 0


def test_a_refused_connection_fails_each_request_as_refused():
    port = free_port()             # nothing listens there
    res = load_network(HttpTarget(f"http://127.0.0.1:{port}/", connections=3, timeout=1),
                       rate=50, duration=0.2)
    assert_conserved(res)
    assert res.connection_errors == {"refused": 3} and res.connects == 0
    assert res.requests == 10 and res.errors == {"refused": 10} and res.completed == 0
    closed = load_network(HttpTarget(f"http://127.0.0.1:{port}/", connections=2, timeout=1),
                          closed=True, duration=0.1)
    assert_conserved(closed)
    assert closed.completed == 0 and closed.errors == {"refused": closed.failed}


def test_a_full_queue_drops_the_backlog_and_counts_it(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        await asyncio.sleep(30)

    server = serve(handler)
    res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=1,
                                  timeout=0.3), rate=100, duration=0.5, max_queue=5)
    assert_conserved(res)
    assert res.planned == 50 and res.dropped > 0 and res.requests < 50
    assert res.errors == {"timeout": res.failed}


def test_ctrl_c_stops_the_run_with_a_partial_result(serve):
    async def handler(reader, writer):
        await read_http_request(reader)
        await asyncio.sleep(30)

    server = serve(handler)

    def handler_(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler_)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        res = load_network(HttpTarget(f"http://127.0.0.1:{server.port}/", connections=4,
                                      timeout=20), rate=100, duration=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert res.interrupted and not res.deadline_reached
    assert_conserved(res)
    assert res.in_flight == 4 and res.completed == 0 and res.planned < 3000


# --- raw TCP with framing -----------------------------------------------------------------

def test_newline_framed_replies(serve):
    async def handler(reader, writer):
        while True:
            line = await reader.readuntil(b"\n")
            writer.write(line.upper())

    server = serve(handler)
    target = TcpTarget("127.0.0.1", server.port, payload=b"ping\n", connections=2)
    res = load_network(target, rate=100, duration=0.3)
    assert_conserved(res)
    assert res.completed == 30 and res.errors == {} and res.status_classes == {}
    assert res.bytes_received == 30 * 5 and res.protocol == "line"


@pytest.mark.parametrize("size, order", [(1, "big"), (2, "little"), (4, "big"), (8, "little")])
def test_length_prefixed_replies(serve, size, order):
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    fmt = (">" if order == "big" else "<") + fmt

    async def handler(reader, writer):
        while True:
            await reader.readexactly(3)
            body = b"r" * 200
            # the prefix and the body in two writes: the reader joins them
            writer.write(struct.pack(fmt, len(body)))
            await writer.drain()
            writer.write(body)

    server = serve(handler)
    target = TcpTarget("localhost", server.port, payload=b"req", framing="length",
                       length_size=size, byteorder=order, connections=2)
    res = load_network(target, closed=True, duration=0.2)
    assert_conserved(res)
    assert res.completed > 0 and res.errors == {}
    assert res.bytes_received == res.completed * (size + 200)


def test_a_length_beyond_max_response_or_extra_bytes_fail_as_framing(serve):
    async def handler(reader, writer):
        while True:
            await reader.readexactly(3)
            writer.write(struct.pack(">I", 10**6) + b"x")

    server = serve(handler)
    target = TcpTarget("127.0.0.1", server.port, payload=b"req", framing="length",
                       max_response=1000, connections=1)
    res = load_network(target, rate=50, duration=0.2)
    assert_conserved(res)
    assert res.errors == {"framing": 10}


def test_fixed_size_replies_and_a_short_one(serve):
    state = {"n": 0}                        # over every connection: one short reply in all

    async def handler(reader, writer):
        while True:
            await reader.readexactly(4)
            state["n"] += 1
            if state["n"] == 5:
                writer.write(b"abc")        # short, then the connection closes
                await writer.drain()
                return
            writer.write(b"abcdefgh")

    server = serve(handler)
    target = TcpTarget("127.0.0.1", server.port, payload=b"ping", framing="fixed",
                       reply_size=8, connections=1, timeout=2)
    res = load_network(target, rate=50, duration=0.4)
    assert_conserved(res)
    assert res.requests == 20 and res.completed == 19 and res.errors == {"closed": 1}
    assert res.connects == 2


# --- arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("https://127.0.0.1:8443/", "https is not supported yet"),
    ("http://example.com/", "only a server on this machine's loopback"),
    ("http://10.0.0.1:80/", "only a server on this machine's loopback"),
    ("ftp://127.0.0.1/", "url must be http://HOST"),
    ("http://127.0.0.1:99999/", "not a port number"),
    ("http://u:p@127.0.0.1/", "must not carry a user"),
])
def test_http_targets_refuse_what_they_cannot_reach(url, message):
    with pytest.raises(cm.ArgumentError, match=message):
        HttpTarget(url)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"method": "GE T"}, cm.ArgumentError, "method must be an HTTP method"),
    ({"headers": {"Content-Length": "3"}}, cm.ArgumentError, "written by the target itself"),
    ({"headers": {"X-A": "b\r\nEvil: 1"}}, cm.ArgumentError, "holds a CR, LF or NUL"),
    ({"headers": [("bad name", "v")]}, cm.ArgumentError, "not an HTTP token"),
    ({"headers": "X-A: b"}, cm.ArgumentTypeError, "headers must be a mapping"),
    ({"body": "text"}, cm.ArgumentTypeError, "body must be bytes-like, got str"),
    ({"connections": 0}, cm.ArgumentError, "connections must be >= 1"),
    ({"connections": True}, cm.ArgumentTypeError, "connections must be an int"),
    ({"timeout": 0}, cm.ArgumentError, "timeout must be a finite number > 0"),
    ({"timeout": "soon"}, cm.ArgumentError, "timeout"),
    ({"pipeline": 0}, cm.ArgumentError, "pipeline must be >= 1"),
    ({"pipeline": 5000}, cm.ArgumentError, "pipeline must be <= 1024"),
    ({"pipeline": 1000, "connections": 2000}, cm.ArgumentError,
     "connections x pipeline must be at most 1,000,000 requests in flight, got 2000 x 1000"),
])
def test_http_target_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        HttpTarget("http://127.0.0.1:8080/", **kwargs)


def test_an_http_request_is_built_once_with_host_and_length():
    t = HttpTarget("http://localhost:8080/a/b?x=1", method="PUT", headers=[("X-Y", "z")],
                   body=b"{}")
    assert t.request == (b"PUT /a/b?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nX-Y: z\r\n"
                         b"Content-Length: 2\r\n\r\n{}")
    assert HttpTarget("http://127.0.0.1/").request == b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"
    with pytest.raises(AttributeError, match="immutable"):
        t.timeout = 3


@pytest.mark.parametrize("kwargs, message", [
    ({"framing": "lines"}, "framing must be one of 'line', 'length', 'fixed', got 'lines' "
                           r"\(did you mean 'line'\?\)"),
    ({"framing": "fixed"}, "framing='fixed' needs reply_size"),
    ({"framing": "length", "length_size": 3}, "length_size must be 1, 2, 4 or 8"),
    ({"framing": "length", "byteorder": "middle"}, "byteorder must be one of 'big', 'little'"),
    ({"framing": "line", "length_size": 2}, "apply to framing='length', not 'line'"),
    ({"framing": "line", "reply_size": 2}, "reply_size applies to framing='fixed'"),
    ({"payload": b""}, "payload is empty"),
])
def test_tcp_target_arguments_are_checked(kwargs, message):
    kwargs = {"payload": b"x\n", **kwargs}
    with pytest.raises(cm.ArgumentError, match=message):
        TcpTarget("127.0.0.1", 9000, **kwargs)
    with pytest.raises(cm.ArgumentError, match="port must be <= 65535"):
        TcpTarget("127.0.0.1", 70000, payload=b"x")
    with pytest.raises(cm.ArgumentError, match="loopback"):
        TcpTarget("192.168.1.1", 9000, payload=b"x")


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, cm.ArgumentError, "give stages, or rate= .* and duration="),
    ({"rate": 100, "duration": 1, "closed": True}, cm.ArgumentError, "closed loop sends as fast"),
    ({"closed": True}, cm.ArgumentError, "a closed loop needs duration="),
    ({"closed": 1, "duration": 1}, cm.ArgumentTypeError, "closed must be a bool"),
    ({"rate": "fast", "duration": 1}, cm.ArgumentError, "rate"),
    ({"rate": 100, "duration": 1, "max_queue": -1}, cm.ArgumentError, "max_queue must be >= 0"),
    ({"rate": 100, "duration": 1, "deadline": 0}, cm.ArgumentError, "deadline must be"),
    ({"rate": 100, "duration": 1, "on_interval": 3}, cm.ArgumentTypeError, "on_interval must be"),
    ({"stages": [(100, 1), (5, -1)]}, cm.ArgumentError, "stage 1's duration"),
])
def test_load_network_checks_every_argument_before_sending(kwargs, error, message):
    port = free_port()       # nothing listens: a check that let a run start would fail later
    with pytest.raises(error, match=message):
        load_network(HttpTarget(f"http://127.0.0.1:{port}/"), **kwargs)
    with pytest.raises(cm.ArgumentTypeError, match="target must be an HttpTarget, a TcpTarget or "
                                                   "a WebSocketTarget"):
        load_network("http://127.0.0.1/", rate=1, duration=1)


def test_on_interval_sees_each_interval_and_its_error_stops_the_run(serve):
    async def handler(reader, writer):
        while True:
            line = await reader.readuntil(b"\n")
            writer.write(line)

    server = serve(handler)
    target = TcpTarget("127.0.0.1", server.port, payload=b"x\n", connections=2)
    seen = []
    res = load_network(target, rate=100, duration=0.35, interval=0.1, on_interval=seen.append)
    assert seen and tuple(seen) == res.intervals
    assert all(isinstance(iv, cm.LoadInterval) for iv in seen)

    def fail(iv):
        raise RuntimeError("stop here")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="stop here"):
        load_network(target, rate=100, duration=30, interval=0.05, on_interval=fail)
    assert time.monotonic() - t0 < 10


def test_a_network_result_checks_its_counts():
    h = cm.Histogram(1, 3_600_000_000_000, 3)
    fields = dict(requests=10, completed=7, failed=2, dropped=0, planned=10, elapsed_ns=1,
                  duration_ns=1, latency=h, latency_uncorrected=h, send_jitter=h,
                  errors={"timeout": 2})
    r = NetworkResult(connect_time=h, in_flight=1, status_classes={"2xx": 7}, **fields)
    assert r.in_flight == 1 and r.status_classes == {"2xx": 7} and r.errors == {"timeout": 2}
    with pytest.raises(ValueError, match=r"requests \(10\) must be completed \+ failed \+ "
                                         r"in_flight \(7 \+ 2 \+ 0\)"):
        NetworkResult(connect_time=h, **fields)
    with pytest.raises(TypeError, match="connect_time must be a Histogram"):
        NetworkResult(connect_time=None, in_flight=1, **fields)
