"""pytest-benchmark's saved runs as talkbench runs: ``talkbench compare 0001 0002`` compares the metric
values that talkbench wrote into each benchmark's ``extra_info`` (see benchmark_json.entry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .baseline import Baseline, fingerprint, read_json
from .errors import RunFileError
from .strict_json import decode


def storage_dir(storage: str) -> Path:
    """pytest-benchmark's ``--benchmark-storage`` value (``file://PATH`` or a path) as a folder."""
    return Path(storage.removeprefix("file://"))


def is_benchmark_run(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data


def find_run(name: str, storage: str) -> Path:
    """The saved run ``name`` in the storage: by number (``0001``), name (``0001_base``) or file name."""
    folder = storage_dir(storage)
    found = sorted(p for p in folder.rglob("*.json") if p.stem == name or p.name == name or
                   p.stem.startswith(f"{name}_"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise RunFileError(f"{name}: not a file, and no saved run {name!r} in the pytest-benchmark storage {folder} "
                           f"(pass --storage PATH, as --benchmark-storage was)")
    raise RunFileError(f"{name}: {len(found)} saved runs match in {folder} ({', '.join(p.name for p in found)}); "
                       f"name one file")


def load_benchmark_run(path: Path, data: dict[str, Any]) -> Baseline:
    """The metric values of a pytest-benchmark JSON file that talkbench wrote."""
    cases: dict[str, dict[str, Any]] = {}
    protocols: dict[str, dict[str, Any]] = {}
    datasets = set()
    for bench in data["benchmarks"]:
        metric, info = bench.get("group"), decode(dict(bench.get("extra_info") or {}))
        case = (bench.get("params") or {}).get("talkbench_case")
        if not case or metric not in info or "higher_is_better" not in info:
            continue  # not a talkbench metric entry (e.g. generate[...], or another project's benchmark)
        datasets.add(info.get("dataset") or "")
        speaker, _, pipeline = case.partition("-")  # files before talkbench wrote speaker and pipeline
        entry = cases.setdefault(case, {"speaker": info.get("speaker", speaker),
                                        "pipeline": info.get("pipeline", pipeline),
                                        "language": info.get("language", ""), "metrics": {}})
        key = fingerprint(info.get("protocol") or {})
        protocols[key] = info.get("protocol") or {}
        entry["metrics"][metric] = {"value": float(info[metric]), "unit": info.get("unit", ""),
                                    "higher_is_better": info["higher_is_better"], "protocol": key}
    if not cases:
        raise RunFileError(f"{path}: a pytest-benchmark run without talkbench metric values (extra_info); "
                           f"save runs of talkbench's tests with --benchmark-save NAME")
    if len(datasets) > 1:
        raise RunFileError(f"{path}: holds runs of several datasets ({', '.join(sorted(datasets))})")
    return Baseline(datasets.pop(), cases, protocols, str(path))


def load_any(name: str, storage: str) -> Baseline:
    """A run for ``talkbench compare``: a results.json or its folder, a baseline file, a pytest-benchmark
    JSON file, or the number/name of a run saved in pytest-benchmark's storage."""
    from .baseline import load, results_path

    path = Path(name)
    if not path.exists():
        path = find_run(name, storage)
    data = read_json(results_path(path), "baseline file") if results_path(path).suffix == ".json" else None
    if is_benchmark_run(data):
        return load_benchmark_run(path, data)
    return load(path)
