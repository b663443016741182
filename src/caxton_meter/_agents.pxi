# The agents: what each kind does with a message, and how it is made, brought
# back after a fault, checkpointed, restored and stopped.
#
# Native agents are C code run without the GIL; Python agents run on the
# calling thread; WebAssembly agents run in wasmtime, each in a Store of its
# own, and go wherever native agents go.  The router (_router.pxi) moves
# messages and keeps the books; whatever depends on an agent's kind is
# decided in this file, by one switch per operation, so that a new kind is
# added here and nowhere else.  These functions are the router's own: they
# use its sends, dead letters and histograms.

cdef class Router              # _router.pxi


# --- kinds --------------------------------------------------------------------------

cdef enum:
    KIND_ECHO = 1
    KIND_SINK = 2
    KIND_FORWARD = 3
    KIND_COMPUTE = 4
    KIND_FAIL_EVERY_N = 5
    KIND_PYTHON = 10
    KIND_WASM = 20

cdef dict _NATIVE_KINDS = {"echo": KIND_ECHO, "sink": KIND_SINK, "forward": KIND_FORWARD,
                           "compute": KIND_COMPUTE, "fail-every-n": KIND_FAIL_EVERY_N}
cdef dict _KIND_NAMES = {KIND_ECHO: "echo", KIND_SINK: "sink", KIND_FORWARD: "forward",
                         KIND_COMPUTE: "compute", KIND_FAIL_EVERY_N: "fail-every-n",
                         KIND_PYTHON: "python", KIND_WASM: "wasm"}


# --- the compute agents' work: a deterministic CPU-bound loop (xorshift64*),
# the same that the WebAssembly compute agent runs.

cdef inline uint64_t compute_work(uint64_t seed, int64_t units) noexcept nogil:
    cdef uint64_t x = seed | 1
    cdef int64_t i
    for i in range(units):
        x ^= x >> 12
        x ^= x << 25
        x ^= x >> 27
        x *= <uint64_t>0x2545F4914F6CDD1D
    return x


cdef uint64_t _content_seed(cm_buf *b) noexcept nogil:
    cdef uint64_t seed = 0x9E3779B97F4A7C15
    cdef int64_t i
    if b != NULL:
        for i in range(b.length if b.length < 8 else 8):
            seed = (seed << 8) | (<unsigned char>b.data[i])
    return seed


def compute_reference(bytes content, int64_t units):
    """What a compute agent replies for ``content`` and ``units`` (the result
    of the deterministic work loop, 8 bytes little-endian)."""
    cdef cm_buf *b = buf_new(content, len(content))
    cdef uint64_t r = compute_work(_content_seed(b), units)
    buf_unref(b)
    return r.to_bytes(8, "little")


# --- where an agent runs ------------------------------------------------------------

cdef inline int32_t agent_home_shard(int32_t kind, int32_t aid, int32_t workers) noexcept nogil:
    # Python agents need the GIL: they run on the calling thread (shard 0).
    # Native and WebAssembly agents are dealt round the workers.
    if kind == KIND_PYTHON or workers == 0:
        return 0
    return 1 + (aid - 1) % workers


# --- making one -----------------------------------------------------------------------

cdef int64_t native_param(Router router, int32_t code, units, target, every) except -1:
    """The parameter of a native agent of kind code, checked: a compute
    agent's units, a forward agent's target, a fail-every-n agent's period."""
    cdef int64_t param = 0
    if code == KIND_COMPUTE:
        param = _index(units)
        if param < 0:
            raise ValueError(f"spawn_native: units must be >= 0, got {param}")
    elif code == KIND_FORWARD:
        if target is None:
            raise ValueError("spawn_native: a forward agent needs target= (an agent id)")
        param = _index(target)
        if not 1 <= param < router._n_agents or router._agents[param].state != STATE_READY:
            raise ValueError(f"spawn_native: forward target {param} is not a live agent")
    elif code == KIND_FAIL_EVERY_N:
        if every is None:
            raise ValueError("spawn_native: a fail-every-n agent needs every= (>= 1)")
        param = _index(every)
        if param < 1:
            raise ValueError(f"spawn_native: every must be >= 1, got {param}")
    return param


cdef cm_wasm_instance *wasm_instance_new(cm_wasm_module *module, int64_t param,
                                         bint set_param) except NULL:
    """A new instance of module in a Store of its own, given param when set_param."""
    cdef cm_wasm_instance *inst = <cm_wasm_instance *>calloc(1, sizeof(cm_wasm_instance))
    cdef char err[256]
    cdef int code = 0, rc
    if inst == NULL:
        raise MemoryError("spawn_wasm: cannot allocate an agent")
    with nogil:
        rc = cm_wasm_spawn(module, inst, err, sizeof(err))
        if rc == 0 and set_param:
            rc = cm_wasm_set_param(inst, param, &code, err, sizeof(err))
            if rc != 0:
                cm_wasm_destroy(inst)
    if rc != 0:
        free(inst)
        raise RuntimeError("spawn_wasm: " + err.decode("utf-8", "replace"))
    return inst


cdef int _wasm_fresh_instance(cm_agent *a) noexcept nogil:
    """Replace a WebAssembly agent's instance with a fresh one of the same
    module and param; 0, or -1 when the new one cannot start."""
    cdef cm_wasm_instance *inst = <cm_wasm_instance *>a.wasm
    cdef cm_wasm_module *module = inst.module
    cdef char err[256]
    cdef int code = 0, rc
    cm_wasm_module_ref(module)           # the old instance's reference goes with it
    cm_wasm_destroy(inst)
    rc = cm_wasm_spawn(module, inst, err, sizeof(err))
    if rc == 0 and a.param:
        rc = cm_wasm_set_param(inst, a.param, &code, err, sizeof(err))
    cm_wasm_module_unref(module)
    return rc


cdef python_instance_fresh(Router router, int32_t pyslot, bint restarting):
    """Make (or, for a shared instance, restart) the object of Python slot
    pyslot, and find its handler."""
    cdef list slot = <list>router._py_agents[pyslot]
    factory = slot[1]
    if factory is not None:
        instance = factory()
    else:
        instance = slot[2]
        hook = getattr(instance, "restart", None) if restarting else None
        if hook is not None:
            hook()
    handler = getattr(instance, "handle", None)
    if handler is None:
        if not callable(instance):
            raise TypeError(f"a Python agent must be callable or have handle(message); "
                            f"got {type(instance).__name__}")
        handler = instance
    slot[0] = handler
    slot[2] = instance


# --- handling a message ---------------------------------------------------------------
# Order matters for counting: a message an agent sends is counted as sent
# before the message it handled is counted as delivered, so that the
# router is never seen with nothing in flight while work remains.

cdef int agent_handle(Router router, cm_shard *sh, int32_t aid, cm_msg *m) except -1:
    """Agent aid handles m, just taken from its mailbox (m's content
    reference is the handler's), on the calling thread: any kind."""
    cdef int64_t t0 = cm_now_ns()
    router._record_queue(sh, aid, t0 - m.enqueued_ns)
    if router._agents[aid].kind == KIND_PYTHON:
        return _python_handle(router, sh, aid, m, t0)
    _handle_in_c(router, sh, aid, m, t0)
    return 0


cdef inline void agent_handle_nogil(Router router, cm_shard *sh, int32_t aid, cm_msg *m) noexcept nogil:
    """agent_handle on a worker thread, whose agents are native or WebAssembly."""
    cdef int64_t t0 = cm_now_ns()
    router._record_queue(sh, aid, t0 - m.enqueued_ns)
    _handle_in_c(router, sh, aid, m, t0)


cdef inline void _handle_in_c(Router router, cm_shard *sh, int32_t aid, cm_msg *m,
                              int64_t t0) noexcept nogil:
    if router._agents[aid].kind == KIND_WASM:
        _wasm_handle(router, sh, aid, m, t0)
    else:
        _native_handle(router, sh, aid, m, t0)


cdef inline void _handled(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int64_t t0,
                          int64_t t1) noexcept nogil:
    """m was handled, from t0 to t1: counted, timed, its content released."""
    router._agents[aid].handled += 1
    router._record_handling(sh, aid, t1 - t0)
    router._record_delivery(sh, t1 - m.origin_ns)
    buf_unref(m.content)
    _inc(&sh.delivered, 1)


cdef void _native_handle(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int64_t t0) noexcept nogil:
    cdef cm_agent *a = &router._agents[aid]
    cdef int64_t t1
    cdef uint64_t result
    a.counter += 1
    if a.kind == KIND_ECHO:
        t1 = cm_now_ns()
        router._reply(sh, aid, m, m.content, PERF_INFORM, t1)
        m.content = NULL
    elif a.kind == KIND_SINK:
        t1 = cm_now_ns()
    elif a.kind == KIND_FORWARD:
        t1 = cm_now_ns()
        if m.reply_with == 0:
            m.reply_with = m.id       # the reply still answers the original request
        m.id = router._new_id(sh)
        m.receiver = <int32_t>a.param
        m.hops += 1
        a.handled += 1
        router._record_handling(sh, aid, t1 - t0)
        router._record_delivery(sh, t1 - m.origin_ns)
        router._enqueue(sh, m, t1)    # the forward is a new send ...
        _inc(&sh.delivered, 1)        # ... and this hop is done
        return
    elif a.kind == KIND_COMPUTE:
        result = compute_work(_content_seed(m.content), a.param)
        t1 = cm_now_ns()
        router._reply(sh, aid, m, buf_new(<char *>&result, 8), PERF_INFORM, t1)
    elif a.kind == KIND_FAIL_EVERY_N:
        t1 = cm_now_ns()
        if a.counter % a.param == 0:
            agent_fault(router, sh, aid, m, DL_FAULT, -1, t1)
            return
        router._reply(sh, aid, m, m.content, PERF_INFORM, t1)
        m.content = NULL
    else:
        agent_fault(router, sh, aid, m, DL_FAULT, -1, cm_now_ns())
        return
    _handled(router, sh, aid, m, t0, t1)


# --- what a WebAssembly agent sends (cm.send) during one call

cdef enum:
    _WASM_MAX_SENDS = 64       # per call; more are refused (-1), the agent is told

cdef struct _wasm_sends:
    int32_t n
    int64_t max_content
    int32_t dst[_WASM_MAX_SENDS]
    cm_buf *content[_WASM_MAX_SENDS]


cdef int32_t _wasm_send_to_outbox(void *ctx, int32_t dst, const char *data, int64_t length) noexcept nogil:
    """cm.send's host side: the message is copied out of the agent's memory
    and routed when the call returns.  0 accepted, -1 refused (too many in
    one call, too large, or no memory)."""
    cdef _wasm_sends *out = <_wasm_sends *>ctx
    cdef cm_buf *b
    if out.n >= _WASM_MAX_SENDS or length > out.max_content or length < 0:
        return -1
    b = buf_new(data, length)
    if b == NULL:
        return -1
    out.dst[out.n] = dst
    out.content[out.n] = b
    out.n += 1
    return 0


cdef void _wasm_send_outbox(Router router, cm_shard *sh, int32_t aid, _wasm_sends *out,
                            int64_t now) noexcept nogil:
    """Route what a WebAssembly agent sent with cm.send during a call."""
    cdef int32_t k
    cdef cm_msg m
    for k in range(out.n):
        # a new exchange, begun by the agent
        msg_init(&m, router._new_id(sh), aid, out.dst[k], PERF_INFORM, out.content[k],
                 0, 0, 0, now, now, 0, sh.index)
        router._enqueue(sh, &m, now)
    out.n = 0


cdef void _wasm_handle(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int64_t t0) noexcept nogil:
    """A WebAssembly agent handles m: its reply is copied out of its
    memory; a trap is a fault (dead letter, a fresh instance); an agent
    error dead-letters the message and leaves the agent as it was."""
    cdef cm_wasm_instance *inst = <cm_wasm_instance *>router._agents[aid].wasm
    cdef char *reply
    cdef int64_t reply_len = 0, t1
    cdef int code = 0, rc
    cdef char err[256]
    cdef _wasm_sends out
    out.n = 0
    out.max_content = router._max_content
    cm_wasm_set_sender(inst, _wasm_send_to_outbox, &out)
    rc = cm_wasm_handle(inst, m.content.data if m.content != NULL else <char *>"",
                        m.content.length if m.content != NULL else 0,
                        &reply, &reply_len, &code, err, sizeof(err))
    cm_wasm_set_sender(inst, NULL, NULL)
    t1 = cm_now_ns()
    # what the agent sent before it returned (or trapped) goes out, and
    # is counted as sent before the message it handled counts as done
    _wasm_send_outbox(router, sh, aid, &out, t1)
    if rc == 0:
        router._reply(sh, aid, m, buf_new(reply, reply_len), PERF_INFORM, t1)
        _handled(router, sh, aid, m, t0, t1)
    elif code > CM_WASM_HOST_TRAP:     # not a trap: the agent stays as it is
        router._dead_letter(sh, m, DL_WASM_ERROR, -(100 + code), False)
    else:                              # a trap: the instance's state is suspect
        agent_fault(router, sh, aid, m, DL_WASM_TRAP, -(100 + code), t1)


cdef int _python_handle(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int64_t t0) except -1:
    cdef list slot = <list>router._py_agents[router._agents[aid].pyslot]
    cdef Message msg = _message_from(m)
    cdef int64_t t1
    cdef object reply
    cdef cm_buf *content
    cdef const unsigned char[::1] view
    router._agents[aid].counter += 1
    try:
        reply = slot[0](msg)
    except BaseException as e:
        t1 = cm_now_ns()
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            # not the agent's fault: keep the message and stop the run
            router._dead_letter(sh, m, DL_FAULT, router._text(f"interrupted: {type(e).__name__}"), False)
            raise
        python_fault(router, sh, aid, m, router._text(f"{type(e).__name__}: {e}"), t1)
        return 1
    t1 = cm_now_ns()
    if type(reply) is Message:
        # replying with a message (the request itself, say) shares its
        # content: no copy
        router._reply(sh, aid, m, buf_ref((<Message>reply)._m.content), PERF_INFORM, t1)
    elif reply is not None:
        try:
            view = reply
        except (TypeError, ValueError, BufferError):
            router._dead_letter(sh, m, DL_BAD_REPLY, router._text(
                f"python agent {aid} returned {type(reply).__name__}; expected bytes-like "
                "content or None" + (" (encode the str)" if isinstance(reply, str) else "")), False)
            router._agents[aid].handled += 1
            return 0
        content = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
        router._reply(sh, aid, m, content, PERF_INFORM, t1)
    # the handler may have spawned agents: _handled looks the agent up again
    _handled(router, sh, aid, m, t0, t1)
    return 0


# --- after a fault: the message is dead-lettered and a fresh instance takes over

cdef inline void _fault_counted(Router router, cm_shard *sh, int32_t aid, cm_msg *m,
                                int32_t reason, int32_t detail) noexcept nogil:
    cdef cm_agent *a = &router._agents[aid]
    a.faults += 1
    router._dead_letter(sh, m, reason, detail, False)
    a.counter = 0                     # a native agent's state is its counter
    a.restarts += 1
    _inc(&sh.restarts, 1)


cdef void agent_fault(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int32_t reason,
                      int32_t detail, int64_t fault_ns) noexcept nogil:
    """A native or WebAssembly agent faulted at fault_ns handling m.  A
    WebAssembly agent whose fresh instance cannot start is stopped, its
    mailbox dead-lettered; otherwise the recovery time is recorded."""
    _fault_counted(router, sh, aid, m, reason, detail)
    if router._agents[aid].kind == KIND_WASM and _wasm_fresh_instance(&router._agents[aid]) != 0:
        agent_stop_nogil(router, sh, aid, DL_STOPPED)
        return
    hdr_record_or_overflow(&sh.recovery_time, cm_now_ns() - fault_ns, 1)


cdef void python_fault(Router router, cm_shard *sh, int32_t aid, cm_msg *m, int32_t detail,
                       int64_t fault_ns) noexcept:
    """agent_fault for a Python agent: its factory makes a fresh instance
    (or its shared instance's restart() is called); if that fails, the
    agent cannot be ready again and is stopped."""
    _fault_counted(router, sh, aid, m, DL_FAULT, detail)
    try:
        python_instance_fresh(router, router._agents[aid].pyslot, True)
    except BaseException as e:
        agent_stop(router, aid, DL_STOPPED)
        router._py_texts.append(f"restart failed: {type(e).__name__}: {e}")
    hdr_record_or_overflow(&sh.recovery_time, cm_now_ns() - fault_ns, 1)


# --- stopping --------------------------------------------------------------------------

cdef void _release_instance(cm_agent *a) noexcept nogil:
    if a.wasm != NULL:
        cm_wasm_destroy(<cm_wasm_instance *>a.wasm)
        free(a.wasm)
        a.wasm = NULL


cdef void agent_stop_nogil(Router router, cm_shard *sh, int32_t aid, int32_t reason) noexcept nogil:
    """Stop a native or WebAssembly agent on sh's thread (its owner's): what
    its mailbox holds is dead-lettered with reason, its instance freed."""
    cdef cm_agent *a = &router._agents[aid]
    cdef cm_msg m
    a.state = STATE_STOPPED
    while a.count:
        m = a.ring[a.head]
        a.head = (a.head + 1) % a.ring_cap
        a.count -= 1
        router._dead_letter(sh, &m, reason, -1, False)
    free(a.ring)
    a.ring = NULL
    a.ring_cap = 0
    _release_instance(a)


cdef void agent_stop(Router router, int32_t aid, int32_t reason) noexcept:
    """Stop any agent, with the GIL and no worker running."""
    cdef cm_agent *a = &router._agents[aid]
    agent_stop_nogil(router, &router._shards[a.shard], aid, reason)
    if a.kind == KIND_PYTHON and a.pyslot >= 0:
        router._py_agents[a.pyslot] = [None, None, None]


cdef void agent_free(cm_agent *a) noexcept nogil:
    """Free what agent a holds, when the router goes (a Python agent's
    object goes with the router's list)."""
    cdef uint32_t k
    for k in range(a.count):
        buf_unref(a.ring[(a.head + k) % a.ring_cap].content)
    free(a.ring)
    _release_instance(a)
    _free_hists(a)


# --- checkpoint and restore ---------------------------------------------------------------

cdef bytes agent_checkpoint(Router router, int32_t aid):
    """Agent aid's state: a native agent's message counter; a WebAssembly
    agent's memory and exported mutable globals; what a Python agent's
    checkpoint() returns."""
    cdef cm_agent *a = &router._agents[aid]
    cdef int64_t size, got
    cdef char err[256]
    cdef bytes out
    if a.kind == KIND_PYTHON:
        instance = (<list>router._py_agents[a.pyslot])[2]
        method = getattr(instance, "checkpoint", None)
        if method is None:
            raise TypeError(f"checkpoint: python agent {aid} ({type(instance).__name__}) has no "
                            "checkpoint() method")
        state = method()
        try:
            return bytes(memoryview(state))
        except TypeError:
            raise TypeError(f"checkpoint: python agent {aid}'s checkpoint() returned "
                            f"{type(state).__name__}; expected bytes-like") from None
    if a.kind == KIND_WASM:
        size = cm_wasm_checkpoint_size(<cm_wasm_instance *>a.wasm)
        out = PyBytes_FromStringAndSize(NULL, size)
        got = cm_wasm_checkpoint(<cm_wasm_instance *>a.wasm, PyBytes_AS_STRING(out), size,
                                 err, sizeof(err))
        if got < 0:
            raise RuntimeError("checkpoint: " + err.decode("utf-8", "replace"))
        return out[:got]
    return a.counter.to_bytes(8, "little", signed=True)


cdef int agent_restore(Router router, int32_t aid, bytes state) except -1:
    """Put a state agent_checkpoint took (of the same kind) back into agent aid."""
    cdef cm_agent *a = &router._agents[aid]
    cdef char err[256]
    if a.kind == KIND_PYTHON:
        instance = (<list>router._py_agents[a.pyslot])[2]
        method = getattr(instance, "restore", None)
        if method is None:
            raise TypeError(f"restore: python agent {aid} ({type(instance).__name__}) has no "
                            "restore(state) method")
        method(state)
    elif a.kind == KIND_WASM:
        if cm_wasm_restore(<cm_wasm_instance *>a.wasm, state, len(state), err, sizeof(err)) != 0:
            raise ValueError("restore: " + err.decode("utf-8", "replace"))
    else:
        if len(state) != 8:
            raise ValueError(f"restore: a native agent's state is 8 bytes, got {len(state)}")
        a.counter = int.from_bytes(state, "little", signed=True)
    return 0
