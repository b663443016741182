"""Recorder: lock-free interval recording with the writer-reader phaser."""
import pickle
import threading

import numpy as np
import pytest

from caxton_meter import Histogram, Recorder


def test_intervals_partition_what_was_recorded():
    rec = Recorder(1, 10**6, 3)
    rec.record(10)
    rec.record(20, 3)
    first = rec.interval_histogram()
    assert list(first) == [(10, 1), (20, 3)]
    rec.record_corrected(100, 40)
    second = rec.interval_histogram()
    assert list(second) == [(60, 1), (100, 1)]
    assert rec.interval_histogram().total_count == 0


def test_intervals_are_stamped_back_to_back():
    rec = Recorder(1, 1000, 2)
    a = rec.interval_histogram()
    b = rec.interval_histogram()
    assert 0 < a.start_time <= a.end_time == b.start_time <= b.end_time


def test_recycle_reuses_a_histogram_and_checks_it():
    rec = Recorder(1, 1000, 2)
    rec.record(5)
    a = rec.interval_histogram()
    rec.record(7)
    b = rec.interval_histogram(recycle=a)      # a becomes the active histogram
    assert list(b) == [(7, 1)]
    rec.record(9)
    c = rec.interval_histogram()
    assert c is a and list(c) == [(9, 1)]
    with pytest.raises(ValueError, match=r"recycle has parameters \(1, 2000, 2\); this recorder's are \(1, 1000, 2\)"):
        rec.interval_histogram(recycle=Histogram(1, 2000, 2))
    with pytest.raises(TypeError):
        rec.interval_histogram(recycle="nope")


def test_reset_discards_the_current_interval():
    rec = Recorder(1, 1000, 2)
    rec.record(5)
    rec.reset()
    assert rec.interval_histogram().total_count == 0


def test_bad_values():
    rec = Recorder(1, 1000, 2)
    with pytest.raises(ValueError, match="value -3 is negative"):
        rec.record(-3)
    with pytest.raises(ValueError, match="above the histogram's range"):
        rec.record(10**6)
    with pytest.raises(ValueError, match="count must be >= 1"):
        rec.record(1, 0)
    with pytest.raises(TypeError, match="must be an int, got float"):
        rec.record(2.5)
    with pytest.raises(ValueError, match="expected_interval must be >= 0"):
        rec.record_corrected(5, -1)
    with pytest.raises(ValueError, match=r"values\[1\] = -1 is negative"):
        rec.record_array(np.array([1, -1]))
    with pytest.raises(TypeError, match="array of integers"):
        rec.record_array(np.array([1.5]))
    assert rec.interval_histogram().total_count == 0
    # in bulk, values above the range are counted, not dropped
    assert rec.record_array(np.array([1, 5000, 7])) == 1
    h = rec.interval_histogram()
    assert (h.total_count, h.overflow_count) == (2, 1)


def test_parameters_and_pickling():
    rec = Recorder(2, 1000, 2)
    assert (rec.lowest_discernible_value, rec.highest_trackable_value, rec.significant_figures) == (2, 1000, 2)
    assert rec.highest_recordable_value == Histogram(2, 1000, 2).highest_recordable_value
    with pytest.raises(ValueError, match="significant_figures must be between 1 and 5"):
        Recorder(1, 1000, 9)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(rec)


def test_threads_without_the_gil_and_a_swapping_reader_lose_nothing():
    """Writers record in compiled code without the GIL while a reader swaps
    intervals as fast as it can: the intervals add up to exactly what was
    written, value by value."""
    rec = Recorder(1, 10**9, 3)
    rng = np.random.default_rng(3)
    chunks = [rng.integers(0, 1_200_000_000, size=150_000) for _ in range(3)]
    rounds = 20
    done = threading.Event()
    merged = Histogram(1, 10**9, 3)
    swaps = []

    def reader():
        while not done.is_set():
            merged.add(rec.interval_histogram())
            swaps.append(1)

    def writer(chunk):
        for _ in range(rounds):
            rec.record_array(chunk)

    r = threading.Thread(target=reader)
    writers = [threading.Thread(target=writer, args=(c,)) for c in chunks]
    r.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    r.join()
    merged.add(rec.interval_histogram())

    expected = Histogram(1, 10**9, 3)
    for c in chunks:
        expected.record_array(c)
    assert len(swaps) > 1
    assert merged.total_count == expected.total_count * rounds
    assert merged.overflow_count == expected.overflow_count * rounds > 0
    for (v1, c1), (v2, c2) in zip(merged, expected, strict=True):
        assert (v1, c1) == (v2, c2 * rounds)


def test_python_threads_recording_one_value_at_a_time_lose_nothing():
    rec = Recorder(1, 10**6, 3)
    per_thread = 20_000
    done = threading.Event()
    total = [0]

    def reader():
        while not done.is_set():
            total[0] += rec.interval_histogram().total_count

    def writer(k):
        for i in range(per_thread):
            rec.record(k * 1000 + i % 1000)

    r = threading.Thread(target=reader)
    ws = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    r.start()
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    done.set()
    r.join()
    total[0] += rec.interval_histogram().total_count
    assert total[0] == 4 * per_thread
