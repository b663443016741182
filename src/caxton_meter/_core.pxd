# Declarations of the compiled core: its C structures and the attributes of
# its extension types.  Cython reads this file before _core.pyx.
from libc.stdint cimport int32_t, int64_t


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
