"""Trends over saved runs: each metric's mean over speakers per pipeline, run after run, as one HTML page.

Runs come from a pytest-benchmark storage folder (the files ``--benchmark-save``/``--benchmark-autosave``
write: talkbench keeps each metric's value in ``extra_info``) or from a folder of ``results.json`` files
(``--talkbench-report`` folders), in time order. The page is self-contained: inline CSS and SVG.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RunFileError
from ..reports import METRIC_ORDER, fmt_value

COLORS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#d1242f", "#57606a", "#e16f24")
_W, _H, _M = 760, 240, (56, 150, 26, 64)  # plot size and margins (left, right for the legend, top, bottom)


@dataclass
class Run:
    """One saved run: its label, when it ran, and each (pipeline, metric)'s values over speakers."""

    label: str
    when: datetime
    source: Path
    values: dict[tuple[str, str], list[float]]
    directions: dict[str, bool | None]

    def mean(self, pipeline: str, metric: str) -> float | None:
        found = [v for v in self.values.get((pipeline, metric), []) if math.isfinite(v)]
        return statistics.fmean(found) if found else None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path}: not a readable JSON file ({exc}); remove it or fix it") from None


def _split(case: str, pipelines: set[str]) -> tuple[str, str]:
    """(speaker, pipeline) of a case id ``<speaker>-<pipeline>`` (pipelines may hold '-': known ones first)."""
    for pipeline in sorted(pipelines, key=len, reverse=True):
        if case.endswith(f"-{pipeline}"):
            return case[: -len(pipeline) - 1], pipeline
    speaker, _, pipeline = case.rpartition("-")
    return speaker, pipeline


def from_benchmark_json(path: Path, data: dict[str, Any], pipelines: set[str]) -> Run | None:
    """A pytest-benchmark file's talkbench entries (group = metric, value in extra_info), or None."""
    values: dict[tuple[str, str], list[float]] = {}
    directions: dict[str, bool | None] = {}
    for bench in data.get("benchmarks", []):
        metric, extra = bench.get("group"), bench.get("extra_info") or {}
        case = (bench.get("params") or {}).get("talkbench_case")
        if not case or metric not in extra or not isinstance(extra[metric], int | float):
            continue
        pipeline = extra.get("pipeline") or _split(case, pipelines)[1]
        values.setdefault((pipeline, metric), []).append(float(extra[metric]))
        directions.setdefault(metric, extra.get("higher_is_better"))
    if not values:
        return None
    when = datetime.fromisoformat(data["datetime"]) if data.get("datetime") else _mtime(path)
    commit = (data.get("commit_info") or {}).get("id")
    label = path.stem + (f" ({commit[:7]})" if commit else "")
    return Run(label, when if when.tzinfo else when.replace(tzinfo=UTC), path, values, directions)


def from_results_json(path: Path, data: dict[str, Any]) -> Run | None:
    """A talkbench ``results.json``'s per-case metric values, or None."""
    values: dict[tuple[str, str], list[float]] = {}
    directions: dict[str, bool | None] = {}
    for record in data.get("results", []):
        for metric, entry in (record.get("metrics") or {}).items():
            value = entry.get("value")
            if isinstance(value, int | float):
                values.setdefault((record["pipeline"], metric), []).append(float(value))
                directions.setdefault(metric, entry.get("higher_is_better"))
    if not values:
        return None
    label = path.parent.name if path.name == "results.json" else path.stem
    return Run(label, _mtime(path), path, values, directions)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def load_runs(storage: Path) -> list[Run]:
    """Every talkbench run saved under ``storage`` (a folder, searched recursively, or one file), oldest first."""
    if not storage.exists():
        raise RunFileError(f"{storage}: not found; give a pytest-benchmark storage folder (e.g. .benchmarks) "
                           "or a folder of talkbench results.json files")
    files = [storage] if storage.is_file() else sorted(storage.rglob("*.json"))
    loaded = [(path, _read(path)) for path in files]
    known = {b["extra_info"]["pipeline"] for _, d in loaded if isinstance(d, dict)
             for b in d.get("benchmarks", []) if isinstance(b, dict) and (b.get("extra_info") or {}).get("pipeline")}
    runs = []
    for path, data in loaded:
        if isinstance(data, dict) and "benchmarks" in data:
            run = from_benchmark_json(path, data, known)
        elif isinstance(data, dict) and "results" in data:
            run = from_results_json(path, data)
        else:
            run = None
        if run is not None:
            runs.append(run)
    if not runs:
        raise RunFileError(f"{storage}: no talkbench runs found (saved with --benchmark-save/--benchmark-autosave, "
                           "or results.json from --talkbench-report)")
    return sorted(runs, key=lambda r: (r.when, r.label))


def _e(text: Any) -> str:
    return html.escape(str(text))


def _metrics(runs: list[Run]) -> list[str]:
    names = {m for r in runs for _, m in r.values}
    return [m for m in METRIC_ORDER if m in names] + sorted(names - set(METRIC_ORDER))


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    span = hi - lo if hi > lo else (abs(hi) or 1.0)
    raw = span / count
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(s - raw))
    first = math.floor(lo / step) * step
    return [first + k * step for k in range(int(math.ceil((hi - first) / step)) + 1)]


def plot(metric: str, runs: list[Run], pipelines: list[str], direction: bool | None) -> str:
    """One metric over the runs: a line per pipeline, runs on the x axis (oldest left), legend on the right."""
    left, right, top, bottom = _M
    pw, ph = _W - left - right, _H - top - bottom
    series = {p: [r.mean(p, metric) for r in runs] for p in pipelines}
    series = {p: s for p, s in series.items() if any(v is not None for v in s)}
    found = [v for s in series.values() for v in s if v is not None]
    arrow = {True: " (higher is better)", False: " (lower is better)"}.get(direction, "")
    title = f'<text x="8" y="15" font-size="13" font-weight="600">{_e(metric.upper() + arrow)}</text>'
    head = (f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" '
            f'font-family="system-ui,sans-serif" role="img" aria-label="{_e(metric)}">{title}')
    if not found:
        return head + f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no finite values</text></svg>'
    ticks = _ticks(min(found), max(found))
    y0, y1 = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1

    def sx(i: int) -> float:
        return left + (pw / 2 if len(runs) == 1 else i / (len(runs) - 1) * pw)

    def sy(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    out = [head, f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d0d7de"/>']
    for t in ticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eaeef2"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="10" text-anchor="end">{t:.6g}</text>')
    for i, run in enumerate(runs):
        out.append(f'<text font-size="10" text-anchor="end" transform="translate({sx(i):.1f} {top + ph + 12}) '
                   f'rotate(-30)"><title>{_e(run.source)}</title>{_e(run.label[:24])}</text>')
    for k, (pipeline, values) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = [(sx(i), sy(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            out.append(f'<polyline class="series" data-pipeline="{_e(pipeline)}" fill="none" stroke="{color}" '
                       f'stroke-width="1.6" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>')
        for (x, y), v in zip(points, [v for v in values if v is not None]):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_e(pipeline)}: '
                       f'{fmt_value(metric, v)}</title></circle>')
        ly = top + 6 + 16 * k
        out.append(f'<line x1="{left + pw + 12}" x2="{left + pw + 30}" y1="{ly}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="2"/><text x="{left + pw + 34}" y="{ly + 4}" font-size="11">{_e(pipeline)}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(metric: str, runs: list[Run], pipelines: list[str]) -> str:
    head = "".join(f"<th>{_e(p)}</th>" for p in pipelines)
    rows = "".join(f'<tr><td class="l">{_e(r.label)}</td><td class="l">{r.when:%Y-%m-%d %H:%M}</td>'
                   + "".join(f"<td>{fmt_value(metric, r.mean(p, metric))}</td>" for p in pipelines) + "</tr>"
                   for r in runs)
    return f'<table><thead><tr><th class="l">run</th><th class="l">time (UTC)</th>{head}</tr></thead>' \
           f"<tbody>{rows}</tbody></table>"


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#1b1f24}
h1{font-size:22px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums;font-size:13px}
th,td{border:1px solid #d0d7de;padding:2px 8px;text-align:right}th{background:#f6f8fa}.l{text-align:left}
.note{color:#57606a}"""


def render(runs: list[Run], source: Path) -> str:
    """The page: per metric, a plot of each pipeline's mean over speakers across ``runs``, and its numbers."""
    pipelines = list(dict.fromkeys(p for r in runs for p, _ in r.values))
    parts = [f"<h1>talkbench history: {_e(source)}</h1>",
             f'<p class="note">{len(runs)} run(s) from {runs[0].when:%Y-%m-%d} to {runs[-1].when:%Y-%m-%d}; each '
             "point is a pipeline's mean over its speakers (non-finite values, e.g. the reference's PSNR, left "
             "out).</p>"]
    for metric in _metrics(runs):
        direction = next((r.directions[metric] for r in runs if r.directions.get(metric) is not None), None)
        parts += [f'<h2 id="{_e(metric)}">{_e(metric.upper())}</h2>', plot(metric, runs, pipelines, direction),
                  _table(metric, runs, pipelines)]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>talkbench history</title>'
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")


def write_history(storage: Path, out: Path) -> tuple[Path, int]:
    """Write the history page of the runs under ``storage`` to ``out``; the path and the number of runs."""
    runs = load_runs(storage)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs, storage), encoding="utf-8")
    return out, len(runs)
