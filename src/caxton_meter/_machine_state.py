"""The machine's own state while a scenario runs, measured beside it.

Two figures that involve none of the code under test:

* **timer wake-up lateness**: a small process of its own (no GIL shared
  with the run) sleeps 10 ms at a time, a hundred times a second, and
  records how late each wake-up comes (HDR-style percentiles: p50, p90,
  p99, max, in ns).  A busy neighbour, a host that deschedules this virtual
  machine or a CPU in a deep idle state all make it later.
* **steal time**: the share of this machine's CPU time that the host gave
  to others (Linux's /proc/stat ``steal``, over the scenario), in %.

caxton_meter keeps them in each run's metadata (``machine_state``, by
scenario), prints them, and a comparison says when a scenario ran on a
machine noisier than in every saved run: a spell of the machine that
lasts longer than a re-run is otherwise indistinguishable from a change
in the code.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["MachineProbe", "noisier_than_saved"]

_INTERVAL_S = 0.010
_CHILD = r"""
import json, select, sys, time
step = float(sys.argv[1])
late = []
clock = time.perf_counter_ns
want = int(step * 1e9)
while True:
    t0 = clock()
    ready, _, _ = select.select([sys.stdin], [], [], step)
    t1 = clock()
    if ready:
        break
    late.append(max(0, t1 - t0 - want))
late.sort()
def at(q):
    return late[min(len(late) - 1, int(q * len(late)))] if late else 0
print(json.dumps({"wake_samples": len(late), "wake_late_p50_ns": at(0.50),
                  "wake_late_p90_ns": at(0.90), "wake_late_p99_ns": at(0.99),
                  "wake_late_max_ns": late[-1] if late else 0}))
"""


def _cpu_times() -> list[int] | None:
    """The first 8 fields of /proc/stat's cpu line (user .. steal), or None
    off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    return [int(x) for x in fields[1:9]]


class MachineProbe:
    """``start()`` before a scenario, ``stop()`` after: the machine's state
    over it as a dict (``wake_late_p50_ns`` .. ``wake_late_max_ns``,
    ``wake_samples``, ``steal_percent``; a figure that could not be
    measured is left out).  Never raises: a probe that fails measures
    nothing."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self._cpu: list[int] | None = None

    def start(self) -> None:
        self._cpu = _cpu_times()
        try:
            self._child = subprocess.Popen([sys.executable, "-c", _CHILD, str(_INTERVAL_S)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._child = None

    def stop(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self._child is not None:
            try:
                out, _ = self._child.communicate("stop\n", timeout=10)
                state.update(json.loads(out))
            except (subprocess.TimeoutExpired, ValueError, OSError):
                self._child.kill()
                self._child.wait()
            self._child = None
        after = _cpu_times()
        if self._cpu is not None and after is not None:
            total = sum(after) - sum(self._cpu)
            if total > 0:
                state["steal_percent"] = round(100.0 * (after[7] - self._cpu[7]) / total, 3)
        return state


def noisier_than_saved(current: dict[str, Any] | None,
                       saved: list[dict[str, Any]]) -> str | None:
    """A sentence when ``current`` (a scenario's machine state) shows a
    machine noisier than every saved run's (wake-up lateness p99 more than
    twice the highest saved, or steal time more than the highest saved
    plus 2 points; at least 3 saved states), else None."""
    if not current or len(saved) < 3:
        return None
    parts = []
    p99 = [s["wake_late_p99_ns"] for s in saved if "wake_late_p99_ns" in s]
    if len(p99) >= 3 and "wake_late_p99_ns" in current \
            and current["wake_late_p99_ns"] > 2 * max(p99):
        parts.append(f"timer wake-up lateness p99 {current['wake_late_p99_ns'] / 1e3:,.0f} us "
                     f"(saved runs: {min(p99) / 1e3:,.0f}-{max(p99) / 1e3:,.0f} us)")
    steal = [s["steal_percent"] for s in saved if "steal_percent" in s]
    if len(steal) >= 3 and "steal_percent" in current \
            and current["steal_percent"] > max(steal) + 2.0:
        parts.append(f"steal time {current['steal_percent']:.1f} % (saved runs: "
                     f"{min(steal):.1f}-{max(steal):.1f} %)")
    if not parts:
        return None
    return "the machine was noisier than in every saved run: " + ", ".join(parts)
