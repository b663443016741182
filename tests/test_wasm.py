"""WebAssembly agents: modules compiled from WAT or wasm bytes and checked
against the agent ABI, agents spawned from them, traps and limits (epoch
deadline, fuel, memory), checkpoints, and many agents from one module.

pytest runs with faulthandler on: the traps below would be fatal errors if
the engine used signal-based traps."""
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from caxton_meter import _core
from caxton_meter._core import WasmInstance, WasmModule, WasmTrap, compute_reference
from caxton_meter.agents import path

IO_BYTES = 0xC000


def agent(name, **options):
    return WasmModule(path(name).read_text(), **options)


@pytest.fixture(scope="module")
def echo():
    return agent("echo")


@pytest.fixture(scope="module")
def compute():
    return agent("compute")


# A stateful agent for checkpoints: a count in memory and one in an exported
# mutable global, both incremented by every message and replied (2 x i64).
COUNTER = """
(module
  (memory (export "memory") 1)
  (global $calls (export "calls") (mut i64) (i64.const 0))
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (i64.store (local.get $ptr) (i64.load (i32.const 0)))
    (i64.store offset=8 (local.get $ptr) (global.get $calls))
    (i32.const 16))
)
"""


def counts(reply):
    return int.from_bytes(reply[:8], "little"), int.from_bytes(reply[8:], "little")


# --- messages ---------------------------------------------------------------------

@pytest.mark.parametrize("message", [b"", b"x", b"hello, agent", bytes(range(256)) * 4,
                                     b"\xff" * IO_BYTES])
def test_echo_round_trip(echo, message):
    assert WasmInstance(echo).handle(message) == message


def test_echo_accepts_bytes_like(echo):
    inst = WasmInstance(echo)
    assert inst.handle(bytearray(b"abc")) == b"abc"
    assert inst.handle(memoryview(b"xyz123")[1:4]) == b"yz1"


def test_a_message_larger_than_the_io_area_is_refused_and_the_agent_lives_on(echo):
    inst = WasmInstance(echo)
    with pytest.raises(WasmTrap, match="message too large: 49153 bytes") as info:
        inst.handle(b"x" * (IO_BYTES + 1))
    assert info.value.kind == "message too large" and not info.value.is_trap
    assert inst.handle(b"still here") == b"still here"


def test_echo_batch(echo):
    inst = WasmInstance(echo)
    messages = [b"", b"a", b"bc" * 100, bytes(range(200))]
    assert inst.handle_batch(messages) == messages
    assert inst.handle_batch([]) == []


def test_batch_on_a_module_without_cm_handle_batch():
    inst = WasmInstance(agent("trap"))
    with pytest.raises(WasmTrap, match="does not export cm_handle_batch") as info:
        inst.handle_batch([b"e"])
    assert info.value.kind == "no such export"


@pytest.mark.parametrize("units", [0, 1, 7, 1000])
@pytest.mark.parametrize("content", [b"", b"a", b"1234567", b"12345678", b"123456789abc",
                                     bytes(range(250, 256)) * 3])
def test_compute_equals_the_native_compute_agent(compute, content, units):
    inst = WasmInstance(compute, param=units)
    expected = compute_reference(content, units)
    assert inst.handle(content) == expected
    assert inst.handle_batch([content, content]) == [expected, expected]


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=40), units=st.integers(0, 5000))
def test_compute_equals_the_native_compute_agent_property(compute, content, units):
    inst = WasmInstance(compute)
    inst.set_param(units)
    assert inst.handle(content) == compute_reference(content, units)


def test_set_param_on_a_module_without_it(echo):
    with pytest.raises(WasmTrap, match="does not export cm_set_param") as info:
        WasmInstance(echo, param=3)
    assert info.value.kind == "no such export"


# --- faults -------------------------------------------------------------------------

def test_unreachable_trap_then_a_fresh_agent_works():
    module = agent("trap")
    inst = WasmInstance(module)
    with pytest.raises(WasmTrap, match="unreachable") as info:
        inst.handle(b"u")
    assert info.value.kind == "unreachable" and info.value.is_trap
    assert isinstance(info.value, RuntimeError)
    inst.close()
    fresh = WasmInstance(module)
    assert fresh.handle(b"echo me") == b"echo me"


@pytest.mark.parametrize("message, kind", [(b"o", "memory out of bounds"),
                                           (b"s", "stack overflow"),
                                           (b"d", "integer division by zero"),
                                           (b"", "unreachable")])
def test_trap_kinds(message, kind):
    inst = WasmInstance(agent("trap"))
    with pytest.raises(WasmTrap) as info:
        inst.handle(message)
    assert info.value.kind == kind and info.value.is_trap
    assert str(info.value).startswith(kind + ": ")


def test_a_negative_result_is_an_agent_error_and_leaves_the_agent_usable():
    inst = WasmInstance(agent("trap"))
    with pytest.raises(WasmTrap, match="agent error: cm_handle returned -1") as info:
        inst.handle(b"n")
    assert info.value.kind == "agent error" and not info.value.is_trap
    assert inst.handle(b"e2") == b"e2"


def test_an_endless_loop_is_stopped_by_the_epoch_deadline():
    inst = WasmInstance(agent("loop", epoch_deadline_ms=20))
    t0 = time.monotonic()
    with pytest.raises(WasmTrap, match="deadline of 20 ms") as info:
        inst.handle(b"spin")
    assert time.monotonic() - t0 < 5.0
    assert info.value.kind == "interrupt"
    # the deadline is re-armed for every call
    with pytest.raises(WasmTrap, match="interrupt"):
        inst.handle(b"spin")


def test_an_endless_loop_is_stopped_by_fuel():
    inst = WasmInstance(agent("loop", fuel=100_000, epoch_deadline_ms=None))
    t0 = time.monotonic()
    with pytest.raises(WasmTrap, match="100000 units of fuel") as info:
        inst.handle(b"spin")
    assert time.monotonic() - t0 < 5.0
    assert info.value.kind == "out of fuel"
    with pytest.raises(WasmTrap, match="out of fuel"):     # refuelled per call
        inst.handle(b"spin")


def test_fuel_is_per_call_and_enough_fuel_lets_work_finish():
    inst = WasmInstance(agent("compute", fuel=1_000_000), param=1000)
    for _ in range(50):
        assert inst.handle(b"abc") == compute_reference(b"abc", 1000)
    inst.set_param(10_000_000)
    with pytest.raises(WasmTrap, match="out of fuel"):
        inst.handle(b"abc")


def test_memory_limit():
    pages = lambda n: n.to_bytes(4, "little")
    inst = WasmInstance(agent("alloc"))                   # 1 MiB = 16 pages, 1 used
    assert int.from_bytes(inst.handle(pages(10)), "little", signed=True) == 1
    assert inst.memory_size == 11 * 65536
    assert int.from_bytes(inst.handle(pages(5)), "little", signed=True) == 11
    # past the limit: memory.grow returns -1 inside the agent, which reports it
    assert int.from_bytes(inst.handle(pages(1)), "little", signed=True) == -1
    assert inst.memory_size == 1 << 20
    bigger = WasmInstance(agent("alloc", memory_limit=4 << 20))
    assert int.from_bytes(bigger.handle(pages(40)), "little", signed=True) == 1
    assert int.from_bytes(bigger.handle(pages(40)), "little", signed=True) == -1
    with pytest.raises(WasmTrap, match="agent error"):     # too short a message
        bigger.handle(b"")


# --- compiling: errors name the problem ---------------------------------------------

MINIMAL = """(module (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param i32 i32) (result i32) (i32.const 0)) {extra})"""


@pytest.mark.parametrize("source, message", [
    ('(module (memory (export "memory") 1) (func (export "cm_io") (result i32) (i32.const 0)))',
     r"does not export cm_handle \(i32, i32\) -> i32"),
    ('(module (memory (export "memory") 1) (func (export "cm_handle") (param i32 i32) (result i32) '
     '(i32.const 0)))', r"does not export cm_io \(\) -> i32"),
    ('(module (func (export "cm_io") (result i32) (i32.const 0)) (func (export "cm_handle") '
     '(param i32 i32) (result i32) (i32.const 0)))', 'does not export its memory as "memory"'),
    ('(module (memory (export "memory") 1) (func (export "cm_io") (result i32) (i32.const 0)) '
     '(func (export "cm_handle") (param i32) (result i32) (i32.const 0)))',
     r"exports cm_handle as \(i32\) -> i32, the ABI says cm_handle \(i32, i32\) -> i32"),
    (MINIMAL.format(extra='(func (export "cm_handle_batch") (param i32 i32 i32 i32))'),
     r"exports cm_handle_batch as \(i32, i32, i32, i32\)"),
    (MINIMAL.format(extra='(func (export "cm_set_param") (param i32))'),
     r"exports cm_set_param as \(i32\), the ABI says cm_set_param \(i64\)"),
    ("(module (memory (export \"memory\") 17) (func (export \"cm_io\") (result i32) (i32.const 0))"
     " (func (export \"cm_handle\") (param i32 i32) (result i32) (i32.const 0)))",
     r"minimum size, 17 pages \(1114112 bytes\), exceeds memory_limit \(1048576 bytes\)"),
    ("(module (memory (export \"memory\") i64 1) (func (export \"cm_io\") (result i32) (i32.const 0))"
     " (func (export \"cm_handle\") (param i32 i32) (result i32) (i32.const 0)))",
     "32-bit, unshared memory"),
    ("(module (func (export \"cm_io\") (result i32)))", "invalid WebAssembly"),
    ("(module (memory 1) oops)", "invalid WebAssembly text"),
    ("not WAT at all", "invalid WebAssembly text"),
])
def test_a_module_that_breaks_the_abi_or_does_not_compile(source, message):
    with pytest.raises(ValueError, match="WasmModule: .*" + message):
        WasmModule(source)


def test_an_import_other_than_cm_send():
    source = """(module (import "env" "clock" (func $clock (result i64)))
      (memory (export "memory") 1)
      (func (export "cm_io") (result i32) (i32.const 0x1000))
      (func (export "cm_handle") (param i32 i32) (result i32) (i32.const 0)))"""
    with pytest.raises(ValueError, match="may import only cm.send.*env::clock"):
        WasmModule(source)


def test_binaries(echo):
    with pytest.raises(ValueError, match=r"not a WebAssembly binary.*\\0asm"):
        WasmModule(b"hello")
    with pytest.raises(ValueError, match="looks like text: pass WebAssembly text as a str"):
        WasmModule(path("echo").read_bytes())
    with pytest.raises(ValueError, match="invalid WebAssembly module"):
        WasmModule(b"\x00asm\x01\x00\x00\x00\x05garbage")
    with pytest.raises(TypeError, match="source must be WebAssembly text"):
        WasmModule(12)


def test_a_module_from_wasm_bytes():
    pytest.importorskip("wasmtime")     # only to convert WAT: the core does not import it
    import wasmtime
    module = WasmModule(wasmtime.wat2wasm(path("echo").read_text()))
    assert WasmInstance(module).handle(b"bin") == b"bin"


@pytest.mark.parametrize("options, message", [
    (dict(memory_limit=1000), "memory_limit must be within"),
    (dict(memory_limit=1 << 33), "memory_limit must be within"),
    (dict(fuel=0), "fuel must be None or within"),
    (dict(epoch_deadline_ms=0), "epoch_deadline_ms must be None or within"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        agent("echo", **options)


def test_module_attributes(echo):
    assert echo.memory_limit == 1 << 20 and echo.fuel is None and echo.epoch_deadline_ms == 100
    assert echo.has_batch and not agent("trap").has_batch
    assert set(echo.exports) == {"memory", "cm_io", "cm_handle", "cm_handle_batch"}


# --- checkpoints ---------------------------------------------------------------------

def test_checkpoint_and_restore_keep_memory_and_exported_globals():
    module = WasmModule(COUNTER)
    inst = WasmInstance(module)
    for _ in range(5):
        inst.handle(b"")
    state = inst.checkpoint()
    assert counts(inst.handle(b"")) == (6, 6)
    # a restart: a fresh agent starts from zero, restored it goes on from 5
    fresh = WasmInstance(module)
    assert counts(fresh.handle(b"")) == (1, 1)
    fresh.restore(state)
    assert counts(fresh.handle(b"")) == (6, 6)
    # restoring rewinds an agent too
    inst.restore(state)
    assert counts(inst.handle(b"")) == (6, 6)


def test_restore_grows_memory_and_zeroes_the_excess():
    module = agent("alloc")
    small, grown = WasmInstance(module), WasmInstance(module)
    grown.handle((3).to_bytes(4, "little"))
    state = grown.checkpoint()
    small.restore(state)
    assert small.memory_size == grown.memory_size == 4 * 65536
    assert small.checkpoint() == state
    empty = WasmInstance(module).checkpoint()
    small.restore(empty)                      # memory cannot shrink: the rest is zeroed
    assert small.memory_size == 4 * 65536
    assert small.checkpoint()[len(empty):] == bytes(3 * 65536)


def test_restore_refuses_another_modules_or_damaged_checkpoints(echo):
    state = WasmInstance(WasmModule(COUNTER)).checkpoint()
    with pytest.raises(ValueError, match="checkpoint is of another module"):
        WasmInstance(echo).restore(state)
    inst = WasmInstance(WasmModule(COUNTER))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        inst.restore(state[:-1])
    with pytest.raises(ValueError, match="not a checkpoint"):
        inst.restore(b"x" * 100)
    with pytest.raises(ValueError, match="not a checkpoint"):
        inst.restore(b"")


def test_compute_units_survive_a_checkpoint(compute):
    inst = WasmInstance(compute, param=321)
    fresh = WasmInstance(compute)
    fresh.restore(inst.checkpoint())
    assert fresh.handle(b"seed") == compute_reference(b"seed", 321)


# --- agents and the host ---------------------------------------------------------------

def test_cm_send():
    relay = """(module
      (import "cm" "send" (func $send (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "cm_io") (result i32) (i32.const 0x1000))
      (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
        (i32.store (local.get $ptr) (call $send (i32.const 7) (local.get $ptr) (local.get $len)))
        (drop (call $send (i32.const -3) (i32.const 0xFFFE) (i32.const 2)))
        (i32.const 4)))"""
    inst = WasmInstance(WasmModule(relay))
    assert inst.handle(b"forward me") == (0).to_bytes(4, "little")
    assert inst.take_sent() == [(7, b"forward me"), (-3, b"\x00\x00")]
    assert inst.take_sent() == []


def test_cm_send_out_of_bounds_is_a_host_trap():
    bad = """(module
      (import "cm" "send" (func $send (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "cm_io") (result i32) (i32.const 0x1000))
      (func (export "cm_handle") (param i32 i32) (result i32)
        (call $send (i32.const 1) (i32.const 0xFFF0) (i32.const 100))))"""
    with pytest.raises(WasmTrap, match="cm.send: the message lies outside") as info:
        WasmInstance(WasmModule(bad)).handle(b"")
    assert info.value.kind == "host trap" and info.value.is_trap


def test_cm_send_while_spawning_is_refused():
    # the start function runs before the host can say where messages go
    source = """(module
      (import "cm" "send" (func $send (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $start (i32.store (i32.const 0) (call $send (i32.const 1) (i32.const 0) (i32.const 4))))
      (start $start)
      (func (export "cm_io") (result i32) (i32.const 0x1000))
      (func (export "cm_handle") (param $ptr i32) (param i32) (result i32)
        (i32.store (local.get $ptr) (i32.load (i32.const 0)))
        (i32.const 4)))"""
    inst = WasmInstance(WasmModule(source))
    assert int.from_bytes(inst.handle(b""), "little", signed=True) == -1
    assert inst.take_sent() == []


def test_bad_cm_io_is_refused_at_spawn():
    source = MINIMAL.replace("(i32.const 0x1000)", "(i32.const 0xF000)").format(extra="")
    module = WasmModule(source)
    with pytest.raises(RuntimeError, match=r"cm_io\(\) returned 0xf000.*does not fit"):
        WasmInstance(module)


def test_a_start_function_that_traps_fails_the_spawn():
    source = MINIMAL.format(extra="(func $boom unreachable) (start $boom)")
    with pytest.raises(RuntimeError, match="start function trapped: unreachable"):
        WasmInstance(WasmModule(source))


def test_closed_agents(echo):
    inst = WasmInstance(echo)
    inst.close()
    assert inst.closed and repr(inst) == "<WasmInstance closed>"
    with pytest.raises(RuntimeError, match="the agent is closed"):
        inst.handle(b"x")


def test_one_call_at_a_time():
    inst = WasmInstance(agent("loop", epoch_deadline_ms=500))
    outcomes = []

    def call():
        try:
            inst.handle(b"spin")
        except Exception as e:            # noqa: BLE001 -- recorded for the assertions
            outcomes.append((type(e), str(e)))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(str(kind.__name__) for kind, _ in outcomes)
    assert kinds == ["RuntimeError", "WasmTrap"], outcomes
    assert any("in use by another thread" in text for _, text in outcomes)


def test_ten_thousand_agents_from_one_module(echo):
    live_before = _core._wasm_ticker_state()[1]
    agents = [WasmInstance(echo) for _ in range(10_000)]
    assert _core._wasm_ticker_state()[1] == live_before + 10_000
    for i in (0, 4_999, 9_999):
        assert agents[i].handle(b"%d" % i) == b"%d" % i
    for inst in agents:
        inst.close()
    assert _core._wasm_ticker_state()[1] == live_before


# --- loading ------------------------------------------------------------------------

def test_the_library_is_found_without_importing_wasmtime_py():
    code = textwrap.dedent("""
        import sys
        from caxton_meter._core import WasmInstance, WasmModule, _wasm_library_path
        from caxton_meter.agents import path
        print(WasmInstance(WasmModule(path("echo").read_text())).handle(b"ok").decode(),
              "wasmtime" in sys.modules, _wasm_library_path().endswith("_libwasmtime.so"))
    """)
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "False", "True"]


def test_wrong_wasmtime_version(monkeypatch):
    import importlib.metadata
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "49.0.0")
    with pytest.raises(RuntimeError, match=r"need wasmtime 50\.x .*found wasmtime 49\.0\.0 at"):
        _core._wasm_library_path()


def test_wasmtime_missing(monkeypatch):
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"need the wasmtime package \(pip install 'wasmtime>=50,<51'\)"):
        _core._wasm_library_path()
