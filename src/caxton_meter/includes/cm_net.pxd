# C declarations of the network targets (_net.pxi): the system calls'
# shims in cm_net.h and the vendored picohttpparser.
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "cm_net.h" nogil:
    int CM_NET_SUPPORTED
    int CM_NET_READ
    int CM_NET_WRITE
    int CM_NET_ERROR
    int CM_NET_MAX_EVENTS
    int ECONNREFUSED
    int ECONNRESET
    int ETIMEDOUT
    int EPIPE
    int EAGAIN
    int EWOULDBLOCK
    int EINTR
    int cm_net_epoll()
    int cm_net_connect(uint32_t addr, int port, int *connected)
    int cm_net_socket_error(int fd)
    int cm_net_watch(int ep, int fd, int events, uint64_t data, int add)
    int cm_net_wait(int ep, uint64_t *data, int *flags, int max, int timeout_ms)
    int cm_net_wait_ns(int ep, uint64_t *data, int *flags, int max, int64_t timeout_ns)
    int ENOSYS
    int64_t cm_net_send(int fd, const char *buf, int64_t len)
    int64_t cm_net_recv(int fd, char *buf, int64_t len)
    void cm_net_close(int fd)
    int cm_net_timer()
    int cm_net_timer_set(int fd, int64_t at_ns)
    void cm_net_timer_clear(int fd)
    int64_t cm_net_timer_slack(int64_t ns)

cdef extern from "picohttpparser/picohttpparser.h" nogil:
    struct phr_header:
        const char *name
        size_t name_len
        const char *value
        size_t value_len

    struct phr_chunked_decoder:
        size_t bytes_left_in_chunk
        char consume_trailer

    int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                           const char **msg, size_t *msg_len, phr_header *headers,
                           size_t *num_headers, size_t last_len)
    Py_ssize_t phr_decode_chunked(phr_chunked_decoder *decoder, char *buf, size_t *bufsz)
