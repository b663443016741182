"""Resource sampling: CPU, memory and threads of a process over a window.

A :class:`ResourceSampler` starts a daemon thread that reads one process
(this one by default) through psutil at a fixed rate, 10 Hz by default:
process CPU % since the previous sample, resident set size (RSS) and the
thread count.  The unique set size (USS, the memory that would be freed if
the process exited) is read only at the start and the end of the window: it
walks every mapping of the process and costs 100-260 us a read here, against
about 15 us for RSS.  :meth:`ResourceSampler.stop` returns a
:class:`ResourceProfile`, which also reports what the sampler itself cost.

Per-agent figures are derived from profiles: :func:`memory_per_agent` (the
memory difference between a window without and one with N agents, over N)
and :func:`cpu_per_agent` (the window's mean CPU % over N).

Measurement limits, stated rather than hidden:

* CPU times advance in clock ticks (10 ms on Linux), so one sample's CPU %
  is quantized to 10 ms / interval (10 % points at 10 Hz); the window's mean
  CPU % comes from the cumulative times over the whole window and is exact
  to 10 ms over the window.
* Sampling this process, the sampler's own CPU is part of the CPU % read;
  ``overhead_cpu_seconds`` is that part, to subtract if it matters.
* The sampler thread needs the GIL to run: a thread holding it (a long C
  call) delays samples.  A sample that could not be taken at its tick is
  counted (``late_samples``, ``missed_ticks``), never silently dropped.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType
from typing import Any, Callable, Literal, Mapping, NamedTuple, TypeVar

from ._core import now_ns, wall_time

__all__ = [
    "FORMAT_VERSION",
    "ResourceProfile",
    "ResourceSample",
    "ResourceSampler",
    "cpu_per_agent",
    "cpu_resolution",
    "memory_per_agent",
    "memory_resolution",
    "profile",
]

# Version of the dictionary ResourceProfile.as_dict() writes; from_dict()
# reads only this one.  History:
#   1: the first format.
FORMAT_VERSION = 1

MAX_INTERVAL = 3600.0   # seconds; a longer interval is surely a unit mistake

_R = TypeVar("_R")


class ResourceSample(NamedTuple):
    """One reading of a process.  Immutable.

    time: monotonic seconds (``caxton_meter.now_ns() / 1e9``), comparable
        with the core's timestamps.
    wall_time: seconds since the epoch.
    cpu_percent: the process's CPU % since the previous reading (the start
        reading for the first sample); 100 % is one core fully busy, so a
        process keeping two cores busy reads 200 %.
    rss_bytes: resident set size.
    num_threads: threads of the process.
    user_seconds, system_seconds: the process's cumulative CPU times (since
        it started, not since the window did).
    """
    time: float
    wall_time: float
    cpu_percent: float
    rss_bytes: int
    num_threads: int
    user_seconds: float
    system_seconds: float


class ResourceProfile(NamedTuple):
    """What a :class:`ResourceSampler` saw over one window.  Immutable.

    The window runs from the start reading (taken by ``start()``) to the last
    reading: the final one taken by ``stop()``, or the last before the process
    exited.

    pid, interval: the process sampled and the sampling interval (seconds).
    start_time, start_wall_time: the start reading's monotonic and wall time.
    duration: seconds from the start reading to the last reading.
    samples: the readings, in order; the last is the one ``stop()`` took
        (its span may be shorter than an interval) unless the process exited.
    rss_start: RSS at the start reading.
    uss_start, uss_end: USS at the start and the end of the window, or None
        when it could not be read; ``uss_note`` then says why.
    peak_rss, mean_rss: the largest RSS read (start reading included) and
        the mean over the samples.
    mean_cpu_percent: CPU % over the window, from the cumulative CPU times
        at its two ends; None when no reading followed the start one.
    max_cpu_percent: the largest sample CPU % among samples spanning at
        least half an interval (a shorter span's figure is mostly clock-tick
        quantization); None when there is none.
    cpu_user_seconds, cpu_system_seconds: CPU the process used in the window.
    max_threads: the most threads read.
    late_samples: samples taken half an interval or more after their tick.
    missed_ticks: ticks skipped because the sampler was a whole interval or
        more behind; the next sample's CPU % covers their time.
    max_lag: seconds, the most a sample was taken after its tick.
    process_exited: the process exited during the window (sampling stopped
        there; the figures cover the window up to its last reading).
    overhead_cpu_seconds: CPU time the sampler spent: its thread's, plus the
        start and end readings taken in the calling thread (USS included).
    overhead_percent: that, as a percentage of one core over the sampler's
        life (from start() to stop()).
    sample_cost_us: mean wall time of one periodic reading, in us; None
        without samples.
    uss_cost_us: mean wall time of one USS read, in us; None if none was made.
    """
    pid: int
    interval: float
    start_time: float
    start_wall_time: float
    duration: float
    samples: tuple[ResourceSample, ...]
    rss_start: int
    uss_start: int | None
    uss_end: int | None
    uss_note: str | None
    peak_rss: int
    mean_rss: float
    mean_cpu_percent: float | None
    max_cpu_percent: float | None
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_threads: int
    late_samples: int
    missed_ticks: int
    max_lag: float
    process_exited: bool
    overhead_cpu_seconds: float
    overhead_percent: float
    sample_cost_us: float | None
    uss_cost_us: float | None

    def as_dict(self) -> dict[str, Any]:
        """The profile as plain JSON types, with a ``"format"`` key.  Samples
        are stored by column (one list per field): a third of the size of a
        list of objects, and what a plotting library wants."""
        out: dict[str, Any] = {"format": FORMAT_VERSION}
        for name in self._fields:
            if name != "samples":
                out[name] = getattr(self, name)
        out["samples"] = {name: [getattr(s, name) for s in self.samples]
                          for name in ResourceSample._fields}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceProfile:
        """The profile :meth:`as_dict` wrote.  ValueError, naming the key, for
        another format version, a missing key or a value of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a resource profile is a mapping, not {type(data).__name__}")
        if "format" not in data:
            raise ValueError("resource profile has no 'format' key: not written by "
                             "ResourceProfile.as_dict()")
        if data["format"] != FORMAT_VERSION or isinstance(data["format"], bool):
            raise ValueError(f"resource profile format {data['format']!r} is not supported: "
                             f"this version of caxton_meter reads format {FORMAT_VERSION}")
        values: dict[str, Any] = {}
        for name in cls._fields:
            if name == "samples":
                continue
            if name not in data:
                raise ValueError(f"resource profile is missing key {name!r}")
            values[name] = _check(name, data[name], _PROFILE_TYPES[name])
        values["samples"] = _samples_from_columns(data.get("samples", _MISSING))
        return cls(**values)


def memory_resolution(n_agents: int = 1) -> float:
    """The smallest memory difference per agent a reading can show: the
    process's memory moves by whole pages, so a growth of less than one
    page over ``n_agents`` agents reads as 0 (or as the next page)."""
    import mmap
    return mmap.PAGESIZE / n_agents


def cpu_resolution(profile: ResourceProfile, n_agents: int = 1) -> float | None:
    """The smallest CPU % (per agent, over ``n_agents``) the profile can
    tell from zero: one tick of the CPU-time clock (1/CLK_TCK, 10 ms on
    Linux) over the profile's length.  A 20 ms phase cannot resolve less
    than 50 %.  None for a profile of no length."""
    import os
    try:
        tick = 1.0 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):      # no sysconf: psutil's own
        tick = 0.001                                    # clocks are finer
    if profile.duration <= 0:
        return None
    return 100.0 * tick / profile.duration / n_agents


def memory_per_agent(before: ResourceProfile | int, after: ResourceProfile | int,
                     n_agents: int, *, basis: Literal["auto", "uss", "rss"] = "auto") -> float:
    """Bytes of memory per agent: (memory after - memory before) / n_agents.

    Method: measure one window before the agents exist (or with a baseline
    number of them) and one after adding n_agents, then divide the growth by
    n_agents.  The difference cancels the interpreter, libraries and
    anything else present in both windows, so that what remains is what the
    agents hold.  Each side's figure is the memory at the end of its window:
    ``uss_end`` when both profiles have it and ``basis`` is "auto" or "uss",
    otherwise the RSS of the last sample.  USS is preferred because it
    counts only pages private to the process (RSS also counts shared
    library pages, which other processes' activity can move).  An int is
    taken as a figure in bytes already read; pass both of the same kind.

    The result is negative when memory shrank (the allocator returned more
    than the agents took): reported as is, not clamped.  ValueError for
    n_agents < 1, or basis="uss" when a profile has no USS.
    """
    if isinstance(n_agents, bool) or not isinstance(n_agents, int):
        raise TypeError(f"n_agents must be an int, not {type(n_agents).__name__}")
    if n_agents < 1:
        raise ValueError(f"n_agents must be at least 1, got {n_agents}")
    if basis not in ("auto", "uss", "rss"):
        raise ValueError(f"basis must be 'auto', 'uss' or 'rss', got {basis!r}")
    use_uss = basis != "rss" and all(
        isinstance(p, ResourceProfile) and p.uss_end is not None for p in (before, after))
    if basis == "uss" and not use_uss:
        missing = [name for name, p in (("before", before), ("after", after))
                   if not (isinstance(p, ResourceProfile) and p.uss_end is not None)]
        notes = [p.uss_note for p in (before, after)
                 if isinstance(p, ResourceProfile) and p.uss_note]
        raise ValueError(f"basis='uss' but {' and '.join(missing)} has no USS"
                         + (f" ({'; '.join(notes)})" if notes else ""))
    return (_memory(after, use_uss, "after") - _memory(before, use_uss, "before")) / n_agents


def cpu_per_agent(profile: ResourceProfile, n_agents: int) -> float:
    """CPU % per agent: the window's mean CPU % divided by n_agents.

    Method: run n_agents agents under load through a window and share the
    process's CPU equally among them (100 % = one core).  The mean comes
    from the cumulative CPU times at the window's two ends, so it is not
    biased by uneven sample spacing.  Whatever else the process does in the
    window (the router, the load generator, the sampler itself:
    ``overhead_cpu_seconds``) is shared too; subtract a baseline profile's
    figure first to exclude it.  ValueError for n_agents < 1 or a profile
    without a mean CPU % (the process exited before the first sample).
    """
    if isinstance(n_agents, bool) or not isinstance(n_agents, int):
        raise TypeError(f"n_agents must be an int, not {type(n_agents).__name__}")
    if n_agents < 1:
        raise ValueError(f"n_agents must be at least 1, got {n_agents}")
    if profile.mean_cpu_percent is None:
        raise ValueError(f"the profile of pid {profile.pid} has no mean CPU %: the "
                         "process exited before the first sample")
    return profile.mean_cpu_percent / n_agents



def profile(fn: Callable[..., _R], *args: Any, interval: float = 0.1, uss: bool = True,
            **kwargs: Any) -> tuple[_R, ResourceProfile]:
    """Call ``fn(*args, **kwargs)`` while sampling this process; return its
    result and the profile of the call.  If fn raises, the sampler is stopped
    and the exception propagates.  ``interval`` and ``uss`` are the
    sampler's: fn cannot receive keyword arguments of those names."""
    sampler = ResourceSampler(interval, uss=uss)
    with sampler:
        result = fn(*args, **kwargs)
    assert sampler.profile is not None     # set by stop() in __exit__
    return result, sampler.profile


# (monotonic ns, wall s, user s, system s, rss bytes, threads): one raw read
_Reading = tuple[int, float, float, float, int, int]


def _psutil() -> Any:
    """psutil, imported on first use (it costs ~25 ms).  Typed as Any: it
    ships no annotations, and the stubs are not a dependency."""
    import psutil  # type: ignore[import-untyped, unused-ignore]
    return psutil


class ResourceSampler:
    """Samples a process in a background thread; ``stop()`` returns a
    :class:`ResourceProfile`.

    ::

        with ResourceSampler(0.1) as sampler:
            run_the_load()
        profile = sampler.profile

    interval: seconds between samples, 0 < interval <= 3600 (default 0.1,
        10 Hz).  Ticks fall at start + k * interval whatever each sample
        costs, so the rate does not drift.
    pid: the process to sample; this process when None.  ValueError if no
        process has that pid.
    uss: read USS at the start and the end of the window (RSS only when
        False).

    A sampler measures one window at a time; ``start()`` after ``stop()``
    begins a new one.  If the process exits, sampling stops there and the
    profile says so (``process_exited``).
    """

    # One window's state: the thread writes it, stop() reads it after join().
    _first: _Reading
    _prev: _Reading
    _samples: list[ResourceSample]
    _uss_start: int | None
    _uss_note: str | None
    _uss_ns: list[int]
    _exited: bool
    _late: int
    _missed: int
    _max_lag_ns: int
    _ticks: int              # samples the thread took (the end one is stop()'s)
    _tick_ns: int            # their total wall time
    _thread_cpu: float
    _caller_cpu: float
    _life_ns: int
    _failure: BaseException | None

    def __init__(self, interval: float = 0.1, *, pid: int | None = None,
                 uss: bool = True) -> None:
        psutil = _psutil()
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"interval must be a number of seconds, not "
                            f"{type(interval).__name__}")
        if not 0 < interval <= MAX_INTERVAL:     # also false for NaN
            raise ValueError(f"interval must be in (0, {MAX_INTERVAL:g}] seconds, "
                             f"got {interval!r}")
        if pid is not None:
            if isinstance(pid, bool) or not isinstance(pid, int):
                raise TypeError(f"pid must be an int or None, not {type(pid).__name__}")
            if pid < 0:
                raise ValueError(f"pid must be >= 0, got {pid}")
        try:
            self._process: Any = psutil.Process(pid)
        except psutil.NoSuchProcess:
            raise ValueError(f"no process with pid {pid}") from None
        self.interval = float(interval)
        self.pid: int = int(self._process.pid)
        self._foreign = self.pid != os.getpid()
        self.uss = bool(uss)
        self.profile: ResourceProfile | None = None     # the last window's, after stop()
        self._lock = threading.Lock()       # start() and stop() may come from two threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Take the start reading (and USS) and start the sampling thread.
        RuntimeError if already running; ValueError if the process has
        exited; PermissionError if it may not be read."""
        psutil = _psutil()
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the sampler is already running: stop() it first")
            self._reset()
            cpu0 = time.thread_time()
            self._life_ns = now_ns()
            try:
                first = self._read()
                if first is None:
                    raise psutil.NoSuchProcess(self.pid)
                self._uss_start = self._read_uss() if self.uss else None
            except psutil.NoSuchProcess:
                raise ValueError(f"process {self.pid} has exited") from None
            except psutil.AccessDenied as exc:
                raise PermissionError(f"may not read process {self.pid}: {exc}") from None
            self._first = self._prev = first
            self._stop.clear()
            thread = threading.Thread(target=self._run, daemon=True,   # never blocks exit
                                      name=f"caxton_meter-sampler-{self.pid}")
            self._thread = thread
            self._caller_cpu = time.thread_time() - cpu0
            thread.start()

    def stop(self) -> ResourceProfile:
        """Stop the thread, take the end reading (and USS) and return the
        window's profile, also kept as ``self.profile``.  RuntimeError if not
        running, or if the sampling thread failed (the cause chained)."""
        psutil = _psutil()
        with self._lock:
            thread = self._thread
            if thread is None:
                raise RuntimeError("the sampler is not running: start() it first")
            self._stop.set()
            thread.join()
            self._thread = None
            if self._failure is not None:
                raise RuntimeError(f"the sampling thread of pid {self.pid} failed") \
                    from self._failure
            cpu0 = time.thread_time()
            uss_end = None
            if not self._exited:
                self._sample()
            if self.uss and not self._exited:
                try:
                    uss_end = self._read_uss()
                except psutil.NoSuchProcess:
                    self._exited = True
            if self.uss and self._exited and uss_end is None:
                self._uss_note = "process exited before the end USS read"
            overhead = self._thread_cpu + self._caller_cpu + time.thread_time() - cpu0
            life = (now_ns() - self._life_ns) / 1e9
            self.profile = self._build(uss_end, overhead, life)
            return self.profile

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is not None:
            self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ResourceSampler pid={self.pid} interval={self.interval:g}s {state}>"

    def _reset(self) -> None:
        self._first = self._prev = (0, 0.0, 0.0, 0.0, 0, 0)
        self._samples = []
        self._uss_start = None
        self._uss_note = None if self.uss else "not requested (uss=False)"
        self._uss_ns = []
        self._exited = False
        self._late = 0
        self._missed = 0
        self._max_lag_ns = 0
        self._ticks = 0
        self._tick_ns = 0
        self._thread_cpu = 0.0
        self._caller_cpu = 0.0
        self._life_ns = 0
        self._failure = None

    def _run(self) -> None:
        cpu0 = time.thread_time()
        try:
            self._loop()
        except BaseException as exc:      # raised again by stop(), not lost here
            self._failure = exc
        finally:
            self._thread_cpu = time.thread_time() - cpu0

    def _loop(self) -> None:
        interval_ns = round(self.interval * 1e9)
        t0 = self._first[0]
        k = 1
        while True:
            due = t0 + k * interval_ns
            # Paced on the intended tick times, not on sleeps: a late wake-up
            # or a slow read does not shift the ticks after it.
            delay = due - now_ns()
            if self._stop.wait(delay / 1e9) if delay > 0 else self._stop.is_set():
                return
            started = now_ns()
            if not self._sample():
                return
            self._tick_ns += now_ns() - started
            self._ticks += 1
            lag = started - due
            self._max_lag_ns = max(self._max_lag_ns, lag)
            if 2 * lag >= interval_ns:
                self._late += 1
            k += 1
            behind = (now_ns() - t0) // interval_ns - k     # whole ticks already past
            if behind > 0:
                # Take the latest tick due at once; count and skip the ones
                # before it (catch-up samples in a burst would have spans too
                # short to mean anything; the next sample covers their time).
                self._missed += behind
                k += behind

    def _sample(self) -> bool:
        """Read the process and append a sample; False when it has exited
        (recorded)."""
        psutil = _psutil()
        try:
            reading = self._read()
        except psutil.NoSuchProcess:       # ZombieProcess included
            reading = None
        if reading is None:
            self._exited = True
            return False
        t, wall, user, system, rss, threads = reading
        prev_t, _, prev_user, prev_system, _, _ = self._prev
        span = (t - prev_t) / 1e9
        cpu = 100.0 * (user + system - prev_user - prev_system) / span if span > 0 else 0.0
        self._samples.append(ResourceSample(t / 1e9, wall, cpu, rss, threads, user, system))
        self._prev = reading
        return True

    def _read(self) -> _Reading | None:
        """One reading; None for a process gone: a zombie (exited, not yet
        reaped by its parent), whose memory figures would read as 0, or a
        pid now another process's."""
        psutil = _psutil()
        p = self._process
        with p.oneshot():      # one pass over /proc/<pid>/stat and /status on Linux
            t = now_ns()
            wall = wall_time()
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            # Another process's pid may be reused once it exits and is
            # reaped: this compares creation times (~17 us, so not for ours).
            if self._foreign and not p.is_running():
                return None
            times = p.cpu_times()
            rss = p.memory_info().rss
            threads = p.num_threads()
        if rss == 0 and self._first[4] > 0:
            # Exiting: the kernel tears the process's memory down before it
            # becomes a zombie, so a read between the status above and the
            # memory read finds it running with nothing resident.  A live
            # process always has its code resident; one that read 0 from the
            # start (a kernel thread) is sampled as it is.
            return None
        return t, wall, float(times.user), float(times.system), int(rss), int(threads)

    def _read_uss(self) -> int | None:
        """USS, or None with ``_uss_note`` saying why.  NoSuchProcess goes
        to the caller."""
        psutil = _psutil()
        started = now_ns()
        try:
            info = self._process.memory_full_info()
        except psutil.AccessDenied as exc:
            self._uss_note = f"USS of pid {self.pid} not readable: access denied ({exc})"
            return None
        except NotImplementedError:
            self._uss_note = "psutil cannot read USS on this platform"
            return None
        finally:
            self._uss_ns.append(now_ns() - started)
        uss = getattr(info, "uss", None)
        if uss is None:
            self._uss_note = "psutil reports no USS on this platform"
            return None
        return int(uss)

    def _build(self, uss_end: int | None, overhead: float, life: float) -> ResourceProfile:
        samples = tuple(self._samples)
        first = self._first
        t0 = first[0] / 1e9
        cpu0 = first[2] + first[3]
        last = samples[-1] if samples else None
        duration = last.time - t0 if last else 0.0
        mean_cpu = None
        if last is not None and duration > 0:
            mean_cpu = 100.0 * (last.user_seconds + last.system_seconds - cpu0) / duration
        # Spans of at least half an interval: CPU times move in clock ticks,
        # so a short span (stop()'s end sample) would inflate the maximum.
        times = [t0] + [s.time for s in samples]
        full = [s.cpu_percent for s, before in zip(samples, times)
                if s.time - before >= self.interval / 2]
        rss = [s.rss_bytes for s in samples]
        return ResourceProfile(
            pid=self.pid,
            interval=self.interval,
            start_time=t0,
            start_wall_time=first[1],
            duration=duration,
            samples=samples,
            rss_start=first[4],
            uss_start=self._uss_start,
            uss_end=uss_end,
            uss_note=self._uss_note if self._uss_start is None or uss_end is None else None,
            peak_rss=max([first[4]] + rss),
            mean_rss=sum(rss) / len(rss) if rss else float(first[4]),
            mean_cpu_percent=mean_cpu,
            max_cpu_percent=max(full) if full else None,
            cpu_user_seconds=(last.user_seconds if last else first[2]) - first[2],
            cpu_system_seconds=(last.system_seconds if last else first[3]) - first[3],
            max_threads=max([first[5]] + [s.num_threads for s in samples]),
            late_samples=self._late,
            missed_ticks=self._missed,
            max_lag=self._max_lag_ns / 1e9,
            process_exited=self._exited,
            overhead_cpu_seconds=overhead,
            overhead_percent=100.0 * overhead / life if life > 0 else 0.0,
            sample_cost_us=self._tick_ns / self._ticks / 1e3 if self._ticks else None,
            uss_cost_us=sum(self._uss_ns) / len(self._uss_ns) / 1e3 if self._uss_ns else None,
        )


# -- reading a profile back ----------------------------------------------------

_MISSING = object()

# The JSON type(s) each field may hold; float fields accept ints (JSON writers
# may drop ".0"), int fields do not accept floats or bools.
_INT = (int,)
_FLOAT = (int, float)
_PROFILE_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {   # (types, may be None)
    "pid": (_INT, False),
    "interval": (_FLOAT, False),
    "start_time": (_FLOAT, False),
    "start_wall_time": (_FLOAT, False),
    "duration": (_FLOAT, False),
    "rss_start": (_INT, False),
    "uss_start": (_INT, True),
    "uss_end": (_INT, True),
    "uss_note": ((str,), True),
    "peak_rss": (_INT, False),
    "mean_rss": (_FLOAT, False),
    "mean_cpu_percent": (_FLOAT, True),
    "max_cpu_percent": (_FLOAT, True),
    "cpu_user_seconds": (_FLOAT, False),
    "cpu_system_seconds": (_FLOAT, False),
    "max_threads": (_INT, False),
    "late_samples": (_INT, False),
    "missed_ticks": (_INT, False),
    "max_lag": (_FLOAT, False),
    "process_exited": ((bool,), False),
    "overhead_cpu_seconds": (_FLOAT, False),
    "overhead_percent": (_FLOAT, False),
    "sample_cost_us": (_FLOAT, True),
    "uss_cost_us": (_FLOAT, True),
}
_SAMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "time": _FLOAT, "wall_time": _FLOAT, "cpu_percent": _FLOAT, "rss_bytes": _INT,
    "num_threads": _INT, "user_seconds": _FLOAT, "system_seconds": _FLOAT,
}


def _check(name: str, value: Any, spec: tuple[tuple[type, ...], bool]) -> Any:
    types, nullable = spec
    if value is None and nullable:
        return None
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
        raise ValueError(f"resource profile key {name!r} must be {expected}, "
                         f"got {type(value).__name__} {value!r}")
    if isinstance(value, int) and types is _FLOAT:
        return float(value)       # an int a JSON writer wrote for a float
    return value


def _samples_from_columns(columns: Any) -> tuple[ResourceSample, ...]:
    if columns is _MISSING:
        raise ValueError("resource profile is missing key 'samples'")
    if not isinstance(columns, Mapping):
        raise ValueError(f"resource profile key 'samples' must be a mapping of columns, "
                         f"got {type(columns).__name__}")
    lists = []
    for name, types in _SAMPLE_TYPES.items():
        column = columns.get(name, _MISSING)
        if column is _MISSING:
            raise ValueError(f"resource profile samples are missing column {name!r}")
        if not isinstance(column, list):
            raise ValueError(f"resource profile samples column {name!r} must be a list, "
                             f"got {type(column).__name__}")
        lists.append([_check(f"samples.{name}[{i}]", v, (types, False))
                      for i, v in enumerate(column)])
    lengths = {len(c) for c in lists}
    if len(lengths) > 1:
        raise ValueError(f"resource profile sample columns differ in length: "
                         f"{dict(zip(_SAMPLE_TYPES, map(len, lists)))}")
    return tuple(ResourceSample(*row) for row in zip(*lists))


def _memory(side: ResourceProfile | int, use_uss: bool, name: str) -> int:
    if isinstance(side, ResourceProfile):
        if use_uss:
            assert side.uss_end is not None     # checked by memory_per_agent
            return side.uss_end
        if side.samples:
            return side.samples[-1].rss_bytes
        return side.rss_start
    if isinstance(side, bool) or not isinstance(side, int):
        raise TypeError(f"{name} must be a ResourceProfile or an int of bytes, "
                        f"not {type(side).__name__}")
    if side < 0:
        raise ValueError(f"{name} must be a number of bytes >= 0, got {side}")
    return side
