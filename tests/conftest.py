"""Fixtures shared by the project's tests."""

import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _fresh_shared_boxes() -> None:
    """Each test starts as a new process does: no S3FD boxes remembered from another test's frames."""
    shared = sys.modules.get("talkbench_plugin.sync.shared_boxes")
    if shared is not None:
        shared.forget()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyiqa's FID Inception with deterministic random weights, saved in the official file format and name."""
    import torch

    from talkbench_plugin.fid.features import random_inception_state
    from talkbench_plugin.weights import spec_for

    path = tmp_path_factory.mktemp("weights") / spec_for("inception").filename
    torch.save(random_inception_state(seed=0), path)
    return path


@pytest.fixture(scope="session")
def sync_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights directory with deterministic random SyncNet and S3FD weights in the official format."""
    from talkbench_plugin.sync.model import write_random_weights
    from talkbench_plugin.weights import spec_for

    folder = tmp_path_factory.mktemp("sync-weights")
    for kind in ("syncnet", "s3fd"):
        write_random_weights(kind, folder / spec_for(kind).filename, seed=0)
    return folder


@pytest.fixture
def sync_weights(sync_weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sync_weights_dir``, with the registry pinning those random files (as it pins the official ones)."""
    from pinned import pin

    from talkbench_plugin import weights

    for kind in ("syncnet", "s3fd"):
        pin(monkeypatch, kind, sync_weights_dir / weights.spec_for(kind).filename)
    return sync_weights_dir
