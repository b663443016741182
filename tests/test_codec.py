"""The V2 codec ("HISTFAAA..."): published vectors, interop with the
hdrhistogram package, hand-built variants the decoder must accept, malformed
input it must reject with a precise HistogramDecodeError, fuzzing, pickling."""
import base64
import pickle
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caxton_meter import Histogram, HistogramDecodeError

HIGHEST = 3_600_000_000
PAYLOAD_COOKIE = 0x1C849313
COMPRESSED_COOKIE = 0x1C849314
HEADER = struct.Struct(">IIIIqqd")      # the 40-byte payload header
PERCENTILES = [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]

# Published vectors: 10,000 x 1000 and 1 x 100,000,000 in (1, 3.6e9, 3)
OLD_C = "HISTFAAAACl4nJNpmSzMwMBgyAABzFCaEURcm7yEwf4DROA8/4I5jNM7mJgAlWkH9g=="
CURRENT = "HISTFAAAACl4nJNpmSzMwMDAyQABzFCaEURcm7yEwf4DROA8/4I5jNM7mJgAjtkHzg=="
EMPTY_C = "HISTFAAAAB94nJNpmSzMwMDAyAABzFAazL82eQmD/QeoAABVhASJ"
EMPTY_PACKAGE = "HISTFAAAABx4nJNpmSzMgADMUJoRRFybvITB/gNEAABQ2gSH"


# --- building encodings by hand ----------------------------------------------

def varint(value: int) -> bytes:
    """value zig-zag encoded as LEB128 the way Java writes it: at most 9
    bytes, the ninth carrying a full 8 bits."""
    u = ((value << 1) ^ (value >> 63)) & (2**64 - 1)
    out = bytearray()
    while len(out) < 8 and u >= 0x80:
        out.append(u & 0x7F | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def payload(counts=b"", *, cookie=PAYLOAD_COOKIE, length=None, offset=0,
            sig=3, lowest=1, highest=HIGHEST, ratio=1.0) -> bytes:
    length = len(counts) if length is None else length
    return HEADER.pack(cookie, length, offset, sig, lowest, highest, ratio) + counts


def wrap(compressed: bytes, *, cookie=COMPRESSED_COOKIE, length=None) -> str:
    length = len(compressed) if length is None else length
    return base64.b64encode(struct.pack(">II", cookie, length) + compressed).decode()


def encoding(body: bytes, *, level=6, **kw) -> str:
    return wrap(zlib.compress(body, level), **kw)


def unwrap(encoded: str) -> tuple[bytes, bytes]:
    """(the 8-byte outer header, the decompressed payload)"""
    raw = base64.b64decode(encoded)
    return raw[:8], zlib.decompress(raw[8:])


def histogram(pairs, lowest=1, highest=HIGHEST, sig=3) -> Histogram:
    h = Histogram(lowest, highest, sig)
    for value, count in pairs:
        h.record(value, count)
    return h


def consistent(h: Histogram) -> None:
    """What any decoded histogram must satisfy, however odd its input."""
    assert h.total_count == sum(count for _, count in h)
    assert all(count > 0 for _, count in h)


# With lowest 1 and 3 figures, counts index i < 2048 holds the value i.
REFERENCE = [(1, 5), (3, 7), (2000, 1)]
REFERENCE_COUNTS = varint(-1) + varint(5) + varint(-1) + varint(7) + varint(-1996) + varint(1)


# --- 1. published vectors ----------------------------------------------------

@pytest.mark.parametrize("encoded", [OLD_C, CURRENT, OLD_C.encode(), CURRENT.encode()])
def test_published_vector(encoded):
    h = Histogram.decode(encoded)
    assert (h.lowest_discernible_value, h.highest_trackable_value, h.significant_figures) == (1, HIGHEST, 3)
    assert h.total_count == 10_001
    assert h.count_at(1000) == 10_000 and h.count_at(100_000_000) == 1
    assert h.value_at_percentile(99.99) == 1000
    assert h.value_at_percentile(99.999) == 100_007_935
    assert h.mean == pytest.approx(10996.417, abs=1e-3)
    assert h.stdev == pytest.approx(999641.716, abs=1e-3)


def test_old_c_vector_differs_only_in_the_payload_length_field():
    (old_outer, old), (new_outer, new) = unwrap(OLD_C), unwrap(CURRENT)
    assert old_outer == new_outer and old[8:] == new[8:] and old[:4] == new[:4]
    assert struct.unpack(">I", old[4:8])[0] == len(old)          # header included
    assert struct.unpack(">I", new[4:8])[0] == len(new) - 40
    assert Histogram.decode(OLD_C) == Histogram.decode(CURRENT)


def test_our_encoding_of_the_vector_data_is_the_published_string():
    h = histogram([(1000, 10_000), (100_000_000, 1)])
    assert h.encode() == CURRENT
    assert Histogram.decode(CURRENT) == h


def test_empty_vectors():
    assert unwrap(EMPTY_C)[1][40:] == b"\x01"           # a run of one zero
    assert unwrap(EMPTY_PACKAGE)[1][40:] == b""
    for encoded in (EMPTY_C, EMPTY_PACKAGE):
        h = Histogram.decode(encoded)
        assert (h.lowest_discernible_value, h.highest_trackable_value, h.significant_figures) == (1, HIGHEST, 3)
        assert h.total_count == 0 and list(h) == [] and h.min == 0 and h.max == 0
        assert h == Histogram(1, HIGHEST, 3)
    assert Histogram(1, HIGHEST, 3).encode() == EMPTY_PACKAGE


# --- 2. interop with the hdrhistogram package ------------------------------------

# The package walks its counts in Python: ranges stay modest at high precision.
CONFIGS = [(1, HIGHEST, 3), (1, 10**6, 1), (1000, 10**10, 2), (7, 10**6, 4),
           (2**20, 2**50, 3), (3, 10**5, 5), (5, 5000, 2)]


# Percentile targets are computed in doubles (here as in C and Java): past
# 2**53 the 100th percentile's target can exceed the total, so both sides
# then answer garbage.  Compare percentiles only where doubles are exact.
def our_stats(h):
    if h.total_count >= 2**53:
        return h.total_count, h.min, h.max
    return h.total_count, h.min, h.max, [h.value_at_percentile(p) for p in PERCENTILES]


def package_stats(t):
    if t.get_total_count() >= 2**53:
        return t.get_total_count(), t.get_min_value(), t.get_max_value()
    if t.get_total_count() == 0:
        ps = [t.get_value_at_percentile(p) for p in PERCENTILES]
    else:
        table = t.get_percentile_to_value_dict(PERCENTILES)
        ps = [table[p] for p in PERCENTILES]
    return t.get_total_count(), t.get_min_value(), t.get_max_value(), ps


@st.composite
def recorded(draw):
    lowest, highest, sig = draw(st.sampled_from(CONFIGS))
    # counts from 2**55 take the 9-byte varint form; 40 of them stay < 2**63
    counts = st.one_of(st.integers(1, 1000), st.integers(1, 1000), st.integers(2**55, 2**57))
    pairs = draw(st.lists(st.tuples(st.integers(0, highest), counts), max_size=40))
    ours, theirs = Histogram(lowest, highest, sig), HdrHistogram(lowest, highest, sig)
    for value, count in pairs:
        ours.record(value, count)
        assert theirs.record_value(value, count)
    return ours, theirs


@settings(max_examples=150, deadline=None)
@given(recorded())
def test_encoding_and_round_trips_match_the_package(case):
    ours, theirs = case
    assert our_stats(ours) == package_stats(theirs)
    encoded = ours.encode()
    assert encoded == theirs.encode().decode("ascii")
    # ours -> package -> ours
    via_package = HdrHistogram.decode(encoded)
    back = Histogram.decode(via_package.encode())
    assert back == ours and our_stats(back) == package_stats(via_package)
    # package -> ours -> package
    mine = Histogram.decode(theirs.encode())
    again = HdrHistogram.decode(mine.encode())
    assert mine == ours and our_stats(mine) == package_stats(again)
    assert bytes(again.counts) == bytes(theirs.counts)
    # Round trips keep the statistics.  Not quite for a histogram holding
    # only zeros: recorded, its max is 0; decoded (as C decodes), the top of
    # bucket 0, since the encoding cannot tell 0 from the rest of the bucket.
    if ours.max or ours.total_count == 0:
        assert our_stats(back) == our_stats(mine) == our_stats(ours)


def test_decode_keeps_a_max_in_the_lowest_bucket():
    # Decoding sets the maximum to the top bucket's highest equivalent value,
    # as HdrHistogram_c and the package do; taking the bucket's lowest value
    # would read as "no maximum" for bucket 0.
    h = histogram([(300, 1)], lowest=1000, highest=10**10, sig=2)
    top = h.highest_equivalent_value(0)         # 511: bucket 0 holds 0..511
    assert h.max == top == HdrHistogram.decode(h.encode()).get_max_value()
    assert Histogram.decode(h.encode()).max == top, "decode lost the max of bucket 0"


@pytest.mark.parametrize("count", [2**55, 2**56, 2**62 - 1, 2**62, 2**63 - 2])
def test_huge_counts_round_trip(count):
    ours = histogram([(5, count), (1000, 1)], highest=10**6)
    theirs = HdrHistogram(1, 10**6, 3)
    theirs.record_value(5, count)
    theirs.record_value(1000, 1)
    assert ours.encode() == theirs.encode().decode("ascii")
    back = Histogram.decode(ours.encode())
    assert back == ours and back.count_at(5) == count and back.total_count == count + 1
    assert Histogram.decode(theirs.encode()) == ours
    # the package's own decoder loses counts >= 2**62 (hdrhistogram 0.10.8)
    if count < 2**62:
        assert HdrHistogram.decode(ours.encode()).get_count_at_value(5) == count


# --- 3. variants the decoder accepts ---------------------------------------------

def reference():
    return histogram(REFERENCE)


@pytest.mark.parametrize("level, zlib_header", [(9, b"\x78\xda"), (6, b"\x78\x9c")])
@pytest.mark.parametrize("payload_cookie", [PAYLOAD_COOKIE, 0x1C849303 | 0x20])
@pytest.mark.parametrize("outer_cookie", [COMPRESSED_COOKIE, 0x1C849304 | 0x20])
def test_zlib_levels_and_word_size_cookies(level, zlib_header, payload_cookie, outer_cookie):
    encoded = encoding(payload(REFERENCE_COUNTS, cookie=payload_cookie), level=level,
                       cookie=outer_cookie)
    assert base64.b64decode(encoded)[8:10] == zlib_header
    assert Histogram.decode(encoded) == reference()


def test_hand_built_payload_is_what_we_encode():
    assert reference().encode() == encoding(payload(REFERENCE_COUNTS))


@pytest.mark.parametrize("single_zero", [b"\x00", varint(-1)])
def test_a_single_zero_as_0x00_or_as_a_run_of_one(single_zero):
    counts = single_zero + varint(5) + single_zero + varint(7) + varint(-1996) + varint(1)
    h = Histogram.decode(encoding(payload(counts)))
    assert h == reference() and h.min == 1 and h.max == 2000


@pytest.mark.parametrize("count", [2**62, 2**63 - 1])
def test_nine_byte_varint(count):
    nine = varint(count)
    assert len(nine) == 9 and all(b & 0x80 for b in nine[:8]) and nine[8] >= 0x80
    h = Histogram.decode(encoding(payload(varint(-3) + nine)))
    assert list(h) == [(3, count)] and h.total_count == count


def test_payload_length_of_older_c_encoders_counts_the_header():
    body = payload(REFERENCE_COUNTS, length=40 + len(REFERENCE_COUNTS))
    assert Histogram.decode(encoding(body)) == reference()


@pytest.mark.parametrize("extra_header", [0, 40])
def test_uncompressed_v2_encoding_is_decoded(extra_header):
    # Java's encodeIntoByteBuffer: the raw payload, base64 without zlib
    body = payload(REFERENCE_COUNTS, length=len(REFERENCE_COUNTS) + extra_header)
    assert Histogram.decode(base64.b64encode(body)) == reference()


@pytest.mark.parametrize("convert", [str, str.encode, lambda s: bytearray(s.encode()),
                                     lambda s: memoryview(s.encode()),
                                     lambda s: f" \n\t{s}\r\n ", lambda s: f"\n{s}\n".encode()])
def test_str_bytes_and_surrounding_whitespace(convert):
    assert Histogram.decode(convert(CURRENT)) == Histogram.decode(CURRENT)


# --- 4. bad input ------------------------------------------------------------------

SMALL = dict(lowest=1, highest=2, sig=1)       # the fewest counters: 32
SMALL_LEN = Histogram(1, 2, 1).counts_len
CURRENT_RAW = base64.b64decode(CURRENT)
CURRENT_Z = CURRENT_RAW[8:]
Z = len(CURRENT_Z)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


BAD = {
    "empty": ("", "is empty"),
    "blank": (" \n", "is empty"),
    "non-ASCII": ("HISTFAAA\u00e9", "non-ASCII"),
    "bad base64 character": ("HIST*AAA", "not valid base64"),
    "bad padding": (CURRENT[:-1], "not valid base64.*padding"),
    # (the reason in parentheses is binascii's, and differs across Pythons)
    "data after padding": (CURRENT + "AAAA", "not valid base64"),
    "inner whitespace": (CURRENT[:8] + " " + CURRENT[8:], "not valid base64"),
    "5 bytes": (b64(CURRENT_RAW[:5]), "5 bytes after base64 decoding; the header alone takes 8"),
    "foreign cookie": (b64(b"\xde\xad\xbe\xef" + CURRENT_RAW[4:]), "0xdeadbeef is not an HdrHistogram V2"),
    "V1 cookie": (wrap(CURRENT_Z, cookie=0x1C849301), "0x1c849301 is an older \\(V0/V1\\)"),
    "V1 compressed cookie": (wrap(CURRENT_Z, cookie=0x1C849302), "0x1c849302 is an older \\(V0/V1\\)"),
    "truncated base64": (CURRENT[:-8], f"announces {Z} bytes of compressed payload but {Z - 4} follow"),
    "appended garbage": (b64(CURRENT_RAW + b"junk"), f"announces {Z} bytes .* but {Z + 4} follow"),
    "length field too large": (wrap(CURRENT_Z, length=Z + 1), f"announces {Z + 1} bytes .* but {Z} follow"),
    "corrupt zlib header": (wrap(b"\x00\x00" + CURRENT_Z[2:]), "corrupt zlib stream"),
    "corrupt zlib data": (wrap(CURRENT_Z[:2] + b"\xff" * 20), "corrupt zlib stream"),
    "bad zlib checksum": (wrap(CURRENT_Z[:-4] + b"\x00\x00\x00\x00"), "corrupt zlib stream"),
    "truncated zlib stream": (wrap(CURRENT_Z[:-4]), "zlib stream is truncated"),
    "zlib stream cut in the header": (wrap(CURRENT_Z[:12]), "decompressed payload has \\d+ bytes"),
    "payload shorter than its header": (encoding(payload()[:39]), "decompressed payload has 39 bytes; its header"),
    "uncompressed payload too short": (b64(payload()[:39]), "payload has 39 bytes; its header"),
    "wrong payload cookie": (encoding(payload(cookie=COMPRESSED_COOKIE)),
                             "payload cookie 0x1c849314 is not a V2 encoding"),
    "foreign payload cookie": (encoding(payload(cookie=0x12345678)), "payload cookie 0x12345678"),
    "lowest 0": (encoding(payload(lowest=0)), "invalid parameters.*lowest_discernible_value must be >= 1"),
    "highest < 2 * lowest": (encoding(payload(lowest=10, highest=19)),
                             "invalid parameters.*highest_trackable_value must be >= 2"),
    "lowest above 2**63 - 1": (encoding(payload(lowest=-1)), "invalid parameters"),
    "highest above 2**62 - 1": (encoding(payload(highest=2**62)), "invalid parameters.*2\\*\\*62 - 1"),
    "sig figs 0": (encoding(payload(sig=0)), "invalid parameters.*between 1 and 5, got 0"),
    "sig figs 6": (encoding(payload(sig=6)), "invalid parameters.*between 1 and 5, got 6"),
    "payload length too large": (encoding(payload(varint(5), length=2)),
                                 "truncated: its header announces 2 bytes of counts but 1 follow"),
    "payload length too small": (encoding(payload(varint(5) * 3, length=1)),
                                 "announces 1 bytes of counts but 3 follow"),
    "varint cut off": (encoding(payload(varint(-2) + varint(2**40)[:3])),
                       "end inside a varint \\(at counts index 2\\)"),
    "nine-byte varint cut off": (encoding(payload(varint(2**62)[:8])), "end inside a varint"),
    "count past counts_len": (encoding(payload(varint(-SMALL_LEN) + varint(1), **SMALL)),
                              f"run past the histogram's {SMALL_LEN} counters \\(at counts index {SMALL_LEN}\\)"),
    "zero past counts_len": (encoding(payload(varint(-SMALL_LEN) + b"\x00", **SMALL)),
                             f"run past the histogram's {SMALL_LEN} counters"),
    "zero run past counts_len": (encoding(payload(varint(1) + varint(-SMALL_LEN), **SMALL)),
                                 "run past .* \\(at counts index 1\\)"),
    "INT64_MIN zero run": (encoding(payload(b"\xff" * 9, **SMALL)), "run past"),
    "total overflows": (encoding(payload(varint(2**62) + varint(2**62))),
                        "add up to more than 2\\*\\*63 - 1 \\(at counts index 1\\)"),
    "uncompressed bad length": (b64(payload(varint(5), length=7)), "announces 7 bytes of counts but 1"),
}


@pytest.mark.parametrize("encoded, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_rejected_precisely(encoded, message):
    with pytest.raises(HistogramDecodeError, match=message):
        Histogram.decode(encoded)


def test_decode_error_is_a_value_error():
    assert issubclass(HistogramDecodeError, ValueError)


@pytest.mark.parametrize("value", [0, None, 1.5, ["HISTFAAA"], object()])
def test_type_error_for_non_text(value):
    with pytest.raises(TypeError, match="expected str or bytes"):
        Histogram.decode(value)


def test_zip_bomb_is_rejected_without_inflating_it():
    # 32 counters announced, then 64 MiB of single zeros: rejected after
    # decompressing at most 9 bytes per counter
    z = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    bomb = z.compress(payload(**SMALL)) + b"".join(z.compress(chunk) for _ in range(64)) + z.flush()
    encoded = wrap(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(HistogramDecodeError, match="more counts than the histogram's range allows"):
            Histogram.decode(encoded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_zero_run_cannot_overflow_the_counts_index():
    # A zero run near -2**63 once index >= 1: a naive bound check
    # (index - run > counts_len) overflows int64, index goes negative and the
    # next count lands at counts[-1].  Run in a subprocess so that a crash
    # fails this test only.
    counts = varint(-1) + varint(-(2**63 - 1)) * 2 + varint(7)
    encoded = encoding(payload(counts, lowest=1, highest=1000, sig=2))
    script = textwrap.dedent(f"""
        from caxton_meter import Histogram, HistogramDecodeError
        try:
            h = Histogram.decode({encoded!r})
        except HistogramDecodeError as e:
            print("rejected:", e)
        else:
            print("accepted:", h, list(h))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "rejected: decode: counts run past" in run.stdout, (
        f"a zero run of -(2**63 - 1) after index 1 must be rejected; the decoder "
        f"exited with {run.returncode}, stdout {run.stdout!r}, stderr {run.stderr[-300:]!r}")


# --- 5. fuzzing ------------------------------------------------------------------

def decode_or_reject(encoded):
    """Either a precise rejection or a consistent histogram: never another
    exception, never a crash."""
    try:
        h = Histogram.decode(encoded)
    except HistogramDecodeError:
        return
    consistent(h)


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.text(), st.binary(), st.text(alphabet=B64 + " \n").map(lambda s: "HISTFAAA" + s)))
def test_fuzz_arbitrary_input(data):
    decode_or_reject(data)


@FUZZ
@given(st.binary(), st.booleans(), st.sampled_from([COMPRESSED_COOKIE, 0x1C849303, 0x1C849301]))
def test_fuzz_arbitrary_bytes_behind_a_valid_header(data, compress, cookie):
    # get past base64 and the outer cookie, into zlib or the payload parser
    body = zlib.compress(data) if compress else data
    decode_or_reject(wrap(body, cookie=cookie))


SEEDS = [OLD_C, CURRENT, EMPTY_C, EMPTY_PACKAGE,
         histogram([(0, 3), (1, 2), (3, 1), (31, 4)], **SMALL).encode(),
         histogram([(7, 1), (70_000, 2**56), (999_999, 3)], lowest=7, highest=10**6, sig=4).encode(),
         histogram([(5000, 1), (10**9, 10**6)], lowest=1000, highest=10**10, sig=2).encode()]

edits = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete"]),
                           st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)


def mutate(data: bytes, ops) -> bytearray:
    b = bytearray(data)
    for op, pos, byte in ops:
        if op == "insert":
            b.insert(pos % (len(b) + 1), byte)
        elif not b:
            continue
        elif op == "flip":
            b[pos % len(b)] ^= 1 << (byte % 8)
        else:
            del b[pos % len(b)]
    return b


@FUZZ
@given(st.sampled_from(SEEDS), edits, st.booleans())
def test_fuzz_mutated_raw_encoding(seed, ops, fix_length):
    raw = mutate(base64.b64decode(seed), ops)
    if fix_length and len(raw) >= 8:      # else most edits stop at the length check
        raw[4:8] = struct.pack(">I", len(raw) - 8)
    decode_or_reject(b64(bytes(raw)))


@FUZZ
@given(st.sampled_from(SEEDS), edits, st.booleans())
def test_fuzz_mutated_payload(seed, ops, fix_length):
    body = mutate(unwrap(seed)[1], ops)
    if fix_length and len(body) >= 40:    # reach the counts decoder
        body[4:8] = struct.pack(">I", len(body) - 40)
    decode_or_reject(encoding(bytes(body)))


# A reference decoder of the counts section, in Python's unbounded ints.



def model_counts(body: bytes, counts_len: int):
    """{counts index: count}, or the key words of the expected error."""
    counts, index, total, pos = {}, 0, 0, 0
    while pos < len(body):
        raw = shift = 0
        while True:
            if pos == len(body):
                return "end inside a varint"
            b = body[pos]
            pos += 1
            if shift == 56:
                raw |= b << 56
                break
            raw |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        value = (raw >> 1) ^ -(raw & 1)
        if value < 0:
            if index - value > counts_len:
                return "run past"
            index -= value
            continue
        if index >= counts_len:
            return "run past"
        total += value
        if total >= 2**63:
            return "more than 2\\*\\*63 - 1"
        if value:
            counts[index] = value
        index += 1
    return counts


def value_at_index(lowest: int, sig: int, index: int) -> int:
    """HdrHistogram's layout, from its definition."""
    half_magnitude = (2 * 10**sig - 1).bit_length() - 1
    bucket = (index >> half_magnitude) - 1
    sub = (index & ((1 << half_magnitude) - 1)) + (1 << half_magnitude)
    if bucket < 0:
        bucket, sub = 0, sub - (1 << half_magnitude)
    return sub << (bucket + lowest.bit_length() - 1)


counts_sections = st.lists(st.one_of(st.integers(-40, 40).map(varint),
                                     st.integers(-(2**62), 2**63 - 1).map(varint),
                                     st.binary(max_size=3)), max_size=30).map(b"".join)


@FUZZ
@given(st.sampled_from([(1, 2, 1), (1, 1000, 2), (5, 10**6, 1)]), counts_sections)
def test_fuzz_counts_against_a_reference_decoder(config, counts):
    lowest, highest, sig = config
    expected = model_counts(counts, Histogram(*config).counts_len)
    encoded = encoding(payload(counts, lowest=lowest, highest=highest, sig=sig))
    if isinstance(expected, str):
        with pytest.raises(HistogramDecodeError, match=expected):
            Histogram.decode(encoded)
        return
    h = Histogram.decode(encoded)
    want = Histogram(*config)
    for index, count in expected.items():
        want.record(value_at_index(lowest, sig, index), count)
    assert h == want
    # decoded, the maximum is the top of the highest bucket (as C decodes)
    top = max(expected, default=None)
    want_max = 0 if top is None else want.highest_equivalent_value(value_at_index(lowest, sig, top))
    assert (h.total_count, h.min, h.max) == (want.total_count, want.min, want_max)
    consistent(h)


# --- 6. pickling ---------------------------------------------------------------------

@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("pairs", [[], REFERENCE + [(0, 2), (10**9, 3)]])
def test_pickle_round_trip(protocol, pairs):
    h = histogram(pairs)
    assert h.record_array([HIGHEST * 2, HIGHEST * 3]) == 2
    h.tag, h.start_time, h.end_time = "agent-7", 1_700_000_000.25, 1_700_000_060.5
    back = pickle.loads(pickle.dumps(h, protocol))
    assert back == h and list(back) == list(h)
    assert back.overflow_count == 2 and back.total_count == h.total_count
    assert (back.tag, back.start_time, back.end_time) == (h.tag, h.start_time, h.end_time)
    assert (back.min, back.max) == (h.min, h.max)


def test_a_shifted_java_histogram_decodes_at_its_logical_values():
    # Java: new Histogram(1, 3600000000L, 3); recordValue(1000); shiftValuesLeft(1);
    # encoded with normalizing index offset 1024.  Java writes the counts at
    # their logical indices, so the value read back is 2000, as HdrHistogram_c
    # and HdrHistogram_py read it.
    h = Histogram.decode("HISTFAAAACV4nJNpmSzMwMDAzMDAwgChwYARRFybvITB/gNEYL48EwBhfAVO")
    assert (h.total_count, h.min, h.max) == (1, 2000, 2000)
    assert (h.lowest_discernible_value, h.highest_trackable_value, h.significant_figures) == (
        1, 3600000000, 3)
    # any offset: the counts read the same
    for offset in (0, 3, 1024):
        assert Histogram.decode(encoding(payload(varint(-5) + varint(2), offset=offset))) \
            .value_at_percentile(100) == 5
