"""The seed's two tables (per video, per language) from result records: text, Markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__

METRIC_ORDER = ("psnr", "ssim", "lpips", "fid", "fvd", "inception_score", "cpbd", "lse_c", "lse_d", "av_offset")
_POOLED = {"fid": "fid_pooled", "fvd": "fvd_pooled"}  # metric -> the record field of its group's pooled value
_DIGITS = {"psnr": 3, "ssim": 4, "lpips": 4, "cpbd": 4, "av_offset": 0}
_PACKAGES = ("torch", "av", "numpy", "scikit-image", "pyiqa", "syncnet-python", "pytest", "pytest-xdist",
             "pytest-benchmark")


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" for _ in self.headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [self.title, fmt.format(*self.headers), "  ".join("-" * w for w in widths)]
        lines += [fmt.format(*row) for row in self.rows]
        return "\n".join(lines)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.headers)
        writer.writerows(self.rows)
        return out.getvalue()


def metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    names = {m for r in records for m in r.get("metrics", {})}
    return [m for m in METRIC_ORDER if m in names] + sorted(names - set(METRIC_ORDER))


def fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{_DIGITS.get(metric, 3)}f}"


def _cell(metric: str, entry: dict[str, Any]) -> str:
    return "error" if entry.get("error") else fmt_value(metric, entry.get("value"))


def per_video(records: Sequence[dict[str, Any]]) -> Table:
    names = metric_names(records)
    generated = any(r.get("generation") for r in records)  # pipelines that talkbench ran (generate.py)
    headers = ["speaker", "lang", "pipeline", *(n.upper() for n in names),
               "frames", "dup/drop", "time s", "fps", "RTF", *(("gen RTF", "gen fps") if generated else ())]
    rows = []
    for r in records:
        gen = _generation_cells(r.get("generation")) if generated else []
        if r.get("error"):
            rows.append([r["speaker"], r["language"], r["pipeline"], *("error" for _ in names),
                         "–", "–", "–", "–", "–", *gen])
            continue
        a = r.get("alignment", {})
        t = r.get("throughput", {})
        rows.append([
            r["speaker"], r["language"], r["pipeline"],
            *(_cell(n, r["metrics"].get(n, {})) for n in names),
            str(a.get("compared", 0)), f"{a.get('duplicated', 0)}/{a.get('dropped', 0)}",
            f"{r['timings']['total']:.2f}", f"{t.get('frames_per_s', 0):.1f}",
            f"{t['rtf']:.3f}" if t.get("rtf") is not None else "–", *gen,
        ])
    return Table("Per video", headers, rows)


def _generation_cells(gen: dict[str, Any] | None) -> list[str]:
    """Generation RTF (command wall time / output duration) and output frames per wall second."""
    if not gen:
        return ["–", "–"]
    return [f"{gen['rtf']:.3f}" if gen.get("rtf") is not None else "–",
            f"{gen['frames_per_s']:.1f}" if gen.get("frames_per_s") is not None else "–"]


def per_language(records: Sequence[dict[str, Any]]) -> Table:
    """Mean over speakers of each metric, per (language, pipeline), as the seed's table reports it; with
    FID (FVD), also the FID of the group's pooled frames (FVD of its pooled clips: ``fid_pooled`` from
    fid.groups, ``fvd_pooled`` from fvd.groups) beside it."""
    names = metric_names(records)
    pooled = {n: key for n, key in _POOLED.items() if any(r.get(key) for r in records)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["language"], r["pipeline"]), []).append(r)
    rows = []
    for (language, pipeline), members in sorted(groups.items()):
        ok = [r for r in members if not r.get("error")]
        cells = []
        for n in names:
            values = [r["metrics"][n]["value"] for r in ok if r["metrics"].get(n, {}).get("value") is not None]
            cells.append(fmt_value(n, statistics.fmean(values) if values else None))
            if n in pooled:
                group = next((r[pooled[n]] for r in ok if r.get(pooled[n])), {})
                cells.append("error" if group.get("error") else fmt_value(n, group.get("value")))
        rows.append([language, pipeline, *cells, f"{len(ok)}/{len(members)}"])
    headers = [h for n in names for h in ((n.upper(), f"{n.upper()} pooled") if n in pooled else (n.upper(),))]
    return Table("Per language (mean over speakers)", ["lang", "pipeline", *headers, "n"], rows)


def runtime(records: Sequence[dict[str, Any]]) -> Table:
    """Where the run's time went: each stage summed over the cases, and the run's throughput."""
    stages: dict[str, float] = {}
    for r in records:
        for stage, seconds in r.get("timings", {}).items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    total = stages.pop("total", 0.0)
    frames = sum(r.get("alignment", {}).get("compared", 0) for r in records)
    rows = [[stage, f"{seconds:.2f}", f"{100 * seconds / total:.1f}" if total else "–"]
            for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1])]
    rows.append(["total", f"{total:.2f}", "100.0" if total else "–"])
    title = (f"Runtime over {len(records)} cases ({frames} frames compared, "
             f"{frames / total if total else 0:.1f} frames/s)")
    return Table(title, ["stage", "seconds", "%"], rows)


def notes(records: Sequence[dict[str, Any]]) -> list[str]:
    """Each case's warnings, case first: the alignment's (short coverage, frame rates, colour matrices),
    then its metrics' (e.g. an AV offset at the search limit), once per message."""
    found = []
    for r in records:
        metrics = [w for m in r.get("metrics", {}).values() for w in (m.get("details") or {}).get("warnings", [])]
        found += [f"{r['case']}: {w}" for w in dict.fromkeys([*r.get("alignment", {}).get("warnings", []), *metrics])]
    return found


def errors(records: Sequence[dict[str, Any]]) -> list[str]:
    """Each case's problem, or each problem one of its metrics had, once per message."""
    found: list[str] = []
    for r in records:
        if r.get("error"):
            found.append(f"{r['case']}: {r['error']}")
            continue
        problems: dict[str, list[str]] = {}
        for name, entry in r.get("metrics", {}).items():
            if entry.get("error"):
                problems.setdefault(entry["error"], []).append(name)
        found += [f"{r['case']}: {', '.join(names)}: {error}" for error, names in problems.items()]
    return found


def run_info(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions and platform: what a reader needs to reproduce the numbers."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import av

        versions["ffmpeg (PyAV)"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
    except ImportError:
        pass
    return {"talkbench": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "packages": versions, **(extra or {})}


def write_reports(directory: Path, records: Sequence[dict[str, Any]], info: dict[str, Any]) -> list[Path]:
    """Write results.json, per_video.csv, per_language.csv, report.md and report.html into ``directory``."""
    from .html_report import render

    directory.mkdir(parents=True, exist_ok=True)
    video, language = per_video(records), per_language(records)
    files = {
        "results.json": json.dumps({"run": info, "results": list(records)}, indent=1),
        "per_video.csv": video.csv(),
        "per_language.csv": language.csv(),
        "report.md": markdown(records, info),
        "report.html": render(records, info),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def markdown(records: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    from .reporting.leaderboard import boards

    parts = [f"## talkbench: {info.get('dataset', '')}", "", per_video(records).markdown(),
             per_language(records).markdown(), *(b.markdown() for b in boards(records)), runtime(records).markdown()]
    problems = errors(records)
    if problems:
        parts += ["### Errors", "", *(f"- {p}" for p in problems), ""]
    warnings = notes(records)
    if warnings:
        parts += ["### Alignment notes", "", *(f"- {w}" for w in warnings), ""]
    return "\n".join(parts)
