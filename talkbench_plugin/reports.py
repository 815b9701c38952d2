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

METRIC_ORDER = ("psnr", "ssim")
_DIGITS = {"psnr": 3, "ssim": 4}
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


def per_video(records: Sequence[dict[str, Any]]) -> Table:
    names = metric_names(records)
    headers = ["speaker", "lang", "pipeline", *(n.upper() for n in names),
               "frames", "dup/drop", "time s", "fps", "RTF"]
    rows = []
    for r in records:
        if r.get("error"):
            rows.append([r["speaker"], r["language"], r["pipeline"], *("error" for _ in names),
                         "–", "–", "–", "–", "–"])
            continue
        a = r.get("alignment", {})
        t = r.get("throughput", {})
        rows.append([
            r["speaker"], r["language"], r["pipeline"],
            *(fmt_value(n, r["metrics"].get(n, {}).get("value")) for n in names),
            str(a.get("compared", 0)), f"{a.get('duplicated', 0)}/{a.get('dropped', 0)}",
            f"{r['timings']['total']:.2f}", f"{t.get('frames_per_s', 0):.1f}",
            f"{t['rtf']:.3f}" if t.get("rtf") is not None else "–",
        ])
    return Table("Per video", headers, rows)


def per_language(records: Sequence[dict[str, Any]]) -> Table:
    """Mean over speakers of each metric, per (language, pipeline), as the seed's table reports it."""
    names = metric_names(records)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["language"], r["pipeline"]), []).append(r)
    rows = []
    for (language, pipeline), members in sorted(groups.items()):
        ok = [r for r in members if not r.get("error")]
        cells = []
        for n in names:
            values = [r["metrics"][n]["value"] for r in ok if n in r["metrics"]]
            cells.append(fmt_value(n, statistics.fmean(values) if values else None))
        rows.append([language, pipeline, *cells, f"{len(ok)}/{len(members)}"])
    return Table("Per language (mean over speakers)", ["lang", "pipeline", *(n.upper() for n in names), "n"], rows)


def errors(records: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{r['case']}: {r['error']}" for r in records if r.get("error")]


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
    """Write results.json, per_video.csv, per_language.csv and report.md into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    video, language = per_video(records), per_language(records)
    files = {
        "results.json": json.dumps({"run": info, "results": list(records)}, indent=1),
        "per_video.csv": video.csv(),
        "per_language.csv": language.csv(),
        "report.md": markdown(records, info),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def markdown(records: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    parts = [f"## talkbench: {info.get('dataset', '')}", "", per_video(records).markdown(),
             per_language(records).markdown()]
    problems = errors(records)
    if problems:
        parts += ["### Errors", "", *(f"- {p}" for p in problems), ""]
    warnings = [f"{r['case']}: {w}" for r in records for w in r.get("alignment", {}).get("warnings", [])]
    if warnings:
        parts += ["### Alignment notes", "", *(f"- {w}" for w in warnings), ""]
    return "\n".join(parts)
