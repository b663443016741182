# HDR histogram: HdrHistogram's bucket layout with HdrHistogram_c's index
# math, plain and atomic recording, percentiles, merging, and the V2
# compressed codec ("HISTFAAA...").
#
# The cdef functions on cm_hdr are the compiled recording API: the router's
# worker threads and the load loops call them without the GIL.

cdef enum:
    _COMPRESSED_COOKIE_BASE = 0x1c849304
    _ENCODING_COOKIE_BASE = 0x1c849303
    _V2_COMPRESSED_COOKIE = 0x1c849314     # base | word-size nibble 0x10
    _V2_ENCODING_COOKIE = 0x1c849313
    _PAYLOAD_HEADER_SIZE = 40
    _MAX_VARINT_BYTES = 9

cdef int64_t _HIGHEST_ALLOWED = INT64_MAX // 2      # as Java allows


class HistogramDecodeError(CaxtonMeterError, ValueError):
    """An encoded histogram could not be decoded: says what was wrong."""


# --- layout and index math (HdrHistogram_c) --------------------------------

cdef int32_t _buckets_needed(int64_t value, int32_t sub_bucket_count,
                             int32_t unit_magnitude) noexcept nogil:
    cdef int64_t smallest_untrackable = (<int64_t>sub_bucket_count) << unit_magnitude
    cdef int32_t needed = 1
    while smallest_untrackable <= value:
        if smallest_untrackable > INT64_MAX // 2:
            return needed + 1
        smallest_untrackable <<= 1
        needed += 1
    return needed


cdef inline int32_t _bucket_index(const cm_hdr *h, int64_t value) noexcept nogil:
    cdef int32_t pow2ceiling = 64 - cm_clz64(<uint64_t>(value | h.sub_bucket_mask))
    return pow2ceiling - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)


cdef inline int32_t _sub_bucket_index(int64_t value, int32_t bucket_index,
                                      int32_t unit_magnitude) noexcept nogil:
    return <int32_t>(value >> (bucket_index + unit_magnitude))


cdef inline int64_t _counts_index(const cm_hdr *h, int32_t bucket_index,
                                  int32_t sub_bucket_index) noexcept nogil:
    return (((<int64_t>bucket_index) + 1) << h.sub_bucket_half_count_magnitude) \
        + (sub_bucket_index - h.sub_bucket_half_count)


cdef inline int64_t hdr_counts_index_for(const cm_hdr *h, int64_t value) noexcept nogil:
    cdef int32_t bucket_index = _bucket_index(h, value)
    cdef int32_t sub_bucket_index = _sub_bucket_index(value, bucket_index, h.unit_magnitude)
    return _counts_index(h, bucket_index, sub_bucket_index)


cdef inline int64_t hdr_value_at_index(const cm_hdr *h, int64_t index) noexcept nogil:
    cdef int32_t bucket_index = <int32_t>(index >> h.sub_bucket_half_count_magnitude) - 1
    cdef int32_t sub_bucket_index = <int32_t>(index & (h.sub_bucket_half_count - 1)) \
        + h.sub_bucket_half_count
    if bucket_index < 0:
        sub_bucket_index -= h.sub_bucket_half_count
        bucket_index = 0
    return (<int64_t>sub_bucket_index) << (bucket_index + h.unit_magnitude)


cdef inline int64_t hdr_size_of_equivalent_range(const cm_hdr *h, int64_t value) noexcept nogil:
    cdef int32_t bucket_index = _bucket_index(h, value)
    cdef int32_t sub_bucket_index = _sub_bucket_index(value, bucket_index, h.unit_magnitude)
    if sub_bucket_index >= h.sub_bucket_count:
        bucket_index += 1
    return (<int64_t>1) << (h.unit_magnitude + bucket_index)


cdef inline int64_t hdr_lowest_equivalent(const cm_hdr *h, int64_t value) noexcept nogil:
    cdef int32_t bucket_index = _bucket_index(h, value)
    cdef int32_t sub_bucket_index = _sub_bucket_index(value, bucket_index, h.unit_magnitude)
    return (<int64_t>sub_bucket_index) << (bucket_index + h.unit_magnitude)


cdef inline int64_t hdr_highest_equivalent(const cm_hdr *h, int64_t value) noexcept nogil:
    return hdr_lowest_equivalent(h, value) + hdr_size_of_equivalent_range(h, value) - 1


cdef inline int64_t hdr_median_equivalent(const cm_hdr *h, int64_t value) noexcept nogil:
    return hdr_lowest_equivalent(h, value) + (hdr_size_of_equivalent_range(h, value) >> 1)


cdef int hdr_init(cm_hdr *h, int64_t lowest, int64_t highest, int32_t significant_figures) noexcept nogil:
    """Lay out h for the (validated) parameters and allocate its counts.
    Returns 0, or -1 when memory runs out."""
    cdef int64_t largest_single_unit = 2
    cdef int32_t i, sub_bucket_count_magnitude
    for i in range(significant_figures):
        largest_single_unit *= 10
    sub_bucket_count_magnitude = 64 - cm_clz64(<uint64_t>(largest_single_unit - 1))
    h.lowest_discernible_value = lowest
    h.highest_trackable_value = highest
    h.significant_figures = significant_figures
    h.sub_bucket_half_count_magnitude = (sub_bucket_count_magnitude if sub_bucket_count_magnitude > 1 else 1) - 1
    h.unit_magnitude = 63 - cm_clz64(<uint64_t>lowest)
    h.sub_bucket_count = (<int32_t>1) << (h.sub_bucket_half_count_magnitude + 1)
    h.sub_bucket_half_count = h.sub_bucket_count // 2
    h.sub_bucket_mask = (<int64_t>(h.sub_bucket_count - 1)) << h.unit_magnitude
    h.bucket_count = _buckets_needed(highest, h.sub_bucket_count, h.unit_magnitude)
    h.counts_len = (<int64_t>(h.bucket_count + 1)) * (h.sub_bucket_count // 2)
    h.highest_recordable_value = hdr_highest_equivalent(h, hdr_value_at_index(h, h.counts_len - 1))
    h.total_count = 0
    h.min_value = INT64_MAX
    h.max_value = 0
    h.overflow_count = 0
    h.counts = <int64_t *>calloc(h.counts_len, sizeof(int64_t))
    if h.counts == NULL:
        return -1
    return 0


cdef inline void hdr_reset(cm_hdr *h) noexcept nogil:
    memset(h.counts, 0, h.counts_len * sizeof(int64_t))
    h.total_count = 0
    h.min_value = INT64_MAX
    h.max_value = 0
    h.overflow_count = 0


# --- recording ---------------------------------------------------------------

cdef inline bint hdr_record(cm_hdr *h, int64_t value, int64_t count) noexcept nogil:
    """Record count x value; returns 0 (and records nothing) when value is
    outside [0, highest_recordable_value]."""
    if value < 0 or value > h.highest_recordable_value:
        return 0
    h.counts[hdr_counts_index_for(h, value)] += count
    h.total_count += count
    if value < h.min_value and value != 0:
        h.min_value = value
    if value > h.max_value:
        h.max_value = value
    return 1


cdef inline void _update_min_max_atomic(cm_hdr *h, int64_t lo, int64_t hi) noexcept nogil:
    cdef int64_t seen
    if lo != 0:
        seen = cm_atomic_load_64(&h.min_value)
        while lo < seen:
            if cm_atomic_cas_64(&h.min_value, &seen, lo):
                break
    seen = cm_atomic_load_64(&h.max_value)
    while hi > seen:
        if cm_atomic_cas_64(&h.max_value, &seen, hi):
            break


cdef inline bint hdr_record_atomic(cm_hdr *h, int64_t value, int64_t count) noexcept nogil:
    """hdr_record, safe while other threads record into h at the same time."""
    if value < 0 or value > h.highest_recordable_value:
        return 0
    cm_atomic_add_relaxed_64(&h.counts[hdr_counts_index_for(h, value)], count)
    cm_atomic_add_relaxed_64(&h.total_count, count)
    _update_min_max_atomic(h, value, value)
    return 1


cdef inline void hdr_record_or_overflow(cm_hdr *h, int64_t value, int64_t count) noexcept nogil:
    """The recording call of threaded paths: a value outside the range is
    counted in overflow_count, never dropped silently."""
    if not hdr_record_atomic(h, value, count):
        cm_atomic_add_relaxed_64(&h.overflow_count, count)


cdef bint hdr_record_corrected(cm_hdr *h, int64_t value, int64_t expected_interval,
                               int64_t count, bint atomic) noexcept nogil:
    """HdrHistogram_c's hdr_record_corrected_values: value, then the values a
    stalled recorder missed, value - k * expected_interval while they are
    >= expected_interval."""
    cdef int64_t missing
    if atomic:
        if not hdr_record_atomic(h, value, count):
            return 0
    elif not hdr_record(h, value, count):
        return 0
    if expected_interval <= 0:
        return 1
    missing = value - expected_interval
    while missing >= expected_interval:
        if atomic:
            hdr_record_atomic(h, missing, count)
        else:
            hdr_record(h, missing, count)
        missing -= expected_interval
    return 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int64_t hdr_record_values(cm_hdr *h, const int64_t *values, Py_ssize_t n) noexcept nogil:
    """Record n non-negative values; returns how many were above the range
    (they are added to overflow_count)."""
    cdef Py_ssize_t i
    cdef int64_t v, overflow = 0
    cdef int64_t lo = INT64_MAX, hi = -1
    cdef int64_t top = h.highest_recordable_value
    cdef int64_t *counts = h.counts
    for i in range(n):
        v = values[i]
        if v > top:
            overflow += 1
            continue
        counts[hdr_counts_index_for(h, v)] += 1
        if v < lo and v != 0:
            lo = v
        if v > hi:
            hi = v
    h.total_count += n - overflow
    h.overflow_count += overflow
    if lo < h.min_value:
        h.min_value = lo
    if hi > h.max_value:
        h.max_value = hi
    return overflow


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int64_t hdr_record_values_atomic(cm_hdr *h, const int64_t *values, Py_ssize_t n) noexcept nogil:
    """hdr_record_values, safe while other threads record into h."""
    cdef Py_ssize_t i
    cdef int64_t v, overflow = 0
    cdef int64_t lo = INT64_MAX, hi = -1
    cdef int64_t top = h.highest_recordable_value
    for i in range(n):
        v = values[i]
        if v > top:
            overflow += 1
            continue
        cm_atomic_add_relaxed_64(&h.counts[hdr_counts_index_for(h, v)], 1)
        if v < lo and v != 0:
            lo = v
        if v > hi:
            hi = v
    cm_atomic_add_relaxed_64(&h.total_count, n - overflow)
    if overflow:
        cm_atomic_add_relaxed_64(&h.overflow_count, overflow)
    if hi >= 0:
        _update_min_max_atomic(h, lo if lo != INT64_MAX else 0, hi)
    return overflow


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _first_negative(const int64_t *values, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t lo = 0
    for i in range(n):           # branch-free reduction first: vectorises
        lo = values[i] if values[i] < lo else lo
    if lo >= 0:
        return -1
    for i in range(n):
        if values[i] < 0:
            return i
    return -1


# --- queries ------------------------------------------------------------------

cdef inline int64_t _max_index(const cm_hdr *h) noexcept nogil:
    if h.total_count == 0:
        return -1
    return hdr_counts_index_for(h, h.max_value)


cdef int64_t hdr_value_at_percentile(const cm_hdr *h, double percentile) noexcept nogil:
    """HdrHistogram_c's hdr_value_at_percentile."""
    cdef double requested = percentile if percentile < 100.0 else 100.0
    cdef int64_t target = <int64_t>((requested / 100.0) * h.total_count + 0.5)
    cdef int64_t running = 0, i, last = _max_index(h)
    if target < 1:
        target = 1
    for i in range(last + 1):
        running += h.counts[i]
        if running >= target:
            if percentile == 0.0:
                return hdr_lowest_equivalent(h, hdr_value_at_index(h, i))
            return hdr_highest_equivalent(h, hdr_value_at_index(h, i))
    return 0


cdef void hdr_values_at_percentiles(const cm_hdr *h, const double *sorted_percentiles,
                                    int64_t *out, Py_ssize_t n) noexcept nogil:
    """Values at n ascending percentiles in one pass over the counts."""
    cdef int64_t running = 0, i = 0, last = _max_index(h), target
    cdef Py_ssize_t k
    cdef double p
    for k in range(n):
        p = sorted_percentiles[k]
        target = <int64_t>(((p if p < 100.0 else 100.0) / 100.0) * h.total_count + 0.5)
        if target < 1:
            target = 1
        while i <= last and running + h.counts[i] < target:
            running += h.counts[i]
            i += 1
        if i > last:
            out[k] = 0
        elif p == 0.0:
            out[k] = hdr_lowest_equivalent(h, hdr_value_at_index(h, i))
        else:
            out[k] = hdr_highest_equivalent(h, hdr_value_at_index(h, i))


cdef double hdr_mean(const cm_hdr *h) noexcept nogil:
    cdef long double total = 0
    cdef int64_t i, last = _max_index(h)
    if h.total_count == 0:
        return 0.0
    for i in range(last + 1):
        if h.counts[i]:
            total += (<long double>h.counts[i]) * hdr_median_equivalent(h, hdr_value_at_index(h, i))
    return <double>(total / h.total_count)


cdef double hdr_stdev(const cm_hdr *h) noexcept nogil:
    cdef long double mean, dev, total = 0
    cdef int64_t i, last = _max_index(h)
    if h.total_count == 0:
        return 0.0
    mean = hdr_mean(h)
    for i in range(last + 1):
        if h.counts[i]:
            dev = hdr_median_equivalent(h, hdr_value_at_index(h, i)) - mean
            total += dev * dev * h.counts[i]
    return sqrt(<double>(total / h.total_count))


cdef int64_t hdr_min(const cm_hdr *h) noexcept nogil:
    if h.total_count == 0 or h.counts[0] > 0:
        return 0
    return hdr_lowest_equivalent(h, h.min_value)


cdef int64_t hdr_max(const cm_hdr *h) noexcept nogil:
    if h.max_value == 0:
        return 0
    return hdr_highest_equivalent(h, h.max_value)


cdef void hdr_add_same_layout(cm_hdr *dst, const cm_hdr *src) noexcept nogil:
    """dst += src, for histograms of the same parameters (shards' copies)."""
    cdef int64_t i, last = _max_index(src)
    for i in range(last + 1):
        dst.counts[i] += src.counts[i]
    dst.total_count += src.total_count
    dst.overflow_count += src.overflow_count
    if src.min_value < dst.min_value:
        dst.min_value = src.min_value
    if src.max_value > dst.max_value:
        dst.max_value = src.max_value


cdef inline bint _same_layout(const cm_hdr *a, const cm_hdr *b) noexcept nogil:
    return (a.unit_magnitude == b.unit_magnitude
            and a.sub_bucket_half_count_magnitude == b.sub_bucket_half_count_magnitude
            and a.counts_len == b.counts_len)


# --- V2 codec (zig-zag LEB128 with zero runs, as Java and C write it) ---------

cdef inline Py_ssize_t _put_zigzag(unsigned char *out, int64_t value) noexcept nogil:
    cdef uint64_t v = ((<uint64_t>value) << 1) ^ (<uint64_t>(value >> 63))
    cdef Py_ssize_t n = 0
    while n < 8:
        if (v >> 7) == 0:
            out[n] = <unsigned char>v
            return n + 1
        out[n] = <unsigned char>((v & 0x7F) | 0x80)
        v >>= 7
        n += 1
    out[8] = <unsigned char>v          # the ninth byte carries 8 bits
    return 9


cdef Py_ssize_t _encode_counts(const cm_hdr *h, int64_t limit, unsigned char *out) noexcept nogil:
    """Counts [0, limit) as zig-zag LEB128; a run of zeros is written as its
    negated length, the way the hdrhistogram package writes it."""
    cdef Py_ssize_t n = 0
    cdef int64_t i = 0, start, c
    # a local copy: writes through `out` (a char pointer) may alias anything,
    # which would make the compiler reload h.counts on every count
    cdef const int64_t *counts = h.counts
    while i < limit:
        c = counts[i]
        if c == 0:
            start = i
            i += 1
            while i < limit and counts[i] == 0:
                i += 1
            n += _put_zigzag(out + n, start - i)
        elif c < 64:                  # zig-zag fits one byte: the common case
            out[n] = <unsigned char>(c << 1)
            n += 1
            i += 1
        else:
            n += _put_zigzag(out + n, c)
            i += 1
    return n


cdef inline Py_ssize_t _zigzag_len(int64_t value) noexcept nogil:
    cdef uint64_t v = ((<uint64_t>value) << 1) ^ (<uint64_t>(value >> 63))
    cdef Py_ssize_t n = 1
    while n < 9 and (v >> (7 * n)) != 0:
        n += 1
    return n


cdef Py_ssize_t _encoded_counts_size(const cm_hdr *h, int64_t limit) noexcept nogil:
    """The size _encode_counts will write, so that the buffer is exact (a
    worst-case buffer is large enough to be a fresh mapping each time, whose
    page faults cost more than this pass)."""
    cdef Py_ssize_t n = 0
    cdef int64_t i = 0, start, c
    cdef const int64_t *counts = h.counts
    while i < limit:
        c = counts[i]
        if c == 0:
            start = i
            i += 1
            while i < limit and counts[i] == 0:
                i += 1
            n += _zigzag_len(start - i)
        else:
            n += 1 if c < 64 else _zigzag_len(c)
            i += 1
    return n


cdef inline void _put_be32(unsigned char *out, uint32_t v) noexcept nogil:
    out[0] = <unsigned char>(v >> 24); out[1] = <unsigned char>(v >> 16)
    out[2] = <unsigned char>(v >> 8); out[3] = <unsigned char>v


cdef inline void _put_be64(unsigned char *out, uint64_t v) noexcept nogil:
    _put_be32(out, <uint32_t>(v >> 32))
    _put_be32(out + 4, <uint32_t>v)


cdef inline uint32_t _get_be32(const unsigned char *p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint64_t _get_be64(const unsigned char *p) noexcept nogil:
    return ((<uint64_t>_get_be32(p)) << 32) | _get_be32(p + 4)


# Errors of _decode_counts
cdef enum:
    _DECODE_TRUNCATED = -1
    _DECODE_OUT_OF_RANGE = -2
    _DECODE_TOTAL_OVERFLOW = -3


cdef int _decode_counts(cm_hdr *h, const unsigned char *p, Py_ssize_t n,
                        int64_t *bad_index) noexcept nogil:
    """Decode zig-zag LEB128 counts into h (which must be empty).  Accepts
    Java's 9-byte form, a single zero written as 0x00 or as a run of one, and
    runs of zeros.  Sets total, min and max."""
    cdef Py_ssize_t pos = 0
    cdef int64_t index = 0, value, total = 0, first = -1, last = -1, lo_index = -1
    cdef uint64_t raw
    cdef int shift
    cdef unsigned char b
    while pos < n:
        raw = 0
        shift = 0
        while True:
            if pos >= n:
                bad_index[0] = index
                return _DECODE_TRUNCATED
            b = p[pos]
            pos += 1
            if shift == 56:
                raw |= (<uint64_t>b) << 56
                break
            raw |= (<uint64_t>(b & 0x7F)) << shift
            if not (b & 0x80):
                break
            shift += 7
        value = <int64_t>((raw >> 1) ^ (<uint64_t>0 - (raw & 1)))
        if value < 0:
            # written so that no run, however long, can overflow index
            if value == INT64_MIN or -value > h.counts_len - index:
                bad_index[0] = index
                return _DECODE_OUT_OF_RANGE
            index -= value
            continue
        if index >= h.counts_len:
            bad_index[0] = index
            return _DECODE_OUT_OF_RANGE
        if value > 0:
            if total > INT64_MAX - value:
                bad_index[0] = index
                return _DECODE_TOTAL_OVERFLOW
            total += value
            h.counts[index] = value
            if lo_index < 0 and index > 0:
                lo_index = index
            last = index
        index += 1
    h.total_count = total
    if last >= 0:
        # as HdrHistogram_c: the top of the highest bucket, which also keeps
        # a maximum in bucket 0 (value 0 there would read as "no maximum")
        h.max_value = hdr_highest_equivalent(h, hdr_value_at_index(h, last))
    if lo_index >= 0:
        h.min_value = hdr_value_at_index(h, lo_index)
    return 0


# --- the Python type ------------------------------------------------------------

cdef object _np = None


cdef object _numpy():
    global _np
    if _np is None:
        import numpy
        _np = numpy
    return _np


cdef tuple _check_parameters(lowest, highest, significant_figures, what):
    """The constructor's arguments as ints, or a precise error."""
    checked = []
    for name, v in (("lowest_discernible_value", lowest),
                    ("highest_trackable_value", highest),
                    ("significant_figures", significant_figures)):
        if isinstance(v, bool):
            raise TypeError(f"{what}: {name} must be an int, got bool {v!r}")
        try:
            checked.append(_index(v))
        except TypeError:
            raise TypeError(f"{what}: {name} must be an int, got {type(v).__name__} {v!r}") from None
    lowest, highest, significant_figures = checked
    if lowest < 1:
        raise ValueError(f"{what}: lowest_discernible_value must be >= 1, got {lowest}")
    if highest < 2 * lowest:
        raise ValueError(f"{what}: highest_trackable_value must be >= 2 * lowest_discernible_value "
                         f"= {2 * lowest}, got {highest}")
    if highest > _HIGHEST_ALLOWED:
        raise ValueError(f"{what}: highest_trackable_value must be <= 2**62 - 1, got {highest}")
    if not 1 <= significant_figures <= 5:
        raise ValueError(f"{what}: significant_figures must be between 1 and 5, got {significant_figures}")
    # HdrHistogram_c: unit_magnitude + sub_bucket_half_count_magnitude <= 61
    unit_magnitude = int(lowest).bit_length() - 1
    sub_bucket_count_magnitude = (2 * 10 ** significant_figures - 1).bit_length()
    if unit_magnitude + sub_bucket_count_magnitude - 1 > 61:
        raise ValueError(f"{what}: lowest_discernible_value {lowest} is too large for "
                         f"{significant_figures} significant figures")
    return lowest, highest, significant_figures


cdef int64_t _int64_slow(object value, str what) except? -1:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got bool")
    try:
        value = _index(value)          # ints, numpy ints; never floats
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}") from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{what} {value} is outside the 64-bit range of a histogram value")
    return value


cdef inline int64_t _int64(object value, str what) except? -1:
    """An integer argument as int64_t.  Cython's own conversion would
    truncate a float (1.5 -> 1); this one refuses it."""
    cdef long long v
    if PyLong_CheckExact(value):
        v = _PyLong_AsLongLong_noexc(value)
        if v == -1 and PyErr_Occurred():
            PyErr_Clear()
            raise ValueError(f"{what} {value} is outside the 64-bit range of a histogram value")
        return v
    return _int64_slow(value, what)


cdef str _range_error(const cm_hdr *h, int64_t value):
    if value < 0:
        return f"value {value} is negative; a histogram records values >= 0"
    return (f"value {value} is above the histogram's range (highest_trackable_value "
            f"{h.highest_trackable_value}, recordable up to {h.highest_recordable_value})")


cdef class Histogram:
    """An HDR histogram of non-negative integer values (HdrHistogram's layout).

    Histogram(lowest_discernible_value, highest_trackable_value, significant_figures)

    Values up to ``highest_recordable_value`` (the top of the bucket holding
    ``highest_trackable_value``) are recorded.  ``record`` raises for a value
    outside that range; the bulk and threaded paths (``record_array``, the
    Recorder, the Timer) count such values in ``overflow_count`` instead.

    ``record`` is not atomic: it is safe from any number of Python threads
    (the GIL orders them).  When any writer records without the GIL
    (``record_array(..., atomic=True)``, the core's worker threads), every
    writer to that histogram must use an atomic path.
    """

    def __cinit__(self, lowest_discernible_value, highest_trackable_value, significant_figures):
        lowest, highest, sig = _check_parameters(lowest_discernible_value, highest_trackable_value,
                                                 significant_figures, "Histogram")
        if hdr_init(&self._h, lowest, highest, sig) != 0:
            raise MemoryError(f"Histogram: cannot allocate {self._h.counts_len} counts")
        self.start_time = 0.0
        self.end_time = 0.0
        self.tag = None

    def __dealloc__(self):
        free(self._h.counts)
        self._h.counts = NULL

    # -- configuration
    @property
    def lowest_discernible_value(self):
        return self._h.lowest_discernible_value

    @property
    def highest_trackable_value(self):
        return self._h.highest_trackable_value

    @property
    def significant_figures(self):
        return self._h.significant_figures

    @property
    def highest_recordable_value(self):
        """The largest value ``record`` accepts: the top of the last bucket."""
        return self._h.highest_recordable_value

    @property
    def counts_len(self):
        """The number of counters (HdrHistogram's countsArrayLength)."""
        return self._h.counts_len

    # -- recording
    def record(self, value, count=1):
        """record(value, count=1): record ``value`` ``count`` times; raises
        ValueError outside the range, TypeError for a non-integer."""
        cdef int64_t v = _int64(value, "record: value")
        cdef int64_t n = 1 if count is 1 else _int64(count, "record: count")
        if n < 1:
            raise ValueError(f"record: count must be >= 1, got {n}")
        if not hdr_record(&self._h, v, n):
            raise ValueError("record: " + _range_error(&self._h, v))

    def record_corrected(self, value, expected_interval, count=1):
        """record_corrected(value, expected_interval, count=1): record
        ``value`` and correct for coordinated omission the way HdrHistogram_c
        and Java do: also record value - k * expected_interval
        for every k >= 1 while that is >= expected_interval.  (25, 10) records
        {25, 15}; the hdrhistogram package also records 5.
        ``expected_interval`` 0 records ``value`` alone."""
        cdef int64_t v = _int64(value, "record_corrected: value")
        cdef int64_t interval = _int64(expected_interval, "record_corrected: expected_interval")
        cdef int64_t n = _int64(count, "record_corrected: count")
        if n < 1:
            raise ValueError(f"record_corrected: count must be >= 1, got {n}")
        if interval < 0:
            raise ValueError(f"record_corrected: expected_interval must be >= 0, got {interval}")
        if not hdr_record_corrected(&self._h, v, interval, n, False):
            raise ValueError("record_corrected: " + _range_error(&self._h, v))

    def record_array(self, values, *, bint atomic=False):
        """Record every value of an integer array (numpy or any sequence of
        ints) in compiled code.  Raises TypeError for a non-integer array and
        ValueError for a negative value (nothing is recorded then); values
        above the range are counted in ``overflow_count``.  Returns how many
        values of this call overflowed.

        ``atomic=True`` releases the GIL and records with atomic
        instructions, so that several threads can record into this histogram
        at once."""
        cdef const int64_t[::1] view
        cdef Py_ssize_t n, bad
        cdef int64_t overflow = 0, extra = 0
        arr, extra = _as_int64_array(values, "record_array")
        view = arr
        n = view.shape[0]
        if n == 0:
            if extra:
                self._add_overflow(extra, atomic)
            return extra
        with nogil:
            bad = _first_negative(&view[0], n)
        if bad >= 0:
            raise ValueError(f"record_array: values[{bad}] = {view[bad]} is negative; "
                             "a histogram records values >= 0 (nothing was recorded)")
        if atomic:
            with nogil:
                overflow = hdr_record_values_atomic(&self._h, &view[0], n)
        else:
            overflow = hdr_record_values(&self._h, &view[0], n)
        if extra:
            self._add_overflow(extra, atomic)
        return overflow + extra

    def record_overflow(self, count):
        """Count ``count`` values that fell outside the range (kept in
        ``overflow_count``), for values measured elsewhere: an interval log
        or a worker process that overflowed."""
        cdef int64_t n = _int64(count, "record_overflow: count")
        if n < 0:
            raise ValueError(f"record_overflow: count must be >= 0, got {n}")
        self._h.overflow_count += n

    cdef _add_overflow(self, int64_t n, bint atomic):
        if atomic:
            cm_atomic_add_relaxed_64(&self._h.overflow_count, n)
        else:
            self._h.overflow_count += n

    # -- statistics
    @property
    def total_count(self):
        return self._h.total_count

    @property
    def overflow_count(self):
        """Values that bulk or threaded paths could not record (outside the range)."""
        return self._h.overflow_count

    @property
    def min(self):
        """The lowest equivalent value of the smallest recorded value (0 if empty)."""
        return hdr_min(&self._h)

    @property
    def max(self):
        """The highest equivalent value of the largest recorded value (0 if empty)."""
        return hdr_max(&self._h)

    @property
    def mean(self):
        return hdr_mean(&self._h)

    @property
    def stdev(self):
        return hdr_stdev(&self._h)

    def value_at_percentile(self, double percentile):
        """The value at ``percentile`` (0-100), HdrHistogram_c's rule: the
        highest equivalent value of the bucket where the running count reaches
        round(percentile / 100 * total_count), at least 1; 0 if empty."""
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"value_at_percentile: percentile must be within [0, 100], got {percentile}")
        return hdr_value_at_percentile(&self._h, percentile)

    def percentiles(self, percentiles):
        """Values at each of ``percentiles`` (any order), in one pass; returns
        a list in the order given."""
        ps = [float(p) for p in percentiles]
        cdef Py_ssize_t n = len(ps), k
        for k in range(n):
            if not 0.0 <= ps[k] <= 100.0:
                raise ValueError(f"percentiles: percentile [{k}] must be within [0, 100], got {ps[k]}")
        order = sorted(range(n), key=ps.__getitem__)
        cdef double *sorted_ps = <double *>malloc(max(n, 1) * sizeof(double))
        cdef int64_t *out = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
        if sorted_ps == NULL or out == NULL:
            free(sorted_ps); free(out)
            raise MemoryError()
        try:
            for k in range(n):
                sorted_ps[k] = ps[order[k]]
            hdr_values_at_percentiles(&self._h, sorted_ps, out, n)
            result = [0] * n
            for k in range(n):
                result[order[k]] = out[k]
            return result
        finally:
            free(sorted_ps)
            free(out)

    def count_at(self, value):
        """The count of the bucket that holds ``value``."""
        cdef int64_t v = _int64(value, "count_at: value")
        if v < 0 or v > self._h.highest_recordable_value:
            raise ValueError("count_at: " + _range_error(&self._h, v))
        return self._h.counts[hdr_counts_index_for(&self._h, v)]

    def lowest_equivalent_value(self, value):
        cdef int64_t v = _int64(value, "lowest_equivalent_value: value")
        if v < 0 or v > self._h.highest_recordable_value:
            raise ValueError("lowest_equivalent_value: " + _range_error(&self._h, v))
        return hdr_lowest_equivalent(&self._h, v)

    def highest_equivalent_value(self, value):
        cdef int64_t v = _int64(value, "highest_equivalent_value: value")
        if v < 0 or v > self._h.highest_recordable_value:
            raise ValueError("highest_equivalent_value: " + _range_error(&self._h, v))
        return hdr_highest_equivalent(&self._h, v)

    def median_equivalent_value(self, value):
        cdef int64_t v = _int64(value, "median_equivalent_value: value")
        if v < 0 or v > self._h.highest_recordable_value:
            raise ValueError("median_equivalent_value: " + _range_error(&self._h, v))
        return hdr_median_equivalent(&self._h, v)

    def __iter__(self):
        """(value, count) for each recorded bucket, ascending; value is the
        bucket's lowest equivalent value, so ``other.record(value, count)``
        reproduces the histogram."""
        cdef int64_t i = 0, c
        while i <= _max_index(&self._h):
            c = self._h.counts[i]
            if c:
                yield (hdr_value_at_index(&self._h, i), c)
            i += 1

    def buckets(self):
        """The recorded buckets as two numpy int64 arrays: (values, counts)."""
        np = _numpy()
        cdef int64_t last = _max_index(&self._h), i, k = 0, nonzero = 0
        for i in range(last + 1):
            if self._h.counts[i]:
                nonzero += 1
        values = np.empty(nonzero, dtype=np.int64)
        counts = np.empty(nonzero, dtype=np.int64)
        cdef int64_t[::1] vv = values, cv = counts
        for i in range(last + 1):
            if self._h.counts[i]:
                vv[k] = hdr_value_at_index(&self._h, i)
                cv[k] = self._h.counts[i]
                k += 1
        return values, counts

    # -- whole-histogram operations
    def add(self, Histogram other not None):
        """Add other's counts into this histogram.  The ranges may differ;
        raises ValueError, changing nothing, when other holds values above
        this histogram's range."""
        cdef int64_t i, last = _max_index(&other._h)
        cdef int64_t top
        if other is self:
            raise ValueError("add: cannot add a histogram to itself; add a copy()")
        if last >= 0:
            top = hdr_value_at_index(&other._h, last)
            if top > self._h.highest_recordable_value:
                raise ValueError(
                    f"add: the other histogram holds values up to {hdr_max(&other._h)}, above this "
                    f"histogram's range (recordable up to {self._h.highest_recordable_value}); "
                    "nothing was added")
        if _same_layout(&self._h, &other._h):
            for i in range(last + 1):
                self._h.counts[i] += other._h.counts[i]
            self._h.total_count += other._h.total_count
            if other._h.min_value < self._h.min_value:
                self._h.min_value = other._h.min_value
            if other._h.max_value > self._h.max_value:
                self._h.max_value = other._h.max_value
        else:
            for i in range(last + 1):
                if other._h.counts[i]:
                    hdr_record(&self._h, hdr_value_at_index(&other._h, i), other._h.counts[i])
        self._h.overflow_count += other._h.overflow_count
        if other.start_time and (not self.start_time or other.start_time < self.start_time):
            self.start_time = other.start_time
        if other.end_time > self.end_time:
            self.end_time = other.end_time

    def reset(self):
        """Forget every recorded value (and the overflow count and times)."""
        hdr_reset(&self._h)
        self.start_time = 0.0
        self.end_time = 0.0

    def copy(self):
        cdef Histogram c = Histogram(self._h.lowest_discernible_value,
                                     self._h.highest_trackable_value,
                                     self._h.significant_figures)
        memcpy(c._h.counts, self._h.counts, self._h.counts_len * sizeof(int64_t))
        c._h.total_count = self._h.total_count
        c._h.min_value = self._h.min_value
        c._h.max_value = self._h.max_value
        c._h.overflow_count = self._h.overflow_count
        c.start_time = self.start_time
        c.end_time = self.end_time
        c.tag = self.tag
        return c

    def __eq__(self, other):
        """Equal when the resolution (lowest_discernible_value, significant
        figures), the overflow count and every bucket's count are equal; the
        top of the range, times and tag do not count."""
        if not isinstance(other, Histogram):
            return NotImplemented
        cdef Histogram o = <Histogram>other
        cdef int64_t n = _max_index(&self._h) + 1
        if (self._h.lowest_discernible_value != o._h.lowest_discernible_value
                or self._h.significant_figures != o._h.significant_figures
                or self._h.total_count != o._h.total_count
                or self._h.overflow_count != o._h.overflow_count
                or n != _max_index(&o._h) + 1):
            return False
        return n <= 0 or memcmp(self._h.counts, o._h.counts, n * sizeof(int64_t)) == 0

    __hash__ = None

    def __reduce__(self):
        return (_histogram_from_state,
                (self.encode(), self._h.overflow_count,
                 self.start_time, self.end_time, self.tag))

    def __repr__(self):
        return (f"Histogram({self._h.lowest_discernible_value}, {self._h.highest_trackable_value}, "
                f"{self._h.significant_figures}, total_count={self._h.total_count})")

    # -- codec
    def encode(self):
        """The V2 compressed, base64 encoding ("HISTFAAA..."), the very string
        the hdrhistogram package's ``encode()`` returns for the same counts."""
        cdef int64_t limit = _max_index(&self._h) + 1
        cdef Py_ssize_t size
        with nogil:
            size = _encoded_counts_size(&self._h, limit)
        cdef bytes buf = PyBytes_FromStringAndSize(NULL, _PAYLOAD_HEADER_SIZE + size)
        cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(buf)   # not yet shared
        cdef Py_ssize_t n
        cdef double ratio = 1.0
        cdef uint64_t ratio_bits
        memcpy(&ratio_bits, &ratio, sizeof(double))
        with nogil:
            n = _encode_counts(&self._h, limit, p + _PAYLOAD_HEADER_SIZE)
            _put_be32(p, _V2_ENCODING_COOKIE)
            _put_be32(p + 4, <uint32_t>n)
            _put_be32(p + 8, 0)                                  # normalizing index offset
            _put_be32(p + 12, <uint32_t>self._h.significant_figures)
            _put_be64(p + 16, <uint64_t>self._h.lowest_discernible_value)
            _put_be64(p + 24, <uint64_t>self._h.highest_trackable_value)
            _put_be64(p + 32, ratio_bits)                        # integer to double ratio
        if n != size:
            raise AssertionError(f"encode: wrote {n} bytes of counts, sized {size}")
        compressed = _zlib_compress(buf)
        cdef bytearray out = bytearray(8)
        p = <unsigned char *>PyByteArray_AS_STRING(out)
        _put_be32(p, _V2_COMPRESSED_COOKIE)
        _put_be32(p + 4, <uint32_t>len(compressed))
        out += compressed
        return _b2a_base64(out, newline=False).decode("ascii")

    @staticmethod
    def decode(encoded):
        """A histogram from a V2 encoding (str or bytes): base64 of the
        compressed form, as Java, C and the hdrhistogram package write it.
        Raises HistogramDecodeError saying what was wrong."""
        return _decode(encoded)


cdef object _zlib_compress = None
cdef object _zlib_decompressobj = None
cdef object _zlib_error = None
cdef object _b2a_base64 = None
cdef object _a2b_base64 = None


cdef _load_codecs():
    global _zlib_compress, _zlib_decompressobj, _zlib_error, _b2a_base64, _a2b_base64
    import zlib, binascii
    _zlib_compress = zlib.compress
    _zlib_decompressobj = zlib.decompressobj
    _zlib_error = zlib.error
    _b2a_base64 = binascii.b2a_base64
    _a2b_base64 = binascii.a2b_base64


_load_codecs()


cdef tuple _as_int64_array(values, str what):
    """values as a contiguous int64 numpy array, and how many uint64 values
    above INT64_MAX were set aside (they overflow any histogram)."""
    np = _numpy()
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind not in "iu":
        if arr.size == 0 and kind == "f" and not isinstance(values, np.ndarray):
            return np.empty(0, dtype=np.int64), 0        # an empty list
        raise TypeError(f"{what}: values must be an array of integers, got dtype {arr.dtype}"
                        + (" (convert durations to integer units first)" if kind == "f" else ""))
    arr = arr.reshape(-1)
    extra = 0
    if arr.dtype == np.uint64:
        big = arr > np.uint64(INT64_MAX)
        extra = int(np.count_nonzero(big))
        if extra:
            arr = arr[~big]
    if arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    return np.ascontiguousarray(arr), extra


def _histogram_from_state(encoded, overflow, start_time, end_time, tag):
    cdef Histogram h = _decode(encoded)
    h._h.overflow_count = overflow
    h.start_time = start_time
    h.end_time = end_time
    h.tag = tag
    return h


cdef Histogram _decode(encoded):
    cdef bytes raw
    cdef const unsigned char *p
    cdef uint32_t cookie, length, payload_len, normalizing_offset, sig
    cdef int64_t lowest, highest, bad_index = 0
    cdef int rc
    if isinstance(encoded, str):
        try:
            encoded = encoded.encode("ascii")
        except UnicodeEncodeError:
            raise HistogramDecodeError("decode: the encoded histogram holds non-ASCII characters; "
                                       "expected base64 text") from None
    elif isinstance(encoded, (bytearray, memoryview)):
        encoded = bytes(encoded)
    elif not isinstance(encoded, bytes):
        raise TypeError(f"decode: expected str or bytes, got {type(encoded).__name__}")
    encoded = encoded.strip()
    if not encoded:
        raise HistogramDecodeError("decode: the encoded histogram is empty")
    try:
        raw = _a2b_base64(encoded, strict_mode=True)
    except TypeError:      # Python 3.10: no strict mode
        import base64
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as e:
            raise HistogramDecodeError(f"decode: not valid base64 ({e})") from None
    except ValueError as e:
        raise HistogramDecodeError(f"decode: not valid base64 ({e})") from None
    if len(raw) < 8:
        raise HistogramDecodeError(f"decode: {len(raw)} bytes after base64 decoding; "
                                   "the header alone takes 8")
    p = raw
    cookie = _get_be32(p)
    length = _get_be32(p + 4)
    if (cookie & ~0xf0) == _ENCODING_COOKIE_BASE:
        # an uncompressed V2 encoding (Java's encodeIntoByteBuffer)
        return _decode_payload(raw, cookie)
    if (cookie & ~0xf0) != _COMPRESSED_COOKIE_BASE:
        if (cookie & ~0xff) == 0x1c849300:
            raise HistogramDecodeError(f"decode: cookie 0x{cookie:08x} is an older (V0/V1) encoding; "
                                       "only V2 (0x1c849314) is supported")
        raise HistogramDecodeError(f"decode: cookie 0x{cookie:08x} is not an HdrHistogram V2 "
                                   "compressed encoding (expected 0x1c849314)")
    if length != len(raw) - 8:
        raise HistogramDecodeError(f"decode: the header announces {length} bytes of compressed "
                                   f"payload but {len(raw) - 8} follow (truncated or padded)")
    d = _zlib_decompressobj()
    try:
        header = d.decompress(raw[8:], _PAYLOAD_HEADER_SIZE)
    except _zlib_error as e:
        raise HistogramDecodeError(f"decode: corrupt zlib stream ({e})") from None
    if len(header) < _PAYLOAD_HEADER_SIZE:
        raise HistogramDecodeError(f"decode: the decompressed payload has {len(header)} bytes; "
                                   f"its header alone takes {_PAYLOAD_HEADER_SIZE}")
    p = header
    cookie = _get_be32(p)
    if (cookie & ~0xf0) != _ENCODING_COOKIE_BASE:
        raise HistogramDecodeError(f"decode: payload cookie 0x{cookie:08x} is not a V2 "
                                   "encoding cookie (expected 0x1c849313)")
    h = _histogram_for_header(header)
    cdef int64_t limit = (<Histogram>h)._h.counts_len * _MAX_VARINT_BYTES + 1
    try:
        rest = d.decompress(d.unconsumed_tail, limit)
        if d.unconsumed_tail:
            raise HistogramDecodeError("decode: the payload holds more counts than the "
                                       "histogram's range allows")
        rest += d.flush()
    except _zlib_error as e:
        raise HistogramDecodeError(f"decode: corrupt zlib stream ({e})") from None
    if not d.eof:
        raise HistogramDecodeError("decode: the zlib stream is truncated")
    return _decode_payload(header + rest, cookie, h)


cdef Histogram _histogram_for_header(bytes header):
    cdef const unsigned char *p = header
    # The normalizing index offset (bytes 8-11) is where a Java histogram
    # shifted by shiftValuesLeft/Right keeps its counts in memory; its
    # encoder writes the counts at their logical indices all the same
    # (getCountAtIndex), so the payload reads the same whatever the offset,
    # as HdrHistogram_c and HdrHistogram_py read it.
    cdef uint32_t sig = _get_be32(p + 12)
    cdef uint64_t lowest = _get_be64(p + 16), highest = _get_be64(p + 24)
    try:
        _check_parameters(int(lowest), int(highest), int(sig), "decode")
    except ValueError as e:
        raise HistogramDecodeError(f"decode: the header holds invalid parameters: {e}") from None
    return Histogram(int(lowest), int(highest), int(sig))


cdef Histogram _decode_payload(bytes payload, uint32_t cookie, Histogram h=None):
    cdef const unsigned char *p
    cdef uint32_t payload_len
    cdef Py_ssize_t available, body
    cdef int64_t bad_index = 0
    cdef int rc
    if len(payload) < _PAYLOAD_HEADER_SIZE:
        raise HistogramDecodeError(f"decode: the payload has {len(payload)} bytes; its header "
                                   f"alone takes {_PAYLOAD_HEADER_SIZE}")
    if h is None:
        h = _histogram_for_header(payload[:_PAYLOAD_HEADER_SIZE])
    p = payload
    payload_len = _get_be32(p + 4)
    available = len(payload) - _PAYLOAD_HEADER_SIZE
    if payload_len == available:
        body = available
    elif payload_len == len(payload):
        body = available           # older C encoders counted the header too
    elif payload_len < available:
        raise HistogramDecodeError(f"decode: the payload header announces {payload_len} bytes of "
                                   f"counts but {available} follow")
    else:
        raise HistogramDecodeError(f"decode: the payload is truncated: its header announces "
                                   f"{payload_len} bytes of counts but {available} follow")
    with nogil:
        rc = _decode_counts(&h._h, p + _PAYLOAD_HEADER_SIZE, body, &bad_index)
    if rc == _DECODE_TRUNCATED:
        raise HistogramDecodeError(f"decode: the counts end inside a varint (at counts index {bad_index})")
    if rc == _DECODE_OUT_OF_RANGE:
        raise HistogramDecodeError(f"decode: counts run past the histogram's {h._h.counts_len} "
                                   f"counters (at counts index {bad_index})")
    if rc == _DECODE_TOTAL_OVERFLOW:
        raise HistogramDecodeError(f"decode: the counts add up to more than 2**63 - 1 "
                                   f"(at counts index {bad_index})")
    return h
