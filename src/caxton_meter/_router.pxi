# The agent router: FIPA-style messages as C structs, bounded mailboxes,
# native agents implemented in C, Python agents, supervision (restart on a
# fault, dead letters, recovery time), capabilities, and latency recorded
# into core histograms with no Python work per message.
#
# Counting rule, kept exact: every attempt to put a message in a mailbox (a
# "send", whether from the client or from an agent) ends as exactly one of
# delivered (its receiver handled it, or the client received it),
# dead-lettered (with a reason), rejected (mailbox full), or is still in
# flight (in a mailbox):  sent == delivered + dead_lettered + rejected + in_flight.

# --- content buffers: reference-counted, shared by every message that carries them

cdef cm_buf *buf_new(const char *data, int64_t length) noexcept nogil:
    cdef cm_buf *b = <cm_buf *>malloc(sizeof(cm_buf) + (length if length > 0 else 1))
    if b == NULL:
        return NULL
    b.refcnt = 1
    b.length = length
    b.data = (<char *>b) + sizeof(cm_buf)
    if length > 0 and data != NULL:
        memcpy(b.data, data, length)
    return b


cdef inline cm_buf *buf_ref(cm_buf *b) noexcept nogil:
    if b != NULL:
        cm_atomic_add_relaxed_64(&b.refcnt, 1)
    return b


cdef inline void buf_unref(cm_buf *b) noexcept nogil:
    if b != NULL and cm_atomic_fetch_add_64(&b.refcnt, -1) == 1:
        free(b)


# --- messages: every cm_msg the core makes is filled here, every field of it,
# so that a field added to the struct is set in one place and no message
# leaves with stack garbage in it.

cdef inline void msg_init(cm_msg *m, int64_t id, int32_t sender, int32_t receiver,
                          int32_t performative, cm_buf *content, int64_t conversation_id,
                          int64_t reply_with, int64_t in_reply_to, int64_t origin_ns,
                          int64_t issued_ns, int32_t hops, int32_t origin) noexcept nogil:
    """m, owning the content reference given: a message not yet in a
    mailbox (enqueued_ns is set where it enters one)."""
    m.id = id
    m.conversation_id = conversation_id
    m.reply_with = reply_with
    m.in_reply_to = in_reply_to
    m.origin_ns = origin_ns
    m.issued_ns = issued_ns
    m.enqueued_ns = 0
    m.content = content
    m.sender = sender
    m.receiver = receiver
    m.performative = performative
    m.hops = hops
    m.origin = origin
    m.pad = 0


# --- performatives (FIPA ACL)

PERFORMATIVES = ("request", "inform", "query-if", "query-ref", "propose", "accept-proposal",
                 "reject-proposal", "agree", "refuse", "failure", "not-understood")
cdef dict _PERFORMATIVE_CODES = {name: i for i, name in enumerate(PERFORMATIVES)}

cdef enum:
    PERF_REQUEST = 0
    PERF_INFORM = 1
    PERF_FAILURE = 9


cdef int _performative_code(object performative) except -1:
    code = _PERFORMATIVE_CODES.get(performative)
    if code is None:
        raise ValueError(f"unknown performative {performative!r}; expected one of "
                         + ", ".join(PERFORMATIVES))
    return code


# --- agent states, dead-letter reasons (the kinds are in _agents.pxi)

cdef enum:
    STATE_FREE = 0
    STATE_READY = 1
    STATE_STOPPED = 2

# Dead-letter reasons; FAULT_PYTHON keeps its text on the Python side.
cdef enum:
    DL_UNKNOWN_RECEIVER = 1
    DL_STOPPED = 2
    DL_FAULT = 3
    DL_BAD_REPLY = 4
    DL_TOO_LARGE = 5
    DL_MAILBOX_FULL = 6
    DL_WASM_TRAP = 7           # detail: -(100 + the cm_wasm code)
    DL_WASM_ERROR = 8

cdef dict _REASONS = {
    DL_UNKNOWN_RECEIVER: "unknown receiver",
    DL_STOPPED: "receiver stopped",
    DL_FAULT: "agent fault",
    DL_BAD_REPLY: "bad reply",
    DL_TOO_LARGE: "content too large",
    DL_MAILBOX_FULL: "mailbox full",
    DL_WASM_TRAP: "agent fault: wasm trap",
    DL_WASM_ERROR: "wasm agent error",
}

cdef enum:
    CLIENT = 0           # the router's client: whoever sends from outside


class BackpressureError(CaxtonMeterError, RuntimeError):
    """A mailbox was full and the router is configured to raise."""


class RoutingError(CaxtonMeterError, ValueError):
    """A message could not be routed (unknown receiver, too large, ...)."""


# --- the Python view of a message -------------------------------------------------

@cython.freelist(64)
cdef class Message:
    """A message as Python agents and the client see it.  Immutable.
    ``content`` is a bytes copy; ``memoryview(message)`` reads the content
    without copying."""

    cdef cm_msg _m
    cdef Py_ssize_t _view_count

    def __dealloc__(self):
        buf_unref(self._m.content)
        self._m.content = NULL

    @property
    def id(self):
        return self._m.id

    @property
    def performative(self):
        return PERFORMATIVES[self._m.performative]

    @property
    def sender(self):
        return self._m.sender

    @property
    def receiver(self):
        return self._m.receiver

    @property
    def conversation_id(self):
        return self._m.conversation_id

    @property
    def reply_with(self):
        return self._m.reply_with

    @property
    def in_reply_to(self):
        return self._m.in_reply_to

    @property
    def origin_ns(self):
        """When the exchange began: the clock reading of the request's send."""
        return self._m.origin_ns

    @property
    def content(self):
        if self._m.content == NULL:
            return b""
        return PyBytes_FromStringAndSize(self._m.content.data, self._m.content.length)

    def __len__(self):
        return 0 if self._m.content == NULL else self._m.content.length

    def __getbuffer__(self, Py_buffer *view, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("a message's content is read-only")
        cdef char *data = self._m.content.data if self._m.content != NULL else <char *>""
        cdef Py_ssize_t n = self._m.content.length if self._m.content != NULL else 0
        PyBuffer_FillInfo(view, self, data, n, 1, flags)
        self._view_count += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._view_count -= 1

    def __repr__(self):
        return (f"Message(id={self._m.id}, performative={self.performative!r}, "
                f"sender={self._m.sender}, receiver={self._m.receiver}, "
                f"conversation_id={self._m.conversation_id}, in_reply_to={self._m.in_reply_to}, "
                f"content={len(self)} bytes)")


cdef Message _message_from(const cm_msg *m):
    """A Python Message sharing m's content (one more reference)."""
    cdef Message msg = Message.__new__(Message)
    msg._m = m[0]
    buf_ref(msg._m.content)
    return msg


cdef class DeadLetter:
    """A message the router could not deliver, with the reason."""
    cdef readonly Message message
    cdef readonly str reason
    cdef readonly int64_t at_ns

    def __repr__(self):
        return f"DeadLetter(reason={self.reason!r}, message={self.message!r})"


cdef class AgentInfo:
    """What the router knows of one agent.  Immutable."""
    cdef readonly int32_t id
    cdef readonly str kind
    cdef readonly str state
    cdef readonly int64_t handled
    cdef readonly int64_t faults
    cdef readonly int32_t restarts
    cdef readonly int64_t mailbox
    cdef readonly int64_t mailbox_allocated

    def __repr__(self):
        return (f"AgentInfo(id={self.id}, kind={self.kind!r}, state={self.state!r}, "
                f"handled={self.handled}, faults={self.faults}, restarts={self.restarts}, "
                f"mailbox={self.mailbox})")


cdef class Checkpoint:
    """An agent's captured state.  Immutable."""
    cdef readonly int32_t agent
    cdef readonly str kind
    cdef readonly bytes state
    cdef readonly int64_t elapsed_ns

    @property
    def size(self):
        """The state's size in bytes."""
        return len(self.state)

    def __repr__(self):
        return (f"Checkpoint(agent={self.agent}, kind={self.kind!r}, size={len(self.state)}, "
                f"elapsed_ns={self.elapsed_ns})")


cdef class RouterCounts:
    """The router's message counts; ``sent == delivered + dead_lettered +
    rejected + in_flight`` always holds.  Immutable."""
    cdef readonly int64_t sent
    cdef readonly int64_t delivered
    cdef readonly int64_t dead_lettered
    cdef readonly int64_t rejected
    cdef readonly int64_t in_flight
    cdef readonly int64_t restarts

    def as_dict(self):
        return {"sent": self.sent, "delivered": self.delivered, "dead_lettered": self.dead_lettered,
                "rejected": self.rejected, "in_flight": self.in_flight, "restarts": self.restarts}

    def __repr__(self):
        return "RouterCounts(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


# --- the multi-producer queue between threads (Vyukov's bounded queue) ----------------

cdef int mpsc_init(cm_mpsc *q, int64_t capacity) noexcept nogil:
    cdef int64_t i
    q.cells = <cm_cell *>malloc(capacity * sizeof(cm_cell))
    if q.cells == NULL:
        return -1
    for i in range(capacity):
        q.cells[i].seq = i
    q.mask = capacity - 1
    q.tail = 0
    q.head = 0
    return 0


cdef bint mpsc_push(cm_mpsc *q, cm_msg *m) noexcept nogil:
    """Any thread: append m; 0 when the queue is full."""
    cdef int64_t pos = cm_atomic_load_64(&q.tail), seq
    cdef cm_cell *cell
    while True:
        cell = &q.cells[pos & q.mask]
        seq = cm_atomic_load_acquire_64(&cell.seq)
        if seq == pos:
            if cm_atomic_cas_64(&q.tail, &pos, pos + 1):
                break
        elif seq < pos:
            return 0
        else:
            pos = cm_atomic_load_64(&q.tail)
    cell.msg = m[0]
    cm_atomic_store_release_64(&cell.seq, pos + 1)
    return 1


cdef bint mpsc_pop(cm_mpsc *q, cm_msg *out) noexcept nogil:
    """The owning thread: take the oldest message; 0 when empty."""
    cdef int64_t pos = q.head
    cdef cm_cell *cell = &q.cells[pos & q.mask]
    if cm_atomic_load_acquire_64(&cell.seq) != pos + 1:
        return 0
    out[0] = cell.msg
    q.head = pos + 1
    cm_atomic_store_release_64(&cell.seq, pos + q.mask + 1)
    return 1


cdef void _free_hists(cm_agent *a) noexcept nogil:
    if a.hists != NULL:
        free(a.hists[0].counts)
        free(a.hists[1].counts)
        free(a.hists)
        a.hists = NULL


cdef inline void _inc(int64_t *counter, int64_t by) noexcept nogil:
    # one writer; release: a reader that sees this also sees what came before
    cm_atomic_store_release_64(counter, counter[0] + by)


# --- the router ---------------------------------------------------------------------

cdef enum:
    SEND_OK = 0
    SEND_REJECTED = -1
    SEND_DEAD = -2

# Each shard's histograms, as snapshot() names them.
cdef enum:
    HIST_ROUND_TRIP = 0
    HIST_DELIVERY = 1
    HIST_QUEUE_TIME = 2
    HIST_HANDLING_TIME = 3
    HIST_RECOVERY_TIME = 4
    HIST_ROUND_TRIP_UNCORRECTED = 5

cdef enum:
    ALL_SHARDS = -1


cdef cm_hdr *_shard_histogram(cm_shard *sh, int which) noexcept nogil:
    if which == HIST_ROUND_TRIP:
        return &sh.round_trip
    if which == HIST_ROUND_TRIP_UNCORRECTED:
        return &sh.round_trip_uncorrected
    if which == HIST_DELIVERY:
        return &sh.delivery
    if which == HIST_QUEUE_TIME:
        return &sh.queue_time
    if which == HIST_HANDLING_TIME:
        return &sh.handling_time
    return &sh.recovery_time

cdef int64_t _LATENCY_HIGHEST = 3_600_000_000_000      # one hour in ns
cdef int64_t INT32_MAX_AGENTS = 2_147_483_646
cdef int64_t _INBOUND_CAPACITY = 1 << 16
cdef int MAX_WORKERS = 62


cdef class Router:
    """An in-process message router with supervised agents.

    Router(*, workers=0, mailbox_capacity=1024, on_full="reject",
           on_unknown="dead_letter", max_content=1 MiB, keep_replies=True,
           batch_size=64, significant_figures=3, flush_size=1,
           flush_timeout=0.0)

    - ``workers``: 0 runs every agent on the thread that calls ``run()``;
      N > 0 runs native agents on N worker threads without the GIL (each owns
      a shard of them; messages cross between threads through lock-free
      queues), while Python agents run on the calling thread.
    - ``mailbox_capacity``: messages an agent's mailbox holds (its storage
      grows on demand up to this).  When it is full, a send is rejected:
      ``on_full="reject"`` counts it (the client's ``send`` returns None, an
      agent's send is kept in the dead letters with reason "mailbox full"),
      ``on_full="raise"`` makes the client's ``send`` raise
      BackpressureError.  Never a silent drop.
    - ``on_unknown``: a message to an agent that does not exist is
      dead-lettered ("dead_letter") or, from the client, raises RoutingError
      ("raise").
    - ``max_content``: the largest content in bytes; larger raises RoutingError
      at the client's send, or dead-letters an agent's reply.
    - ``keep_replies``: keep what agents send to the client for ``receive()``;
      with False they are counted and timed, then released.
    - ``batch_size``: messages an agent handles per turn before the next agent's.
    - ``per_agent_histograms``: also record each agent's queue and handling
      times in histograms of its own (2 significant figures, ~72 KiB an
      agent): see ``agent_histograms()``.
    - ``flush_size``, ``flush_timeout`` (seconds): the MessageBatcher.  With
      flush_size > 1 the client's sends wait in a batch that is delivered
      when it holds flush_size messages, when its oldest has waited
      flush_timeout, when the router has nothing else to do, or on flush().
      Latency counts from the send, so the batching delay shows in it.
    """

    cdef cm_agent *_agents
    cdef int32_t _n_agents
    cdef int32_t _agents_cap
    cdef cm_shard *_shards         # [0]: the calling thread; [1..workers]: the workers
    cdef int32_t _n_shards
    cdef int32_t _workers
    cdef bint _per_agent           # each agent has its own queue/handling histograms
    # A load loop's Recorder, while one runs: each completion's latency also
    # goes there, and the loop swaps out one interval histogram at a time.
    cdef Recorder _interval_recorder
    cdef cm_phaser *_interval_phaser
    cdef cm_hdr **_interval_active
    cdef bint _interval_one_way
    cdef int64_t _stop             # tells the workers to return (atomic)
    cdef bint _threaded            # workers are running: cross-shard sends use queues
    cdef cm_msg *_inbox            # the client's received messages
    cdef int64_t _inbox_head
    cdef int64_t _inbox_count
    cdef int64_t _inbox_cap
    cdef uint32_t _mailbox_capacity
    cdef int64_t _max_content
    cdef int32_t _batch
    cdef bint _raise_on_full
    cdef bint _raise_on_unknown
    cdef bint _keep_replies
    cdef int _significant_figures
    cdef Histogram _spawn_time
    cdef list _py_agents           # per Python agent: [handler, factory, instance]
    cdef list _py_texts            # dead-letter details from Python
    cdef dict _capabilities        # name -> list of agent ids
    cdef dict _rr                  # name -> round-robin cursor
    cdef bint _running             # inside run() or a load loop: handlers may send, not run
    cdef bint _discard_replies     # a load loop counts replies, it does not keep them
    cdef list _load_threads        # the worker threads enter_load started, for leave_load
    cdef cm_msg *_batch_buf        # the MessageBatcher's pending client sends
    cdef int64_t _batch_len
    cdef int64_t _batch_first_ns
    cdef int64_t _flush_size
    cdef int64_t _flush_timeout
    cdef int64_t _flushes

    def __cinit__(self, *, workers=0, mailbox_capacity=1024, on_full="reject",
                  on_unknown="dead_letter", max_content=1 << 20, keep_replies=True, batch_size=64,
                  significant_figures=3, flush_size=1, flush_timeout=0.0,
                  per_agent_histograms=False):
        nw = _index(workers)
        if not 0 <= nw <= MAX_WORKERS:
            raise ValueError(f"Router: workers must be within [0, {MAX_WORKERS}], got {nw}")
        cap = _index(mailbox_capacity)
        if not 1 <= cap <= (1 << 30):
            raise ValueError(f"Router: mailbox_capacity must be within [1, 2**30], got {cap}")
        if on_full not in ("reject", "raise"):
            raise ValueError(f"Router: on_full must be 'reject' or 'raise', got {on_full!r}")
        if on_unknown not in ("dead_letter", "raise"):
            raise ValueError(f"Router: on_unknown must be 'dead_letter' or 'raise', got {on_unknown!r}")
        mc = _index(max_content)
        if mc < 0:
            raise ValueError(f"Router: max_content must be >= 0, got {mc}")
        bs = _index(batch_size)
        if not 1 <= bs <= (1 << 20):
            raise ValueError(f"Router: batch_size must be within [1, 2**20], got {bs}")
        fs = _index(flush_size)
        if not 1 <= fs <= (1 << 20):
            raise ValueError(f"Router: flush_size must be within [1, 2**20], got {fs}")
        ft = float(flush_timeout)
        if not 0.0 <= ft < 3600.0:
            raise ValueError(f"Router: flush_timeout must be within [0, 3600) seconds, got {ft!r}")
        self._spawn_time = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._significant_figures = significant_figures
        self._flush_size = fs
        self._flush_timeout = <int64_t>(ft * 1e9)
        if fs > 1:
            self._batch_buf = <cm_msg *>malloc(fs * sizeof(cm_msg))
            if self._batch_buf == NULL:
                raise MemoryError(f"Router: cannot allocate a batch of {fs} messages")
        self._mailbox_capacity = cap
        self._raise_on_full = on_full == "raise"
        self._raise_on_unknown = on_unknown == "raise"
        self._max_content = mc
        self._keep_replies = bool(keep_replies)
        self._batch = bs
        self._workers = nw
        self._per_agent = bool(per_agent_histograms)
        self._shards = <cm_shard *>calloc(nw + 1, sizeof(cm_shard))
        if self._shards == NULL:
            raise MemoryError("Router: cannot allocate its shards")
        cdef int32_t i
        for i in range(nw + 1):
            self._shards[i].index = i
            if (hdr_init(&self._shards[i].round_trip, 1, _LATENCY_HIGHEST, significant_figures)
                    or hdr_init(&self._shards[i].round_trip_uncorrected, 1, _LATENCY_HIGHEST,
                                significant_figures)
                    or hdr_init(&self._shards[i].delivery, 1, _LATENCY_HIGHEST, significant_figures)
                    or hdr_init(&self._shards[i].queue_time, 1, _LATENCY_HIGHEST, significant_figures)
                    or hdr_init(&self._shards[i].handling_time, 1, _LATENCY_HIGHEST, significant_figures)
                    or hdr_init(&self._shards[i].recovery_time, 1, _LATENCY_HIGHEST, significant_figures)
                    or (nw > 0 and mpsc_init(&self._shards[i].inbound, _INBOUND_CAPACITY))):
                raise MemoryError("Router: cannot allocate a shard's histograms and queue")
            self._n_shards = i + 1
        self._py_agents = []
        self._py_texts = []
        self._capabilities = {}
        self._rr = {}
        # agent 0 is the client: a slot that is never an agent
        self._grow_agents(16)
        self._n_agents = 1

    def __dealloc__(self):
        cdef int64_t i, k
        cdef cm_agent *a
        cdef cm_shard *sh
        cdef cm_msg m
        if self._agents != NULL:
            for i in range(self._n_agents):
                agent_free(&self._agents[i])
            free(self._agents)
        for k in range(self._inbox_count):
            buf_unref(self._inbox[(self._inbox_head + k) % self._inbox_cap].content)
        free(self._inbox)
        if self._shards != NULL:
            for i in range(self._n_shards):
                sh = &self._shards[i]
                for k in range(sh.dead_count):
                    buf_unref(sh.dead[k].msg.content)
                free(sh.dead)
                free(sh.runq)
                if sh.inbound.cells != NULL:
                    while mpsc_pop(&sh.inbound, &m):
                        buf_unref(m.content)
                    free(sh.inbound.cells)
                free(sh.round_trip.counts)
                free(sh.round_trip_uncorrected.counts)
                free(sh.delivery.counts)
                free(sh.queue_time.counts)
                free(sh.handling_time.counts)
                free(sh.recovery_time.counts)
            free(self._shards)
        for k in range(self._batch_len):
            buf_unref(self._batch_buf[k].content)
        free(self._batch_buf)

    # -- storage -----------------------------------------------------------------

    cdef int _grow_agents(self, int64_t need) except -1:
        cdef int64_t cap = self._agents_cap if self._agents_cap else 16
        cdef cm_agent *grown
        if need <= self._agents_cap:
            return 0
        if self._threaded:
            raise RuntimeError("spawn: cannot spawn while the router's workers run")
        if need > INT32_MAX_AGENTS:
            raise MemoryError(f"Router: at most {INT32_MAX_AGENTS} agents")
        while cap < need:
            cap *= 2
        grown = <cm_agent *>realloc(self._agents, cap * sizeof(cm_agent))
        if grown == NULL:
            raise MemoryError(f"Router: cannot allocate {cap} agents")
        memset(grown + self._agents_cap, 0, (cap - self._agents_cap) * sizeof(cm_agent))
        self._agents = grown
        self._agents_cap = <int32_t>cap
        return 0

    cdef bint _grow_ring(self, cm_agent *a) noexcept nogil:
        """Double a's mailbox storage, up to the capacity; 0 when full."""
        cdef uint32_t cap = a.ring_cap * 2 if a.ring_cap else 4
        cdef cm_msg *ring
        cdef uint32_t k
        if a.ring_cap >= self._mailbox_capacity:
            return 0
        if cap > self._mailbox_capacity:
            cap = self._mailbox_capacity
        ring = <cm_msg *>malloc(cap * sizeof(cm_msg))
        if ring == NULL:
            return 0
        for k in range(a.count):
            ring[k] = a.ring[(a.head + k) % a.ring_cap]
        free(a.ring)
        a.ring = ring
        a.ring_cap = cap
        a.head = 0
        return 1

    cdef bint _schedule(self, cm_shard *sh, int32_t aid) noexcept nogil:
        cdef int32_t *grown
        cdef int64_t cap, k
        if sh.runq_count == sh.runq_cap:
            cap = sh.runq_cap * 2 if sh.runq_cap else 64
            grown = <int32_t *>malloc(cap * sizeof(int32_t))
            if grown == NULL:
                return 0
            for k in range(sh.runq_count):
                grown[k] = sh.runq[(sh.runq_head + k) % sh.runq_cap]
            free(sh.runq)
            sh.runq = grown
            sh.runq_cap = cap
            sh.runq_head = 0
        sh.runq[(sh.runq_head + sh.runq_count) % sh.runq_cap] = aid
        sh.runq_count += 1
        return 1

    cdef bint _to_inbox(self, cm_msg *m) noexcept nogil:
        cdef cm_msg *grown
        cdef int64_t cap, k
        if self._inbox_count == self._inbox_cap:
            cap = self._inbox_cap * 2 if self._inbox_cap else 64
            grown = <cm_msg *>malloc(cap * sizeof(cm_msg))
            if grown == NULL:
                return 0
            for k in range(self._inbox_count):
                grown[k] = self._inbox[(self._inbox_head + k) % self._inbox_cap]
            free(self._inbox)
            self._inbox = grown
            self._inbox_cap = cap
            self._inbox_head = 0
        self._inbox[(self._inbox_head + self._inbox_count) % self._inbox_cap] = m[0]
        self._inbox_count += 1
        return 1

    cdef void _dead_letter(self, cm_shard *sh, cm_msg *m, int32_t reason, int32_t detail,
                           bint rejected) noexcept nogil:
        """Keep m (and its content reference) as a dead letter of shard sh."""
        cdef cm_dead_letter *grown
        cdef int64_t cap
        if sh.dead_count == sh.dead_cap:
            cap = sh.dead_cap * 2 if sh.dead_cap else 64
            grown = <cm_dead_letter *>realloc(sh.dead, cap * sizeof(cm_dead_letter))
            if grown != NULL:
                sh.dead = grown
                sh.dead_cap = cap
        if sh.dead_count < sh.dead_cap:
            sh.dead[sh.dead_count].msg = m[0]
            sh.dead[sh.dead_count].at_ns = cm_now_ns()
            sh.dead[sh.dead_count].reason = reason
            sh.dead[sh.dead_count].detail = detail
            sh.dead_count += 1
        else:                    # out of memory: counted below, the record is lost
            buf_unref(m.content)
        _inc(&sh.rejected if rejected else &sh.dead_lettered, 1)
        if 0 <= m.origin < self._n_shards:
            cm_atomic_add_relaxed_64(&self._shards[m.origin].failed_origin, 1)

    # -- sending --------------------------------------------------------------------

    cdef int _enqueue(self, cm_shard *sh, cm_msg *m, int64_t now) noexcept nogil:
        """A send from shard sh's thread: m (owning its content reference)
        counts as sent here, then goes where it goes.  Returns SEND_OK,
        SEND_REJECTED or SEND_DEAD (then it is among the dead letters)."""
        _inc(&sh.sent, 1)
        return self._route(sh, m, now)

    cdef int _route(self, cm_shard *sh, cm_msg *m, int64_t now) noexcept nogil:
        cdef int32_t r = m.receiver, owner
        if r == CLIENT:
            owner = m.origin if 0 <= m.origin < self._n_shards else 0
        elif 1 <= r < self._n_agents:
            owner = self._agents[r].shard
        else:
            owner = sh.index
        if not self._threaded or owner == sh.index:
            return self._deliver(sh, m, now)
        m.enqueued_ns = now
        if mpsc_push(&self._shards[owner].inbound, m):
            return SEND_OK
        # the other thread's queue is full: a full mailbox, seen early
        self._dead_letter(sh, m, DL_MAILBOX_FULL, -1, True)
        return SEND_REJECTED

    cdef int _submit(self, cm_msg *m, int64_t now) noexcept nogil:
        """A client send (from shard 0's thread): through the batcher when
        batching is on (the message counts as sent, and in flight until its
        batch is flushed), else straight to _enqueue."""
        cdef cm_shard *sh = &self._shards[0]
        if self._flush_size <= 1:
            return self._enqueue(sh, m, now)
        if self._batch_len == 0:
            self._batch_first_ns = now
        _inc(&sh.sent, 1)
        self._batch_buf[self._batch_len] = m[0]
        self._batch_len += 1
        if self._batch_len >= self._flush_size:
            self._flush(now)
        return SEND_OK

    cdef void _flush(self, int64_t now) noexcept nogil:
        """Deliver the batched client sends (MessageBatcher's flush)."""
        cdef int64_t k, n = self._batch_len
        self._batch_len = 0
        for k in range(n):
            self._route(&self._shards[0], &self._batch_buf[k], now)
        if n:
            self._flushes += 1

    cdef inline void _flush_due(self, cm_shard *sh, int64_t now) noexcept nogil:
        """Flush when the oldest batched send has waited flush_timeout, or
        when nothing else is left to do (a batch never waits on an idle
        router)."""
        if self._batch_len and (sh.runq_count == 0 or (
                self._flush_timeout > 0 and now - self._batch_first_ns >= self._flush_timeout)):
            self._flush(now)

    cdef int _deliver(self, cm_shard *sh, cm_msg *m, int64_t now) noexcept nogil:
        """Put m in its receiver's mailbox (owned by sh) or the client's
        inbox, or among sh's dead letters; counts the outcome in sh."""
        cdef int32_t r = m.receiver
        cdef cm_agent *a
        m.enqueued_ns = now
        if r == CLIENT:
            if m.in_reply_to != 0:
                hdr_record_or_overflow(&sh.round_trip, now - m.origin_ns, 1)
                if self._interval_phaser != NULL and not self._interval_one_way:
                    recorder_record(self._interval_phaser, self._interval_active, now - m.origin_ns, 1)
                hdr_record_or_overflow(&sh.round_trip_uncorrected, now - m.issued_ns, 1)
            if (self._keep_replies and not self._discard_replies and sh.index == 0
                    and self._to_inbox(m)):
                pass
            else:
                buf_unref(m.content)
            _inc(&sh.client_received, 1)
            _inc(&sh.delivered, 1)
            return SEND_OK
        if r < 0 or r >= self._n_agents or self._agents[r].state == STATE_FREE:
            self._dead_letter(sh, m, DL_UNKNOWN_RECEIVER, -1, False)
            return SEND_DEAD
        a = &self._agents[r]
        if a.state != STATE_READY:
            self._dead_letter(sh, m, DL_STOPPED, -1, False)
            return SEND_DEAD
        if a.count == a.ring_cap and not self._grow_ring(a):
            self._dead_letter(sh, m, DL_MAILBOX_FULL, -1, True)
            return SEND_REJECTED
        a.ring[(a.head + a.count) % a.ring_cap] = m[0]
        a.count += 1
        if not a.scheduled:
            a.scheduled = 1
            self._schedule(&self._shards[a.shard], r)
        return SEND_OK

    cdef int64_t _drain_inbound(self, cm_shard *sh) noexcept nogil:
        """Take what other threads sent sh's agents into their mailboxes."""
        cdef cm_msg m
        cdef int64_t n = 0
        if sh.inbound.cells == NULL:
            return 0
        while mpsc_pop(&sh.inbound, &m):
            self._deliver(sh, &m, m.enqueued_ns)
            n += 1
        return n

    cdef inline int64_t _new_id(self, cm_shard *sh) noexcept nogil:
        sh.next_id += 1
        return sh.next_id * self._n_shards + sh.index      # unique across shards

    cdef void _reply(self, cm_shard *sh, int32_t aid, cm_msg *req, cm_buf *content,
                     int32_t performative, int64_t now) noexcept nogil:
        """Send content (a reference the caller gives up) back to req's sender."""
        cdef cm_msg r
        msg_init(&r, self._new_id(sh), aid, req.sender, performative, content,
                 req.conversation_id, 0, req.reply_with if req.reply_with != 0 else req.id,
                 req.origin_ns, req.issued_ns, req.hops + 1, req.origin)
        if content != NULL and content.length > self._max_content:
            _inc(&sh.sent, 1)
            self._dead_letter(sh, &r, DL_TOO_LARGE, -1, False)
            return
        self._enqueue(sh, &r, now)

    # -- recording (what the agents of _agents.pxi measure) ----------------------------

    cdef inline void _record_delivery(self, cm_shard *sh, int64_t ns) noexcept nogil:
        hdr_record_or_overflow(&sh.delivery, ns, 1)
        if self._interval_phaser != NULL and self._interval_one_way:
            recorder_record(self._interval_phaser, self._interval_active, ns, 1)

    cdef inline void _record_queue(self, cm_shard *sh, int32_t aid, int64_t ns) noexcept nogil:
        hdr_record_or_overflow(&sh.queue_time, ns, 1)
        if self._agents[aid].hists != NULL:
            hdr_record_or_overflow(&self._agents[aid].hists[0], ns, 1)

    cdef inline void _record_handling(self, cm_shard *sh, int32_t aid, int64_t ns) noexcept nogil:
        hdr_record_or_overflow(&sh.handling_time, ns, 1)
        if self._agents[aid].hists != NULL:
            hdr_record_or_overflow(&self._agents[aid].hists[1], ns, 1)

    cdef int32_t _text(self, str text) except -2:
        self._py_texts.append(text)
        return <int32_t>(len(self._py_texts) - 1)

    cdef int64_t _run(self, cm_shard *sh, int64_t limit) except -1:
        """Handle sh's messages until none is left, or limit were handled
        (the calling thread's loop: it may run Python agents)."""
        cdef int64_t done = 0
        cdef int32_t aid, k, n
        cdef cm_agent *a
        cdef cm_msg m
        while done < limit:
            if sh.index == 0:
                self._flush_due(sh, cm_now_ns() if self._batch_len else 0)
            self._drain_inbound(sh)
            if sh.runq_count == 0:
                break
            aid = sh.runq[sh.runq_head]
            sh.runq_head = (sh.runq_head + 1) % sh.runq_cap
            sh.runq_count -= 1
            a = &self._agents[aid]
            n = <int32_t>min(<int64_t>a.count, <int64_t>self._batch, limit - done)
            for k in range(n):
                a = &self._agents[aid]
                if a.state != STATE_READY or a.count == 0:
                    break
                m = a.ring[a.head]
                a.head = (a.head + 1) % a.ring_cap
                a.count -= 1
                agent_handle(self, sh, aid, &m)
                done += 1
            a = &self._agents[aid]
            if a.count and a.state == STATE_READY:
                self._schedule(sh, aid)
            else:
                a.scheduled = 0
        return done

    cdef int64_t _run_native(self, cm_shard *sh, int64_t limit) noexcept nogil:
        """_run for a worker's shard, which holds native agents only."""
        cdef int64_t done = 0
        cdef int32_t aid, k, n
        cdef cm_agent *a
        cdef cm_msg m
        while done < limit:
            self._drain_inbound(sh)
            if sh.runq_count == 0:
                break
            aid = sh.runq[sh.runq_head]
            sh.runq_head = (sh.runq_head + 1) % sh.runq_cap
            sh.runq_count -= 1
            a = &self._agents[aid]
            n = <int32_t>min(<int64_t>a.count, <int64_t>self._batch, limit - done)
            for k in range(n):
                if a.count == 0:
                    break
                m = a.ring[a.head]
                a.head = (a.head + 1) % a.ring_cap
                a.count -= 1
                agent_handle_nogil(self, sh, aid, &m)
                done += 1
            if a.count:
                self._schedule(sh, aid)
            else:
                a.scheduled = 0
        return done

    cdef _attach_recorder(self, Recorder recorder, bint one_way):
        """Also record each completion's latency (replies to the client, or
        with one_way, deliveries) into recorder; None detaches."""
        self._interval_recorder = recorder
        self._interval_one_way = one_way
        if recorder is None:
            self._interval_phaser = NULL
            self._interval_active = NULL
        else:
            self._interval_phaser = &recorder._phaser
            self._interval_active = &recorder._active

    cdef void _worker_loop(self, cm_shard *sh) noexcept nogil:
        cdef int idle = 0
        while not cm_atomic_load_64(&self._stop):
            if self._run_native(sh, 4096):
                idle = 0
            else:
                idle += 1
                if idle < 200:
                    cm_cpu_relax()
                else:
                    cm_sleep_ns(20000)      # nothing to do: let the other threads run

    def _worker_main(self, int index):
        with nogil:
            self._worker_loop(&self._shards[index])

    cdef int _start_workers(self, driven) except -1:
        """Start a thread for each worker shard not in driven (a load loop
        drives those on threads of its own).  Each thread goes into
        _load_threads once launched, for _stop_workers."""
        import threading
        cm_atomic_store_64(&self._stop, 0)
        self._threaded = 1
        self._load_threads = []
        for i in range(1, self._n_shards):
            if i in driven:
                continue
            t = threading.Thread(target=self._worker_main, args=(i,), daemon=True,
                                 name=f"caxton_meter-router-{i}")
            try:
                t.start()
            except KeyboardInterrupt:
                self._load_threads.append(t)   # launched: only the wait for it to start was cut
                raise
            self._load_threads.append(t)
        return 0

    cdef int _stop_workers(self) except -1:
        threads, self._load_threads = self._load_threads, None
        cm_atomic_store_64(&self._stop, 1)
        for t in threads:
            t.join()
        self._threaded = 0
        # what the workers left in queues on their way out is delivered now
        cdef int32_t i
        for i in range(self._n_shards):
            self._drain_inbound(&self._shards[i])
        return 0

    # -- the load loops' interface ---------------------------------------------------------
    # run() and the load loops of _load.pxi go through these methods and
    # touch no member of the Router; a shard is named by its index (0: the
    # calling thread, 1..workers: the workers).  cdef methods are not seen
    # from Python: these have no underscore because other parts call them.

    cdef int enter_load(self, str what, bint discard_replies=False, Recorder recorder=None,
                        bint one_way=False, driven=()) except -1:
        """Begin a run (run() or a load loop): refuse one while another is
        under way (an agent's handler cannot start one), count the client's
        replies without keeping them if asked, also record completions into
        recorder (deliveries with one_way), and start the worker threads of
        every worker shard not in driven.  leave_load ends it; if this
        raises, nothing is left begun."""
        if self._running:
            raise RuntimeError(f"{what}: the router is already running "
                               f"(an agent cannot call {what})")
        self._running = 1
        self._discard_replies = discard_replies
        self._attach_recorder(recorder, one_way)
        if self._workers:
            try:
                self._start_workers(driven)
            except BaseException:
                self.leave_load()
                raise
        return 0

    cdef int leave_load(self) except -1:
        """End what enter_load began: the workers stop, what they left in
        the queues is delivered, and the router may run again."""
        try:
            if self._load_threads is not None:
                self._stop_workers()
        finally:
            self._attach_recorder(None, 0)
            self._discard_replies = 0
            self._running = 0
        return 0

    cdef list load_targets(self, targets, str what):
        """targets (an iterable of agent ids) as a list of live agents' ids."""
        ids = [_index(t) for t in targets]
        if not ids:
            raise ValueError(f"{what}: targets is empty")
        for aid in ids:
            if not 1 <= aid < self._n_agents or self._agents[<int32_t>aid].state != STATE_READY:
                raise ValueError(f"{what}: target {aid} is not a live agent")
        return ids

    cdef inline int32_t shard_of(self, int32_t aid) noexcept:
        """The shard that runs agent aid (0 for every Python agent)."""
        return self._agents[aid].shard

    cdef int check_content(self, Py_ssize_t length, str what) except -1:
        if length > self._max_content:
            raise RoutingError(f"{what}: content of {length} bytes is larger than "
                               f"max_content {self._max_content}")
        return 0

    cdef inline int significant_figures(self) noexcept:
        """The precision of the router's histograms."""
        return self._significant_figures

    cdef inline int64_t turn_size(self, Py_ssize_t n_targets) noexcept nogil:
        """Messages one run_shard call may handle for a loop over n_targets
        agents: a batch each."""
        return self._batch * n_targets

    cdef inline void send_request(self, int32_t shard, int32_t receiver, cm_buf *content,
                                  int64_t origin_ns, int64_t now) noexcept nogil:
        """A request from the client on shard's thread to receiver, with
        content (shared: one more reference).  Its latency counts from
        origin_ns (when it was due), the uncorrected latency from now."""
        cdef cm_shard *sh = &self._shards[shard]
        cdef cm_msg m
        msg_init(&m, self._new_id(sh), CLIENT, receiver, PERF_REQUEST, buf_ref(content),
                 0, 0, 0, origin_ns, now, 0, shard)
        if shard == 0:
            self._submit(&m, now)         # the calling thread's client has the batcher
        else:
            self._enqueue(sh, &m, now)

    cdef inline int64_t run_shard(self, int32_t shard, int64_t limit) except -1:
        """Handle what shard holds, up to limit messages, on the calling
        thread (Python agents included); returns how many were handled."""
        return self._run(&self._shards[shard], limit)

    cdef inline int64_t run_shard_nogil(self, int32_t shard, int64_t limit) noexcept nogil:
        """run_shard on a worker shard's own thread, without the GIL."""
        return self._run_native(&self._shards[shard], limit)

    cdef bint quiescent(self) noexcept nogil:
        """Nothing in flight anywhere: every outcome counter is read before
        every sent counter, so a message sent meanwhile cannot be missed."""
        cdef int64_t outcomes = 0, sent = 0
        cdef int32_t i
        for i in range(self._n_shards):
            outcomes += (cm_atomic_load_acquire_64(&self._shards[i].delivered)
                         + cm_atomic_load_acquire_64(&self._shards[i].dead_lettered)
                         + cm_atomic_load_acquire_64(&self._shards[i].rejected))
        for i in range(self._n_shards):
            sent += cm_atomic_load_acquire_64(&self._shards[i].sent)
        return sent == outcomes and self._batch_len == 0

    # A shard's counters: its own thread reads them as they are; other
    # threads add to failed_origin, and delivered_all reads every shard's.

    cdef inline int64_t replies_received(self, int32_t shard) noexcept nogil:
        """Replies that reached the client on shard (on its own thread)."""
        return self._shards[shard].client_received

    cdef inline int64_t delivered(self, int32_t shard) noexcept nogil:
        """Messages handled on shard (on its own thread)."""
        return self._shards[shard].delivered

    cdef int64_t delivered_all(self) noexcept nogil:
        """Messages handled on every shard so far (workers may be counting)."""
        cdef int64_t total = 0
        cdef int32_t i
        for i in range(self._n_shards):
            total += cm_atomic_load_acquire_64(&self._shards[i].delivered)
        return total

    cdef inline int64_t failed_from(self, int32_t shard) noexcept nogil:
        """Exchanges begun on shard that ended as dead letters, on any thread."""
        return cm_atomic_load_64(&self._shards[shard].failed_origin)

    cdef int64_t sent_all(self) noexcept nogil:
        """Every send so far, on every shard: requests, replies, forwards."""
        cdef int64_t total = 0
        cdef int32_t i
        for i in range(self._n_shards):
            total += cm_atomic_load_acquire_64(&self._shards[i].sent)
        return total

    cdef Histogram snapshot(self, int which, int32_t shard):
        """A copy of shard's histogram which (HIST_*), or with ALL_SHARDS,
        of every shard's merged."""
        cdef Histogram h = Histogram(1, _LATENCY_HIGHEST, self._significant_figures)
        cdef int32_t i
        for i in range(self._n_shards):
            if shard == ALL_SHARDS or shard == i:
                hdr_add_same_layout(&h._h, _shard_histogram(&self._shards[i], which))
        return h

    # -- agents ---------------------------------------------------------------------------

    cdef int32_t _new_agent(self, int32_t kind, int64_t param, int32_t pyslot) except -1:
        cdef int32_t aid = self._n_agents
        cdef cm_agent *a
        if self._threaded:
            raise RuntimeError("spawn: cannot spawn while the router's workers run")
        self._grow_agents(<int64_t>aid + 1)
        a = &self._agents[aid]
        memset(a, 0, sizeof(cm_agent))
        a.kind = kind
        a.param = param
        a.pyslot = pyslot
        a.state = STATE_READY
        a.shard = agent_home_shard(kind, aid, self._workers)
        if self._per_agent:
            a.hists = <cm_hdr *>calloc(2, sizeof(cm_hdr))
            if (a.hists == NULL or hdr_init(&a.hists[0], 1, _LATENCY_HIGHEST, 2)
                    or hdr_init(&a.hists[1], 1, _LATENCY_HIGHEST, 2)):
                _free_hists(a)
                raise MemoryError("spawn: cannot allocate the agent's histograms")
        self._n_agents += 1
        return aid

    cdef _register(self, object ids, capabilities):
        if isinstance(capabilities, str):
            capabilities = (capabilities,)
        for cap in capabilities:
            if not isinstance(cap, str) or not cap:
                raise ValueError(f"spawn: a capability must be a non-empty str, got {cap!r}")
            self._capabilities.setdefault(cap, []).extend(ids)

    def spawn_native(self, kind, *, count=1, capabilities=(), units=1000, target=None, every=None):
        """Spawn ``count`` native agents of ``kind``: "echo" (replies with
        the content), "sink" (consumes), "forward" (relays each message to
        agent ``target``; the reply goes straight back to the origin),
        "compute" (``units`` of deterministic CPU work, replies with the
        8-byte result) or "fail-every-n" (echo, but faults on every
        ``every``-th message since its last restart).  Returns the agent id,
        or a list of ids when count > 1."""
        if self._threaded:
            raise RuntimeError("spawn: cannot spawn while the router's workers run")
        code = _NATIVE_KINDS.get(kind)
        if code is None:
            raise ValueError(f"spawn_native: unknown kind {kind!r}; expected one of "
                             + ", ".join(_NATIVE_KINDS))
        n = _index(count)
        if n < 1:
            raise ValueError(f"spawn_native: count must be >= 1, got {n}")
        cdef int64_t param = native_param(self, code, units, target, every)
        self._grow_agents(<int64_t>self._n_agents + n)
        cdef int32_t first = self._n_agents, aid
        cdef int64_t t0, t1
        cdef Py_ssize_t i
        t1 = cm_now_ns()
        for i in range(n):
            t0 = t1
            aid = self._new_agent(code, param, -1)
            t1 = cm_now_ns()
            self._agents[aid].spawn_ns = t1 - t0
            hdr_record_or_overflow(&self._spawn_time._h, t1 - t0, 1)
        ids = range(first, first + n)
        self._register(ids, capabilities)
        return first if n == 1 and count == 1 else list(ids)

    def spawn_wasm(self, module, *, count=1, capabilities=(), units=None):
        """Spawn ``count`` WebAssembly agents of ``module`` (a WasmModule):
        each has its own Store (memory cap, epoch deadline, fuel) and runs on
        the router's workers like a native agent.  ``units`` is passed to the
        module's ``cm_set_param`` (the compute agent's work).  A trap is a
        fault: the message is dead-lettered with the trap's kind and a fresh
        instance takes over.  Returns the id, or a list when count > 1."""
        if self._threaded:
            raise RuntimeError("spawn: cannot spawn while the router's workers run")
        if not isinstance(module, WasmModule):
            raise TypeError(f"spawn_wasm: module must be a WasmModule, got {type(module).__name__}")
        n = _index(count)
        if n < 1:
            raise ValueError(f"spawn_wasm: count must be >= 1, got {n}")
        cdef int64_t param = 0
        if units is not None:
            param = _index(units)
            if param < 0:
                raise ValueError(f"spawn_wasm: units must be >= 0, got {param}")
        cdef cm_wasm_module *m = (<WasmModule>module)._m
        cdef cm_wasm_instance *inst
        cdef int32_t first = self._n_agents, aid
        cdef int64_t t0
        cdef Py_ssize_t i
        self._grow_agents(<int64_t>self._n_agents + n)
        for i in range(n):
            t0 = cm_now_ns()
            inst = wasm_instance_new(m, param, units is not None)
            aid = self._new_agent(KIND_WASM, param, -1)
            self._agents[aid].wasm = inst
            self._agents[aid].spawn_ns = cm_now_ns() - t0
            hdr_record_or_overflow(&self._spawn_time._h, self._agents[aid].spawn_ns, 1)
        ids = range(first, first + n)
        self._register(ids, capabilities)
        return first if n == 1 and count == 1 else list(ids)

    def spawn_python(self, agent, *, count=1, capabilities=()):
        """Spawn Python agents.  ``agent`` is a callable or an object with
        ``handle(message)``; it returns bytes-like content to reply with, or
        None.  A class (or any type) is a factory: each agent gets its own
        instance, and a fresh one when it restarts after a fault.  Otherwise
        the same object serves, and its ``restart()`` method, if it has one,
        is called on a restart.  Returns the id, or a list when count > 1."""
        if self._threaded:
            raise RuntimeError("spawn: cannot spawn while the router's workers run")
        n = _index(count)
        if n < 1:
            raise ValueError(f"spawn_python: count must be >= 1, got {n}")
        factory = agent if isinstance(agent, type) else None
        if factory is None and getattr(agent, "handle", None) is None and not callable(agent):
            raise TypeError(f"spawn_python: an agent must be callable or have handle(message); "
                            f"got {type(agent).__name__}")
        cdef int32_t first = self._n_agents, aid
        cdef int64_t t0
        cdef Py_ssize_t i
        for i in range(n):
            t0 = cm_now_ns()
            self._py_agents.append([None, factory, agent])
            try:
                python_instance_fresh(self, <int32_t>(len(self._py_agents) - 1), False)
            except BaseException:
                self._py_agents.pop()
                raise
            aid = self._new_agent(KIND_PYTHON, 0, <int32_t>(len(self._py_agents) - 1))
            self._agents[aid].spawn_ns = cm_now_ns() - t0
            hdr_record_or_overflow(&self._spawn_time._h, self._agents[aid].spawn_ns, 1)
        ids = range(first, first + n)
        self._register(ids, capabilities)
        return first if n == 1 and count == 1 else list(ids)

    def stop(self, agents):
        """Stop an agent (an id) or several (an iterable of ids).  Messages
        still in their mailboxes are dead-lettered ("receiver stopped")."""
        if self._threaded:
            raise RuntimeError("stop: cannot stop agents while the router's workers run")
        ids = [agents] if isinstance(agents, int) else list(agents)
        for aid in ids:
            self._check_agent(aid, "stop")
        for aid in ids:
            if self._agents[aid].state == STATE_READY:
                agent_stop(self, aid, DL_STOPPED)

    cdef _check_agent(self, aid, str what):
        aid = _index(aid)
        if not 1 <= aid < self._n_agents:
            raise ValueError(f"{what}: no agent {aid} (agents are 1..{self._n_agents - 1})")
        return aid

    def checkpoint(self, aid):
        """Capture agent ``aid``'s state: a Checkpoint holding the state, its
        size in bytes and the time taken.  Native agents' state is their
        message counter; a Python agent's is what its ``checkpoint()`` method
        returns (bytes-like), and an agent without one cannot be
        checkpointed (TypeError)."""
        aid = self._check_agent(aid, "checkpoint")
        cdef cm_agent *a = &self._agents[<int32_t>aid]
        if a.state != STATE_READY:
            raise ValueError(f"checkpoint: agent {aid} is stopped")
        cdef int64_t t0 = cm_now_ns()
        state = agent_checkpoint(self, aid)
        cdef Checkpoint c = Checkpoint.__new__(Checkpoint)
        c.agent = aid
        c.kind = _KIND_NAMES.get(self._agents[<int32_t>aid].kind, "?")   # the array may have moved
        c.state = state
        c.elapsed_ns = cm_now_ns() - t0
        return c

    def restore(self, aid, Checkpoint checkpoint not None):
        """Put a checkpointed state back into agent ``aid`` (of the same
        kind); returns the time taken in ns."""
        aid = self._check_agent(aid, "restore")
        cdef cm_agent *a = &self._agents[<int32_t>aid]
        kind = _KIND_NAMES.get(a.kind, "?")
        if a.state != STATE_READY:
            raise ValueError(f"restore: agent {aid} is stopped")
        if kind != checkpoint.kind:
            raise ValueError(f"restore: the checkpoint is of a {checkpoint.kind} agent; "
                             f"agent {aid} is {kind}")
        cdef int64_t t0 = cm_now_ns()
        agent_restore(self, aid, checkpoint.state)
        return cm_now_ns() - t0

    def agent_histograms(self, aid):
        """Agent ``aid``'s (queue_time, handling_time) histograms, in ns (a
        snapshot); needs ``per_agent_histograms=True``."""
        aid = self._check_agent(aid, "agent_histograms")
        if not self._per_agent:
            raise ValueError("agent_histograms: the router keeps no per-agent histograms "
                             "(Router(per_agent_histograms=True))")
        cdef cm_agent *a = &self._agents[<int32_t>aid]
        out = []
        cdef Histogram h
        for k in range(2):
            h = Histogram(1, _LATENCY_HIGHEST, 2)
            hdr_add_same_layout(&h._h, &a.hists[k])
            out.append(h)
        return tuple(out)

    def agent(self, aid):
        """What the router knows of agent ``aid``."""
        aid = self._check_agent(aid, "agent")
        cdef cm_agent *a = &self._agents[<int32_t>aid]
        cdef AgentInfo info = AgentInfo.__new__(AgentInfo)
        info.id = aid
        info.kind = _KIND_NAMES.get(a.kind, "?")
        info.state = {STATE_READY: "ready", STATE_STOPPED: "stopped"}.get(a.state, "?")
        info.handled = a.handled
        info.faults = a.faults
        info.restarts = a.restarts
        info.mailbox = a.count
        info.mailbox_allocated = a.ring_cap
        return info

    @property
    def agent_count(self):
        """Agents spawned (stopped ones included)."""
        return self._n_agents - 1

    def capability(self, name):
        """The ids of the live agents registered with capability ``name``."""
        return [aid for aid in self._capabilities.get(name, ())
                if self._agents[<int32_t>aid].state == STATE_READY]

    # -- the client's side ---------------------------------------------------------------------

    cdef list _resolve(self, to, str strategy):
        """The receivers of a send: an agent id, or a capability by strategy."""
        if isinstance(to, str):
            members = self.capability(to)
            if not members:
                if to not in self._capabilities:
                    raise RoutingError(f"send: no agent has capability {to!r}; known: "
                                       + (", ".join(sorted(self._capabilities)) or "none"))
                raise RoutingError(f"send: every agent with capability {to!r} is stopped")
            if strategy == "single":
                return members[:1]
            if strategy == "round_robin":
                cursor = self._rr.get(to, 0)
                self._rr[to] = cursor + 1
                return [members[cursor % len(members)]]
            if strategy == "broadcast":
                return members
            raise ValueError(f"send: unknown strategy {strategy!r}; expected 'single', "
                             "'round_robin' or 'broadcast'")
        if isinstance(to, bool):
            raise TypeError("send: to must be an agent id (int) or a capability (str), got bool")
        try:
            aid = _index(to)
        except TypeError:
            raise TypeError(f"send: to must be an agent id (int) or a capability (str), "
                            f"got {type(to).__name__}") from None
        if self._raise_on_unknown and not (1 <= aid < self._n_agents
                                           and self._agents[<int32_t>aid].state == STATE_READY):
            raise RoutingError(f"send: no live agent {aid}")
        return [aid]

    def send(self, to, content=b"", *, performative="request", conversation_id=0, reply_with=0,
             strategy="single"):
        """Send a message from the client to agent ``to`` (an id) or to the
        agents with capability ``to`` (a str) by ``strategy``: "single" (the
        first live one), "round_robin" or "broadcast".  Content is any
        bytes-like object (copied once; agents then share it).  Returns the
        message id, None when the mailbox was full (on_full="reject"), or a
        list of those for a broadcast."""
        cdef int perf = _performative_code(performative)
        cdef const unsigned char[::1] view
        if isinstance(content, str):
            raise TypeError("send: content must be bytes-like, got str (encode it)")
        try:
            view = content
        except (TypeError, ValueError, BufferError):
            raise TypeError(f"send: content must be bytes-like, got {type(content).__name__}") from None
        self.check_content(view.shape[0], "send")
        cdef int64_t conv = _index(conversation_id), rw = _index(reply_with)
        receivers = self._resolve(to, strategy)
        cdef cm_buf *buf = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
        if buf == NULL:
            raise MemoryError("send: cannot allocate the content")
        cdef cm_msg m
        cdef int64_t now = cm_now_ns()
        cdef int rc
        ids = []
        try:
            for r in receivers:
                msg_init(&m, self._new_id(&self._shards[0]), CLIENT,
                         <int32_t>r if -1 <= r <= INT32_MAX_AGENTS else -1, perf, buf_ref(buf),
                         conv, rw, 0, now, now, 0, 0)
                if self._raise_on_full and 1 <= r < self._n_agents:
                    if self._full(<int32_t>r):
                        buf_unref(m.content)
                        _inc(&self._shards[0].sent, 1)
                        _inc(&self._shards[0].rejected, 1)
                        raise BackpressureError(f"send: agent {r}'s mailbox is full "
                                                f"({self._mailbox_capacity} messages)")
                rc = self._submit(&m, now)
                ids.append(m.id if rc != SEND_REJECTED else None)
        finally:
            buf_unref(buf)
        return ids if isinstance(to, str) and strategy == "broadcast" else ids[0]

    cdef bint _full(self, int32_t aid) noexcept:
        cdef cm_agent *a = &self._agents[aid]
        return a.state == STATE_READY and a.count >= self._mailbox_capacity

    def run(self, max_messages=None):
        """Handle messages until every mailbox is empty (or ``max_messages``
        were handled); returns how many were handled."""
        cdef int64_t limit = INT64_MAX if max_messages is None else _index(max_messages)
        if limit < 0:
            raise ValueError(f"run: max_messages must be >= 0, got {limit}")
        if self._workers and max_messages is not None:
            raise ValueError("run: max_messages needs workers=0 (with worker threads, run() "
                             "runs until nothing is left)")
        self.enter_load("run")
        try:
            if not self._workers:
                return self._run(&self._shards[0], limit)
            return self._run_threaded()
        finally:
            self.leave_load()

    cdef int64_t _outcomes(self) noexcept nogil:
        cdef int64_t n = 0
        cdef int32_t i
        for i in range(self._n_shards):
            n += (cm_atomic_load_acquire_64(&self._shards[i].delivered)
                  + cm_atomic_load_acquire_64(&self._shards[i].dead_lettered)
                  + cm_atomic_load_acquire_64(&self._shards[i].rejected))
        return n

    cdef int64_t _run_threaded(self) except -1:
        """Workers (started by enter_load) run the native agents; this
        thread runs shard 0 (the Python agents, the client's inbox) until
        nothing is in flight."""
        cdef int64_t before = self._outcomes()
        cdef cm_shard *sh = &self._shards[0]
        while True:
            if self._run(sh, 4096) == 0:
                if self.quiescent():
                    break
                with nogil:                   # the workers do not need the GIL
                    cm_sleep_ns(20000)
        return self._outcomes() - before

    def flush(self):
        """Deliver the batched client sends now; returns how many."""
        cdef int64_t n = self._batch_len
        self._flush(cm_now_ns())
        return n

    @property
    def flushes(self):
        """How many batches the MessageBatcher delivered."""
        return self._flushes

    def receive(self):
        """The oldest message an agent sent to the client, or None."""
        if self._inbox_count == 0:
            return None
        cdef cm_msg m = self._inbox[self._inbox_head]
        self._inbox_head = (self._inbox_head + 1) % self._inbox_cap
        self._inbox_count -= 1
        cdef Message msg = Message.__new__(Message)
        msg._m = m                     # the inbox's reference moves to msg
        return msg

    def request(self, to, content=b"", *, performative="request", conversation_id=0):
        """Send to ``to``, run until idle, and return the reply (a Message),
        or None when no reply came (then see dead_letters())."""
        if not self._keep_replies:
            raise RuntimeError("request: the router does not keep replies (keep_replies=False)")
        mid = self.send(to, content, performative=performative, conversation_id=conversation_id)
        self.run()
        found = None
        kept = []
        while True:
            msg = self.receive()
            if msg is None:
                break
            if found is None and msg.in_reply_to == mid:
                found = msg
            else:
                kept.append(msg)
        for msg in kept:               # others stay, in order
            self._to_inbox(&(<Message>msg)._m)
            buf_ref((<Message>msg)._m.content)
        return found

    # -- what was measured -------------------------------------------------------------------

    @property
    def counts(self):
        cdef RouterCounts c = RouterCounts.__new__(RouterCounts)
        cdef int32_t i
        cdef cm_shard *sh
        for i in range(self._n_shards):
            sh = &self._shards[i]
            c.sent += sh.sent
            c.delivered += sh.delivered
            c.dead_lettered += sh.dead_lettered
            c.rejected += sh.rejected
            c.restarts += sh.restarts
        c.in_flight = c.sent - c.delivered - c.dead_lettered - c.rejected
        return c

    def dead_letters(self):
        """Every message the router could not deliver, oldest first, with
        its reason (rejected sends appear with reason "mailbox full")."""
        out = []
        cdef int64_t k
        cdef int32_t i
        cdef DeadLetter d
        cdef cm_dead_letter *dl
        for i in range(self._n_shards):
            for k in range(self._shards[i].dead_count):
                dl = &self._shards[i].dead[k]
                d = DeadLetter.__new__(DeadLetter)
                d.message = _message_from(&dl.msg)
                reason = _REASONS.get(dl.reason, "?")
                if dl.detail >= 0:
                    reason += ": " + self._py_texts[dl.detail]
                elif dl.detail <= -100:
                    reason += ": " + cm_wasm_kind_name(-dl.detail - 100).decode("ascii", "replace")
                elif dl.reason == DL_FAULT:
                    aid = dl.msg.receiver
                    reason += f": {_KIND_NAMES.get(self._agents[aid].kind, '?')} agent {aid} faulted"
                d.reason = reason
                d.at_ns = dl.at_ns
                out.append(d)
        if self._n_shards > 1:
            out.sort(key=lambda dead: dead.at_ns)
        return out

    @property
    def round_trip(self):
        """Request sent -> reply delivered to the client, ns (a snapshot)."""
        return self.snapshot(HIST_ROUND_TRIP, ALL_SHARDS)

    @property
    def round_trip_uncorrected(self):
        """The round trip from each request's real send, where round_trip
        counts from its intended send: the two differ when a paced sender
        lagged (coordinated omission), ns (a snapshot)."""
        return self.snapshot(HIST_ROUND_TRIP_UNCORRECTED, ALL_SHARDS)

    @property
    def delivery(self):
        """Exchange start -> handled by the receiving agent, ns, each hop (a snapshot)."""
        return self.snapshot(HIST_DELIVERY, ALL_SHARDS)

    @property
    def queue_time(self):
        """Time messages waited in mailboxes, ns (a snapshot)."""
        return self.snapshot(HIST_QUEUE_TIME, ALL_SHARDS)

    @property
    def handling_time(self):
        """Time agents spent handling a message, ns (a snapshot)."""
        return self.snapshot(HIST_HANDLING_TIME, ALL_SHARDS)

    @property
    def recovery_time(self):
        """Fault -> agent ready again, ns (a snapshot)."""
        return self.snapshot(HIST_RECOVERY_TIME, ALL_SHARDS)

    @property
    def workers(self):
        return self._workers

    @property
    def spawn_time(self):
        """Time to spawn each agent, ns."""
        return self._spawn_time
