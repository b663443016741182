"""Router benchmarks (Part 2): messages per second through the compiled
router with latency recorded for every message, against what a Python user
would write instead: an asyncio orchestrator with one asyncio.Queue per
agent and the hdrhistogram package recording each message's latency,
measured in the same run.  Spawn time and memory per agent too.

A "message" is one routed message: a request and its reply are two.

    python benches/bench_router.py [--quick]
"""
from __future__ import annotations

import asyncio
import gc
import os
from time import perf_counter_ns

from hdrh.histogram import HdrHistogram

from caxton_meter._core import Router, closed_loop
from _util import HIGHEST, LOWEST, SIGFIGS, Config, Row, Timing, main

AGENTS = 10
WINDOW = 1000


def asyncio_orchestrator(total: int, one_way: bool, record: bool) -> float:
    """msg/s of the plain asyncio alternative: AGENTS echo (or sink) tasks,
    one asyncio.Queue each, WINDOW requests in flight from a client task."""
    hist = HdrHistogram(LOWEST, HIGHEST, SIGFIGS)

    async def run() -> float:
        inboxes = [asyncio.Queue() for _ in range(AGENTS)]
        replies: asyncio.Queue = asyncio.Queue()
        done = asyncio.Event()
        state = {"completed": 0}

        async def agent(inbox: asyncio.Queue) -> None:
            while True:
                msg = await inbox.get()
                if one_way:
                    if record:
                        hist.record_value(perf_counter_ns() - msg[0])
                    state["completed"] += 1
                    if state["completed"] == total:
                        done.set()
                    else:
                        replies.put_nowait(None)       # frees a window slot
                else:
                    replies.put_nowait(msg)

        async def client() -> None:
            sent = 0
            for _ in range(min(WINDOW, total)):
                inboxes[sent % AGENTS].put_nowait((perf_counter_ns(), b""))
                sent += 1
            while not done.is_set():
                msg = await replies.get()
                if not one_way:
                    if record:
                        hist.record_value(perf_counter_ns() - msg[0])
                    state["completed"] += 1
                    if state["completed"] == total:
                        done.set()
                        break
                if sent < total:
                    inboxes[sent % AGENTS].put_nowait((perf_counter_ns(), b""))
                    sent += 1

        tasks = [asyncio.create_task(agent(q)) for q in inboxes]
        t0 = perf_counter_ns()
        await client()
        await done.wait()
        elapsed = perf_counter_ns() - t0
        for t in tasks:
            t.cancel()
        return (total * (1 if one_way else 2)) * 1e9 / elapsed

    return asyncio.run(run())


def best_rate(fn, repeat: int) -> Timing:
    rates = []
    for _ in range(repeat):
        gc.collect()
        rates.append(fn())
    rates.sort()
    return Timing(rates[-1], rates[len(rates) // 2])


def ours(kind: str, total: int, one_way: bool, python: bool = False) -> float:
    r = Router(keep_replies=False)
    if python:
        ids = r.spawn_python((lambda m: None) if one_way else (lambda m: m), count=AGENTS)
    else:
        ids = r.spawn_native(kind, count=AGENTS)
    res = closed_loop(r, ids, total, window=WINDOW, one_way=one_way)
    assert res.completed == total and r.round_trip.total_count + r.delivery.total_count > 0
    return res.messages_per_second


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def spawned(spawn, n: int) -> tuple[Router, float, float]:
    """A router with n agents spawned by spawn(router, n): the router, ns
    per agent spawned, and RSS bytes grown per agent."""
    gc.collect()
    before = rss()
    r = Router()
    t0 = perf_counter_ns()
    spawn(r, n)
    per_agent = (perf_counter_ns() - t0) / n
    return r, per_agent, (rss() - before) / n


def spawn_figures(cfg: Config) -> list[Row]:
    n = 100_000 if cfg.quick else 1_000_000
    section = f"9. spawning {n:,} native agents in one process"
    r, per_agent_ns, grown = spawned(lambda r, n: r.spawn_native("sink", count=n), n)
    return [
        Row("spawn_native(count=N), per agent", "ns", Timing(per_agent_ns, per_agent_ns),
            target="<=2 us", ok=per_agent_ns <= 2000, section=section),
        Row("  spawn_time histogram p50 / p99 (each agent timed)", "ns",
            f"{r.spawn_time.value_at_percentile(50)} / {r.spawn_time.value_at_percentile(99)} ns",
            section=section),
        Row("memory per native agent (RSS growth / N)", "B", round(grown, 1),
            target="<=1 KiB", ok=grown <= 1024, section=section),
    ]


class _Flaky:
    """A Python agent that raises on every 10th message: a fresh instance
    (this class is its factory) comes up after each fault."""

    def __init__(self) -> None:
        self.n = 0

    def handle(self, m):
        self.n += 1
        if self.n % 10 == 0:
            raise RuntimeError("every 10th")
        return m


def recovery_and_python_figures(cfg: Config) -> list[Row]:
    total = 100_000 if cfg.quick else 1_000_000
    section = "9b. recovery (fault -> agent ready) and Python agents' spawn and memory"
    rows = []
    for label, spawn in (("native fail-every-n", lambda r: r.spawn_native("fail-every-n", every=10,
                                                                          count=AGENTS)),
                         ("Python agent, fresh instance", lambda r: r.spawn_python(_Flaky, count=AGENTS))):
        r = Router(keep_replies=False)
        res = closed_loop(r, spawn(r), total, window=WINDOW)
        assert res.failed == r.recovery_time.total_count > 0
        p50, p99 = r.recovery_time.percentiles([50, 99])
        rows.append(Row(f"recovery, {label}: p50 / p99", "ns", f"{p50:,} / {p99:,} ns",
                        target="<=100 us", ok=p99 <= 100_000, section=section))
    n = 10_000 if cfg.quick else 100_000
    r, per_agent, grown = spawned(lambda r, n: r.spawn_python(_Flaky, count=n), n)
    rows.append(Row(f"spawn_python(class, count={n:,}), per agent", "ns",
                    Timing(per_agent, per_agent), section=section))
    rows.append(Row("memory per Python agent (RSS growth / N)", "B", round(grown, 1), section=section))
    return rows


def _wasm(name: str, **options):
    from caxton_meter import WasmModule, agents

    with open(agents.path(name)) as f:
        return WasmModule(f.read(), **options)


def wasm_figures(cfg: Config, rep: int) -> list[Row]:
    """WebAssembly agents through the router: throughput against the asyncio
    orchestrator (whose agents are plain Python, the generous comparison),
    spawn time, memory and recovery."""
    total = 200_000 if cfg.quick else 2_000_000
    echo = _wasm("echo")
    section = "8d. WebAssembly agents (wasmtime, a Store each), one core unless said"

    def rate(workers: int) -> float:
        r = Router(keep_replies=False, workers=workers)
        res = closed_loop(r, r.spawn_wasm(echo, count=AGENTS), total, window=WINDOW,
                          content=b"x" * 64)
        assert res.completed == total
        return res.messages_per_second

    one = best_rate(lambda: rate(0), rep)
    w1 = best_rate(lambda: rate(1), rep)
    w2 = best_rate(lambda: rate(2), rep)
    alt = best_rate(lambda: asyncio_orchestrator(50_000 if cfg.quick else 300_000, False, True), rep)
    rows = [
        Row("WASM echo agents, request/response, 64 B", "/s", one, alt, ">=1 M/s", one.best >= 1e6,
            higher_is_better=True, section=section),
        Row("  2 worker threads vs 1", "/s", w2, w1, higher_is_better=True, section=section),
    ]
    n = 2_000 if cfg.quick else 10_000
    r, per_agent, grown = spawned(lambda r, n: r.spawn_wasm(echo, count=n), n)
    p50, p99 = r.spawn_time.percentiles([50, 99])
    rows += [
        Row(f"spawn_wasm, {n:,} agents in one process, per agent", "ns", Timing(per_agent, per_agent),
            target="<=30 us", ok=per_agent <= 30_000, section=section),
        Row("  spawn_time p50 / p99", "ns", f"{p50:,} / {p99:,} ns", section=section),
        Row("memory per WASM agent (RSS growth / N)", "B", round(grown), target="<=128 KiB",
            ok=grown <= 128 * 1024, section=section),
    ]
    r = Router()
    comp = r.spawn_wasm(_wasm("compute"), units=100)
    r.request(comp, b"warm")
    cps = [r.checkpoint(comp) for _ in range(20)]
    restores = [r.restore(comp, cps[0]) for _ in range(20)]
    rows.append(Row(f"checkpoint / restore of a WASM agent ({cps[0].size:,} B of state)", "ns",
                    f"{min(c.elapsed_ns for c in cps):,} / {min(restores):,} ns", section=section))
    r = Router(keep_replies=False)
    trap = r.spawn_wasm(_wasm("trap"), count=AGENTS)
    closed_loop(r, trap, 2_000 if cfg.quick else 20_000, window=AGENTS)
    p50, p99 = r.recovery_time.percentiles([50, 99])
    rows.append(Row("recovery after a trap (new Store and instance): p50 / p99", "ns",
                    f"{p50:,} / {p99:,} ns", target="<=1 ms", ok=p99 <= 1_000_000, section=section))
    return rows


def run(cfg: Config) -> list[Row]:
    total = 200_000 if cfg.quick else 2_000_000
    alt_total = 50_000 if cfg.quick else 300_000
    py_total = 100_000 if cfg.quick else 1_000_000
    rep = cfg.repeat
    section = (f"8. routing, {AGENTS} agents, {WINDOW} in flight, one core, latency recorded for "
               "every message (vs asyncio + one Queue per agent + hdrh)")
    alt_rr = best_rate(lambda: asyncio_orchestrator(alt_total, False, True), rep)
    alt_ow = best_rate(lambda: asyncio_orchestrator(alt_total, True, True), rep)
    alt_bare = best_rate(lambda: asyncio_orchestrator(alt_total, False, False), rep)
    echo = best_rate(lambda: ours("echo", total, False), rep)
    sink = best_rate(lambda: ours("sink", total, True), rep)
    py_echo = best_rate(lambda: ours("", py_total, False, python=True), rep)
    py_sink = best_rate(lambda: ours("", py_total, True, python=True), rep)
    return [
        Row("native echo, request/response", "/s", echo, alt_rr, ">=10 M/s", echo.best >= 10e6,
            higher_is_better=True, section=section),
        Row("native sink, one-way", "/s", sink, alt_ow, ">=10 M/s", sink.best >= 10e6,
            higher_is_better=True, section=section),
        Row("Python handler agents, request/response", "/s", py_echo, alt_rr, ">=2 M/s",
            py_echo.best >= 2e6, higher_is_better=True, section=section),
        Row("Python handler agents, one-way", "/s", py_sink, alt_ow, ">=2 M/s",
            py_sink.best >= 2e6, higher_is_better=True, section=section),
        Row("  asyncio alternative without recording, request/response", "/s", alt_bare,
            higher_is_better=True, section=section),
    ] + (worker_figures(cfg, rep) + batching_figures(cfg) + wasm_figures(cfg, rep)
         + spawn_figures(cfg) + recovery_and_python_figures(cfg))


def worker_figures(cfg: Config, rep: int) -> list[Row]:
    """Native echo on worker threads without the GIL: two workers against
    one, the same agents and load."""
    total = 400_000 if cfg.quick else 4_000_000

    def rate(workers: int) -> float:
        r = Router(keep_replies=False, workers=workers)
        ids = r.spawn_native("echo", count=AGENTS)
        res = closed_loop(r, ids, total, window=WINDOW)
        assert res.completed == total and r.counts.in_flight == 0
        return res.messages_per_second

    one = best_rate(lambda: rate(1), rep)
    two = best_rate(lambda: rate(2), rep)
    section = "8c. worker threads: native echo, 2 workers vs 1 (same agents, same load)"
    return [Row("2 worker threads vs 1", "/s", two, one, ">=1.7x", two.best / one.best >= 1.7,
                higher_is_better=True, section=section)]


def batching_figures(cfg: Config) -> list[Row]:
    """The MessageBatcher's effect: client sends delivered in batches of 64
    (or after 50 us), against one by one, on the same echo agents."""
    total = 200_000 if cfg.quick else 2_000_000
    section = "8b. the MessageBatcher: batches of 64 client sends (50 us timeout) vs one by one"
    rows = []
    figures = {}
    for label, kwargs in (("batched", dict(flush_size=64, flush_timeout=50e-6)), ("unbatched", {})):
        best = None
        for _ in range(cfg.repeat):
            r = Router(keep_replies=False, **kwargs)
            ids = r.spawn_native("echo", count=AGENTS)
            res = closed_loop(r, ids, total, window=WINDOW)
            if best is None or res.messages_per_second > best[0]:
                best = (res.messages_per_second, r.round_trip.value_at_percentile(99))
        figures[label] = best
    rows.append(Row("echo request/response, msg/s", "/s", Timing(figures["batched"][0], figures["batched"][0]),
                    Timing(figures["unbatched"][0], figures["unbatched"][0]), higher_is_better=True,
                    section=section))
    rows.append(Row("round trip p99", "ns", Timing(figures["batched"][1], figures["batched"][1]),
                    Timing(figures["unbatched"][1], figures["unbatched"][1]), section=section))
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter router benchmarks")
