# Interval recording: HdrHistogram's Recorder with its writer-reader phaser.
# Writers never block or take a lock: they enter the phaser (one atomic add),
# record atomically into the active histogram, and leave (one atomic add).
# A reader swaps in a fresh histogram, flips the phase and waits until every
# writer that could still see the old one has left; the old one is then its.

cdef inline void phaser_init(cm_phaser *ph) noexcept nogil:
    ph.start_epoch = 0
    ph.even_end_epoch = 0
    ph.odd_end_epoch = INT64_MIN


cdef inline int64_t phaser_writer_enter(cm_phaser *ph) noexcept nogil:
    return cm_atomic_fetch_add_64(&ph.start_epoch, 1)


cdef inline void phaser_writer_exit(cm_phaser *ph, int64_t critical_value_at_enter) noexcept nogil:
    if critical_value_at_enter < 0:
        cm_atomic_fetch_add_64(&ph.odd_end_epoch, 1)
    else:
        cm_atomic_fetch_add_64(&ph.even_end_epoch, 1)


cdef void phaser_flip(cm_phaser *ph) noexcept nogil:
    """Flip the phase and wait for the writers of the previous phase.
    Readers must be serialised (the Recorder's reader lock)."""
    cdef bint next_phase_is_even = cm_atomic_load_64(&ph.start_epoch) < 0
    cdef int64_t initial = 0 if next_phase_is_even else INT64_MIN
    cdef int64_t start_value_at_flip
    cdef int spins = 0
    if next_phase_is_even:
        cm_atomic_store_64(&ph.even_end_epoch, initial)
    else:
        cm_atomic_store_64(&ph.odd_end_epoch, initial)
    start_value_at_flip = cm_atomic_exchange_64(&ph.start_epoch, initial)
    while True:
        if next_phase_is_even:
            if cm_atomic_load_64(&ph.odd_end_epoch) == start_value_at_flip:
                return
        elif cm_atomic_load_64(&ph.even_end_epoch) == start_value_at_flip:
            return
        spins += 1
        if spins < 1000:
            cm_cpu_relax()
        else:
            cm_sleep_ns(10000)


cdef inline void recorder_record(cm_phaser *ph, cm_hdr **active, int64_t value,
                                 int64_t count) noexcept nogil:
    """The compiled writer's call: record into whichever histogram is active;
    a value outside the range is counted in its overflow_count."""
    cdef int64_t epoch = phaser_writer_enter(ph)
    hdr_record_or_overflow(<cm_hdr *>cm_atomic_load_ptr(<void **>active), value, count)
    phaser_writer_exit(ph, epoch)


cdef enum:
    _RECORD_CHUNK = 65536


cdef class Recorder:
    """Lock-free interval recording (HdrHistogram's Recorder).

    Recorder(lowest_discernible_value, highest_trackable_value, significant_figures)

    Any number of threads, with or without the GIL, record concurrently;
    ``interval_histogram()`` returns the values recorded since its previous
    call (or since creation) as a Histogram stamped with the interval's
    ``start_time`` and ``end_time`` (seconds since the epoch), and never
    loses or double-counts a value.
    """

    def __cinit__(self, lowest_discernible_value, highest_trackable_value, significant_figures):
        import threading
        self._active_histogram = Histogram(lowest_discernible_value, highest_trackable_value,
                                           significant_figures)
        self._active = &self._active_histogram._h
        self._lowest = self._active_histogram._h.lowest_discernible_value
        self._highest = self._active_histogram._h.highest_trackable_value
        self._significant_figures = self._active_histogram._h.significant_figures
        phaser_init(&self._phaser)
        self._reader_lock = threading.Lock()
        self._interval_start = cm_wall_time_s()

    @property
    def lowest_discernible_value(self):
        return self._lowest

    @property
    def highest_trackable_value(self):
        return self._highest

    @property
    def significant_figures(self):
        return self._significant_figures

    @property
    def highest_recordable_value(self):
        return self._active_histogram._h.highest_recordable_value

    def record(self, value, count=1):
        """record(value, count=1): record ``value`` ``count`` times; raises
        ValueError outside the range, TypeError for a non-integer."""
        cdef int64_t v = _int64(value, "record: value")
        cdef int64_t n = 1 if count is 1 else _int64(count, "record: count")
        if n < 1:
            raise ValueError(f"record: count must be >= 1, got {n}")
        cdef int64_t epoch = phaser_writer_enter(&self._phaser)
        cdef bint ok = hdr_record_atomic(<cm_hdr *>cm_atomic_load_ptr(<void **>&self._active),
                                         v, n)
        phaser_writer_exit(&self._phaser, epoch)
        if not ok:
            raise ValueError("record: " + _range_error(&self._active_histogram._h, v))

    def record_corrected(self, value, expected_interval, count=1):
        """record_corrected(value, expected_interval, count=1), as
        Histogram.record_corrected (HdrHistogram_c's semantics)."""
        cdef int64_t v = _int64(value, "record_corrected: value")
        cdef int64_t interval = _int64(expected_interval, "record_corrected: expected_interval")
        cdef int64_t n = _int64(count, "record_corrected: count")
        if n < 1:
            raise ValueError(f"record_corrected: count must be >= 1, got {n}")
        if interval < 0:
            raise ValueError(f"record_corrected: expected_interval must be >= 0, got {interval}")
        cdef int64_t epoch = phaser_writer_enter(&self._phaser)
        cdef bint ok = hdr_record_corrected(<cm_hdr *>cm_atomic_load_ptr(<void **>&self._active),
                                            v, interval, n, True)
        phaser_writer_exit(&self._phaser, epoch)
        if not ok:
            raise ValueError("record_corrected: " + _range_error(&self._active_histogram._h, v))

    def record_array(self, values):
        """Record an integer array without the GIL (atomic); as
        Histogram.record_array: negative values raise (nothing recorded),
        values above the range are counted in the interval's overflow_count.
        Returns how many values of this call overflowed."""
        cdef const int64_t[::1] view
        cdef Py_ssize_t n, bad, start = 0, chunk
        cdef int64_t overflow = 0, extra, epoch
        cdef cm_hdr *h
        arr, extra = _as_int64_array(values, "record_array")
        view = arr
        n = view.shape[0]
        if n:
            with nogil:
                bad = _first_negative(&view[0], n)
            if bad >= 0:
                raise ValueError(f"record_array: values[{bad}] = {view[bad]} is negative; "
                                 "a histogram records values >= 0 (nothing was recorded)")
            with nogil:
                # chunks keep a reader's flip from waiting on one long call
                while start < n:
                    chunk = min(<Py_ssize_t>_RECORD_CHUNK, n - start)
                    epoch = phaser_writer_enter(&self._phaser)
                    h = <cm_hdr *>cm_atomic_load_ptr(<void **>&self._active)
                    overflow += hdr_record_values_atomic(h, &view[start], chunk)
                    phaser_writer_exit(&self._phaser, epoch)
                    start += chunk
        if extra:
            epoch = phaser_writer_enter(&self._phaser)
            h = <cm_hdr *>cm_atomic_load_ptr(<void **>&self._active)
            cm_atomic_add_relaxed_64(&h.overflow_count, extra)
            phaser_writer_exit(&self._phaser, epoch)
        return overflow + extra

    def interval_histogram(self, Histogram recycle=None):
        """The values recorded since the previous call, as a Histogram that
        now belongs to the caller.  ``recycle``, a histogram of the same
        parameters that the caller no longer needs, is reset and reused as
        the next active histogram, saving an allocation."""
        cdef Histogram fresh, old
        cdef double now
        with self._reader_lock:
            if recycle is None:
                fresh = Histogram(self._lowest, self._highest, self._significant_figures)
            else:
                if (recycle._h.lowest_discernible_value != self._lowest
                        or recycle._h.highest_trackable_value != self._highest
                        or recycle._h.significant_figures != self._significant_figures):
                    raise ValueError(
                        f"interval_histogram: recycle has parameters ({recycle._h.lowest_discernible_value}, "
                        f"{recycle._h.highest_trackable_value}, {recycle._h.significant_figures}); "
                        f"this recorder's are ({self._lowest}, {self._highest}, {self._significant_figures})")
                if recycle is self._active_histogram:
                    raise ValueError("interval_histogram: recycle is the recorder's active histogram")
                recycle.reset()
                recycle.tag = None
                fresh = recycle
            old = self._active_histogram
            cm_atomic_store_ptr(<void **>&self._active, &fresh._h)
            self._active_histogram = fresh
            with nogil:
                phaser_flip(&self._phaser)
            now = cm_wall_time_s()
            old.start_time = self._interval_start
            old.end_time = now
            self._interval_start = now
            return old

    def reset(self):
        """Discard what was recorded since the last interval."""
        self.interval_histogram()

    def __repr__(self):
        return f"Recorder({self._lowest}, {self._highest}, {self._significant_figures})"

    def __reduce__(self):
        raise TypeError("a Recorder cannot be pickled; send its interval histograms "
                        "(Histogram pickles, or encode()) instead")
