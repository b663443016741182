"""The Target protocol: how a user's own system (a client of a server, a
library under test) is driven by caxton_meter's load loops.

A target is an object with ``request(payload)``, a plain method (driven by
the compiled open loop, one call at a time) or an ``async def`` (driven by
the asyncio open loop, ``concurrency`` at a time).  Its optional ``setup()``
and ``teardown()`` run before and after the load, outside the measurement,
and ``teardown()`` runs even when the load stops early.  A request that
raises is counted as an error by its exception type; nothing else is
expected of the return value.

    class Client:
        def setup(self):
            self.conn = connect("127.0.0.1", 8080)
        def request(self, payload):
            self.conn.send(payload)
            return self.conn.recv()
        def teardown(self):
            self.conn.close()

    result = drive(Client(), [(1000, 10)], payload=b"ping")
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol, runtime_checkable

from ._aioload import AsyncLoadResult
from ._core import OpenLoopResult, open_loop_call

__all__ = ["AsyncTarget", "Target", "drive", "drive_async"]


@runtime_checkable
class Target(Protocol):
    """A system driven by the compiled open loop: ``request`` is called once
    per arrival, one call at a time."""

    def request(self, payload: bytes) -> object: ...


@runtime_checkable
class AsyncTarget(Protocol):
    """A system driven by the asyncio open loop: ``request`` is a coroutine
    function, started once per arrival, ``concurrency`` at a time."""

    def request(self, payload: bytes) -> Awaitable[object]: ...


def _request_of(target: object, what: str) -> Any:
    request = getattr(target, "request", None)
    if request is None or not callable(request):
        raise TypeError(f"{what}: a target needs a request(payload) method; "
                        f"{type(target).__name__} has none")
    return request


def _payload(payload: bytes | bytearray | memoryview, what: str) -> bytes:
    if isinstance(payload, str):
        raise TypeError(f"{what}: payload must be bytes-like, got str (encode it)")
    try:
        return bytes(memoryview(payload))
    except TypeError:
        raise TypeError(f"{what}: payload must be bytes-like, got "
                        f"{type(payload).__name__}") from None


def _call_hook(target: object, name: str) -> None:
    hook = getattr(target, name, None)
    if hook is not None:
        hook()


def drive(target: Target, stages: Iterable[tuple[float, float]], *,
          payload: bytes | bytearray | memoryview = b"", start_rate: float | None = None,
          max_lateness: float | None = None, interval: float = 1.0,
          deadline: float | None = None) -> OpenLoopResult:
    """Drive ``target.request(payload)`` at the arrival rate ``stages``
    describe (k6's stages, as open_loop_call), between its ``setup()`` and
    ``teardown()``.  Latency counts from each request's intended start."""
    request = _request_of(target, "drive")
    if inspect.iscoroutinefunction(request):
        raise TypeError("drive: target.request is a coroutine function; use drive_async")
    data = _payload(payload, "drive")
    _call_hook(target, "setup")
    try:
        return open_loop_call(request, stages, args=(data,), start_rate=start_rate,
                              max_lateness=max_lateness, interval=interval, deadline=deadline)
    finally:
        _call_hook(target, "teardown")


async def drive_async(target: AsyncTarget, stages: Iterable[tuple[float, float]], *,
                      payload: bytes | bytearray | memoryview = b"", concurrency: int = 100,
                      start_rate: float | None = None, interval: float = 1.0) -> AsyncLoadResult:
    """Drive ``await target.request(payload)`` at the arrival rate ``stages``
    describe, at most ``concurrency`` at a time, between the target's
    ``setup()`` and ``teardown()`` (plain or async methods)."""
    from ._aioload import open_loop_async

    request = _request_of(target, "drive_async")
    data = _payload(payload, "drive_async")
    await _maybe_await(getattr(target, "setup", None))
    try:
        return await open_loop_async(request, stages, args=(data,), concurrency=concurrency,
                                     start_rate=start_rate, interval=interval)
    finally:
        await _maybe_await(getattr(target, "teardown", None))


async def _maybe_await(hook: Any) -> None:
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        await result
