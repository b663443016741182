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


# --- agent kinds, states, reasons

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

cdef dict _REASONS = {
    DL_UNKNOWN_RECEIVER: "unknown receiver",
    DL_STOPPED: "receiver stopped",
    DL_FAULT: "agent fault",
    DL_BAD_REPLY: "bad reply",
    DL_TOO_LARGE: "content too large",
    DL_MAILBOX_FULL: "mailbox full",
}

cdef enum:
    CLIENT = 0           # the router's client: whoever sends from outside


class BackpressureError(RuntimeError):
    """A mailbox was full and the router is configured to raise."""


class RoutingError(ValueError):
    """A message could not be routed (unknown receiver, too large, ...)."""


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


# --- the router ---------------------------------------------------------------------

cdef enum:
    SEND_OK = 0
    SEND_REJECTED = -1
    SEND_DEAD = -2

cdef int64_t _LATENCY_HIGHEST = 3_600_000_000_000      # one hour in ns
cdef int64_t INT32_MAX_AGENTS = 2_147_483_646


cdef class Router:
    """An in-process message router with supervised agents.

    Router(*, mailbox_capacity=1024, on_full="reject", on_unknown="dead_letter",
           max_content=1 MiB, keep_replies=True, batch_size=64,
           significant_figures=3)

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
    - ``flush_size``, ``flush_timeout`` (seconds): the MessageBatcher.  With
      flush_size > 1 the client's sends wait in a batch that is delivered
      when it holds flush_size messages, when its oldest has waited
      flush_timeout, when the router has nothing else to do, or on flush().
      Latency counts from the send, so the batching delay shows in it.
    """

    cdef cm_agent *_agents
    cdef int32_t _n_agents
    cdef int32_t _agents_cap
    cdef int32_t *_runq
    cdef int64_t _runq_head
    cdef int64_t _runq_count
    cdef int64_t _runq_cap
    cdef cm_msg *_inbox            # the client's received messages
    cdef int64_t _inbox_head
    cdef int64_t _inbox_count
    cdef int64_t _inbox_cap
    cdef cm_dead_letter *_dead
    cdef int64_t _dead_count
    cdef int64_t _dead_cap
    cdef int64_t _sent
    cdef int64_t _delivered
    cdef int64_t _dead_lettered
    cdef int64_t _rejected
    cdef int64_t _next_id
    cdef int64_t _restarts
    cdef uint32_t _mailbox_capacity
    cdef int64_t _max_content
    cdef int32_t _batch
    cdef bint _raise_on_full
    cdef bint _raise_on_unknown
    cdef bint _keep_replies
    cdef Histogram _round_trip
    cdef Histogram _delivery
    cdef Histogram _queue_time
    cdef Histogram _handling_time
    cdef Histogram _recovery_time
    cdef Histogram _spawn_time
    cdef list _py_agents           # per Python agent: [handler, factory, instance]
    cdef list _py_texts            # dead-letter details from Python
    cdef dict _capabilities        # name -> list of agent ids
    cdef dict _rr                  # name -> round-robin cursor
    cdef bint _running             # inside run(): handlers may send, not run
    cdef bint _discard_replies     # a load loop counts replies, it does not keep them
    cdef int64_t _client_received
    cdef cm_msg *_batch_buf        # the MessageBatcher's pending client sends
    cdef int64_t _batch_len
    cdef int64_t _batch_first_ns
    cdef int64_t _flush_size
    cdef int64_t _flush_timeout
    cdef int64_t _flushes

    def __cinit__(self, *, mailbox_capacity=1024, on_full="reject", on_unknown="dead_letter",
                  max_content=1 << 20, keep_replies=True, batch_size=64, significant_figures=3,
                  flush_size=1, flush_timeout=0.0):
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
        self._round_trip = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._delivery = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._queue_time = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._handling_time = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._recovery_time = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._spawn_time = Histogram(1, _LATENCY_HIGHEST, significant_figures)
        self._py_agents = []
        self._py_texts = []
        self._capabilities = {}
        self._rr = {}
        # agent 0 is the client: a slot that is never an agent
        self._grow_agents(16)
        self._n_agents = 1
        self._next_id = 0

    def __dealloc__(self):
        cdef int64_t i, k
        cdef cm_agent *a
        if self._agents != NULL:
            for i in range(self._n_agents):
                a = &self._agents[i]
                for k in range(a.count):
                    buf_unref(a.ring[(a.head + k) % a.ring_cap].content)
                free(a.ring)
            free(self._agents)
        for k in range(self._inbox_count):
            buf_unref(self._inbox[(self._inbox_head + k) % self._inbox_cap].content)
        free(self._inbox)
        for k in range(self._dead_count):
            buf_unref(self._dead[k].msg.content)
        free(self._dead)
        free(self._runq)
        for k in range(self._batch_len):
            buf_unref(self._batch_buf[k].content)
        free(self._batch_buf)

    # -- storage -----------------------------------------------------------------

    cdef int _grow_agents(self, int64_t need) except -1:
        cdef int64_t cap = self._agents_cap if self._agents_cap else 16
        cdef cm_agent *grown
        if need <= self._agents_cap:
            return 0
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

    cdef bint _schedule(self, int32_t aid) noexcept nogil:
        cdef int32_t *grown
        cdef int64_t cap, k
        if self._runq_count == self._runq_cap:
            cap = self._runq_cap * 2 if self._runq_cap else 64
            grown = <int32_t *>malloc(cap * sizeof(int32_t))
            if grown == NULL:
                return 0
            for k in range(self._runq_count):
                grown[k] = self._runq[(self._runq_head + k) % self._runq_cap]
            free(self._runq)
            self._runq = grown
            self._runq_cap = cap
            self._runq_head = 0
        self._runq[(self._runq_head + self._runq_count) % self._runq_cap] = aid
        self._runq_count += 1
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

    cdef void _dead_letter(self, cm_msg *m, int32_t reason, int32_t detail, bint rejected) noexcept nogil:
        """Keep m (and its content reference) as a dead letter."""
        cdef cm_dead_letter *grown
        cdef int64_t cap
        if rejected:
            self._rejected += 1
        else:
            self._dead_lettered += 1
        if self._dead_count == self._dead_cap:
            cap = self._dead_cap * 2 if self._dead_cap else 64
            grown = <cm_dead_letter *>realloc(self._dead, cap * sizeof(cm_dead_letter))
            if grown == NULL:       # counted above; only the record is lost
                buf_unref(m.content)
                return
            self._dead = grown
            self._dead_cap = cap
        self._dead[self._dead_count].msg = m[0]
        self._dead[self._dead_count].at_ns = cm_now_ns()
        self._dead[self._dead_count].reason = reason
        self._dead[self._dead_count].detail = detail
        self._dead_count += 1

    # -- sending --------------------------------------------------------------------

    cdef int _enqueue(self, cm_msg *m, int64_t now) noexcept nogil:
        """Put m (owning its content reference) where it goes; counts it as
        sent and as exactly one outcome.  Returns SEND_OK, SEND_REJECTED or
        SEND_DEAD (the message is then in the dead letters)."""
        self._sent += 1
        return self._deliver(m, now)

    cdef int _submit(self, cm_msg *m, int64_t now) noexcept nogil:
        """A client send: through the batcher when batching is on (the
        message counts as sent, and in flight until its batch is flushed),
        else straight to _enqueue."""
        if self._flush_size <= 1:
            return self._enqueue(m, now)
        if self._batch_len == 0:
            self._batch_first_ns = now
        self._sent += 1
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
            self._deliver(&self._batch_buf[k], now)
        if n:
            self._flushes += 1

    cdef inline void _flush_due(self, int64_t now) noexcept nogil:
        """Flush when the oldest batched send has waited flush_timeout, or
        when nothing else is left to do (a batch never waits on an idle
        router)."""
        if self._batch_len and (self._runq_count == 0 or (
                self._flush_timeout > 0 and now - self._batch_first_ns >= self._flush_timeout)):
            self._flush(now)

    cdef int _deliver(self, cm_msg *m, int64_t now) noexcept nogil:
        cdef int32_t r = m.receiver
        cdef cm_agent *a
        m.enqueued_ns = now
        if r == CLIENT:
            self._delivered += 1
            self._client_received += 1
            if m.in_reply_to != 0:
                hdr_record_or_overflow(&self._round_trip._h, now - m.origin_ns, 1)
            if self._keep_replies and not self._discard_replies and self._to_inbox(m):
                return SEND_OK
            buf_unref(m.content)
            return SEND_OK
        if r < 0 or r >= self._n_agents or self._agents[r].state == STATE_FREE:
            self._dead_letter(m, DL_UNKNOWN_RECEIVER, -1, False)
            return SEND_DEAD
        a = &self._agents[r]
        if a.state != STATE_READY:
            self._dead_letter(m, DL_STOPPED, -1, False)
            return SEND_DEAD
        if a.count == a.ring_cap and not self._grow_ring(a):
            self._dead_letter(m, DL_MAILBOX_FULL, -1, True)
            return SEND_REJECTED
        a.ring[(a.head + a.count) % a.ring_cap] = m[0]
        a.count += 1
        if not a.scheduled:
            a.scheduled = 1
            self._schedule(r)
        return SEND_OK

    cdef inline int64_t _new_id(self) noexcept nogil:
        self._next_id += 1
        return self._next_id

    cdef void _reply(self, int32_t aid, cm_msg *req, cm_buf *content, int32_t performative,
                     int64_t now) noexcept nogil:
        """Send content (a reference the caller gives up) back to req's sender."""
        cdef cm_msg r
        r.id = self._new_id()
        r.conversation_id = req.conversation_id
        r.reply_with = 0
        r.in_reply_to = req.reply_with if req.reply_with != 0 else req.id
        r.origin_ns = req.origin_ns
        r.content = content
        r.sender = aid
        r.receiver = req.sender
        r.performative = performative
        r.hops = req.hops + 1
        if content != NULL and content.length > self._max_content:
            self._sent += 1
            self._dead_letter(&r, DL_TOO_LARGE, -1, False)
            return
        self._enqueue(&r, now)

    # -- handling ---------------------------------------------------------------------

    cdef int _handle(self, int32_t aid, cm_msg *m) except -1:
        """Handle one message taken from agent aid's mailbox (owning its
        content reference).  Returns 1 when the agent faulted."""
        cdef cm_agent *a = &self._agents[aid]
        cdef int64_t t0 = cm_now_ns(), t1
        cdef uint64_t result
        cdef int32_t target
        cdef bint fault = 0
        hdr_record_or_overflow(&self._queue_time._h, t0 - m.enqueued_ns, 1)
        a.counter += 1
        if a.kind == KIND_ECHO:
            t1 = cm_now_ns()
            self._reply(aid, m, m.content, PERF_INFORM, t1)
            m.content = NULL
        elif a.kind == KIND_SINK:
            t1 = cm_now_ns()
        elif a.kind == KIND_FORWARD:
            t1 = cm_now_ns()
            target = <int32_t>a.param
            if m.reply_with == 0:
                m.reply_with = m.id       # the reply still answers the original request
            m.id = self._new_id()
            m.receiver = target
            m.hops += 1
            self._delivered += 1          # this hop is done; the forward is a new send
            a.handled += 1
            hdr_record_or_overflow(&self._handling_time._h, t1 - t0, 1)
            hdr_record_or_overflow(&self._delivery._h, t1 - m.origin_ns, 1)
            self._enqueue(m, t1)
            return 0
        elif a.kind == KIND_COMPUTE:
            result = compute_work(_content_seed(m.content), a.param)
            t1 = cm_now_ns()
            self._reply(aid, m, buf_new(<char *>&result, 8), PERF_INFORM, t1)
        elif a.kind == KIND_FAIL_EVERY_N:
            t1 = cm_now_ns()
            if a.counter % a.param == 0:
                fault = 1
            else:
                self._reply(aid, m, m.content, PERF_INFORM, t1)
                m.content = NULL
        elif a.kind == KIND_PYTHON:
            return self._handle_python(aid, m, t0)
        else:
            t1 = cm_now_ns()
            fault = 1
        if fault:
            self._fault(aid, m, DL_FAULT, -1, t1)
            return 1
        a.handled += 1
        self._delivered += 1
        hdr_record_or_overflow(&self._handling_time._h, t1 - t0, 1)
        hdr_record_or_overflow(&self._delivery._h, t1 - m.origin_ns, 1)
        buf_unref(m.content)
        return 0

    cdef void _fault(self, int32_t aid, cm_msg *m, int32_t reason, int32_t detail, int64_t t_fault) noexcept:
        """The agent faulted on m: m becomes a dead letter, the agent is
        restarted with a fresh instance and the recovery time recorded."""
        cdef cm_agent *a = &self._agents[aid]
        a.faults += 1
        self._dead_letter(m, reason, detail, False)
        self._restart(aid)
        hdr_record_or_overflow(&self._recovery_time._h, cm_now_ns() - t_fault, 1)

    cdef void _restart(self, int32_t aid) noexcept:
        cdef cm_agent *a = &self._agents[aid]
        a.counter = 0
        a.restarts += 1
        self._restarts += 1
        if a.kind == KIND_PYTHON:
            try:
                self._fresh_python_instance(a.pyslot, True)
            except BaseException as e:
                # The factory failed: the agent cannot be ready again.
                self._stop_agent(aid, DL_STOPPED)
                self._py_texts.append(f"restart failed: {type(e).__name__}: {e}")

    cdef int _handle_python(self, int32_t aid, cm_msg *m, int64_t t0) except -1:
        cdef list slot = <list>self._py_agents[self._agents[aid].pyslot]
        cdef Message msg = _message_from(m)
        cdef int64_t t1
        cdef object reply
        cdef cm_buf *content
        cdef const unsigned char[::1] view
        cdef cm_agent *a
        try:
            reply = slot[0](msg)
        except BaseException as e:
            t1 = cm_now_ns()
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                # not the agent's fault: put the message back and stop the run
                self._dead_letter(m, DL_FAULT, self._text(f"interrupted: {type(e).__name__}"), False)
                raise
            self._fault(aid, m, DL_FAULT, self._text(f"{type(e).__name__}: {e}"), t1)
            return 1
        t1 = cm_now_ns()
        if type(reply) is Message:
            # replying with a message (the request itself, say) shares its
            # content: no copy
            self._reply(aid, m, buf_ref((<Message>reply)._m.content), PERF_INFORM, t1)
        elif reply is not None:
            try:
                view = reply
            except (TypeError, ValueError, BufferError):
                self._dead_letter(m, DL_BAD_REPLY, self._text(
                    f"python agent {aid} returned {type(reply).__name__}; expected bytes-like "
                    "content or None" + (" (encode the str)" if isinstance(reply, str) else "")), False)
                self._agents[aid].handled += 1
                return 0
            content = buf_new(<const char *>&view[0] if view.shape[0] else NULL, view.shape[0])
            self._reply(aid, m, content, PERF_INFORM, t1)
        a = &self._agents[aid]       # handlers may spawn agents: the array may have moved
        a.handled += 1
        self._delivered += 1
        hdr_record_or_overflow(&self._handling_time._h, t1 - t0, 1)
        hdr_record_or_overflow(&self._delivery._h, t1 - m.origin_ns, 1)
        buf_unref(m.content)
        return 0

    cdef int32_t _text(self, str text) except -2:
        self._py_texts.append(text)
        return <int32_t>(len(self._py_texts) - 1)

    cdef int64_t _run(self, int64_t limit) except -1:
        """Handle messages until no agent has any, or limit were handled."""
        cdef int64_t done = 0
        cdef int32_t aid, k, n
        cdef cm_agent *a
        cdef cm_msg m
        while done < limit:
            self._flush_due(cm_now_ns() if self._batch_len else 0)
            if self._runq_count == 0:
                break
            aid = self._runq[self._runq_head]
            self._runq_head = (self._runq_head + 1) % self._runq_cap
            self._runq_count -= 1
            a = &self._agents[aid]
            n = <int32_t>min(<int64_t>a.count, <int64_t>self._batch, limit - done)
            for k in range(n):
                a = &self._agents[aid]
                if a.state != STATE_READY or a.count == 0:
                    break
                m = a.ring[a.head]
                a.head = (a.head + 1) % a.ring_cap
                a.count -= 1
                self._handle(aid, &m)
                done += 1
            a = &self._agents[aid]
            if a.count and a.state == STATE_READY:
                self._schedule(aid)
            else:
                a.scheduled = 0
        return done

    # -- agents ---------------------------------------------------------------------------

    cdef int32_t _new_agent(self, int32_t kind, int64_t param, int32_t pyslot) except -1:
        cdef int32_t aid = self._n_agents
        cdef cm_agent *a
        self._grow_agents(<int64_t>aid + 1)
        a = &self._agents[aid]
        memset(a, 0, sizeof(cm_agent))
        a.kind = kind
        a.param = param
        a.pyslot = pyslot
        a.state = STATE_READY
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
        code = _NATIVE_KINDS.get(kind)
        if code is None:
            raise ValueError(f"spawn_native: unknown kind {kind!r}; expected one of "
                             + ", ".join(_NATIVE_KINDS))
        n = _index(count)
        if n < 1:
            raise ValueError(f"spawn_native: count must be >= 1, got {n}")
        cdef int64_t param = 0
        if code == KIND_COMPUTE:
            param = _index(units)
            if param < 0:
                raise ValueError(f"spawn_native: units must be >= 0, got {param}")
        elif code == KIND_FORWARD:
            if target is None:
                raise ValueError("spawn_native: a forward agent needs target= (an agent id)")
            param = _index(target)
            if not 1 <= param < self._n_agents or self._agents[param].state != STATE_READY:
                raise ValueError(f"spawn_native: forward target {param} is not a live agent")
        elif code == KIND_FAIL_EVERY_N:
            if every is None:
                raise ValueError("spawn_native: a fail-every-n agent needs every= (>= 1)")
            param = _index(every)
            if param < 1:
                raise ValueError(f"spawn_native: every must be >= 1, got {param}")
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

    cdef _fresh_python_instance(self, int32_t pyslot, bint restarting):
        cdef list slot = <list>self._py_agents[pyslot]
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

    def spawn_python(self, agent, *, count=1, capabilities=()):
        """Spawn Python agents.  ``agent`` is a callable or an object with
        ``handle(message)``; it returns bytes-like content to reply with, or
        None.  A class (or any type) is a factory: each agent gets its own
        instance, and a fresh one when it restarts after a fault.  Otherwise
        the same object serves, and its ``restart()`` method, if it has one,
        is called on a restart.  Returns the id, or a list when count > 1."""
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
                self._fresh_python_instance(len(self._py_agents) - 1, False)
            except BaseException:
                self._py_agents.pop()
                raise
            aid = self._new_agent(KIND_PYTHON, 0, <int32_t>(len(self._py_agents) - 1))
            self._agents[aid].spawn_ns = cm_now_ns() - t0
            hdr_record_or_overflow(&self._spawn_time._h, self._agents[aid].spawn_ns, 1)
        ids = range(first, first + n)
        self._register(ids, capabilities)
        return first if n == 1 and count == 1 else list(ids)

    cdef void _stop_agent(self, int32_t aid, int32_t reason) noexcept:
        cdef cm_agent *a = &self._agents[aid]
        cdef cm_msg m
        a.state = STATE_STOPPED
        while a.count:
            m = a.ring[a.head]
            a.head = (a.head + 1) % a.ring_cap
            a.count -= 1
            self._dead_letter(&m, reason, -1, False)
        free(a.ring)
        a.ring = NULL
        a.ring_cap = 0
        if a.kind == KIND_PYTHON and a.pyslot >= 0:
            self._py_agents[a.pyslot] = [None, None, None]

    def stop(self, agents):
        """Stop an agent (an id) or several (an iterable of ids).  Messages
        still in their mailboxes are dead-lettered ("receiver stopped")."""
        ids = [agents] if isinstance(agents, int) else list(agents)
        for aid in ids:
            self._check_agent(aid, "stop")
        for aid in ids:
            if self._agents[aid].state == STATE_READY:
                self._stop_agent(aid, DL_STOPPED)

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
        if a.kind == KIND_PYTHON:
            instance = (<list>self._py_agents[a.pyslot])[2]
            method = getattr(instance, "checkpoint", None)
            if method is None:
                raise TypeError(f"checkpoint: python agent {aid} ({type(instance).__name__}) has no "
                                "checkpoint() method")
            state = method()
            try:
                state = bytes(memoryview(state))
            except TypeError:
                raise TypeError(f"checkpoint: python agent {aid}'s checkpoint() returned "
                                f"{type(state).__name__}; expected bytes-like") from None
        else:
            state = a.counter.to_bytes(8, "little", signed=True)
        cdef Checkpoint c = Checkpoint.__new__(Checkpoint)
        c.agent = aid
        c.kind = _KIND_NAMES.get(a.kind, "?")
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
        if a.kind == KIND_PYTHON:
            instance = (<list>self._py_agents[a.pyslot])[2]
            method = getattr(instance, "restore", None)
            if method is None:
                raise TypeError(f"restore: python agent {aid} ({type(instance).__name__}) has no "
                                "restore(state) method")
            method(checkpoint.state)
        else:
            if len(checkpoint.state) != 8:
                raise ValueError(f"restore: a native agent's state is 8 bytes, got "
                                 f"{len(checkpoint.state)}")
            a.counter = int.from_bytes(checkpoint.state, "little", signed=True)
        return cm_now_ns() - t0

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
        if view.shape[0] > self._max_content:
            raise RoutingError(f"send: content of {view.shape[0]} bytes is larger than "
                               f"max_content {self._max_content}")
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
                m.id = self._new_id()
                m.conversation_id = conv
                m.reply_with = rw
                m.in_reply_to = 0
                m.origin_ns = now
                m.content = buf_ref(buf)
                m.sender = CLIENT
                m.receiver = <int32_t>r if -1 <= r <= INT32_MAX_AGENTS else -1
                m.performative = perf
                m.hops = 0
                if self._raise_on_full and 1 <= r < self._n_agents:
                    if self._full(<int32_t>r):
                        buf_unref(m.content)
                        self._sent += 1
                        self._rejected += 1
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
        if self._running:
            raise RuntimeError("run: the router is already running (an agent cannot call run)")
        cdef int64_t limit = INT64_MAX if max_messages is None else _index(max_messages)
        if limit < 0:
            raise ValueError(f"run: max_messages must be >= 0, got {limit}")
        self._running = 1
        try:
            return self._run(limit)
        finally:
            self._running = 0

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
        c.sent = self._sent
        c.delivered = self._delivered
        c.dead_lettered = self._dead_lettered
        c.rejected = self._rejected
        c.in_flight = self._sent - self._delivered - self._dead_lettered - self._rejected
        c.restarts = self._restarts
        return c

    def dead_letters(self):
        """Every message the router could not deliver, oldest first, with
        its reason (rejected sends appear with reason "mailbox full")."""
        out = []
        cdef int64_t k
        cdef DeadLetter d
        for k in range(self._dead_count):
            d = DeadLetter.__new__(DeadLetter)
            d.message = _message_from(&self._dead[k].msg)
            reason = _REASONS.get(self._dead[k].reason, "?")
            if self._dead[k].detail >= 0:
                reason += ": " + self._py_texts[self._dead[k].detail]
            elif self._dead[k].reason == DL_FAULT:
                aid = self._dead[k].msg.receiver
                reason += f": {_KIND_NAMES.get(self._agents[aid].kind, '?')} agent {aid} faulted"
            d.reason = reason
            d.at_ns = self._dead[k].at_ns
            out.append(d)
        return out

    @property
    def round_trip(self):
        """Request sent -> reply delivered to the client, ns."""
        return self._round_trip

    @property
    def delivery(self):
        """Exchange start -> handled by the receiving agent, ns, each hop."""
        return self._delivery

    @property
    def queue_time(self):
        """Time messages waited in mailboxes, ns."""
        return self._queue_time

    @property
    def handling_time(self):
        """Time agents spent handling a message, ns."""
        return self._handling_time

    @property
    def recovery_time(self):
        """Fault -> agent ready again, ns."""
        return self._recovery_time

    @property
    def spawn_time(self):
        """Time to spawn each agent, ns."""
        return self._spawn_time
