# Declarations of the compiled core: its C structures and the attributes of
# its extension types.  Cython reads this file before _core.pyx.
from libc.stdint cimport int32_t, int64_t, uint32_t


# An HDR histogram's state: HdrHistogram_c's layout and index math.
cdef struct cm_hdr:
    int64_t lowest_discernible_value
    int64_t highest_trackable_value
    int32_t significant_figures
    int32_t unit_magnitude
    int32_t sub_bucket_half_count_magnitude
    int32_t sub_bucket_half_count
    int32_t sub_bucket_count
    int32_t bucket_count
    int64_t sub_bucket_mask
    int64_t counts_len
    int64_t highest_recordable_value   # top of the last bucket
    int64_t total_count
    int64_t min_value                  # smallest non-zero value recorded
    int64_t max_value                  # largest value recorded
    int64_t overflow_count             # values outside [0, highest_recordable_value]
    int64_t *counts


# HdrHistogram's writer-reader phaser: writers never block; a reader flips
# the phase and waits until every writer that entered before the flip left.
cdef struct cm_phaser:
    int64_t start_epoch
    int64_t even_end_epoch
    int64_t odd_end_epoch


cdef class Histogram:
    cdef cm_hdr _h
    cdef public double start_time
    cdef public double end_time
    cdef public object tag
    cdef _add_overflow(self, int64_t n, bint atomic)


cdef class Recorder:
    cdef cm_phaser _phaser
    cdef cm_hdr *_active                 # read and swapped atomically
    cdef Histogram _active_histogram
    cdef object _reader_lock
    cdef int64_t _lowest
    cdef int64_t _highest
    cdef int _significant_figures
    cdef double _interval_start


cdef class Timer:
    cdef Histogram _histogram
    cdef Recorder _recorder
    cdef int64_t _start_ns
    cdef int64_t _elapsed_ns


# --- the router (_router.pxi) ---

# Message content, reference-counted and shared by the messages that carry it.
cdef struct cm_buf:
    int64_t refcnt
    int64_t length
    char *data


# A FIPA-ACL message inside the core.
cdef struct cm_msg:
    int64_t id
    int64_t conversation_id
    int64_t reply_with
    int64_t in_reply_to
    int64_t origin_ns          # when the exchange began: the request's intended send time
    int64_t issued_ns          # when the request was really sent (later, if the sender lagged)
    int64_t enqueued_ns        # when this hop entered its mailbox
    cm_buf *content
    int32_t sender
    int32_t receiver
    int32_t performative
    int32_t hops
    int32_t origin             # the shard whose client began the exchange
    int32_t pad


cdef struct cm_agent:
    cm_msg *ring               # the mailbox: a ring buffer, grown on demand
    int64_t param              # compute units, forward target, fail period
    int64_t counter            # messages since (re)start
    int64_t handled
    int64_t faults
    int64_t spawn_ns
    uint32_t ring_cap
    uint32_t head
    uint32_t count
    int32_t kind
    int32_t state
    int32_t scheduled
    int32_t restarts
    int32_t pyslot             # index of the Python-side object (Python agents), else -1
    int32_t shard              # the shard (thread) that owns the agent
    void *wasm                 # a WebAssembly agent's cm_wasm_instance, else NULL
    cm_hdr *hists              # per-agent [queue time, handling time], when asked for
    char pad[24]               # 128 bytes: agents of different threads share no cache line


cdef struct cm_dead_letter:
    cm_msg msg
    int64_t at_ns
    int32_t reason
    int32_t detail             # index of a Python-side text, or -1


# A bounded multi-producer, single-consumer queue of messages (Vyukov's
# bounded queue): how a message reaches an agent owned by another thread.
cdef struct cm_cell:
    int64_t seq
    cm_msg msg


cdef struct cm_mpsc:
    cm_cell *cells
    int64_t mask
    int64_t tail                # producers claim cells here (CAS)
    int64_t pad[7]              # head and tail on separate cache lines
    int64_t head                # the consumer's position


# What one thread of the router owns: its agents' run queue, its counters,
# histograms and dead letters, and the queue other threads send it through.
# Counters have one writer (the shard's thread); others read them.
cdef struct cm_shard:
    int32_t *runq
    int64_t runq_head
    int64_t runq_count
    int64_t runq_cap
    cm_mpsc inbound
    cm_dead_letter *dead
    int64_t dead_count
    int64_t dead_cap
    int64_t sent
    int64_t delivered
    int64_t dead_lettered
    int64_t rejected
    int64_t client_received
    int64_t restarts
    int64_t next_id
    int64_t failed_origin      # exchanges begun here that ended as dead letters (any thread adds)
    cm_hdr round_trip
    cm_hdr round_trip_uncorrected   # from the real send: what coordinated omission hides
    cm_hdr delivery
    cm_hdr queue_time
    cm_hdr handling_time
    cm_hdr recovery_time
    int32_t index
    int32_t pad2
    char pad3[64]              # the next shard's hot fields on another cache line
