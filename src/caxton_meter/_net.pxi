# Network targets: a load loop over N TCP connections to a server on the
# loopback, run by one thread without the GIL (epoll, wrk's shape), paced by
# the open loop's arrival schedule (_load.pxi's cm_schedule) or closed (each
# connection sends again as soon as a reply is in).
#
# Each connection carries up to `depth` requests at once (1 unless HTTP is
# pipelined or WebSocket messages overlap), kept in a ring in the order sent;
# a reply answers the oldest, or (WebSocket correlation) the one whose id it
# carries.  A request due while no connection has room waits in a queue with
# its intended start kept, so the wait is in its latency; beyond max_queue
# the backlog is dropped at once and counted.  Invariants, checked at the end
# of every run:
#   planned == sent + dropped                 (the queue is empty at the end)
#   sent == completed + failed + in flight    (in flight is 0 unless Ctrl-C cut the drain)
# A connection is found by _conn_free exactly when it has room: an idle one
# in the free stack, one with requests on it but room for more in the room
# stack (each stack holds a connection at most once; an entry found full is
# passed over).  A failure of a connection is the failure of every request
# on it: what it carried next could belong to the failed one.
# The system calls are cm_net.h's; HTTP responses (and a WebSocket
# handshake's) are parsed by the vendored picohttpparser
# (includes/picohttpparser/, MIT); WebSocket frames (RFC 6455) here.


cdef enum:
    NET_HTTP = 0
    NET_LINE = 1          # replies end with b"\n"
    NET_LENGTH = 2        # replies begin with their length (1, 2, 4 or 8 bytes)
    NET_FIXED = 3         # replies are reply_size bytes
    NET_WS = 4            # WebSocket messages, after an HTTP/1.1 Upgrade

cdef enum:
    CONN_DOWN = 0         # no socket: it connects when it is given a request
    CONN_CONNECTING = 1
    CONN_HANDSHAKE = 2    # WebSocket: TCP up, the Upgrade request sent or being sent, no 101 yet
    CONN_UP = 3

# the kinds of failure, in errors (a request's) and connection_errors
cdef enum:
    FAIL_REFUSED = 0
    FAIL_RESET = 1
    FAIL_TIMEOUT = 2
    FAIL_FRAMING = 3
    FAIL_STATUS = 4
    FAIL_CLOSED = 5
    FAIL_HANDSHAKE = 6    # a WebSocket Upgrade answered other than 101 with the right accept
    N_FAILS = 7

_FAIL_NAMES = ("refused", "reset", "timeout", "framing", "status", "closed", "handshake")

cdef enum:
    # a reply's parse: the head (status line and headers, a line, a length
    # prefix, a frame's header) or its body
    PHASE_HEAD = 0
    PHASE_LENGTH = 1      # body_left more bytes
    PHASE_CHUNKED = 2
    PHASE_TO_CLOSE = 3    # an HTTP body without a length: until the server closes

cdef enum:
    # what a parse found
    PARSED_MORE = 0       # the reply is not complete yet
    PARSED_OK = 1
    PARSED_STATUS = 2     # complete, with a status other than 2xx
    PARSED_FRAMING = 3    # not a reply of the protocol

cdef enum:
    _NET_BUF = 16384                # a connection's read buffer to begin with (WebSocket: always)
    _NET_MAX_HEADERS = 100
    _NET_SLICE_NS = 10_000_000      # the loop hands back for Ctrl-C and intervals this often
    _NET_SPIN_NS = 10_000           # the last stretch before an arrival is spun, not slept
    _NET_TIMER_SLACK_NS = 1_000     # the loop's thread's timer slack while it runs
    _NET_SCAN_NS = 1_000_000        # timeouts are looked for this often

cdef uint64_t _NET_TIMER_TAG = ~(<uint64_t>0)


cdef struct cm_req:
    int64_t due_ns             # its intended send
    int64_t sent_ns            # its real send
    uint64_t id                # the correlation id it carries (WebSocket correlation)


cdef struct cm_conn:
    int fd
    int state
    uint32_t generation        # events tagged with an older one are stale
    int watching               # CM_NET_* events registered, -1: not registered
    int32_t n_out              # requests riding on this connection (<= depth)
    int32_t head               # the oldest's place in reqs
    cm_req *reqs               # depth places: a ring, in the order sent
    bint in_free               # in the free stack (idle when put there)
    bint in_room               # in the room stack (room left when put there)
    bint marked                # to be written at the end of the pass
    int64_t connect_start_ns
    char *out                  # bytes to write: requests, pongs, a close; out_pos written
    int64_t out_pos
    int64_t out_len
    int64_t out_cap
    int64_t hs_written         # bytes of the WebSocket handshake's request written
    char *buf                  # what was read and not yet parsed
    int64_t len
    int64_t cap
    int64_t scanned            # the head's bytes already looked at (parsers' last_len)
    int phase
    int status
    int64_t body_left
    bint close_after           # the server closes after this reply
    phr_chunked_decoder chunked
    bint in_message            # WebSocket: a data message's fragments are coming
    bint fin                   # the frame being read ends its message
    int64_t message_len        # its bytes so far
    uint64_t next_id           # the next correlation id to give
    unsigned char corr[8]      # the message's bytes at the correlation window


cdef struct cm_net:
    # the target and the loop's settings
    int protocol
    uint32_t addr
    int port
    int32_t n_conns
    int32_t depth              # requests a connection may carry at once
    const char *request        # WebSocket: the message's payload
    int64_t request_len
    int64_t timeout_ns
    int64_t max_response
    int64_t buf_max            # a read buffer grows to this
    bint head                  # HTTP HEAD: no body follows the headers
    int length_size
    bint little_endian
    int64_t reply_size
    const char *handshake      # WebSocket: the Upgrade request
    int64_t handshake_len
    const char *accept         # the Sec-WebSocket-Accept it must be answered with
    size_t accept_len
    int opcode                 # 1 text, 2 binary
    int64_t corr_offset        # correlation: the id's place in a message (corr_length 0: in order)
    int corr_length
    uint64_t corr_mask         # ids are taken modulo this + 1
    uint64_t rng               # masks' generator (xorshift64*)
    bint closed_loop
    int64_t max_queue
    # its state
    int ep
    bint wait_ns               # epoll_pwait2 is there: no timer needed
    int timer
    int64_t timer_at           # when the arrival timer is set to fire (0: disarmed)
    cm_conn *conns
    cm_req *reqs               # every connection's ring, end to end
    int32_t *free              # connections with no request on them
    int32_t n_free
    int32_t *room              # connections with requests on them and room for more
    int32_t n_room
    int32_t *marks             # connections with requests appended and not written yet
    int32_t n_marks
    int32_t opening            # connections connecting or in their handshake
    int64_t *queue             # intended starts of requests waiting for a connection
    int64_t q_head
    int64_t q_len
    cm_schedule sch
    int64_t t0
    int64_t duration_ns
    int64_t deadline_ns        # sending stops this long after the start
    int64_t rel                # the next arrival's due time, from t0
    int64_t n                  # arrivals taken from the schedule
    bint more                  # the schedule has arrivals left (closed loop: still sending)
    int64_t stopped_ns         # when a deadline or Ctrl-C stopped the sending (-1: never)
    bint deadline_reached
    int64_t next_scan
    uint64_t ev_data[256]
    int ev_flags[256]
    # what it measured
    int64_t planned, sent, completed, failed, dropped, in_flight
    int64_t errors[7]
    int64_t conn_errors[7]
    int64_t status_classes[6]  # 1xx .. 5xx; [0]: a status outside 100-599
    int64_t connects, bytes_sent, bytes_received, last_send
    cm_hdr *latency
    cm_hdr *uncorrected
    cm_hdr *jitter
    cm_hdr *connect_time
    cm_phaser *phaser
    cm_hdr **active


# --- connections ---------------------------------------------------------------------------

cdef inline int _fail_of_errno(int err) noexcept nogil:
    if err == ECONNREFUSED:
        return FAIL_REFUSED
    if err == ETIMEDOUT:
        return FAIL_TIMEOUT
    return FAIL_RESET


cdef inline uint64_t _conn_tag(cm_net *L, cm_conn *c) noexcept nogil:
    return (<uint64_t>c.generation << 32) | <uint64_t>(c - L.conns)


cdef int _conn_watch(cm_net *L, cm_conn *c, int events) noexcept nogil:
    cdef int rc
    if c.watching == events:
        return 0
    rc = cm_net_watch(L.ep, c.fd, events, _conn_tag(L, c), c.watching < 0)
    if rc == 0:
        c.watching = events
    return rc


cdef inline bint _conn_opening(cm_conn *c) noexcept nogil:
    return c.state == CONN_CONNECTING or c.state == CONN_HANDSHAKE


cdef void _conn_close(cm_net *L, cm_conn *c) noexcept nogil:
    """Close the socket (epoll forgets it with it); the connection is down
    and reconnects when it is next given a request.  What was read or not
    yet written on it is dropped; the requests on it are the caller's."""
    if _conn_opening(c):
        L.opening -= 1
    if c.fd >= 0:
        cm_net_close(c.fd)
    c.fd = -1
    c.state = CONN_DOWN
    c.generation += 1
    c.watching = -1
    _conn_reset_parse(c)


cdef inline void _reply_reset(cm_conn *c) noexcept nogil:
    """Ready for the next reply; bytes already read after this one stay."""
    c.scanned = 0
    c.phase = PHASE_HEAD
    c.status = 0
    c.body_left = 0
    c.close_after = 0


cdef inline void _conn_reset_parse(cm_conn *c) noexcept nogil:
    c.len = 0
    _reply_reset(c)
    c.out_pos = 0
    c.out_len = 0
    c.hs_written = 0
    c.in_message = 0
    c.message_len = 0


cdef int _conn_open(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """Begin connecting.  Returns -1 when under way or connected (the
    caller writes with _conn_flush), or the kind of failure when the
    connection could not even begin (closed again)."""
    cdef int connected = 0
    cdef int fd = cm_net_connect(L.addr, L.port, &connected)
    if fd < 0:
        return _fail_of_errno(-fd)
    c.fd = fd
    c.connect_start_ns = now
    c.watching = -1
    _conn_reset_parse(c)
    c.state = CONN_CONNECTING
    L.opening += 1
    if connected:
        _conn_connected(L, c, now)
    elif _conn_watch(L, c, CM_NET_WRITE) != 0:
        _conn_close(L, c)
        return FAIL_RESET
    return -1


cdef inline void _conn_connected(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """TCP is up: a WebSocket connection begins its handshake."""
    if L.protocol == NET_WS:
        c.state = CONN_HANDSHAKE
        c.hs_written = 0
    else:
        _conn_up(L, c, now)


cdef void _conn_up(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """Ready for requests: the time since the connect began (with a
    WebSocket's handshake) is its connect time."""
    if _conn_opening(c):
        L.opening -= 1
    c.state = CONN_UP
    L.connects += 1
    hdr_record_or_overflow(L.connect_time, now - c.connect_start_ns, 1)


cdef cm_conn *_conn_free(cm_net *L) noexcept nogil:
    """A connection with room for a request: an idle one first, else one
    that carries fewer than depth; NULL when none has room."""
    cdef cm_conn *c
    while L.n_free > 0:
        L.n_free -= 1
        c = &L.conns[L.free[L.n_free]]
        c.in_free = 0
        if c.n_out < L.depth:
            return c
    while L.n_room > 0:
        L.n_room -= 1
        c = &L.conns[L.room[L.n_room]]
        c.in_room = 0
        if c.n_out < L.depth:
            return c
    return NULL


cdef void _conn_available(cm_net *L, cm_conn *c) noexcept nogil:
    """Where _conn_free finds c, if it has room."""
    if c.n_out == 0:
        if not c.in_free:
            c.in_free = 1
            L.free[L.n_free] = <int32_t>(c - L.conns)
            L.n_free += 1
    elif c.n_out < L.depth and not c.in_room:
        c.in_room = 1
        L.room[L.n_room] = <int32_t>(c - L.conns)
        L.n_room += 1


cdef void _conn_drop(cm_net *L, cm_conn *c, int64_t now, int kind, int idle_kind) noexcept nogil:
    """Close c: every request on it fails as ``kind``; with none on it,
    ``idle_kind`` (if >= 0) is counted in conn_errors."""
    if c.n_out == 0 and idle_kind >= 0:
        L.conn_errors[idle_kind] += 1
    _conn_close(L, c)
    while c.n_out > 0:
        _request_end(L, c, 0, now, kind)
    _conn_available(L, c)


cdef bint _conn_flush(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """Write what waits: the WebSocket handshake's request until it is
    answered, then (up) the requests' and control frames' bytes; watch for
    writing while some is left.  Returns 0 when the connection failed (and
    was dropped)."""
    cdef int64_t n
    cdef bint left
    if c.state == CONN_HANDSHAKE:
        while c.hs_written < L.handshake_len:
            n = cm_net_send(c.fd, L.handshake + c.hs_written, L.handshake_len - c.hs_written)
            if n < 0:
                if n == -EAGAIN or n == -EWOULDBLOCK:
                    break
                if n == -EINTR:
                    continue
                _conn_drop(L, c, now, FAIL_RESET, FAIL_RESET)
                return 0
            c.hs_written += n
            L.bytes_sent += n
        left = c.hs_written < L.handshake_len
    elif c.state == CONN_UP:
        while c.out_pos < c.out_len:
            n = cm_net_send(c.fd, c.out + c.out_pos, c.out_len - c.out_pos)
            if n < 0:
                if n == -EAGAIN or n == -EWOULDBLOCK:
                    break
                if n == -EINTR:
                    continue
                _conn_drop(L, c, now, FAIL_RESET, FAIL_RESET)
                return 0
            c.out_pos += n
            L.bytes_sent += n
        left = c.out_pos < c.out_len
        if not left:
            c.out_pos = 0
            c.out_len = 0
    else:
        return 1                            # connecting: it watches for writing already
    if _conn_watch(L, c, CM_NET_READ | (CM_NET_WRITE if left else 0)) != 0:
        _conn_drop(L, c, now, FAIL_RESET, FAIL_RESET)
        return 0
    return 1


cdef char *_out_reserve(cm_conn *c, int64_t n) noexcept nogil:
    """n bytes at the end of what c has to write (NULL: no memory)."""
    cdef int64_t cap
    cdef char *grown
    if c.out_len + n > c.out_cap:
        if c.out_pos > 0:
            memmove(c.out, c.out + c.out_pos, c.out_len - c.out_pos)
            c.out_len -= c.out_pos
            c.out_pos = 0
        if c.out_len + n > c.out_cap:
            cap = max(c.out_cap * 2, c.out_len + n, <int64_t>256)
            grown = <char *>realloc(c.out, cap)
            if grown == NULL:
                return NULL
            c.out = grown
            c.out_cap = cap
    c.out_len += n
    return c.out + c.out_len - n


# --- requests ------------------------------------------------------------------------------

@cython.cdivision(True)
cdef bint _request_start(cm_net *L, cm_conn *c, int64_t due, int64_t now) noexcept nogil:
    """Put a request (intended at ``due``) on c, which has room for it,
    connecting c first if it is down.  Returns 0 when it failed at once
    (the connect refused, say)."""
    cdef cm_req *r = &c.reqs[(c.head + c.n_out) % L.depth]
    cdef int kind
    r.due_ns = due
    r.sent_ns = now
    if L.corr_length:
        r.id = _ws_new_id(L, c)
    c.n_out += 1
    L.sent += 1
    L.in_flight += 1
    L.last_send = now
    if not L.closed_loop:
        hdr_record_or_overflow(L.jitter, now - due, 1)
    if c.state == CONN_DOWN:
        kind = _conn_open(L, c, now)
        if kind >= 0:
            _conn_drop(L, c, now, kind, -1)
            return 0
    if not _out_request(L, c, r):
        _conn_drop(L, c, now, FAIL_RESET, -1)          # no memory for its bytes
        return 0
    if L.depth == 1:
        if not _conn_flush(L, c, now):
            return 0
    elif not c.marked:
        # pipelined: the requests a pass puts on c go out in one write
        c.marked = 1
        L.marks[L.n_marks] = <int32_t>(c - L.conns)
        L.n_marks += 1
    _conn_available(L, c)
    return 1


cdef void _net_flush_marked(cm_net *L, int64_t now) noexcept nogil:
    cdef int32_t k
    cdef cm_conn *c
    for k in range(L.n_marks):
        c = &L.conns[L.marks[k]]
        c.marked = 0
        if c.fd >= 0:
            _conn_flush(L, c, now)
    L.n_marks = 0


cdef bint _out_request(cm_net *L, cm_conn *c, cm_req *r) noexcept nogil:
    """Append a request's bytes to what c writes: the request as is, or
    a WebSocket message in a masked frame (with its correlation id)."""
    cdef char *p
    cdef unsigned char *payload
    cdef unsigned char mask[4]
    if L.protocol != NET_WS:
        p = _out_reserve(c, L.request_len)
        if p == NULL:
            return 0
        memcpy(p, L.request, L.request_len)
        return 1
    p = _out_reserve(c, _ws_frame_size(L.request_len))
    if p == NULL:
        return 0
    payload = _ws_header(L, <unsigned char *>p, L.opcode, L.request_len, mask)
    memcpy(payload, L.request, L.request_len)
    if L.corr_length:
        _ws_write_id(L, payload + L.corr_offset, r.id)
    _ws_mask(payload, L.request_len, mask)
    return 1


@cython.cdivision(True)
cdef void _request_end(cm_net *L, cm_conn *c, int32_t pos, int64_t now, int outcome) noexcept nogil:
    """The request at ``pos`` in c's ring (0: the oldest) ended: outcome -1
    is a success, otherwise the kind of failure.  Its place is given back
    (a place after the oldest takes the oldest's, so the ring stays whole:
    only correlation pairing ends one there, and it needs no order)."""
    cdef int32_t h = c.head, i = (c.head + pos) % L.depth
    cdef cm_req *r = &c.reqs[i]
    if outcome < 0:
        L.completed += 1
        hdr_record_or_overflow(L.latency, now - r.due_ns, 1)
        hdr_record_or_overflow(L.uncorrected, now - r.sent_ns, 1)
        recorder_record(L.phaser, L.active, now - r.due_ns, 1)
    else:
        L.failed += 1
        L.errors[outcome] += 1
    L.in_flight -= 1
    if i != h:
        c.reqs[i] = c.reqs[h]
    c.head = (h + 1) % L.depth
    c.n_out -= 1


cdef void _conn_event(cm_net *L, cm_conn *c, int flags, int64_t now) noexcept nogil:
    cdef int err
    if c.state == CONN_CONNECTING:
        err = cm_net_socket_error(c.fd)
        if err != 0:
            _conn_drop(L, c, now, _fail_of_errno(err), _fail_of_errno(err))
            return
        _conn_connected(L, c, now)
        _conn_flush(L, c, now)
        return
    if flags & CM_NET_WRITE:
        if not _conn_flush(L, c, now):
            return
    if flags & (CM_NET_READ | CM_NET_ERROR):
        _conn_read(L, c, now)


@cython.cdivision(True)
cdef void _conn_read(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    cdef int64_t n, cap
    cdef int kind
    cdef char *grown
    while True:
        if c.len == c.cap:
            kind = FAIL_HANDSHAKE if c.state == CONN_HANDSHAKE else FAIL_FRAMING
            if c.cap >= L.buf_max:
                _conn_drop(L, c, now, kind, kind)   # a head longer than any reply may be
                return
            cap = min(c.cap * 2, L.buf_max)
            grown = <char *>realloc(c.buf, cap)
            if grown == NULL:
                _conn_drop(L, c, now, kind, kind)
                return
            c.buf = grown
            c.cap = cap
        n = cm_net_recv(c.fd, c.buf + c.len, c.cap - c.len)
        if n < 0:
            if n == -EAGAIN or n == -EWOULDBLOCK:
                return
            if n == -EINTR:
                continue
            _conn_drop(L, c, now, FAIL_RESET, FAIL_RESET)
            return
        if n == 0:
            # the server closed: the end of a body without a length, or of the
            # requests on the connection (an idle one's keep-alive ran out),
            # or of a WebSocket handshake it did not answer
            if L.protocol == NET_HTTP and c.phase == PHASE_TO_CLOSE and c.n_out > 0:
                _request_end(L, c, 0, now, -1 if c.status // 100 == 2 else FAIL_STATUS)
                _conn_drop(L, c, now, FAIL_CLOSED, -1)
            else:
                kind = FAIL_HANDSHAKE if c.state == CONN_HANDSHAKE else FAIL_CLOSED
                _conn_drop(L, c, now, kind, kind)
            return
        L.bytes_received += n
        c.len += n
        if L.protocol == NET_WS:
            if not _ws_take(L, c, now):
                return
        elif not _replies_take(L, c, now):
            return


@cython.cdivision(True)
cdef bint _replies_take(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """Each whole reply in c.buf answers the oldest request on c.  Bytes
    with no request left to answer (more than one reply to a single
    request, or any on an idle connection) are a framing failure.  Returns
    0 when the connection was dropped."""
    cdef int parsed
    while True:
        if c.n_out == 0:
            if c.len > 0:
                _conn_drop(L, c, now, FAIL_FRAMING, FAIL_FRAMING)
                return 0
            return 1
        parsed = _http_parse(L, c) if L.protocol == NET_HTTP else _frame_parse(L, c)
        if parsed == PARSED_MORE:
            return 1
        if parsed == PARSED_FRAMING:
            _conn_drop(L, c, now, FAIL_FRAMING, FAIL_FRAMING)
            return 0
        if c.close_after:
            # the server closes after this reply: those behind it are not answered
            _request_end(L, c, 0, now, -1 if parsed == PARSED_OK else FAIL_STATUS)
            _conn_drop(L, c, now, FAIL_CLOSED, -1)
            return 0
        if c.len > 0 and c.n_out == 1:
            _conn_drop(L, c, now, FAIL_FRAMING, FAIL_FRAMING)
            return 0
        _request_end(L, c, 0, now, -1 if parsed == PARSED_OK else FAIL_STATUS)
        _reply_reset(c)
        _conn_available(L, c)


cdef inline void _consume(cm_conn *c, int64_t n) noexcept nogil:
    if n < c.len:
        memmove(c.buf, c.buf + n, c.len - n)
    c.len -= n


cdef inline bint _header_is(phr_header *h, const char *name, size_t n) noexcept nogil:
    cdef size_t k
    cdef char a
    if h.name == NULL or h.name_len != n:
        return 0
    for k in range(n):
        a = h.name[k]
        if a >= c'A' and a <= c'Z':
            a = a + 32
        if a != name[k]:
            return 0
    return 1


cdef inline bint _value_has(phr_header *h, const char *word, size_t n) noexcept nogil:
    """The header's value holds ``word`` (lower case), in any case."""
    cdef size_t i, k
    cdef char a
    if h.value_len < n:
        return 0
    for i in range(h.value_len - n + 1):
        for k in range(n):
            a = h.value[i + k]
            if a >= c'A' and a <= c'Z':
                a = a + 32
            if a != word[k]:
                break
        else:
            return 1
    return 0


@cython.cdivision(True)
cdef int _http_parse(cm_net *L, cm_conn *c) noexcept nogil:
    """The reply at the front of c.buf: its bytes are consumed as they are
    read; what follows its end (the next pipelined reply's) stays."""
    cdef phr_header headers[_NET_MAX_HEADERS]
    cdef size_t num_headers, k, left
    cdef int minor = 0, status = 0, r
    cdef const char *msg
    cdef size_t msg_len
    cdef int64_t length = -1, digit, take
    cdef bint chunked = 0, keep_alive = 0, close = 0
    cdef Py_ssize_t rest
    while c.phase == PHASE_HEAD:
        num_headers = _NET_MAX_HEADERS
        r = phr_parse_response(c.buf, c.len, &minor, &status, &msg, &msg_len, headers,
                               &num_headers, c.scanned)
        if r == -2:
            c.scanned = c.len
            return PARSED_MORE
        if r < 0:
            return PARSED_FRAMING
        c.scanned = 0
        if 100 <= status < 200 and status != 101:
            _consume(c, r)                  # an interim reply (100 Continue): the real one follows
            continue
        for k in range(num_headers):
            if _header_is(&headers[k], b"content-length", 14):
                if headers[k].value_len == 0 or headers[k].value_len > 18:
                    return PARSED_FRAMING
                length = 0
                for left in range(headers[k].value_len):
                    digit = headers[k].value[left] - c'0'
                    if digit < 0 or digit > 9:
                        return PARSED_FRAMING
                    length = length * 10 + digit
            elif _header_is(&headers[k], b"transfer-encoding", 17):
                chunked = _value_has(&headers[k], b"chunked", 7)
            elif _header_is(&headers[k], b"connection", 10):
                close = _value_has(&headers[k], b"close", 5)
                keep_alive = _value_has(&headers[k], b"keep-alive", 10)
        c.status = status
        c.close_after = close or (minor == 0 and not keep_alive)
        L.status_classes[status // 100 if 100 <= status < 600 else 0] += 1
        _consume(c, r)
        if L.head or status == 204 or status == 304:
            c.phase = PHASE_LENGTH
            c.body_left = 0
        elif chunked:
            c.phase = PHASE_CHUNKED
            memset(&c.chunked, 0, sizeof(phr_chunked_decoder))
            c.chunked.consume_trailer = 1
        elif length >= 0:
            c.phase = PHASE_LENGTH
            c.body_left = length
        else:
            c.phase = PHASE_TO_CLOSE
            c.close_after = 1
    if c.phase == PHASE_LENGTH:
        take = c.len if c.len < c.body_left else c.body_left
        _consume(c, take)
        c.body_left -= take
        if c.body_left > 0:
            return PARSED_MORE
    elif c.phase == PHASE_CHUNKED:
        left = <size_t>c.len
        rest = phr_decode_chunked(&c.chunked, c.buf, &left)
        if rest == -1:
            return PARSED_FRAMING
        if rest == -2:
            c.len = 0                       # decoded in place: the body is not kept
            return PARSED_MORE
        # the body ended; the rest bytes after the decoded ones follow it
        if rest > 0:
            memmove(c.buf, c.buf + left, rest)
        c.len = rest
    else:                                   # PHASE_TO_CLOSE: the close ends it
        c.len = 0
        return PARSED_MORE
    return PARSED_OK if c.status // 100 == 2 else PARSED_STATUS


@cython.cdivision(True)
cdef int _frame_parse(cm_net *L, cm_conn *c) noexcept nogil:
    """Raw TCP replies: a line, a length-prefixed frame, or a fixed size;
    the reply's bytes are consumed, what follows it stays."""
    cdef const char *end
    cdef uint64_t length = 0
    cdef int64_t take
    cdef int k
    if L.protocol == NET_LINE:
        end = <const char *>memchr(c.buf + c.scanned, c'\n', c.len - c.scanned)
        if end == NULL:
            c.scanned = c.len
            return PARSED_MORE
        _consume(c, end - c.buf + 1)
        return PARSED_OK
    if L.protocol == NET_FIXED:
        take = min(c.len, L.reply_size - c.body_left)   # body_left: the reply's bytes so far
        _consume(c, take)
        c.body_left += take
        return PARSED_MORE if c.body_left < L.reply_size else PARSED_OK
    # NET_LENGTH
    if c.phase == PHASE_HEAD:
        if c.len < L.length_size:
            return PARSED_MORE
        for k in range(L.length_size):
            if L.little_endian:
                length |= (<uint64_t>(<unsigned char>c.buf[k])) << (8 * k)
            else:
                length = (length << 8) | <unsigned char>c.buf[k]
        if length > <uint64_t>L.max_response:
            return PARSED_FRAMING
        _consume(c, L.length_size)
        c.phase = PHASE_LENGTH
        c.body_left = <int64_t>length
    take = c.len if c.len < c.body_left else c.body_left
    _consume(c, take)
    c.body_left -= take
    return PARSED_MORE if c.body_left > 0 else PARSED_OK


# --- WebSocket (RFC 6455) --------------------------------------------------------------------

cdef inline uint64_t _net_random(cm_net *L) noexcept nogil:
    # xorshift64*: cheap, and unpredictable enough for masks, which guard
    # proxies' caches on the way, not secrets
    cdef uint64_t x = L.rng
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    L.rng = x
    return x * <uint64_t>0x2545F4914F6CDD1D


cdef inline int64_t _ws_frame_size(int64_t n) noexcept nogil:
    """A client frame of an n-byte payload: header, mask, payload."""
    return n + 6 + (0 if n < 126 else (2 if n < 65536 else 8))


cdef unsigned char *_ws_header(cm_net *L, unsigned char *p, int opcode, int64_t n,
                               unsigned char *mask) noexcept nogil:
    """A final frame's header with a fresh mask (into mask) at p; returns
    where its payload goes."""
    cdef uint64_t bits = _net_random(L)
    cdef int k, h
    p[0] = <unsigned char>(0x80 | opcode)
    if n < 126:
        p[1] = <unsigned char>(0x80 | n)
        h = 2
    elif n < 65536:
        p[1] = 0x80 | 126
        p[2] = <unsigned char>(n >> 8)
        p[3] = <unsigned char>(n & 0xFF)
        h = 4
    else:
        p[1] = 0x80 | 127
        for k in range(8):
            p[2 + k] = <unsigned char>((<uint64_t>n >> (56 - 8 * k)) & 0xFF)
        h = 10
    for k in range(4):
        mask[k] = <unsigned char>((bits >> (32 + 8 * k)) & 0xFF)
        p[h + k] = mask[k]
    return p + h + 4


cdef void _ws_mask(unsigned char *p, int64_t n, const unsigned char *mask) noexcept nogil:
    """XOR the payload with the mask, eight bytes at a time."""
    cdef unsigned char m8[8]
    cdef uint64_t m, w
    cdef int64_t i = 0
    cdef int k
    for k in range(8):
        m8[k] = mask[k & 3]
    memcpy(&m, m8, 8)
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        w ^= m
        memcpy(p + i, &w, 8)
        i += 8
    while i < n:
        p[i] ^= mask[i & 3]
        i += 1


cdef bint _ws_control(cm_net *L, cm_conn *c, int opcode, const char *data, int64_t n) noexcept nogil:
    """Append a control frame (a pong, a close) of data to what c writes."""
    cdef unsigned char mask[4]
    cdef char *p = _out_reserve(c, _ws_frame_size(n))
    cdef unsigned char *payload
    if p == NULL:
        return 0
    payload = _ws_header(L, <unsigned char *>p, opcode, n, mask)
    memcpy(payload, data, n)
    _ws_mask(payload, n, mask)
    return 1


@cython.cdivision(True)
cdef uint64_t _ws_new_id(cm_net *L, cm_conn *c) noexcept nogil:
    """The next id that no request on c carries (ids wrap at corr_mask + 1,
    which is more than depth)."""
    cdef uint64_t id
    cdef int32_t p
    cdef bint taken
    while True:
        id = c.next_id & L.corr_mask
        c.next_id += 1
        taken = 0
        for p in range(c.n_out):
            if c.reqs[(c.head + p) % L.depth].id == id:
                taken = 1
                break
        if not taken:
            return id


cdef void _ws_write_id(cm_net *L, unsigned char *p, uint64_t id) noexcept nogil:
    """An id in corr_length bytes: big-endian binary, or in a text message
    lower-case hex digits (the message stays UTF-8)."""
    cdef const char *digits = b"0123456789abcdef"
    cdef int k
    for k in range(L.corr_length - 1, -1, -1):
        if L.opcode == 1:
            p[k] = <unsigned char>digits[id & 15]
            id >>= 4
        else:
            p[k] = <unsigned char>(id & 0xFF)
            id >>= 8


@cython.cdivision(True)
cdef int32_t _ws_answered(cm_net *L, cm_conn *c) noexcept nogil:
    """The place in c's ring of the request a whole message answers: the
    oldest, or the one whose id it carries; -1 when none (framing)."""
    cdef uint64_t id = 0
    cdef int k, digit
    cdef int32_t p
    cdef unsigned char a
    if not L.corr_length:
        return 0
    if c.message_len < L.corr_offset + L.corr_length:
        return -1                           # too short to carry an id
    for k in range(L.corr_length):
        a = c.corr[k]
        if L.opcode == 1:
            if a >= c'0' and a <= c'9':
                digit = a - c'0'
            elif a >= c'a' and a <= c'f':
                digit = a - c'a' + 10
            elif a >= c'A' and a <= c'F':
                digit = a - c'A' + 10
            else:
                return -1
            id = (id << 4) | <uint64_t>digit
        else:
            id = (id << 8) | a
    for p in range(c.n_out):
        if c.reqs[(c.head + p) % L.depth].id == id:
            return p
    return -1


@cython.cdivision(True)
cdef bint _ws_handshake(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """The Upgrade's reply: 101 with Upgrade: websocket and the expected
    Sec-WebSocket-Accept (and no extension, none was offered) makes the
    connection up; anything else fails it as "handshake".  Returns 0 when
    the connection was dropped."""
    cdef phr_header headers[_NET_MAX_HEADERS]
    cdef size_t num_headers = _NET_MAX_HEADERS, k
    cdef int minor = 0, status = 0, r
    cdef const char *msg
    cdef size_t msg_len
    cdef bint upgrade = 0, accepted = 0, extension = 0
    r = phr_parse_response(c.buf, c.len, &minor, &status, &msg, &msg_len, headers,
                           &num_headers, c.scanned)
    if r == -2:
        c.scanned = c.len
        return 1
    if r >= 0:
        L.status_classes[status // 100 if 100 <= status < 600 else 0] += 1
        for k in range(num_headers):
            if _header_is(&headers[k], b"upgrade", 7):
                upgrade = _value_has(&headers[k], b"websocket", 9)
            elif _header_is(&headers[k], b"sec-websocket-accept", 20):
                accepted = (headers[k].value_len == L.accept_len
                            and memcmp(headers[k].value, L.accept, L.accept_len) == 0)
            elif _header_is(&headers[k], b"sec-websocket-extensions", 24):
                extension = 1
    if r < 0 or status != 101 or not upgrade or not accepted or extension:
        _conn_drop(L, c, now, FAIL_HANDSHAKE, FAIL_HANDSHAKE)
        return 0
    _consume(c, r)
    c.scanned = 0
    _conn_up(L, c, now)
    return _conn_flush(L, c, now)


@cython.cdivision(True)
cdef bint _ws_take(cm_net *L, cm_conn *c, int64_t now) noexcept nogil:
    """What c.buf holds on a WebSocket connection: the handshake's reply,
    then frames.  A whole data message (its fragments joined) answers a
    request; a ping is answered with a pong; a close is answered with a
    close and closes the connection ("closed").  Frames that break RFC
    6455 fail it as "framing".  Payloads are not kept: only the bytes of
    the correlation window.  Returns 0 when the connection was dropped."""
    cdef unsigned char *b
    cdef int opcode, hlen, k
    cdef uint64_t length
    cdef int64_t take, at, lo, hi
    cdef int32_t pos
    if c.state == CONN_HANDSHAKE:
        if not _ws_handshake(L, c, now):
            return 0
        if c.state != CONN_UP:
            return 1                        # more of the reply to come
    while True:
        if c.phase == PHASE_HEAD:
            if c.len < 2:
                return 1
            b = <unsigned char *>c.buf
            opcode = b[0] & 0x0F
            if (b[0] & 0x70) or (b[1] & 0x80):
                break                       # reserved bits (no extension agreed), or masked
            length = b[1] & 0x7F
            hlen = 2
            if length == 126:
                hlen = 4
            elif length == 127:
                hlen = 10
            if c.len < hlen:
                return 1
            if hlen == 4:
                length = (<uint64_t>b[2] << 8) | b[3]
            elif hlen == 10:
                length = 0
                for k in range(8):
                    length = (length << 8) | b[2 + k]
                if length >> 63:
                    break
            if opcode >= 8:
                if not (b[0] & 0x80) or length > 125 or opcode > 10:
                    break                   # control frames are whole and short
                if c.len < hlen + <int64_t>length:
                    return 1
                if opcode == 9:             # ping: its pong, with its payload
                    if not _ws_control(L, c, 10, c.buf + hlen, <int64_t>length):
                        _conn_drop(L, c, now, FAIL_RESET, FAIL_RESET)
                        return 0
                    if not _conn_flush(L, c, now):
                        return 0
                elif opcode == 8:
                    # close: its status code echoed (one try: the server may be
                    # gone already), then the connection closed
                    if _ws_control(L, c, 8, c.buf + hlen, 2 if length >= 2 else 0):
                        cm_net_send(c.fd, c.out + c.out_pos, c.out_len - c.out_pos)
                    _conn_drop(L, c, now, FAIL_CLOSED, FAIL_CLOSED)
                    return 0
                _consume(c, hlen + <int64_t>length)     # a pong: nothing asked for it
                continue
            if opcode == 0:
                if not c.in_message:
                    break                   # a continuation of no message
            elif opcode <= 2:
                if c.in_message or c.n_out == 0:
                    break                   # begun inside another message, or answering none
                c.in_message = 1
                c.message_len = 0
            else:
                break                       # a reserved opcode
            if length > <uint64_t>(L.max_response - c.message_len):
                break                       # beyond max_response
            c.fin = (b[0] & 0x80) != 0
            _consume(c, hlen)
            c.body_left = <int64_t>length
            c.phase = PHASE_LENGTH
        # a data frame's payload, taken as it comes
        take = c.len if c.len < c.body_left else c.body_left
        if L.corr_length and take > 0:
            lo = max(c.message_len, L.corr_offset)
            hi = min(c.message_len + take, L.corr_offset + L.corr_length)
            for at in range(lo, hi):
                c.corr[at - L.corr_offset] = <unsigned char>c.buf[at - c.message_len]
        _consume(c, take)
        c.body_left -= take
        c.message_len += take
        if c.body_left > 0:
            return 1
        c.phase = PHASE_HEAD
        if not c.fin:
            continue
        c.in_message = 0
        pos = _ws_answered(L, c)
        if pos < 0:
            break                           # no request carries its id
        _request_end(L, c, pos, now, -1)
        _conn_available(L, c)
    _conn_drop(L, c, now, FAIL_FRAMING, FAIL_FRAMING)
    return 0


# --- the loop ------------------------------------------------------------------------------

cdef void _net_stop_sending(cm_net *L, int64_t now) noexcept nogil:
    """A deadline or Ctrl-C: nothing more is sent.  What waits in the queue
    and what was due but not taken from the schedule yet are dropped."""
    cdef int64_t drop
    if L.stopped_ns >= 0:
        return
    L.stopped_ns = now - L.t0
    L.dropped += L.q_len
    L.q_len = 0
    if L.more and not L.closed_loop:
        drop = due_by(&L.sch, L.n, min(L.stopped_ns, L.duration_ns - 1))
        L.planned += drop
        L.dropped += drop
    L.more = 0


@cython.cdivision(True)
cdef void _net_arrivals(cm_net *L, int64_t now) noexcept nogil:
    """Take the arrivals due by now: each goes to a connection with room,
    or waits in the queue, or (the queue full) is dropped with the backlog."""
    cdef int64_t due, drop, batch = 0
    cdef cm_conn *c
    while L.more and L.t0 + L.rel <= now and batch < _SEND_BATCH:
        batch += 1
        due = L.t0 + L.rel
        c = _conn_free(L) if L.q_len == 0 else NULL
        if c != NULL:
            L.planned += 1
            _request_start(L, c, due, now)
            L.n += 1
        elif L.q_len < L.max_queue:
            L.planned += 1
            L.queue[(L.q_head + L.q_len) % L.max_queue] = due
            L.q_len += 1
            L.n += 1
        else:
            # everything due by now goes at once: a rate far beyond the
            # target's must not spin through its arrivals one by one
            drop = 1 + due_by(&L.sch, L.n + 1, min(now - L.t0, L.duration_ns - 1))
            L.planned += drop
            L.dropped += drop
            L.n += drop
        L.more = schedule_time(&L.sch, L.n, &L.rel) and L.rel < L.duration_ns
    _net_flush_marked(L, now)


@cython.cdivision(True)
cdef void _net_dispatch(cm_net *L, int64_t now) noexcept nogil:
    """Connections with room take the queue's oldest requests (their
    intended starts kept), or in a closed loop a new request each."""
    cdef int64_t due
    cdef cm_conn *c
    while L.q_len > 0 or (L.closed_loop and L.more):
        c = _conn_free(L)
        if c == NULL:
            break
        if L.q_len > 0:
            due = L.queue[L.q_head]
            L.q_head = (L.q_head + 1) % L.max_queue
            L.q_len -= 1
        else:
            L.planned += 1
            due = now
        if not _request_start(L, c, due, now):
            break           # it failed at once (refused): the next pass goes on, not a spin
    _net_flush_marked(L, now)


@cython.cdivision(True)
cdef void _net_timeouts(cm_net *L, int64_t now) noexcept nogil:
    """A request outstanding for longer than the timeout closes its
    connection.  In order, the oldest is the first to expire; correlated,
    any may be."""
    cdef int32_t k, p
    cdef cm_conn *c
    for k in range(L.n_conns):
        c = &L.conns[k]
        for p in range(c.n_out if L.corr_length else min(c.n_out, 1)):
            if now >= c.reqs[(c.head + p) % L.depth].sent_ns + L.timeout_ns:
                _conn_drop(L, c, now, FAIL_TIMEOUT, -1)
                break

@cython.cdivision(True)
cdef int _net_wait(cm_net *L, int64_t now, int64_t slice_end) noexcept nogil:
    """Wait for events: until the next arrival (less its last 10 us,
    spun), the next look for timeouts, or the slice's end.  A spin of each
    gap would take a core from a server on the same machine, so the wait
    sleeps: epoll_pwait2's ns timeout, or where the kernel lacks it a timer
    fired just before the arrival (the thread's timer slack is 1 us while
    the loop runs, so either wakes on time)."""
    # timeouts are looked for only while something is in flight
    cdef int64_t until = min(slice_end, L.next_scan) if L.in_flight else slice_end, at
    cdef int n
    if L.more and not L.closed_loop:
        at = L.t0 + L.rel
        if at - now <= _NET_SPIN_NS:
            # the last microseconds spun in user space: a wait of 0 in a
            # loop would be a system call each turn
            while cm_now_ns() < at:
                cm_cpu_relax()
            return 0
        elif at - _NET_SPIN_NS < until:
            until = at - _NET_SPIN_NS
            if not L.wait_ns and L.timer_at != until:
                L.timer_at = until
                cm_net_timer_set(L.timer, L.timer_at)
    if L.wait_ns:
        n = cm_net_wait_ns(L.ep, L.ev_data, L.ev_flags, 256, until - now)
        if n != -ENOSYS:
            return n
        L.wait_ns = 0                       # an older kernel: the timer from now on
        return 0
    return cm_net_wait(L.ep, L.ev_data, L.ev_flags, 256,
                       0 if until <= now else <int>((until - now + 999_999) // 1_000_000))


cdef bint _net_run(cm_net *L, int64_t slice_end) noexcept nogil:
    """Passes of the loop until slice_end.  Returns 1 when the run ended:
    nothing more to send and nothing in flight."""
    cdef int64_t now
    cdef int n, k
    cdef uint64_t tag
    cdef cm_conn *c
    while True:
        now = cm_now_ns()
        if (L.more or L.q_len) and L.deadline_ns and now - L.t0 >= L.deadline_ns:
            L.deadline_reached = 1
            _net_stop_sending(L, now)
        if L.closed_loop and L.more and now - L.t0 >= L.duration_ns:
            L.more = 0
        if not L.closed_loop:
            _net_arrivals(L, now)
        _net_dispatch(L, now)
        if now >= L.next_scan:
            L.next_scan = now + _NET_SCAN_NS
            _net_timeouts(L, now)
            _net_dispatch(L, now)
        if not L.more and L.q_len == 0 and L.in_flight == 0:
            return 1
        if now >= slice_end:
            return 0
        n = _net_wait(L, now, slice_end)
        now = cm_now_ns()
        for k in range(n):
            tag = L.ev_data[k]
            if tag == _NET_TIMER_TAG:
                cm_net_timer_clear(L.timer)
                L.timer_at = 0
                continue
            c = &L.conns[<uint32_t>tag]
            if <uint32_t>(tag >> 32) != c.generation or c.fd < 0:
                continue                    # for a socket closed earlier in this batch
            _conn_event(L, c, L.ev_flags[k], now)


@cython.cdivision(True)
cdef void _net_connect_all(cm_net *L) noexcept nogil:
    """Open every connection before the run (a WebSocket's with its
    handshake), within the timeout; the time each took goes to
    connect_time.  One that fails stays down (its failure counted in
    conn_errors) and connects again when given a request."""
    cdef int32_t k
    cdef int n, i, kind
    cdef int64_t now = cm_now_ns(), end = now + L.timeout_ns
    cdef uint64_t tag
    cdef cm_conn *c
    for k in range(L.n_conns):
        c = &L.conns[k]
        kind = _conn_open(L, c, cm_now_ns())
        if kind >= 0:
            L.conn_errors[kind] += 1
        elif c.state != CONN_CONNECTING:
            _conn_flush(L, c, cm_now_ns())   # connected at once: the handshake, and the watch
    while L.opening > 0:
        now = cm_now_ns()
        if now >= end:
            break
        n = cm_net_wait(L.ep, L.ev_data, L.ev_flags, 256,
                        <int>((end - now + 999_999) // 1_000_000))
        now = cm_now_ns()
        for i in range(n):
            tag = L.ev_data[i]
            if tag == _NET_TIMER_TAG:
                continue
            c = &L.conns[<uint32_t>tag]
            if <uint32_t>(tag >> 32) != c.generation or c.fd < 0:
                continue
            _conn_event(L, c, L.ev_flags[i], now)
    for k in range(L.n_conns):
        c = &L.conns[k]
        if _conn_opening(c):
            L.conn_errors[FAIL_TIMEOUT] += 1
            _conn_close(L, c)
        _conn_available(L, c)


cdef void _net_goodbye(cm_net *L) noexcept nogil:
    """The run is over: each WebSocket connection up says so with a close
    (1000, normal closure), one try, so that its server sees a clean end
    rather than a lost connection."""
    cdef int32_t k
    cdef cm_conn *c
    cdef char code[2]
    if L.protocol != NET_WS or L.conns == NULL:
        return
    code[0] = <char>0x03
    code[1] = <char>0xE8
    for k in range(L.n_conns):
        c = &L.conns[k]
        if c.state == CONN_UP and _ws_control(L, c, 8, code, 2):
            cm_net_send(c.fd, c.out + c.out_pos, c.out_len - c.out_pos)


cdef void _net_free(cm_net *L) noexcept nogil:
    cdef int32_t k
    if L.conns != NULL:
        for k in range(L.n_conns):
            if L.conns[k].fd >= 0:
                cm_net_close(L.conns[k].fd)
            free(L.conns[k].buf)
            free(L.conns[k].out)
    if L.ep >= 0:
        cm_net_close(L.ep)
    if L.timer >= 0:
        cm_net_close(L.timer)
    free(L.conns)
    free(L.reqs)
    free(L.free)
    free(L.room)
    free(L.marks)
    free(L.queue)
    _free_schedule(&L.sch)


# --- the result ----------------------------------------------------------------------------

cdef class NetworkResult(OpenLoopResult):
    """What a run against a network target measured: an OpenLoopResult
    (its counts, histograms, intervals and rules hold; ``errors`` counts
    failed requests by kind: "refused", "reset", "timeout", "framing",
    "status", "closed", "handshake"), and beside it:

    ``connect_time``: each connection's connect, up front and on
    reconnects, a WebSocket's with its handshake (never in a request's
    latency, except that a request given to a connection that is down
    waits for its reconnect);
    ``status_classes``: HTTP replies by class {"1xx".."5xx", "other"}
    (a reply other than 2xx is a failure of kind "status"); for a
    WebSocket target, its handshakes' replies (101 is "1xx");
    ``connection_errors``: what befell connections outside any request:
    connects (and handshakes) up front that failed (by kind), idle
    connections the server closed ("closed") or sent unasked-for bytes on
    ("framing");
    ``in_flight``: requests sent and not ended when the run stopped (0
    unless Ctrl-C cut the drain): requests == completed + failed + in_flight;
    ``connections``, ``connects`` (successful connects in all),
    ``bytes_sent``, ``bytes_received``, ``protocol`` ("http", "line",
    "length", "fixed", "websocket") and ``closed_loop``."""
    cdef readonly Histogram connect_time
    cdef readonly dict status_classes
    cdef readonly dict connection_errors
    cdef readonly int64_t in_flight
    cdef readonly int64_t connections
    cdef readonly int64_t connects
    cdef readonly int64_t bytes_sent
    cdef readonly int64_t bytes_received
    cdef readonly str protocol
    cdef readonly bint closed_loop

    def __cinit__(self, *args, **kwargs):
        self.status_classes = {}
        self.connection_errors = {}
        self.protocol = ""

    def __init__(self, *, connect_time, status_classes=None, connection_errors=None,
                 in_flight=0, connections=0, connects=0, bytes_sent=0, bytes_received=0,
                 protocol="", closed_loop=False, **fields):
        OpenLoopResult.__init__(self, **fields)
        self._set_extra(connect_time=connect_time, status_classes=status_classes,
                        connection_errors=connection_errors, in_flight=in_flight,
                        connections=connections, connects=connects, bytes_sent=bytes_sent,
                        bytes_received=bytes_received, protocol=protocol,
                        closed_loop=closed_loop)

    def _set_extra(self, *, connect_time, status_classes, connection_errors, in_flight,
                   connections, connects, bytes_sent, bytes_received, protocol, closed_loop):
        cdef str owner = "NetworkResult"
        self.connect_time = _result_histogram(connect_time, owner, "connect_time")
        self.status_classes = {str(k): _result_count(v, owner, f"status_classes[{k!r}]")
                               for k, v in (status_classes or {}).items()}
        self.connection_errors = {str(k): _result_count(v, owner, f"connection_errors[{k!r}]")
                                  for k, v in (connection_errors or {}).items()}
        self.in_flight = _result_count(in_flight, owner, "in_flight")
        if self.requests != self.completed + self.failed + self.in_flight:
            raise ValueError(f"NetworkResult: requests ({self.requests}) must be completed + "
                             f"failed + in_flight ({self.completed} + {self.failed} + "
                             f"{self.in_flight})")
        self.connections = _result_count(connections, owner, "connections")
        self.connects = _result_count(connects, owner, "connects")
        self.bytes_sent = _result_count(bytes_sent, owner, "bytes_sent")
        self.bytes_received = _result_count(bytes_received, owner, "bytes_received")
        if not isinstance(protocol, str):
            raise TypeError(f"NetworkResult: protocol must be a str, got {type(protocol).__name__}")
        self.protocol = protocol
        self.closed_loop = _result_flag(closed_loop, owner, "closed_loop")

    @property
    def completed_per_second(self):
        """Requests completed per second of the run (elapsed_ns): a closed
        loop's throughput."""
        return self.completed * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0

    def __reduce__(self):
        fields = OpenLoopResult.__reduce__(self)[1][0]
        extra = {"connect_time": self.connect_time, "status_classes": self.status_classes,
                 "connection_errors": self.connection_errors, "in_flight": self.in_flight,
                 "connections": self.connections, "connects": self.connects,
                 "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                 "protocol": self.protocol, "closed_loop": self.closed_loop}
        return (_network_result_from_state, (fields, extra))

    def __repr__(self):
        return (f"NetworkResult(protocol={self.protocol!r}, closed_loop={self.closed_loop}, "
                f"requests={self.requests}, completed={self.completed}, failed={self.failed}, "
                f"dropped={self.dropped}, planned={self.planned}, in_flight={self.in_flight}, "
                f"errors={self.errors!r}, achieved_rate={self.achieved_rate:,.1f}/s)")


def _network_result_from_state(dict fields, dict extra):
    """Unpickles a NetworkResult."""
    cdef NetworkResult r = NetworkResult.__new__(NetworkResult)
    OpenLoopResult.__init__(r, **fields)
    r._set_extra(**extra)
    return r


_NET_PROTOCOLS = {"http": NET_HTTP, "line": NET_LINE, "length": NET_LENGTH, "fixed": NET_FIXED,
                  "websocket": NET_WS}
_NET_MAX_PIPELINE = 1024


class UnsupportedPlatformError(CaxtonMeterError, NotImplementedError):
    """What caxton_meter cannot do on this platform yet (the network
    targets' loop is Linux's epoll)."""


def network_loop(str protocol, int port, bytes request, stages, *, start_rate=None,
                 bint closed=False, duration=None, int connections=1, int pipeline=1,
                 timeout=10.0, deadline=None, max_queue=10_000, max_response=1 << 20,
                 bint head=False, int length_size=4, bint little_endian=False, reply_size=0,
                 bytes handshake=None, bytes accept=None, int opcode=2, correlation=None,
                 interval=1.0, on_interval=None, stripe=None):
    """Load a TCP server on 127.0.0.1:``port`` over ``connections``
    keep-alive connections, opened before the run, with one thread's epoll
    loop that runs without the GIL.  ``request`` (bytes) is sent as is for
    each request; replies are read as ``protocol`` says: "http" (an HTTP/1.1
    response: Content-Length, chunked or until close; ``head`` for HEAD's
    bodiless replies), "line" (up to b"\\n"), "length" (a ``length_size``
    byte length, big endian or ``little_endian``, then that many bytes) or
    "fixed" (``reply_size`` bytes).  A reply of more than ``max_response``
    bytes of head (or length prefix) is a framing failure.

    "websocket": each connection first sends ``handshake`` (an HTTP/1.1
    Upgrade request) and needs a 101 carrying Sec-WebSocket-Accept
    ``accept``, or fails as "handshake"; then ``request`` is each
    message's payload, sent in a masked frame of ``opcode`` (1 text, 2
    binary), and a whole message (fragments joined, at most
    ``max_response`` bytes) is a reply; pings are answered, a close closes.
    ``correlation`` (offset, length): each request carries an id (big-endian,
    or hex digits in text) in those bytes of its payload, and a reply
    answers the request whose id it carries at the same place; otherwise
    replies answer requests in order.

    Each connection carries up to ``pipeline`` requests at once (HTTP
    pipelining; overlapping WebSocket messages); replies answer the oldest
    unless correlated.

    Open (``stages`` as open_loop's): arrivals at the schedule's times;
    latency from each intended start; a request due while every connection
    is busy waits in a queue (at most ``max_queue``; beyond it the backlog
    is dropped and counted).  Closed (``closed``, ``duration`` seconds,
    ``stages`` None): each connection sends its next request when its reply
    is in.  Each request fails after ``timeout`` seconds.  ``deadline``
    (seconds from the start) stops the sending; what is in flight then ends
    within ``timeout``.  Ctrl-C stops at once (``interrupted``).
    Returns a NetworkResult.  caxton_meter.load_network checks its
    arguments and calls this."""
    if not CM_NET_SUPPORTED:
        import sys
        raise UnsupportedPlatformError(f"network_loop: the network targets run on Linux only "
                                       f"for now (their loop is epoll's); this is {sys.platform}")
    if protocol not in _NET_PROTOCOLS:
        raise ValueError(f"network_loop: protocol must be one of {', '.join(_NET_PROTOCOLS)}, "
                         f"got {protocol!r}")
    if not 0 < port < 65536:
        raise ValueError(f"network_loop: port must be in 1..65535, got {port}")
    if connections < 1 or connections > 100_000:
        raise ValueError(f"network_loop: connections must be in 1..100000, got {connections}")
    if on_interval is not None and not callable(on_interval):
        raise TypeError(f"network_loop: on_interval must be callable, "
                        f"got {type(on_interval).__name__}")
    cdef double t_out = float(timeout), every = float(interval)
    if not (t_out > 0 and math.isfinite(t_out)):
        raise ValueError(f"network_loop: timeout must be > 0 seconds, got {timeout!r}")
    if not (every > 0 and math.isfinite(every)):
        raise ValueError(f"network_loop: interval must be > 0 seconds, got {interval!r}")
    cdef int64_t queue_cap = _index(max_queue), response_cap = _index(max_response)
    if queue_cap < 0:
        raise ValueError(f"network_loop: max_queue must be >= 0, got {queue_cap}")
    if response_cap < 1:
        raise ValueError(f"network_loop: max_response must be >= 1, got {response_cap}")
    if length_size not in (1, 2, 4, 8):
        raise ValueError(f"network_loop: length_size must be 1, 2, 4 or 8, got {length_size}")
    cdef int64_t fixed = _index(reply_size)
    if protocol == "fixed" and fixed < 1:
        raise ValueError(f"network_loop: a fixed framing needs reply_size >= 1, got {fixed}")
    if len(request) == 0 and protocol != "websocket":
        raise ValueError("network_loop: the request is empty; a server would have nothing to answer")
    if pipeline < 1 or pipeline > _NET_MAX_PIPELINE:
        raise ValueError(f"network_loop: pipeline must be in 1..{_NET_MAX_PIPELINE}, got {pipeline}")
    if <int64_t>connections * pipeline > 1_000_000:
        raise ValueError(f"network_loop: connections x pipeline must be at most 1000000 requests "
                         f"at once, got {connections} x {pipeline}")
    cdef int64_t corr_offset = 0
    cdef int corr_length = 0, id_bits = 0
    if protocol == "websocket":
        if not handshake or not accept:
            raise ValueError("network_loop: a websocket target needs handshake= (its Upgrade "
                             "request) and accept= (the Sec-WebSocket-Accept it expects)")
        if opcode not in (1, 2):
            raise ValueError(f"network_loop: opcode must be 1 (text) or 2 (binary), got {opcode}")
        if correlation is not None:
            window = tuple(correlation)
            if len(window) != 2:
                raise ValueError(f"network_loop: correlation must be (offset, length), "
                                 f"got {correlation!r}")
            corr_offset, corr_length = _index(window[0]), _index(window[1])
            if not 1 <= corr_length <= 8 or corr_offset < 0 \
                    or corr_offset + corr_length > len(request):
                raise ValueError(f"network_loop: correlation (offset, length) must lie in the "
                                 f"{len(request)}-byte payload with length 1..8, "
                                 f"got {tuple(correlation)!r}")
            id_bits = corr_length * (4 if opcode == 1 else 8)
            if id_bits < 64 and <uint64_t>pipeline >= (<uint64_t>1 << id_bits):
                raise ValueError(f"network_loop: {2 ** id_bits} ids of {corr_length} bytes are "
                                 f"too few for pipeline {pipeline}: ids must outnumber requests "
                                 f"in flight on a connection")
    elif handshake is not None or accept is not None or correlation is not None:
        raise ValueError(f"network_loop: handshake, accept and correlation apply to protocol "
                         f"'websocket', not {protocol!r}")
    cdef int64_t deadline_ns = _deadline_ns(deadline, "network_loop")
    cdef bytes own = None
    if closed:
        if stages is not None:
            raise ValueError("network_loop: a closed loop takes duration=, not stages")
        if stripe is not None:
            raise ValueError("network_loop: a closed loop has no schedule to take a stripe of")
        if duration is None or not (float(duration) > 0 and math.isfinite(float(duration))):
            raise ValueError(f"network_loop: a closed loop needs duration > 0 seconds, "
                             f"got {duration!r}")
        plan = [(0.0, 0.0, <int64_t>(float(duration) * 1e9))]
    else:
        if stages is None:
            raise ValueError("network_loop: an open loop needs stages")
        plan = _parse_stages(stages, start_rate, "network_loop")
        own = _parse_stripe(stripe, "network_loop")

    cdef int sf = 3
    cdef Histogram latency = Histogram(1, _LATENCY_HIGHEST, sf)
    cdef Histogram uncorrected = Histogram(1, _LATENCY_HIGHEST, sf)
    cdef Histogram jitter = Histogram(1, _LATENCY_HIGHEST, sf)
    cdef Histogram connect_time = Histogram(1, _LATENCY_HIGHEST, sf)
    cdef Recorder recorder = Recorder(1, _LATENCY_HIGHEST, sf)
    cdef cm_net *L = <cm_net *>calloc(1, sizeof(cm_net))
    if L == NULL:
        raise MemoryError()
    L.ep = -1
    L.timer = -1
    cdef int32_t k
    cdef int fd
    cdef int64_t now, interval_ns = <int64_t>(every * 1e9), next_boundary, i_start
    cdef int64_t i_sent = 0, i_completed = 0, i_failed = 0, i_dropped = 0
    cdef bint ended = 0, interrupted = 0
    cdef LoadInterval iv
    cdef Histogram finished, spare = None
    cdef NetworkResult result
    cdef int64_t slack = -1
    intervals = []
    try:
        L.duration_ns = _fill_schedule(&L.sch, plan, own)
        L.protocol = _NET_PROTOCOLS[protocol]
        L.addr = 0x7F000001                 # 127.0.0.1: the loopback only, for now
        L.port = port
        L.n_conns = connections
        L.depth = pipeline
        L.request = PyBytes_AS_STRING(request)
        L.request_len = len(request)
        L.timeout_ns = <int64_t>(t_out * 1e9)
        L.max_response = response_cap
        # a WebSocket message is taken as it comes: its buffer holds a
        # handshake's head or a frame's at most
        L.buf_max = _NET_BUF if protocol == "websocket" else response_cap
        L.head = head
        L.length_size = length_size
        L.little_endian = little_endian
        L.reply_size = fixed
        if protocol == "websocket":
            L.handshake = PyBytes_AS_STRING(handshake)
            L.handshake_len = len(handshake)
            L.accept = PyBytes_AS_STRING(accept)
            L.accept_len = len(accept)
            L.opcode = opcode
            L.corr_offset = corr_offset
            L.corr_length = corr_length
            L.corr_mask = ~(<uint64_t>0) if id_bits == 64 else (<uint64_t>1 << id_bits) - 1
        L.rng = (<uint64_t>cm_now_ns() * <uint64_t>0x9E3779B97F4A7C15) | 1
        L.closed_loop = closed
        L.max_queue = queue_cap
        L.deadline_ns = deadline_ns
        L.stopped_ns = -1
        L.wait_ns = 1
        L.latency, L.uncorrected, L.jitter = &latency._h, &uncorrected._h, &jitter._h
        L.connect_time = &connect_time._h
        L.phaser, L.active = &recorder._phaser, &recorder._active
        L.conns = <cm_conn *>calloc(connections, sizeof(cm_conn))
        L.reqs = <cm_req *>calloc(<size_t>connections * pipeline, sizeof(cm_req))
        L.free = <int32_t *>calloc(connections, sizeof(int32_t))
        L.room = <int32_t *>calloc(connections, sizeof(int32_t))
        L.marks = <int32_t *>calloc(connections, sizeof(int32_t))
        L.queue = <int64_t *>calloc(max(queue_cap, 1), sizeof(int64_t))
        if (L.conns == NULL or L.reqs == NULL or L.free == NULL or L.room == NULL
                or L.marks == NULL or L.queue == NULL):
            raise MemoryError()
        for k in range(connections):
            L.conns[k].fd = -1               # before anything can fail: _net_free closes fds >= 0
            L.conns[k].watching = -1
            L.conns[k].reqs = L.reqs + <size_t>k * pipeline
        for k in range(connections):
            L.conns[k].cap = min(_NET_BUF, L.buf_max)
            L.conns[k].buf = <char *>malloc(L.conns[k].cap)
            if L.conns[k].buf == NULL:
                raise MemoryError()
        fd = cm_net_epoll()
        if fd < 0:
            raise OSError(-fd, "network_loop: epoll_create1 failed")
        L.ep = fd
        fd = cm_net_timer()
        if fd < 0:
            raise OSError(-fd, "network_loop: timerfd_create failed")
        L.timer = fd
        if cm_net_watch(L.ep, L.timer, CM_NET_READ, _NET_TIMER_TAG, 1) != 0:
            raise OSError("network_loop: could not watch the arrival timer")

        slack = cm_net_timer_slack(_NET_TIMER_SLACK_NS)
        with nogil:
            _net_connect_all(L)
        if closed:
            L.more = 1
        else:
            L.more = schedule_time(&L.sch, 0, &L.rel) and L.rel < L.duration_ns
        L.t0 = cm_now_ns()
        L.next_scan = L.t0 + _NET_SCAN_NS
        i_start = L.t0
        next_boundary = L.t0 + interval_ns
        while not ended:
            with nogil:
                ended = _net_run(L, cm_now_ns() + _NET_SLICE_NS)
            try:
                PyErr_CheckSignals()
            except KeyboardInterrupt:
                interrupted = 1
                ended = 1
                _net_stop_sending(L, cm_now_ns())
            now = cm_now_ns()
            if now >= next_boundary or ended:
                iv = LoadInterval.__new__(LoadInterval)
                iv.start_ns, iv.end_ns = i_start, now
                iv.sent, iv.completed = L.sent - i_sent, L.completed - i_completed
                iv.failed, iv.dropped = L.failed - i_failed, L.dropped - i_dropped
                finished = recorder.interval_histogram(spare)
                iv._pack(finished)
                spare = finished
                intervals.append(iv)
                i_start, i_sent, i_completed = now, L.sent, L.completed
                i_failed, i_dropped = L.failed, L.dropped
                while next_boundary <= now:
                    next_boundary += interval_ns
                if on_interval is not None:
                    try:
                        on_interval(iv)
                    except BaseException:
                        _net_stop_sending(L, cm_now_ns())
                        raise
        now = cm_now_ns()
        # nothing lost: every arrival sent or dropped, every request ended or in flight
        if L.planned != L.sent + L.dropped or L.q_len != 0:
            raise AssertionError(f"network_loop: planned {L.planned} != sent {L.sent} + dropped "
                                 f"{L.dropped} (queued {L.q_len})")
        if L.sent != L.completed + L.failed + L.in_flight or (L.in_flight and not interrupted):
            raise AssertionError(f"network_loop: sent {L.sent} != completed {L.completed} + "
                                 f"failed {L.failed} + in flight {L.in_flight}")
        result = NetworkResult.__new__(NetworkResult)
        result.requests, result.completed, result.failed = L.sent, L.completed, L.failed
        result.dropped, result.planned = L.dropped, L.planned
        result.elapsed_ns = now - L.t0
        result.duration_ns = (L.duration_ns if L.stopped_ns < 0
                              else min(L.duration_ns, L.stopped_ns))
        result.last_send_ns = L.last_send - L.t0 if L.sent else 0
        result.latency, result.latency_uncorrected = latency, uncorrected
        result.send_jitter = jitter
        result.intervals = tuple(intervals)
        errors, connection_errors = {}, {}
        for k in range(N_FAILS):
            if L.errors[k]:
                errors[_FAIL_NAMES[k]] = L.errors[k]
            if L.conn_errors[k]:
                connection_errors[_FAIL_NAMES[k]] = L.conn_errors[k]
        result.errors = errors
        result.interrupted = interrupted
        result.deadline_reached = L.deadline_reached
        result.connect_time = connect_time
        if L.protocol == NET_HTTP or L.protocol == NET_WS:
            classes = {}
            for k in range(1, 6):
                classes[f"{k}xx"] = L.status_classes[k]
            if L.status_classes[0]:
                classes["other"] = L.status_classes[0]
            result.status_classes = classes
        result.connection_errors = connection_errors
        result.in_flight = L.in_flight
        result.connections = connections
        result.connects = L.connects
        result.bytes_sent, result.bytes_received = L.bytes_sent, L.bytes_received
        result.protocol = protocol
        result.closed_loop = closed
        return result
    finally:
        if slack >= 0:
            cm_net_timer_slack(slack)
        _net_goodbye(L)
        _net_free(L)
        free(L)
