"""Runs saved in pytest-benchmark's own JSON schema and storage layout, one entry per (case, metric).

pytest-benchmark disables itself under xdist, so the controller writes the file that
``--benchmark-save``/``--benchmark-autosave``/``--benchmark-json`` ask for, through pytest-benchmark's
own storage and hooks: ``pytest-benchmark list|compare`` then read talkbench runs like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest


def entry(nodeid: str, metric: str, record: dict[str, Any], dataset: str = "") -> dict[str, Any]:
    """One benchmark: the metric's computation time for one case; its value, protocol and case as extra_info
    (strict JSON: an infinite value is null with ``<metric>_nonfinite``, see strict_json), so that
    ``talkbench compare 0001 0002`` compares the values of saved runs."""
    from pytest_benchmark.stats import Stats

    from .strict_json import encode

    stats = Stats()
    value = record["metrics"][metric]
    stats.update(value["seconds"])
    return {
        "group": metric,
        "name": nodeid.rsplit("::", 1)[-1],
        "fullname": nodeid,
        "params": {"talkbench_case": record["case"]},
        "param": record["case"],
        "extra_info": encode({
            metric: value["value"],
            "dataset": dataset,
            "speaker": record["speaker"],
            "pipeline": record["pipeline"],
            "language": record["language"],
            "unit": value["unit"],
            "higher_is_better": value["higher_is_better"],
            "protocol": value["protocol"],
            "frames": record.get("alignment", {}).get("compared"),
            "case_seconds": record["timings"]["total"],
            "rtf": record["throughput"]["rtf"],
        }),
        "options": {},
        "stats": {**stats.as_dict(), "iterations": 1},
    }


def generation_entry(nodeid: str, record: dict[str, Any]) -> dict[str, Any]:
    """One benchmark per generated case, ``generate[<case>]``: the pipeline command's wall time (of the run
    that made the output, when it came from the cache), with its RTF, fps, CPU and memory as extra_info."""
    import shlex

    from pytest_benchmark.stats import Stats

    gen = record["generation"]
    stats = Stats()
    stats.update(gen["wall_s"])
    name = f"generate[{record['case']}]"
    return {
        "group": "generate",
        "name": name,
        "fullname": f"{nodeid.split('::', 1)[0]}::{name}",
        "params": {"talkbench_case": record["case"]},
        "param": record["case"],
        "extra_info": {
            **{k: gen[k] for k in ("rtf", "frames_per_s", "cpu_s", "max_rss_mib", "frames", "duration_s",
                                   "cached", "device")},
            "command": shlex.join(gen["command"]),
            "train_s": gen["train"]["wall_s"] if gen.get("train") else None,
        },
        "options": {},
        "stats": {**stats.as_dict(), "iterations": 1},
    }


def save(config: pytest.Config, benchmarks: list[dict[str, Any]]) -> list[Path]:
    """Write the run where pytest-benchmark's options say; returns the files written."""
    session = getattr(config, "_benchmarksession", None)
    name = session and (session.save or session.autosave)
    if session is None or not benchmarks or not (name or session.json):
        return []
    import pytest_benchmark

    output = {
        "machine_info": session.get_machine_info(),
        "commit_info": config.hook.pytest_benchmark_generate_commit_info(config=config),
        "benchmarks": list({b["fullname"]: b for b in benchmarks}.values()),  # generate[] once per case
        "datetime": datetime.now(UTC).isoformat(),
        "version": pytest_benchmark.__version__,
    }
    written = []
    if session.json:
        session.save_json(output)
        written.append(Path(session.json))
    if name:
        location = Path(session.storage.path)  # absolute; ``location`` is cwd-relative and fails outside it
        before = set(location.rglob("*.json"))
        session.storage.save(output, name)
        written += sorted(set(location.rglob("*.json")) - before)
    return written
