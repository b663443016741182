"""HdrHistogram interval logs ("histogram logs", ``.hlog``): write and read them.

An interval log holds one HDR histogram per measurement interval, so that the
distribution of any time range can be rebuilt afterwards by adding the
intervals that fall in it.  The format is the one Java's HdrHistogram
``HistogramLogWriter`` writes (log format version 1.3) and that jHiccup,
HistogramLogAnalyzer, HdrHistogram_c and the ``hdrhistogram`` package read::

    #[Logged with caxton_meter 0.1.0]
    #[Histogram log format version 1.3]
    #[StartTime: 1441812279.474 (seconds since epoch), Wed Sep 09 08:24:39 PDT 2015]
    #[BaseTime: 1441812279.000 (seconds since epoch)]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    0.474,1.001,2.769,HISTFAAAAEV42pNpmSzMwMCgyAABTBDK...
    Tag=db,1.475,0.999,0.442,HISTFAAAAEJ42pNpmSzMwMAgxwAB...

Lines starting with ``#`` are comments; two of them carry values:
``#[StartTime: s ...]`` (when the log started) and ``#[BaseTime: s ...]``
(what interval timestamps are relative to), both in seconds since the epoch.
The legend line is ignored by readers.  An interval line is
``[Tag=<tag>,]<start>,<length>,<max>,<histogram>``: the interval's start in
seconds relative to the base time, its length in seconds, its largest value
divided by a unit ratio (1e6 by default: nanoseconds shown as milliseconds;
readers ignore it) and the histogram in the V2 compressed base64 encoding
("HISTFAAA...").  A tag cannot hold a comma, space or line break.

Reading follows Java's ``HistogramLogReader``: without a ``#[BaseTime:]``
line, the first interval decides: a timestamp more than a year before the
start time is relative to the start time, otherwise timestamps are absolute.
The histograms read carry absolute ``start_time`` / ``end_time`` (seconds
since the epoch) and their tag.  A malformed line raises
:class:`HistogramLogError` naming the file and line, where Java would return
null for an undecodable histogram or ignore an unreadable ``#[StartTime:]``;
so does a histogram in an encoding this package cannot decode (V0/V1
``HISTiQAA``/``HISTIgAA``, DoubleHistogram ``DHIST...``), even in an interval
that a time range skips.
"""

from __future__ import annotations

import binascii
import math
import os
import re
import threading
import time
from types import TracebackType
from typing import IO, Iterator

from ._core import CaxtonMeterError, Histogram, HistogramDecodeError

__all__ = [
    "HistogramLogError",
    "HistogramLogReader",
    "HistogramLogWriter",
    "LOG_FORMAT_VERSION",
    "read_log",
]

LOG_FORMAT_VERSION = "1.3"

_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'

# Java's reader: a first timestamp more than this far before StartTime means
# the log's timestamps are relative to StartTime.
_YEAR_SECONDS = 365 * 24 * 3600.0

# The characters that end a field for Java's reader (its Scanner splits on
# "[ ,\r\n]"), so a tag holding one cannot be read back.
_TAG_FORBIDDEN = frozenset(", \r\n")

# A decimal number as Java's Scanner.nextDouble reads it (Locale.US, no
# grouping); Python's float() alone would also take "nan", "inf" and "1_0".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")

# "#[Overflow: 12]": written just before an interval line whose histogram
# counted values outside its range.  The format has no field for them and
# other readers skip comments; ours restores them (nothing is lost).
_OVERFLOW_COMMENT = re.compile(r"#\[Overflow: (\d+)\]\Z")

# "#[StartTime: 1441812279.474 (seconds ..." / "#[BaseTime: 1441812279.000 (...":
# Java takes the token after the marker, up to a space or comma.
_TIME_COMMENT = re.compile(r"#\[(StartTime|BaseTime):[ ]*([^ ,\]]*)")

# Java's Date.toString() names, fixed so that the header does not follow the
# process's locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Encoding cookies (the first 4 bytes of the base64-decoded histogram) as
# Java's AbstractHistogram and DoubleHistogram define them; in V0/V1 the bits
# 0xf0 of a cookie carry the counts' word size.
_V0_COOKIE_BASES = (0x1C849308, 0x1C849309)
_V1_COOKIE_BASES = (0x1C849301, 0x1C849302)
_DOUBLE_COOKIES = (0x0C72124E, 0x0C72124F)


class HistogramLogError(CaxtonMeterError, ValueError):
    """A histogram log could not be read: says which file, which line and
    what was wrong.  ``path`` (or None for an unnamed stream), ``lineno``
    (1-based) and ``problem`` hold the parts."""

    def __init__(self, problem: str, *, path: str | None = None, lineno: int | None = None) -> None:
        self.problem = problem
        self.path = path
        self.lineno = lineno
        where = ""
        if path is not None:
            where = f"{path}: "
        if lineno is not None:
            where += f"line {lineno}: "
        super().__init__(where + problem)


def _fmt3(value: float) -> str:
    """``value`` with 3 decimals, as Java's "%.3f" writes it.  A tiny negative
    value prints as "0.000", not "-0.000": the hdrhistogram package's reader
    skips lines whose numbers hold a minus sign."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _java_date(seconds: float) -> str:
    """``seconds`` since the epoch in local time, as Java's Date.toString()
    writes it: "Wed Sep 09 08:24:39 PDT 2015"."""
    tm = time.localtime(math.floor(seconds))
    return (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_zone} {tm.tm_year}")


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__} {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be finite, got {result!r}")
    return result


def _check_tag(tag: object, what: str) -> str:
    if not isinstance(tag, str):
        raise TypeError(f"{what}: the tag must be a str or None, got {type(tag).__name__} {tag!r}")
    if not tag:
        raise ValueError(f"{what}: the tag is empty; readers disagree on what 'Tag=,' means "
                         "(Java reads '', the hdrhistogram package None), so pass None for no tag")
    bad = sorted(_TAG_FORBIDDEN.intersection(tag))
    if bad:
        raise ValueError(f"{what}: tag {tag!r} holds {', '.join(repr(c) for c in bad)}; a tag cannot "
                         "hold a comma, space or line break (they end a field in the log format)")
    _check_printable_ascii(tag, f"{what}: tag")
    return tag


def _check_printable_ascii(text: str, what: str) -> None:
    """Java's reader ends a line at U+0085, U+2028 and U+2029 too, and Java
    before 18 reads a log in the platform charset (US-ASCII in a C locale):
    either way it stops reading the log early without an error.  Printable
    ASCII is what every reader takes."""
    for i, c in enumerate(text):
        if not " " <= c <= "~":
            raise ValueError(f"{what} holds {c!r} at position {i}; only printable ASCII can be "
                             "written (Java's log reader silently stops at other characters)")


class HistogramLogWriter:
    """Writes an HdrHistogram interval log (format version 1.3).

    ``file`` is a path (created or truncated, UTF-8) or an open text file;
    a file the writer opened is closed by :meth:`close`, a file object passed
    in is only flushed.  ``max_value_unit_ratio`` divides each interval's max
    for its Interval_Max column (1e6: nanoseconds shown as milliseconds).

    Every line is flushed as soon as it is written, so a run that is killed
    keeps every interval it finished.  The output methods may be called from
    several threads; each line is written whole.

    The usual order, as Java's tools write it: :meth:`write_header` (or
    comment, :meth:`output_log_format_version`, :meth:`output_start_time`,
    optionally :meth:`output_base_time`, :meth:`output_legend`), then one
    :meth:`output_interval_histogram` per interval.
    """

    def __init__(self, file: str | os.PathLike[str] | IO[str], *,
                 max_value_unit_ratio: float = 1e6) -> None:
        ratio = _finite(max_value_unit_ratio, "HistogramLogWriter: max_value_unit_ratio")
        if ratio <= 0.0:
            raise ValueError(f"HistogramLogWriter: max_value_unit_ratio must be > 0, got {ratio!r}")
        self._max_value_unit_ratio = ratio
        self._base_time = 0.0
        self._lock = threading.Lock()
        self._closed = False
        self._file: IO[str]
        if isinstance(file, (str, os.PathLike)):
            # "\n" line ends on every platform, as Java's writer formats them.
            self._file = open(file, "w", encoding="utf-8", newline="\n")
            self._owns_file = True
        elif callable(getattr(file, "write", None)):
            self._file = file
            self._owns_file = False
        else:
            raise TypeError("HistogramLogWriter: file must be a path or a text file object, "
                            f"got {type(file).__name__}")

    @property
    def max_value_unit_ratio(self) -> float:
        return self._max_value_unit_ratio

    @property
    def base_time(self) -> float:
        """The base time (seconds since the epoch) interval start times are
        written relative to: the last :meth:`output_base_time`, else 0.0
        (absolute timestamps)."""
        return self._base_time

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, text: str) -> None:
        with self._lock:
            if self._closed:
                raise ValueError("HistogramLogWriter: the writer is closed")
            self._file.write(text)
            # Flushed line by line: a killed run keeps every finished interval.
            self._file.flush()

    def output_comment(self, text: str) -> None:
        """Write ``#<text>``.  ``text`` must be one line."""
        if not isinstance(text, str):
            raise TypeError(f"output_comment: text must be a str, got {type(text).__name__}")
        if "\n" in text or "\r" in text:
            raise ValueError("output_comment: the comment holds a line break; it would end the "
                             "comment and the rest would be read as an interval line")
        _check_printable_ascii(text, "output_comment: the comment")
        self._write(f"#{text}\n")

    def output_log_format_version(self) -> None:
        """Write ``#[Histogram log format version 1.3]``."""
        self.output_comment(f"[Histogram log format version {LOG_FORMAT_VERSION}]")

    def output_start_time(self, seconds_since_epoch: float) -> None:
        """Write ``#[StartTime: <s> (seconds since epoch), <local date>]``.
        Readers measure relative ranges from it; it does not change how
        interval timestamps are written (see :meth:`output_base_time`)."""
        seconds = _finite(seconds_since_epoch, "output_start_time: seconds_since_epoch")
        try:
            date = _java_date(seconds)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"output_start_time: {seconds!r} seconds since the epoch is not "
                             "a representable date") from None
        self._write(f"#[StartTime: {_fmt3(seconds)} (seconds since epoch), {date}]\n")

    def output_base_time(self, seconds: float) -> None:
        """Write ``#[BaseTime: <s> (seconds since epoch)]`` and write later
        interval start times relative to it.  The base is kept as written
        (3 decimals), so that readers add back exactly what was subtracted."""
        base = _finite(seconds, "output_base_time: seconds")
        text = _fmt3(base)
        self._write(f"#[BaseTime: {text} (seconds since epoch)]\n")
        self._base_time = float(text)

    def output_legend(self) -> None:
        """Write the legend line (the column names; readers skip it)."""
        self._write(_LEGEND + "\n")

    def write_header(self, start_time: float, base_time: float | None = None,
                     comment: str | None = None) -> None:
        """Write the usual header: ``#[Logged with caxton_meter <version>]``,
        ``comment`` (if given) as a further comment line, the format version,
        the start time, the base time (if given: timestamps are then written
        relative to it) and the legend."""
        from . import __version__  # here, not at import: the package imports this module

        _finite(start_time, "write_header: start_time")
        if base_time is not None:
            _finite(base_time, "write_header: base_time")
        self.output_comment(f"[Logged with caxton_meter {__version__}]")
        if comment is not None:
            self.output_comment(comment)
        self.output_log_format_version()
        self.output_start_time(start_time)
        if base_time is not None:
            self.output_base_time(base_time)
        self.output_legend()

    def output_interval_histogram(self, histogram: Histogram, start_time: float | None = None,
                                  end_time: float | None = None, tag: str | None = None) -> None:
        """Write one interval line for ``histogram``.

        ``start_time`` / ``end_time`` are seconds since the epoch (default:
        the histogram's ``start_time`` / ``end_time``, which must then be
        set); the start is written relative to the base time, if one was
        written.  ``tag`` defaults to the histogram's ``tag``; None writes no
        tag.  Raises ValueError (writing nothing) for an unset or non-finite
        time, an end before the start, or a tag holding a comma, space or
        line break."""
        if not isinstance(histogram, Histogram):
            raise TypeError("output_interval_histogram: expected a caxton_meter Histogram, "
                            f"got {type(histogram).__name__}")
        if start_time is None:
            if histogram.start_time == 0.0:
                raise ValueError("output_interval_histogram: the histogram's start_time is unset "
                                 "(0.0); pass start_time= (seconds since the epoch)")
            start = _finite(histogram.start_time, "output_interval_histogram: histogram.start_time")
        else:
            start = _finite(start_time, "output_interval_histogram: start_time")
        if end_time is None:
            if histogram.end_time == 0.0:
                raise ValueError("output_interval_histogram: the histogram's end_time is unset "
                                 "(0.0); pass end_time= (seconds since the epoch)")
            end = _finite(histogram.end_time, "output_interval_histogram: histogram.end_time")
        else:
            end = _finite(end_time, "output_interval_histogram: end_time")
        if end < start:
            raise ValueError(f"output_interval_histogram: end_time {end!r} is before "
                             f"start_time {start!r}")
        chosen: object = histogram.tag if tag is None else tag
        prefix = ""
        if chosen is not None:
            prefix = f"Tag={_check_tag(chosen, 'output_interval_histogram')},"
        line = (f"{prefix}{_fmt3(start - self._base_time)},{_fmt3(end - start)},"
                f"{_fmt3(histogram.max / self._max_value_unit_ratio)},{histogram.encode()}\n")
        if histogram.overflow_count:
            # one write: the comment never lands apart from its interval
            line = f"#[Overflow: {histogram.overflow_count}]\n" + line
        self._write(line)

    def close(self) -> None:
        """Close the file the writer opened (a file object passed in is
        flushed and left open).  Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_file:
                self._file.close()
            elif not self._file.closed:
                self._file.flush()

    def __enter__(self) -> HistogramLogWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Interval:
    """One parsed interval line, its histogram not yet decoded."""

    __slots__ = ("lineno", "tag", "timestamp", "length", "payload", "overflow")

    def __init__(self, lineno: int, tag: str | None, timestamp: float, length: float,
                 payload: str, overflow: int) -> None:
        self.lineno = lineno
        self.tag = tag
        self.timestamp = timestamp
        self.length = length
        self.payload = payload
        self.overflow = overflow


def _foreign_encoding(payload: str) -> str | None:
    """What an encoding this package cannot decode is, from its cookie; None
    when it is (or claims to be) V2, left to the decoder to check."""
    try:
        head = binascii.a2b_base64(payload[:8])
    except (binascii.Error, ValueError):
        return None
    if len(head) < 4:
        return None
    cookie = int.from_bytes(head[:4], "big")
    base = cookie & ~0xF0
    if base in _V0_COOKIE_BASES or base in _V1_COOKIE_BASES:
        version = "V0" if base in _V0_COOKIE_BASES else "V1"
        return (f"the histogram is in HdrHistogram's {version} encoding (cookie 0x{cookie:08x}, "
                f"{payload[:8]!r}...); only V2 encodings ('HISTFAAA...') can be read: re-write "
                "the log with Java HdrHistogram's HistogramLogReader and HistogramLogWriter")
    if cookie in _DOUBLE_COOKIES:
        return (f"the histogram is a DoubleHistogram encoding (cookie 0x{cookie:08x}, "
                f"{payload[:8]!r}...); only integer Histogram V2 encodings ('HISTFAAA...') "
                "can be read")
    return None


class HistogramLogReader:
    """Reads an HdrHistogram interval log, one interval histogram at a time.

    ``file`` is a path (read as UTF-8) or an open file object (text or
    binary); a file the reader opened is closed by :meth:`close`.  Iterating
    yields every interval's :class:`Histogram`, with ``start_time`` /
    ``end_time`` in absolute seconds since the epoch and ``tag`` set (None
    when the line has none).

    Malformed lines raise :class:`HistogramLogError` (a ValueError) naming
    the file, the line and the problem; blank lines are skipped.
    """

    def __init__(self, file: str | os.PathLike[str] | IO[str] | IO[bytes]) -> None:
        self._file: IO[str] | IO[bytes]
        self._path: str | None
        if isinstance(file, (str, os.PathLike)):
            self._path = os.fspath(file)
            # Binary, decoded line by line: a decoding error then names its line.
            self._file = open(file, "rb")
            self._owns_file = True
        elif callable(getattr(file, "readline", None)):
            name = getattr(file, "name", None)
            self._path = name if isinstance(name, str) else None
            self._file = file
            self._owns_file = False
        else:
            raise TypeError("HistogramLogReader: file must be a path or a file object, "
                            f"got {type(file).__name__}")
        self._lineno = 0
        self._pending: tuple[int, str] | None = None
        self._start_time = 0.0
        self._observed_start = False
        self._base_time = 0.0
        self._observed_base = False
        self._seen_interval = False
        self._overflow = (0, 0)     # (line, count) of the last #[Overflow:] comment
        self._closed = False

    # -- state ---------------------------------------------------------------

    @property
    def start_time(self) -> float:
        """The log's start time, seconds since the epoch: the latest
        ``#[StartTime:]`` read so far or, without one, the first interval's
        timestamp (as Java); 0.0 when the log has neither.  Before the first
        interval is read, reading this reads the header."""
        if not self._seen_interval:
            self._read_header()
        return self._start_time

    @property
    def base_time(self) -> float:
        """What interval timestamps are relative to, seconds since the epoch:
        the latest ``#[BaseTime:]`` read so far or, without one, deduced from
        the first interval as Java does (the start time when that interval's
        timestamp lies over a year before it, else 0.0: absolute)."""
        if not self._seen_interval:
            self._read_header()
        return self._base_time

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    # -- reading -------------------------------------------------------------

    def _error(self, lineno: int | None, problem: str) -> HistogramLogError:
        return HistogramLogError(problem, path=self._path, lineno=lineno)

    def _next_line(self) -> tuple[int, str] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        if self._closed:
            raise ValueError("HistogramLogReader: the reader is closed")
        lineno = self._lineno + 1
        try:
            raw = self._file.readline()
        except UnicodeDecodeError as e:
            # A text file object decodes in blocks: the bad byte may be on a later line.
            raise self._error(lineno, f"the file's text cannot be decoded ({e}); the bad "
                                      "byte is on this line or a later one") from None
        if not raw:
            return None
        self._lineno = lineno
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise self._error(lineno, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                          f"{e.start + 1})") from None
        else:
            text = raw
        return lineno, text

    def _number(self, lineno: int, text: str, what: str) -> float:
        if not _NUMBER.match(text):
            raise self._error(lineno, f"{what} {text!r} is not a number")
        value = float(text)
        if not math.isfinite(value):
            raise self._error(lineno, f"{what} {text!r} is out of range")
        return value

    def _parse(self, lineno: int, text: str) -> _Interval | None:
        """The interval on this line, or None for a header, comment, legend
        or blank line (whose start or base time it records)."""
        line = text.strip()
        if not line:
            return None
        if line.startswith("#"):
            marker = _OVERFLOW_COMMENT.match(line)
            if marker is not None:
                self._overflow = (lineno, int(marker.group(1)))
                return None
            m = _TIME_COMMENT.match(line)
            if m is not None:
                which, value = m.group(1), m.group(2)
                # Java ignores a marker without a number; a start or base time
                # lost that way would shift every timestamp, so it is an error.
                seconds = self._number(lineno, value, f"the #[{which}:] value")
                if which == "StartTime":
                    self._start_time = seconds
                    self._observed_start = True
                else:
                    self._base_time = seconds
                    self._observed_base = True
            return None
        if line.startswith('"StartTimestamp"'):
            return None
        tag: str | None = None
        body = line
        if line.startswith("Tag="):
            end = line.find(",")
            if end < 0:
                raise self._error(lineno, "a Tag= field with no interval fields after it")
            tag = line[4:end]
            body = line[end + 1:]
            bad = sorted(_TAG_FORBIDDEN.intersection(tag))
            if bad:
                raise self._error(lineno, f"tag {tag!r} holds {', '.join(repr(c) for c in bad)}, "
                                          "which ends a field in the log format")
        fields = body.split(",")
        if len(fields) != 4:
            raise self._error(lineno, f"expected 4 comma-separated fields (StartTimestamp, "
                                      f"Interval_Length, Interval_Max, Interval_Compressed_"
                                      f"Histogram){' after the Tag= field' if tag is not None else ''}, "
                                      f"got {len(fields)}: {_shorten(line)!r}")
        timestamp = self._number(lineno, fields[0], "StartTimestamp")
        length = self._number(lineno, fields[1], "Interval_Length")
        # Interval_Max is not used (the histogram holds its max) but Java's
        # reader requires a number there too.
        self._number(lineno, fields[2], "Interval_Max")
        payload = fields[3]
        if not payload:
            raise self._error(lineno, "the Interval_Compressed_Histogram field is empty")
        # Checked on every interval line, even one a range skips undecoded: a
        # log this package cannot decode is never passed over in silence.
        foreign = _foreign_encoding(payload)
        if foreign is not None:
            raise self._error(lineno, foreign)
        # an overflow comment applies to the interval line right after it
        overflow = self._overflow[1] if self._overflow[0] == lineno - 1 else 0
        return _Interval(lineno, tag, timestamp, length, payload, overflow)

    def _absolute_start(self, interval: _Interval) -> float:
        """The interval's start in seconds since the epoch, settling the start
        and base times on the first interval as Java's reader does."""
        self._seen_interval = True
        if not self._observed_start:
            # Java takes the first timestamp as is.  With a #[BaseTime:] and no
            # #[StartTime:] that is a relative time, which makes Java's relative
            # ranges meaningless; the absolute time is what was meant.
            self._start_time = interval.timestamp + (self._base_time if self._observed_base else 0.0)
            self._observed_start = True
        if not self._observed_base:
            if interval.timestamp < self._start_time - _YEAR_SECONDS:
                self._base_time = self._start_time
            else:
                self._base_time = 0.0
            self._observed_base = True
        return interval.timestamp + self._base_time

    def _read_header(self) -> None:
        """Read up to the first interval line (kept for the next read), so
        that the start and base times are known."""
        while not self._seen_interval:
            item = self._next_line()
            if item is None:
                return
            interval = self._parse(*item)
            if interval is not None:
                self._absolute_start(interval)
                self._pending = item

    def next_interval_histogram(self, range_start: float | None = None,
                                range_end: float | None = None,
                                absolute: bool = False) -> Histogram | None:
        """The next interval whose start lies in [range_start, range_end], or
        None at the end of the log.

        The range is in seconds relative to the log's start time, or in
        seconds since the epoch when ``absolute``; a bound left None is open.
        Intervals before ``range_start`` are skipped (not decoded).  As in
        Java, timestamps are taken to be in order: an interval after
        ``range_end`` ends the read and None is returned; unlike Java, that
        interval is not consumed, so a later call with a later range returns
        it."""
        while True:
            item = self._next_line()
            if item is None:
                return None
            interval = self._parse(*item)
            if interval is None:
                continue
            start = self._absolute_start(interval)
            key = start if absolute else start - self._start_time
            if range_start is not None and key < range_start:
                continue
            if range_end is not None and key > range_end:
                self._pending = item
                return None
            return self._decode(interval, start)

    def _decode(self, interval: _Interval, start: float) -> Histogram:
        try:
            histogram = Histogram.decode(interval.payload)
        except HistogramDecodeError as e:
            raise self._error(interval.lineno, f"the histogram does not decode: {e}") from e
        histogram.start_time = start
        histogram.end_time = start + interval.length
        histogram.tag = interval.tag
        histogram.record_overflow(interval.overflow)
        return histogram

    def __iter__(self) -> Iterator[Histogram]:
        return self

    def __next__(self) -> Histogram:
        histogram = self.next_interval_histogram()
        if histogram is None:
            raise StopIteration
        return histogram

    def close(self) -> None:
        """Close the file the reader opened (a file object passed in is left
        open).  Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._pending = None
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> HistogramLogReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_log(path: str | os.PathLike[str]) -> list[Histogram]:
    """Every interval histogram of the log at ``path``, in file order."""
    with HistogramLogReader(path) as reader:
        return list(reader)
