"""Pipelines as code: run a pipeline's command to make a speaker's video, timed, logged and cached.

A command's placeholders hold: ``{reference}`` ``{image}`` the speaker's files; ``{audio}`` the driving
audio (the speaker's ``audio``, else the reference), for person-specific pipelines a WAV clip of it cut
to the evaluated segment; ``{output}`` where to write the video; ``{workdir}`` an empty scratch folder;
``{train_dir}`` the folder ``train_command`` trained into; ``{speaker}`` ``{pipeline}`` ``{language}``.
``train_command`` gets ``{workdir}`` (its training folder, kept), ``{train_start}`` and ``{train_end}``.

An output is reused only if the JSON record beside it holds the same key: the command with every
input file replaced by its content hash, cwd, env, output_glob and the training key. Anything else
(missing record, another command, an edited output) regenerates it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .cache import atomic_path, file_sha256, lock_for
from .devices import command_env
from .errors import GenerationError, MediaError
from .manifest import Case, Command
from .media.audio import write_clip
from .media.video import probe
from .scratch import sweep_temp_files, temp_prefix

_LAUNCHER = Path(__file__).with_name("launch.py")
GENERATION_VERSION = "v1"  # part of every key: bump when what talkbench passes to commands changes
_TAIL_LINES = 15
_NO_TIMEOUT = 10.0**9  # seconds: "no timeout", but waited for by polling (see _wait)


def generate(case: Case, cache: Path, device: str = "cpu") -> tuple[Path, dict[str, Any]]:
    """The case's video, made by its pipeline's command unless an up-to-date one exists, and the
    generation record: command, key, wall and CPU seconds, peak RSS, RTF, frames per second, log,
    whether it came from the cache and the seconds this call spent (training included).

    Raises GenerationError when the command (or training) fails, times out or writes no usable video.
    """
    pipeline, command = case.pipeline, case.pipeline.command
    cache = cache.resolve()  # commands run in their own cwd: every path they get is absolute
    train = _train(case, cache, device) if pipeline.train_command else None
    values, tokens = _inputs(case, cache, command)
    if train:
        values["train_dir"], tokens["train_dir"] = train["dir"], "{train_dir}"
    key = _key(command, tokens, train and train["key"])
    suffix = Path(command.output_glob or "output.mp4").suffix
    suffix = suffix if suffix and "*" not in suffix and "?" not in suffix else ".mp4"
    dest = case.generated or cache / "outputs" / pipeline.name / f"{case.speaker.id}-{key[:16]}{suffix}"
    sidecar, log = dest.with_suffix(".generation.json"), dest.with_suffix(".log")
    spent = train["spent_s"] if train else 0.0
    with lock_for(dest):
        previous = _reusable(dest, sidecar, key)
        if previous is not None:
            return dest, {**previous, "cached": True, "device": device, "train": train, "spent_s": spent}
        workdir = cache / "work" / pipeline.name / f"{case.speaker.id}-{key[:16]}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        output = workdir / f"output{suffix}"
        values.update(workdir=str(workdir), output=str(output))
        argv = _fill(command, values)
        what = f"{pipeline.name} for {case.speaker.id}"
        run = run_command(argv, command, device, log, what)
        produced = _produced(argv, command, output, log, what, run)
        try:
            info = probe(produced)
        except MediaError as exc:
            raise GenerationError(f"{what}: `{shlex.join(argv)}` wrote {produced}, which is not a usable "
                                  f"video: {exc.problem}{_tail(log)}") from None
        with atomic_path(dest) as tmp:
            shutil.move(produced, tmp)
        shutil.rmtree(workdir, ignore_errors=True)
        frames = info.frames or round((info.duration or 0.0) * info.fps)
        record = {
            "command": argv, "cwd": str(command.cwd), "key": key, "output": str(dest), "log": str(log),
            **asdict(run), "frames": frames, "duration_s": info.duration,
            "rtf": run.wall_s / info.duration if info.duration else None,
            "frames_per_s": frames / run.wall_s if run.wall_s else None,
        }
        with atomic_path(sidecar) as tmp:
            tmp.write_text(json.dumps({"key": key, "output_sha256": file_sha256(dest), "generation": record},
                                      indent=1), encoding="utf-8")
    return dest, {**record, "cached": False, "device": device, "train": train, "spent_s": spent + run.wall_s}


@dataclass(frozen=True)
class RunStats:
    """What a command that succeeded cost (it and every process it waited for)."""

    wall_s: float
    cpu_s: float  # user + system
    max_rss_mib: float  # peak resident memory of its largest process


def run_command(argv: list[str], command: Command, device: str, log: Path, what: str) -> RunStats:
    """Run ``argv`` in the command's cwd with its env and ``device`` made visible, stdout and stderr
    into ``log``; kill its process group at the timeout. Raises GenerationError when it cannot start,
    fails or times out, with the end of its log."""
    # unbuffered: a Python tool's last lines reach the log even when it is killed at the timeout
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **command_env(device), **dict(command.env)}
    log.parent.mkdir(parents=True, exist_ok=True)
    usage = log.with_name(f"{log.stem}.rusage.json")
    sweep_temp_files(usage)  # one a killed run left
    fd, usage_file = tempfile.mkstemp(prefix=temp_prefix(usage), suffix=usage.suffix, dir=log.parent)
    os.close(fd)
    try:
        with open(log, "wb") as out:
            start = time.perf_counter()
            try:
                process = subprocess.Popen([sys.executable, "-I", "-S", str(_LAUNCHER), usage_file, "--", *argv],
                                           cwd=command.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise GenerationError(f"{what}: cannot run `{shlex.join(argv)}` in {command.cwd}: "
                                      f"{exc.strerror}; check the pipeline's cwd") from None
            timed_out = _wait(process, command.timeout)
            wall = time.perf_counter() - start
        usage = json.loads(Path(usage_file).read_text(encoding="utf-8") or "{}")
    finally:
        os.unlink(usage_file)
    shown = shlex.join(argv)
    if timed_out:
        raise GenerationError(f"{what}: `{shown}` ran past its timeout of {command.timeout:g} s and was stopped"
                              f"{_tail(log)}")
    if "error" in usage:
        raise GenerationError(f"{what}: cannot run `{shown}` in {command.cwd}: {usage['error']} "
                              f"({usage['filename']}); check the program name and the pipeline's cwd")
    status = usage.get("status")
    if status is None or status < 0:
        how = f"was killed by {signal.Signals(-status).name}" if status else "ended without a status"
        raise GenerationError(f"{what}: `{shown}` {how} after {wall:.1f} s (out of memory?){_tail(log)}")
    if status != 0:
        raise GenerationError(f"{what}: `{shown}` exited with status {status} after {wall:.1f} s{_tail(log)}")
    return RunStats(wall, usage["cpu_s"], usage["max_rss_kib"] / 1024)


def _wait(process: subprocess.Popen, timeout: float | None) -> bool:
    """Wait for ``process``; at the timeout, or on Ctrl-C, kill its process group (a command in its own
    session would outlive the run). True when it timed out."""
    try:
        # with a timeout wait() polls (sleeps of at most 50 ms), so an interrupt that is no real signal (a
        # cancelled Ray task's KeyboardInterrupt, execution/) gets through while the command runs
        process.wait(timeout if timeout is not None else _NO_TIMEOUT)
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it may end on its own meanwhile
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _produced(argv: list[str], command: Command, output: Path, log: Path, what: str, run: RunStats) -> Path:
    """The file the command wrote: at {output}, or the one match of output_glob under {workdir}."""
    if command.output_glob is None:
        if not output.is_file() or output.stat().st_size == 0:
            raise GenerationError(f"{what}: `{shlex.join(argv)}` exited 0 after {run.wall_s:.1f} s but wrote "
                                  f"nothing at {output} (its {{output}}){_tail(log)}")
        return output
    workdir = output.parent
    matches = sorted(p for p in workdir.glob(command.output_glob) if p.is_file())
    if len(matches) != 1:
        held = ", ".join(sorted(p.name for p in workdir.iterdir())[:10]) or "nothing"
        found = ", ".join(str(p.relative_to(workdir)) for p in matches) or f"nothing (the folder holds: {held})"
        raise GenerationError(f"{what}: `{shlex.join(argv)}` exited 0 but output_glob {command.output_glob!r} "
                              f"must match one file under {workdir}, found {found}{_tail(log)}")
    return matches[0]


def _train(case: Case, cache: Path, device: str) -> dict[str, Any]:
    """Run the pipeline's train_command for the speaker once; its folder is cached by the key."""
    pipeline, command = case.pipeline, case.pipeline.train_command
    values, tokens = _inputs(case, cache, command, clip=False)
    extra = {"train_start": f"{pipeline.train.start:g}", "train_end": f"{pipeline.train.end:g}"}
    values.update(extra)
    tokens.update(extra)
    key = _key(command, tokens, None)
    directory = cache / "train" / pipeline.name / f"{case.speaker.id}-{key[:16]}"
    marker = directory / "train.json"
    with lock_for(directory):
        if marker.is_file():
            return {**json.loads(marker.read_text(encoding="utf-8")), "cached": True, "spent_s": 0.0}
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        values["workdir"] = str(directory)
        argv = _fill(command, values)
        run = run_command(argv, command, device, directory / "train.log",
                          f"{pipeline.name} for {case.speaker.id} (training)")
        record = {"command": argv, "key": key, "dir": str(directory), "log": str(directory / "train.log"),
                  **asdict(run)}
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return {**record, "cached": False, "spent_s": run.wall_s}


def _inputs(case: Case, cache: Path, command: Command, clip: bool = True) -> tuple[dict[str, str], dict[str, str]]:
    """Placeholder values for ``command`` and, for its key, the same with files named by content hash."""
    speaker, used = case.speaker, command.fields()
    values = {"speaker": speaker.id, "pipeline": case.pipeline.name, "language": speaker.language}
    tokens = dict(values)
    files = {"reference": speaker.reference, "image": speaker.image, "audio": speaker.audio or speaker.reference}
    for name, path in files.items():
        if name in used:
            values[name], tokens[name] = str(path), f"sha256:{file_sha256(path)}"
    if clip and "audio" in used and case.pipeline.mode == "person-specific":
        end = case.segment.end
        values["audio"] = str(audio_clip(files["audio"], case.offset, end, cache))
        tokens["audio"] += f"[{case.offset:g}:{'' if end is None else f'{end:g}'}]"
    for name in ("output", "workdir"):
        tokens[name] = f"{{{name}}}"
    return values, tokens


def audio_clip(source: Path, start: float, end: float | None, cache: Path) -> Path:
    """``source``'s audio from ``start`` to ``end`` seconds as a WAV file in the cache (cut once)."""
    dest = cache / "clips" / file_sha256(source)[:16] / f"{start:g}-{'end' if end is None else f'{end:g}'}.wav"
    with lock_for(dest):
        if not dest.is_file():
            with atomic_path(dest) as tmp:
                write_clip(source, start, end, tmp)
    return dest


def _key(command: Command, tokens: dict[str, str], train_key: str | None) -> str:
    data = {"version": GENERATION_VERSION, "command": _fill(command, tokens), "cwd": str(command.cwd),
            "env": dict(command.env), "output_glob": command.output_glob, "train": train_key}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _fill(command: Command, values: dict[str, str]) -> list[str]:
    return [arg.format(**values) for arg in shlex.split(command.template)]


def _reusable(dest: Path, sidecar: Path, key: str) -> dict[str, Any] | None:
    """The recorded generation of ``dest`` if it was made under ``key`` and is unchanged since."""
    if not dest.is_file() or not sidecar.is_file():
        return None
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("key") != key or saved.get("output_sha256") != file_sha256(dest):
        return None
    return saved["generation"]


def _tail(log: Path) -> str:
    """The last lines of a log (read from its last 64 KiB: progress bars can make logs huge)."""
    lines = []
    if log.is_file():
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 65536))
            text = fh.read().decode("utf-8", errors="replace").replace("\r", "\n")
        lines = [line for line in text.splitlines() if line.strip()][-_TAIL_LINES:]
    body = "\n".join(f"    {line}" for line in lines) if lines else "    (empty)"
    return f"; log {log}, last lines:\n{body}"
