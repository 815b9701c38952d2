"""The run as one self-contained HTML page: the seed's two tables, per-frame plots per case, and
reference | generated | difference thumbnails at each case's worst frames.

Everything is inline (CSS, SVG plots, PNG thumbnails as data URIs), so the file opens anywhere, offline,
e.g. as a CI artefact. Thumbnails need the videos where the page is written; without them a note says so.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

import av
import numpy as np

from .errors import TalkbenchError
from .reporting.leaderboard import boards
from .reports import (
    Table,
    comparison_table,
    errors,
    failure_line,
    fmt_value,
    gate_line,
    notes,
    per_language,
    per_video,
    runtime,
)

THUMB_HEIGHT = 160
WORST_FRAMES = 2
DIFF_GAIN = 4  # the difference image is |reference - generated| x 4, so small errors show
_W, _H = 600, 170  # plot size in px
_M = (52, 12, 24, 30)  # plot margins: left, right, top, bottom

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1320px;
 padding:0 16px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:0 0 6px}.meta{color:#57606a;font-weight:normal;font-size:13px}
table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f6f8fa}
td.l,th.l{text-align:left}
.case{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:12px 0}
.plots{display:flex;flex-wrap:wrap;gap:8px}.plots svg{border:1px solid #eaeef2;background:#fff}
.thumbs{display:flex;flex-wrap:wrap;gap:18px;margin-top:8px}.shot{margin:0}
.shot .row{display:flex;gap:4px}.shot figure{margin:0;text-align:center;font-size:12px;color:#57606a}
.shot img{display:block;height:160px;image-rendering:auto}.shot figcaption{margin-top:2px}
.gate{display:inline-block;padding:1px 10px;border-radius:10px;color:#fff;font-weight:600}
b.best{color:#1a7f37}tr.calibration td{color:#57606a;background:#f6f8fa}
.passed{background:#1a7f37}.failed{background:#cf222e}.error{color:#cf222e}.note{color:#57606a}
td.fail{background:#ffebe9;color:#cf222e;font-weight:600}td.fail::after{content:" ✗"}
tr.regressed td{background:#ffebe9}.skipped{color:#9a6700}a{color:#0969da}
"""
BOUNDED = {"ssim": (None, 1.0), "psnr": (0.0, None)}  # a metric's possible range: the y axis stays inside it


def render(records: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    """The whole page for a run's records and run info."""
    gate = info.get("gate") or {}
    links = [r["case"] for r in records]
    parts = [_header(info), _gate(gate), "<h2>Per video</h2>",
             _table(per_video(records, gate.get("failures", [])), labels=3, links=links),
             "<h2>Per language (mean over speakers)</h2>", _table(per_language(records), labels=2),
             "<h2>Leaderboard</h2>", *(b.html() for b in boards(records)),
             '<p class="note">Bold: best of the pipelines in its column; calibrations (grey) are not ranked.</p>']
    if gate.get("comparison"):
        table = comparison_table(gate["comparison"])
        cards = set(links)
        parts += [f"<h2>{_e(table.title)}</h2>",
                  _table(table, labels=3, links=[c["case"] if c["case"] in cards else None
                                                 for c in gate["comparison"]["changes"]], status=2),
                  f'<p class="meta">{_e(gate["comparison"]["summary"])}</p>']
    runtime_table = runtime(records)
    parts += [f"<h2>{_e(runtime_table.title)}</h2>", _table(runtime_table, labels=1)]
    problems = errors(records)
    if problems:
        parts.append("<h2>Errors</h2><ul>" + "".join(f'<li class="error">{_e(p)}</li>' for p in problems) + "</ul>")
    warnings = notes(records)
    if warnings:
        parts.append("<h2>Alignment notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in warnings) + "</ul>")
    parts.append("<h2>Cases</h2>")
    parts += [_case(r) for r in records]
    title = _e(f"talkbench: {info.get('dataset', '')}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")


def _e(text: Any) -> str:
    return html.escape(str(text))


def _header(info: dict[str, Any]) -> str:
    gate = (info.get("gate") or {}).get("verdict")
    badge = f' <span class="gate {_e(gate)}">gate {_e(gate)}</span>' if gate else ""
    settings = [f"{k}: {_e(', '.join(v) if isinstance(v, list) else v)}" for k, v in info.items()
                if k in ("metrics", "convention", "shard", "talkbench") and v]
    return f"<h1>talkbench: {_e(info.get('dataset', ''))}{badge}</h1><p class=\"meta\">{' · '.join(settings)}</p>"


def _gate(gate: dict[str, Any]) -> str:
    """The verdict, the failed tests (with value, bound and baseline) and the metrics skipped for want of weights."""
    if not gate.get("verdict"):
        return ""
    items = [f'<li class="error"><a href="#{_anchor(f["case"])}">{_e(failure_line(f))}</a></li>' if f.get("case")
             else f'<li class="error">{_e(failure_line(f))}</li>' for f in gate.get("failures", [])]
    items += [f'<li class="error">{_e(p)}</li>' for p in gate.get("problems", [])]
    if gate.get("compare_error"):
        items.append(f'<li class="error">--talkbench-compare: {_e(gate["compare_error"])}</li>')
    if gate.get("weights_skipped"):
        items.append(f'<li class="skipped">skipped, not run: {_e(gate["weights_skipped"]["note"])}</li>')
    line = gate_line(gate).replace("**", "")
    return f'<p id="gate">{_e(line)}</p>' + (f'<ul class="failures">{"".join(items)}</ul>' if items else "")


def _anchor(case: str) -> str:
    return f"case-{case}"


def _table(table: Table, labels: int, links: Sequence[str | None] | None = None, status: int | None = None) -> str:
    """An HTML table; the first ``labels`` columns are text (left-aligned), the rest numbers. With ``links``
    (a case per row), the first cell links to that case's card; flagged cells are marked as failing."""
    def cells(tag: str, row: list[str], r: int | None = None) -> str:
        out = []
        for i, c in enumerate(row):
            flag = table.flags.get((r, i)) if r is not None else None
            attrs = (" class=l" if i < labels else "") if flag is None else f' class="fail" title="{_e(flag)}"'
            text = _e(c)
            if links is not None and r is not None and i == 0 and links[r]:
                text = f'<a href="#{_e(_anchor(links[r]))}">{text}</a>'
            out.append(f"<{tag}{attrs}>{text}</{tag}>")
        return "".join(out)

    head = cells("th", table.headers)
    rows = "".join(f'<tr{f" class={row[status]}" if status is not None else ""}>{cells("td", row, r)}</tr>'
                   for r, row in enumerate(table.rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _case(r: dict[str, Any]) -> str:
    head = (f'<h3 id="{_e(_anchor(r["case"]))}">{_e(r["case"])} <span class="meta">{_e(r.get("language", ""))} · '
            f'{_e(r.get("mode", ""))}</span></h3>')
    if r.get("error"):
        return f'<section class="case">{head}<p class="error">{_e(r["error"])}</p></section>'
    fps = (r.get("inputs") or {}).get("reference", {}).get("fps") or 0.0
    worst = _worst_frames(r, fps)
    plots, notes, legend = [], [], []
    for name, m in r.get("metrics", {}).items():
        if m.get("value") is None:
            notes.append(f'<p class="error">{_e(name)}: {_e(m.get("error", "not computed"))}</p>')
            continue
        series = m.get("per_frame") or []
        if series:
            start = frame_times(r, 0, fps)[0] if fps else 0.0
            plots.append(_series_plot(name, m, series, fps, start, worst if name == _worst_metric(r) else []))
            if worst and name == _worst_metric(r):
                legend.append(f'<p class="note">Dashed red lines in the {_e(name.upper())} plot: the '
                             f'{len(worst)} frames with the lowest {_e(name.upper())}, shown below (reference | '
                             "generated | difference).</p>")
        details = m.get("details") or {}
        confidence = details.get("frame_confidence")
        if _numbers(confidence) and len(confidence) > 1:
            plots.append(_plot(f"{name}: frame confidence", [list(range(len(confidence)))], [confidence],
                               "video window (frame)", ""))
        offsets, distances = details.get("offsets"), details.get("distances")
        if _numbers(offsets) and _numbers(distances) and len(offsets) == len(distances) > 1:
            best = offsets[int(np.argmin(distances))]
            plots.append(_plot(f"{name}: mean distance by AV offset (min at {best})", [offsets], [distances],
                               "offset (frames)", "distance", marks=[best]))
            if not any("by AV offset" in n for n in legend):
                legend.append(f'<p class="note">Dashed red line in the "mean distance by AV offset" plots: the offset '
                              f"({best} frames) with the least mean audio-visual distance, SyncNet's estimate.</p>")
    return (f'<section class="case">{head}{"".join(notes)}<div class="plots">{"".join(plots)}</div>'
            f'{"".join(legend)}{_thumbnails(r, worst, fps)}</section>')


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _worst_metric(r: dict[str, Any]) -> str | None:
    """The metric whose per-frame series picks the worst frames: PSNR, else SSIM."""
    for name in ("psnr", "ssim"):
        if (r.get("metrics", {}).get(name) or {}).get("per_frame"):
            return name
    return None


def _worst_frames(r: dict[str, Any], fps: float) -> list[int]:
    """Indices (into the per-frame series) of the lowest finite values, a second apart (less in short clips)."""
    name = _worst_metric(r)
    if name is None:
        return []
    series = np.asarray(r["metrics"][name]["per_frame"], dtype=np.float64)
    gap = max(1, min(round(fps), len(series) // (2 * WORST_FRAMES)))
    chosen: list[int] = []
    for i in np.argsort(series, kind="stable"):
        if not math.isfinite(series[i]) or len(chosen) == WORST_FRAMES:
            break
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
    return chosen


def _series_plot(name: str, m: dict[str, Any], series: list[float], fps: float, start: float,
                 marks: list[int]) -> str:
    """The per-frame series against reference time (or frame index without a frame rate)."""
    values = np.asarray(series, dtype=np.float64)
    identical = int(np.isposinf(values).sum())
    unit = f" ({m['unit']})" if m.get("unit") else ""
    title = f"{name.upper()} per frame{unit}"
    if identical == len(values):
        return _empty(title, f"all {len(values)} frames identical to the reference (inf)")
    if np.all(values == values[0]):
        return _empty(title, f"{fmt_value(name, values[0])} in all {len(values)} frames")
    if identical:
        title += f"; {identical} identical frame{'s' * (identical > 1)} (inf) not drawn"
    xs = start + np.arange(len(values)) / fps if fps else np.arange(len(values), dtype=np.float64)
    mark_x = [float(xs[i]) for i in marks]
    return _plot(title, [xs.tolist()], [values.tolist()], "reference time (s)" if fps else "frame", "",
                 marks=mark_x, limits=BOUNDED.get(name, (None, None)))


def _empty(title: str, text: str) -> str:
    return (f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="8" y="14" font-size="12" font-weight="600">{_e(title)}</text>'
            f'<text x="{_W / 2}" y="{_H / 2}" font-size="12" text-anchor="middle" fill="#57606a">{_e(text)}</text>'
            "</svg>")


def nice_ticks(lo: float, hi: float, count: int = 5,
               limits: tuple[float | None, float | None] = (None, None)) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 x 10^k) covering ``lo``..``hi``, never past
    ``limits`` (e.g. SSIM's 1)."""
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [round(k * step, 12) for k in range(first, last + 1)]
    low, high = limits
    ticks = [t for t in ticks if (low is None or t >= low - 1e-12) and (high is None or t <= high + 1e-12)]
    return ticks if len(ticks) >= 2 else [lo, hi]


def _plot(title: str, xs: list[list[float]], ys: list[list[float]], xlabel: str, ylabel: str,
          marks: Sequence[float] = (), limits: tuple[float | None, float | None] = (None, None)) -> str:
    """A line chart as inline SVG; long series are reduced to per-pixel min/max so dips stay visible."""
    left, right, top, bottom = _M
    pw, ph = _W - left - right, _H - top - bottom
    finite = [(x, y) for xx, yy in zip(xs, ys, strict=True) for x, y in zip(xx, yy, strict=True) if math.isfinite(y)]
    if not finite:
        return _empty(title, "no finite values")
    x0, x1 = min(min(xx) for xx in xs), max(max(xx) for xx in xs)
    ticks = nice_ticks(min(p[1] for p in finite), max(p[1] for p in finite), limits=limits)
    y0, y1 = ticks[0], ticks[-1]
    x1 = x1 if x1 > x0 else x0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * ph

    out = [f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" '
           f'font-family="system-ui,sans-serif"><text x="8" y="13" font-size="12" font-weight="600">{_e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d0d7de"/>']
    for y in ticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eaeef2"/>'
                   f'<text class="ytick" x="{left - 4}" y="{sy(y) + 4:.1f}" font-size="10" text-anchor="end">'
                   f"{y:.6g}</text>")
    for k in range(5):
        x = x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{sx(x):.1f}" y="{top + ph + 13}" font-size="10" text-anchor="middle">{x:.3g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{_H - 3}" font-size="10" text-anchor="middle" fill="#57606a">'
               f"{_e(xlabel)}</text>")
    if ylabel:
        out.append(f'<text x="10" y="{top + ph / 2}" font-size="10" fill="#57606a" '
                   f'transform="rotate(-90 10 {top + ph / 2})" text-anchor="middle">{_e(ylabel)}</text>')
    for xx, yy in zip(xs, ys, strict=True):
        for run in _runs(xx, yy, pw):
            points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            out.append(f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="1.2"/>')
    for x in marks:
        out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + ph}" stroke="#cf222e" '
                   f'stroke-dasharray="3 2"/>')
    out.append("</svg>")
    return "".join(out)


def _runs(xs: list[float], ys: list[float], pixels: float) -> list[list[tuple[float, float]]]:
    """Finite stretches of the series; each reduced to min and max per pixel column when long."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if math.isfinite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    step = max(1, int(len(xs) / pixels))
    if step == 1:
        return [r for r in runs if r]
    reduced = []
    for run in runs:
        points = []
        for k in range(0, len(run), step):
            chunk = run[k : k + step]
            lo, hi = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
            points += sorted({lo, hi})
        if points:
            reduced.append(points)
    return reduced


def _thumbnails(r: dict[str, Any], worst: list[int], fps: float) -> str:
    name = _worst_metric(r)
    if name is None:
        return ""
    if not worst:
        return '<p class="note">No worst frames to show: every frame is identical to the reference.</p>'
    inputs = r.get("inputs") or {}
    if not fps or "generated" not in inputs:
        return '<p class="note">Thumbnails need the record\'s inputs (video paths and frame rate).</p>'
    shots = []
    try:
        for i in worst:
            shots.append(_shot(r, i, fps))
    except (TalkbenchError, av.FFmpegError, OSError, ValueError, KeyError) as exc:  # a page, whatever the videos
        return f'<p class="note">Thumbnails unavailable: {_e(exc)}</p>'
    return f'<div class="thumbs">{"".join(shots)}</div>'


def frame_times(r: dict[str, Any], index: int, fps: float) -> tuple[float, float]:
    """Seconds on the reference's and on the generated video's timeline of the ``index``-th compared
    frame: compared frames are consecutive reference frames from the later of the segment's start and
    the generated video's start (``offset``)."""
    offset = r.get("offset") or 0.0
    start = max((r.get("segment") or {}).get("start") or 0.0, offset)
    t_ref = (math.ceil(start * fps - 1e-6) + index) / fps
    return t_ref, t_ref - offset


def _shot(r: dict[str, Any], index: int, fps: float) -> str:
    from .media.still import frame_at, png, rgb, shrink

    t_ref, t_gen = frame_times(r, index, fps)
    ref = frame_at(r["inputs"]["reference"]["path"], t_ref)
    gen = frame_at(r["inputs"]["generated"]["path"], t_gen)
    a = rgb(ref)
    b = rgb(gen, (ref.width, ref.height))
    diff = np.clip(np.abs(a.astype(np.int16) - b).astype(np.int32) * DIFF_GAIN, 0, 255).astype(np.uint8)
    images = [("reference", a), ("generated", b), (f"|difference| ×{DIFF_GAIN}", diff)]
    figures = "".join(
        f'<figure><img alt="{_e(label)}" src="data:image/png;base64,'
        f'{base64.b64encode(png(shrink(img, THUMB_HEIGHT))).decode()}"><figcaption>{_e(label)}</figcaption></figure>'
        for label, img in images)
    values = []
    for name in ("psnr", "ssim"):
        series = (r["metrics"].get(name) or {}).get("per_frame") or []
        if index < len(series):
            values.append(f"{name.upper()} {fmt_value(name, series[index])}")
    caption = f"frame {index} at {t_ref:.2f} s: {', '.join(values)}"
    return f'<div class="shot"><div class="row">{figures}</div><div class="meta">{_e(caption)}</div></div>'
