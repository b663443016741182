"""One arrival schedule shared among several load loops, exactly.

Each worker (a process of run_processes, a machine of run_distributed)
runs the whole schedule's stages with a *stripe*: of every P arrivals of
the schedule, it takes those its stripe marks, each at the time the whole
schedule has it due.  The stripes of one split are complementary (every
arrival is taken by exactly one worker), so the workers send, together,
the schedule's arrivals at their times: the rates, the ramps and the
total add up exactly to what was asked, whatever the shares, without the
workers talking during the run (k6 does the same with its execution
segments).  Dividing the rates instead would round each worker's count
on its own and start every worker's first arrival at the same instant.

    stripes([1, 1])      # two equal workers: b"\\x01\\x00", b"\\x00\\x01"
    stripes([1, 2])      # a third and two thirds: b"\\x00\\x01\\x00", b"\\x01\\x00\\x01"
    stripes([0.25, 0.75])

A stripe spreads its worker's arrivals evenly over the period (smooth
weighted round robin, as nginx weighs its upstreams): a worker with two
shares in three takes arrivals 0 and 2 of each three, not 0 and 1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from . import _core
from ._checks import ArgumentError, ArgumentTypeError

__all__ = ["stripes"]

# The longest period a stripe may have: the core's limit.
MAX_PERIOD: int = _core._MAX_STRIPE
# Shares given as floats are read as fractions with at most this denominator.
_DENOMINATOR = 10_000


def _weights(shares: Sequence[float | int | Fraction], what: str) -> list[int]:
    if isinstance(shares, (str, bytes)) or not isinstance(shares, Sequence):
        raise ArgumentTypeError(f"{what}: shares must be a sequence of numbers, one per worker, "
                                f"not {type(shares).__name__}")
    if not shares:
        raise ArgumentError(f"{what}: shares is empty; give one share per worker")
    fractions = []
    for index, share in enumerate(shares):
        if isinstance(share, bool) or not isinstance(share, (int, float, Fraction)):
            raise ArgumentTypeError(f"{what}: share {index} must be a number, not "
                                    f"{type(share).__name__}")
        if not (share > 0 and math.isfinite(share)):
            raise ArgumentError(f"{what}: share {index} must be > 0, got {share!r}")
        fractions.append(Fraction(share).limit_denominator(_DENOMINATOR))
    scale = math.lcm(*(f.denominator for f in fractions))
    ints = [int(f * scale) for f in fractions]
    common = math.gcd(*ints)
    ints = [w // common for w in ints]
    if sum(ints) > MAX_PERIOD:
        raise ArgumentError(f"{what}: the shares {list(shares)!r} need a period of {sum(ints):,} "
                            f"arrivals, beyond {MAX_PERIOD:,}; give simpler ratios")
    return ints


def stripes(shares: Sequence[float | int | Fraction]) -> list[bytes]:
    """One stripe per worker for ``shares`` (numbers > 0 in any unit:
    [1, 1, 2], [0.25, 0.75]; floats are read as fractions of denominator
    at most 10,000): bytes of the period's length, 1 where that worker
    takes the arrival.  Worker i takes shares[i] / sum(shares) of every
    period's arrivals, exactly, spread evenly."""
    weights = _weights(shares, "stripes")
    period = sum(weights)
    out = [bytearray(period) for _ in weights]
    current = [0] * len(weights)
    for step in range(period):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= period
        out[best][step] = 1
    return [bytes(s) for s in out]


def share_of(stripe: bytes | None) -> float:
    """The fraction of the schedule's arrivals a stripe takes (1.0: all)."""
    if stripe is None:
        return 1.0
    return stripe.count(1) / len(stripe)
