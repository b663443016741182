"""Network targets: a server on the loopback, loaded from the compiled core.

An :class:`HttpTarget` (an HTTP/1.1 server, pipelined or not), a
:class:`TcpTarget` (a TCP server whose replies are lines, length-prefixed
frames or of a fixed size) or a :class:`WebSocketTarget` (a WebSocket
server, RFC 6455) says what to send and how to read the reply;
:func:`load_network` drives it at the arrival rate of k6-style stages
(latency from each request's intended start, so the wait for a busy
connection is measured) or in a closed loop (each connection sends again
when its reply is in, as wrk does).  The sending, reading and timing run
in the core's network loop (``_net.pxi``) on one thread without the GIL;
this module checks the arguments and builds the request's bytes, once.

    target = HttpTarget("http://127.0.0.1:8080/", connections=50)
    result = load_network(target, rate="20K/s", duration="10s")
    result.latency.value_at_percentile(99), result.status_classes, result.errors

Only 127.0.0.1 (or ``localhost``) is reached for now, over plain HTTP and
``ws://``.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping

from ._checks import (
    ArgumentError,
    ArgumentTypeError,
    Stages,
    choice,
    integer,
    optional,
    seconds,
    size,
)
from ._checks import stages as stages_of
from ._core import LoadInterval, NetworkResult, network_loop

__all__ = ["HttpTarget", "TcpTarget", "WebSocketTarget", "load_network"]

_LOOPBACK = ("127.0.0.1", "localhost")
# RFC 9110's token: a method's or a header name's characters
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FRAMINGS = ("line", "length", "fixed")
_MAX_CONNECTIONS = 100_000
_MAX_PIPELINE = 1024
_MAX_IN_FLIGHT = 1_000_000          # the core's rings of requests: 24 bytes each
# headers the target writes itself: a body's length is always Content-Length
_OWN_HEADERS = ("content-length", "transfer-encoding")
# and a WebSocket handshake's (no extension is offered: frames are read as sent)
_WS_OWN_HEADERS = _OWN_HEADERS + ("upgrade", "connection", "sec-websocket-key",
                                  "sec-websocket-version", "sec-websocket-extensions")
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"      # RFC 6455, 1.3
_WS_OPCODES = {"text": 1, "binary": 2}


def _loopback(host: object, what: str) -> str:
    if not isinstance(host, str):
        raise ArgumentTypeError(f"{what}: host must be a str, not {type(host).__name__}")
    if host not in _LOOPBACK:
        raise ArgumentError(f"{what}: only a server on this machine's loopback can be loaded for "
                            f"now (host '127.0.0.1' or 'localhost'), got {host!r}")
    return host


def _split_url(url: object, scheme: str, what: str, insecure_only: str) -> tuple[str, int | None,
                                                                          str]:
    """(host, port or None, path with its query) of a ``scheme``:// URL to
    this machine's loopback, checked; ``insecure_only`` names what the
    secure scheme would need ("plain HTTP/1.1 only")."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ArgumentTypeError(f"{what}: url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme != scheme:
        if parts.scheme == scheme + "s":
            raise ArgumentError(f"{what}: {scheme}s is not supported yet ({insecure_only}), "
                                f"got {url!r}")
        raise ArgumentError(f"{what}: url must be {scheme}://HOST[:PORT]/PATH, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ArgumentError(f"{what}: url must not carry a user or password, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ArgumentError(f"{what}: url's port is not a port number (1-65535): "
                            f"{url!r}") from None
    host = _loopback(parts.hostname or "", what)
    if port == 0:
        raise ArgumentError(f"{what}: url's port must be 1-65535, got 0")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path for c in " \r\n\0") or not path.isascii():
        raise ArgumentError(f"{what}: url's path must be ASCII without spaces or control "
                            f"characters (percent-encode them), got {path!r}")
    return host, port, path


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, str):
        raise ArgumentTypeError(f"{what} must be bytes-like, got str (encode it)")
    try:
        return bytes(memoryview(value))  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentTypeError(f"{what} must be bytes-like, not {type(value).__name__}") from None


def _connections(value: object, what: str) -> int:
    return integer(value, f"{what}: connections", low=1, high=_MAX_CONNECTIONS)


def _pipeline(value: object, connections: int, what: str) -> int:
    depth = integer(value, f"{what}: pipeline", low=1, high=_MAX_PIPELINE)
    if connections * depth > _MAX_IN_FLIGHT:
        raise ArgumentError(f"{what}: connections x pipeline must be at most {_MAX_IN_FLIGHT:,} "
                            f"requests in flight, got {connections} x {depth}")
    return depth


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept a server answers ``key`` with (RFC 6455,
    4.2.2): base64 of the SHA-1 of the key and the protocol's GUID."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _WS_GUID).digest()).decode("ascii")


def _header_pairs(headers: object, what: str,
                  own: tuple[str, ...] = _OWN_HEADERS) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        items: Iterable[object] = headers.items()
    elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise ArgumentTypeError(f"{what}: headers must be a mapping or (name, value) pairs, "
                                f"not {type(headers).__name__}")
    else:
        items = headers
    pairs = []
    name: object
    value: object
    for index, item in enumerate(items):
        try:
            name, value = item  # type: ignore[misc]
        except (TypeError, ValueError):
            raise ArgumentError(f"{what}: header {index} must be a (name, value) pair, "
                                f"got {item!r}") from None
        if not isinstance(name, str) or not isinstance(value, str):
            raise ArgumentTypeError(f"{what}: header {index}'s name and value must be str, got "
                                    f"{type(name).__name__} and {type(value).__name__}")
        if not _TOKEN.fullmatch(name):
            raise ArgumentError(f"{what}: header name {name!r} is not an HTTP token "
                                f"(letters, digits and !#$%&'*+.^_`|~-)")
        if any(c in value for c in "\r\n\0"):
            raise ArgumentError(f"{what}: header {name!r}'s value holds a CR, LF or NUL: "
                                f"{value!r}")
        if name.lower() in own:
            why = ("Content-Length from body=" if name.lower() in _OWN_HEADERS
                   else "the WebSocket handshake's")
            raise ArgumentError(f"{what}: header {name!r} is written by the target itself "
                                f"({why}); leave it out")
        if not value.isascii():
            raise ArgumentError(f"{what}: header {name!r}'s value must be ASCII, got {value!r}")
        pairs.append((name, value))
    return pairs


class HttpTarget:
    """An HTTP/1.1 server on the loopback: ``method`` ``url`` with
    ``headers`` and ``body``, over ``connections`` keep-alive connections.
    ``pipeline`` (1: none) is how many requests each connection keeps
    outstanding at most (HTTP/1.1 pipelining); replies answer them in
    order, and each request's latency counts from its intended start.
    A request fails after ``timeout`` (seconds, or "2s", "500ms"); a reply
    whose status line and headers exceed ``max_response`` (bytes, or
    "64KB") fails as "framing".  A reply other than 2xx is a failure of
    kind "status".  A failure that closes a connection (a reset, a
    timeout, bad framing) fails every request outstanding on it, as the
    same kind; those behind a reply that closes the connection fail as
    "closed".  Immutable; ``request`` holds the bytes sent."""

    __slots__ = ("url", "host", "port", "path", "method", "headers", "body", "connections",
                 "pipeline", "timeout", "max_response", "request")

    url: str
    host: str
    port: int
    path: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connections: int
    pipeline: int
    timeout: float
    max_response: int
    request: bytes

    def __init__(self, url: str, *, method: str = "GET",
                 headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                 body: bytes | bytearray | memoryview = b"", connections: int = 50,
                 pipeline: int = 1, timeout: float | str = 10.0,
                 max_response: int | str = "1MiB") -> None:
        what = "HttpTarget"
        host, port, path = _split_url(url, "http", what, "plain HTTP/1.1 only")
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise ArgumentError(f"{what}: method must be an HTTP method (a token, e.g. 'GET', "
                                f"'POST'), got {method!r}")
        pairs = _header_pairs(headers, what)
        data = _bytes(body, f"{what}: body")
        self.url, self.host, self.port, self.path = url, host, port or 80, path
        self.method, self.headers, self.body = method, tuple(pairs), data
        self.connections = _connections(connections, what)
        self.pipeline = _pipeline(pipeline, self.connections, what)
        self.timeout = seconds(timeout, f"{what}: timeout")
        self.max_response = size(max_response, f"{what}: max_response", low=64)
        lines = [f"{method} {path} HTTP/1.1"]
        if not any(name.lower() == "host" for name, _ in pairs):
            lines.append(f"Host: {host}:{self.port}")
        lines += [f"{name}: {value}" for name, value in pairs]
        if data or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(data)}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + data

    def with_connections(self, connections: int) -> HttpTarget:
        """The same target over ``connections`` connections (a worker's share)."""
        return HttpTarget(self.url, method=self.method, headers=self.headers, body=self.body,
                          connections=connections, pipeline=self.pipeline,
                          timeout=self.timeout, max_response=self.max_response)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "request"):
            raise AttributeError(f"HttpTarget is immutable; make a new one to change {name}")
        object.__setattr__(self, name, value)

    def _loop_arguments(self) -> dict[str, object]:
        return {"protocol": "http", "port": self.port, "request": self.request,
                "connections": self.connections, "pipeline": self.pipeline,
                "timeout": self.timeout, "max_response": self.max_response,
                "head": self.method == "HEAD"}

    def __repr__(self) -> str:
        pipelined = f", pipeline={self.pipeline}" if self.pipeline > 1 else ""
        return (f"HttpTarget({self.url!r}, method={self.method!r}, "
                f"connections={self.connections}{pipelined}, timeout={self.timeout:g})")


class TcpTarget:
    """A TCP server on the loopback: ``payload`` is sent as is for each
    request, over ``connections`` connections kept open; the reply is read
    by its ``framing``: "line" (up to and with b"\\n"), "length" (a
    ``length_size``-byte length, 1, 2, 4 (the default) or 8, in
    ``byteorder`` "big" (the default) or "little", then that many bytes) or
    "fixed" (``reply_size`` bytes).  A reply that breaks its framing, or
    bytes beyond it, fail as "framing"; a reply longer than
    ``max_response`` too.  A request fails after ``timeout``.  Immutable."""

    __slots__ = ("host", "port", "payload", "framing", "length_size", "byteorder", "reply_size",
                 "connections", "timeout", "max_response")

    host: str
    port: int
    payload: bytes
    framing: str
    length_size: int | None
    byteorder: str | None
    reply_size: int | None
    connections: int
    timeout: float
    max_response: int

    def __init__(self, host: str, port: int, *, payload: bytes | bytearray | memoryview,
                 framing: str = "line", length_size: int | None = None,
                 byteorder: str | None = None, reply_size: int | None = None,
                 connections: int = 50, timeout: float | str = 10.0,
                 max_response: int | str = "1MiB") -> None:
        what = "TcpTarget"
        host = _loopback(host, what)
        port = integer(port, f"{what}: port", low=1, high=65535)
        data = _bytes(payload, f"{what}: payload")
        if not data:
            raise ArgumentError(f"{what}: payload is empty; a server would have nothing to answer")
        framing = choice(framing, f"{what}: framing", _FRAMINGS)
        if framing != "length" and (length_size is not None or byteorder is not None):
            raise ArgumentError(f"{what}: length_size and byteorder apply to framing='length', "
                                f"not {framing!r}")
        if framing != "fixed" and reply_size is not None:
            raise ArgumentError(f"{what}: reply_size applies to framing='fixed', not {framing!r}")
        if framing == "length":
            length_size = 4 if length_size is None else integer(length_size,
                                                                f"{what}: length_size")
            if length_size not in (1, 2, 4, 8):
                raise ArgumentError(f"{what}: length_size must be 1, 2, 4 or 8 bytes, "
                                    f"got {length_size!r}")
            byteorder = choice("big" if byteorder is None else byteorder,
                               f"{what}: byteorder", ("big", "little"))
        if framing == "fixed":
            if reply_size is None:
                raise ArgumentError(f"{what}: framing='fixed' needs reply_size (bytes per reply)")
            reply_size = size(reply_size, f"{what}: reply_size", low=1)
        self.host, self.port, self.payload, self.framing = host, port, data, framing
        self.length_size, self.byteorder, self.reply_size = length_size, byteorder, reply_size
        self.connections = _connections(connections, what)
        self.timeout = seconds(timeout, f"{what}: timeout")
        self.max_response = size(max_response, f"{what}: max_response", low=1)
        if reply_size is not None and reply_size > self.max_response:
            raise ArgumentError(f"{what}: reply_size {reply_size} is beyond max_response "
                                f"{self.max_response}")

    def with_connections(self, connections: int) -> TcpTarget:
        """The same target over ``connections`` connections (a worker's share)."""
        return TcpTarget(self.host, self.port, payload=self.payload, framing=self.framing,
                         length_size=self.length_size, byteorder=self.byteorder,
                         reply_size=self.reply_size, connections=connections,
                         timeout=self.timeout, max_response=self.max_response)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "max_response"):
            raise AttributeError(f"TcpTarget is immutable; make a new one to change {name}")
        object.__setattr__(self, name, value)

    def _loop_arguments(self) -> dict[str, object]:
        return {"protocol": self.framing, "port": self.port, "request": self.payload,
                "connections": self.connections, "timeout": self.timeout,
                "max_response": self.max_response, "length_size": self.length_size or 4,
                "little_endian": self.byteorder == "little", "reply_size": self.reply_size or 0}

    def __repr__(self) -> str:
        return (f"TcpTarget({self.host!r}, {self.port}, framing={self.framing!r}, "
                f"connections={self.connections}, timeout={self.timeout:g})")


class WebSocketTarget:
    """A WebSocket server on the loopback (RFC 6455, ``ws://`` only): each
    request is one message of ``payload``, sent as ``opcode`` "binary" (the
    default) or "text" (the payload must be UTF-8) in a masked frame, over
    ``connections`` connections kept open.  Each connection opens with an
    HTTP/1.1 Upgrade (with ``headers``, e.g. a Sec-WebSocket-Protocol); its
    time with the TCP connect is the connect time, apart from requests'
    latency.  A reply other than 101, or without the Sec-WebSocket-Accept
    the key asks for, fails the connection as "handshake".

    A whole message from the server (its fragments joined, at most
    ``max_response`` bytes) is a reply.  ``pipeline`` messages may be
    outstanding on a connection at once.  Replies answer requests in order,
    unless ``correlation=(offset, length)``: then the core writes an id into
    each request's payload at that place (``length`` 1-8 bytes; big-endian
    binary, or lower-case hex digits in a text message), and a reply answers
    the outstanding request whose id it carries at the same place, in any
    order (a reply without a known id is "framing").  Pings are answered
    with pongs; a close from the server closes the connection (its requests
    fail as "closed") and the next request reconnects.  Frames that break
    the protocol (reserved bits or opcodes, a masked server frame, a control
    frame fragmented or longer than 125 bytes, a continuation of no message,
    an unasked-for message) fail as "framing"; a text reply's UTF-8 is not
    checked.  A request fails after ``timeout``; a failure that closes a
    connection fails every request on it, as the same kind.  At the run's
    end each connection up is closed with a close frame (1000).
    Immutable."""

    __slots__ = ("url", "host", "port", "path", "payload", "opcode", "headers", "connections",
                 "pipeline", "correlation", "timeout", "max_response")

    url: str
    host: str
    port: int
    path: str
    payload: bytes
    opcode: str
    headers: tuple[tuple[str, str], ...]
    connections: int
    pipeline: int
    correlation: tuple[int, int] | None
    timeout: float
    max_response: int

    def __init__(self, url: str, *, payload: bytes | bytearray | memoryview,
                 opcode: str = "binary",
                 headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                 connections: int = 50, pipeline: int = 1,
                 correlation: tuple[int, int] | None = None, timeout: float | str = 10.0,
                 max_response: int | str = "1MiB") -> None:
        what = "WebSocketTarget"
        host, port, path = _split_url(url, "ws", what, "plain ws:// only")
        data = _bytes(payload, f"{what}: payload")
        opcode = choice(opcode, f"{what}: opcode", tuple(_WS_OPCODES))
        pairs = _header_pairs(headers, what, _WS_OWN_HEADERS)
        self.url, self.host, self.port, self.path = url, host, port or 80, path
        self.payload, self.opcode, self.headers = data, opcode, tuple(pairs)
        self.connections = _connections(connections, what)
        self.pipeline = _pipeline(pipeline, self.connections, what)
        self.timeout = seconds(timeout, f"{what}: timeout")
        self.max_response = size(max_response, f"{what}: max_response", low=1)
        window: tuple[int, int] | None = None
        if correlation is not None:
            if isinstance(correlation, (str, bytes)) or not isinstance(correlation, Iterable):
                raise ArgumentTypeError(f"{what}: correlation must be (offset, length), not "
                                        f"{type(correlation).__name__}")
            items = tuple(correlation)
            if len(items) != 2:
                raise ArgumentError(f"{what}: correlation must be (offset, length), "
                                    f"got {correlation!r}")
            offset = integer(items[0], f"{what}: correlation's offset", low=0)
            length = integer(items[1], f"{what}: correlation's length", low=1, high=8)
            if offset + length > len(data):
                raise ArgumentError(f"{what}: correlation's bytes {offset}..{offset + length} "
                                    f"lie beyond the {len(data)}-byte payload")
            ids = 16 ** length if opcode == "text" else 256 ** length
            if self.pipeline >= ids:
                raise ArgumentError(f"{what}: {length}-byte ids give {ids} ids, too few for "
                                    f"pipeline={self.pipeline}: make the correlation longer")
            window = (offset, length)
            data = data[:offset] + b"0" * length + data[offset + length:]   # as the ids will
        if opcode == "text":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ArgumentError(f"{what}: a text message's payload must be UTF-8: "
                                    f"{e}") from None
        self.correlation = window

    @property
    def pairing(self) -> str:
        """How replies find their requests: "order" or "correlation"."""
        return "order" if self.correlation is None else "correlation"

    def with_connections(self, connections: int) -> WebSocketTarget:
        """The same target over ``connections`` connections (a worker's share)."""
        return WebSocketTarget(self.url, payload=self.payload, opcode=self.opcode,
                               headers=self.headers, connections=connections,
                               pipeline=self.pipeline, correlation=self.correlation,
                               timeout=self.timeout, max_response=self.max_response)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "correlation"):
            raise AttributeError(f"WebSocketTarget is immutable; make a new one to change {name}")
        object.__setattr__(self, name, value)

    def handshake(self, key: str) -> bytes:
        """The Upgrade request of a connection that offers ``key``."""
        lines = [f"GET {self.path} HTTP/1.1"]
        if not any(name.lower() == "host" for name, _ in self.headers):
            lines.append(f"Host: {self.host}:{self.port}")
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                  "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    def _loop_arguments(self) -> dict[str, object]:
        # a fresh key each run, one for all its connections: a server checks
        # its form and answers with its accept; the core checks the accept
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        return {"protocol": "websocket", "port": self.port, "request": self.payload,
                "connections": self.connections, "pipeline": self.pipeline,
                "timeout": self.timeout, "max_response": self.max_response,
                "handshake": self.handshake(key),
                "accept": websocket_accept(key).encode("ascii"),
                "opcode": _WS_OPCODES[self.opcode], "correlation": self.correlation}

    def __repr__(self) -> str:
        extra = f", pipeline={self.pipeline}" if self.pipeline > 1 else ""
        if self.correlation is not None:
            extra += f", correlation={self.correlation}"
        return (f"WebSocketTarget({self.url!r}, opcode={self.opcode!r}, "
                f"connections={self.connections}{extra}, timeout={self.timeout:g})")



NETWORK_TARGETS = (HttpTarget, TcpTarget, WebSocketTarget)
"""The network targets' classes: what load_network (the core's network loop) drives."""


def load_network(target: HttpTarget | TcpTarget | WebSocketTarget,
                 stages: Stages | None = None, *,
                 rate: float | str | None = None, duration: float | str | None = None,
                 start_rate: float | str | None = None, closed: bool = False,
                 max_queue: int = 10_000, deadline: float | str | None = None,
                 interval: float | str = 1.0,
                 on_interval: Callable[[LoadInterval], object] | None = None,
                 stripe: bytes | None = None) -> NetworkResult:
    """Load ``target`` (an HttpTarget, a TcpTarget or a WebSocketTarget)
    from the core's network loop and return what it measured (a
    NetworkResult, an OpenLoopResult with the connect times, status classes
    and connection errors beside).

    Open loop (the default): arrivals at the rate ``stages`` describe
    ([(rate, duration), ...], k6's ramping arrival rate, as open_loop's),
    or a constant ``rate`` for ``duration``; latency counts from each
    request's intended start.  A request due while every connection is
    busy waits (at most ``max_queue``; beyond that the backlog is dropped
    and counted in ``dropped``).  Closed loop (``closed=True``, with
    ``duration``): each connection sends its next request as soon as its
    reply is in (a pipelined target's keeps ``pipeline`` outstanding), for
    a throughput to set beside wrk's.

    ``deadline`` (seconds from the start; default: the schedule's length
    plus the target's timeout) stops the sending; what still waits is
    dropped, and what is in flight ends within the timeout, so a run ends
    by deadline + timeout at the latest.  Ctrl-C stops at once with the
    result so far (``interrupted``).  ``on_interval`` is called with each
    ``interval``'s LoadInterval.  ``stripe``: this loop's share of the
    schedule (caxton_meter.stripes), as open_loop's.  Every argument is
    checked before anything is sent."""
    what = "load_network"
    if not isinstance(target, (HttpTarget, TcpTarget, WebSocketTarget)):
        raise ArgumentTypeError(f"{what}: target must be an HttpTarget, a TcpTarget or a "
                                f"WebSocketTarget, not {type(target).__name__}")
    if not isinstance(closed, bool):
        raise ArgumentTypeError(f"{what}: closed must be a bool, not {type(closed).__name__}")
    plan: list[tuple[float, float]] | None
    start: float | None
    if closed:
        if stages is not None or rate is not None or start_rate is not None:
            raise ArgumentError(f"{what}: a closed loop sends as fast as replies come; give "
                                f"duration= only, not stages, rate or start_rate")
        if duration is None:
            raise ArgumentError(f"{what}: a closed loop needs duration= (seconds, or '10s')")
        length = seconds(duration, f"{what}: duration")
        plan, start = None, None
    else:
        plan, start, schedule = stages_of(what, stages, rate, duration, start_rate, stripe)
        length = schedule.duration_ns / 1e9
    queue = integer(max_queue, f"{what}: max_queue", low=0)
    stop = optional(seconds)(deadline, f"{what}: deadline")
    every = seconds(interval, f"{what}: interval")
    if on_interval is not None and not callable(on_interval):
        raise ArgumentTypeError(f"{what}: on_interval must be callable, not "
                                f"{type(on_interval).__name__}")
    if stop is None:
        stop = length + target.timeout
    return network_loop(stages=plan, start_rate=start, closed=closed,
                        duration=length if closed else None, deadline=stop, max_queue=queue,
                        interval=every, on_interval=on_interval, stripe=stripe,
                        **target._loop_arguments())  # type: ignore[arg-type]
