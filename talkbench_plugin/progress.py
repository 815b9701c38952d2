"""Progress of long work: per case and within a case (stage, frames done of total, rate, ETA).

On a terminal a status line is redrawn in place; in CI logs (not a terminal, or ``CI=true``) there is one
line per finished case and no redrawing. The engine reports through a plain callable
``(stage, done, total)``; under pytest each process writes its current case's state to a small JSON file
in the run directory (``ProgressFile``) and the controller shows every worker's (``StatusLine``), so
``-n 4`` works the same as ``-n 0``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

ProgressFn = Callable[[str, int, "int | None"], None]  # (stage, done, total or None)
MIN_INTERVAL = 0.2  # seconds between two redraws (or file writes) of the same stage


def in_ci() -> bool:
    """Whether this runs in CI (``CI=true``, as GitHub Actions and most CI services set): its log gets no
    redrawn lines even when it emulates a terminal."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def interactive(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal that a status line may be redrawn on (not a CI log)."""
    isatty = getattr(stream, "isatty", None)
    return not in_ci() and bool(isatty and isatty())


def duration(seconds: float) -> str:
    """``seconds`` as 42s, 3m05s or 2h07m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def status(state: dict[str, Any], now: float | None = None) -> str:
    """One case's state as ``<case> <stage> <done>/<total> frames, <rate> frames/s, ETA <t>``."""
    now = time.time() if now is None else now
    text = f"{state['case']} {state['stage']}"
    done, total = state.get("done", 0), state.get("total")
    if done or total:
        text += f" {done}/{total if total else '?'} frames"
        elapsed = now - state.get("stage_started", now)
        if done and elapsed > 0:
            rate = done / elapsed
            text += f", {rate:.1f} frames/s"
            if total and total > done:
                text += f", ETA {duration((total - done) / rate)}"
    return text


def case_line(record: dict[str, Any], index: int, count: int) -> str:
    """The line for a finished case: ``[k/N] <case>: <frames> frames in <s> s (<fps> frames/s)`` or its error."""
    head = f"talkbench [{index}/{count}] {record['case']}"
    if record.get("error"):
        return f"{head}: error: {record['error'].splitlines()[0]}"
    frames = record.get("alignment", {}).get("compared", 0)
    seconds = record.get("timings", {}).get("total", 0.0)
    rate = f" ({frames / seconds:.1f} frames/s)" if frames and seconds else ""
    return f"{head}: {frames} frames in {seconds:.2f} s{rate}"


def advance(state: dict[str, Any], stage: str, done: int, total: int | None, now: float) -> bool:
    """Record a case's progress in ``state`` (restarting the stage clock on a new stage); whether the stage changed."""
    changed = stage != state["stage"]
    if changed:
        state["stage_started"] = now
    state.update(stage=stage, done=done, total=total)
    return changed


class ProgressFile:
    """The engine's progress callable under pytest: the case's state in ``folder/<pid>.json`` (throttled),
    removed when the case is done."""

    def __init__(self, folder: Path, case: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}.json"
        self.state: dict[str, Any] = {"case": case, "stage": "start", "done": 0, "total": None,
                                      "stage_started": time.time()}
        self._written = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.time()
        changed = advance(self.state, stage, done, total, now)
        if changed or now - self._written >= MIN_INTERVAL:
            self._written = now
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(tmp, self.path)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def read_states(folder: Path) -> list[dict[str, Any]]:
    """The states that the processes' ProgressFiles hold now (a file being replaced is skipped)."""
    states = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            states.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return states


class StatusLine:
    """On a terminal: redraws one line with every running case's state, polled from a ProgressFile folder
    by a daemon thread. ``write`` puts text on the terminal as is."""

    def __init__(self, folder: Path, write: Callable[[str], None], interval: float = 0.5) -> None:
        self.folder = folder
        self.write = write
        self.interval = interval
        self.shown = ""
        self.done = 0
        self.total = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="talkbench-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> str:
        """Redraw the line from the current states; the text shown."""
        states = read_states(self.folder)
        text = " | ".join(status(s) for s in states)
        if text:
            text = f"talkbench [{self.done}/{self.total}] {text}" if self.total else f"talkbench {text}"
        with self._lock:
            if text != self.shown:
                self.write("\r\x1b[K" + text)
                self.shown = text
        return text

    def clear(self) -> None:
        """Take the line off (before pytest writes its own output)."""
        with self._lock:
            if self.shown:
                self.write("\r\x1b[K")
                self.shown = ""

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.clear()


class ConsoleProgress:
    """``talkbench evaluate``'s progress on ``stream``: a redrawn status line on a terminal, else one line
    per case. Call it as the engine's progress callable; ``case_done`` after each case."""

    def __init__(self, stream: IO[str], count: int) -> None:
        self.stream = stream
        self.count = count
        self.tty = interactive(stream)
        self.index = 0
        self.state: dict[str, Any] = {}
        self._drawn = 0.0

    def start_case(self, case: str) -> ProgressFn:
        self.index += 1
        self.state = {"case": case, "stage": "start", "done": 0, "total": None, "stage_started": time.time()}
        return self

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.time()
        changed = advance(self.state, stage, done, total, now)
        if self.tty and (changed or now - self._drawn >= MIN_INTERVAL):
            self._drawn = now
            self.stream.write(f"\r\x1b[Ktalkbench [{self.index}/{self.count}] {status(self.state, now)}")
            self.stream.flush()

    def case_done(self, record: dict[str, Any]) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(case_line(record, self.index, self.count) + "\n")
        self.stream.flush()


class DownloadBar:
    """A download's progress on ``stream``: a bar redrawn on a terminal, else a line per 25 %."""

    def __init__(self, stream: IO[str], name: str, width: int = 30) -> None:
        self.stream = stream
        self.name = name
        self.width = width
        self.tty = interactive(stream)
        self.started = time.time()
        self._drawn = 0.0
        self._quarter = -1

    def __call__(self, done: int, total: int | None) -> None:
        now = time.time()
        rate = done / max(now - self.started, 1e-6)
        mib = f"{done / 2**20:.1f}" + (f"/{total / 2**20:.1f}" if total else "") + " MiB"
        if self.tty:
            if now - self._drawn < MIN_INTERVAL and done != total:
                return
            self._drawn = now
            bar = ""
            if total:
                filled = int(self.width * done / total)
                bar = "[" + "#" * filled + "." * (self.width - filled) + f"] {100 * done / total:3.0f}% "
            eta = f", ETA {duration((total - done) / rate)}" if total and rate and done < total else ""
            self.stream.write(f"\r\x1b[K{self.name}: {bar}{mib}, {rate / 2**20:.1f} MiB/s{eta}")
        elif total and done * 4 // total > self._quarter:
            self._quarter = done * 4 // total
            self.stream.write(f"{self.name}: {25 * self._quarter}% of {total / 2**20:.1f} MiB\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def cases_of(nodeids: Iterable[str], known: Iterable[str]) -> set[str]:
    """The ``known`` case ids that the test ids cover (``test_psnr[<case>]``, ``test_iqa[<metric>-<case>]``)."""
    known = set(known)
    found = set()
    for nodeid in nodeids:
        bracket = nodeid.rsplit("[", 1)[-1].rstrip("]") if nodeid.endswith("]") else ""
        found |= {case for case in known if bracket == case or bracket.endswith(f"-{case}")}
    return found
