# The monotonic clock, read in C, and its measured floor: the resolution
# (smallest step two successive reads can show) and the cost of one read.


def now_ns():
    """Monotonic time in nanoseconds, read in C (no float conversion)."""
    return cm_now_ns()


def wall_time():
    """Wall-clock time in seconds since the epoch, read in C."""
    return cm_wall_time_s()


cdef class ClockInfo:
    """The measurement floor of the core's clock.  Immutable.

    implementation: the C clock the core reads.
    reported_resolution_ns: what the operating system says (clock_getres).
    resolution_ns: the smallest non-zero step seen between successive reads.
    overhead_ns: the mean cost of one read from compiled code.
    python_overhead_ns: the mean cost of one ``now_ns()`` call from Python.
    """
    cdef readonly str implementation
    cdef readonly int64_t reported_resolution_ns
    cdef readonly int64_t resolution_ns
    cdef readonly double overhead_ns
    cdef readonly double python_overhead_ns

    def __repr__(self):
        return (f"ClockInfo(implementation={self.implementation!r}, "
                f"reported_resolution_ns={self.reported_resolution_ns}, "
                f"resolution_ns={self.resolution_ns}, "
                f"overhead_ns={self.overhead_ns:.2f}, "
                f"python_overhead_ns={self.python_overhead_ns:.2f})")

    def as_dict(self):
        return {
            "implementation": self.implementation,
            "reported_resolution_ns": self.reported_resolution_ns,
            "resolution_ns": self.resolution_ns,
            "overhead_ns": self.overhead_ns,
            "python_overhead_ns": self.python_overhead_ns,
        }

    def __reduce__(self):
        return (_clock_info_from_dict, (self.as_dict(),))


def _clock_info_from_dict(d):
    cdef ClockInfo info = ClockInfo.__new__(ClockInfo)
    info.implementation = d["implementation"]
    info.reported_resolution_ns = d["reported_resolution_ns"]
    info.resolution_ns = d["resolution_ns"]
    info.overhead_ns = d["overhead_ns"]
    info.python_overhead_ns = d["python_overhead_ns"]
    return info


cdef int64_t _measure_resolution(int trials) noexcept nogil:
    cdef int64_t best = INT64_MAX, t0, t1
    cdef int i
    for i in range(trials):
        t0 = cm_now_ns()
        t1 = cm_now_ns()
        while t1 == t0:
            t1 = cm_now_ns()
        if t1 - t0 < best:
            best = t1 - t0
    return best


cdef double _measure_overhead(int64_t reads) noexcept nogil:
    cdef int64_t i, t0, t1, sink = 0
    t0 = cm_now_ns()
    for i in range(reads):
        sink += cm_now_ns()
    t1 = cm_now_ns()
    if sink == 42:      # keeps the reads from being optimised away
        t1 += 1
    return <double>(t1 - t0) / <double>reads


def clock_info(int reads=200_000):
    """Measure the clock's floor; takes a few milliseconds."""
    if reads < 1000:
        raise ValueError(f"clock_info: reads must be >= 1000, got {reads}")
    cdef ClockInfo info = ClockInfo.__new__(ClockInfo)
    info.implementation = CM_CLOCK_NAME.decode("ascii")
    info.reported_resolution_ns = cm_clock_reported_resolution_ns()
    with nogil:
        info.resolution_ns = _measure_resolution(1000)
        info.overhead_ns = _measure_overhead(reads)
    f = now_ns
    cdef int64_t t0 = cm_now_ns()
    for _ in range(reads // 10):
        f()
    info.python_overhead_ns = <double>(cm_now_ns() - t0) / <double>(reads // 10)
    return info
