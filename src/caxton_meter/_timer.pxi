# Timing a block or a function into a Histogram or a Recorder with one clock
# read on each side and no Python-level work in between.


cdef inline void _timer_record(Histogram histogram, Recorder recorder, int64_t elapsed) noexcept:
    # A timing never raises into the timed code: a duration outside the
    # range is counted in overflow_count.
    if histogram is not None:
        if not hdr_record(&histogram._h, elapsed, 1):
            histogram._h.overflow_count += 1
    else:
        recorder_record(&recorder._phaser, &recorder._active, elapsed, 1)


cdef object _update_wrapper = None
cdef object _iscoroutinefunction = None


@cython.freelist(8)
cdef class Timer:
    """Records elapsed nanoseconds into a Histogram or a Recorder.

    As a context manager::

        with Timer(h):
            work()

    As a decorator (plain and ``async def`` functions)::

        @Timer(h)
        def handler(msg): ...

    A duration outside the histogram's range is counted in its
    ``overflow_count``: timing never raises into the timed code.
    """

    def __cinit__(self, target):
        if isinstance(target, Histogram):
            self._histogram = <Histogram>target
        elif isinstance(target, Recorder):
            self._recorder = <Recorder>target
        else:
            raise TypeError(f"Timer: target must be a Histogram or a Recorder, "
                            f"got {type(target).__name__}")
        self._start_ns = 0
        self._elapsed_ns = -1

    def __enter__(self):
        self._start_ns = cm_now_ns()
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef int64_t elapsed = cm_now_ns() - self._start_ns
        self._elapsed_ns = elapsed
        _timer_record(self._histogram, self._recorder, elapsed)
        return False

    @property
    def elapsed_ns(self):
        """The duration of the last timed block in ns (-1 before one ends)."""
        return self._elapsed_ns

    def __call__(self, func):
        global _update_wrapper, _iscoroutinefunction
        if not callable(func):
            raise TypeError(f"Timer: can only decorate a callable, got {type(func).__name__}")
        if _update_wrapper is None:
            import functools, inspect
            _update_wrapper = functools.update_wrapper
            _iscoroutinefunction = inspect.iscoroutinefunction
        if _iscoroutinefunction(func):
            return _timed_coroutine_function(func, self._histogram, self._recorder)
        cdef _TimedFunction wrapper = _TimedFunction.__new__(_TimedFunction)
        wrapper._func = func
        wrapper._histogram = self._histogram
        wrapper._recorder = self._recorder
        _update_wrapper(wrapper, func)
        return wrapper


cdef class _TimedFunction:
    """A function whose every call is timed (made by Timer(...)(func))."""
    cdef object _func
    cdef Histogram _histogram
    cdef Recorder _recorder
    cdef dict __dict__

    def __call__(self, *args, **kwargs):
        cdef int64_t t0 = cm_now_ns()
        try:
            return self._func(*args, **kwargs)
        finally:
            _timer_record(self._histogram, self._recorder, cm_now_ns() - t0)

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        import types
        return types.MethodType(self, obj)


def _timed_coroutine_function(func, Histogram histogram, Recorder recorder):
    async def timed(*args, **kwargs):
        cdef int64_t t0 = cm_now_ns()
        try:
            return await func(*args, **kwargs)
        finally:
            _timer_record(histogram, recorder, cm_now_ns() - t0)
    _update_wrapper(timed, func)
    import inspect
    if hasattr(inspect, "markcoroutinefunction"):
        inspect.markcoroutinefunction(timed)
    return timed
