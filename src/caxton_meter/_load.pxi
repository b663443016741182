# Load-generation loops, compiled: they send, run the router and count
# completions without Python work per message.


cdef class LoadResult:
    """What one load loop measured.  Immutable."""
    cdef readonly int64_t requests
    cdef readonly int64_t completed
    cdef readonly int64_t failed         # dead-lettered or rejected on the way
    cdef readonly int64_t messages       # every message routed: requests, replies, forwards
    cdef readonly int64_t elapsed_ns

    @property
    def messages_per_second(self):
        return self.messages * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0

    @property
    def completed_per_second(self):
        return self.completed * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0

    def __repr__(self):
        return (f"LoadResult(requests={self.requests}, completed={self.completed}, failed={self.failed}, "
                f"messages={self.messages}, elapsed_ns={self.elapsed_ns}, "
                f"messages_per_second={self.messages_per_second:,.0f})")


cdef struct cm_drive:
    # one closed loop's work and what it measured
    int32_t *targets
    Py_ssize_t n_targets
    int64_t total
    int64_t window
    bint one_way
    cm_buf *content
    int64_t sent
    int64_t completed
    int64_t failed


cdef inline void _drive_send(Router router, cm_shard *sh, cm_drive *d, int64_t now) noexcept nogil:
    cdef cm_msg m
    m.id = router._new_id(sh)
    m.conversation_id = 0
    m.reply_with = 0
    m.in_reply_to = 0
    m.origin_ns = now
    m.content = buf_ref(d.content)
    m.sender = CLIENT
    m.receiver = d.targets[d.sent % d.n_targets]
    m.performative = PERF_REQUEST
    m.hops = 0
    m.origin = sh.index
    m.pad = 0
    if sh.index == 0:
        router._submit(&m, now)       # the calling thread's client has the batcher
    else:
        router._enqueue(sh, &m, now)
    d.sent += 1


cdef inline void _drive_count(cm_shard *sh, cm_drive *d, int64_t start_received,
                              int64_t start_delivered, int64_t start_failed) noexcept nogil:
    # a request is outstanding until it completes, or fails at any hop (on
    # any thread: dead letters count against the shard that began them)
    if d.one_way:
        d.completed = sh.delivered - start_delivered
    else:
        d.completed = sh.client_received - start_received
    d.failed = cm_atomic_load_64(&sh.failed_origin) - start_failed


cdef int _drive(Router router, cm_shard *sh, cm_drive *d) except -1:
    """The calling thread's closed loop (its agents may be Python agents)."""
    cdef int64_t start_received = sh.client_received, start_delivered = sh.delivered
    cdef int64_t start_failed = cm_atomic_load_64(&sh.failed_origin), now, ran
    while True:
        now = cm_now_ns()
        while d.sent < d.total and d.sent - d.completed - d.failed < d.window:
            _drive_send(router, sh, d, now)
        ran = router._run(sh, router._batch * d.n_targets)
        _drive_count(sh, d, start_received, start_delivered, start_failed)
        if d.sent == d.total and (d.completed + d.failed >= d.total or ran == 0):
            return 0


cdef void _drive_native(Router router, cm_shard *sh, cm_drive *d) noexcept nogil:
    """A worker's closed loop over its own native agents."""
    cdef int64_t start_received = sh.client_received, start_delivered = sh.delivered
    cdef int64_t start_failed = cm_atomic_load_64(&sh.failed_origin), now, ran
    cdef int idle = 0
    while True:
        now = cm_now_ns()
        while d.sent < d.total and d.sent - d.completed - d.failed < d.window:
            _drive_send(router, sh, d, now)
        ran = router._run_native(sh, router._batch * d.n_targets)
        _drive_count(sh, d, start_received, start_delivered, start_failed)
        if d.completed + d.failed >= d.total and d.sent == d.total:
            return
        if ran == 0:
            # replies may be on their way from another thread
            idle += 1
            if idle > 1000:
                cm_sleep_ns(10000)
            else:
                cm_cpu_relax()
        else:
            idle = 0


def _drive_worker(Router router, int index, list drives, int slot):
    cdef cm_drive *d = <cm_drive *><uintptr_t>drives[slot]
    with nogil:
        _drive_native(router, &router._shards[index], d)


def closed_loop(Router router not None, targets, total, *, window=1000, content=b"",
                one_way=False):
    """Keep ``window`` requests in flight from the client to ``targets``
    (agent ids, round robin) until all ``total`` have ended: completed
    (replied to the client, or, with ``one_way``, handled by their
    receiver) or failed (dead-lettered or rejected on the way).  Every
    message's latency is recorded in the router's histograms.

    With worker threads, each worker runs its own share of the loop over
    the targets it owns (total and window are split in proportion), as
    wrk's threads each drive their own connections.  Returns a LoadResult."""
    cdef int64_t n_total = _index(total), w = _index(window)
    if n_total < 1:
        raise ValueError(f"closed_loop: total must be >= 1, got {n_total}")
    if w < 1:
        raise ValueError(f"closed_loop: window must be >= 1, got {w}")
    ids = [_index(t) for t in targets]
    if not ids:
        raise ValueError("closed_loop: targets is empty")
    for aid in ids:
        if not 1 <= aid < router._n_agents or router._agents[<int32_t>aid].state != STATE_READY:
            raise ValueError(f"closed_loop: target {aid} is not a live agent")
        if router._workers and router._agents[<int32_t>aid].shard == 0:
            raise ValueError(f"closed_loop: target {aid} is a Python agent; with workers, a closed "
                             "loop drives native agents (use a router with workers=0)")
    if router._running:
        raise RuntimeError("closed_loop: the router is already running")
    cdef const unsigned char[::1] view = content
    if view.shape[0] > router._max_content:
        raise RoutingError(f"closed_loop: content of {view.shape[0]} bytes is larger than "
                           f"max_content {router._max_content}")
    # the targets of each shard
    by_shard = {}
    for aid in ids:
        by_shard.setdefault(router._agents[<int32_t>aid].shard, []).append(aid)
    shards = sorted(by_shard)
    cdef Py_ssize_t n = len(shards), k, j
    cdef cm_drive *drives = <cm_drive *>calloc(n, sizeof(cm_drive))
    cdef cm_buf *buf = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
    if drives == NULL or buf == NULL:
        free(drives)
        buf_unref(buf)
        raise MemoryError()
    cdef int64_t assigned = 0, wassigned = 0, start_sent = 0, t0, t1
    cdef int32_t i
    cdef LoadResult result = LoadResult.__new__(LoadResult)
    try:
        for k in range(n):
            members = by_shard[shards[k]]
            drives[k].n_targets = len(members)
            drives[k].targets = <int32_t *>malloc(len(members) * sizeof(int32_t))
            if drives[k].targets == NULL:
                raise MemoryError()
            for j in range(len(members)):
                drives[k].targets[j] = <int32_t>members[j]
            # shares in proportion to the targets; the last takes the rest
            drives[k].total = (n_total - assigned if k == n - 1
                               else n_total * len(members) // len(ids))
            drives[k].window = max(1, w - wassigned if k == n - 1 else w * len(members) // len(ids))
            assigned += drives[k].total
            wassigned += drives[k].window
            drives[k].one_way = one_way
            # a copy each: one buffer shared by threads would make its
            # reference count a cache line they fight over
            drives[k].content = buf_new(buf.data, buf.length) if n > 1 else buf_ref(buf)
            if drives[k].content == NULL:
                raise MemoryError()
        for i in range(router._n_shards):
            start_sent += router._shards[i].sent
        router._running = 1
        router._discard_replies = 1
        if not router._workers:
            t0 = cm_now_ns()
            _drive(router, &router._shards[0], &drives[0])
            t1 = cm_now_ns()
        else:
            t0 = cm_now_ns()
            t1 = _closed_loop_threaded(router, shards, drives, n)
        for k in range(n):
            result.requests += drives[k].sent
            result.completed += drives[k].completed
            result.failed += drives[k].failed
        for i in range(router._n_shards):
            result.messages += router._shards[i].sent
        result.messages -= start_sent
        result.elapsed_ns = t1 - t0
        return result
    finally:
        router._running = 0
        router._discard_replies = 0
        for k in range(n):
            free(drives[k].targets)
            buf_unref(drives[k].content)
        free(drives)
        buf_unref(buf)


cdef int64_t _closed_loop_threaded(Router router, list shards, cm_drive *drives, Py_ssize_t n) except -1:
    """Each shard with targets drives them on its own thread; the others run
    their agents (forwards may reach them).  Returns when all drives ended."""
    import threading
    cdef Py_ssize_t k
    cdef int32_t i
    driving = set(shards)
    cm_atomic_store_64(&router._stop, 0)
    router._threaded = 1
    addresses = [<uintptr_t>&drives[k] for k in range(n)]
    drivers = [threading.Thread(target=_drive_worker, args=(router, shards[k], addresses, k),
                                daemon=True) for k in range(n)]
    others = [threading.Thread(target=router._worker_main, args=(i,), daemon=True)
              for i in range(1, router._n_shards) if i not in driving]
    try:
        for t in others + drivers:
            t.start()
        for t in drivers:
            t.join()
        return cm_now_ns()
    finally:
        cm_atomic_store_64(&router._stop, 1)
        for t in others:
            t.join()
        router._threaded = 0
        for i in range(router._n_shards):
            router._drain_inbound(&router._shards[i])
