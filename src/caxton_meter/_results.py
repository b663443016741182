"""Results of a benchmark run: repeated trials of scenarios, the machine
they ran on, a versioned JSON format, and baselines stored by name.

Data flows one way: the scenarios produce :class:`ScenarioResult` objects;
:func:`run_suite` runs each selected scenario ``trials`` times and gathers
them, with the machine's metadata, into a :class:`RunResult`; the
comparison (``_compare``) and the reports read RunResults and never write
them.

The JSON format (``RunResult.to_dict``) is documented field by field in
``docs/result-format.md``.  Non-finite metric values (a latency that was
never recorded is NaN) are written as ``null``: the files are strict JSON.
Files are written atomically: to a temporary file in the same folder,
flushed and fsynced, then renamed over the target, so a crash leaves the
old file or the new one, never half of one.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._core import CaxtonMeterError, Histogram, clock_info
from ._sampling import ResourceProfile
from ._model import (
    Direction,
    Grade,
    Interval,
    Kind,
    Metric,
    MetricSpec,
    ScenarioResult,
    Threshold,
    grade,
)

__all__ = [
    "FORMAT_VERSION",
    "ResultFormatError",
    "RunResult",
    "Trials",
    "collect_metadata",
    "json_safe",
    "read_result",
    "run_suite",
    "same_machine",
    "write_atomic",
]

# Version of the result format (RunResult.to_dict).  History:
#   1: the first format: metadata, and per scenario its config and the
#      ScenarioResult of each trial (metrics, HDR-encoded histograms,
#      intervals, resource profile in the sampler's format 1, notes).
#   2: each metric carries its declaration: "kind", "direction", and for a
#      percentile of a histogram "histogram" and "percentile".  Version 1
#      files are read with the declarations version 1 implied (below).
#   3: a graded metric carries the row of the targets table it was graded by
#      ("threshold": {"metric", "unit", "target", "acceptable", "critical"}),
#      so the mean over the trials is graded by the same row, and a metric
#      may carry its "resolution" (the smallest magnitude it can tell from
#      zero).  Version 2 files have neither: their figures keep their worst
#      trial's grade.
FORMAT_VERSION = 3

_KIND = "caxton_meter.result"


# -- reading version 1 -------------------------------------------------------------------

# What version 1 left implicit, reconstructed exactly as caxton_meter 0.1
# read it: a metric's direction came from its unit, a few names were never
# compared, and a latency percentile compared through the "latency" or
# "round_trip" histogram.  These rules live here only, for old files.
_V1_HIGHER = {"msg/s", "tasks/s"}
_V1_LOWER = {"ns", "s", "bytes", "bytes/s", "percent"}
_V1_NOT_COMPARED = {"intended_rate", "achieved_rate", "interval_storage_bytes", "max_memory",
                    "largest_allocation", "fill_seconds"}
_V1_KINDS = {"msg/s": Kind.THROUGHPUT, "tasks/s": Kind.THROUGHPUT, "bytes": Kind.MEMORY,
             "bytes/s": Kind.MEMORY, "percent": Kind.CPU, "ratio": Kind.RATIO,
             "bool": Kind.FLAG}
_V1_PERCENTILE = re.compile(r"latency_p(\d+)(?:_(\d+))?")
_V1_LATENCY = re.compile(r"latency|round_trip|response|^p\d+_")


def _v1_declaration(name: str, unit: str, histograms: Iterable[str]) -> dict[str, Any]:
    base = name.split("@", 1)[0]
    if base in _V1_NOT_COMPARED:
        direction = Direction.NONE
    elif name == "success_rate" or unit in _V1_HIGHER:
        direction = Direction.HIGHER
    elif unit in _V1_LOWER:
        direction = Direction.LOWER
    else:
        direction = Direction.NONE
    if unit in ("ns", "s"):
        kind = Kind.LATENCY if _V1_LATENCY.search(base) else Kind.DURATION
    else:
        kind = _V1_KINDS.get(unit, Kind.COUNT)
    out: dict[str, Any] = {"kind": kind.value, "direction": direction.value}
    match = _V1_PERCENTILE.fullmatch(name)
    hist = next((h for h in ("latency", "round_trip") if h in histograms), None)
    if match and hist:
        out["histogram"] = hist
        out["percentile"] = float(match.group(1) + ("." + match.group(2) if match.group(2)
                                                    else ""))
    return out


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data.get("scenarios"), list):
        return {**data, "format": 2}        # the reader of version 2 says what is missing
    scenarios = []
    for s in data["scenarios"]:
        if not isinstance(s, dict) or not isinstance(s.get("trials"), list):
            scenarios.append(s)             # the reader of version 2 says what is wrong
            continue
        trials = []
        for t in s["trials"]:
            if isinstance(t, dict) and isinstance(t.get("metrics"), list):
                hists: dict[str, Any] = t["histograms"] if isinstance(t.get("histograms"),
                                                                       dict) else {}
                t = {**t, "metrics": [
                    {**_v1_declaration(m.get("name", ""), m.get("unit", ""), hists), **m}
                    if isinstance(m, dict) else m for m in t["metrics"]]}
            trials.append(t)
        scenarios.append({**s, "trials": trials})
    return {**data, "format": 2, "scenarios": scenarios}


# Readers of older versions: version -> function turning such a document
# into the next version's.
def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "format": 3}        # nothing to add: "threshold" is optional


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1, 2: _from_v2}


class ResultFormatError(CaxtonMeterError, ValueError):
    """A result file (or document) that cannot be read: names the source
    and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class Trials:
    """One scenario run ``len(results)`` times with one config."""
    scenario: str
    config: dict[str, Any]
    results: tuple[ScenarioResult, ...]

    def __post_init__(self) -> None:
        if not self.results:
            raise ValueError(f"Trials of {self.scenario!r}: no results")
        for r in self.results:
            if r.scenario != self.scenario:
                raise ValueError(f"Trials of {self.scenario!r}: a result of {r.scenario!r}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric name, in first-seen order."""
        seen: dict[str, None] = {}
        for r in self.results:
            for m in r.metrics:
                seen.setdefault(m.name, None)
        return tuple(seen)

    def values(self, name: str) -> tuple[float, ...]:
        """The metric's finite values, one per trial that measured it."""
        out = []
        for r in self.results:
            for m in r.metrics:
                if m.name == name and math.isfinite(m.value):
                    out.append(m.value)
        return tuple(out)

    def spec(self, name: str) -> MetricSpec:
        """The metric's declaration (kind, direction, unit, histogram), as
        the first trial that measured it declared it."""
        for r in self.results:
            for m in r.metrics:
                if m.name == name:
                    return m.spec
        raise KeyError(f"no metric {name!r} in {self.scenario!r}; "
                       f"metrics: {', '.join(self.metric_names)}")

    def unit(self, name: str) -> str:
        return self.spec(name).unit

    def grade(self, name: str) -> Grade | None:
        """The grade of the figure a report shows for the metric: its mean
        over the trials, graded by the row of the targets table the trials
        were graded by (None: ungraded).  FAILED when a graded trial did not
        measure it (NaN).  A metric read from a file older than format 3
        (no row kept) has its worst trial's grade."""
        graded = [m for r in self.results for m in r.metrics
                  if m.name == name and (m.grade is not None or m.threshold is not None)]
        if not graded:
            return None
        if any(not math.isfinite(m.value) for m in graded):
            return Grade.FAILED
        row = next((m.threshold for m in graded if m.threshold is not None), None)
        if row is None:
            return self.worst_grade(name)
        if self.indistinct(name) is not None:
            return None
        return grade(row, math.fsum(m.value for m in graded) / len(graded))

    def resolution(self, name: str) -> float | None:
        """The largest resolution the trials declared for the metric (None:
        none declared)."""
        found = [m.resolution for r in self.results for m in r.metrics
                 if m.name == name and m.resolution is not None]
        return max(found) if found else None

    def indistinct(self, name: str) -> str | None:
        """Why the figure shown for the metric (its mean) cannot be told
        from zero, or None when it can: "below resolution" when its
        magnitude is under the measurement's resolution; "noise" when it is
        a memory or CPU figure (a difference of two readings, or a share of
        one) whose trials scatter by more than its own size (standard
        deviation >= |mean|)."""
        values = self.values(name)
        if not values:
            return None
        mean = math.fsum(values) / len(values)
        res = self.resolution(name)
        if res is not None and abs(mean) < res:
            return "below resolution"
        if len(values) > 1 and self.spec(name).kind in (Kind.MEMORY, Kind.CPU):
            import statistics
            if statistics.stdev(values) >= abs(mean):
                return "noise"
        return None

    def worst_grade(self, name: str) -> Grade | None:
        """The worst grade the metric got in any trial (None: ungraded)."""
        grades = self.trial_grades(name)
        return max(grades, key=lambda g: g.rank) if grades else None

    def trial_grades(self, name: str) -> tuple[Grade, ...]:
        """Each trial's grade of the metric, in trial order (ungraded left out)."""
        return tuple(m.grade for r in self.results for m in r.metrics
                     if m.name == name and m.grade is not None)

    @property
    def histogram_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for r in self.results:
            for k in r.histograms:
                seen.setdefault(k, None)
        return tuple(seen)

    def histogram(self, name: str) -> Histogram:
        """The histogram ``name`` of every trial, merged."""
        hs = [r.histogram(name) for r in self.results if name in r.histograms]
        if not hs:
            raise KeyError(f"no histogram {name!r} in {self.scenario!r}; "
                           f"histograms: {', '.join(self.histogram_names)}")
        total = hs[0]
        for h in hs[1:]:
            total.add(h)
        return total

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def partial(self) -> bool:
        return any(r.partial for r in self.results)


@dataclass(frozen=True)
class RunResult:
    """A benchmark run: the machine's metadata and each scenario's trials."""
    metadata: dict[str, Any]
    scenarios: tuple[Trials, ...]

    def __post_init__(self) -> None:
        names = [t.scenario for t in self.scenarios]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"RunResult: scenario {dup[0]!r} appears more than once")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.scenario for t in self.scenarios)

    def scenario(self, name: str) -> Trials:
        for t in self.scenarios:
            if t.scenario == name:
                return t
        raise KeyError(f"no scenario {name!r} in the result; scenarios: {', '.join(self.names)}")

    @property
    def passed(self) -> bool:
        """No graded metric FAILED in any trial."""
        return all(t.passed for t in self.scenarios)

    def graded_at_least(self, worst: Grade) -> tuple[tuple[str, str, Grade], ...]:
        """(scenario, metric, grade) of each shown figure (:meth:`Trials.grade`)
        graded ``worst`` or worse: what ``--fail-on`` fails a run for."""
        return tuple((t.scenario, name, g) for t in self.scenarios for name in t.metric_names
                     if (g := t.grade(name)) is not None and g.rank >= worst.rank)

    # -- the format
    def to_dict(self) -> dict[str, Any]:
        return {"kind": _KIND, "format": FORMAT_VERSION, "metadata": self.metadata,
                "scenarios": [{"scenario": t.scenario, "config": t.config,
                               "trials": [_result_to_dict(r) for r in t.results]}
                              for t in self.scenarios]}

    def to_json(self, *, indent: int | None = 1) -> str:
        return json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False,
                          ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<result>") -> RunResult:
        """The run ``to_dict`` wrote; ResultFormatError naming ``source`` and
        the problem for anything else (another kind of file, a newer format,
        a missing or mistyped field)."""
        if not isinstance(data, dict):
            raise ResultFormatError(source, f"not a caxton_meter result (a JSON "
                                    f"{type(data).__name__}, not an object)")
        if data.get("kind") != _KIND:
            raise ResultFormatError(source, "not a caxton_meter result (no "
                                    f"\"kind\": \"{_KIND}\")")
        version = data.get("format")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ResultFormatError(source, f"format version must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise ResultFormatError(source, f"format version {version} is newer than this "
                                    f"caxton_meter reads ({FORMAT_VERSION}): upgrade caxton_meter")
        while version < FORMAT_VERSION:
            migrate = _MIGRATIONS.get(version)
            if migrate is None:
                raise ResultFormatError(source, f"format version {version} is not supported "
                                        f"(this caxton_meter reads {FORMAT_VERSION})")
            data = migrate(data)
            version = data["format"]
        try:
            metadata = _field(data, "metadata", dict)
            scenarios = []
            for i, s in enumerate(_field(data, "scenarios", list)):
                where = f"scenarios[{i}]"
                if not isinstance(s, dict):
                    raise _Bad(f"{where} must be an object")
                name = _field(s, "scenario", str, where)
                config = _field(s, "config", dict, where)
                trials = tuple(_result_from_dict(t, config, f"{where}.trials[{j}]")
                               for j, t in enumerate(_field(s, "trials", list, where)))
                if not trials:
                    raise _Bad(f"{where}.trials is empty")
                scenarios.append(Trials(name, config, trials))
            return cls(metadata, tuple(scenarios))
        except _Bad as e:
            raise ResultFormatError(source, str(e)) from None
        except ValueError as e:
            raise ResultFormatError(source, str(e)) from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "<result>") -> RunResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ResultFormatError(source, f"not valid JSON ({e})") from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the run as JSON to ``path``, atomically."""
        return write_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        return read_result(path)


def read_result(path: str | os.PathLike[str]) -> RunResult:
    """The run saved at ``path``; ResultFormatError naming the file if it
    cannot be read as one."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultFormatError(str(p), "not a caxton_meter result (not UTF-8 text)") from None
    except OSError as e:
        raise ResultFormatError(str(p), f"cannot be read ({e.strerror or e})") from None
    return RunResult.from_json(text, source=str(p))


class _Bad(Exception):
    pass


def _field(d: Mapping[str, Any], key: str, kind: type, where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if key not in d:
        raise _Bad(f"missing field {name!r}")
    value = d[key]
    if kind is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"{name} must be a number, got {type(value).__name__}")
        return float(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Bad(f"{name} must be an integer, got {type(value).__name__}")
    if not isinstance(value, kind):
        raise _Bad(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _result_to_dict(r: ScenarioResult) -> dict[str, Any]:
    return {
        "scenario": r.scenario,
        "partial": r.partial,
        "interrupted": r.interrupted,
        "metrics": [_metric_to_dict(m) for m in r.metrics],
        "histograms": dict(r.histograms),
        "intervals": [dataclasses.asdict(iv) for iv in r.intervals],
        "resources": r.resources.as_dict() if r.resources is not None else None,
        "notes": list(r.notes),
    }


def _metric_to_dict(m: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "value": m.value, "unit": m.unit,
                           "grade": m.grade.value if m.grade is not None else None,
                           "kind": m.kind.value, "direction": m.direction.value}
    if m.histogram is not None:
        out["histogram"] = m.histogram
    if m.percentile is not None:
        out["percentile"] = m.percentile
    if m.resolution is not None:
        out["resolution"] = m.resolution
    if m.threshold is not None:
        t = m.threshold
        out["threshold"] = {"metric": t.metric, "unit": t.unit, "target": t.target,
                            "acceptable": t.acceptable, "critical": t.critical}
    return out


def _resolution_from(m: Mapping[str, Any], where: str) -> float | None:
    value = m.get("resolution")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise _Bad(f"{where}.resolution must be a number >= 0 or absent, got {value!r}")
    return float(value)


def _threshold_from_dict(d: Any, where: str) -> Threshold | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise _Bad(f"{where}.threshold must be an object or absent")
    try:
        return Threshold(_field(d, "metric", str, where + ".threshold"),
                         _field(d, "unit", str, where + ".threshold"),
                         *(_field(d, k, float, where + ".threshold")
                           for k in ("target", "acceptable", "critical")))
    except ValueError as e:
        raise _Bad(f"{where}.threshold: {e}") from None


def _enum(cls: Any, d: Mapping[str, Any], key: str, where: str) -> Any:
    value = d.get(key)
    try:
        return cls(value)
    except ValueError:
        raise _Bad(f"{where}.{key} must be one of {', '.join(e.value for e in cls)}, "
                   f"got {value!r}") from None


_GRADES = {g.value: g for g in Grade}
_INTERVAL_FIELDS = [(f.name, str if f.name == "latency" else int)
                    for f in dataclasses.fields(Interval)]


def _result_from_dict(d: Any, config: dict[str, Any], where: str) -> ScenarioResult:
    if not isinstance(d, dict):
        raise _Bad(f"{where} must be an object")
    metrics = []
    for i, m in enumerate(_field(d, "metrics", list, where)):
        w = f"{where}.metrics[{i}]"
        if not isinstance(m, dict):
            raise _Bad(f"{w} must be an object")
        g = m.get("grade")
        if g is not None and g not in _GRADES:
            raise _Bad(f"{w}.grade must be one of {', '.join(_GRADES)} or null, got {g!r}")
        histogram = m.get("histogram")
        if histogram is not None and not isinstance(histogram, str):
            raise _Bad(f"{w}.histogram must be a string or absent")
        percentile = m.get("percentile")
        if percentile is not None and (isinstance(percentile, bool)
                                       or not isinstance(percentile, (int, float))):
            raise _Bad(f"{w}.percentile must be a number or absent")
        metrics.append(Metric(_field(m, "name", str, w), _field(m, "value", float, w),
                              _field(m, "unit", str, w), _GRADES[g] if g is not None else None,
                              kind=_enum(Kind, m, "kind", w),
                              direction=_enum(Direction, m, "direction", w),
                              histogram=histogram, percentile=percentile,
                              threshold=_threshold_from_dict(m.get("threshold"), w),
                              resolution=_resolution_from(m, w)))
    histograms = _field(d, "histograms", dict, where)
    for k, v in histograms.items():
        if not isinstance(v, str):
            raise _Bad(f"{where}.histograms[{k!r}] must be an HDR-encoded string")
    intervals = []
    for i, iv in enumerate(_field(d, "intervals", list, where)):
        w = f"{where}.intervals[{i}]"
        if not isinstance(iv, dict):
            raise _Bad(f"{w} must be an object")
        intervals.append(Interval(**{k: _field(iv, k, t, w) for k, t in _INTERVAL_FIELDS}))
    res = d.get("resources")
    try:
        resources = ResourceProfile.from_dict(res) if res is not None else None
    except ValueError as e:
        raise _Bad(f"{where}.resources: {e}") from None
    partial = _field(d, "partial", bool, where)
    interrupted = d.get("interrupted", False)
    if not isinstance(interrupted, bool):
        raise _Bad(f"{where}.interrupted must be a bool")
    notes = _field(d, "notes", list, where)
    if not all(isinstance(n, str) for n in notes):
        raise _Bad(f"{where}.notes must be a list of strings")
    return ScenarioResult(_field(d, "scenario", str, where), config, tuple(metrics), histograms,
                          tuple(intervals), resources, partial, tuple(notes), interrupted)


def json_safe(obj: Any) -> Any:
    """obj with non-finite floats as None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


# -- atomic writes -----------------------------------------------------------------------

def write_atomic(path: str | os.PathLike[str], text: str | bytes) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder
    and a rename: readers see the old file or the new one, never a part.
    The folder is created if missing.  OSError (with the path) on failure;
    the temporary file is removed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        # mkstemp makes the file private (0600): give it the mode a plain
        # open() would, or the replaced file's
        try:
            mode = p.stat().st_mode & 0o777
        except OSError:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


# -- metadata ----------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def _cpu_model() -> str:
    info = _read("/proc/cpuinfo")
    if info:
        for line in info.splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git(cwd: str | None) -> dict[str, Any] | None:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None,
            "branch": git("rev-parse", "--abbrev-ref", "HEAD")}


def _versions() -> dict[str, str | None]:
    from importlib import metadata
    out: dict[str, str | None] = {}
    for name in ("caxton_meter", "numpy", "psutil", "wasmtime", "hdrhistogram",
                 "matplotlib", "prometheus_client"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect_metadata(*, cwd: str | None = None) -> dict[str, Any]:
    """What a result needs to be understood later: the date, the git commit
    (and whether the tree was dirty) of ``cwd``, the host, CPU model and
    count, OS and kernel, Python, package versions, the clock's resolution
    and read cost, and where readable the CPU frequency governor and ASLR."""
    import psutil  # type: ignore[import-untyped, unused-ignore]
    clock = clock_info(20_000)
    uname = platform.uname()
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    aslr = _read("/proc/sys/kernel/randomize_va_space")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": _git(cwd),
        "host": uname.node,
        "cpu": {"model": _cpu_model(), "logical": os.cpu_count(),
                "physical": psutil.cpu_count(logical=False)},
        "memory_bytes": psutil.virtual_memory().total,
        "os": {"system": uname.system, "release": uname.release, "version": uname.version,
               "machine": uname.machine},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation()},
        "packages": _versions(),
        "clock": clock.as_dict(),
        "cpu_governor": governor,
        "aslr": {"0": "off", "1": "conservative", "2": "full"}.get(aslr or "", aslr),
    }


def _machine(meta: Mapping[str, Any]) -> tuple[Any, ...]:
    cpu = meta.get("cpu") or {}
    osys = meta.get("os") or {}
    return (meta.get("host"), cpu.get("model"), cpu.get("logical"), osys.get("system"),
            osys.get("machine"))


def run_date(meta: Mapping[str, Any]) -> _dt.datetime | str | None:
    """When a run was made (its metadata's ``date``), in UTC when the date
    says its zone; the text as it is when it is not a date; None when
    there is none."""
    raw = meta.get("date")
    if not isinstance(raw, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return when.astimezone(_dt.timezone.utc) if when.tzinfo is not None else when


def same_machine(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Whether two runs' metadata describe the same machine, and the
    differences (host, CPU model and count, OS, architecture)."""
    labels = ("host", "CPU model", "CPU count", "OS", "architecture")
    diffs = [f"{label}: {x!r} vs {y!r}" for label, x, y in zip(labels, _machine(a), _machine(b))
             if x != y]
    return not diffs, diffs


# -- baselines ---------------------------------------------------------------------------

# -- running -----------------------------------------------------------------------------

def run_suite(names: Iterable[str], *, trials: int = 1, quick: bool = False,
              changes: Mapping[str, Mapping[str, Any]] | None = None,
              thresholds: Mapping[str, Any] | None = None,
              metadata: dict[str, Any] | None = None,
              on_trial: Callable[[str, int, ScenarioResult], None] | None = None,
              on_interval: Callable[[Any], object] | None = None,
              should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Run each scenario of ``names`` ``trials`` times (its quick profile
    when ``quick``; ``changes[name]`` applied to its config) and gather the
    results with the machine's metadata.  ``on_trial(name, index, result)``
    is called after each trial, ``on_interval`` with each open-loop
    interval as it closes (live progress).  A Ctrl-C stops the suite: the
    trials finished so far are kept, and so is the partial result of a
    scenario that caught it (``interrupted``); a result cut short by its
    config's deadline does not stop the suite.  The machine's own state
    over each scenario (timer wake-up lateness, steal time: _machine) goes
    to the metadata's ``machine_state``."""
    from ._model import resolve_thresholds
    from ._scenarios import run_scenario, scenario_config
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1, got {trials!r}")
    names = list(names)
    changes = changes or {}
    configs = {n: scenario_config(n, quick=quick, **changes.get(n, {})) for n in names}
    limits = resolve_thresholds(thresholds)
    meta = metadata if metadata is not None else collect_metadata()
    meta = {**meta, "trials": trials, "profile": "quick" if quick else "full"}
    done: list[Trials] = []
    stopped = False
    from ._machine_state import MachineProbe
    machine: dict[str, dict[str, Any]] = {}
    for n in names:
        results: list[ScenarioResult] = []
        probe = MachineProbe()
        probe.start()
        try:
            for i in range(trials):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                try:
                    res = run_scenario(configs[n], thresholds=limits, on_interval=on_interval)
                except KeyboardInterrupt:
                    stopped = True
                    break
                results.append(res)
                if on_trial is not None:
                    on_trial(n, i, res)
                if res.interrupted:         # Ctrl-C inside the scenario: stop the suite
                    stopped = True
                    break
        finally:
            state = probe.stop()
        if results:
            done.append(Trials(n, configs[n].as_dict(), tuple(results)))
            if state:
                machine[n] = state
        if stopped:
            meta["stopped_early"] = True
            break
    if machine:
        meta["machine_state"] = machine
    return RunResult(meta, tuple(done))
