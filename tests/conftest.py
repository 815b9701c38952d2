"""Fixtures shared by the project's tests."""

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyiqa's FID Inception with deterministic random weights, saved in the official file format and name."""
    import torch

    from talkbench_plugin.fid.features import random_inception_state
    from talkbench_plugin.weights import spec_for

    path = tmp_path_factory.mktemp("weights") / spec_for("inception").filename
    torch.save(random_inception_state(seed=0), path)
    return path
