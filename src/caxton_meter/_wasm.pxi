# WebAssembly agents: modules compiled once, agents spawned from them (one
# wasmtime Store each: the unit of isolation for traps, memory, fuel and
# deadlines), and messages handled through the wasmtime C API without the GIL
# and without Python work per message.  The design and the measurements
# behind it: docs/design-wasm-agents.md; the agent ABI: agents/echo.wat.
#
# The C API, for the router (all noexcept nogil; errors as a code and a text):
#
#   cm_wasm_spawn(module, inst, err, errlen) -> 0 | -1
#   cm_wasm_handle(inst, msg, len, &reply, &reply_len, &code, err, errlen) -> 0 | -1
#       the reply points into the agent's memory: valid until its next call
#   cm_wasm_handle_batch(inst, records, records_len, n, &out, &out_len,
#                        &n_replies, &code, err, errlen) -> 0 | -1
#   cm_wasm_set_param(inst, value, &code, err, errlen) -> 0 | -1
#   cm_wasm_checkpoint_size(inst), cm_wasm_checkpoint(inst, buf, cap, err, errlen)
#   cm_wasm_restore(inst, buf, len, err, errlen)
#   cm_wasm_destroy(inst); cm_wasm_rebind(inst) after moving the structure
#   cm_wasm_module_ref / cm_wasm_module_unref
#
# A failed call sets a code (CM_WASM_*, below): codes up to CM_WASM_HOST_TRAP
# are traps (the agent stopped mid-message: its state may be half-updated, so
# supervision replaces it: destroy, spawn); the others left the agent as it
# was.  The engine runs without signal handlers (signals_based_traps=False):
# Python's faulthandler would turn a signal-based trap into a fatal error.

from cm_wasmtime cimport *
from libc.stdio cimport snprintf
from libc.stdint cimport uint8_t
from libc.string cimport strlen


cdef enum:
    CM_WASM_OK = 0
    # traps (wasm code stopped): replace the agent
    CM_WASM_UNREACHABLE = 1
    CM_WASM_OUT_OF_FUEL = 2
    CM_WASM_INTERRUPT = 3            # past the epoch deadline
    CM_WASM_MEMORY_OUT_OF_BOUNDS = 4
    CM_WASM_STACK_OVERFLOW = 5
    CM_WASM_DIVISION_BY_ZERO = 6
    CM_WASM_INTEGER_OVERFLOW = 7
    CM_WASM_TRAP = 8                 # any other trap; the text says which
    CM_WASM_HOST_TRAP = 9            # raised by a host import (cm.send)
    # the agent is as it was
    CM_WASM_AGENT_ERROR = 10         # cm_handle returned < 0
    CM_WASM_TOO_LARGE = 11           # the message does not fit the I/O area
    CM_WASM_BAD_REPLY = 12           # a reply longer than the I/O area, or badly framed
    CM_WASM_ERROR = 13               # wasmtime reported an error (not a trap)
    CM_WASM_NOT_SPAWNED = 14
    CM_WASM_NO_EXPORT = 15           # e.g. cm_handle_batch on a module without it

cdef const char *_WASM_KIND_NAMES[16]
_WASM_KIND_NAMES[:] = [
    b"ok", b"unreachable", b"out of fuel", b"interrupt", b"memory out of bounds",
    b"stack overflow", b"integer division by zero", b"integer overflow", b"trap", b"host trap",
    b"agent error", b"message too large", b"bad reply", b"error", b"not spawned", b"no such export"]

cdef enum:
    _WASM_PAGE = 65536
    _WASM_MAX_STACK = 128 * 1024     # a first stack overflow costs ~0.1 ms, not 1.6 (512 KiB)
    _WASM_MAX_CONFIGS = 64           # distinct engines (cm_wasmtime.h: CM_WASM_MAX_ENGINES)

# "no deadline": far enough that current epoch + this never wraps
cdef uint64_t _WASM_NO_DEADLINE = (<uint64_t>1) << 62


cdef inline const char *cm_wasm_kind_name(int code) noexcept nogil:
    """The name of a CM_WASM_* code (WasmTrap.kind)."""
    if 0 <= code <= CM_WASM_NO_EXPORT:
        return _WASM_KIND_NAMES[code]
    return b"unknown"


class WasmTrap(CaxtonMeterError, RuntimeError):
    """A WebAssembly agent failed to handle a message.

    ``kind`` names the failure: a trap ("unreachable", "out of fuel",
    "interrupt" -- the call ran past its epoch deadline --, "memory out of
    bounds", "stack overflow", "integer division by zero", "integer
    overflow", "trap", "host trap"), after which the agent should be
    replaced, or a failure that left it as it was ("agent error" -- cm_handle
    returned a negative value --, "message too large", "bad reply", "error",
    "no such export").  ``code`` is the same as a number."""

    def __init__(self, message, kind="trap", code=CM_WASM_TRAP):
        super().__init__(message)
        self.kind = kind
        self.code = code

    @property
    def is_trap(self):
        """True when the agent stopped mid-message (replace it)."""
        return 1 <= self.code <= CM_WASM_HOST_TRAP


# --- loading the library ------------------------------------------------------

cdef bint _wasm_loaded = False
cdef object _wasm_library = None     # the path, once loaded


def _wasm_library_path():
    """The path of _libwasmtime.so in the installed wasmtime package, found
    without importing wasmtime-py, after checking that the package is 50.x
    (the C structures declared in cm_wasmtime.h are wasmtime 50's)."""
    import importlib.metadata
    import importlib.util
    import os
    import platform
    import sys
    try:
        spec = importlib.util.find_spec("wasmtime")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("caxton_meter's WebAssembly agents need the wasmtime package "
                          "(pip install 'wasmtime>=50,<51'); it is not installed")
    package_dir = list(spec.submodule_search_locations)[0]
    try:
        version = importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"caxton_meter's WebAssembly agents: the wasmtime package at {package_dir} "
                          "has no distribution metadata, so its version cannot be checked; "
                          "reinstall it: pip install 'wasmtime>=50,<51'") from None
    if version.split(".")[0] != "50":
        raise RuntimeError(f"caxton_meter's WebAssembly agents need wasmtime 50.x (its C structures "
                           f"differ between major versions), found wasmtime {version} at "
                           f"{package_dir}: pip install 'wasmtime>=50,<51'")
    machine = platform.machine()
    machine = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)
    name = {"win32": "_wasmtime.dll", "darwin": "_libwasmtime.dylib"}.get(sys.platform,
                                                                          "_libwasmtime.so")
    platform_name = "linux" if sys.platform.startswith("linux") else sys.platform
    path = os.path.join(package_dir, f"{platform_name}-{machine}", name)
    if not os.path.isfile(path):
        raise ImportError(f"caxton_meter's WebAssembly agents: the wasmtime {version} package "
                          f"has no C library for this platform: {path} does not exist")
    return path


cdef int _wasm_load() except -1:
    """Loads the wasmtime C API on first use (with the GIL: serialised)."""
    global _wasm_loaded, _wasm_library
    if _wasm_loaded:
        return 0
    path = _wasm_library_path()
    cdef char err[1024]
    err[0] = 0
    import os
    bpath = os.fsencode(path)
    if cm_wasmtime_load(bpath, err, sizeof(err)) != 0:
        raise ImportError(f"caxton_meter's WebAssembly agents: cannot load {path}: "
                          + err.decode("utf-8", "replace"))
    _wasm_library = path
    _wasm_loaded = True
    return 0


# --- engines: one per (memory limit, fuel metering), shared, never freed --------

cdef struct _wasm_engine_slot:
    int64_t memory_limit
    bint fuel
    wasm_engine_t *engine

cdef _wasm_engine_slot _wasm_engines[_WASM_MAX_CONFIGS]
cdef int _wasm_n_engines = 0


cdef wasm_engine_t *_wasm_engine(int64_t memory_limit, bint fuel) except NULL:
    """The engine for this configuration, created on first use (with the GIL)."""
    global _wasm_n_engines
    cdef int i
    for i in range(_wasm_n_engines):
        if _wasm_engines[i].memory_limit == memory_limit and _wasm_engines[i].fuel == fuel:
            return _wasm_engines[i].engine
    if _wasm_n_engines == _WASM_MAX_CONFIGS:
        raise RuntimeError(f"WasmModule: at most {_WASM_MAX_CONFIGS} distinct (memory_limit, fuel) "
                           "configurations per process (one engine each)")
    cdef wasm_config_t *c = wasm_config_new()
    if c == NULL:
        raise MemoryError("WasmModule: wasm_config_new failed")
    # Traps by explicit checks, not signals: no handlers to conflict with
    # Python's faulthandler, and no measurable cost per call.
    wasmtime_config_signals_based_traps_set(c, False)
    # The memory reserved per agent is its cap, with no guard and no room
    # to move: a small address-space footprint (the ~32K-agent limit of 4 GiB
    # reservations goes away) and a memory base that never changes, so that
    # each agent caches it.
    wasmtime_config_memory_reservation_set(c, <uint64_t>memory_limit)
    wasmtime_config_memory_guard_size_set(c, 0)
    wasmtime_config_memory_reservation_for_growth_set(c, 0)
    wasmtime_config_memory_may_move_set(c, False)
    # No copy-on-write image: it would add mappings per agent (vm.max_map_count).
    wasmtime_config_memory_init_cow_set(c, False)
    wasmtime_config_max_wasm_stack_set(c, _WASM_MAX_STACK)
    wasmtime_config_epoch_interruption_set(c, True)
    if fuel:
        wasmtime_config_consume_fuel_set(c, True)
    cdef wasm_engine_t *engine = wasm_engine_new_with_config(c)     # consumes c
    if engine == NULL:
        raise RuntimeError(f"WasmModule: wasmtime refused the engine configuration "
                           f"(memory_limit={memory_limit}, fuel={bool(fuel)})")
    if cm_wasm_ticker_add_engine(engine) != 0:
        raise RuntimeError("WasmModule: the epoch ticker has no room for another engine")
    _wasm_engines[_wasm_n_engines].memory_limit = memory_limit
    _wasm_engines[_wasm_n_engines].fuel = fuel
    _wasm_engines[_wasm_n_engines].engine = engine
    _wasm_n_engines += 1
    return engine


# --- errors -------------------------------------------------------------------

cdef str _wasm_take_error(wasmtime_error_t *e):
    """The text of a wasmtime error, which is freed."""
    cdef wasm_byte_vec_t m
    wasmtime_error_message(e, &m)
    text = (<char *>m.data)[:m.size].decode("utf-8", "replace").rstrip("\x00").strip()
    wasm_byte_vec_delete(&m)
    wasmtime_error_delete(e)
    return text


cdef void _wasm_error_text(wasmtime_error_t *e, const char *what, int *code, char *err,
                           size_t errlen) noexcept nogil:
    """Writes "what: <wasmtime's text>" into err and frees e."""
    cdef wasm_byte_vec_t m
    wasmtime_error_message(e, &m)
    snprintf(err, errlen, "%s: %.*s", what, <int>_wasm_text_len(<char *>m.data, m.size), <char *>m.data)
    wasm_byte_vec_delete(&m)
    wasmtime_error_delete(e)
    code[0] = CM_WASM_ERROR


cdef inline size_t _wasm_text_len(const char *s, size_t n) noexcept nogil:
    # wasmtime's messages count their terminating NUL; trailing newlines too
    while n > 0 and (s[n - 1] == 0 or s[n - 1] == b'\n' or s[n - 1] == b' '):
        n -= 1
    return n


cdef void _wasm_cause_text(int c, wasm_byte_vec_t *m, char *err, size_t errlen) noexcept nogil:
    # wasmtime's text is a backtrace, then "Caused by:" and the cause: writes
    # "kind: cause" with the cause's last line, without a "wasm trap: " prefix
    cdef const char *s = <const char *>m.data
    cdef size_t end = _wasm_text_len(s, m.size)
    cdef size_t start = end
    while start > 0 and s[start - 1] != b'\n':
        start -= 1
    while start < end and s[start] == b' ':
        start += 1
    if end - start >= 11 and memcmp(s + start, b"wasm trap: ", 11) == 0:
        start += 11
    snprintf(err, errlen, "%s: %.*s", cm_wasm_kind_name(c), <int>(end - start), s + start)


cdef void _wasm_trap_text(cm_wasm_instance *inst, wasm_trap_t *trap, int *code, char *err,
                          size_t errlen) noexcept nogil:
    """Classifies a trap into code, writes a one-line description into err
    ("kind: cause"), and frees the trap.  Cold: after a trap only."""
    cdef wasmtime_trap_code_t wcode = 255
    cdef wasm_byte_vec_t m
    cdef int c
    if not wasmtime_trap_code(trap, &wcode):
        c = CM_WASM_HOST_TRAP
    elif wcode == WASMTIME_TRAP_CODE_UNREACHABLE_CODE_REACHED:
        c = CM_WASM_UNREACHABLE
    elif wcode == WASMTIME_TRAP_CODE_OUT_OF_FUEL:
        c = CM_WASM_OUT_OF_FUEL
    elif wcode == WASMTIME_TRAP_CODE_INTERRUPT:
        c = CM_WASM_INTERRUPT
    elif wcode == WASMTIME_TRAP_CODE_MEMORY_OUT_OF_BOUNDS:
        c = CM_WASM_MEMORY_OUT_OF_BOUNDS
    elif wcode == WASMTIME_TRAP_CODE_STACK_OVERFLOW:
        c = CM_WASM_STACK_OVERFLOW
    elif wcode == WASMTIME_TRAP_CODE_INTEGER_DIVISION_BY_ZERO:
        c = CM_WASM_DIVISION_BY_ZERO
    elif wcode == WASMTIME_TRAP_CODE_INTEGER_OVERFLOW:
        c = CM_WASM_INTEGER_OVERFLOW
    else:
        c = CM_WASM_TRAP
    code[0] = c
    if c == CM_WASM_INTERRUPT and inst != NULL and inst.module != NULL:
        snprintf(err, errlen, "interrupt: the call ran past its deadline of %llu ms",
                 <unsigned long long>inst.module.deadline_ticks)
    elif c == CM_WASM_OUT_OF_FUEL and inst != NULL and inst.module != NULL:
        snprintf(err, errlen, "out of fuel: the call used up its %llu units of fuel",
                 <unsigned long long>inst.module.fuel)
    else:
        wasm_trap_message(trap, &m)
        _wasm_cause_text(c, &m, err, errlen)
        wasm_byte_vec_delete(&m)
    wasm_trap_delete(trap)


# --- modules ------------------------------------------------------------------

cdef void cm_wasm_module_ref(cm_wasm_module *m) noexcept nogil:
    cm_atomic_fetch_add_64(&m.refcnt, 1)


cdef void cm_wasm_module_unref(cm_wasm_module *m) noexcept nogil:
    """Drops a reference; the last frees the module (the engine stays)."""
    cdef int32_t i
    if m == NULL or cm_atomic_fetch_add_64(&m.refcnt, -1) != 1:
        return
    if m.pre != NULL:
        wasmtime_instance_pre_delete(m.pre)
    if m.linker != NULL:
        wasmtime_linker_delete(m.linker)
    if m.module != NULL:
        wasmtime_module_delete(m.module)
    if m.global_names != NULL:
        for i in range(m.n_globals):
            free(m.global_names[i])
        free(m.global_names)
    free(m)


# cm.send(dst, ptr, len) -> i32: the Store's data pointer is the agent's
# cm_wasm_instance, which says where the bytes go.
cdef wasm_trap_t *_wasm_host_send(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args,
                                  size_t nargs) noexcept nogil:
    cdef wasmtime_context_t *ctx = wasmtime_caller_context(caller)
    cdef cm_wasm_instance *inst = <cm_wasm_instance *>wasmtime_context_get_data(ctx)
    cdef int32_t dst = args[0].i32
    cdef uint32_t ptr = <uint32_t>args[1].i32
    cdef uint32_t length = <uint32_t>args[2].i32
    cdef uint8_t *base
    if inst.send == NULL:      # also while spawning: the start function, cm_io
        args[0].i32 = -1
        return NULL
    if <uint64_t>ptr + length > wasmtime_memory_data_size(ctx, &inst.memory):
        return wasmtime_trap_new(b"cm.send: the message lies outside the agent's memory", 52)
    base = wasmtime_memory_data(ctx, &inst.memory)
    args[0].i32 = inst.send(inst.send_ctx, dst, <const char *>(base + ptr), length)
    return NULL


cdef wasm_functype_t *_wasm_functype_i32(int nparams, int nresults) noexcept:
    cdef wasm_valtype_t *p[4]
    cdef wasm_valtype_t *r[1]
    cdef wasm_valtype_vec_t pv, rv
    cdef int i
    for i in range(nparams):
        p[i] = wasm_valtype_new(CM_WASM_I32)
    for i in range(nresults):
        r[i] = wasm_valtype_new(CM_WASM_I32)
    wasm_valtype_vec_new(&pv, nparams, p)      # takes the valtypes
    wasm_valtype_vec_new(&rv, nresults, r)
    return wasm_functype_new(&pv, &rv)         # takes the vectors


cdef str _wasm_valtype_name(uint8_t kind):
    return {CM_WASM_I32: "i32", CM_WASM_I64: "i64", CM_WASM_F32: "f32", CM_WASM_F64: "f64",
            4: "v128", 128: "externref", 129: "funcref"}.get(kind, f"type {kind}")


cdef str _wasm_functype_text(const wasm_functype_t *ft):
    cdef const wasm_valtype_vec_t *p = wasm_functype_params(ft)
    cdef const wasm_valtype_vec_t *r = wasm_functype_results(ft)
    params = ", ".join([_wasm_valtype_name(wasm_valtype_kind(p.data[i])) for i in range(p.size)])
    results = ", ".join([_wasm_valtype_name(wasm_valtype_kind(r.data[i])) for i in range(r.size)])
    if r.size == 0:
        return f"({params})"
    return f"({params}) -> {results if r.size == 1 else '(' + results + ')'}"


# The ABI's functions: name -> the type expected ("(i32, i32) -> i32"), required
_WASM_ABI_FUNCS = (("cm_io", "() -> i32", True),
                   ("cm_handle", "(i32, i32) -> i32", True),
                   ("cm_handle_batch", "(i32, i32, i32, i32) -> i32", False),
                   ("cm_set_param", "(i64)", False))


cdef uint64_t _wasm_fnv1a(const uint8_t *p, size_t n) noexcept nogil:
    cdef uint64_t h = 0xcbf29ce484222325
    cdef size_t i
    for i in range(n):
        h = (h ^ p[i]) * <uint64_t>0x100000001b3
    return h


@cython.final
cdef class WasmModule:
    """A WebAssembly agent module, compiled once; agents are spawned from it.

    ``source``: WebAssembly text (str) or a binary (bytes-like).  The module
    must follow the agent ABI (see caxton_meter/agents/echo.wat): export its
    memory, ``cm_io() -> i32`` and ``cm_handle(i32, i32) -> i32``, and
    optionally ``cm_handle_batch(i32, i32, i32, i32) -> i32`` and
    ``cm_set_param(i64)``; it may import ``cm.send(i32, i32, i32) -> i32``.
    A module that does not compile or breaks the ABI raises ValueError.

    Keyword options, for every agent of the module:

    - ``memory_limit``: bytes of linear memory an agent may have (default
      1 MiB); ``memory.grow`` past it returns -1 inside the agent.
    - ``fuel``: None (not metered), or the fuel units one call may use;
      a call that uses them up traps "out of fuel".
    - ``epoch_deadline_ms``: how long one call may run (default 100; None:
      no limit); a call past it traps "interrupt".  A ticker thread advances
      the epoch once a millisecond while agents exist.

    Agents with the same memory_limit and fuel metering share an engine.
    """

    cdef cm_wasm_module *_m
    cdef readonly int64_t memory_limit
    cdef readonly object fuel
    cdef readonly object epoch_deadline_ms
    cdef readonly tuple exports

    def __cinit__(self, source, *, memory_limit=1 << 20, fuel=None, epoch_deadline_ms=100):
        cdef int64_t limit = _index(memory_limit)
        if not _WASM_PAGE <= limit <= (<int64_t>1 << 32):
            raise ValueError(f"WasmModule: memory_limit must be within [65536, 2**32] bytes "
                             f"(one page to 4 GiB), got {limit}")
        cdef uint64_t fuel_units = 0
        if fuel is not None:
            f = _index(fuel)
            if not 1 <= f <= (1 << 62):
                raise ValueError(f"WasmModule: fuel must be None or within [1, 2**62], got {f}")
            fuel_units = f
        cdef uint64_t ticks = _WASM_NO_DEADLINE
        if epoch_deadline_ms is not None:
            d = _index(epoch_deadline_ms)
            if not 1 <= d <= 86_400_000:
                raise ValueError(f"WasmModule: epoch_deadline_ms must be None or within "
                                 f"[1, 86400000], got {d}")
            ticks = d      # one tick per millisecond
        if isinstance(source, str):
            wasm = None
            wat = (<str>source).encode("utf-8")
        else:
            try:
                wasm = memoryview(source).tobytes()
            except TypeError:
                raise TypeError(f"WasmModule: source must be WebAssembly text (str) or a binary "
                                f"(bytes-like), got {type(source).__name__}") from None
            if wasm[:4] != b"\x00asm":
                hint = (" (it looks like text: pass WebAssembly text as a str)"
                        if wasm.lstrip()[:1] in (b"(", b";") else "")
                raise ValueError("WasmModule: not a WebAssembly binary: it does not begin with "
                                 f"the magic bytes \\0asm{hint}")
        _wasm_load()
        cdef wasm_engine_t *engine = _wasm_engine(limit, fuel_units != 0)
        cdef wasm_byte_vec_t converted
        cdef wasmtime_error_t *e
        if wasm is None:
            e = wasmtime_wat2wasm(wat, len(wat), &converted)
            if e != NULL:
                raise ValueError("WasmModule: invalid WebAssembly text: " + _wasm_take_error(e))
            wasm = (<char *>converted.data)[:converted.size]
            wasm_byte_vec_delete(&converted)

        self._m = <cm_wasm_module *>calloc(1, sizeof(cm_wasm_module))
        if self._m == NULL:
            raise MemoryError("WasmModule: out of memory")
        self._m.refcnt = 1
        self._m.engine = engine
        self._m.memory_limit = limit
        self._m.fuel = fuel_units
        self._m.deadline_ticks = ticks
        self.memory_limit = limit
        self.fuel = None if fuel is None else int(fuel_units)
        self.epoch_deadline_ms = None if epoch_deadline_ms is None else int(ticks)

        cdef const uint8_t *data = wasm
        cdef size_t size = len(wasm)
        cdef wasmtime_module_t *module = NULL
        with nogil:       # compiling takes milliseconds: let other threads run
            e = wasmtime_module_new(engine, data, size, &module)
        if e != NULL:
            raise ValueError("WasmModule: invalid WebAssembly module: " + _wasm_take_error(e))
        self._m.module = module
        self._m.fingerprint = _wasm_fnv1a(data, size)
        self._check_abi()

        self._m.linker = wasmtime_linker_new(engine)
        cdef wasm_functype_t *ft = _wasm_functype_i32(3, 1)
        e = wasmtime_linker_define_func_unchecked(self._m.linker, b"cm", 2, b"send", 4, ft,
                                                  _wasm_host_send, NULL, NULL)
        wasm_functype_delete(ft)                  # the linker copies the type
        if e != NULL:
            raise RuntimeError("WasmModule: cannot define cm.send: " + _wasm_take_error(e))
        e = wasmtime_linker_instantiate_pre(self._m.linker, module, &self._m.pre)
        if e != NULL:
            # in practice an import other than cm.send, or cm.send with another type
            raise ValueError("WasmModule: the module's imports cannot be satisfied (agents may "
                             "import only cm.send(i32, i32, i32) -> i32): " + _wasm_take_error(e))

    cdef _check_abi(self):
        """Checks the exports' types against the ABI, once: every agent is
        then called with wasmtime_func_call_unchecked, whose arguments must
        match the real signature."""
        cdef wasm_exporttype_vec_t exports
        cdef const wasm_exporttype_t *x
        cdef const wasm_byte_vec_t *name
        cdef const wasm_externtype_t *t
        cdef const wasm_memorytype_t *mt
        cdef const wasm_globaltype_t *gt
        cdef uint8_t kind, vk
        cdef size_t i
        funcs = {}
        memory = None
        names = []
        globals_ = []
        wasmtime_module_exports(self._m.module, &exports)
        try:
            for i in range(exports.size):
                x = exports.data[i]
                name = wasm_exporttype_name(x)
                n = (<char *>name.data)[:name.size].decode("utf-8", "replace")
                names.append(n)
                t = wasm_exporttype_type(x)
                kind = wasm_externtype_kind(t)
                if kind == CM_WASM_EXTERN_FUNC:
                    funcs[n] = _wasm_functype_text(wasm_externtype_as_functype_const(t))
                elif kind == CM_WASM_EXTERN_MEMORY and n == "memory":
                    mt = wasm_externtype_as_memorytype_const(t)
                    memory = (wasmtime_memorytype_is64(mt), wasmtime_memorytype_isshared(mt),
                              wasmtime_memorytype_minimum(mt))
                elif kind == CM_WASM_EXTERN_GLOBAL:
                    gt = wasm_externtype_as_globaltype_const(t)
                    vk = wasm_valtype_kind(wasm_globaltype_content(gt))
                    if (wasm_globaltype_mutability(gt) == CM_WASM_VAR and vk <= CM_WASM_F64
                            and "\x00" not in n):
                        globals_.append(n)
        finally:
            wasm_exporttype_vec_delete(&exports)
        self.exports = tuple(names)
        if memory is None:
            raise ValueError("WasmModule: the module does not export its memory as \"memory\"")
        is64, shared, minimum = memory
        if is64 or shared:
            raise ValueError("WasmModule: the exported memory must be a 32-bit, unshared memory")
        if minimum * _WASM_PAGE > self._m.memory_limit:
            raise ValueError(f"WasmModule: the memory's minimum size, {minimum} pages "
                             f"({minimum * _WASM_PAGE} bytes), exceeds memory_limit "
                             f"({self._m.memory_limit} bytes)")
        for fname, ftype, required in _WASM_ABI_FUNCS:
            found = funcs.get(fname)
            if found is None:
                if required:
                    raise ValueError(f"WasmModule: the module does not export {fname} {ftype}")
            elif found != ftype:
                raise ValueError(f"WasmModule: the module exports {fname} as {found}, "
                                 f"the ABI says {fname} {ftype}")
        self._m.has_batch = "cm_handle_batch" in funcs
        self._m.has_set_param = "cm_set_param" in funcs
        if globals_:
            self._m.global_names = <char **>calloc(len(globals_), sizeof(char *))
            if self._m.global_names == NULL:
                raise MemoryError("WasmModule: out of memory")
            for n in globals_:
                bn = n.encode()
                self._m.global_names[self._m.n_globals] = <char *>malloc(len(bn) + 1)
                if self._m.global_names[self._m.n_globals] == NULL:
                    raise MemoryError("WasmModule: out of memory")
                memcpy(self._m.global_names[self._m.n_globals], <char *>bn, len(bn) + 1)
                self._m.n_globals += 1

    def __dealloc__(self):
        cm_wasm_module_unref(self._m)     # agents hold their own references

    @property
    def has_batch(self):
        """Whether the module exports cm_handle_batch."""
        return bool(self._m.has_batch)

    def __repr__(self):
        return (f"<WasmModule memory_limit={self.memory_limit} fuel={self.fuel} "
                f"epoch_deadline_ms={self.epoch_deadline_ms} exports={list(self.exports)}>")

    cdef cm_wasm_module *ptr(self) noexcept:
        """The C module, for cm_wasm_spawn (the router's path)."""
        return self._m


# --- agents: the C API ----------------------------------------------------------

cdef inline void _wasm_arm(cm_wasm_instance *inst, cm_wasm_module *m) noexcept nogil:
    # A Store's deadline is relative to the epoch when it is set, so every
    # call re-arms it; the fuel likewise is a budget per call.
    cdef wasmtime_error_t *e
    wasmtime_context_set_epoch_deadline(inst.ctx, m.deadline_ticks)
    if m.fuel:
        e = wasmtime_context_set_fuel(inst.ctx, m.fuel)   # fails only if fuel is not metered,
        if e != NULL:                                     # which it is when m.fuel is set
            wasmtime_error_delete(e)
    if not cm_wasm_ticker_running():                   # a fork()ed child: restart it
        cm_wasm_ticker_ensure()


cdef bint _wasm_get_func(cm_wasm_instance *inst, const char *name, wasmtime_func_t *out) noexcept nogil:
    cdef wasmtime_extern_t ext
    if not wasmtime_instance_export_get(inst.ctx, &inst.instance, name, strlen(name), &ext):
        return False
    if ext.kind != CM_WASM_EXTERN_FUNC:
        return False
    out[0] = ext.of.func
    return True


cdef inline int _wasm_fail(int *code, int c, char *err, size_t errlen, const char *text) noexcept nogil:
    code[0] = c
    snprintf(err, errlen, "%s: %s", cm_wasm_kind_name(c), text)
    return -1


cdef int _wasm_spawn_steps(cm_wasm_module *m, cm_wasm_instance *out, char *err, size_t errlen) noexcept nogil:
    # cm_wasm_spawn's steps after the Store exists; -1 leaves the cleanup to it
    cdef wasmtime_extern_t ext
    cdef wasmtime_func_t f_io
    cdef wasmtime_val_raw_t raw[1]
    cdef wasmtime_error_t *e
    cdef wasm_trap_t *trap = NULL
    cdef int code = 0
    cdef size_t size
    cdef char detail[256]
    e = wasmtime_instance_pre_instantiate(m.pre, out.ctx, &out.instance, &trap)
    if e != NULL:
        _wasm_error_text(e, "cm_wasm_spawn: instantiation failed", &code, err, errlen)
        return -1
    if trap != NULL:
        _wasm_trap_text(out, trap, &code, detail, sizeof(detail))
        snprintf(err, errlen, "cm_wasm_spawn: the start function trapped: %s", detail)
        return -1
    # the exports' types were checked at compile time
    if (not wasmtime_instance_export_get(out.ctx, &out.instance, b"memory", 6, &ext)
            or ext.kind != CM_WASM_EXTERN_MEMORY):
        snprintf(err, errlen, "cm_wasm_spawn: the instance exports no memory")
        return -1
    out.memory = ext.of.memory
    if not _wasm_get_func(out, b"cm_handle", &out.f_handle) or not _wasm_get_func(out, b"cm_io", &f_io):
        snprintf(err, errlen, "cm_wasm_spawn: the instance lacks cm_handle or cm_io")
        return -1
    if m.has_batch:
        _wasm_get_func(out, b"cm_handle_batch", &out.f_batch)
    if m.has_set_param:
        _wasm_get_func(out, b"cm_set_param", &out.f_set_param)
    e = wasmtime_func_call_unchecked(out.ctx, &f_io, raw, 1, &trap)
    if e != NULL:
        _wasm_error_text(e, "cm_wasm_spawn: cm_io() failed", &code, err, errlen)
        return -1
    if trap != NULL:
        _wasm_trap_text(out, trap, &code, detail, sizeof(detail))
        snprintf(err, errlen, "cm_wasm_spawn: cm_io() trapped: %s", detail)
        return -1
    out.io = <uint32_t>raw[0].i32
    size = wasmtime_memory_data_size(out.ctx, &out.memory)
    if <uint64_t>out.io + CM_WASM_IO_BYTES > size:
        snprintf(err, errlen, "cm_wasm_spawn: cm_io() returned 0x%x, but the 48 KiB I/O area "
                 "[0x%x, 0x%llx) does not fit the agent's %llu-byte memory", out.io, out.io,
                 <unsigned long long>(<uint64_t>out.io + CM_WASM_IO_BYTES), <unsigned long long>size)
        return -1
    # stable for the agent's life: memories never move (may_move=False)
    out.base = wasmtime_memory_data(out.ctx, &out.memory)
    return 0


cdef int cm_wasm_spawn(cm_wasm_module *m, cm_wasm_instance *out, char *err, size_t errlen) noexcept nogil:
    """Spawns an agent of module m into *out (not spawned, or destroyed):
    a Store with the memory limit, an instance, its exports, cm_io().
    Returns 0, or -1 with a message in err (*out is then not spawned).  The
    Store's data pointer is out (for cm.send): see cm_wasm_rebind."""
    memset(out, 0, sizeof(cm_wasm_instance))
    if cm_wasm_ticker_hold() != 0:
        snprintf(err, errlen, "cm_wasm_spawn: cannot start the epoch ticker thread")
        return -1
    out.store = wasmtime_store_new(m.engine, out, NULL)
    if out.store == NULL:
        cm_wasm_ticker_release()
        snprintf(err, errlen, "cm_wasm_spawn: wasmtime_store_new failed")
        return -1
    out.ctx = wasmtime_store_context(out.store)
    wasmtime_store_limiter(out.store, m.memory_limit, -1, -1, -1, -1)
    out.module = m
    _wasm_arm(out, m)        # the start function and cm_io run under the limits too
    if _wasm_spawn_steps(m, out, err, errlen) != 0:
        wasmtime_store_delete(out.store)
        cm_wasm_ticker_release()
        memset(out, 0, sizeof(cm_wasm_instance))
        return -1
    cm_wasm_module_ref(m)
    return 0


cdef void cm_wasm_destroy(cm_wasm_instance *inst) noexcept nogil:
    """Deletes the agent's Store (its instance and memory).  Idempotent."""
    if inst.module == NULL:
        return
    wasmtime_store_delete(inst.store)
    cm_wasm_ticker_release()
    cm_wasm_module_unref(inst.module)
    memset(inst, 0, sizeof(cm_wasm_instance))


cdef inline void cm_wasm_rebind(cm_wasm_instance *inst) noexcept nogil:
    """After moving a spawned cm_wasm_instance (e.g. realloc of an array):
    points its Store's data at the new place, which cm.send reads."""
    if inst.module != NULL:
        wasmtime_context_set_data(inst.ctx, inst)


cdef inline void cm_wasm_set_sender(cm_wasm_instance *inst, cm_wasm_send_fn fn, void *ctx) noexcept nogil:
    """Where the agent's cm.send calls go (NULL: refused, -1).  Set after
    each spawn."""
    inst.send = fn
    inst.send_ctx = ctx


cdef inline char *cm_wasm_inbox(cm_wasm_instance *inst) noexcept nogil:
    """The inbox of cm_wasm_handle_batch (CM_WASM_BATCH_HALF bytes) in the
    agent's memory: records framed there need no copy."""
    return <char *>inst.base + inst.io


cdef inline int64_t cm_wasm_memory_size(cm_wasm_instance *inst) noexcept nogil:
    if inst.module == NULL:
        return 0
    return <int64_t>wasmtime_memory_data_size(inst.ctx, &inst.memory)


cdef int _wasm_call_failed(cm_wasm_instance *inst, wasmtime_error_t *e, wasm_trap_t *trap,
                           int *code, char *err, size_t errlen) noexcept nogil:
    # cold: a call ended in a trap or an error
    cdef wasm_byte_vec_t m
    if e != NULL:
        # a call that started fails with an error (not a trap) when a host
        # function (cm.send) raised one: the agent stopped mid-message
        if trap != NULL:
            wasm_trap_delete(trap)
        wasmtime_error_message(e, &m)
        _wasm_cause_text(CM_WASM_HOST_TRAP, &m, err, errlen)
        wasm_byte_vec_delete(&m)
        wasmtime_error_delete(e)
        code[0] = CM_WASM_HOST_TRAP
    else:
        _wasm_trap_text(inst, trap, code, err, errlen)
    return -1


cdef int cm_wasm_handle(cm_wasm_instance *inst, const char *msg, int64_t length, char **reply,
                        int64_t *reply_len, int *code, char *err, size_t errlen) noexcept nogil:
    """The agent handles one message (copied into its I/O area, unless msg
    is that area).  Returns 0 with the reply (pointing into the agent's
    memory: valid until its next call), or -1 with a CM_WASM_* code and a
    message in err."""
    cdef cm_wasm_module *m = inst.module
    cdef wasmtime_val_raw_t raw[2]
    cdef wasm_trap_t *trap = NULL
    cdef wasmtime_error_t *e
    cdef char *io
    cdef int32_t r
    if m == NULL:
        return _wasm_fail(code, CM_WASM_NOT_SPAWNED, err, errlen, "the agent is not spawned")
    if <uint64_t>length > CM_WASM_IO_BYTES:
        code[0] = CM_WASM_TOO_LARGE
        snprintf(err, errlen, "message too large: %lld bytes, the agent's I/O area holds %d",
                 <long long>length, <int>CM_WASM_IO_BYTES)
        return -1
    io = <char *>inst.base + inst.io
    if msg != io:
        memcpy(io, msg, length)
    _wasm_arm(inst, m)
    raw[0].i32 = <int32_t>inst.io
    raw[1].i32 = <int32_t>length
    e = wasmtime_func_call_unchecked(inst.ctx, &inst.f_handle, raw, 2, &trap)
    if e != NULL or trap != NULL:
        return _wasm_call_failed(inst, e, trap, code, err, errlen)
    r = raw[0].i32
    if r < 0:
        code[0] = CM_WASM_AGENT_ERROR
        snprintf(err, errlen, "agent error: cm_handle returned %d", r)
        return -1
    if r > CM_WASM_IO_BYTES:
        code[0] = CM_WASM_BAD_REPLY
        snprintf(err, errlen, "bad reply: cm_handle returned a length of %d bytes, past the "
                 "%d-byte I/O area", r, <int>CM_WASM_IO_BYTES)
        return -1
    reply[0] = io
    reply_len[0] = r
    code[0] = CM_WASM_OK
    return 0


cdef int cm_wasm_handle_batch(cm_wasm_instance *inst, const char *records, int64_t records_len,
                              int32_t n, char **out, int64_t *out_len, int32_t *n_replies, int *code,
                              char *err, size_t errlen) noexcept nogil:
    """The agent handles n messages in one call: `records` holds them framed
    as [u32 little-endian length][bytes] (copied into the inbox, unless they
    were framed there: cm_wasm_inbox).  Returns 0 with the replies, framed
    alike and checked, at *out (in the agent's memory, valid until its next
    call): *out_len bytes, *n_replies records.  Or -1, code and err."""
    cdef cm_wasm_module *m = inst.module
    cdef wasmtime_val_raw_t raw[4]
    cdef wasm_trap_t *trap = NULL
    cdef wasmtime_error_t *e
    cdef char *inbox
    cdef char *outbox
    cdef int32_t w, k = 0
    cdef int64_t off = 0
    cdef uint32_t rl
    if m == NULL:
        return _wasm_fail(code, CM_WASM_NOT_SPAWNED, err, errlen, "the agent is not spawned")
    if not m.has_batch:
        return _wasm_fail(code, CM_WASM_NO_EXPORT, err, errlen,
                          "the module does not export cm_handle_batch")
    if <uint64_t>records_len > CM_WASM_BATCH_HALF or n < 0:
        code[0] = CM_WASM_TOO_LARGE
        snprintf(err, errlen, "message too large: a batch of %lld bytes, the agent's inbox holds %d",
                 <long long>records_len, <int>CM_WASM_BATCH_HALF)
        return -1
    inbox = <char *>inst.base + inst.io
    outbox = inbox + CM_WASM_BATCH_HALF
    if records != inbox:
        memcpy(inbox, records, records_len)
    _wasm_arm(inst, m)
    raw[0].i32 = <int32_t>inst.io
    raw[1].i32 = n
    raw[2].i32 = <int32_t>(inst.io + CM_WASM_BATCH_HALF)
    raw[3].i32 = CM_WASM_BATCH_HALF
    e = wasmtime_func_call_unchecked(inst.ctx, &inst.f_batch, raw, 4, &trap)
    if e != NULL or trap != NULL:
        return _wasm_call_failed(inst, e, trap, code, err, errlen)
    w = raw[0].i32
    if w < 0:
        code[0] = CM_WASM_AGENT_ERROR
        snprintf(err, errlen, "agent error: cm_handle_batch returned %d (-1: the replies did not "
                 "fit the %d-byte outbox)", w, <int>CM_WASM_BATCH_HALF)
        return -1
    if w > CM_WASM_BATCH_HALF:
        return _wasm_fail(code, CM_WASM_BAD_REPLY, err, errlen,
                          "cm_handle_batch wrote past its outbox")
    while off < w:          # the framing must tile exactly what was written
        if off + 4 > w:
            return _wasm_fail(code, CM_WASM_BAD_REPLY, err, errlen,
                              "cm_handle_batch's replies end in a partial record header")
        memcpy(&rl, outbox + off, 4)
        if rl > w - off - 4:
            return _wasm_fail(code, CM_WASM_BAD_REPLY, err, errlen,
                              "a reply record of cm_handle_batch runs past the bytes written")
        off += 4 + rl
        k += 1
    out[0] = outbox
    out_len[0] = w
    n_replies[0] = k
    code[0] = CM_WASM_OK
    return 0


cdef int cm_wasm_set_param(cm_wasm_instance *inst, int64_t value, int *code, char *err,
                           size_t errlen) noexcept nogil:
    """Calls the agent's cm_set_param(value) (e.g. the compute agent's units).
    Returns 0, or -1, code and err."""
    cdef cm_wasm_module *m = inst.module
    cdef wasmtime_val_raw_t raw[1]
    cdef wasm_trap_t *trap = NULL
    cdef wasmtime_error_t *e
    if m == NULL:
        return _wasm_fail(code, CM_WASM_NOT_SPAWNED, err, errlen, "the agent is not spawned")
    if not m.has_set_param:
        return _wasm_fail(code, CM_WASM_NO_EXPORT, err, errlen,
                          "the module does not export cm_set_param (i64)")
    _wasm_arm(inst, m)
    raw[0].i64 = value
    e = wasmtime_func_call_unchecked(inst.ctx, &inst.f_set_param, raw, 1, &trap)
    if e != NULL or trap != NULL:
        return _wasm_call_failed(inst, e, trap, code, err, errlen)
    code[0] = CM_WASM_OK
    return 0


# --- checkpoints: an agent's state as bytes, to restore into a fresh agent of
# the same module after a restart.  The state is its linear memory and its
# exported mutable globals (wasmtime cannot reach the others: an agent keeps
# what must survive in memory, or exports it).  Layout, native byte order:
#   "CMWASM" 0 1 | u64 module fingerprint | u64 memory bytes | u32 globals | u32 0
#   per global: u8 kind, 7 zero bytes, 8 value bytes | the memory

cdef enum:
    _WASM_CKPT_HEADER = 32
    _WASM_CKPT_GLOBAL = 16

cdef const char *_WASM_CKPT_MAGIC = b"CMWASM\x00\x01"


cdef int64_t cm_wasm_checkpoint_size(cm_wasm_instance *inst) noexcept nogil:
    """The bytes cm_wasm_checkpoint writes now (-1: not spawned)."""
    if inst.module == NULL:
        return -1
    return (_WASM_CKPT_HEADER + _WASM_CKPT_GLOBAL * inst.module.n_globals
            + <int64_t>wasmtime_memory_data_size(inst.ctx, &inst.memory))


cdef int64_t cm_wasm_checkpoint(cm_wasm_instance *inst, char *buf, int64_t cap, char *err,
                                size_t errlen) noexcept nogil:
    """Writes the agent's state into buf (cap bytes).  Returns the bytes
    written, or -1 and err."""
    cdef cm_wasm_module *m = inst.module
    cdef int64_t need = cm_wasm_checkpoint_size(inst)
    cdef uint64_t mem
    cdef uint32_t n, zero = 0
    cdef int32_t i
    cdef wasmtime_extern_t ext
    cdef wasmtime_val_t val
    cdef char *p
    if m == NULL:
        snprintf(err, errlen, "checkpoint: the agent is not spawned")
        return -1
    if cap < need:
        snprintf(err, errlen, "checkpoint: needs %lld bytes, the buffer has %lld",
                 <long long>need, <long long>cap)
        return -1
    mem = wasmtime_memory_data_size(inst.ctx, &inst.memory)
    n = <uint32_t>m.n_globals
    memcpy(buf, _WASM_CKPT_MAGIC, 8)
    memcpy(buf + 8, &m.fingerprint, 8)
    memcpy(buf + 16, &mem, 8)
    memcpy(buf + 24, &n, 4)
    memcpy(buf + 28, &zero, 4)
    p = buf + _WASM_CKPT_HEADER
    for i in range(m.n_globals):
        memset(&val, 0, sizeof(val))
        if (not wasmtime_instance_export_get(inst.ctx, &inst.instance, m.global_names[i],
                                             strlen(m.global_names[i]), &ext)
                or ext.kind != CM_WASM_EXTERN_GLOBAL):
            snprintf(err, errlen, "checkpoint: the global %s is missing", m.global_names[i])
            return -1
        wasmtime_global_get(inst.ctx, &ext.of.glob, &val)
        memset(p, 0, _WASM_CKPT_GLOBAL)
        p[0] = <char>val.kind
        memcpy(p + 8, &val.of, 8)
        p += _WASM_CKPT_GLOBAL
    memcpy(p, inst.base, mem)
    return need


cdef int cm_wasm_restore(cm_wasm_instance *inst, const char *buf, int64_t length, char *err,
                         size_t errlen) noexcept nogil:
    """Restores a checkpoint of an agent of the same module: memory (grown
    if it is smaller, the excess zeroed if larger) and exported mutable
    globals.  Returns 0, or -1 and err (a partial restore is possible only
    when a global cannot be set: respawn then)."""
    cdef cm_wasm_module *m = inst.module
    cdef uint64_t fingerprint, mem, cur, prev
    cdef uint32_t n
    cdef int32_t i
    cdef wasmtime_extern_t ext
    cdef wasmtime_val_t val
    cdef wasmtime_error_t *e
    cdef const char *p
    cdef int code = 0
    if m == NULL:
        snprintf(err, errlen, "restore: the agent is not spawned")
        return -1
    if length < _WASM_CKPT_HEADER or memcmp(buf, _WASM_CKPT_MAGIC, 8) != 0:
        snprintf(err, errlen, "restore: not a checkpoint of a WebAssembly agent")
        return -1
    memcpy(&fingerprint, buf + 8, 8)
    memcpy(&mem, buf + 16, 8)
    memcpy(&n, buf + 24, 4)
    if fingerprint != m.fingerprint:
        snprintf(err, errlen, "restore: the checkpoint is of another module")
        return -1
    if (n != <uint32_t>m.n_globals or mem % _WASM_PAGE != 0
            or <uint64_t>length != _WASM_CKPT_HEADER + _WASM_CKPT_GLOBAL * <uint64_t>n + mem):
        snprintf(err, errlen, "restore: the checkpoint is truncated or corrupt (%lld bytes)",
                 <long long>length)
        return -1
    cur = wasmtime_memory_data_size(inst.ctx, &inst.memory)
    if mem > cur:
        e = wasmtime_memory_grow(inst.ctx, &inst.memory, (mem - cur) // _WASM_PAGE, &prev)
        if e != NULL:
            _wasm_error_text(e, "restore: cannot grow the agent's memory", &code, err, errlen)
            return -1
        inst.base = wasmtime_memory_data(inst.ctx, &inst.memory)
    p = buf + _WASM_CKPT_HEADER
    # globals first: they are the only step that can fail
    for i in range(m.n_globals):
        if (not wasmtime_instance_export_get(inst.ctx, &inst.instance, m.global_names[i],
                                             strlen(m.global_names[i]), &ext)
                or ext.kind != CM_WASM_EXTERN_GLOBAL):
            snprintf(err, errlen, "restore: the global %s is missing", m.global_names[i])
            return -1
        memset(&val, 0, sizeof(val))
        val.kind = <uint8_t>p[0]
        memcpy(&val.of, p + 8, 8)
        e = wasmtime_global_set(inst.ctx, &ext.of.glob, &val)
        if e != NULL:
            _wasm_error_text(e, "restore: cannot set a global", &code, err, errlen)
            return -1
        p += _WASM_CKPT_GLOBAL
    memcpy(inst.base, p, mem)
    if cur > mem:
        memset(inst.base + mem, 0, cur - mem)
    return 0


# --- the Python view of one agent ---------------------------------------------

# What a WasmInstance's agent sent through cm.send, kept until take_sent():
# records [i32 dst][i64 length][bytes].
cdef struct _wasm_outbox:
    char *data
    int64_t length
    int64_t capacity

cdef enum:
    _WASM_OUTBOX_MAX = 64 << 20      # then cm.send refuses (-2): a runaway sender


cdef int32_t _wasm_outbox_send(void *ctx, int32_t dst, const char *data, int64_t length) noexcept nogil:
    cdef _wasm_outbox *box = <_wasm_outbox *>ctx
    cdef int64_t need = box.length + 12 + length
    cdef int64_t cap
    cdef char *grown
    if need > _WASM_OUTBOX_MAX:
        return -2
    if need > box.capacity:
        cap = box.capacity * 2 if box.capacity else 4096
        while cap < need:
            cap *= 2
        grown = <char *>realloc(box.data, cap)
        if grown == NULL:
            return -2
        box.data = grown
        box.capacity = cap
    memcpy(box.data + box.length, &dst, 4)
    memcpy(box.data + box.length + 4, &length, 8)
    memcpy(box.data + box.length + 12, data, length)
    box.length = need
    return 0


cdef inline const char *_wasm_bytes_ptr(const uint8_t[::1] m) noexcept:
    # a pointer to a buffer's bytes (a valid one when empty)
    return <const char *>&m[0] if m.shape[0] else <const char *>b""


cdef object _wasm_raise(int code, const char *err):
    raise WasmTrap(err.decode("utf-8", "replace"), cm_wasm_kind_name(code).decode(), code)


@cython.final
cdef class WasmInstance:
    """One WebAssembly agent spawned from a WasmModule: its own Store,
    instance and memory.  For tests and for exploring agents; the router
    drives agents through the C API.

    ``param``: passed to the agent's cm_set_param (e.g. the compute agent's
    work units).  One call at a time: a second thread calling in meanwhile
    gets a RuntimeError.  Messages an agent sends with cm.send are kept for
    take_sent().
    """

    cdef cm_wasm_instance _i
    cdef _wasm_outbox _sent
    cdef readonly WasmModule module

    def __cinit__(self, WasmModule module not None, *, param=None):
        cdef char err[1024]
        cdef int rc
        self.module = module
        with nogil:
            rc = cm_wasm_spawn(module._m, &self._i, err, sizeof(err))
        if rc != 0:
            raise RuntimeError("WasmInstance: " + err.decode("utf-8", "replace"))
        cm_wasm_set_sender(&self._i, _wasm_outbox_send, &self._sent)
        if param is not None:
            self.set_param(param)

    def __dealloc__(self):
        cm_wasm_destroy(&self._i)
        free(self._sent.data)

    cdef int _enter(self) except -1:
        cdef int64_t expected = 0
        if self._i.module == NULL:
            raise RuntimeError("WasmInstance: the agent is closed")
        if not cm_atomic_cas_64(&self._i.in_use, &expected, 1):
            raise RuntimeError("WasmInstance: in use by another thread (an agent handles "
                               "one call at a time)")
        return 0

    cdef inline void _leave(self) noexcept:
        cm_atomic_store_64(&self._i.in_use, 0)

    def handle(self, message):
        """The agent's reply to ``message`` (bytes-like, at most 48 KiB).
        Raises WasmTrap, whose ``kind`` says what failed."""
        cdef const uint8_t[::1] m = message
        cdef const char *p = _wasm_bytes_ptr(m)
        cdef int64_t n = m.shape[0]
        cdef char *reply
        cdef int64_t reply_len
        cdef int code, rc
        cdef char err[1024]
        self._enter()
        with nogil:
            rc = cm_wasm_handle(&self._i, p, n, &reply, &reply_len, &code, err, sizeof(err))
        try:
            if rc != 0:
                _wasm_raise(code, err)
            return PyBytes_FromStringAndSize(reply, reply_len)
        finally:
            self._leave()

    def handle_batch(self, messages):
        """The replies to ``messages`` (bytes-like each) in one
        cm_handle_batch call: a list of bytes.  Raises WasmTrap."""
        cdef char *out
        cdef int64_t out_len, off = 0
        cdef int32_t n_replies, k
        cdef uint32_t rl
        cdef int code, rc
        cdef char err[1024]
        cdef int32_t count = 0
        frames = bytearray()
        for msg in messages:
            b = memoryview(msg).cast("B")
            frames += len(b).to_bytes(4, "little")
            frames += b
            count += 1
        cdef const char *records = PyByteArray_AS_STRING(frames)
        cdef int64_t records_len = len(frames)
        self._enter()
        try:
            with nogil:
                rc = cm_wasm_handle_batch(&self._i, records, records_len, count, &out, &out_len,
                                          &n_replies, &code, err, sizeof(err))
            if rc != 0:
                _wasm_raise(code, err)
            replies = []
            for k in range(n_replies):
                memcpy(&rl, out + off, 4)
                replies.append(PyBytes_FromStringAndSize(out + off + 4, rl))
                off += 4 + rl
            return replies
        finally:
            self._leave()

    def set_param(self, value):
        """Calls the agent's cm_set_param(value)."""
        cdef int64_t v = _index(value)
        cdef int code, rc
        cdef char err[1024]
        self._enter()
        try:
            with nogil:
                rc = cm_wasm_set_param(&self._i, v, &code, err, sizeof(err))
            if rc != 0:
                _wasm_raise(code, err)
        finally:
            self._leave()

    def checkpoint(self):
        """The agent's state (memory and exported mutable globals) as bytes,
        for restore() into an agent of the same module."""
        cdef char err[512]
        cdef int64_t size, written
        cdef char *buf
        self._enter()
        try:
            size = cm_wasm_checkpoint_size(&self._i)
            data = PyBytes_FromStringAndSize(NULL, size)
            buf = PyBytes_AS_STRING(data)
            with nogil:
                written = cm_wasm_checkpoint(&self._i, buf, size, err, sizeof(err))
            if written < 0:
                raise RuntimeError("WasmInstance." + err.decode("utf-8", "replace"))
            return data
        finally:
            self._leave()

    def restore(self, data):
        """Restores a checkpoint() of an agent of the same module."""
        cdef const uint8_t[::1] d = data
        cdef char err[512]
        cdef int rc
        if d.shape[0] == 0:
            raise ValueError("WasmInstance.restore: not a checkpoint of a WebAssembly agent")
        self._enter()
        try:
            with nogil:
                rc = cm_wasm_restore(&self._i, <const char *>&d[0], d.shape[0], err, sizeof(err))
            if rc != 0:
                raise ValueError("WasmInstance." + err.decode("utf-8", "replace"))
        finally:
            self._leave()

    def take_sent(self):
        """What the agent sent with cm.send since the last take_sent():
        a list of (destination, bytes); the list is cleared."""
        cdef int64_t off = 0, length
        cdef int32_t dst
        out = []
        while off < self._sent.length:
            memcpy(&dst, self._sent.data + off, 4)
            memcpy(&length, self._sent.data + off + 4, 8)
            out.append((dst, PyBytes_FromStringAndSize(self._sent.data + off + 12, length)))
            off += 12 + length
        self._sent.length = 0
        return out

    def close(self):
        """Deletes the agent's Store now (also done when collected)."""
        self._enter()
        cm_wasm_destroy(&self._i)    # clears in_use too

    @property
    def closed(self):
        return self._i.module == NULL

    @property
    def memory_size(self):
        """The agent's linear memory in bytes."""
        return cm_wasm_memory_size(&self._i)

    def __repr__(self):
        if self._i.module == NULL:
            return "<WasmInstance closed>"
        return f"<WasmInstance memory_size={self.memory_size}>"


# --- benchmark helpers: loops in C, nothing in Python per operation ------------

def _wasm_ticker_state():
    """(running, live agents, ticks so far) of the epoch ticker: for tests."""
    return bool(cm_wasm_ticker_running()), cm_wasm_ticker_live(), cm_wasm_ticker_ticks()


def _bench_handle(WasmInstance inst not None, message, int64_t n):
    """ns for n cm_wasm_handle calls of `message` on inst, in a C loop."""
    cdef const uint8_t[::1] m = message
    cdef const char *p = _wasm_bytes_ptr(m)
    cdef int64_t length = m.shape[0], k, reply_len = 0, t0, t1
    cdef char *reply
    cdef int code = 0, rc = 0
    cdef char err[1024]
    inst._enter()
    try:
        with nogil:
            t0 = cm_now_ns()
            for k in range(n):
                rc = cm_wasm_handle(&inst._i, p, length, &reply, &reply_len, &code, err, sizeof(err))
                if rc != 0:
                    break
            t1 = cm_now_ns()
        if rc != 0:
            _wasm_raise(code, err)
        return t1 - t0
    finally:
        inst._leave()


@cython.final
cdef class _WasmAgents:
    """n agents of one module in a C array, for benchmarks: spawn all, send
    each a message round robin, trap and recover, destroy all -- each timed
    in C."""

    cdef cm_wasm_instance *_a
    cdef int64_t _n
    cdef readonly WasmModule module

    def __cinit__(self, WasmModule module not None, int64_t n):
        if n < 1:
            raise ValueError(f"_WasmAgents: n must be >= 1, got {n}")
        self._a = <cm_wasm_instance *>calloc(n, sizeof(cm_wasm_instance))
        if self._a == NULL:
            raise MemoryError(f"_WasmAgents: cannot allocate {n} agents")
        self._n = n
        self.module = module

    def __dealloc__(self):
        cdef int64_t i
        if self._a != NULL:
            for i in range(self._n):
                cm_wasm_destroy(&self._a[i])
            free(self._a)

    def __len__(self):
        return self._n

    def spawn(self, Histogram histogram=None):
        """Spawns every agent; ns in all.  Each spawn's ns into histogram."""
        cdef int64_t i, t0, t1, tp
        cdef int rc = 0
        cdef char err[1024]
        cdef cm_hdr *h = &histogram._h if histogram is not None else NULL
        with nogil:
            t0 = cm_now_ns()
            tp = t0
            for i in range(self._n):
                rc = cm_wasm_spawn(self.module._m, &self._a[i], err, sizeof(err))
                if rc != 0:
                    break
                if h != NULL:
                    t1 = cm_now_ns()
                    hdr_record(h, t1 - tp, 1)
                    tp = t1
            t1 = cm_now_ns()
        if rc != 0:
            raise RuntimeError(err.decode("utf-8", "replace"))
        return t1 - t0

    def destroy(self):
        """Destroys every agent; ns in all."""
        cdef int64_t i, t0, t1
        with nogil:
            t0 = cm_now_ns()
            for i in range(self._n):
                cm_wasm_destroy(&self._a[i])
            t1 = cm_now_ns()
        return t1 - t0

    def round_robin(self, message, int64_t count):
        """ns for `count` messages, to agents 0, 1, ..., n-1, 0, ..."""
        cdef const uint8_t[::1] m = message
        cdef const char *p = _wasm_bytes_ptr(m)
        cdef int64_t length = m.shape[0], k, j = 0, reply_len, t0, t1
        cdef char *reply
        cdef int code = 0, rc = 0
        cdef char err[1024]
        with nogil:
            t0 = cm_now_ns()
            for k in range(count):
                rc = cm_wasm_handle(&self._a[j], p, length, &reply, &reply_len, &code, err, sizeof(err))
                if rc != 0:
                    break
                j += 1
                if j == self._n:
                    j = 0
            t1 = cm_now_ns()
        if rc != 0:
            _wasm_raise(code, err)
        return t1 - t0

    def recover(self, int64_t i, bad, good, int64_t reps):
        """reps times: agent i handles `bad` (which must trap), is destroyed,
        spawned anew, and handles `good`.  Mean ns of each step, as a dict."""
        cdef const uint8_t[::1] b = bad
        cdef const uint8_t[::1] g = good
        cdef const char *pb = _wasm_bytes_ptr(b)
        cdef const char *pg = _wasm_bytes_ptr(g)
        cdef int64_t nb = b.shape[0], ng = g.shape[0], reply_len, k
        cdef int64_t t0, t1, t2, t3, t4, t_trap = 0, t_destroy = 0, t_spawn = 0, t_first = 0
        cdef char *reply
        cdef int code = 0, rc = 0, failed = 0
        cdef char err[1024]
        if not 0 <= i < self._n or reps < 1:
            raise ValueError("_WasmAgents.recover: bad agent index or reps")
        with nogil:
            for k in range(reps):
                t0 = cm_now_ns()
                rc = cm_wasm_handle(&self._a[i], pb, nb, &reply, &reply_len, &code, err, sizeof(err))
                if rc == 0 or code > CM_WASM_HOST_TRAP:
                    failed = 1
                    break
                t1 = cm_now_ns()
                cm_wasm_destroy(&self._a[i])
                t2 = cm_now_ns()
                rc = cm_wasm_spawn(self.module._m, &self._a[i], err, sizeof(err))
                t3 = cm_now_ns()
                if rc != 0:
                    failed = 2
                    break
                rc = cm_wasm_handle(&self._a[i], pg, ng, &reply, &reply_len, &code, err, sizeof(err))
                t4 = cm_now_ns()
                if rc != 0:
                    failed = 3
                    break
                t_trap += t1 - t0
                t_destroy += t2 - t1
                t_spawn += t3 - t2
                t_first += t4 - t3
        if failed == 1:
            raise ValueError("_WasmAgents.recover: `bad` did not trap" if rc == 0
                             else "_WasmAgents.recover: " + err.decode("utf-8", "replace"))
        if failed:
            raise RuntimeError("_WasmAgents.recover: " + err.decode("utf-8", "replace"))
        return dict(trap_ns=t_trap / reps, destroy_ns=t_destroy / reps, spawn_ns=t_spawn / reps,
                    first_call_ns=t_first / reps, kind=cm_wasm_kind_name(code).decode())
