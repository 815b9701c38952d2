"""Regression bounds per pipeline and metric (optionally per speaker), from TOML: absolute bounds
(``min``/``max``) and tolerances against a baseline run (``tolerance``/``rel_tolerance``)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .tomlfile import read_toml

ANY_PIPELINE = "*"
_BOUND_KEYS = {"min", "max"}
_TOLERANCE_KEYS = {"tolerance", "rel_tolerance"}


@dataclass(frozen=True)
class Bound:
    """``min <= value <= max``; ``where`` names the file and key the bound came from."""

    min: float | None
    max: float | None
    where: str

    def violation(self, value: float) -> str | None:
        """Why ``value`` breaks this bound, or None if it holds."""
        if math.isnan(value):
            return f"is NaN (bound from {self.where})"
        if self.min is not None and value < self.min:
            return f"is below the minimum {self.min:g} ({self.where})"
        if self.max is not None and value > self.max:
            return f"is above the maximum {self.max:g} ({self.where})"
        return None

    def describe(self) -> str:
        parts = [f">= {self.min:g}" if self.min is not None else "", f"<= {self.max:g}" if self.max is not None else ""]
        return " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class Tolerance:
    """How much worse than its baseline a value may get: ``absolute`` (in the metric's unit) or
    ``relative`` (a fraction of the baseline); with both, the larger allowance holds."""

    absolute: float | None
    relative: float | None
    where: str

    def allowance(self, baseline: float) -> float:
        return max(self.absolute or 0.0, (self.relative or 0.0) * abs(baseline))

    def describe(self) -> str:
        parts = [f"{self.absolute:g}" if self.absolute is not None else "",
                 f"{self.relative:.4g}x baseline" if self.relative is not None else ""]
        return " or ".join(p for p in parts if p)


class Thresholds:
    """Bounds looked up most-specific first: pipeline.speakers.<id> > pipeline > "*"."""

    def __init__(self, table: dict[str, Any], path: Path | None = None) -> None:
        self.path = path
        self.table = table
        for pipeline, entries in table.items():
            self._check_entries(pipeline, entries, allow_speakers=True)

    @classmethod
    def load(cls, path: Path | None) -> Thresholds:
        """Read a thresholds file; ``None`` (no file for this dataset) means no bounds."""
        if path is None:
            return cls({})
        return cls(read_toml(path, "thresholds file"), path)

    def bound(self, pipeline: str, speaker: str, metric: str) -> Bound | None:
        found = self._lookup(pipeline, speaker, metric, _BOUND_KEYS)
        return Bound(found[0].get("min"), found[0].get("max"), found[1]) if found else None

    def tolerance(self, pipeline: str, speaker: str, metric: str) -> Tolerance | None:
        """The allowed change against a baseline run, or None (then a value may not get worse at all)."""
        found = self._lookup(pipeline, speaker, metric, _TOLERANCE_KEYS)
        return Tolerance(found[0].get("tolerance"), found[0].get("rel_tolerance"), found[1]) if found else None

    def _lookup(self, pipeline: str, speaker: str, metric: str, keys: set[str]) -> tuple[dict, str] | None:
        """The most specific spec of ``metric`` holding any of ``keys``, and where it came from."""
        entries = self.table.get(pipeline, {})
        candidates = [
            (entries.get("speakers", {}).get(speaker, {}), f"{pipeline}.speakers.{speaker}.{metric}"),
            (entries, f"{pipeline}.{metric}"),
            (self.table.get(ANY_PIPELINE, {}), f'"{ANY_PIPELINE}".{metric}'),
        ]
        for table, key in candidates:
            if keys & set(table.get(metric, {})):
                return table[metric], f"{self.path}: {key}"
        return None

    def _check_entries(self, key: str, entries: Any, *, allow_speakers: bool) -> None:
        if not isinstance(entries, dict):
            raise self._fail(key, "must be a table of metric = { min = .., max = .. }")
        for metric, spec in entries.items():
            where = f"{key}.{metric}"
            if metric == "speakers" and allow_speakers:
                if not isinstance(spec, dict):
                    raise self._fail(where, "must be a table of speaker tables")
                for speaker, sub in spec.items():
                    self._check_entries(f"{where}.{speaker}", sub, allow_speakers=False)
                continue
            if not isinstance(spec, dict) or not spec or set(spec) - _BOUND_KEYS - _TOLERANCE_KEYS:
                raise self._fail(where, "must be a table with min and/or max, or tolerance/rel_tolerance")
            for k, v in spec.items():
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise self._fail(f"{where}.{k}", f"must be a number (got {v!r})")
                if math.isnan(v):
                    raise self._fail(f"{where}.{k}", "is NaN: every comparison with NaN is false, so the bound "
                                                     "could never fail; give a number")
                if k in _TOLERANCE_KEYS and not 0 <= v < math.inf:
                    raise self._fail(f"{where}.{k}", f"must be a finite number >= 0 (got {v})")
            if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
                raise self._fail(where, f"min {spec['min']:g} > max {spec['max']:g}: no value can pass; "
                                        "swap them or fix the typo")

    def metric_keys(self) -> set[str]:
        """Every metric name the file bounds."""
        names = set()
        for entries in self.table.values():
            names |= {m for m in entries if m != "speakers"}
            for sub in entries.get("speakers", {}).values():
                names |= set(sub)
        return names

    def unmatched(self, pipelines: Iterable[str], speakers: Iterable[str], metrics: Iterable[str]) -> list[str]:
        """One line per pipeline, speaker or metric key of the file that names none of the given ones (a
        typo that would leave its bound unchecked), with the close names."""
        known = {"pipeline": set(pipelines), "speaker": set(speakers), "metric": set(metrics)}
        found = []

        def check(kind: str, name: str, key: str) -> None:
            if name not in known[kind]:
                close = difflib.get_close_matches(name, sorted(known[kind]), n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                found.append(f"{self.path}: {key}: matches no {kind} of this run{hint}")

        for pipeline, entries in self.table.items():
            if pipeline != ANY_PIPELINE:
                check("pipeline", pipeline, pipeline)
            for metric, spec in entries.items():
                if metric != "speakers":
                    check("metric", metric, f"{pipeline}.{metric}")
                    continue
                for speaker, sub in spec.items():
                    check("speaker", speaker, f"{pipeline}.speakers.{speaker}")
                    for metric_ in sub:
                        check("metric", metric_, f"{pipeline}.speakers.{speaker}.{metric_}")
        return found

    def _fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.path}: {key}: {problem}")


def typos(thresholds: Thresholds, pipelines: Iterable[str], speakers: Iterable[str],
          run_metrics: Iterable[str]) -> list[str]:
    """``Thresholds.unmatched`` for a run: any built-in metric, a metric of the run or a pyiqa metric is a
    name, as is every calibration pipeline (enabled or not)."""
    from .calibration import CALIBRATIONS
    from .metrics import KNOWN, iqa_mode

    metrics = set(KNOWN) | set(run_metrics)
    metrics |= {m for m in thresholds.metric_keys() - metrics if iqa_mode(m) is not None}
    return thresholds.unmatched({*pipelines, *CALIBRATIONS}, speakers, metrics)
