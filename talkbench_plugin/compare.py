"""Two runs side by side: per case and metric old -> new with delta, regressions beyond tolerance.

Used by ``talkbench compare RUN_A RUN_B`` and by ``pytest --talkbench-compare RUN``. A run is a
results.json (or its report folder) or a baseline file (see baseline.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .baseline import Baseline, Change, protocol_difference
from .errors import RunFileError, TalkbenchError
from .reports import Table, fmt_value
from .thresholds import Thresholds, Tolerance

ToleranceLookup = Callable[[str, str, str], "Tolerance | None"]  # (pipeline, speaker, metric)

_COLOURS = {"regressed": "31;1", "worse": "33", "better": "32"}  # ANSI: bold red, yellow, green


@dataclass
class Comparison:
    old: Baseline
    new: Baseline
    changes: list[Change]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.status == "regressed"]

    def table(self) -> Table:
        rows = []
        for c in self.changes:
            rows.append([c.case, c.metric, c.status, fmt_value(c.metric, c.old), fmt_value(c.metric, c.new),
                         _delta(c), _percent(c), fmt_value(c.metric, c.bound) if c.tolerance else "–"])
        return Table(f"Compared with {self.old.source}", ["case", "metric", "status", "old", "new", "Δ", "Δ %",
                                                          "bound"], rows)

    def summary(self) -> str:
        counts = {s: sum(c.status == s for c in self.changes) for s in
                  ("regressed", "worse", "better", "same", "new", "gone")}
        verdict = "FAILED" if counts["regressed"] else "passed"
        return f"comparison {verdict}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)

    def text(self, color: bool = False) -> str:
        """The table as plain text; with ``color``, rows coloured by status (ANSI)."""
        lines = self.table().text().splitlines()
        if color:
            for i, change in enumerate(self.changes, start=3):  # title, header and rule come first
                code = _COLOURS.get(change.status)
                if code:
                    lines[i] = f"\x1b[{code}m{lines[i]}\x1b[0m"
        return "\n".join([*lines, self.summary()])

    def markdown(self) -> str:
        """For a pull-request comment: regressions in bold, the summary line last."""
        table = self.table()
        for row in table.rows:
            if row[2] == "regressed":
                row[2] = "**regressed**"
        return f"{table.markdown()}\n{self.summary()}\n"

    def to_json(self) -> dict[str, Any]:
        """For results.json and the reports: the run compared against, the summary, every change."""
        return {"against": self.old.source, "summary": self.summary(),
                "changes": [{"case": c.case, "metric": c.metric, "status": c.status, "old": c.old, "new": c.new,
                             "delta": c.delta, "bound": c.bound if c.tolerance else None,
                             "violation": c.violation(self.old.source)} for c in self.changes]}

    def violations(self) -> list[str]:
        """One message per regression: value, bound, baseline and delta."""
        return [f"{c.case}: {c.metric} = {c.new:.6g}{' ' + c.unit if c.unit else ''} {c.violation(self.old.source)}"
                for c in self.regressions]


def compare_runs(old: Baseline, new: Baseline, tolerance: ToleranceLookup | None = None) -> Comparison:
    """Every (case, metric) of either run, in the new run's order; refuses other datasets or protocols."""
    if old.dataset != new.dataset:
        raise RunFileError(f"{new.source} evaluates dataset {new.dataset!r} but {old.source} is of "
                           f"{old.dataset!r}: only runs of one dataset can be compared")
    changes = []
    for case in [*new.cases, *(c for c in old.cases if c not in new.cases)]:
        info = new.cases.get(case) or old.cases[case]
        metrics = {**old.cases.get(case, {}).get("metrics", {}), **new.cases.get(case, {}).get("metrics", {})}
        for metric in metrics:
            before, after = old.entry(case, metric), new.entry(case, metric)
            if before and after and before["protocol"] != after["protocol"]:
                difference = protocol_difference(old.protocols[before["protocol"]], new.protocols[after["protocol"]])
                raise RunFileError(f"{new.source}: {case} {metric}: the protocol differs from {old.source} "
                                   f"({difference}); compare runs made with the same settings")
            entry = after or before
            found = tolerance(info["pipeline"], info["speaker"], metric) if tolerance else None
            changes.append(Change(case, metric, before and before["value"], after and after["value"],
                                  entry["unit"], entry["higher_is_better"], found))
    return Comparison(old, new, changes)


def parse_tolerances(items: list[str]) -> dict[str, Tolerance]:
    """``--tolerance METRIC=VALUE`` (absolute) or ``METRIC=VALUE%`` (relative to the baseline)."""
    found = {}
    for item in items:
        metric, _, value = item.partition("=")
        relative = value.endswith("%")
        try:
            number = float(value[:-1] if relative else value)
        except ValueError:
            number = math.nan
        if not metric or not 0 <= number < math.inf:
            raise TalkbenchError(f"--tolerance {item}: expected METRIC=NUMBER or METRIC=NUMBER%, "
                                 f"e.g. psnr=0.5 or ssim=1%")
        found[metric] = Tolerance(None, number / 100, f"--tolerance {item}") if relative else \
            Tolerance(number, None, f"--tolerance {item}")
    return found


def tolerance_lookup(thresholds: Thresholds, overrides: dict[str, Tolerance]) -> ToleranceLookup:
    """Per-metric overrides (from the command line) first, then the thresholds file's tolerances."""
    def lookup(pipeline: str, speaker: str, metric: str) -> Tolerance | None:
        return overrides.get(metric) or thresholds.tolerance(pipeline, speaker, metric)

    return lookup


def _delta(c: Change) -> str:
    d = c.delta
    if d is None:
        return "–"
    return fmt_value(c.metric, d) if math.isinf(d) else "+" * (d >= 0) + fmt_value(c.metric, d)


def _percent(c: Change) -> str:
    d = c.delta
    if d is None or not c.old or not math.isfinite(c.old) or not math.isfinite(d):
        return "–"
    return f"{100 * d / abs(c.old):+.2f}%"
