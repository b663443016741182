/* The core's clocks: a monotonic clock in nanoseconds for intervals, and the
 * wall clock for time stamps in logs and results. */
#ifndef CM_CLOCK_H
#define CM_CLOCK_H

#include <stdint.h>

#if defined(_WIN32)
#include <windows.h>

static __inline int64_t cm_now_ns(void) {
    static LARGE_INTEGER freq = {0};
    LARGE_INTEGER now;
    if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (int64_t)((double)now.QuadPart * (1e9 / (double)freq.QuadPart));
}
static __inline int64_t cm_clock_reported_resolution_ns(void) {
    LARGE_INTEGER freq;
    QueryPerformanceFrequency(&freq);
    return (int64_t)(1e9 / (double)freq.QuadPart + 0.5);
}
static __inline double cm_wall_time_s(void) {
    FILETIME ft;
    ULARGE_INTEGER t;
    GetSystemTimePreciseAsFileTime(&ft);
    t.LowPart = ft.dwLowDateTime;
    t.HighPart = ft.dwHighDateTime;
    /* 100 ns units since 1601-01-01 */
    return (double)(t.QuadPart - 116444736000000000ULL) / 1e7;
}
static __inline void cm_sleep_ns(int64_t ns) { Sleep((DWORD)(ns / 1000000)); }
#define CM_CLOCK_NAME "QueryPerformanceCounter"

#else
#include <time.h>

static inline int64_t cm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline int64_t cm_clock_reported_resolution_ns(void) {
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC, &ts) != 0) return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline double cm_wall_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static inline void cm_sleep_ns(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    nanosleep(&ts, NULL);
}
#define CM_CLOCK_NAME "clock_gettime(CLOCK_MONOTONIC)"
#endif

#endif /* CM_CLOCK_H */
