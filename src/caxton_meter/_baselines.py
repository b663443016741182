"""Baselines by name, each a history of runs that is appended to and never
overwritten.

A baseline ``NAME`` is a folder ``<directory>/NAME/`` holding one result
file per saved run (``runs/<UTC time>-<commit>.json``, written atomically,
never rewritten).  Saving appends a run and then removes the oldest beyond
``keep`` (20 by default, like pytest-benchmark's autosave: the history is
bounded, nothing is replaced).  The history is what the regression gate
needs: the run-to-run spread of every metric on this machine.

"The baseline" a run is compared with is the newest saved result of each
scenario (:meth:`BaselineHistory.latest`): a run of a subset of the
scenarios updates those and keeps the others.  A baseline saved by
caxton_meter 0.1 as a single file ``NAME.json`` is read as a history of
one run, and is moved into the folder (not rewritten) on the next save.

Saving is refused (:class:`BaselineRefusedError`, the history intact) for
a run that would make a poor reference: one with no scenario, a scenario
that failed to run, a partial result (a deadline, Ctrl-C), or a run that
was stopped early.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._checks import ArgumentError
from ._core import CaxtonMeterError
from ._results import RunResult, Trials, read_result, write_atomic

__all__ = [
    "BASELINE_DIR",
    "BaselineHistory",
    "BaselineNotFoundError",
    "BaselineRefusedError",
    "BaselineStore",
    "KEEP_RUNS",
    "RUNS_DIR",
    "keep_run",
    "valid_baseline_name",
]

BASELINE_DIR = Path(".caxton_meter") / "baselines"
"""Where baselines are kept, relative to the working directory."""

DEFAULT_KEEP = 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class BaselineNotFoundError(CaxtonMeterError, LookupError):
    """No baseline of that name; the message lists the saved ones."""


class BaselineRefusedError(CaxtonMeterError, ValueError):
    """A run that must not become a baseline (empty, failed, partial,
    interrupted); the message says why.  Nothing was written."""


@dataclass(frozen=True)
class BaselineHistory:
    """The saved runs of one baseline, oldest first."""
    name: str
    runs: tuple[RunResult, ...]

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError(f"baseline {self.name!r} has no run")

    def trials(self, scenario: str) -> list[Trials]:
        """The scenario's trials in every saved run that measured it, oldest first."""
        return [r.scenario(scenario) for r in self.runs if scenario in r.names]

    def run_means(self, scenario: str, metric: str) -> list[float]:
        """The metric's mean over each saved run's trials (runs that did not
        measure it, or measured no finite value, are left out)."""
        out = []
        for t in self.trials(scenario):
            values = t.values(metric) if metric in t.metric_names else ()
            if values:
                out.append(math.fsum(values) / len(values))
        return out

    def latest(self) -> RunResult:
        """The newest saved result of each scenario, with the newest run's
        metadata: what a run is compared with."""
        newest: dict[str, Trials] = {}
        for r in self.runs:
            for t in r.scenarios:
                newest[t.scenario] = t
        meta = dict(self.runs[-1].metadata)
        meta["baseline_runs"] = len(self.runs)
        return RunResult(meta, tuple(newest.values()))


def refusal(run: RunResult) -> str | None:
    """Why ``run`` must not be saved as a baseline, or None."""
    if not run.scenarios:
        return "the run holds no scenario"
    failed = run.metadata.get("failed_scenarios")
    if failed:
        return f"{len(failed)} scenario(s) failed to run ({'; '.join(map(str, failed))})"
    if run.metadata.get("stopped_early"):
        return "the run was stopped early (Ctrl-C)"
    partial = [t.scenario for t in run.scenarios if t.partial]
    if partial:
        return (f"{', '.join(partial)} {'is' if len(partial) == 1 else 'are'} partial "
                "(a deadline or Ctrl-C cut the run short)")
    return None


def valid_baseline_name(name: object) -> str:
    """"" when ``name`` is a valid baseline name, else what is wrong with it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".json"):
        return (f"baseline name {name!r} is not valid: use letters, digits, '.', '_' and "
                "'-', starting with a letter or digit (at most 100)")
    return ""


class BaselineStore:
    """Baselines by name under ``directory`` (by default
    ``.caxton_meter/baselines`` under the working directory), each a
    history of at most ``keep`` runs."""

    def __init__(self, directory: str | os.PathLike[str] = BASELINE_DIR, *,
                 keep: int = DEFAULT_KEEP) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep

    def _check(self, name: str) -> str:
        problem = valid_baseline_name(name)
        if problem:
            raise ValueError(problem)
        return name

    def path(self, name: str) -> Path:
        """The baseline's folder."""
        return self.directory / self._check(name)

    def _legacy(self, name: str) -> Path:
        return self.directory / f"{self._check(name)}.json"

    def run_files(self, name: str) -> list[Path]:
        """The files of the saved runs, oldest first."""
        runs = self.path(name) / "runs"
        files = sorted(runs.glob("*.json")) if runs.is_dir() else []
        legacy = self._legacy(name)
        return ([legacy] if legacy.is_file() else []) + files

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        found = {p.name for p in self.directory.iterdir()
                 if p.is_dir() and _NAME.fullmatch(p.name) and (p / "runs").is_dir()}
        found |= {p.stem for p in self.directory.glob("*.json") if _NAME.fullmatch(p.stem)}
        return sorted(found)

    def exists(self, name: str) -> bool:
        return bool(self.run_files(name))

    def history(self, name: str) -> BaselineHistory:
        """Every saved run of ``name``; BaselineNotFoundError listing the
        saved baselines, ResultFormatError naming a damaged file."""
        files = self.run_files(name)
        if not files:
            saved = self.names()
            raise BaselineNotFoundError(
                f"no baseline {name!r} in {self.directory}; saved baselines: "
                + (", ".join(saved) if saved else "none"))
        return BaselineHistory(name, tuple(read_result(f) for f in files))

    def load(self, name: str) -> RunResult:
        """What a run is compared with: :meth:`BaselineHistory.latest`."""
        return self.history(name).latest()

    def save(self, name: str, run: RunResult) -> Path:
        """Append ``run`` to the history of ``name`` and drop the oldest runs
        beyond ``keep``.  BaselineRefusedError (nothing written) for a run
        that must not become a baseline (see :func:`refusal`)."""
        why = refusal(run)
        if why is not None:
            raise BaselineRefusedError(f"not saved as baseline {name!r}: {why}; the baseline "
                                       "is unchanged")
        runs = self.path(name) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        legacy = self._legacy(name)
        if legacy.is_file():                    # a 0.1 baseline joins the history as it is
            os.replace(legacy, runs / f"00000000T000000.000000Z-{_commit(read_result(legacy))}.json")
        path = _new_file(runs, run)
        write_atomic(path, run.to_json())
        for old in self.run_files(name)[:-self.keep]:
            old.unlink()
        return path

    def add_history(self, name: str, runs: Iterable[RunResult]) -> list[Path]:
        """Save each of ``runs`` in turn (calibration)."""
        return [self.save(name, r) for r in runs]


RUNS_DIR = Path(".caxton_meter") / "runs"
KEEP_RUNS = 100


def keep_run(run: RunResult, directory: str | os.PathLike[str] = RUNS_DIR, *,
             keep: int = KEEP_RUNS) -> Path:
    """Write ``run`` to ``directory`` (created if missing) as
    ``<UTC time>-<commit>.json`` and drop the oldest files there beyond
    ``keep``: every measured run is on disk before anything that could
    fail is done with it (a comparison, reports, a baseline).  An OSError
    writing propagates."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ArgumentError(f"keep must be an int >= 1, got {keep!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = _new_file(folder, run)
    write_atomic(path, run.to_json())
    for old in sorted(folder.glob("*.json"))[:-keep]:
        old.unlink()
    return path


def _commit(run: RunResult) -> str:
    git = run.metadata.get("git") or {}
    commit = str(git.get("commit") or "") if isinstance(git, dict) else ""
    return re.sub(r"[^A-Za-z0-9]", "", commit)[:8] or "nogit"


def _new_file(folder: Path, run: RunResult) -> Path:
    """A file for ``run`` named by the UTC time of saving (microseconds)
    and the run's commit, so that names sort in the order runs were saved;
    never one that exists."""
    when = _dt.datetime.now(_dt.timezone.utc)
    while True:
        path = folder / f"{when:%Y%m%dT%H%M%S.%fZ}-{_commit(run)}.json"
        if not path.exists():
            return path
        when += _dt.timedelta(microseconds=1)


def history_names(runs: Sequence[RunResult]) -> list[str]:
    """Every scenario name in ``runs``, in first-seen order."""
    seen: dict[str, None] = {}
    for r in runs:
        for t in r.scenarios:
            seen.setdefault(t.scenario, None)
    return list(seen)
