"""The leaderboard: each pipeline's mean over speakers, best value per column marked, calibrations apart.

One board over all speakers and one per language; a column's direction comes from its metric
(``higher_is_better``) and shows as an arrow in the header. Calibration pipelines (reference, static, ...)
are listed in their own block and never ranked: they bracket the scale, they are not contenders.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..manifest import CALIBRATION
from ..reports import fmt_value, metric_names

ARROWS = {True: "↑", False: "↓", None: ""}
CALIBRATION_NAMES = ("reference", "static", "shifted", "degraded")  # calibration.CALIBRATIONS, without av


def is_calibration(record: dict[str, Any]) -> bool:
    """A calibration pipeline's record (also in baselines, which keep no mode: the names are reserved)."""
    return record.get("mode") == CALIBRATION or record["pipeline"] in CALIBRATION_NAMES


@dataclass
class Row:
    pipeline: str
    calibration: bool
    values: dict[str, float | None]
    speakers: int  # speakers with a value (cases without an error)
    cases: int


@dataclass
class Board:
    """One leaderboard: ranked rows, calibration rows, and the best value per metric among the ranked."""

    title: str
    metrics: list[str]
    directions: dict[str, bool | None]
    rows: list[Row]
    calibrations: list[Row]
    best: dict[str, float] = field(default_factory=dict)

    def header(self) -> list[str]:
        return ["pipeline", *(f"{m.upper()} {ARROWS[self.directions[m]]}".rstrip() for m in self.metrics), "n"]

    def cells(self, row: Row, mark: tuple[str, str]) -> list[str]:
        out = [row.pipeline]
        for m in self.metrics:
            text = fmt_value(m, row.values[m])
            best = not row.calibration and row.values[m] is not None and row.values[m] == self.best.get(m)
            out.append(f"{mark[0]}{text}{mark[1]}" if best else text)
        return [*out, f"{row.speakers}/{row.cases}"]

    def text(self, bold: bool = False) -> str:
        mark = ("\x1b[1m", "\x1b[22m") if bold else ("*", "")
        rows = [self.cells(r, mark) for r in self.rows]
        calib = [self.cells(r, mark) for r in self.calibrations]
        visible = [[_strip(c) for c in r] for r in (self.header(), *rows, *calib)]
        widths = [max(len(r[i]) for r in visible) for i in range(len(visible[0]))]

        def line(row: list[str]) -> str:
            return "  ".join(c + " " * (w - len(_strip(c))) if i == 0 else " " * (w - len(_strip(c))) + c
                             for i, (c, w) in enumerate(zip(row, widths)))

        lines = [self.title, line(self.header()), "  ".join("-" * w for w in widths), *map(line, rows)]
        if calib:
            lines += ["  ".join("·" * w for w in widths)] if rows else []
            lines += list(map(line, calib))
        best = "bold" if bold else "*"
        return "\n".join(lines) + f"\n{best}: best of the pipelines in its column; calibrations are not ranked"

    def markdown(self) -> str:
        head = self.header()
        lines = [f"### {self.title}", "", "| " + " | ".join(head) + " |", "|" + "|".join(
            "---" if i == 0 else "---:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(self.cells(r, ("**", "**"))) + " |" for r in self.rows]
        lines += ["| " + " | ".join([f"_{r.pipeline}_ (calibration)", *self.cells(r, ("", ""))[1:]]) + " |"
                  for r in self.calibrations]
        return "\n".join(lines) + "\n\nBold: best of the pipelines in its column; calibrations are not ranked.\n"

    def html(self) -> str:
        def row(r: Row) -> str:
            cells = self.cells(r, ("\0", "\1"))
            tds = "".join(f'<td{" class=l" if i == 0 else ""}>'
                          + html.escape(c).replace("\0", '<b class="best">').replace("\1", "</b>") + "</td>"
                          for i, c in enumerate(cells))
            return f'<tr{" class=calibration" if r.calibration else ""}>{tds}</tr>'

        head = "".join(f'<th{" class=l" if i == 0 else ""}>{html.escape(h)}</th>' for i, h in enumerate(self.header()))
        return (f"<h3>{html.escape(self.title)}</h3><table class=leaderboard><thead><tr>{head}</tr></thead><tbody>"
                + "".join(row(r) for r in self.rows)
                + "".join(row(r) for r in self.calibrations) + "</tbody></table>")


def _strip(text: str) -> str:
    return text.replace("\x1b[1m", "").replace("\x1b[22m", "")


def directions(records: Sequence[dict[str, Any]]) -> dict[str, bool | None]:
    """Each metric's direction, from the first record that carries it."""
    found: dict[str, bool | None] = {}
    for r in records:
        for name, entry in r.get("metrics", {}).items():
            if found.get(name) is None and entry.get("higher_is_better") is not None:
                found[name] = entry["higher_is_better"]
            found.setdefault(name, None)
    return found


def board(records: Sequence[dict[str, Any]], title: str) -> Board:
    """The leaderboard of ``records``: per pipeline, each metric's mean over the speakers that have it."""
    names = metric_names(records)
    ways = directions(records)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["pipeline"], []).append(r)
    rows, calibrations = [], []
    for pipeline, members in groups.items():
        ok = [r for r in members if not r.get("error")]
        values = {}
        for n in names:
            found = [r["metrics"][n]["value"] for r in ok if r["metrics"].get(n, {}).get("value") is not None]
            values[n] = statistics.fmean(found) if found else None
        calibration = any(map(is_calibration, members))
        (calibrations if calibration else rows).append(Row(pipeline, calibration, values, len(ok), len(members)))
    best = {}
    for n in names:
        found = [r.values[n] for r in rows if r.values[n] is not None]
        if found and ways[n] is not None:
            best[n] = max(found) if ways[n] else min(found)
    if names and ways[names[0]] is not None:  # rank by the first metric (PSNR in the usual order)
        first = names[0]
        rows.sort(key=lambda r: (r.values[first] is None, -(r.values[first] or 0) if ways[first] else
                                 (r.values[first] or 0)))
    return Board(title, names, ways, rows, calibrations, best)


def boards(records: Sequence[dict[str, Any]]) -> list[Board]:
    """The board over all speakers, then one per language (when the run has more than one)."""
    languages = list(dict.fromkeys(r["language"] for r in records))
    out = [board(records, "Leaderboard (mean over all speakers)")]
    if len(languages) > 1:
        out += [board([r for r in records if r["language"] == lang], f"Leaderboard: {lang}") for lang in languages]
    return out
