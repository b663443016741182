# C declarations of the small headers beside this file.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "cm_atomic.h" nogil:
    int64_t cm_atomic_load_64(int64_t *p)
    void cm_atomic_store_64(int64_t *p, int64_t v)
    int64_t cm_atomic_fetch_add_64(int64_t *p, int64_t v)
    void cm_atomic_add_relaxed_64(int64_t *p, int64_t v)
    int64_t cm_atomic_exchange_64(int64_t *p, int64_t v)
    bint cm_atomic_cas_64(int64_t *p, int64_t *expected, int64_t desired)
    void *cm_atomic_load_ptr(void **p)
    void cm_atomic_store_ptr(void **p, void *v)
    void cm_atomic_store_release_64(int64_t *p, int64_t v)
    int64_t cm_atomic_load_acquire_64(int64_t *p)
    void cm_cpu_relax()
    int cm_clz64(uint64_t v)

cdef extern from "cm_clock.h" nogil:
    int64_t cm_now_ns()
    int64_t cm_clock_reported_resolution_ns()
    double cm_wall_time_s()
    void cm_sleep_ns(int64_t ns)
    const char *CM_CLOCK_NAME
