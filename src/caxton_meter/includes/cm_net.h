/* The network targets' system calls (_net.pxi): non-blocking TCP sockets to
 * an IPv4 address, epoll, and a timerfd for the open loop's arrivals.
 *
 * Every call returns a result >= 0 or a negated errno, so that the loop
 * never reads errno across calls.  Linux only for now: elsewhere
 * CM_NET_SUPPORTED is 0 and every call fails with -ENOSYS (the Python layer
 * refuses before calling). */
#ifndef CM_NET_H
#define CM_NET_H

#include <stdint.h>
#include <string.h>
#include <errno.h>

/* events reported by cm_net_wait */
#define CM_NET_READ 1
#define CM_NET_WRITE 2
#define CM_NET_ERROR 4          /* error or hang-up: a read or SO_ERROR says which */

#if defined(__linux__)
#define CM_NET_SUPPORTED 1

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static inline int cm_net_epoll(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* A non-blocking socket connecting to addr:port (host byte order).
 * Returns the socket, with *connected set when the connection is already
 * up (it may be on the loopback) and clear while it is in progress; or a
 * negated errno (ECONNREFUSED can come at once on the loopback). */
static inline int cm_net_connect(uint32_t addr, int port, int *connected) {
    struct sockaddr_in sa;
    int one = 1, rc;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(addr);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc == 0) {
        *connected = 1;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *connected = 0;
        return fd;
    }
    rc = -errno;
    close(fd);
    return rc;
}

/* The pending error of a connecting socket: 0 once it is connected. */
static inline int cm_net_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

/* Watch fd for reading, writing or both (events of CM_NET_*), tagged with
 * data; add when it is not watched yet, otherwise change. */
static inline int cm_net_watch(int ep, int fd, int events, uint64_t data, int add) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((events & CM_NET_READ) ? (EPOLLIN | EPOLLRDHUP) : 0)
              | ((events & CM_NET_WRITE) ? EPOLLOUT : 0);
    ev.data.u64 = data;
    return epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

#define CM_NET_MAX_EVENTS 256

static inline int cm_net_events(struct epoll_event *evs, int n, uint64_t *data, int *flags) {
    int i;
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        data[i] = evs[i].data.u64;
        flags[i] = ((e & (EPOLLIN | EPOLLRDHUP)) ? CM_NET_READ : 0)
                 | ((e & EPOLLOUT) ? CM_NET_WRITE : 0)
                 | ((e & (EPOLLERR | EPOLLHUP)) ? CM_NET_ERROR : 0);
    }
    return n;
}

/* Up to max (at most CM_NET_MAX_EVENTS) events, waiting at most timeout_ms
 * (0: do not wait).  Returns how many, each as its tag and CM_NET_* flags. */
static inline int cm_net_wait(int ep, uint64_t *data, int *flags, int max, int timeout_ms) {
    struct epoll_event evs[CM_NET_MAX_EVENTS];
    if (max > CM_NET_MAX_EVENTS) max = CM_NET_MAX_EVENTS;
    return cm_net_events(evs, epoll_wait(ep, evs, max, timeout_ms), data, flags);
}

/* cm_net_wait with the timeout in ns (epoll_pwait2, Linux 5.11): an
 * arrival's wake-up without a timer to set and read.  -ENOSYS where the
 * kernel or the headers lack it (the caller falls back to the timer). */
static inline int cm_net_wait_ns(int ep, uint64_t *data, int *flags, int max, int64_t timeout_ns) {
#if defined(SYS_epoll_pwait2) && !defined(CM_NET_NO_PWAIT2)   /* the latter: to test the timer */
    struct epoll_event evs[CM_NET_MAX_EVENTS];
    struct timespec ts;
    if (max > CM_NET_MAX_EVENTS) max = CM_NET_MAX_EVENTS;
    if (timeout_ns < 0) timeout_ns = 0;
    ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
    ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
    return cm_net_events(evs, (int)syscall(SYS_epoll_pwait2, ep, evs, max, &ts, NULL, 0),
                         data, flags);
#else
    (void)ep; (void)data; (void)flags; (void)max; (void)timeout_ns;
    return -ENOSYS;
#endif
}

static inline int64_t cm_net_send(int fd, const char *buf, int64_t len) {
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    return n >= 0 ? (int64_t)n : -(int64_t)errno;
}

static inline int64_t cm_net_recv(int fd, char *buf, int64_t len) {
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    return n >= 0 ? (int64_t)n : -(int64_t)errno;
}

static inline void cm_net_close(int fd) { close(fd); }

/* A timer on the monotonic clock (cm_now_ns's), watched by epoll. */
static inline int cm_net_timer(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Fire the timer at at_ns (a cm_now_ns reading); 0 disarms it. */
static inline int cm_net_timer_set(int fd, int64_t at_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000LL);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000LL);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) == 0 ? 0 : -errno;
}

static inline void cm_net_timer_clear(int fd) {
    uint64_t expirations;
    ssize_t n = read(fd, &expirations, sizeof expirations);
    (void)n;
}

/* The calling thread's timer slack (how late the kernel may fire its
 * timers, 50 us by default) set to ns; returns the previous slack, to be
 * given back when the loop ends. */
static inline int64_t cm_net_timer_slack(int64_t ns) {
    int previous = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0);
    return previous < 0 ? 0 : (int64_t)previous;
}

#else
#define CM_NET_SUPPORTED 0

#if defined(_MSC_VER)
#define CM_NET_STUB static __inline
#else
#define CM_NET_STUB static inline
#endif

CM_NET_STUB int cm_net_epoll(void) { return -ENOSYS; }
CM_NET_STUB int cm_net_connect(uint32_t addr, int port, int *connected) {
    (void)addr; (void)port; *connected = 0; return -ENOSYS;
}
CM_NET_STUB int cm_net_socket_error(int fd) { (void)fd; return ENOSYS; }
CM_NET_STUB int cm_net_watch(int ep, int fd, int events, uint64_t data, int add) {
    (void)ep; (void)fd; (void)events; (void)data; (void)add; return -ENOSYS;
}
#define CM_NET_MAX_EVENTS 256
CM_NET_STUB int cm_net_wait(int ep, uint64_t *data, int *flags, int max, int timeout_ms) {
    (void)ep; (void)data; (void)flags; (void)max; (void)timeout_ms; return -ENOSYS;
}
CM_NET_STUB int cm_net_wait_ns(int ep, uint64_t *data, int *flags, int max, int64_t timeout_ns) {
    (void)ep; (void)data; (void)flags; (void)max; (void)timeout_ns; return -ENOSYS;
}
CM_NET_STUB int64_t cm_net_send(int fd, const char *buf, int64_t len) {
    (void)fd; (void)buf; (void)len; return -ENOSYS;
}
CM_NET_STUB int64_t cm_net_recv(int fd, char *buf, int64_t len) {
    (void)fd; (void)buf; (void)len; return -ENOSYS;
}
CM_NET_STUB void cm_net_close(int fd) { (void)fd; }
CM_NET_STUB int cm_net_timer(void) { return -ENOSYS; }
CM_NET_STUB int cm_net_timer_set(int fd, int64_t at_ns) { (void)fd; (void)at_ns; return -ENOSYS; }
CM_NET_STUB void cm_net_timer_clear(int fd) { (void)fd; }
CM_NET_STUB int64_t cm_net_timer_slack(int64_t ns) { (void)ns; return 0; }
#endif

/* errno values the loop tells apart (absent ones never match) */
#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef ECONNRESET
#define ECONNRESET 104
#endif
#ifndef ETIMEDOUT
#define ETIMEDOUT 110
#endif
#ifndef EPIPE
#define EPIPE 32
#endif
#ifndef EAGAIN
#define EAGAIN 11
#endif
#ifndef EWOULDBLOCK
#define EWOULDBLOCK EAGAIN
#endif
#ifndef EINTR
#define EINTR 4
#endif

#endif /* CM_NET_H */
