"""HdrHistogram interval logs: our writer and reader against each other, against
the hdrhistogram package (the oracle) and against logs Java tools wrote."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, cast

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader as HdrhLogReader
from hdrh.log import HistogramLogWriter as HdrhLogWriter

import caxton_meter
from caxton_meter import Histogram, HistogramDecodeError
from caxton_meter._hdrlog import (
    LOG_FORMAT_VERSION,
    HistogramLogError,
    HistogramLogReader,
    HistogramLogWriter,
    read_log,
)

DATA = Path(__file__).parent / "data"
JHICCUP = DATA / "jHiccup-2.0.7S.logV2.hlog"        # jHiccup 2.0.7, V2 histograms
TAGGED = DATA / "tagged-non-monotonic.hlog"         # Java test log: tags, out of order
V0_LOG = DATA / "hiccup-v0-excerpt.hlog"             # jHiccup 2.0.3, V0 histograms

HOUR_NS = 3_600_000_000_000
T0 = 1_700_000_000.25           # a start time, seconds since the epoch

# Encodings Java wrote that this package cannot decode (from the test suites
# of hdrhistogram-go / HdrHistogramJS and a DoubleHistogram dump).
V1_PAYLOAD = ("HISTIgAAAFd42pNpmazIwMAYxgABTBDKT4GBgdnNYMcCBvsPUBkeBkYGZqA8MwMbAzsDC5DFBCTZgJCDQY1B"
              "jkGLQZRBlUEPCB8zWDCYMxgDZZkZhgJgHDibAY8JB/A=")
DOUBLE_PAYLOAD = ("DHISTwAAAAMAAAAAAAAABByEkxQAAABBeNqTaZkszMDAoMwAAcxQmhFC2f+3OwBhHZdgecrONJWDpZuF5zoz"
                  "SzMTUz8bVzcL03VmjkZGlnqWRkY2AGoTC78=")


def make_histogram(values: list[int], start: float = 0.0, end: float = 0.0,
                   tag: str | None = None) -> Histogram:
    h = Histogram(1, HOUR_NS, 3)
    for v in values:
        h.record(v)
    h.start_time = start
    h.end_time = end
    h.tag = tag
    return h


def sample_intervals() -> list[Histogram]:
    """Five intervals: distinct values, an empty one, tags and no tags."""
    tags = [None, "A", "B", None, "A"]
    out = []
    for i in range(5):
        values = [] if i == 3 else [1000 * (i + 1) + k * 7919 * (i + 1) for k in range(50)] + [10**9 + i]
        out.append(make_histogram(values, T0 + 1.5 * i, T0 + 1.5 * i + 1.0 + 0.001 * i, tags[i]))
    return out


def interval_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith(("#", '"'))]


def data_lines(path: Path) -> list[str]:
    return interval_lines(path.read_text())


@pytest.fixture
def utc() -> Iterator[None]:
    """The local time zone set to UTC for the test, so the header's date is known."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "UTC")
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


# --- our writer, our reader ----------------------------------------------------

def test_round_trip_absolute_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "abs.hlog"
    written = sample_intervals()
    with HistogramLogWriter(path) as w:
        w.write_header(T0)
        for h in written:
            w.output_interval_histogram(h)
    # No base time: timestamps are written absolute.
    assert interval_lines(path.read_text())[0].startswith(f"{T0:.3f},1.000,")

    with HistogramLogReader(path) as r:
        assert r.start_time == pytest.approx(T0, abs=5e-4)
        assert r.base_time == 0.0
        read = list(r)
    assert len(read) == len(written)
    for got, want in zip(read, written):
        assert got == want
        assert got.total_count == want.total_count
        assert got.max == want.max
        assert got.tag == want.tag
        assert got.start_time == pytest.approx(want.start_time, abs=6e-4)
        assert got.end_time == pytest.approx(want.end_time, abs=1.2e-3)


def test_round_trip_relative_to_base_time(tmp_path: Path) -> None:
    path = tmp_path / "rel.hlog"
    written = sample_intervals()
    with HistogramLogWriter(path) as w:
        w.write_header(T0, base_time=T0)
        assert w.base_time == round(T0, 3)
        for h in written:
            w.output_interval_histogram(h)
    lines = interval_lines(path.read_text())
    assert [ln.split(",")[-4] for ln in lines] == ["0.000", "1.500", "3.000", "4.500", "6.000"]
    assert lines[1].startswith("Tag=A,1.500,1.001,")

    with HistogramLogReader(path) as r:
        read = list(r)
        assert r.base_time == round(T0, 3)
        assert r.start_time == round(T0, 3)
    assert [h.tag for h in read] == [h.tag for h in written]
    for got, want in zip(read, written):
        assert got == want
        assert got.start_time == pytest.approx(want.start_time, abs=6e-4)
        assert got.end_time == pytest.approx(want.end_time, abs=1.2e-3)


def test_explicit_times_and_tag_override_the_histograms(tmp_path: Path) -> None:
    path = tmp_path / "explicit.hlog"
    h = make_histogram([5], start=1.0, end=2.0, tag="own")
    with HistogramLogWriter(path) as w:
        w.write_header(T0)
        w.output_interval_histogram(h, start_time=T0 + 10, end_time=T0 + 12.5, tag="given")
    (got,) = read_log(path)
    assert got.tag == "given"
    assert got.start_time == pytest.approx(T0 + 10, abs=6e-4)
    assert got.end_time == pytest.approx(T0 + 12.5, abs=1.2e-3)


def test_exact_lines_as_java_writes_them(utc: None) -> None:
    buf = io.StringIO()
    h = make_histogram([2_769_000], tag="db")
    w = HistogramLogWriter(buf)
    w.write_header(1441812279.474, base_time=1441812279.0, comment="[run 7]")
    w.output_interval_histogram(h, start_time=1441812279.474, end_time=1441812280.475)
    h.tag = None
    w.output_interval_histogram(h, start_time=1441812280.475, end_time=1441812281.5)
    w.close()
    assert buf.getvalue().splitlines() == [
        f"#[Logged with caxton_meter {caxton_meter.__version__}]",
        "#[run 7]",
        "#[Histogram log format version 1.3]",
        "#[StartTime: 1441812279.474 (seconds since epoch), Wed Sep 09 15:24:39 UTC 2015]",
        "#[BaseTime: 1441812279.000 (seconds since epoch)]",
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"',
        # the max column is the histogram's max (the top of its bucket), 2770943 ns in ms
        f"Tag=db,0.474,1.001,2.771,{h.encode()}",
        f"1.475,1.025,2.771,{h.encode()}",
    ]
    assert LOG_FORMAT_VERSION == "1.3"


def test_max_value_unit_ratio_scales_the_max_column() -> None:
    buf = io.StringIO()
    w = HistogramLogWriter(buf, max_value_unit_ratio=1e3)
    w.output_interval_histogram(make_histogram([2_769_000]), start_time=1.0, end_time=2.0)
    assert buf.getvalue().split(",")[2] == "2770.943"


def test_tiny_negative_relative_start_is_written_as_zero() -> None:
    # "-0.000" would make the hdrhistogram package skip the line.
    buf = io.StringIO()
    w = HistogramLogWriter(buf)
    w.output_base_time(T0)
    w.output_interval_histogram(make_histogram([1]), start_time=T0 - 0.0001, end_time=T0 + 1)
    assert interval_lines(buf.getvalue())[0].startswith("0.000,1.000,")


# --- the hdrhistogram package reads what we write --------------------------------

def assert_same_counts(ours: Histogram, theirs: HdrHistogram) -> None:
    assert theirs.get_total_count() == ours.total_count
    assert theirs.get_max_value() == ours.max
    for value, count in ours:
        assert theirs.get_count_at_value(value) == count


@pytest.mark.parametrize("base", [None, T0], ids=["absolute", "relative"])
def test_hdrh_package_reads_our_log(tmp_path: Path, base: float | None) -> None:
    path = tmp_path / "ours.hlog"
    written = sample_intervals()
    with HistogramLogWriter(path) as w:
        w.write_header(T0, base_time=base)
        for h in written:
            w.output_interval_histogram(h)

    reader = HdrhLogReader(str(path), HdrHistogram(1, HOUR_NS, 3))
    try:
        theirs = []
        while (hd := reader.get_next_interval_histogram()) is not None:
            theirs.append(hd)
        assert reader.get_start_time_sec() == pytest.approx(T0, abs=5e-4)
    finally:
        reader.close()
    assert len(theirs) == len(written)
    for hd, want in zip(theirs, written):
        assert_same_counts(want, hd)
        assert hd.get_tag() == want.tag
        # the package keeps times in milliseconds
        assert hd.get_start_time_stamp() == pytest.approx(want.start_time * 1000, abs=0.6)
        assert hd.get_end_time_stamp() == pytest.approx(want.end_time * 1000, abs=1.2)


# --- we read what the hdrhistogram package writes --------------------------------

def test_we_read_the_hdrh_package_log(tmp_path: Path) -> None:
    path = tmp_path / "theirs.hlog"
    base_ms = 1_700_000_000_250
    theirs = []
    for i in range(4):
        hd = HdrHistogram(1, HOUR_NS, 3)
        for k in range(40 * (i + 1)):
            hd.record_value(12_345 * (k + 1) + i)
        theirs.append(hd)
    with open(path, "w") as f:
        w = HdrhLogWriter(f)
        w.output_comment("[Logged with the hdrhistogram package]")
        w.output_log_format_version()
        # Its output_start_time fails (datetime has no iso_format), so the
        # line Java writes is written as a comment.
        w.output_comment(f"[StartTime: {base_ms / 1000:.3f} (seconds since epoch), "
                         "Tue Nov 14 22:13:20 UTC 2023]")
        w.output_base_time(base_ms)
        w.output_legend()
        for i, hd in enumerate(theirs):
            w.output_interval_histogram(hd, 0.5 + i, 1.5 + i)   # "%f" with 6 decimals
    assert interval_lines(path.read_text())[0].startswith("0.500000,1.000000,")

    with HistogramLogReader(path) as r:
        ours = list(r)
        assert r.start_time == base_ms / 1000
        assert r.base_time == base_ms / 1000
    assert len(ours) == len(theirs)
    for i, (got, hd) in enumerate(zip(ours, theirs)):
        assert_same_counts(got, hd)
        assert got.tag is None
        assert got.start_time == pytest.approx(base_ms / 1000 + 0.5 + i, abs=1e-6)
        assert got.end_time == pytest.approx(base_ms / 1000 + 1.5 + i, abs=1e-6)


# --- logs Java tools wrote ---------------------------------------------------------

def test_jhiccup_log_as_java_reads_it() -> None:
    # The expected numbers are those of Java's HistogramLogReaderWriterTest.jHiccupV2Log.
    reader = HistogramLogReader(JHICCUP)
    assert reader.start_time == 1441753532.570
    # No #[BaseTime:], and 0.126 lies decades before StartTime: relative timestamps.
    assert reader.base_time == 1441753532.570
    histograms = list(reader)
    reader.close()
    assert len(histograms) == 38
    assert sum(h.total_count for h in histograms) == 30874
    total = Histogram(1, HOUR_NS, 3)
    for h in histograms:
        total.add(h)
    assert total.value_at_percentile(99.9) == 956825599
    assert total.max == 981991423

    first, last = histograms[0], histograms[-1]
    assert first.start_time == pytest.approx(1441753532.570 + 0.126, abs=1e-6)
    assert first.end_time == pytest.approx(1441753532.570 + 0.126 + 1.007, abs=1e-6)
    assert last.start_time == pytest.approx(1441753532.570 + 37.132, abs=1e-6)
    assert all(h.tag is None for h in histograms)


@pytest.mark.parametrize(("start", "end", "count", "total_count"),
                         [(5, 20, 14, 12406), (15, 32, 17, 13754)])
def test_jhiccup_log_relative_ranges_as_java(start: float, end: float, count: int,
                                             total_count: int) -> None:
    total = Histogram(1, HOUR_NS, 3)
    n = 0
    with HistogramLogReader(JHICCUP) as r:
        while (h := r.next_interval_histogram(start, end)) is not None:
            total.add(h)
            n += 1
    assert (n, total.total_count) == (count, total_count)
    assert total.value_at_percentile(99.9) == 969408511
    assert total.max == 981991423


@pytest.mark.parametrize("index", [0, 7, 13, 18, 30, 37])
def test_jhiccup_intervals_match_the_hdrh_package(index: int) -> None:
    line = data_lines(JHICCUP)[index]
    theirs = HdrHistogram.decode(line.split(",")[3])
    ours = read_log(JHICCUP)[index]
    assert_same_counts(ours, theirs)
    assert ours.lowest_discernible_value == theirs.lowest_trackable_value
    assert ours.significant_figures == theirs.significant_figures


def test_jhiccup_max_column_is_the_histogram_max() -> None:
    lines = data_lines(JHICCUP)
    for line, h in zip(lines, read_log(JHICCUP)):
        assert f"{h.max / 1e6:.3f}" == line.split(",")[2], line[:40]


def test_rewriting_the_jhiccup_log_reproduces_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "rewritten.hlog"
    with HistogramLogReader(JHICCUP) as r, HistogramLogWriter(path) as w:
        w.write_header(r.start_time, base_time=r.base_time)
        for h in r:
            w.output_interval_histogram(h)
    original = [ln.rsplit(",", 1) for ln in data_lines(JHICCUP)]
    rewritten = [ln.rsplit(",", 1) for ln in data_lines(path)]
    assert [cols for cols, _ in rewritten] == [cols for cols, _ in original]
    for (_, ours), (_, java) in zip(rewritten, original):
        assert Histogram.decode(ours) == Histogram.decode(java)


def test_tagged_non_monotonic_java_log() -> None:
    with HistogramLogReader(TAGGED) as r:
        histograms = list(r)
        # No #[StartTime:]: the first timestamp is the start time, and it is
        # not over a year after the others, so timestamps are absolute.
        assert r.start_time == 2.133
        assert r.base_time == 0.0
    assert [h.tag for h in histograms] == ["A", "A", "B", "B", "C", "C"]
    assert [round(h.start_time, 3) for h in histograms] == [2.133, 3.134, 0.127, 1.134, 6.134, 7.133]
    assert sum(h.total_count for h in histograms) == 4490
    for line, h in zip(data_lines(TAGGED), histograms):
        assert_same_counts(h, HdrHistogram.decode(line.split(",")[4]))


def test_relative_range_skips_intervals_before_the_start_time() -> None:
    # Relative to StartTime 2.133 the B intervals start before 0: skipped.
    with HistogramLogReader(TAGGED) as r:
        tags = []
        while (h := r.next_interval_histogram(range_start=0.0)) is not None:
            tags.append(h.tag)
    assert tags == ["A", "A", "C", "C"]


# --- range semantics -------------------------------------------------------------------

def ranged_log() -> io.StringIO:
    buf = io.StringIO()
    w = HistogramLogWriter(buf)
    w.write_header(T0, base_time=T0)
    for i in range(10):
        w.output_interval_histogram(make_histogram([i + 1]), start_time=T0 + i, end_time=T0 + i + 1)
    buf.seek(0)
    return buf


def test_relative_range_and_the_interval_after_it() -> None:
    r = HistogramLogReader(ranged_log())
    got = []
    while (h := r.next_interval_histogram(2, 4)) is not None:
        got.append(h.max)
    assert got == [3, 4, 5]                       # the intervals starting at 2, 3 and 4
    # The interval after the range (start 5) was not consumed: a later range gets it.
    h = r.next_interval_histogram(5, 6)
    assert h is not None and h.max == 6
    assert round(h.start_time - T0, 3) == 5.0


def test_absolute_range() -> None:
    r = HistogramLogReader(ranged_log())
    h = r.next_interval_histogram(T0 + 7, T0 + 8, absolute=True)
    assert h is not None and round(h.start_time - T0, 3) == 7.0
    h = r.next_interval_histogram(T0 + 7, T0 + 8, absolute=True)
    assert h is not None and round(h.start_time - T0, 3) == 8.0
    assert r.next_interval_histogram(T0 + 7, T0 + 8, absolute=True) is None
    # A relative range of the same numbers finds nothing: relative starts are 0..9.
    r2 = HistogramLogReader(ranged_log())
    assert r2.next_interval_histogram(T0 + 7, T0 + 8) is None


def test_java_empty_histograms_log_ranges() -> None:
    # Java's HistogramLogReaderWriterTest.emptyHistogramsInLog.
    def log() -> io.StringIO:
        buf = io.StringIO()
        w = HistogramLogWriter(buf)
        w.output_log_format_version()
        w.output_start_time(11.0)
        w.output_legend()
        empty = Histogram(1, HOUR_NS, 2)
        w.output_interval_histogram(empty, start_time=11.1, end_time=12.1)
        w.output_interval_histogram(empty, start_time=12.1, end_time=13.1)
        buf.seek(0)
        return buf

    r = HistogramLogReader(log())
    first = r.next_interval_histogram()
    assert r.start_time == 11.0
    assert first is not None and first.total_count == 0
    assert (first.start_time, first.end_time) == pytest.approx((11.1, 12.1))
    second = r.next_interval_histogram()
    assert second is not None and (second.start_time, second.end_time) == pytest.approx((12.1, 13.1))
    assert r.next_interval_histogram() is None

    r = HistogramLogReader(log())
    assert len([h for h in iter(lambda: r.next_interval_histogram(0.0, 4.0), None)]) == 2
    r = HistogramLogReader(log())
    only = r.next_interval_histogram(1.0, 4.0)
    assert only is not None and only.start_time == pytest.approx(12.1)
    assert r.next_interval_histogram() is None


def test_header_only_log() -> None:
    # Java's HistogramLogReaderWriterTest.emptyLog.
    buf = io.StringIO()
    w = HistogramLogWriter(buf)
    w.output_log_format_version()
    w.output_start_time(1.0)
    w.output_log_format_version()
    w.output_legend()
    buf.seek(0)
    r = HistogramLogReader(buf)
    assert r.next_interval_histogram() is None
    assert r.start_time == 1.0
    assert list(r) == []


def test_base_time_without_start_time() -> None:
    # Java would take the first relative timestamp (0.5) as the start time;
    # the absolute one is what the log means.
    text = ("#[BaseTime: 1000.000 (seconds since epoch)]\n"
            f"0.500,1.000,0.000,{Histogram(1, 100, 2).encode()}\n")
    r = HistogramLogReader(io.StringIO(text))
    assert (r.start_time, r.base_time) == (1000.5, 1000.0)
    h = r.next_interval_histogram(0.0, 0.0)
    assert h is not None and h.start_time == 1000.5


def test_latest_start_time_line_wins() -> None:
    payload = Histogram(1, 100, 2).encode()
    text = ("#[StartTime: 100.000 (seconds since epoch), x]\n"
            "#[StartTime: 200.000 (seconds since epoch), x]\n"
            f"200.000,1.000,0.000,{payload}\n")
    r = HistogramLogReader(io.StringIO(text))
    assert r.start_time == 200.0


# --- a killed writer keeps every finished interval -------------------------------------

KILLED_WRITER = """
import sys
from caxton_meter import Histogram
from caxton_meter._hdrlog import HistogramLogWriter

path, n = sys.argv[1], int(sys.argv[2])
w = HistogramLogWriter(path)
w.write_header(1000.0)
for i in range(n):
    h = Histogram(1, 10**9, 3)
    h.record(i + 1)
    w.output_interval_histogram(h, start_time=1000.0 + i, end_time=1001.0 + i)
print("written", flush=True)
sys.stdin.read()       # never returns: the parent kills this process
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writer_keeps_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "killed.hlog"
    n = 6   # a few hundred bytes: all of it would still sit in a write buffer unflushed
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(n)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "written\n", proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    histograms = read_log(path)
    assert [h.max for h in histograms] == list(range(1, n + 1))
    assert [h.start_time for h in histograms] == [1000.0 + i for i in range(n)]


# --- malformed logs ------------------------------------------------------------------------

GOOD = make_histogram([1, 2, 3]).encode()
HEADER = ("#[Logged with a test]\n"
          "#[StartTime: 1000.000 (seconds since epoch), Thu Jan 01 00:16:40 UTC 1970]\n"
          '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n'
          "\n"
          f"0.000,1.000,0.000,{GOOD}\n")       # lines 1-5; the bad line is line 6
V0_LINE = data_lines(V0_LOG)[0]


def corrupt(payload: str) -> str:
    middle = len(payload) // 2
    return payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1:]


def decode_error(payload: str) -> str:
    with pytest.raises(HistogramDecodeError) as info:
        Histogram.decode(payload)
    return str(info.value)


MALFORMED = [
    ("three fields", f"1.0,1.0,{GOOD}", "expected 4 comma-separated fields"),
    ("five fields", f"1.0,1.0,0.0,{GOOD},x", "got 5"),
    ("text line", "hello world", "got 1"),
    ("tag alone", "Tag=A", "a Tag= field with no interval fields"),
    ("tag then three fields", f"Tag=A,1.0,0.0,{GOOD}", "after the Tag= field, got 3"),
    ("tag with a space", f"Tag=a b,1.0,1.0,0.0,{GOOD}", "tag 'a b' holds ' '"),
    ("word timestamp", f"soon,1.0,0.0,{GOOD}", "StartTimestamp 'soon' is not a number"),
    ("nan timestamp", f"nan,1.0,0.0,{GOOD}", "StartTimestamp 'nan' is not a number"),
    ("huge timestamp", f"1e400,1.0,0.0,{GOOD}", "StartTimestamp '1e400' is out of range"),
    ("spaced length", f"1.0, 1.0,0.0,{GOOD}", "Interval_Length ' 1.0' is not a number"),
    ("word max", f"1.0,1.0,big,{GOOD}", "Interval_Max 'big' is not a number"),
    ("bad StartTime", "#[StartTime: soon (seconds since epoch)]", "#[StartTime:] value 'soon'"),
    ("bad BaseTime", "#[BaseTime: 12:00 (seconds since epoch)]", "#[BaseTime:] value '12:00'"),
    ("empty histogram", "1.0,1.0,0.0,", "field is empty"),
    ("not base64", "1.0,1.0,0.0,not*base64!", "does not decode: " + decode_error("not*base64!")),
    ("corrupt histogram", f"1.0,1.0,0.0,{corrupt(GOOD)}",
     "does not decode: " + decode_error(corrupt(GOOD))),
    ("truncated histogram", f"1.0,1.0,0.0,{GOOD[:-8]}",
     "does not decode: " + decode_error(GOOD[:-8])),
    ("V0 histogram (jHiccup 2.0.3)", V0_LINE, "V0 encoding (cookie 0x1c849389"),
    ("V1 histogram", f"1.0,1.0,0.0,{V1_PAYLOAD}", "V1 encoding (cookie 0x1c849322"),
    ("DoubleHistogram", f"1.0,1.0,0.0,{DOUBLE_PAYLOAD}", "DoubleHistogram encoding (cookie 0x0c72124f"),
]


@pytest.mark.parametrize(("bad_line", "fragment"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, fragment: str) -> None:
    path = tmp_path / "bad.hlog"
    path.write_text(HEADER + bad_line + "\n" + f"2.0,1.0,0.0,{GOOD}\n")
    reader = HistogramLogReader(path)
    assert reader.next_interval_histogram() is not None      # line 5 is fine
    with pytest.raises(HistogramLogError) as info:
        reader.next_interval_histogram()
    reader.close()
    err = info.value
    assert err.lineno == 6
    assert err.path == str(path)
    assert str(err).startswith(f"{path}: line 6: ")
    assert fragment in str(err)
    assert isinstance(err, ValueError)


def test_decode_error_chains_the_decoder_error() -> None:
    with pytest.raises(HistogramLogError) as info:
        list(HistogramLogReader(io.StringIO(f"1.0,1.0,0.0,{corrupt(GOOD)}\n")))
    assert isinstance(info.value.__cause__, HistogramDecodeError)
    assert str(info.value).startswith("line 1: the histogram does not decode: decode: ")
    assert info.value.path is None


def test_v0_java_log_is_refused_not_skipped() -> None:
    with pytest.raises(HistogramLogError, match=r"hiccup-v0-excerpt\.hlog: line 5: .*V0 encoding"):
        read_log(V0_LOG)


def test_undecodable_encoding_raises_even_when_the_range_skips_it() -> None:
    text = HEADER + f"1.0,1.0,0.0,{V1_PAYLOAD}\n" + f"50.0,1.0,0.0,{GOOD}\n"
    r = HistogramLogReader(io.StringIO(text))
    with pytest.raises(HistogramLogError, match="line 6: .*V1 encoding"):
        r.next_interval_histogram(range_start=10.0)


def test_bad_start_time_raises_from_the_property() -> None:
    r = HistogramLogReader(io.StringIO("#[StartTime: later (seconds since epoch)]\n"))
    with pytest.raises(HistogramLogError, match=r"^line 1: the #\[StartTime:\] value 'later'"):
        r.start_time


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.hlog"
    path.write_bytes(HEADER.encode() + b"#[caf\xe9]\n")
    with pytest.raises(HistogramLogError, match=r"line 6: not UTF-8 text \(byte 0xe9 at column 6\)"):
        read_log(path)


# --- what the reader accepts ---------------------------------------------------------------

def test_crlf_blank_lines_and_binary_files() -> None:
    text = HEADER.replace("\n", "\r\n") + "\r\n\r\n" + f"Tag=x,3.0,1.0,0.0,{GOOD}\r\n\r\n"
    for source in (io.StringIO(text, newline=""), io.BytesIO(text.encode())):
        histograms = list(HistogramLogReader(source))
        assert [h.tag for h in histograms] == [None, "x"]
        assert histograms[1] == make_histogram([1, 2, 3])
        assert histograms[1].start_time == pytest.approx(3.0)   # absolute: 3.0 is not a year before 1000


def test_empty_tag_reads_as_java_reads_it() -> None:
    (h,) = HistogramLogReader(io.StringIO(f"Tag=,1.0,1.0,0.0,{GOOD}\n"))
    assert h.tag == ""


def test_reader_leaves_a_file_object_open_and_closes_its_own(tmp_path: Path) -> None:
    buf = io.StringIO(HEADER)
    with HistogramLogReader(buf) as r:
        assert len(list(r)) == 1
    assert not buf.closed
    path = tmp_path / "own.hlog"
    path.write_text(HEADER)
    r = HistogramLogReader(path)
    r.close()
    assert r.closed
    with pytest.raises(ValueError, match="closed"):
        r.next_interval_histogram()


# --- what the writer refuses ---------------------------------------------------------------

@pytest.mark.parametrize("tag", ["a,b", "a b", "a\nb", "a\rb"])
def test_writer_refuses_tags_with_delimiters(tag: str) -> None:
    buf = io.StringIO()
    w = HistogramLogWriter(buf)
    with pytest.raises(ValueError, match="cannot hold a comma, space or line break"):
        w.output_interval_histogram(make_histogram([1]), 1.0, 2.0, tag=tag)
    h = make_histogram([1], 1.0, 2.0, tag=tag)         # the histogram's own tag too
    with pytest.raises(ValueError, match="cannot hold a comma, space or line break"):
        w.output_interval_histogram(h)
    assert buf.getvalue() == ""


def test_writer_refuses_empty_and_non_str_tags() -> None:
    w = HistogramLogWriter(io.StringIO())
    with pytest.raises(ValueError, match="the tag is empty"):
        w.output_interval_histogram(make_histogram([1]), 1.0, 2.0, tag="")
    h = make_histogram([1], 1.0, 2.0)
    h.tag = cast(Any, 7)      # not a str, whatever the stubs say
    with pytest.raises(TypeError, match="the tag must be a str or None, got int 7"):
        w.output_interval_histogram(h)


def test_writer_refuses_bad_times() -> None:
    buf = io.StringIO()
    w = HistogramLogWriter(buf)
    with pytest.raises(ValueError, match="the histogram's start_time is unset"):
        w.output_interval_histogram(make_histogram([1]))
    with pytest.raises(ValueError, match="the histogram's end_time is unset"):
        w.output_interval_histogram(make_histogram([1], start=T0))
    with pytest.raises(ValueError, match="end_time 1.0 is before start_time 2.0"):
        w.output_interval_histogram(make_histogram([1]), start_time=2.0, end_time=1.0)
    with pytest.raises(ValueError, match="start_time must be finite"):
        w.output_interval_histogram(make_histogram([1]), start_time=float("nan"), end_time=1.0)
    with pytest.raises(ValueError, match="must be finite"):
        w.output_start_time(float("inf"))
    with pytest.raises(TypeError, match="must be a number of seconds"):
        w.output_base_time("now")  # type: ignore[arg-type]
    assert buf.getvalue() == ""


def test_writer_refuses_other_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_value_unit_ratio must be > 0"):
        HistogramLogWriter(io.StringIO(), max_value_unit_ratio=0.0)
    w = HistogramLogWriter(io.StringIO())
    with pytest.raises(ValueError, match="line break"):
        w.output_comment("two\nlines")
    with pytest.raises(TypeError, match="expected a caxton_meter Histogram, got HdrHistogram"):
        w.output_interval_histogram(HdrHistogram(1, 1000, 2), 1.0, 2.0)
    with pytest.raises(TypeError, match="file must be a path or a text file object"):
        HistogramLogWriter(42)  # type: ignore[arg-type]


def test_writer_close_semantics(tmp_path: Path) -> None:
    buf = io.StringIO()
    with HistogramLogWriter(buf) as w:
        w.output_legend()
    assert w.closed and not buf.closed      # a file object passed in is left open
    with pytest.raises(ValueError, match="the writer is closed"):
        w.output_legend()
    w.close()                               # twice is harmless

    path = tmp_path / "own.hlog"
    w = HistogramLogWriter(path)
    w.output_legend()
    w.close()
    assert path.read_text().startswith('"StartTimestamp"')


def test_import_does_not_import_numpy() -> None:
    code = ("import sys, caxton_meter._hdrlog as m; "
            "assert 'numpy' not in sys.modules, 'numpy imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"


def test_overflowed_values_survive_the_log(tmp_path):
    """The format has no field for values outside a histogram's range; the
    writer keeps them in an #[Overflow:] comment that other readers skip."""
    from hdrh.log import HistogramLogReader as PackageReader

    h = Histogram(1, 1000, 2)
    h.record_array([5, 7, 10**6, 10**7])
    h.start_time, h.end_time = 1_700_000_000.0, 1_700_000_001.0
    plain = Histogram(1, 1000, 2)
    plain.record(9)
    plain.start_time, plain.end_time = 1_700_000_001.0, 1_700_000_002.0
    path = tmp_path / "overflow.hlog"
    with HistogramLogWriter(path) as w:
        w.write_header(1_700_000_000.0)
        w.output_interval_histogram(h)
        w.output_interval_histogram(plain)
    assert "#[Overflow: 2]\n" in path.read_text()
    first, second = read_log(path)
    assert first == h and first.overflow_count == 2
    assert second.overflow_count == 0
    package = PackageReader(str(path), HdrHistogram(1, 1000, 2))
    try:
        assert package.get_next_interval_histogram().get_total_count() == 2
    finally:
        package.close()


def test_record_overflow_counts_and_checks():
    h = Histogram(1, 1000, 2)
    h.record_overflow(3)
    h.record_overflow(0)
    assert h.overflow_count == 3 and h.total_count == 0
    with pytest.raises(ValueError, match="count must be >= 0, got -1"):
        h.record_overflow(-1)
    with pytest.raises(TypeError, match="must be an int"):
        h.record_overflow(1.5)
