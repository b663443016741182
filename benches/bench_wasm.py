"""WebAssembly agent benchmarks: the core's C path into wasmtime against
wasmtime-py, the wasmtime package's own Python API, measured in the same run
on an engine configured alike (no signal-based traps, 1 MiB memory
reservation, no guard, 128 KiB wasm stack).

- per message: a 64-byte message to the echo agent, in its I/O area, the
  call, the reply read.  Ours: cm_wasm_handle in a C loop (the router's path;
  the reply is left in the agent's memory for the router to use).  wasmtime-py:
  Memory.write + Func.__call__ + Memory.read; and Func.__call__ alone.
- spawn: a Store, an instance and its exports per agent, 10,000 agents
  (wasmtime-py: 1,000); the memory they take (RSS) and the mappings.
- recovery: a trapping call, the Store deleted, a fresh agent spawned, its
  first call.

    python benches/bench_wasm.py [--quick]
"""
from __future__ import annotations

import gc
import os
from time import perf_counter_ns

from caxton_meter._core import (Histogram, WasmInstance, WasmModule, _bench_handle, _WasmAgents)
from caxton_meter.agents import path
from _util import Config, Row, Timing, main

MSG = bytes(range(64))
IO = 0x1000                 # the bundled agents' I/O area
AGENTS = 10_000
PY_AGENTS = 1_000


def best(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    return Timing(ordered[0], ordered[len(ordered) // 2])


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


# --- wasmtime-py, configured like the core's engine ----------------------------------

def py_engine():
    import wasmtime
    config = wasmtime.Config()
    config.signals_based_traps = False
    config.memory_reservation = 1 << 20
    config.memory_guard_size = 0
    config.memory_reservation_for_growth = 0
    config.memory_may_move = False
    config.memory_init_cow = False
    config.max_wasm_stack = 128 * 1024
    return wasmtime.Engine(config)


class PyAgent:
    def __init__(self, engine, module):
        import wasmtime
        self.store = wasmtime.Store(engine)
        self.instance = wasmtime.Instance(self.store, module, [])
        exports = self.instance.exports(self.store)
        self.memory = exports["memory"]
        self.handle = exports["cm_handle"]
        self.io = exports["cm_io"](self.store)


def py_figures(cfg: Config) -> dict:
    import wasmtime
    engine = py_engine()
    echo = wasmtime.Module(engine, path("echo").read_text())
    trap = wasmtime.Module(engine, path("trap").read_text())
    agent = PyAgent(engine, echo)
    store, memory, handle, io = agent.store, agent.memory, agent.handle, agent.io
    n = 2_000 if cfg.quick else 20_000

    def echo_round_trip():
        t0 = perf_counter_ns()
        for _ in range(n):
            memory.write(store, MSG, io)
            length = handle(store, io, 64)
            memory.read(store, io, io + length)
        return (perf_counter_ns() - t0) / n

    def call_only():
        t0 = perf_counter_ns()
        for _ in range(n):
            handle(store, io, 64)
        return (perf_counter_ns() - t0) / n

    assert memory.read(store, io, io + handle(store, io, 0)) == b""
    out = {"echo": best([echo_round_trip() for _ in range(cfg.repeat)]),
           "call": best([call_only() for _ in range(cfg.repeat)])}

    spawns = []
    agents = []
    for _ in range(PY_AGENTS // (10 if cfg.quick else 1)):
        t0 = perf_counter_ns()
        agents.append(PyAgent(engine, echo))
        spawns.append(perf_counter_ns() - t0)
    out["spawn"] = best(spawns)
    del agents

    victim = PyAgent(engine, trap)
    samples = []
    for _ in range(100 if cfg.quick else 1000):
        t0 = perf_counter_ns()
        try:
            victim.handle(victim.store, victim.io, 0)       # empty message: unreachable
        except wasmtime.Trap:
            pass
        victim = PyAgent(engine, trap)
        victim.memory.write(victim.store, b"e", victim.io)
        victim.handle(victim.store, victim.io, 1)
        samples.append(perf_counter_ns() - t0)
    out["recover"] = best(samples)
    return out


# --- the core ----------------------------------------------------------------------

def run(cfg: Config) -> list[Row]:
    echo = WasmModule(path("echo").read_text())
    inst = WasmInstance(echo)
    n = 200_000 if cfg.quick else 2_000_000
    assert inst.handle(MSG) == MSG
    handle = best([_bench_handle(inst, MSG, n) / n for _ in range(cfg.repeat)])
    py = py_figures(cfg)

    rows = [
        Row("echo 64 B: copy in, cm_handle, reply", "ns", handle, py["echo"],
            section="10. WASM agents alone, per message (vs wasmtime-py)"),
        Row("  against wasmtime-py's Func.__call__ alone (no copies)", "ns", handle, py["call"],
            section="10. WASM agents alone, per message (vs wasmtime-py)"),
    ]

    gc.collect()
    count = AGENTS // (10 if cfg.quick else 1)
    agents = _WasmAgents(echo, count)
    hist = Histogram(1, 10**10, 3)
    r0, m0 = rss(), mappings()
    spawn_ns = agents.spawn(hist)
    r1, m1 = rss(), mappings()
    rr_ns = agents.round_robin(MSG, count)                 # first message to each
    r2 = rss()
    rr2_ns = agents.round_robin(MSG, 5 * count)            # and then, round robin
    destroy_ns = agents.destroy()
    per_spawn = spawn_ns / count
    rows += [
        Row(f"spawn, {count:,} agents from one module (per agent)", "ns",
            Timing(per_spawn, per_spawn), py["spawn"], section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  spawn p50 / p99", "ns",
            f"{hist.value_at_percentile(50) / 1e3:.1f} / {hist.value_at_percentile(99) / 1e3:.1f} us",
            section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  RSS per agent, spawned", "KiB", round((r1 - r0) / count / 1024, 1),
            section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  RSS per agent, after one message", "KiB", round((r2 - r0) / count / 1024, 1),
            section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  memory mappings per agent", "", round((m1 - m0) / count, 2),
            section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  first message to each, round robin", "ns", rr_ns / count, section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  then round robin over all", "ns", rr2_ns / (5 * count), section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
        Row("  destroy (per agent)", "ns", destroy_ns / count, section="11. WASM agents alone, spawn and memory (vs wasmtime-py)"),
    ]
    del agents

    victims = _WasmAgents(WasmModule(path("trap").read_text()), 1)
    victims.spawn()
    reps = 100 if cfg.quick else 1000
    victims.recover(0, b"", b"e", 10)                      # the first trap in a process is slower
    rec = [victims.recover(0, b"", b"e", reps // 10) for _ in range(10)]
    total = [r["trap_ns"] + r["destroy_ns"] + r["spawn_ns"] + r["first_call_ns"] for r in rec]
    median = sorted(rec, key=lambda r: r["trap_ns"] + r["destroy_ns"] + r["spawn_ns"]
                    + r["first_call_ns"])[len(rec) // 2]
    rows += [
        Row("trap, destroy, spawn, first call", "ns", best(total), py["recover"],
            section="12. WASM agents alone, recovery (unreachable trap, vs wasmtime-py)"),
        Row("  of which: trap / destroy / spawn / first call", "ns",
            " / ".join(f"{median[k] / 1e3:.1f}" for k in ("trap_ns", "destroy_ns", "spawn_ns",
                                                           "first_call_ns")) + " us",
            section="12. WASM agents alone, recovery (unreachable trap, vs wasmtime-py)"),
    ]
    return rows


if __name__ == "__main__":
    main(run, "caxton_meter WebAssembly agent benchmarks (alternative: wasmtime-py, same engine config)")
