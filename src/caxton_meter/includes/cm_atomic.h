/* Atomic operations on 64-bit integers and pointers for the compiled core.
 *
 * Modelled on HdrHistogram_c's hdr_atomic.h: GCC/Clang __atomic builtins,
 * MSVC Interlocked intrinsics.  Counters use relaxed ordering (only their
 * sums matter); the writer-reader phaser uses sequentially consistent
 * ordering, which its correctness argument relies on.
 */
#ifndef CM_ATOMIC_H
#define CM_ATOMIC_H

#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <windows.h>

static __inline int64_t cm_atomic_load_64(int64_t *p) {
    return InterlockedOr64((volatile LONG64 *)p, 0);
}
static __inline void cm_atomic_store_64(int64_t *p, int64_t v) {
    InterlockedExchange64((volatile LONG64 *)p, v);
}
static __inline int64_t cm_atomic_fetch_add_64(int64_t *p, int64_t v) {
    return InterlockedExchangeAdd64((volatile LONG64 *)p, v);
}
static __inline void cm_atomic_add_relaxed_64(int64_t *p, int64_t v) {
    InterlockedExchangeAdd64((volatile LONG64 *)p, v);
}
static __inline int64_t cm_atomic_exchange_64(int64_t *p, int64_t v) {
    return InterlockedExchange64((volatile LONG64 *)p, v);
}
static __inline int cm_atomic_cas_64(int64_t *p, int64_t *expected, int64_t desired) {
    int64_t seen = InterlockedCompareExchange64((volatile LONG64 *)p, desired, *expected);
    if (seen == *expected) return 1;
    *expected = seen;
    return 0;
}
static __inline void *cm_atomic_load_ptr(void **p) {
    return InterlockedCompareExchangePointer((PVOID volatile *)p, NULL, NULL);
}
static __inline void cm_atomic_store_ptr(void **p, void *v) {
    InterlockedExchangePointer((PVOID volatile *)p, v);
}
static __inline void cm_atomic_store_release_64(int64_t *p, int64_t v) {
    InterlockedExchange64((volatile LONG64 *)p, v);
}
static __inline int64_t cm_atomic_load_acquire_64(int64_t *p) {
    return InterlockedOr64((volatile LONG64 *)p, 0);
}
static __inline void cm_cpu_relax(void) { YieldProcessor(); }
static __inline int cm_clz64(uint64_t v) {
    unsigned long index;
    _BitScanReverse64(&index, v);
    return 63 - (int)index;
}

#else /* GCC, Clang */

static inline int64_t cm_atomic_load_64(int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void cm_atomic_store_64(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int64_t cm_atomic_fetch_add_64(int64_t *p, int64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline void cm_atomic_add_relaxed_64(int64_t *p, int64_t v) {
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline int64_t cm_atomic_exchange_64(int64_t *p, int64_t v) {
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int cm_atomic_cas_64(int64_t *p, int64_t *expected, int64_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline void *cm_atomic_load_ptr(void **p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void cm_atomic_store_ptr(void **p, void *v) {
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
/* A single writer's counter that other threads read: a plain store on x86,
 * ordered after the writer's earlier stores. */
static inline void cm_atomic_store_release_64(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int64_t cm_atomic_load_acquire_64(int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void cm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/* v must not be zero */
static inline int cm_clz64(uint64_t v) { return __builtin_clzll(v); }

#endif

#endif /* CM_ATOMIC_H */
