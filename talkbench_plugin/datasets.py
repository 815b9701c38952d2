"""The dataset a run evaluates: a manifest or the embedded demo, plus the calibration pipelines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cache import atomic_path, file_sha256, lock_for
from .errors import ManifestError
from .manifest import CALIBRATION, Case, Dataset, Pipeline, load_manifest

DEMO_VERSION = "v1"
CALIBRATION_VERSION = "v2"


def demo_manifest(cache: Path) -> Path:
    """The demo dataset's manifest, generated (once, lock-safe) into the cache directory."""
    from .demo import build_demo

    root = cache / "demo" / DEMO_VERSION
    manifest = root / "demo.toml"
    if manifest.is_file():  # written last and atomically: the demo is complete (read-only caches work)
        return manifest
    with lock_for(root):
        if not manifest.is_file():
            build_demo(root)
    return manifest


def resolve_manifest(data: Path | None, manifest: str | None, fixtures: Path) -> Path:
    """Which manifest to load: an explicit file, a shipped name, or DIR/talkbench.toml (an error without one)."""
    if manifest:
        path = Path(manifest)
        if path.suffix != ".toml" and not path.exists():
            path = fixtures / "datasets" / f"{manifest}.toml"
        return path
    if data is not None and (data / "talkbench.toml").is_file():
        return data / "talkbench.toml"
    others = sorted(p.name for p in data.glob("*.toml")) if data is not None else []
    found = f" (it has {', '.join(others)})" if others else ""
    raise ManifestError(f"{data}: no talkbench.toml in this folder{found}: save the dataset's manifest as "
                        f"{data / 'talkbench.toml'}, or name it with --talkbench-manifest FILE (talkbench "
                        f"cases/evaluate: --manifest FILE); a shipped one by name, e.g. --talkbench-manifest microbench")


def load_dataset(
    data: Path | None,
    manifest: str | None,
    cache: Path,
    fixtures: Path,
    *,
    calibrations: Sequence[str] | None = None,
) -> Dataset:
    """Load the run's dataset (with neither data nor manifest, the embedded demo) plus the
    calibration pipelines named in ``calibrations`` (default: all)."""
    if data is None and manifest is None:
        dataset = load_manifest(demo_manifest(cache))
    else:
        if data is not None and not data.is_dir():
            raise ManifestError(f"--talkbench-data {data}: not a directory")
        dataset = load_manifest(resolve_manifest(data, manifest, fixtures), root=data)
    add_calibration(dataset, calibrations)
    return dataset


def add_calibration(dataset: Dataset, kinds: Sequence[str] | None = None) -> None:
    """Add calibration pipelines (outputs derived from each reference on demand)."""
    from .calibration import CALIBRATIONS

    for kind in CALIBRATIONS if kinds is None else kinds:
        if kind not in CALIBRATIONS:
            raise ManifestError(f"unknown calibration pipeline {kind!r}: choose from {', '.join(CALIBRATIONS)}")
        if kind in dataset.pipelines:
            raise ManifestError(f"{dataset.manifest}: pipelines.{kind}: the name is reserved for "
                                f"talkbench's calibration pipeline; rename it")
        dataset.pipelines[kind] = Pipeline(kind, CALIBRATION)


def materialize(case: Case, cache: Path, device: str = "cpu") -> tuple[Case, dict[str, Any] | None]:
    """The case with its generated video in place, and the generation record of a pipeline with a command
    (generate.py: run on ``device`` unless its output is up to date). Calibration outputs are built (once)
    in the cache, keyed by the reference's content."""
    if case.pipeline.command is not None:
        from .generate import generate

        path, generation = generate(case, cache, device)
        return dataclasses.replace(case, generated=path), generation
    if case.pipeline.mode != CALIBRATION:
        return case, None
    if case.pipeline.name == "reference":
        return dataclasses.replace(case, generated=case.speaker.reference), None
    from .calibration import make_calibration

    digest = file_sha256(case.speaker.reference)[:16]
    dest = cache / "calibration" / CALIBRATION_VERSION / digest / f"{case.pipeline.name}.mp4"
    if not _verified(dest):  # a verified entry is used without a lock (read-only caches work)
        with lock_for(dest):
            if not _verified(dest):
                make_calibration(case.pipeline.name, case.speaker.reference, dest)
                with atomic_path(_digest_file(dest)) as tmp:
                    tmp.write_text(file_sha256(dest), encoding="utf-8")
    return dataclasses.replace(case, generated=dest), None


def _digest_file(dest: Path) -> Path:
    return dest.with_name(f"{dest.name}.sha256")


def _verified(dest: Path) -> bool:
    """Whether the cached calibration video is the one talkbench wrote: its content hash matches the one
    recorded beside it. A truncated, replaced or unrecorded file is rebuilt, not reused."""
    digest = _digest_file(dest)
    if not (dest.is_file() and digest.is_file()):
        return False
    return digest.read_text(encoding="utf-8").strip() == file_sha256(dest)
