"""Pinning a test's weights file in the registry, as the official file is pinned: by its SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from talkbench_plugin import weights


def pin(monkeypatch: pytest.MonkeyPatch, name: str, path: Path) -> None:
    """The registry's ``name`` becomes ``path``'s file (its name, its SHA-256, no download source)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.REGISTRY, name, weights.WeightSpec(name, path.name, (), sha256=digest))
