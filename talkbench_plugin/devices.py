"""Which device a process uses: one CUDA device per xdist worker, or the one ``--talkbench-device`` names.

Worker ``gwN`` gets CUDA device ``N mod count``; a run without xdist uses ``cuda:0``; without CUDA
devices everything runs on the CPU. Pipeline commands see only their device: their
``CUDA_VISIBLE_DEVICES`` names it (``cuda:0`` inside the command), while metric models in the worker
use ``torch.device(device)``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

AUTO = "auto"
_CHOICE = re.compile(r"^(auto|cpu|cuda:\d+)$")


def check_choice(choice: str) -> str:
    """``choice`` if it is ``auto``, ``cpu`` or ``cuda:N``; else ValueError saying what is accepted."""
    if not _CHOICE.match(choice):
        raise ValueError(f"{choice!r}: expected auto, cpu or cuda:N (e.g. cuda:1)")
    return choice


def assign(choice: str, worker: str | None, count: int) -> str:
    """The device for a process: ``choice`` unless it is ``auto``; else, with ``count`` CUDA devices,
    ``cuda:(N mod count)`` for xdist worker ``gwN`` (``cuda:0`` outside xdist), and ``cpu`` without any.
    ValueError for a malformed choice or a CUDA device beyond ``count``."""
    if check_choice(choice).startswith("cuda:") and int(choice[5:]) >= count:
        raise ValueError(f"{choice!r}: this machine has {count} CUDA device(s)")
    if choice != AUTO:
        return choice
    if count <= 0:
        return "cpu"
    index = int(worker[2:]) if worker and worker.startswith("gw") and worker[2:].isdigit() else 0
    return f"cuda:{index % count}"


def cuda_device_count() -> int:
    """CUDA devices torch can use; 0 without an NVIDIA driver (checked first: importing torch takes seconds)."""
    if not Path("/proc/driver/nvidia").exists() and shutil.which("nvidia-smi") is None:
        return 0
    import torch

    return torch.cuda.device_count()


def command_env(device: str, visible: str | None = None) -> dict[str, str]:
    """Environment for a command that must use only ``device``: ``CUDA_VISIBLE_DEVICES`` holds its
    physical index, read through this process's own ``visible`` list (default: its environment)."""
    if device == "cpu":
        return {"CUDA_VISIBLE_DEVICES": ""}
    index = int(device.split(":", 1)[1])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    ids = [v.strip() for v in visible.split(",")] if visible else []
    if ids and index >= len(ids):
        raise ValueError(f"{device}: only {len(ids)} device(s) visible (CUDA_VISIBLE_DEVICES={visible})")
    return {"CUDA_VISIBLE_DEVICES": ids[index] if ids else str(index)}
