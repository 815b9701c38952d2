"""Getting started without writing a manifest: ``talkbench init DIR`` and one-pair evaluation.

``init`` reads ``DIR/references/<speaker>.<ext>`` and ``DIR/outputs/<pipeline>/<file>`` (a file belongs to
the speaker whose name is its stem, or its stem less a ``_<pipeline>`` suffix, the seed's naming) and
writes ``DIR/talkbench.toml``; ``pair_dataset`` makes a one-case dataset of a reference and a generated
video.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import ManifestError
from .manifest import Dataset, Pipeline, Speaker, load_manifest

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
MANIFEST = "talkbench.toml"


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def scan(directory: Path) -> tuple[dict[str, Path], dict[str, dict[str, Path]], list[Path]]:
    """The references by speaker, each pipeline's outputs by speaker, and output files that match no speaker."""
    refs_dir = directory / "references"
    if not refs_dir.is_dir():
        raise ManifestError(f"{directory}: no references/ folder; put one reference video per speaker in "
                            f"{refs_dir} (named <speaker>.mp4)")
    references: dict[str, Path] = {}
    for path in _videos(refs_dir):
        if path.stem in references:
            raise ManifestError(f"{path}: a second reference for speaker {path.stem!r} "
                                f"({references[path.stem].name}); keep one per speaker")
        references[path.stem] = path
    if not references:
        raise ManifestError(f"{refs_dir}: no video files ({', '.join(VIDEO_SUFFIXES)}); add one per speaker")
    outputs: dict[str, dict[str, Path]] = {}
    unmatched: list[Path] = []
    out_dir = directory / "outputs"
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()) if out_dir.is_dir() else ():
        for path in _videos(folder):
            speaker = next((s for s in (path.stem, path.stem.removesuffix(f"_{folder.name}")) if s in references),
                           None)
            if speaker is None:
                unmatched.append(path)
            else:
                outputs.setdefault(folder.name, {})[speaker] = path
    return references, outputs, unmatched


def _pattern(pipeline: str, files: dict[str, Path]) -> str:
    """The pipeline's ``outputs`` pattern, one for all its files (else a ManifestError naming them)."""
    patterns = {f"outputs/{pipeline}/" + ("{speaker}" if p.stem == s else "{speaker}_{pipeline}") + p.suffix
                for s, p in files.items()}
    if len(patterns) > 1:
        raise ManifestError(f"outputs/{pipeline}: files are named in {len(patterns)} ways "
                            f"({', '.join(sorted(patterns))}); name them all <speaker>.mp4 or all "
                            f"<speaker>_{pipeline}.mp4")
    return patterns.pop()


def manifest_text(directory: Path, languages: dict[str, str], mode: str = "one-shot") -> str:
    """A manifest for ``directory`` (see ``scan``) with each speaker's language from ``languages``."""
    references, outputs, _ = scan(directory)
    lines = ["# Written by `talkbench init`: check each pipeline's mode (one-shot | dubbing | person-specific)",
             "# and add audio/image/segment where you have them (see the README's manifest section).",
             "", "[dataset]", f'name = "{_ident(directory.resolve().name)}"', ""]
    for speaker, path in references.items():
        lines += [f"[speakers.{speaker}]", f'language = "{languages[speaker]}"',
                  f'reference = "{path.relative_to(directory).as_posix()}"', ""]
    for pipeline, files in outputs.items():
        lines += [f"[pipelines.{pipeline}]", f'mode = "{mode}"', f'outputs = "{_pattern(pipeline, files)}"']
        if set(files) != set(references):
            lines.append("speakers = [" + ", ".join(f'"{s}"' for s in references if s in files) + "]")
        lines.append("")
    return "\n".join(lines)


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_.+-" else "_" for c in name) or "dataset"


def init(directory: Path, language: str | None, ask: Callable[[str], str] | None, *, force: bool = False,
         mode: str = "one-shot") -> tuple[Path, Dataset, list[Path]]:
    """Write ``directory/talkbench.toml``: the manifest path, the dataset it loads as, the unmatched files.

    Each speaker's language is ``language``, or what ``ask`` (a prompt on a terminal) answers for it."""
    target = directory / MANIFEST
    if target.exists() and not force:
        raise ManifestError(f"{target} exists; edit it, or pass --force to write it again")
    references, _, unmatched = scan(directory)
    if language is None and ask is None:
        raise ManifestError("--language: give the speakers' language (e.g. --language en); "
                            "it is asked only on a terminal")
    languages = {}
    for speaker in references:
        answer = language or ask(f"language of {speaker} (e.g. en, zh): ").strip()
        if not answer:
            raise ManifestError(f"no language given for speaker {speaker!r}")
        languages[speaker] = answer
    text = manifest_text(directory, languages, mode)
    dataset = load_manifest_text(target, text)
    return target, dataset, unmatched


def load_manifest_text(target: Path, text: str) -> Dataset:
    """Write ``text`` to ``target`` and load it back (a manifest talkbench refuses is not left behind)."""
    target.write_text(text, encoding="utf-8")
    try:
        return load_manifest(target)
    except ManifestError:
        target.unlink()
        raise


def pair_dataset(reference: Path, generated: Path, language: str = "und", pipeline: str = "generated") -> Dataset:
    """A one-case dataset: ``generated`` scored against ``reference`` (no manifest)."""
    for option, path in (("--reference", reference), ("--generated", generated)):
        if not path.is_file():
            raise ManifestError(f"{option} {path}: file not found")
    reference, generated = reference.resolve(), generated.resolve()
    speaker = Speaker(_ident(reference.stem), language, reference)
    root = Path(os.path.commonpath([reference.parent, generated.parent]))  # outputs stay inside the root
    outputs = str(generated.relative_to(root)).replace("{", "{{").replace("}", "}}")
    return Dataset("pair", root, reference, {speaker.id: speaker},
                   {pipeline: Pipeline(pipeline, "one-shot", outputs)})
