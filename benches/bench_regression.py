"""The regression detector, proved on this machine (Part 4).

Pairs of runs of the task-processing scenario (compute agents, each task a
fixed number of the core's reference work units), each run TRIALS trials,
compared with ``caxton_meter._compare.compare`` exactly as the command
line compares a run with its baseline:

* A/A pairs: the same code twice.  Any REGRESSED or IMPROVED verdict on
  throughput is a false alarm; the target is at most 5 % of pairs.
* A/B pairs: the second run's work units raised by 10 % (an injected 10 %
  slowdown of the work).  A REGRESSED verdict on throughput is a
  detection; the target is at least 95 % of pairs.

Beside it, in the same run and on the same pairs, the guide's fixed rule
(a change beyond 10 % of one run's figure flags it), applied to each
side's first trial.

    python benches/bench_regression.py [--quick]
"""
from __future__ import annotations

from caxton_meter._compare import compare
from caxton_meter._regression import Verdict
from caxton_meter._results import RunResult, collect_metadata, run_suite
from _util import Config, Row, main

UNITS = 20_000          # ~50 us of work per task here: the work dominates the routing
TASKS = 2000            # ~100 ms a trial
TRIALS = 10


def _suite(units: int, meta: dict) -> RunResult:
    return run_suite(["task_processing"], trials=TRIALS, quick=True, metadata=meta,
                     changes={"task_processing": {"units": units, "tasks": TASKS,
                                                  "window": 1000, "sample_resources": False}})


def _verdict(base: RunResult, cur: RunResult) -> tuple[Verdict, Verdict]:
    """(the detector's verdict, the fixed rule's verdict) on throughput."""
    # the configs differ on purpose in the A/B pairs: compare the figures
    ours = next(m for m in compare(base, cur).metrics if m.metric == "throughput")
    b = base.scenario("task_processing").values("throughput")[0]
    c = cur.scenario("task_processing").values("throughput")[0]
    change = c / b - 1
    fixed = (Verdict.REGRESSED if change < -0.10 else Verdict.IMPROVED if change > 0.10
             else Verdict.NO_CHANGE)
    return ours.change.verdict, fixed


def run(cfg: Config) -> list[Row]:
    pairs = 6 if cfg.quick else 24
    meta = collect_metadata()
    aa_ours = aa_fixed = ab_ours = ab_fixed = 0
    changes = []
    for _ in range(pairs):
        # A/A then A/B, interleaved so that a noisy spell hits both kinds
        base = _suite(UNITS, meta)
        ours, fixed = _verdict(base, _suite(UNITS, meta))
        aa_ours += ours in (Verdict.REGRESSED, Verdict.IMPROVED)
        aa_fixed += fixed in (Verdict.REGRESSED, Verdict.IMPROVED)
        base = _suite(UNITS, meta)
        slow = _suite(UNITS * 11 // 10, meta)
        ours, fixed = _verdict(base, slow)
        ab_ours += ours is Verdict.REGRESSED
        ab_fixed += fixed is Verdict.REGRESSED
        tb = base.scenario("task_processing").values("throughput")
        ts = slow.scenario("task_processing").values("throughput")
        changes.append(sum(ts) / len(ts) / (sum(tb) / len(tb)) - 1)
    changes.sort()
    section = (f"16. regression detection, {pairs} A/A and {pairs} A/B pairs of "
               f"{TRIALS} trials (vs the guide's fixed 10 % rule on one trial a side)")
    false_alarms = 100 * aa_ours / pairs
    detected = 100 * ab_ours / pairs
    return [
        Row("A/A pairs flagged (false alarms), %", "%", false_alarms, 100 * aa_fixed / pairs,
            target="<= 5 %", ok=false_alarms <= 5, section=section),
        Row("A/B pairs (work units +10 %) detected as regressed, %", "%", detected,
            100 * ab_fixed / pairs, target=">= 95 %", ok=detected >= 95, section=section),
        Row("  median measured throughput change of the A/B pairs, %", "%",
            100 * changes[len(changes) // 2], section=section),
    ]


if __name__ == "__main__":
    main(run, "caxton_meter regression detector benchmark")
