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


def closed_loop(Router router not None, targets, total, *, window=1000, content=b"",
                one_way=False):
    """Keep ``window`` requests in flight from the client to ``targets``
    (agent ids, round robin) until all ``total`` have ended: completed
    (replied to the client, or, with ``one_way``, handled by their
    receiver) or failed (dead-lettered or rejected on the way).  Every
    message's latency is recorded in the router's histograms.  Returns a
    LoadResult."""
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
    if router._running:
        raise RuntimeError("closed_loop: the router is already running")
    cdef const unsigned char[::1] view = content
    if view.shape[0] > router._max_content:
        raise RoutingError(f"closed_loop: content of {view.shape[0]} bytes is larger than "
                           f"max_content {router._max_content}")
    cdef Py_ssize_t n_targets = len(ids), k
    cdef int32_t *tv = <int32_t *>malloc(n_targets * sizeof(int32_t))
    cdef cm_buf *buf = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
    if tv == NULL or buf == NULL:
        free(tv)
        buf_unref(buf)
        raise MemoryError()
    for k in range(n_targets):
        tv[k] = <int32_t>ids[k]
    cdef int64_t sent = 0, completed = 0, failed = 0, now, ran
    cdef int64_t start_received = router._client_received
    cdef int64_t start_delivered = router._delivered
    cdef int64_t start_sent = router._sent
    cdef int64_t start_failed = router._dead_lettered + router._rejected
    cdef int64_t t0, t1
    cdef cm_msg m
    cdef LoadResult result = LoadResult.__new__(LoadResult)
    router._running = 1
    router._discard_replies = 1
    try:
        t0 = cm_now_ns()
        while True:
            # top the window up: a request is outstanding until it completes
            # or fails (dead-lettered or rejected, at any hop)
            now = cm_now_ns()
            while sent < n_total and sent - completed - failed < w:
                m.id = router._new_id()
                m.conversation_id = 0
                m.reply_with = 0
                m.in_reply_to = 0
                m.origin_ns = now
                m.content = buf_ref(buf)
                m.sender = CLIENT
                m.receiver = tv[sent % n_targets]
                m.performative = PERF_REQUEST
                m.hops = 0
                router._submit(&m, now)
                sent += 1
            ran = router._run(router._batch * n_targets)
            if one_way:
                completed = router._delivered - start_delivered
            else:
                completed = router._client_received - start_received
            failed = router._dead_lettered + router._rejected - start_failed
            if sent == n_total and (completed + failed >= n_total or ran == 0):
                break
        t1 = cm_now_ns()
    finally:
        router._running = 0
        router._discard_replies = 0
        buf_unref(buf)
        free(tv)
    result.requests = sent
    result.completed = completed
    result.failed = failed
    result.messages = router._sent - start_sent
    result.elapsed_ns = t1 - t0
    return result
