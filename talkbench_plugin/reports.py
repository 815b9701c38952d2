"""The seed's two tables (per video, per language) from result records: text, Markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import math
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__, strict_json

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
    flags: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> why the cell fails

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" for _ in self.headers) + "|"]
        lines += ["| " + " | ".join(f"**{c}** ✗" if (i, j) in self.flags else c for j, c in enumerate(row)) + " |"
                  for i, row in enumerate(self.rows)]
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


def per_video(records: Sequence[dict[str, Any]], failures: Sequence[dict[str, Any]] = ()) -> Table:
    """One row per case; the cells of ``failures`` (failed metric tests, see plugin.failure_record) flagged."""
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
    table = Table("Per video", headers, rows)
    row_of = {r["case"]: i for i, r in enumerate(records)}
    for f in failures:
        if f.get("case") in row_of and f.get("metric") in names:
            table.flags[row_of[f["case"]], 3 + names.index(f["metric"])] = failure_line(f)
    return table


def failure_line(f: dict[str, Any]) -> str:
    """A failed metric test in one line: the test, its message, and value / bound / baseline when known."""
    parts = [f"value {fmt_value(f['metric'], f['value'])}" if f.get("value") is not None else "",
             f"bound {f['bound']}" if f.get("bound") else "",
             f"baseline {fmt_value(f['metric'], f['baseline'])}" if f.get("baseline") is not None else ""]
    known = "; ".join(p for p in parts if p)
    return f"{f['test']}: {f['message']}" + (f" [{known}]" if known else "")


def _raw(value: Any) -> str:
    """A number at full precision for the CSV files (Python's shortest exact repr); empty when absent."""
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def per_video_csv(records: Sequence[dict[str, Any]]) -> str:
    """The per-video table as CSV: values at full precision, duplicated and dropped frames apart."""
    names = metric_names(records)
    generated = any(r.get("generation") for r in records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case", "speaker", "lang", "pipeline", *(n.upper() for n in names), "frames", "duplicated",
                     "dropped", "time_s", "fps", "rtf", *(("gen_rtf", "gen_fps") if generated else ()), "error"])
    for r in records:
        a, t, gen = r.get("alignment", {}), r.get("throughput", {}), r.get("generation") or {}
        writer.writerow([r["case"], r["speaker"], r["language"], r["pipeline"],
                         *(_raw(r.get("metrics", {}).get(n, {}).get("value")) for n in names),
                         *(_raw(a.get(k)) for k in ("compared", "duplicated", "dropped")),
                         _raw((r.get("timings") or {}).get("total")), _raw(t.get("frames_per_s")), _raw(t.get("rtf")),
                         *((_raw(gen.get("rtf")), _raw(gen.get("frames_per_s"))) if generated else ()),
                         r.get("error") or "; ".join(f"{n}: {m['error']}" for n, m in r.get("metrics", {}).items()
                                                     if m.get("error"))])
    return out.getvalue()


def per_language_csv(records: Sequence[dict[str, Any]]) -> str:
    """The per-language table as CSV, means (and pooled FID/FVD) at full precision."""
    names = metric_names(records)
    pooled = {n: key for n, key in _POOLED.items() if any(r.get(key) for r in records)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["language"], r["pipeline"]), []).append(r)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["lang", "pipeline", *(h for n in names for h in ((n.upper(), f"{n.upper()} pooled")
                                                                      if n in pooled else (n.upper(),))),
                     "cases_ok", "cases"])
    for (language, pipeline), members in sorted(groups.items()):
        ok = [r for r in members if not r.get("error")]
        cells = []
        for n in names:
            values = [r["metrics"][n]["value"] for r in ok if r["metrics"].get(n, {}).get("value") is not None]
            cells.append(_raw(statistics.fmean(values) if values else None))
            if n in pooled:
                cells.append(_raw(next((r[pooled[n]] for r in ok if r.get(pooled[n])), {}).get("value")))
        writer.writerow([language, pipeline, *cells, len(ok), len(members)])
    return out.getvalue()


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
    files = {
        "results.json": strict_json.dumps({"run": info, "results": list(records)}, indent=1),
        "per_video.csv": per_video_csv(records),
        "per_language.csv": per_language_csv(records),
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

    gate = info.get("gate") or {}
    parts = [f"## talkbench: {info.get('dataset', '')}", ""]
    if gate.get("verdict"):
        items = [f"- ✗ {failure_line(f)}" for f in gate.get("failures", [])]
        items += [f"- ✗ {p}" for p in gate.get("problems", [])]
        items += [f"- ✗ --talkbench-compare: {gate['compare_error']}"] if gate.get("compare_error") else []
        items += [f"- skipped, not run: {gate['weights_skipped']['note']}"] if gate.get("weights_skipped") else []
        parts += [gate_line(gate), "", *items, *([""] if items else [])]
    parts += [per_video(records, gate.get("failures", [])).markdown(), per_language(records).markdown(),
              *(b.markdown() for b in boards(records)), runtime(records).markdown()]
    if gate.get("comparison"):
        table = comparison_table(gate["comparison"])
        table.rows = [[f"**{c}**" if c == "regressed" else c for c in row] for row in table.rows]
        parts += [table.markdown(), gate["comparison"]["summary"], ""]
    problems = errors(records)
    if problems:
        parts += ["### Errors", "", *(f"- {p}" for p in problems), ""]
    warnings = notes(records)
    if warnings:
        parts += ["### Alignment notes", "", *(f"- {w}" for w in warnings), ""]
    return "\n".join(parts)


def gate_line(gate: dict[str, Any]) -> str:
    """``**Gate: passed|failed** (N metric test(s) failed)``, as the step summary shows it."""
    counts = [f"{gate['failed']} metric test(s) failed"] if "failed" in gate else []
    counts += [f"{len(gate['problems'])} problem(s)"] if gate.get("problems") else []
    return f"**Gate: {gate['verdict']}**" + (f" ({', '.join(counts)})" if counts else "")


def comparison_table(data: dict[str, Any]) -> Table:
    """A run compared with a saved one (compare.Comparison.to_json) as a table."""
    rows = [[c["case"], c["metric"], c["status"], fmt_value(c["metric"], c["old"]), fmt_value(c["metric"], c["new"]),
             fmt_value(c["metric"], c["delta"]), fmt_value(c["metric"], c.get("bound"))] for c in data["changes"]]
    return Table(f"Compared with {data['against']}", ["case", "metric", "status", "old", "new", "Δ", "bound"], rows)
