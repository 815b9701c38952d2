"""Dataset manifests (TOML): speakers, pipelines, and the (speaker, pipeline) cases they make."""

from __future__ import annotations

import math
import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .tomlfile import read_toml

MODES = ("one-shot", "dubbing", "person-specific")
CALIBRATION = "calibration"  # mode of the pipelines talkbench derives from each reference
PLACEHOLDERS = {"speaker", "pipeline", "language"}
# Placeholders of a pipeline's ``command`` and ``train_command`` (see generate.py for what each holds).
COMMAND_PLACEHOLDERS = PLACEHOLDERS | {"reference", "audio", "image", "output", "workdir", "train_dir"}
TRAIN_PLACEHOLDERS = PLACEHOLDERS | {"reference", "audio", "image", "workdir", "train_start", "train_end"}
_ID = re.compile(r"^[A-Za-z0-9_.+-]+$")
_SPEAKER_KEYS = {"language", "reference", "audio", "image", "segment"}
_PIPELINE_KEYS = {"mode", "outputs", "speakers", "train", "evaluate", "command", "cwd", "env", "timeout",
                  "output_glob", "train_command", "train_timeout", "resources", "min_coverage"}
# A case fails when the generated video shows fewer than this fraction of the evaluated reference frames
# (``pipelines.<name>.min_coverage`` overrides it per pipeline; 0 turns the rule off).
MIN_COVERAGE = 0.5
_SEGMENT_KEYS = {"start", "end"}


@dataclass(frozen=True)
class Segment:
    """A time range in seconds on the reference timeline; ``end=None`` means to the end."""

    start: float = 0.0
    end: float | None = None

    def contains(self, t: float) -> bool:
        return t >= self.start - 1e-9 and (self.end is None or t < self.end - 1e-9)

    def to_dict(self) -> dict[str, float | None]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class Speaker:
    id: str
    language: str
    reference: Path
    audio: Path | None = None
    image: Path | None = None
    segment: Segment = Segment()


@dataclass(frozen=True)
class Command:
    """A command line that talkbench runs: split as a POSIX shell would (``shlex``), placeholders filled
    in per argument, run without a shell in ``cwd`` with ``env`` added to the environment."""

    template: str
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # seconds
    output_glob: str | None = None  # where the output is found under {workdir}, when not at {output}

    def fields(self) -> set[str]:
        """The placeholders the template uses."""
        return {f for arg in shlex.split(self.template) for _, f, _, _ in string.Formatter().parse(arg) if f}


@dataclass(frozen=True)
class Pipeline:
    """How a pipeline's outputs are found or made. ``calibration`` pipelines are derived by talkbench;
    a pipeline with a ``command`` is run by talkbench (generate.py) where its output is missing or stale."""

    name: str
    mode: str
    outputs: str | None = None
    speakers: tuple[str, ...] | None = None
    train: Segment | None = None
    evaluate: Segment | None = None
    command: Command | None = None
    train_command: Command | None = None  # person-specific: run once per speaker before ``command``
    resources: tuple[tuple[str, float], ...] = ()  # what one case asks of a Ray cluster (execution/)
    min_coverage: float = MIN_COVERAGE  # fraction of the evaluated reference frames the output must show


@dataclass(frozen=True)
class Case:
    """One (speaker, pipeline) pair: the generated video and where it sits on the reference timeline."""

    speaker: Speaker
    pipeline: Pipeline
    generated: Path | None  # None: derived (calibration) or generated (command) on demand, see datasets.py
    segment: Segment  # evaluated range on the reference timeline
    offset: float = 0.0  # reference time shown by the generated video's first frame

    @property
    def id(self) -> str:
        return f"{self.speaker.id}-{self.pipeline.name}"


@dataclass
class Dataset:
    name: str
    root: Path
    manifest: Path
    speakers: dict[str, Speaker]
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    description: str = ""

    def cases(self) -> list[Case]:
        """All cases, speaker-major in manifest order; pipelines only for the speakers they name.

        Raises ManifestError for two cases with one id, and for an output path that leaves the root.
        """
        cases = [
            self._case(speaker, pipeline)
            for speaker in self.speakers.values()
            for pipeline in self.pipelines.values()
            if pipeline.speakers is None or speaker.id in pipeline.speakers
        ]
        _refuse_colliding_ids(self.manifest, cases)
        return cases

    def _case(self, speaker: Speaker, pipeline: Pipeline) -> Case:
        rel = pipeline.outputs and _expand_output(self.manifest, self.root, pipeline, speaker)
        segment = speaker.segment
        offset = 0.0
        if pipeline.evaluate is not None:
            segment = _intersect(segment, pipeline.evaluate)
            offset = pipeline.evaluate.start
        return Case(speaker, pipeline, self.root / rel if rel else None, segment, offset)


def _expand_output(manifest: Path, root: Path, pipeline: Pipeline, speaker: Speaker) -> str:
    """A pipeline's outputs pattern for one speaker; the path it names must stay inside ``root``
    (a speaker id or language of ``..`` or with a slash would lead elsewhere)."""
    rel = pipeline.outputs.format(speaker=speaker.id, pipeline=pipeline.name, language=speaker.language)
    full = (root / rel).resolve()
    if Path(rel).is_absolute() or not full.is_relative_to(root.resolve()):
        raise ManifestError(f"{manifest}: pipelines.{pipeline.name}.outputs: {rel!r} (for speaker {speaker.id!r}) "
                            f"escapes the dataset root {root}; use plain speaker ids and languages")
    return rel


def _refuse_colliding_ids(manifest: Path, cases: list[Case]) -> None:
    """Case ids are ``<speaker>-<pipeline>``: speaker ``a`` + pipeline ``x-P`` and speaker ``a-x`` +
    pipeline ``P`` would share one record, so such a pair is refused."""
    seen: dict[str, Case] = {}
    for case in cases:
        other = seen.setdefault(case.id, case)
        if other is not case:
            raise ManifestError(f"{manifest}: case id {case.id!r} is both speaker {other.speaker.id!r} x pipeline "
                                f"{other.pipeline.name!r} and speaker {case.speaker.id!r} x pipeline "
                                f"{case.pipeline.name!r}; rename one so that their ids differ")


def _intersect(a: Segment, b: Segment) -> Segment:
    ends = [e for e in (a.end, b.end) if e is not None]
    return Segment(max(a.start, b.start), min(ends) if ends else None)


def load_manifest(path: str | Path, root: str | Path | None = None) -> Dataset:
    """Load and validate a manifest; media paths are relative to ``root`` (default: its folder).

    Raises ManifestError naming the file and the key for unknown keys, wrong types, missing files,
    unknown speakers, bad placeholders and paths that escape the dataset root.
    """
    path = Path(path)
    data = read_toml(path, "manifest")
    return _Loader(path, Path(root) if root is not None else path.parent).dataset(data)


class _Loader:
    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root.resolve()

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.path}: {key}: {problem}")

    def dataset(self, data: dict[str, Any]) -> Dataset:
        self.unknown("", data, {"dataset", "speakers", "pipelines"})
        meta = self.table("dataset", data.get("dataset", {}))
        self.unknown("dataset", meta, {"name", "description"})
        name = self.string("dataset.name", meta.get("name", self.path.stem))
        if not self.root.is_dir():
            raise self.fail("dataset root", f"{self.root} is not a directory")
        speakers_t = self.table("speakers", data.get("speakers"))
        if not speakers_t:
            raise self.fail("speakers", "the manifest names no speakers")
        speakers = {sid: self.speaker(sid, t) for sid, t in speakers_t.items()}
        pipelines = {
            name_: self.pipeline(name_, t, speakers)
            for name_, t in self.table("pipelines", data.get("pipelines", {})).items()
        }
        description = self.string("dataset.description", meta.get("description", ""))
        return Dataset(name, self.root, self.path, speakers, pipelines, description)

    def speaker(self, sid: str, t: Any) -> Speaker:
        key = f"speakers.{sid}"
        self.ident(key, sid)
        t = self.table(key, t)
        self.unknown(key, t, _SPEAKER_KEYS)
        for required in ("language", "reference"):
            if required not in t:
                raise self.fail(f"{key}.{required}", "missing (required)")
        return Speaker(
            id=sid,
            language=self.string(f"{key}.language", t["language"]),
            reference=self.media(f"{key}.reference", t["reference"]),
            audio=self.media(f"{key}.audio", t["audio"]) if "audio" in t else None,
            image=self.media(f"{key}.image", t["image"]) if "image" in t else None,
            segment=self.segment(f"{key}.segment", t["segment"]) if "segment" in t else Segment(),
        )

    def pipeline(self, name: str, t: Any, speakers: dict[str, Speaker]) -> Pipeline:
        key = f"pipelines.{name}"
        self.ident(key, name)
        t = self.table(key, t)
        self.unknown(key, t, _PIPELINE_KEYS)
        mode = self.string(f"{key}.mode", t.get("mode", ""))
        if mode not in MODES:
            raise self.fail(f"{key}.mode", f"{mode!r} is not one of {', '.join(MODES)}")
        if "outputs" not in t and "command" not in t:
            raise self.fail(f"{key}.outputs", "missing: a path pattern such as '{pipeline}/{speaker}.mp4', "
                                              "or a command that generates the outputs")
        outputs = self.pattern(f"{key}.outputs", t["outputs"]) if "outputs" in t else None
        subset = None
        if "speakers" in t:
            subset = t["speakers"]
            if not isinstance(subset, list) or not all(isinstance(s, str) for s in subset):
                raise self.fail(f"{key}.speakers", "must be a list of speaker ids")
            for sid in subset:
                if sid not in speakers:
                    raise self.fail(f"{key}.speakers", f"unknown speaker {sid!r}")
            if len(set(subset)) != len(subset):
                raise self.fail(f"{key}.speakers", "lists a speaker twice")
            subset = tuple(subset)
        train = self.segment(f"{key}.train", t["train"]) if "train" in t else None
        evaluate = self.segment(f"{key}.evaluate", t["evaluate"]) if "evaluate" in t else None
        if mode == "person-specific" and evaluate is None:
            raise self.fail(f"{key}.evaluate", "person-specific pipelines need the evaluated segment")
        for k in ("cwd", "env", "timeout", "output_glob", "train_command", "train_timeout"):
            if k in t and "command" not in t:
                raise self.fail(f"{key}.{k}", "only applies to pipelines with a command")
        command = train_command = None
        if "train_command" in t:
            if mode != "person-specific" or train is None or train.end is None:
                raise self.fail(f"{key}.train_command", "needs mode = \"person-specific\" and the training "
                                                        "segment, e.g. train = { start = 0, end = 180 }")
            train_command = self.command(key, t, "train_command", "train_timeout", TRAIN_PLACEHOLDERS)
        if "command" in t:
            known = COMMAND_PLACEHOLDERS - ({"train_dir"} if train_command is None else set())
            command = self.command(key, t, "command", "timeout", known)
            used = command.fields()
            if ("output" in used) == (command.output_glob is not None):
                raise self.fail(f"{key}.command", "must write to {output}, or give output_glob (a pattern "
                                                  "under {workdir}) for tools that name their outputs; not both")
        for cmd, k in ((command, "command"), (train_command, "train_command")):
            if cmd is not None and "image" in cmd.fields():
                for sid in subset or speakers:
                    if speakers[sid].image is None:
                        raise self.fail(f"{key}.{k}", f"uses {{image}} but speakers.{sid} has no image")
        resources = self.resources(f"{key}.resources", t["resources"]) if "resources" in t else ()
        return Pipeline(name, mode, outputs, subset, train, evaluate, command, train_command, resources,
                        min_coverage=self.coverage(f"{key}.min_coverage", t.get("min_coverage", MIN_COVERAGE)))

    def resources(self, key: str, value: Any) -> tuple[tuple[str, float], ...]:
        """A case's Ray resources: num_cpus, num_gpus, memory (bytes) or a custom resource, each a number >= 0."""
        table = self.table(key, value)
        for name, amount in table.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                raise self.fail(f"{key}.{name}", "must be a number >= 0 (num_cpus, num_gpus, memory in bytes, "
                                                 "or a custom resource of your Ray nodes)")
        return tuple(sorted((name, float(amount)) for name, amount in table.items()))

    def coverage(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(key, f"must be a fraction from 0 to 1 (default {MIN_COVERAGE}), not {value!r}")
        return float(value)

    def command(self, key: str, t: dict[str, Any], name: str, timeout_key: str, known: set[str]) -> Command:
        template = self.string(f"{key}.{name}", t[name])
        try:
            args = shlex.split(template)
        except ValueError as exc:
            raise self.fail(f"{key}.{name}", f"bad command {template!r}: {exc}") from None
        fields = {f for arg in args for f in self.placeholders(f"{key}.{name}", arg)}
        if not args:
            raise self.fail(f"{key}.{name}", "is empty")
        if fields - known:
            bad = ", ".join(f"{{{f}}}" for f in sorted(fields - known))
            raise self.fail(f"{key}.{name}", f"unknown placeholder {bad} "
                                             f"(known: {', '.join(f'{{{f}}}' for f in sorted(known))})")
        cwd = Path(self.string(f"{key}.cwd", t.get("cwd", "."))).expanduser()
        cwd = (self.path.parent / cwd).resolve()
        if not cwd.is_dir():
            raise self.fail(f"{key}.cwd", f"not a directory: {cwd}")
        env = self.table(f"{key}.env", t.get("env", {}))
        if not all(isinstance(v, str) for v in env.values()):
            raise self.fail(f"{key}.env", "values must be strings")
        timeout = t.get(timeout_key)
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise self.fail(f"{key}.{timeout_key}", "must be a positive number of seconds")
        glob = self.string(f"{key}.output_glob", t["output_glob"]) if name == "command" and "output_glob" in t else None
        return Command(template, cwd, tuple(sorted(env.items())), None if timeout is None else float(timeout), glob)

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        return value

    def unknown(self, key: str, t: dict[str, Any], allowed: set[str]) -> None:
        for k in t:
            if k not in allowed:
                where = f"{key}.{k}" if key else k
                raise self.fail(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def ident(self, key: str, value: str) -> None:
        if not _ID.match(value) or value.startswith("."):
            raise self.fail(key, "ids may hold letters, digits and _ . + - only, and may not start with a dot")

    def inside(self, key: str, rel: str) -> Path:
        full = (self.root / rel).resolve()
        if Path(rel).is_absolute() or not full.is_relative_to(self.root):
            raise self.fail(key, f"{rel!r} escapes the dataset root {self.root}")
        return full

    def media(self, key: str, value: Any) -> Path:
        full = self.inside(key, self.string(key, value))
        if not full.is_file():
            raise self.fail(key, f"file not found: {full}")
        return full

    def pattern(self, key: str, value: Any) -> str:
        value = self.string(key, value)
        fields = self.placeholders(key, value)
        if fields - PLACEHOLDERS:
            bad = ", ".join(sorted(fields - PLACEHOLDERS))
            raise self.fail(key, f"unknown placeholder {bad} (known: {', '.join(sorted(PLACEHOLDERS))})")
        self.inside(key, value.format(speaker="s", pipeline="p", language="l"))
        return value

    def placeholders(self, key: str, template: str) -> set[str]:
        """The names a template's ``{...}`` fields use; each must be a bare name: no format spec (a huge
        width would exhaust memory), conversion, attribute or index access."""
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise self.fail(key, f"bad template {template!r}: {exc}") from None
        names = set()
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if spec or conversion or not name.isidentifier():
                field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise self.fail(key, f"placeholder {field} in {template!r}: placeholders are bare names such as "
                                     "{speaker}, without format specs, conversions, attributes or indexes; "
                                     "write {{ and }} for literal braces")
            names.add(name)
        return names

    def segment(self, key: str, value: Any) -> Segment:
        t = self.table(key, value)
        self.unknown(key, t, _SEGMENT_KEYS)
        start = t.get("start", 0.0)
        end = t.get("end")
        for k, v in (("start", start), ("end", end)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise self.fail(f"{key}.{k}", "must be a number of seconds")
        if start < 0 or (end is not None and end <= start):
            raise self.fail(key, f"needs 0 <= start < end (got start={start}, end={end})")
        return Segment(float(start), None if end is None else float(end))
