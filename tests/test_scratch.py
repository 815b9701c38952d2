"""What a killed run leaves (its talkbench-run-* folder, hidden temporary files) is removed by the next run
(issue 16.12): folders and files name their process, and those of processes that are gone are stale."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from talkbench_plugin.cache import atomic_path
from talkbench_plugin.scratch import host, new_run_dir


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_runs_folder_is_removed_and_a_live_ones_kept(tmp_path: Path, monkeypatch, dead_pid: int) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead, live, unmarked = (tmp_path / f"talkbench-run-{n}" for n in ("dead", "live", "unmarked"))
    for folder, owner in ((dead, dead_pid), (live, os.getpid()), (unmarked, None)):
        (folder / "cases").mkdir(parents=True)
        if owner is not None:
            (folder / "owner.pid").write_text(str(owner))
    run = new_run_dir()
    assert run.parent == tmp_path and (run / "owner.pid").read_text() == str(os.getpid())
    assert not dead.exists() and live.is_dir() and unmarked.is_dir()


def test_a_dead_writers_temporary_file_is_removed(tmp_path: Path, dead_pid: int) -> None:
    dest = tmp_path / "static.mp4"
    left = tmp_path / f".static.{dead_pid}@{host()}.abc123.mp4"  # what atomic_path wrote when the run was killed
    mine = tmp_path / f".static.{os.getpid()}@{host()}.xyz.mp4"  # another write of this process, in progress
    # a cache on a shared filesystem: another machine's writer, whose process id means nothing here
    elsewhere = tmp_path / f".static.{dead_pid}@other-node.def456.mp4"
    for path in (left, mine, elsewhere):
        path.write_bytes(b"partial")
    with atomic_path(dest) as tmp:
        assert tmp.name.startswith(f".static.{os.getpid()}@{host()}.")
        tmp.write_bytes(b"done")
    assert dest.read_bytes() == b"done"
    assert not left.exists() and mine.exists() and elsewhere.exists()
