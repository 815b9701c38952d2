"""Temporary files and folders that name the process writing them, so that a later run can remove what a
killed one left behind (a folder or file whose process is gone is stale)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

RUN_PREFIX = "talkbench-run-"
_OWNER = "owner.pid"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_run_dir() -> Path:
    """A fresh ``talkbench-run-*`` folder in the system's temporary directory, marked with this process's
    id; this user's folders of processes that no longer exist (killed runs) are removed first."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{RUN_PREFIX}*"):
        try:
            stale = old.is_dir() and old.stat().st_uid == os.getuid() and not alive(int(
                (old / _OWNER).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # no owner written (yet), or not ours: left alone
        if stale:
            shutil.rmtree(old, ignore_errors=True)
    run = Path(tempfile.mkdtemp(prefix=RUN_PREFIX))
    (run / _OWNER).write_text(str(os.getpid()), encoding="utf-8")
    return run


def host() -> str:
    """This machine's name as it goes into file names (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())


def temp_prefix(dest: Path) -> str:
    """The prefix of ``dest``'s hidden temporary files written by this process: ``.<stem>.<pid>@<host>.``
    (a cache on a shared filesystem is written from several machines, each with its own process ids)."""
    return f".{dest.stem}.{os.getpid()}@{host()}."


def left_by_dead_process(path: Path, start: str) -> bool:
    """Whether temporary ``path`` (named ``<start><pid>@<host>.…``) was left by a process of this machine that
    no longer exists."""
    pid, _, machine = path.name[len(start):].split(".", 1)[0].partition("@")
    return machine == host() and pid.isdigit() and not alive(int(pid))


def sweep_temp_files(dest: Path) -> None:
    """Remove ``dest``'s hidden temporary files left by processes of this machine that no longer exist."""
    start = f".{dest.stem}."
    for old in dest.parent.glob(f"{start}*{dest.suffix}"):
        if left_by_dead_process(old, start):
            try:
                old.unlink()
            except OSError:
                pass
