"""The Target protocol: how a user's own system (a client of a server, a
library under test) is driven by caxton_meter's load loops.

A target is an object with ``request(payload)``, a plain method (driven by
the compiled open loop, one call at a time) or an ``async def`` (driven by
the asyncio open loop, ``concurrency`` at a time).  Its optional ``setup()``
and ``teardown()`` run before and after the load, outside the measurement,
and ``teardown()`` runs even when the load stops early.  A request that
raises is counted as an error by its exception type; nothing else is
expected of the return value.  Both drivers return the core's
OpenLoopResult, as every load loop does.

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
from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

from ._checks import ArgumentTypeError, Stages, integer, optional, seconds
from ._checks import stages as stages_of
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


def target_kind(target: object, what: str) -> str:
    """What drives ``target``: "network target" (an HttpTarget, TcpTarget
    or WebSocketTarget: the core's network loop), "target" (a request(payload)
    method), "async target" (an async one), "coroutine function" or
    "callable".  ArgumentTypeError, named for ``what``, for anything else."""
    from ._network import NETWORK_TARGETS
    if isinstance(target, NETWORK_TARGETS):
        return "network target"
    request = getattr(target, "request", None)
    if request is not None and callable(request) and not inspect.isroutine(target):
        return "async target" if inspect.iscoroutinefunction(request) else "target"
    if inspect.iscoroutinefunction(target):
        return "coroutine function"
    if callable(target):
        return "callable"
    raise ArgumentTypeError(f"{what}: the target must be a callable, a coroutine function, "
                            f"an object with a request(payload) method (caxton_meter.Target "
                            f"or AsyncTarget) or an HttpTarget / TcpTarget, not "
                            f"{type(target).__name__}")


def _request_of(target: object, what: str) -> Any:
    request = getattr(target, "request", None)
    if request is None or not callable(request):
        raise ArgumentTypeError(f"{what}: a target needs a request(payload) method; "
                        f"{type(target).__name__} has none")
    return request


def _payload(payload: bytes | bytearray | memoryview, what: str) -> bytes:
    if isinstance(payload, str):
        raise ArgumentTypeError(f"{what}: payload must be bytes-like, got str (encode it)")
    try:
        return bytes(memoryview(payload))
    except TypeError:
        raise ArgumentTypeError(f"{what}: payload must be bytes-like, got "
                        f"{type(payload).__name__}") from None


def _call_hook(target: object, name: str) -> None:
    hook = getattr(target, name, None)
    if hook is not None:
        hook()


def drive(target: Target, stages: Stages | None = None, *, rate: float | str | None = None,
          duration: float | str | None = None, payload: bytes | bytearray | memoryview = b"",
          start_rate: float | str | None = None, max_lateness: float | str | None = None,
          interval: float | str = 1.0, deadline: float | str | None = None,
          stripe: bytes | None = None) -> OpenLoopResult:
    """Drive ``target.request(payload)`` at the arrival rate ``stages``
    describe (k6's stages, as open_loop_call), or at a constant ``rate`` for
    ``duration``, between its ``setup()`` and ``teardown()``.  Latency
    counts from each request's intended start.  Rates and durations may
    carry their units ("2K/s", "200ms"); ``stripe``: this driver's share of
    the schedule, as open_loop's."""
    what = "drive"
    request = _request_of(target, what)
    if inspect.iscoroutinefunction(request):
        raise ArgumentTypeError(f"{what}: target.request is a coroutine function; use drive_async")
    data = _payload(payload, what)
    plan, start, _ = stages_of(what, stages, rate, duration, start_rate, stripe)
    every = seconds(interval, f"{what}: interval")
    late = optional(seconds)(max_lateness, f"{what}: max_lateness", allow_zero=True)
    stop = optional(seconds)(deadline, f"{what}: deadline")
    _call_hook(target, "setup")
    try:
        return open_loop_call(request, plan, args=(data,), start_rate=start, max_lateness=late,
                              interval=every, deadline=stop, stripe=stripe)
    finally:
        _call_hook(target, "teardown")


async def drive_async(target: AsyncTarget, stages: Stages | None = None, *,
                      rate: float | str | None = None, duration: float | str | None = None,
                      payload: bytes | bytearray | memoryview = b"", concurrency: int = 100,
                      start_rate: float | str | None = None, interval: float | str = 1.0,
                      deadline: float | str | None = None,
                      stripe: bytes | None = None) -> OpenLoopResult:
    """Drive ``await target.request(payload)`` at the arrival rate ``stages``
    describe (or ``rate`` for ``duration``), at most ``concurrency`` at a
    time, between the target's ``setup()`` and ``teardown()`` (plain or
    async methods); ``deadline`` as open_loop_async's."""
    from ._aioload import open_loop_async

    what = "drive_async"
    request = _request_of(target, what)
    data = _payload(payload, what)
    # checked before setup() runs, with this function's name
    plan, start, _ = stages_of(what, stages, rate, duration, start_rate, stripe)
    limit = integer(concurrency, f"{what}: concurrency", low=1)
    every = seconds(interval, f"{what}: interval")
    stop = optional(seconds)(deadline, f"{what}: deadline")
    await _maybe_await(getattr(target, "setup", None))
    try:
        return await open_loop_async(request, plan, args=(data,), concurrency=limit,
                                     start_rate=start, interval=every, deadline=stop,
                                     stripe=stripe)
    finally:
        await _maybe_await(getattr(target, "teardown", None))


async def _maybe_await(hook: Any) -> None:
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        await result
