# Load-generation loops, compiled: they send, run the router and count
# completions without Python work per message.  They use the Router through
# its load loops' interface (enter_load ... snapshot in _router.pxi) and
# touch none of its members.


cdef class LoadResult:
    """What one load loop measured.  Immutable."""
    cdef readonly int64_t requests
    cdef readonly int64_t completed
    cdef readonly int64_t failed         # dead-lettered or rejected on the way
    cdef readonly int64_t messages       # every message routed: requests, replies, forwards
    cdef readonly int64_t elapsed_ns
    cdef readonly bint interrupted       # Ctrl-C stopped the sending: a partial result
    cdef readonly bint deadline_reached  # the deadline stopped the sending

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
    int32_t shard              # the router's shard whose thread runs this loop
    int64_t total
    int64_t window
    bint one_way
    cm_buf *content
    int64_t sent
    int64_t completed
    int64_t failed
    int64_t deadline_ns        # stop sending at this clock reading (0: none)
    int64_t halt               # set by another thread: stop sending (Ctrl-C)
    int64_t done               # set by the driver when its loop has ended
    bint deadline_reached


cdef inline void _drive_send(Router router, cm_drive *d, int64_t now) noexcept nogil:
    router.send_request(d.shard, d.targets[d.sent % d.n_targets], d.content, now, now)
    d.sent += 1


cdef inline int64_t _drive_completions(Router router, cm_drive *d) noexcept nogil:
    return router.delivered(d.shard) if d.one_way else router.replies_received(d.shard)


cdef inline void _drive_count(Router router, cm_drive *d, int64_t start_completed,
                              int64_t start_failed) noexcept nogil:
    # a request is outstanding until it completes, or fails at any hop (on
    # any thread: dead letters count against the shard that began them)
    d.completed = _drive_completions(router, d) - start_completed
    d.failed = router.failed_from(d.shard) - start_failed


cdef inline void _drive_stop_sending(cm_drive *d) noexcept nogil:
    # what is in flight still completes; nothing more is sent
    d.total = d.sent


cdef int _drive(Router router, cm_drive *d) except -1:
    """The calling thread's closed loop (its agents may be Python agents).
    Returns 1 when Ctrl-C stopped it early (what was in flight completed)."""
    cdef int64_t start_completed = _drive_completions(router, d)
    cdef int64_t start_failed = router.failed_from(d.shard), now, ran
    cdef int64_t next_signal_check = 0
    cdef bint interrupted = 0
    while True:
        now = cm_now_ns()
        if d.deadline_ns and now >= d.deadline_ns and d.sent < d.total:
            d.deadline_reached = 1
            _drive_stop_sending(d)
        if now >= next_signal_check:          # Ctrl-C, every 10 ms at most
            next_signal_check = now + 10_000_000
            try:
                PyErr_CheckSignals()
            except KeyboardInterrupt:
                interrupted = 1
                _drive_stop_sending(d)
        while d.sent < d.total and d.sent - d.completed - d.failed < d.window:
            _drive_send(router, d, now)
        ran = router.run_shard(d.shard, router.turn_size(d.n_targets))
        _drive_count(router, d, start_completed, start_failed)
        if d.sent == d.total and (d.completed + d.failed >= d.total or ran == 0):
            return interrupted


cdef void _drive_native(Router router, cm_drive *d) noexcept nogil:
    """A worker shard's closed loop over its own native agents, on a thread
    of its own."""
    cdef int64_t start_completed = _drive_completions(router, d)
    cdef int64_t start_failed = router.failed_from(d.shard), now, ran
    cdef int idle = 0
    while True:
        now = cm_now_ns()
        if d.sent < d.total and (cm_atomic_load_64(&d.halt)
                                 or (d.deadline_ns and now >= d.deadline_ns)):
            d.deadline_reached = not cm_atomic_load_64(&d.halt)
            _drive_stop_sending(d)
        while d.sent < d.total and d.sent - d.completed - d.failed < d.window:
            _drive_send(router, d, now)
        ran = router.run_shard_nogil(d.shard, router.turn_size(d.n_targets))
        _drive_count(router, d, start_completed, start_failed)
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


def _drive_worker(Router router, list drives, int slot):
    cdef cm_drive *d = <cm_drive *><uintptr_t>drives[slot]
    with nogil:
        _drive_native(router, d)
        cm_atomic_store_64(&d.done, 1)


cdef void _wait_drives(cm_drive *drives, Py_ssize_t n) noexcept nogil:
    """Wait until every started driver has ended its loop.  Thread.join()
    is not enough: a KeyboardInterrupt landing inside it can leave the
    thread marked finished while it still runs (CPython's join is not
    reliable after an interrupt), and the drives would be read, then freed,
    under a running driver."""
    cdef Py_ssize_t k
    for k in range(n):
        while not cm_atomic_load_64(&drives[k].done):
            cm_sleep_ns(100_000)


def closed_loop(Router router not None, targets, total, *, window=1000, content=b"",
                one_way=False, deadline=None):
    """Keep ``window`` requests in flight from the client to ``targets``
    (agent ids, round robin) until all ``total`` have ended: completed
    (replied to the client, or, with ``one_way``, handled by their
    receiver) or failed (dead-lettered or rejected on the way).  Every
    message's latency is recorded in the router's histograms.

    With worker threads, each worker runs its own share of the loop over
    the targets it owns (total and window are split in proportion), as
    wrk's threads each drive their own connections.

    ``deadline`` (seconds) or Ctrl-C stop the sending early; what is in
    flight completes and the partial result comes back (``deadline_reached``,
    ``interrupted``).  Returns a LoadResult."""
    cdef int64_t n_total = _index(total), w = _index(window), deadline_ns = 0
    if n_total < 1:
        raise ValueError(f"closed_loop: total must be >= 1, got {n_total}")
    if deadline is not None:
        if not (float(deadline) > 0 and math.isfinite(float(deadline))):
            raise ValueError(f"closed_loop: deadline must be > 0 seconds, got {deadline!r}")
        deadline_ns = <int64_t>(float(deadline) * 1e9)
    if w < 1:
        raise ValueError(f"closed_loop: window must be >= 1, got {w}")
    ids = router.load_targets(targets, "closed_loop")
    cdef bint threaded = router.workers > 0
    for aid in ids:
        if threaded and router.shard_of(aid) == 0:
            raise ValueError(f"closed_loop: target {aid} is a Python agent; with workers, a closed "
                             "loop drives native agents (use a router with workers=0)")
    cdef const unsigned char[::1] view = content
    router.check_content(view.shape[0], "closed_loop")
    # the targets of each shard
    by_shard = {}
    for aid in ids:
        by_shard.setdefault(router.shard_of(aid), []).append(aid)
    shards = sorted(by_shard)
    cdef Py_ssize_t n = len(shards), k, j
    cdef cm_drive *drives = <cm_drive *>calloc(n, sizeof(cm_drive))
    cdef cm_buf *buf = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
    if drives == NULL or buf == NULL:
        free(drives)
        buf_unref(buf)
        raise MemoryError()
    cdef int64_t assigned = 0, wassigned = 0, start_sent, t0, t1
    cdef LoadResult result = LoadResult.__new__(LoadResult)
    try:
        for k in range(n):
            members = by_shard[shards[k]]
            drives[k].shard = shards[k]
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
            drives[k].deadline_ns = 0
            # a copy each: one buffer shared by threads would make its
            # reference count a cache line they fight over
            drives[k].content = buf_new(buf.data, buf.length) if n > 1 else buf_ref(buf)
            if drives[k].content == NULL:
                raise MemoryError()
        start_sent = router.sent_all()
        # the workers of shards without targets run their agents (forwards
        # may reach them); the shards with targets are driven below
        router.enter_load("closed_loop", True, None, False, set(shards))
        try:
            t0 = cm_now_ns()
            if deadline_ns:
                for k in range(n):
                    drives[k].deadline_ns = t0 + deadline_ns
            if not threaded:
                result.interrupted = _drive(router, &drives[0])
                t1 = cm_now_ns()
            else:
                t1 = _closed_loop_threaded(router, drives, n, result)
        finally:
            router.leave_load()
        for k in range(n):
            result.requests += drives[k].sent
            result.completed += drives[k].completed
            result.failed += drives[k].failed
            result.deadline_reached |= drives[k].deadline_reached
        result.messages = router.sent_all() - start_sent
        result.elapsed_ns = t1 - t0
        return result
    finally:
        for k in range(n):
            free(drives[k].targets)
            buf_unref(drives[k].content)
        free(drives)
        buf_unref(buf)


cdef int64_t _closed_loop_threaded(Router router, cm_drive *drives, Py_ssize_t n,
                                   LoadResult result) except -1:
    """Each shard with targets drives them on a thread of its own.  Returns
    when every drive has ended."""
    import threading
    cdef Py_ssize_t k
    addresses = [<uintptr_t>&drives[k] for k in range(n)]
    drivers = [threading.Thread(target=_drive_worker, args=(router, addresses, k), daemon=True,
                                name=f"caxton_meter-driver-{drives[k].shard}") for k in range(n)]
    cdef Py_ssize_t started = 0
    try:
        for k in range(n):
            try:
                drivers[k].start()
            except KeyboardInterrupt:
                started = k + 1      # launched: only the wait for it to start was cut
                raise
            started = k + 1
        try:
            for t in drivers:
                t.join()
        except KeyboardInterrupt:
            # the drivers stop sending; what is in flight completes
            result.interrupted = 1
            for k in range(n):
                cm_atomic_store_64(&drives[k].halt, 1)
        with nogil:
            _wait_drives(drives, n)
        return cm_now_ns()
    finally:
        # on any way out, no driver may still run over the drives
        for k in range(started, n):
            cm_atomic_store_64(&drives[k].done, 1)        # never started
        for k in range(n):
            cm_atomic_store_64(&drives[k].halt, 1)
        with nogil:
            _wait_drives(drives, n)


# --- the open loop: arrivals paced by a schedule, latency from intended times -------------
#
# k6's constant-arrival-rate and ramping-arrival-rate: a list of stages
# {target rate, duration}, the rate moving linearly from the previous target
# to each stage's target (a stage of duration 0 jumps).  Arrival n (0-based)
# is due when the expected number of arrivals since the start reaches n.
# Latency counts from that intended time, the way wrk2 avoids coordinated
# omission; the histogram from the real send is kept beside it.  A request
# due while max_in_flight are outstanding is dropped and counted (k6's
# dropped_iterations), never silently skipped.

cdef struct cm_stage:
    double r0                  # arrivals per second at the stage's start ...
    double r1                  # ... and at its end
    int64_t d_ns


cdef struct cm_schedule:
    cm_stage *stages
    int32_t n
    int32_t k                  # the current stage
    double c_prev              # arrivals expected before stage k
    int64_t stage_start_ns     # stage k's start, from the run's start
    # A stripe: of every ``period`` arrivals of the schedule, this loop takes
    # the ``per_period`` at offsets ``pos`` (ascending); ``before[j]`` is how
    # many of them lie among a period's first j.  Loops given complementary
    # stripes of one schedule (one per worker) send, together, exactly its
    # arrivals at exactly their times.  period 0: every arrival.
    int32_t period
    int32_t per_period
    int32_t *pos
    int32_t *before


@cython.cdivision(True)
cdef inline int64_t _global_index(cm_schedule *s, int64_t n) noexcept nogil:
    """The schedule's index of this loop's arrival n (n itself unstriped)."""
    if s.period == 0:
        return n
    return (n // s.per_period) * s.period + s.pos[n % s.per_period]


@cython.cdivision(True)
cdef inline int64_t _own_before(cm_schedule *s, int64_t g) noexcept nogil:
    """How many of this loop's arrivals have a schedule index below g."""
    if s.period == 0:
        return g
    return (g // s.period) * s.per_period + s.before[g % s.period]


@cython.cdivision(True)
cdef bint schedule_time(cm_schedule *s, int64_t own, int64_t *t_out) noexcept nogil:
    """The time (ns from the start) this loop's arrival ``own`` is due (the
    schedule's arrival of that index, or of its stripe's); 0 past the last
    stage.  own must not decrease from call to call."""
    cdef cm_stage *st
    cdef double d, expected, need, a, b, t, disc
    cdef int64_t n = _global_index(s, own)
    while s.k < s.n:
        st = &s.stages[s.k]
        d = st.d_ns / 1e9
        expected = (st.r0 + st.r1) / 2.0 * d
        need = <double>n - s.c_prev
        if d > 0 and need < expected:
            a = (st.r1 - st.r0) / (2.0 * d)
            b = st.r0
            if need <= 0:
                t = 0.0
            elif fabs(a) * need < 1e-9 * b:         # constant rate (or as good as)
                t = need / b
            else:                                   # a t^2 + b t = need, the stable root
                disc = b * b + 4.0 * a * need
                t = 2.0 * need / (b + sqrt(disc if disc > 0 else 0.0))
            t_out[0] = s.stage_start_ns + <int64_t>(t * 1e9)
            return 1
        s.c_prev += expected
        s.stage_start_ns += st.d_ns
        s.k += 1
    return 0


# One arrival per nanosecond: the schedule's clock cannot time more.
_MAX_RATE = 1e9
# Arrivals a loop takes in one pass before it runs the router and checks
# the deadline and Ctrl-C again.
cdef enum:
    _SEND_BATCH = 4096


@cython.cdivision(True)
cdef double expected_by(cm_schedule *s, int64_t t_ns) noexcept nogil:
    """Arrivals expected from the start to ``t_ns`` (ns from the start; the
    schedule's end at most): arrival n is due when this reaches n.  Reads
    the stages without moving the schedule's cursor."""
    cdef double total = 0.0, d, t, a
    cdef int64_t start = 0
    cdef int32_t k
    for k in range(s.n):
        d = s.stages[k].d_ns / 1e9
        if t_ns >= start + s.stages[k].d_ns:
            total += (s.stages[k].r0 + s.stages[k].r1) / 2.0 * d
        else:
            t = (t_ns - start) / 1e9
            if t > 0 and d > 0:
                a = (s.stages[k].r1 - s.stages[k].r0) / (2.0 * d)
                total += s.stages[k].r0 * t + a * t * t
            break
        start += s.stages[k].d_ns
    return total


cdef int64_t due_by(cm_schedule *s, int64_t n, int64_t t_ns) noexcept nogil:
    """This loop's arrivals from n on that are due by ``t_ns``, counted at
    once (give or take the last one, which the loops then take one by
    one): dropping a backlog or counting what a stop left unsent costs a
    few stage reads, not one step per arrival."""
    cdef double c = expected_by(s, t_ns)
    cdef int64_t upto = _own_before(s, <int64_t>floor(c))
    return upto - n if upto > n else 0


cdef list _parse_stages(stages, start_rate, str what):
    """Stages [(target rate per second, seconds), ...] checked, as
    [(start rate, end rate, ns)] with each stage starting at the previous
    target."""
    plan = []
    for index, stage in enumerate(stages):
        try:
            rate, seconds = stage
            rate, seconds = float(rate), float(seconds)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: stage {index} must be (rate per second, duration in seconds), "
                             f"got {stage!r}") from None
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"{what}: stage {index}'s rate must be >= 0, got {rate!r}")
        if rate > _MAX_RATE:
            raise ValueError(f"{what}: stage {index}'s rate {rate:g}/s cannot be scheduled: "
                             f"arrivals are timed in nanoseconds, at most {_MAX_RATE:g}/s")
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"{what}: stage {index}'s duration must be >= 0, got {seconds!r}")
        plan.append((rate, seconds))
    if not plan or sum(d for _, d in plan) <= 0:
        raise ValueError(f"{what}: the stages last no time; give at least one duration > 0")
    previous = plan[0][0] if start_rate is None else float(start_rate)
    if not (previous >= 0 and math.isfinite(previous)) or previous > _MAX_RATE:
        raise ValueError(f"{what}: start_rate must be >= 0 and at most {_MAX_RATE:g}/s, "
                         f"got {previous!r}")
    out = []
    for rate, seconds in plan:
        out.append((previous, rate, <int64_t>(seconds * 1e9)))
        previous = rate
    return out


# The longest stripe period a loop takes (a period's offsets are kept in two
# tables of this many int32).
_MAX_STRIPE = 1 << 20


cdef bytes _parse_stripe(stripe, str what):
    """A stripe checked: bytes-like, 1 to _MAX_STRIPE long, each byte 0 or 1
    (1: this loop takes that arrival of every period), at least one 1.
    None stays None (every arrival)."""
    if stripe is None:
        return None
    if isinstance(stripe, str):
        raise TypeError(f"{what}: stripe must be bytes-like (0 or 1 per arrival of a period), "
                        f"got str")
    try:
        data = bytes(memoryview(stripe))
    except TypeError:
        raise TypeError(f"{what}: stripe must be bytes-like (0 or 1 per arrival of a period), "
                        f"not {type(stripe).__name__}") from None
    if not 1 <= len(data) <= _MAX_STRIPE:
        raise ValueError(f"{what}: stripe's period must be 1 to {_MAX_STRIPE} arrivals, "
                         f"got {len(data)}")
    if data.strip(b"\x00\x01"):
        raise ValueError(f"{what}: stripe holds a byte other than 0 or 1")
    if b"\x01" not in data:
        raise ValueError(f"{what}: stripe takes no arrival (every byte is 0)")
    return data


cdef void _free_schedule(cm_schedule *sch) noexcept nogil:
    free(sch.stages)
    free(sch.pos)
    free(sch.before)
    sch.stages = NULL
    sch.pos = NULL
    sch.before = NULL


cdef int64_t _fill_schedule(cm_schedule *sch, list plan, bytes stripe=None) except -1:
    """Lay plan (and the stripe, if any) out in sch, allocated: free it with
    _free_schedule; returns the schedule's length in ns."""
    cdef Py_ssize_t k
    cdef int64_t total = 0
    cdef int32_t j, c = 0
    memset(sch, 0, sizeof(cm_schedule))
    sch.n = len(plan)
    sch.stages = <cm_stage *>calloc(sch.n, sizeof(cm_stage))
    if sch.stages == NULL:
        raise MemoryError()
    for k in range(sch.n):
        sch.stages[k].r0, sch.stages[k].r1, sch.stages[k].d_ns = plan[k]
        total += sch.stages[k].d_ns
    if stripe is not None and stripe.count(b"\x01") < len(stripe):
        sch.period = <int32_t>len(stripe)
        sch.per_period = <int32_t>stripe.count(b"\x01")
        sch.pos = <int32_t *>malloc(sch.per_period * sizeof(int32_t))
        sch.before = <int32_t *>malloc((sch.period + 1) * sizeof(int32_t))
        if sch.pos == NULL or sch.before == NULL:
            _free_schedule(sch)
            raise MemoryError()
        for j in range(sch.period):
            sch.before[j] = c
            if stripe[j]:
                sch.pos[c] = j
                c += 1
        sch.before[sch.period] = c
    return total



cdef class Schedule:
    """The arrival schedule of an open loop, for loops outside the core (an
    asyncio driver): ``due_ns(n)`` is when arrival n (0, 1, 2, ...) is due,
    in ns from the start, or None past the end.  Stages as open_loop's;
    ``stripe`` as open_loop's: arrival n is then the stripe's n-th."""
    cdef cm_schedule _s
    cdef readonly int64_t duration_ns
    cdef int64_t _last

    def __cinit__(self, stages, *, start_rate=None, stripe=None):
        self.duration_ns = _fill_schedule(&self._s, _parse_stages(stages, start_rate, "Schedule"),
                                          _parse_stripe(stripe, "Schedule"))
        self._last = -1

    def __dealloc__(self):
        _free_schedule(&self._s)

    def due_ns(self, n):
        cdef int64_t k = _index(n), t = 0
        if k < self._last:
            raise ValueError(f"due_ns: arrivals are asked in order; {k} after {self._last}")
        self._last = k
        if schedule_time(&self._s, k, &t) and t < self.duration_ns:
            return t
        return None

    def due_by(self, n, t_ns):
        """How many arrivals from n on are due by ``t_ns`` (ns from the
        start, within the schedule), counted at once, give or take the
        last (a loop takes it in its turn): a backlog is dropped, or what
        a stop left unsent is counted, without a step per arrival."""
        cdef int64_t k = _index(n), t = _index(t_ns)
        return due_by(&self._s, k, min(t, self.duration_ns - 1))


def latency_histogram():
    """An empty histogram of the load loops' range and precision: 1 ns to
    one hour, 3 significant figures (what every latency the loops report
    is recorded in, so that histograms of any driver merge exactly)."""
    return Histogram(1, _LATENCY_HIGHEST, 3)


cdef object _result_count(value, str owner, str name):
    """A count (or a length in ns) given to a result's constructor: an int
    >= 0, never a bool or a float."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an int >= 0, got bool {value!r}")
    try:
        value = _index(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be an int >= 0, "
                        f"got {type(value).__name__} {value!r}") from None
    if value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")
    return value


cdef object _result_time(value, str owner, str name):
    """A clock reading (now_ns()) given to a result's constructor."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an int (ns, as now_ns()), got bool {value!r}")
    try:
        return _index(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be an int (ns, as now_ns()), "
                        f"got {type(value).__name__} {value!r}") from None


cdef Histogram _result_histogram(value, str owner, str name):
    if not isinstance(value, Histogram):
        raise TypeError(f"{owner}: {name} must be a Histogram, got {type(value).__name__}")
    return <Histogram>value


cdef bint _result_flag(value, str owner, str name) except -1:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def record_clamped(Histogram h not None, value, count=1):
    """Record ``value`` ``count`` times the way every load driver records a
    latency: a value above the histogram's range is counted in its
    ``overflow_count`` (a call longer than an hour is counted, not lost and
    not a crash), a negative one as 0 (a difference of two estimates can be
    a little below zero; a time cannot).  Safe beside the atomic writers."""
    cdef int64_t n = 1 if count is 1 else _int64(count, "record_clamped: count")
    cdef int64_t v
    if n < 1:
        raise ValueError(f"record_clamped: count must be >= 1, got {n}")
    try:
        v = _int64(value, "record_clamped: value")
    except ValueError:                     # beyond 64 bits: clamped the same way
        v = INT64_MAX if value > 0 else 0
    hdr_record_or_overflow(&h._h, v if v > 0 else 0, n)


def _load_interval_from_state(start_ns, end_ns, sent, completed, failed, dropped, bytes counts,
                              lowest, highest, significant_figures, overflow, start_time,
                              end_time):
    """Unpickles a LoadInterval (its counts stay packed)."""
    cdef LoadInterval iv = LoadInterval.__new__(LoadInterval)
    iv.start_ns, iv.end_ns, iv.sent, iv.completed = start_ns, end_ns, sent, completed
    iv.failed, iv.dropped, iv._counts = failed, dropped, counts
    iv._lowest, iv._highest, iv._significant_figures = lowest, highest, significant_figures
    iv._overflow, iv._start_time, iv._end_time = overflow, start_time, end_time
    return iv


cdef class LoadInterval:
    """One interval of a load run.  Immutable.

    LoadInterval(*, start_ns, end_ns, sent, completed, failed, dropped, latency)

    ``start_ns`` and ``end_ns`` are readings of now_ns(); in the interval
    ``sent`` arrivals were sent (a call started, a request submitted) and
    ``dropped`` were dropped, ``completed`` calls ended well and ``failed``
    ended in an error, whenever they were sent; ``latency`` holds the
    completed calls' latencies from their intended starts.  The load loops
    make these; a driver outside the core (asyncio, a worker process) makes
    them with this constructor, which checks each field.

    The interval's latency histogram is kept as its counts in the V2
    payload's zig-zag LEB128 form (no compression): a few bytes per
    occupied bucket instead of the full counts array (~270 KB at 3
    significant figures), so that a day of 1 s intervals fits in memory.
    Packing costs one pass over the occupied range at the interval's end;
    ``latency`` rebuilds the histogram on each access."""
    cdef readonly int64_t start_ns
    cdef readonly int64_t end_ns
    cdef readonly int64_t sent
    cdef readonly int64_t completed
    cdef readonly int64_t failed
    cdef readonly int64_t dropped
    cdef bytes _counts
    cdef int64_t _lowest, _highest, _overflow
    cdef int32_t _significant_figures
    cdef double _start_time, _end_time

    def __init__(self, *, start_ns, end_ns, sent, completed, failed, dropped, latency):
        cdef str owner = "LoadInterval"
        start, end = _result_time(start_ns, owner, "start_ns"), _result_time(end_ns, owner, "end_ns")
        if end < start:
            raise ValueError(f"LoadInterval: end_ns ({end}) is before start_ns ({start})")
        self.start_ns, self.end_ns = start, end
        self.sent = _result_count(sent, owner, "sent")
        self.completed = _result_count(completed, owner, "completed")
        self.failed = _result_count(failed, owner, "failed")
        self.dropped = _result_count(dropped, owner, "dropped")
        self._pack(_result_histogram(latency, owner, "latency"))

    cdef void _pack(self, Histogram h) except *:
        cdef int64_t limit = _max_index(&h._h) + 1
        cdef Py_ssize_t size = _encoded_counts_size(&h._h, limit)
        cdef bytes buf = PyBytes_FromStringAndSize(NULL, size)
        cdef Py_ssize_t n = _encode_counts(&h._h, limit, <unsigned char *>PyBytes_AS_STRING(buf))
        if n != size:
            raise AssertionError(f"LoadInterval: packed {n} bytes of counts, sized {size}")
        self._counts = buf
        self._lowest = h._h.lowest_discernible_value
        self._highest = h._h.highest_trackable_value
        self._significant_figures = h._h.significant_figures
        self._overflow = h._h.overflow_count
        self._start_time, self._end_time = h.start_time, h.end_time

    @property
    def latency(self):
        """The interval's latency histogram (a new Histogram each time)."""
        cdef Histogram h = Histogram(self._lowest, self._highest, self._significant_figures)
        cdef int64_t bad = 0
        cdef int rc = _decode_counts(&h._h, <const unsigned char *>PyBytes_AS_STRING(self._counts),
                                     len(self._counts), &bad)
        if rc != 0:
            raise AssertionError(f"LoadInterval: packed counts unreadable at index {bad} ({rc})")
        h._h.overflow_count = self._overflow
        h.start_time, h.end_time = self._start_time, self._end_time
        return h

    @property
    def packed_size(self):
        """Bytes the interval's latency counts occupy."""
        return len(self._counts)

    def __reduce__(self):
        return (_load_interval_from_state,
                (self.start_ns, self.end_ns, self.sent, self.completed, self.failed, self.dropped,
                 self._counts, self._lowest, self._highest, self._significant_figures,
                 self._overflow, self._start_time, self._end_time))

    def __repr__(self):
        return (f"LoadInterval(start_ns={self.start_ns}, end_ns={self.end_ns}, sent={self.sent}, "
                f"completed={self.completed}, failed={self.failed}, dropped={self.dropped}, "
                f"p99={self.latency.value_at_percentile(99)})")


cdef Histogram _merged_histogram(list histograms):
    """The histograms added bucket for bucket, in the first one's layout."""
    cdef Histogram out = (<Histogram>histograms[0]).copy()
    for h in histograms[1:]:
        out.add(h)
    return out


def _open_loop_result_from_state(dict fields):
    """Unpickles an OpenLoopResult (through its checked constructor)."""
    return OpenLoopResult(**fields)


_RESULT_COUNTS = ("requests", "completed", "failed", "dropped", "planned")


cdef class OpenLoopResult:
    """What an open-loop run measured: the one result of every load driver
    (the compiled loops, the asyncio loop, the Target drivers, several
    processes).  Immutable.

    OpenLoopResult(*, requests, completed, failed, dropped, planned,
                   elapsed_ns, duration_ns, latency, latency_uncorrected,
                   send_jitter, intervals=(), errors=None, interrupted=False,
                   deadline_reached=False, parts=(), source="", last_send_ns=0)

    Every arrival the schedule held (``planned``) was sent (``requests``)
    or dropped (``dropped``): planned == requests + dropped.  A request
    sent ends ``completed`` or ``failed``, or is still in flight when an
    interruption ends the run.  ``errors`` counts failures by exception
    type name (drivers of Python calls; at most ``failed`` in all).
    ``latency`` is measured from each request's intended send time,
    ``latency_uncorrected`` from its real send, ``send_jitter`` is real
    send - intended send.  ``duration_ns`` is the schedule's length, or the
    part of it run before a stop; ``last_send_ns`` is when the last request
    went out, from the start (0: not known).  A loop that keeps its
    schedule sends the last request before the schedule ends; one that
    falls behind sends it later (``behind_ns``), and ``achieved_rate``,
    over the longer of the two, says what it really sent per second.

    A result merged from runs side by side (``merge``: worker processes,
    machines) keeps them in ``parts``, each labelled by its ``source``
    ("process 1 (pid 1234)"); a single run has no parts.  The constructor
    checks each field and the counts' rules, raising TypeError or
    ValueError naming the field and the value."""
    cdef readonly int64_t requests         # sent
    cdef readonly int64_t completed
    cdef readonly int64_t failed
    cdef readonly int64_t dropped          # due while no request could be sent (the limit was reached)
    cdef readonly int64_t planned          # arrivals the schedule held: requests + dropped
    cdef readonly int64_t elapsed_ns
    cdef readonly int64_t duration_ns      # the schedule's length, or the part run before a stop
    cdef readonly int64_t last_send_ns     # the last send, from the start (0: not known)
    cdef readonly Histogram latency        # from intended send times
    cdef readonly Histogram latency_uncorrected
    cdef readonly Histogram send_jitter    # real send - intended send
    cdef readonly tuple intervals
    cdef readonly dict errors              # exception type name -> count (callable targets)
    cdef readonly bint interrupted         # stopped early (Ctrl-C): the result is partial
    cdef readonly bint deadline_reached    # the deadline stopped the schedule: partial too
    cdef readonly tuple parts              # the merged runs' own results; () for one run
    cdef readonly str source               # where the run was made ("" for this process)

    def __cinit__(self, *args, **kwargs):
        # the loops make results with __new__ and fill the fields they measure
        self.intervals = ()
        self.errors = {}
        self.parts = ()
        self.source = ""

    def __init__(self, *, requests, completed, failed, dropped, planned, elapsed_ns,
                 duration_ns, latency, latency_uncorrected, send_jitter, intervals=(),
                 errors=None, interrupted=False, deadline_reached=False, parts=(), source="",
                 last_send_ns=0):
        cdef str owner = "OpenLoopResult"
        self.requests = _result_count(requests, owner, "requests")
        self.completed = _result_count(completed, owner, "completed")
        self.failed = _result_count(failed, owner, "failed")
        self.dropped = _result_count(dropped, owner, "dropped")
        self.planned = _result_count(planned, owner, "planned")
        if self.planned != self.requests + self.dropped:
            raise ValueError(f"OpenLoopResult: planned ({self.planned}) must be requests + dropped "
                             f"({self.requests} + {self.dropped}): every arrival is sent or dropped")
        self.elapsed_ns = _result_count(elapsed_ns, owner, "elapsed_ns")
        self.duration_ns = _result_count(duration_ns, owner, "duration_ns")
        self.last_send_ns = _result_count(last_send_ns, owner, "last_send_ns")
        self.latency = _result_histogram(latency, owner, "latency")
        self.latency_uncorrected = _result_histogram(latency_uncorrected, owner,
                                                     "latency_uncorrected")
        self.send_jitter = _result_histogram(send_jitter, owner, "send_jitter")
        if isinstance(intervals, (str, bytes)):
            raise TypeError(f"OpenLoopResult: intervals must be LoadIntervals, "
                            f"got {type(intervals).__name__}")
        self.intervals = tuple(intervals)
        for k, iv in enumerate(self.intervals):
            if not isinstance(iv, LoadInterval):
                raise TypeError(f"OpenLoopResult: intervals[{k}] must be a LoadInterval, "
                                f"got {type(iv).__name__}")
        self.errors = self._checked_errors(errors)
        self.interrupted = _result_flag(interrupted, owner, "interrupted")
        self.deadline_reached = _result_flag(deadline_reached, owner, "deadline_reached")
        if not isinstance(source, str):
            raise TypeError(f"OpenLoopResult: source must be a str, got {type(source).__name__}")
        self.source = source
        self.parts = self._checked_parts(parts)

    cdef dict _checked_errors(self, errors):
        if errors is None:
            return {}
        if not isinstance(errors, dict):
            raise TypeError(f"OpenLoopResult: errors must be a dict of exception type name -> "
                            f"count, got {type(errors).__name__}")
        out = {}
        for name, count in errors.items():
            if not isinstance(name, str):
                raise TypeError(f"OpenLoopResult: errors' keys must be exception type names "
                                f"(str), got {name!r}")
            out[name] = _result_count(count, "OpenLoopResult", f"errors[{name!r}]")
        if sum(out.values()) > self.failed:
            raise ValueError(f"OpenLoopResult: errors count {sum(out.values())} failures, more "
                             f"than failed ({self.failed})")
        return out

    cdef tuple _checked_parts(self, parts):
        out = tuple(parts)
        for k, p in enumerate(out):
            if not isinstance(p, OpenLoopResult):
                raise TypeError(f"OpenLoopResult: parts[{k}] must be an OpenLoopResult, "
                                f"got {type(p).__name__}")
        if out:
            for name in _RESULT_COUNTS:
                total = sum(getattr(p, name) for p in out)
                if getattr(self, name) != total:
                    raise ValueError(f"OpenLoopResult: {name} ({getattr(self, name)}) must be "
                                     f"the parts' sum ({total})")
        return out

    @staticmethod
    def merge(parts, *, source="", elapsed_ns=None):
        """One result from runs made side by side, each a share of one
        schedule (k6's execution segments: worker processes, machines).

        Counts and errors are summed; the histograms are added bucket for
        bucket, overflow counts too; the k-th intervals of the parts are
        added into the k-th interval (the parts start together, so theirs
        cover the same stretch of the schedule), from the earliest start to
        the latest end.  ``duration_ns`` is the longest part's, so the rates
        are the parts' summed; ``elapsed_ns`` defaults to the longest
        part's.  ``interrupted`` and ``deadline_reached`` hold if they hold
        for any part.  The parts are kept in ``parts``."""
        cdef list ps = list(parts)
        if not ps:
            raise ValueError("OpenLoopResult.merge: no results to merge")
        for k, p in enumerate(ps):
            if not isinstance(p, OpenLoopResult):
                raise TypeError(f"OpenLoopResult.merge: parts[{k}] must be an OpenLoopResult, "
                                f"got {type(p).__name__}")
        errors = {}
        for p in ps:
            for name, count in (<OpenLoopResult>p).errors.items():
                errors[name] = errors.get(name, 0) + count
        intervals = []
        for k in range(max(len((<OpenLoopResult>p).intervals) for p in ps)):
            same = [(<OpenLoopResult>p).intervals[k] for p in ps
                    if k < len((<OpenLoopResult>p).intervals)]
            intervals.append(LoadInterval(
                start_ns=min(iv.start_ns for iv in same), end_ns=max(iv.end_ns for iv in same),
                sent=sum(iv.sent for iv in same), completed=sum(iv.completed for iv in same),
                failed=sum(iv.failed for iv in same), dropped=sum(iv.dropped for iv in same),
                latency=_merged_histogram([iv.latency for iv in same])))
        return OpenLoopResult(
            requests=sum(p.requests for p in ps), completed=sum(p.completed for p in ps),
            failed=sum(p.failed for p in ps), dropped=sum(p.dropped for p in ps),
            planned=sum(p.planned for p in ps),
            elapsed_ns=max(p.elapsed_ns for p in ps) if elapsed_ns is None else elapsed_ns,
            duration_ns=max(p.duration_ns for p in ps),
            last_send_ns=max(p.last_send_ns for p in ps),
            latency=_merged_histogram([p.latency for p in ps]),
            latency_uncorrected=_merged_histogram([p.latency_uncorrected for p in ps]),
            send_jitter=_merged_histogram([p.send_jitter for p in ps]),
            intervals=intervals, errors=errors,
            interrupted=any(p.interrupted for p in ps),
            deadline_reached=any(p.deadline_reached for p in ps), parts=ps, source=source)

    @property
    def achieved_rate(self):
        """Requests sent per second of the time it took to send them: the
        schedule (``duration_ns``), or up to the last send when that came
        later (a loop behind its schedule catching up)."""
        span = max(self.duration_ns, self.last_send_ns)
        return self.requests * 1e9 / span if span else 0.0

    @property
    def behind_ns(self):
        """How long after the schedule's end the last request was sent (0:
        on time)."""
        return max(0, self.last_send_ns - self.duration_ns)

    def schedule_note(self):
        """None when the loop kept its schedule; otherwise one sentence on
        how it fell behind, for reports and warnings: the rate achieved
        beside the rate asked, the requests dropped, how late the last one
        went out and the send lateness (p50, p99, max)."""
        if self.kept_schedule:
            return None
        parts = [f"the load loop fell behind its schedule: {self.achieved_rate:,.0f}/s sent of "
                 f"{self.intended_rate:,.0f}/s asked"]
        if self.dropped:
            parts.append(f"{self.dropped:,} of {self.planned:,} arrivals dropped")
        if self.behind_ns:
            parts.append(f"the last request sent {self.behind_ns / 1e6:,.1f} ms after the "
                         f"schedule's end")
        if self.send_jitter.total_count:
            parts.append("send lateness p50 " + ", p99 ".join(
                f"{self.send_jitter.value_at_percentile(p) / 1e6:,.3f} ms" for p in (50, 99))
                + f", max {self.send_jitter.max / 1e6:,.3f} ms")
        return "; ".join(parts)

    @property
    def kept_schedule(self):
        """Nothing dropped and the last send within 1 % of the schedule's
        length (1 ms at least) of its end: the load asked for was offered."""
        return self.dropped == 0 and self.behind_ns <= max(1_000_000, self.duration_ns // 100)

    @property
    def intended_rate(self):
        """Arrivals planned per second of the schedule (``duration_ns``)."""
        return self.planned * 1e9 / self.duration_ns if self.duration_ns else 0.0

    def __reduce__(self):
        return (_open_loop_result_from_state, ({
            "requests": self.requests, "completed": self.completed, "failed": self.failed,
            "dropped": self.dropped, "planned": self.planned, "elapsed_ns": self.elapsed_ns,
            "duration_ns": self.duration_ns, "last_send_ns": self.last_send_ns,
            "latency": self.latency,
            "latency_uncorrected": self.latency_uncorrected, "send_jitter": self.send_jitter,
            "intervals": self.intervals, "errors": self.errors, "interrupted": self.interrupted,
            "deadline_reached": self.deadline_reached, "parts": self.parts,
            "source": self.source},))

    def __repr__(self):
        where = f"source={self.source!r}, " if self.source else ""
        parts = f", parts={len(self.parts)}" if self.parts else ""
        return (f"OpenLoopResult({where}requests={self.requests}, completed={self.completed}, "
                f"failed={self.failed}, dropped={self.dropped}, planned={self.planned}, "
                f"achieved_rate={self.achieved_rate:,.1f}/s{parts})")


cdef Histogram _completion_snapshot(Router router, bint one_way):
    """The client's round trips (recorded on shard 0, where replies reach
    the client), or with one_way the deliveries of every shard (each
    worker records its own).  Read while no worker runs."""
    if one_way:
        return router.snapshot(HIST_DELIVERY, ALL_SHARDS)
    return router.snapshot(HIST_ROUND_TRIP, 0)


cdef Histogram _histogram_difference(Histogram later, Histogram earlier):
    """later - earlier, for cumulative snapshots of one histogram."""
    cdef Histogram h = Histogram(later._h.lowest_discernible_value, later._h.highest_trackable_value,
                                 later._h.significant_figures)
    cdef int64_t i, c, last = _max_index(&later._h)
    for i in range(last + 1):
        c = later._h.counts[i] - (earlier._h.counts[i] if i < earlier._h.counts_len else 0)
        if c > 0:
            hdr_record(&h._h, hdr_value_at_index(&h._h, i), c)
    return h


def open_loop(Router router not None, targets, stages, *, start_rate=None, max_in_flight=1_000_000,
              content=b"", interval=1.0, one_way=False, deadline=None, on_interval=None,
              stripe=None):
    """Send requests from the client to ``targets`` (agent ids, round robin)
    at the arrival rate ``stages`` describe: a sequence of (target rate per
    second, duration in seconds); the rate moves linearly from
    ``start_rate`` (default: the first target) through each target, and a
    stage of duration 0 jumps.  [(1000, 10)] is a constant 1000/s for 10 s.

    Latency is measured from each request's intended send time
    (``latency``) and from its real send (``latency_uncorrected``); the
    send jitter is kept; requests due while ``max_in_flight`` are
    outstanding are dropped and counted.  Every ``interval`` seconds the
    run's sent, completed, failed and dropped counts and latency histogram
    are kept (``intervals``).  With a router of worker threads, the native
    agents run on the workers while this thread paces, sends and runs the
    Python agents and the client's inbox.
    ``deadline`` (seconds) or Ctrl-C end the schedule early; what is in
    flight completes and the partial result comes back (``interrupted``).
    ``on_interval(interval)``, if given, is called with each LoadInterval
    as it closes (live progress); an exception it raises stops the loop
    and propagates.

    ``stripe`` (bytes of 0 and 1, a period of the schedule's arrivals)
    makes this loop take only its share of the schedule: of every
    len(stripe) arrivals, those whose byte is 1, each at its own due time.
    Loops given complementary stripes (one per worker process or machine;
    caxton_meter.stripes makes them) send together exactly the schedule's
    arrivals, at exactly their times."""
    if on_interval is not None and not callable(on_interval):
        raise TypeError(f"open_loop: on_interval must be callable, got {type(on_interval).__name__}")
    ids = router.load_targets(targets, "open_loop")
    plan = _parse_stages(stages, start_rate, "open_loop")
    cdef bytes own = _parse_stripe(stripe, "open_loop")
    cdef int64_t deadline_ns = _deadline_ns(deadline, "open_loop")
    cdef int64_t cap = _index(max_in_flight)
    if cap < 1:
        raise ValueError(f"open_loop: max_in_flight must be >= 1, got {cap}")
    cdef double every = float(interval)
    if not (every > 0 and math.isfinite(every)):
        raise ValueError(f"open_loop: interval must be > 0 seconds, got {every!r}")
    cdef const unsigned char[::1] view = content
    router.check_content(view.shape[0], "open_loop")

    cdef cm_schedule sch
    cdef int64_t duration_ns = _fill_schedule(&sch, plan, own)
    cdef Py_ssize_t n_targets = len(ids), k
    cdef int32_t *tv = <int32_t *>malloc(n_targets * sizeof(int32_t))
    cdef cm_buf *buf = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
    if tv == NULL or buf == NULL:
        _free_schedule(&sch); free(tv); buf_unref(buf)
        raise MemoryError()
    for k in range(n_targets):
        tv[k] = <int32_t>ids[k]

    cdef int64_t n = 0, sent = 0, dropped = 0, completed = 0, failed = 0, planned = 0
    cdef int64_t t0, now, due = 0, rel = 0, ran, gap, interval_ns = <int64_t>(every * 1e9)
    # the client is shard 0's: this thread's
    cdef int64_t next_boundary, start_received = router.replies_received(0)
    cdef int64_t start_delivered = router.delivered_all()
    cdef int64_t start_failed = router.failed_from(0)
    cdef int64_t i_start, i_sent = 0, i_completed = 0, i_failed = 0, i_dropped = 0
    cdef bint more, idle, ended, interrupted = 0
    cdef int64_t next_signal_check = 0
    cdef int sf = router.significant_figures()
    cdef Histogram jitter = Histogram(1, _LATENCY_HIGHEST, sf)
    cdef Histogram before = _completion_snapshot(router, one_way)
    cdef Histogram before_uncorrected = router.snapshot(HIST_ROUND_TRIP_UNCORRECTED, 0)
    cdef Recorder recorder = Recorder(1, _LATENCY_HIGHEST, sf)
    cdef LoadInterval iv
    cdef Histogram finished, spare = None
    cdef int64_t stopped_ns = -1, last_send = -1, batch, drop
    cdef bint reached = 0
    cdef OpenLoopResult result = OpenLoopResult.__new__(OpenLoopResult)
    intervals = []
    cdef bint threaded = router.workers > 0
    try:
        # with workers, native agents run on them; this thread paces, sends,
        # and runs shard 0 (Python agents and the client's inbox)
        router.enter_load("open_loop", True, recorder, one_way)
        try:
            more = schedule_time(&sch, 0, &rel)
            t0 = cm_now_ns()
            i_start = t0
            next_boundary = t0 + interval_ns
            while True:
                now = cm_now_ns()
                if more and now >= next_signal_check:       # Ctrl-C and the deadline, every 10 ms
                    next_signal_check = now + 10_000_000
                    if deadline_ns and now - t0 >= deadline_ns:
                        more = 0
                        reached = 1
                        stopped_ns = now - t0
                    try:
                        PyErr_CheckSignals()
                    except KeyboardInterrupt:
                        interrupted = 1
                        more = 0
                        stopped_ns = now - t0
                batch = 0
                while more and t0 + rel <= now and batch < _SEND_BATCH:
                    batch += 1
                    due = t0 + rel
                    if sent - completed - failed >= cap:
                        # everything due by now is dropped at once: a rate far
                        # beyond the target's must not spin through its arrivals
                        drop = 1 + due_by(&sch, n + 1, min(now - t0, duration_ns - 1))
                        planned += drop
                        dropped += drop
                        n += drop
                    else:
                        planned += 1
                        # latency counts from the intended time, due
                        router.send_request(0, tv[sent % n_targets], buf, due, now)
                        hdr_record_or_overflow(&jitter._h, now - due, 1)
                        sent += 1
                        last_send = now
                        n += 1
                    more = schedule_time(&sch, n, &rel) and rel < duration_ns
                ran = router.run_shard(0, router.turn_size(n_targets))
                # nothing left anywhere (what failed is counted), asked before
                # the counts are read, so that they include the last completions
                idle = not more and ran == 0 and (not threaded or router.quiescent())
                completed = ((router.delivered_all() - start_delivered) if one_way
                             else (router.replies_received(0) - start_received))
                failed = router.failed_from(0) - start_failed
                now = cm_now_ns()
                ended = not more and (completed + failed >= sent or idle)
                if now >= next_boundary or ended:
                    iv = LoadInterval.__new__(LoadInterval)
                    iv.start_ns = i_start
                    iv.end_ns = now
                    iv.sent = sent - i_sent
                    iv.completed = completed - i_completed
                    iv.failed = failed - i_failed
                    iv.dropped = dropped - i_dropped
                    # the core's Recorder swaps the interval out; its counts are
                    # packed and the histogram comes back as the next active one
                    finished = recorder.interval_histogram(spare)
                    iv._pack(finished)
                    spare = finished
                    intervals.append(iv)
                    if on_interval is not None:
                        on_interval(iv)
                    i_start, i_sent, i_completed, i_failed, i_dropped = now, sent, completed, failed, dropped
                    next_boundary += interval_ns
                    while next_boundary <= now:
                        next_boundary += interval_ns
                if ended:
                    break
                if not more and ran == 0:
                    with nogil:
                        cm_sleep_ns(20000)     # replies are on their way from the workers
                if ran == 0 and more:
                    gap = t0 + rel - cm_now_ns()
                    # sleep most of a long gap and spin the rest: a sleep can
                    # wake ~50 us late (the kernel's timer slack)
                    if gap > 250_000:
                        with nogil:
                            cm_sleep_ns(gap - 150_000)
            result.elapsed_ns = cm_now_ns() - t0
            if stopped_ns >= 0:
                # what was due before the stop but never sent: the loop was behind
                drop = due_by(&sch, n, min(stopped_ns, duration_ns - 1))
                planned += drop
                dropped += drop
        finally:
            router.leave_load()
    finally:
        buf_unref(buf)
        free(tv)
        _free_schedule(&sch)
    cdef Histogram after_uncorrected = router.snapshot(HIST_ROUND_TRIP_UNCORRECTED, 0)
    result.requests = sent
    result.completed = completed
    result.failed = failed
    result.dropped = dropped
    result.planned = planned
    result.duration_ns = duration_ns if stopped_ns < 0 else min(duration_ns, stopped_ns)
    result.last_send_ns = last_send - t0 if last_send >= 0 else 0
    result.deadline_reached = reached
    result.latency = _histogram_difference(_completion_snapshot(router, one_way), before)
    result.latency_uncorrected = (result.latency.copy() if one_way else
                                  _histogram_difference(after_uncorrected, before_uncorrected))
    result.send_jitter = jitter
    result.intervals = tuple(intervals)
    result.errors = {}
    result.interrupted = interrupted
    return result


cdef int64_t _deadline_ns(deadline, str what) except -1:
    if deadline is None:
        return 0
    if not (float(deadline) > 0 and math.isfinite(float(deadline))):
        raise ValueError(f"{what}: deadline must be > 0 seconds, got {deadline!r}")
    return <int64_t>(float(deadline) * 1e9)


def open_loop_call(fn, stages, *, args=(), start_rate=None, max_lateness=None, interval=1.0,
                   deadline=None, on_interval=None, stripe=None):
    """Call ``fn(*args)`` at the arrival rate ``stages`` describe (as
    open_loop's), one call at a time, from a loop compiled in the core.

    Each call's latency is measured from its intended start (``latency``)
    and from its real start (``latency_uncorrected``): a call that runs long
    makes the next ones late, and the corrected figures show it.  A call due
    more than ``max_lateness`` seconds ago is dropped and counted instead of
    made (None: never drop).  An exception counts as a failure by its type
    (``errors``), not a crash.  Ctrl-C ends the run early with the result so
    far (``interrupted``), and so does ``deadline`` (seconds).
    ``on_interval`` and ``stripe`` as open_loop's."""
    if on_interval is not None and not callable(on_interval):
        raise TypeError(f"open_loop_call: on_interval must be callable, "
                        f"got {type(on_interval).__name__}")
    if not callable(fn):
        raise TypeError(f"open_loop_call: fn must be callable, got {type(fn).__name__}")
    args = tuple(args)
    plan = _parse_stages(stages, start_rate, "open_loop_call")
    cdef bytes own = _parse_stripe(stripe, "open_loop_call")
    cdef int64_t deadline_ns = _deadline_ns(deadline, "open_loop_call")
    cdef double every = float(interval)
    if not (every > 0 and math.isfinite(every)):
        raise ValueError(f"open_loop_call: interval must be > 0 seconds, got {every!r}")
    cdef int64_t late_ns = -1
    if max_lateness is not None:
        if not (float(max_lateness) >= 0 and math.isfinite(float(max_lateness))):
            raise ValueError(f"open_loop_call: max_lateness must be >= 0 seconds, got {max_lateness!r}")
        late_ns = <int64_t>(float(max_lateness) * 1e9)
    cdef cm_schedule sch
    cdef int64_t duration_ns = _fill_schedule(&sch, plan, own)
    cdef int64_t n = 0, sent = 0, dropped = 0, completed = 0, failed = 0, planned = 0
    cdef int64_t t0, now, due, rel = 0, end, gap, interval_ns = <int64_t>(every * 1e9)
    cdef int64_t next_boundary, i_start, i_sent = 0, i_completed = 0, i_failed = 0, i_dropped = 0
    cdef bint more, interrupted = 0
    cdef Histogram latency = Histogram(1, _LATENCY_HIGHEST, 3)
    cdef Histogram uncorrected = Histogram(1, _LATENCY_HIGHEST, 3)
    cdef Histogram jitter = Histogram(1, _LATENCY_HIGHEST, 3)
    cdef Recorder window = Recorder(1, _LATENCY_HIGHEST, 3)
    cdef LoadInterval iv
    cdef Histogram finished, spare = None
    cdef int64_t stopped_ns = -1, last_send = -1, drop
    cdef bint reached = 0
    cdef OpenLoopResult result = OpenLoopResult.__new__(OpenLoopResult)
    errors = {}
    intervals = []
    try:
        more = schedule_time(&sch, 0, &rel)
        t0 = cm_now_ns()
        i_start = t0
        next_boundary = t0 + interval_ns
        while True:
            now = cm_now_ns()
            if more and deadline_ns and now - t0 >= deadline_ns:
                more = 0
                reached = 1
                stopped_ns = now - t0
            if more and t0 + rel <= now:
                due = t0 + rel
                if late_ns >= 0 and now - due > late_ns:
                    # every arrival already later than max_lateness, at once
                    drop = 1 + due_by(&sch, n + 1, min(now - t0 - late_ns, duration_ns - 1))
                    planned += drop
                    dropped += drop
                    n += drop - 1
                else:
                    planned += 1
                    sent += 1
                    last_send = now
                    hdr_record_or_overflow(&jitter._h, now - due, 1)
                    try:
                        fn(*args)
                    except KeyboardInterrupt:
                        interrupted = 1
                        stopped_ns = now - t0
                        break
                    except Exception as e:
                        failed += 1
                        name = type(e).__name__
                        errors[name] = errors.get(name, 0) + 1
                    else:
                        end = cm_now_ns()
                        completed += 1
                        hdr_record_or_overflow(&latency._h, end - due, 1)
                        hdr_record_or_overflow(&uncorrected._h, end - now, 1)
                        recorder_record(&window._phaser, &window._active, end - due, 1)
                n += 1
                more = schedule_time(&sch, n, &rel) and rel < duration_ns
            now = cm_now_ns()
            if now >= next_boundary or not more:
                iv = LoadInterval.__new__(LoadInterval)
                iv.start_ns, iv.end_ns = i_start, now
                iv.sent, iv.completed = sent - i_sent, completed - i_completed
                iv.failed, iv.dropped = failed - i_failed, dropped - i_dropped
                finished = window.interval_histogram(spare)
                iv._pack(finished)
                spare = finished
                intervals.append(iv)
                if on_interval is not None:
                    on_interval(iv)
                i_start, i_sent, i_completed, i_failed, i_dropped = now, sent, completed, failed, dropped
                while next_boundary <= now:
                    next_boundary += interval_ns
            if not more:
                break
            gap = t0 + rel - cm_now_ns()
            if gap > 250_000:        # sleep most of a long gap and spin the rest
                with nogil:
                    cm_sleep_ns(gap - 150_000)
    except KeyboardInterrupt:       # between calls
        interrupted = 1
        stopped_ns = cm_now_ns() - t0
    finally:
        if stopped_ns >= 0:
            # what was due before the stop but never called: the loop was behind
            drop = due_by(&sch, n, min(stopped_ns, duration_ns - 1))
            planned += drop
            dropped += drop
        _free_schedule(&sch)
    result.elapsed_ns = cm_now_ns() - t0
    result.last_send_ns = last_send - t0 if last_send >= 0 else 0
    result.requests, result.completed, result.failed = sent, completed, failed
    result.dropped, result.planned = dropped, planned
    result.duration_ns = duration_ns if stopped_ns < 0 else min(duration_ns, stopped_ns)
    result.deadline_reached = reached
    result.latency, result.latency_uncorrected, result.send_jitter = latency, uncorrected, jitter
    result.intervals = tuple(intervals)
    result.errors = errors
    result.interrupted = interrupted
    return result
