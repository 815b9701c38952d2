"""Baseline runs: the file format, reading an earlier run, and direction-aware regressions against it.

A baseline file (JSON) holds the dataset name and, per case and metric, the value, its unit and
direction, and the fingerprint of the protocol that produced it; the protocols themselves are stored
once, by fingerprint, so a refusal can name the setting that changed. ``load`` also reads a
``results.json`` written by ``--talkbench-report`` (or its folder): any earlier run can be the baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import strict_json
from .errors import RunFileError
from .thresholds import Tolerance

FORMAT = "talkbench-baseline"
VERSION = 1
RESULTS = "results.json"


def fingerprint(protocol: dict[str, Any]) -> str:
    """A short, stable hash of a metric's protocol dict."""
    text = json.dumps(protocol, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Change:
    """One (case, metric) of a baseline against a new run; ``old``/``new`` are None when absent."""

    case: str
    metric: str
    old: float | None
    new: float | None
    unit: str
    higher_is_better: bool | None  # None: neither direction is better (e.g. an AV offset)
    tolerance: Tolerance | None = None

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return 0.0 if self.new == self.old else self.new - self.old

    @property
    def bound(self) -> float | None:
        """The worst value the tolerance allows (the baseline itself without a tolerance)."""
        if self.old is None or self.higher_is_better is None:
            return None
        allowance = self.tolerance.allowance(self.old) if self.tolerance and math.isfinite(self.old) else 0.0
        return self.old - allowance if self.higher_is_better else self.old + allowance

    @property
    def status(self) -> str:
        """new | gone | regressed (beyond the tolerance) | worse (within it) | better | same | changed
        (for a metric without a better direction)."""
        if self.old is None or self.new is None:
            return "new" if self.old is None else "gone"
        if self.higher_is_better is None:
            return "same" if self.new == self.old or (math.isnan(self.new) and math.isnan(self.old)) else "changed"
        if math.isnan(self.new) or self._worse(self.new, self.bound):
            return "regressed"
        if self._worse(self.new, self.old):
            return "worse"
        return "better" if self._worse(self.old, self.new) else "same"

    def _worse(self, a: float, b: float) -> bool:
        return a < b if self.higher_is_better else a > b

    def violation(self, source: str) -> str | None:
        """Why the new value breaks its baseline's tolerance, or None."""
        if self.status != "regressed":
            return None
        unit = f" {self.unit}" if self.unit else ""
        side = "below" if self.higher_is_better else "above"
        if self.tolerance is None:
            allowed = "no tolerance set"
        else:
            allowed = f"{'minus' if self.higher_is_better else 'plus'} the tolerance {self.tolerance.describe()} " \
                      f"({self.tolerance.where})"
        return (f"is {side} {self.bound:.6g}{unit}: baseline {self.old:.6g}{unit}, {allowed}; "
                f"Δ {self.delta:+.6g}{unit} (baseline: {source})")


@dataclass
class Baseline:
    """Per case and metric: value, unit, direction and protocol fingerprint, of one dataset."""

    dataset: str
    cases: dict[str, dict[str, Any]]  # case id -> {speaker, pipeline, language, metrics: {name: entry}}
    protocols: dict[str, dict[str, Any]]  # fingerprint -> protocol dict
    source: str = ""  # the file it was read from, or a note such as "this run"
    note: str = ""

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], dataset: str, source: str = "") -> Baseline:
        """The values of result records (those with an error are left out)."""
        cases: dict[str, dict[str, Any]] = {}
        protocols: dict[str, dict[str, Any]] = {}
        for r in records:
            if r.get("error") or not r.get("metrics"):
                continue
            metrics = {}
            for name, m in r["metrics"].items():
                if m.get("value") is None:  # the metric failed for this case (its error is in the record)
                    continue
                key = fingerprint(m.get("protocol") or {})
                protocols[key] = m.get("protocol") or {}
                metrics[name] = {"value": float(m["value"]), "unit": m.get("unit", ""),
                                 "higher_is_better": m["higher_is_better"], "protocol": key}
            if metrics:
                cases[r["case"]] = {"speaker": r["speaker"], "pipeline": r["pipeline"],
                                    "language": r["language"], "metrics": metrics}
        return cls(dataset, cases, protocols, source)

    def to_json(self) -> dict[str, Any]:
        data = {"format": FORMAT, "version": VERSION, "dataset": self.dataset}
        if self.note:
            data["note"] = self.note
        return {**data, "protocols": self.protocols, "cases": self.cases}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(strict_json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path

    def entry(self, case: str, metric: str) -> dict[str, Any] | None:
        return self.cases.get(case, {}).get("metrics", {}).get(metric)

    def records(self) -> list[dict[str, Any]]:
        """Minimal result records (case, speaker, pipeline, language, metric values) for the report tables."""
        return [{"case": case, "speaker": c["speaker"], "pipeline": c["pipeline"], "language": c["language"],
                 "metrics": {m: dict(e) for m, e in c["metrics"].items()}, "error": None}
                for case, c in self.cases.items()]

    def require_dataset(self, name: str) -> None:
        if self.dataset != name:
            raise RunFileError(f"{self.source}: a baseline of dataset {self.dataset!r}, but this run evaluates "
                               f"{name!r}; use a baseline saved from the same dataset")

    def protocol_problem(self, case: str, metric: str, protocol: dict[str, Any]) -> str | None:
        """What differs between this baseline's protocol for (case, metric) and ``protocol``, or None."""
        entry = self.entry(case, metric)
        if entry is None or entry["protocol"] == fingerprint(protocol):
            return None
        return protocol_difference(self.protocols[entry["protocol"]], protocol)

    def violation(self, record: dict[str, Any], metric: str, tolerance: Tolerance | None) -> str | None:
        """Why ``record``'s value of ``metric`` regressed against this baseline, or None (also when the
        baseline has no value for it)."""
        entry = self.entry(record["case"], metric)
        current = record["metrics"][metric]
        if entry is None or current.get("value") is None:
            return None
        difference = self.protocol_problem(record["case"], metric, current.get("protocol") or {})
        if difference:
            return (f"cannot be compared with the baseline {self.source}: the protocol differs ({difference}); "
                    f"save a baseline from a run with these settings (--talkbench-save-baseline FILE)")
        change = Change(record["case"], metric, entry["value"], float(current["value"]), entry["unit"],
                        entry["higher_is_better"], tolerance)
        return change.violation(self.source)


def protocol_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The keys whose values differ, as ``key: old -> new`` (at most three; keys of both sides first)."""
    changed = [k for k in set(old) | set(new) if old.get(k) != new.get(k)]
    keys = sorted(changed, key=lambda k: (k not in old or k not in new, k))
    shown = [f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}" for k in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def read_json(path: Path, what: str) -> Any:
    """A JSON file, or a RunFileError naming it and the problem."""
    if not path.is_file():
        raise RunFileError(f"{path}: {what} not found")
    try:
        return strict_json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: not a valid {what} (corrupt JSON: {exc}); write it again") from None
    except RecursionError:
        raise RunFileError(f"{path}: not a valid {what} (JSON nested too deeply); write it again") from None


def results_path(path: Path) -> Path:
    """``DIR/results.json`` for a report folder, the path itself otherwise."""
    return path / RESULTS if path.is_dir() else path


def load_run(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run info and records of a results.json (or a report folder holding one), checked."""
    path = results_path(path)
    data = read_json(path, "results file")
    if not (isinstance(data, dict) and isinstance(data.get("run"), dict) and isinstance(data.get("results"), list)
            and isinstance(data["run"].get("dataset"), str)):
        raise RunFileError(f"{path}: not a talkbench results.json (expected 'run' with a 'dataset' and a "
                           f"'results' list); pass the file --talkbench-report DIR wrote")
    for i, r in enumerate(data["results"]):
        problem = _record_problem(r)
        if problem:
            raise RunFileError(f"{path}: results[{i}]: {problem}; the file is damaged, write it again")
    return data["run"], data["results"]


def load(path: Path) -> Baseline:
    """A baseline file, a results.json, or a report folder holding one."""
    path = results_path(path)
    data = read_json(path, "baseline file")
    if isinstance(data, dict) and "results" in data:
        info, records = load_run(path)
        return Baseline.from_records(records, info["dataset"], str(path))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunFileError(f"{path}: neither a talkbench baseline (format {FORMAT!r}) nor a results.json")
    if data.get("version") != VERSION:
        raise RunFileError(f"{path}: baseline format version {data.get('version')!r}; this talkbench reads "
                           f"version {VERSION}: save the baseline again with this version")
    try:
        baseline = Baseline(data["dataset"], data["cases"], data["protocols"], str(path), data.get("note", ""))
        problem = _baseline_problem(baseline)
    except (KeyError, TypeError, AttributeError) as exc:
        problem = f"malformed ({type(exc).__name__}: {exc})"
    if problem:
        raise RunFileError(f"{path}: {problem}; save the baseline again (--talkbench-save-baseline FILE)")
    return baseline


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _direction(entry: dict[str, Any]) -> bool:
    return "higher_is_better" in entry and (entry["higher_is_better"] is None
                                            or isinstance(entry["higher_is_better"], bool))


def _record_problem(r: Any) -> str | None:
    if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("case", "speaker", "pipeline",
                                                                              "language")):
        return "not a case record (case, speaker, pipeline, language)"
    for name, m in (r.get("metrics") or {}).items():
        if isinstance(m, dict) and m.get("value") is None and m.get("error"):
            continue
        if not (isinstance(m, dict) and _number(m.get("value")) and _direction(m)):
            return f"metrics.{name}: needs a numeric value and higher_is_better (true, false or null)"
    return None


def _baseline_problem(b: Baseline) -> str | None:
    if not isinstance(b.dataset, str) or not isinstance(b.cases, dict) or not isinstance(b.protocols, dict):
        return "needs dataset (text), protocols and cases (tables)"
    for case, c in b.cases.items():
        for key in ("speaker", "pipeline", "language"):
            if not isinstance(c.get(key), str):
                return f"cases.{case}.{key}: missing"
        for name, e in c["metrics"].items():
            where = f"cases.{case}.metrics.{name}"
            if not (_number(e.get("value")) and _direction(e)):
                return f"{where}: needs a numeric value and higher_is_better (true, false or null)"
            if e.get("protocol") not in b.protocols:
                return f"{where}: protocol {e.get('protocol')!r} is not among the file's protocols"
            e.setdefault("unit", "")
    return None
