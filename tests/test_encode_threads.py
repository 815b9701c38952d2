"""The H.264 encodes (demo clips, calibration videos) do not depend on how many CPUs the process may use.

x264 picks its thread count from the CPUs the process may run on, and frame-threaded output depends
on that count; the encoders pin one thread, so a 1-CPU and an all-CPU process write the same bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs os.sched_setaffinity and more than one CPU",
)

# Runs in a fresh interpreter: restrict the CPUs first, then encode what the project encodes.
_CHILD = """
import dataclasses, os, sys
from pathlib import Path

os.sched_setaffinity(0, {int(c) for c in sys.argv[3].split(",")})
import numpy as np
from talkbench_plugin.calibration import make_calibration
from talkbench_plugin.demo import SPEAKERS, _write_mp4

reference, dest = Path(sys.argv[1]), Path(sys.argv[2])
for kind in ("static", "degraded"):
    make_calibration(kind, reference, dest / f"{kind}.mp4")
frames = np.load(dest.parent / "frames.npy")
speaker = dataclasses.replace(SPEAKERS[0], width=frames.shape[2], height=frames.shape[1], seconds=len(frames) / 25)
_write_mp4(dest / "demo.mp4", speaker, frames, np.zeros(16000 * len(frames) // 25))
"""


def _encode(tmp_path: Path, reference: Path, cpus: set[int]) -> dict[str, bytes]:
    """The demo and calibration encodes of a process restricted to ``cpus``: {file name: bytes}."""
    dest = tmp_path / f"cpus{len(cpus)}"
    dest.mkdir()
    cpu_list = ",".join(map(str, sorted(cpus)))
    subprocess.run([sys.executable, "-c", _CHILD, str(reference), str(dest), cpu_list], check=True)
    return {p.name: p.read_bytes() for p in sorted(dest.iterdir())}


def test_one_cpu_and_all_cpus_write_the_same_bytes(tmp_path: Path) -> None:
    frames = moving_frames(25, 160, 352)  # x264 caps its thread count by height: 'degraded' needs 176 rows
    np.save(tmp_path / "frames.npy", frames)
    reference = write_video(tmp_path / "reference.mp4", frames, 25)
    cpus = os.sched_getaffinity(0)
    one, every = _encode(tmp_path, reference, {min(cpus)}), _encode(tmp_path, reference, cpus)
    assert sorted(one) == ["degraded.mp4", "demo.mp4", "static.mp4"]
    assert [name for name in one if one[name] != every[name]] == []
