"""Join the results.json files of several shards (``--talkbench-shard I/N``) into one run and one verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .baseline import load_run, protocol_difference, results_path
from .errors import RunFileError

# Run-info keys that describe the machine, not the run's settings: shards may differ in them.
_MACHINE = {"python", "platform", "packages", "shard", "gate"}


@dataclass
class Merged:
    info: dict[str, Any]
    records: list[dict[str, Any]]
    problems: list[str]  # why the gate fails: failed shards, missing shards, case errors

    @property
    def verdict(self) -> str:
        return "failed" if self.problems else "passed"


def merge_runs(paths: Sequence[Path]) -> Merged:
    """The shards' records in the dataset's case order, their common run info, and the gate verdict.

    Refuses overlapping cases and shards of different datasets, settings or metric protocols.
    """
    if not paths:
        raise RunFileError("merge: no results given; pass the report folders of the shards")
    runs = [(results_path(p), *load_run(p)) for p in paths]
    first_path, first_info, _ = runs[0]
    owner: dict[str, Path] = {}
    protocols: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    failures: list[dict[str, Any]] = []  # the shards' failed metric tests
    for path, info, shard_records in runs:
        for key in sorted((set(info) | set(first_info)) - _MACHINE):
            if info.get(key) != first_info.get(key):
                raise RunFileError(f"{path}: run setting {key!r} is {info.get(key)!r} but {first_info.get(key)!r} "
                                   f"in {first_path}; merge only shards of one run configuration")
        for r in shard_records:
            if r["case"] in owner:
                raise RunFileError(f"{path}: case {r['case']} is also in {owner[r['case']]}; the shards overlap "
                                   f"(merge each shard once, from runs with distinct --talkbench-shard I/N)")
            owner[r["case"]] = path
            for metric, m in r.get("metrics", {}).items():
                if m.get("value") is None:
                    continue
                seen = protocols.setdefault((r["speaker"], metric), (m.get("protocol") or {}, path))
                if seen[0] != (m.get("protocol") or {}):
                    raise RunFileError(f"{path}: {r['case']} {metric}: protocol differs from the same speaker's in "
                                       f"{seen[1]} ({protocol_difference(seen[0], m.get('protocol') or {})})")
            if r.get("error"):
                problems.append(f"{r['case']}: {r['error']}")
            records.append(r)
        gate = info.get("gate")
        failures += (gate or {}).get("failures", [])
        if gate and gate.get("verdict") != "passed":
            problems.append(f"{path}: shard {info.get('shard', '')} failed its gate "
                            f"({gate.get('failed', '?')} metric test(s) failed)")
    problems += _missing_shards([(p, i) for p, i, _ in runs])
    order = {case: i for i, case in enumerate(first_info.get("cases", []))}
    records.sort(key=lambda r: order.get(r["case"], len(order)))  # stable: unknown cases keep file order
    from .pooled import add_group_pools

    add_group_pools(records)  # a language group may span shards: pool again from the moments files
    info = {k: v for k, v in first_info.items() if k not in ("shard", "gate")}
    info["merged_from"] = [str(p) for p, _, _ in runs]
    info["gate"] = {"verdict": "failed" if problems else "passed", "problems": problems, "failed": len(failures),
                    "failures": failures}
    return Merged(info, records, problems)


def _missing_shards(runs: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Shards of ``I/N`` never given (each shard's run info records its ``shard``)."""
    seen: dict[int, Path] = {}
    counts = set()
    for path, info in runs:
        if not info.get("shard"):
            continue
        index, count = (int(x) for x in info["shard"].split("/"))
        if index in seen:
            raise RunFileError(f"{path}: shard {info['shard']} is also {seen[index]}; give each shard once")
        seen[index] = path
        counts.add(count)
    if len(counts) > 1:
        raise RunFileError(f"shards of different splits ({', '.join(f'/{n}' for n in sorted(counts))}): "
                           f"merge the shards of one run")
    if not counts:
        return []
    total = counts.pop()
    return [f"shard {i}/{total} is missing" for i in range(1, total + 1) if i not in seen]
