"""The cache directory, content hashes, atomic writes and cross-process locks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

ENV_CACHE = "TALKBENCH_CACHE"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where talkbench keeps derived media and statistics: option > $TALKBENCH_CACHE > XDG cache."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "talkbench"


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content, memoised per (path, size, mtime) within the process."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; it replaces ``dest`` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def lock_for(path: Path) -> FileLock:
    """A lock guarding the creation of ``path`` across processes (xdist workers, parallel runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def usage(directory: Path) -> dict[str, tuple[int, int]]:
    """Files and bytes under each top-level entry of the cache directory."""
    entries: dict[str, tuple[int, int]] = {}
    if not directory.is_dir():
        return entries
    for entry in sorted(directory.iterdir()):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        entries[entry.name] = (len(files), sum(p.stat().st_size for p in files))
    return entries


def clear(directory: Path, keep: tuple[str, ...] = ("weights",)) -> list[str]:
    """Remove the cache's entries except ``keep``; returns the names removed."""
    removed = []
    for name in usage(directory):
        if name in keep:
            continue
        path = directory / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(name)
    return removed
