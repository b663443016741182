"""The machine's own state beside each scenario (_machine_state): measured
by a process of its own, kept in the run's metadata, and said when a
scenario ran on a machine noisier than in every saved run."""
import os
import signal
import time

from caxton_meter._machine_state import MachineProbe, noisier_than_saved
from caxton_meter._results import run_suite


def test_the_probe_measures_wake_up_lateness_and_steal():
    probe = MachineProbe()
    probe.start()
    time.sleep(0.5)
    state = probe.stop()
    assert 30 <= state["wake_samples"] <= 60                     # 100 a second
    assert 0 <= state["wake_late_p50_ns"] <= state["wake_late_p90_ns"] \
        <= state["wake_late_p99_ns"] <= state["wake_late_max_ns"] < 500_000_000
    assert 0.0 <= state["steal_percent"] <= 100.0


def test_a_stalled_probe_reads_as_late_wake_ups():
    # the probe's process stopped for 150 ms, as a host that deschedules the
    # machine would stop it: the wake-up due meanwhile comes that late
    probe = MachineProbe()
    probe.start()
    time.sleep(0.3)
    os.kill(probe._child.pid, signal.SIGSTOP)
    time.sleep(0.15)
    os.kill(probe._child.pid, signal.SIGCONT)
    time.sleep(0.3)
    state = probe.stop()
    assert state["wake_late_max_ns"] >= 120_000_000
    assert state["wake_late_p50_ns"] < 50_000_000          # the others on time


def test_a_run_keeps_each_scenarios_machine_state():
    run = run_suite(["latency"], quick=True, changes={"latency": {"duration": 0.3}})
    state = run.metadata["machine_state"]["latency"]
    assert state["wake_samples"] > 0 and "steal_percent" in state


def test_noisier_than_every_saved_run_is_said_and_only_then():
    saved = [{"wake_late_p99_ns": v, "steal_percent": s}
             for v, s in ((100_000, 0.5), (150_000, 1.0), (120_000, 0.2))]
    assert noisier_than_saved({"wake_late_p99_ns": 290_000, "steal_percent": 2.9}, saved) is None
    text = noisier_than_saved({"wake_late_p99_ns": 400_000, "steal_percent": 0.5}, saved)
    assert text == ("the machine was noisier than in every saved run: timer wake-up lateness "
                    "p99 400 us (saved runs: 100-150 us)")
    text = noisier_than_saved({"wake_late_p99_ns": 100_000, "steal_percent": 3.5}, saved)
    assert text.endswith("steal time 3.5 % (saved runs: 0.2-1.0 %)")
    assert noisier_than_saved({"wake_late_p99_ns": 9_000_000}, saved[:2]) is None   # too few
    assert noisier_than_saved(None, saved) is None
