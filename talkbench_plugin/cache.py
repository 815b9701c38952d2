"""The cache directory, content hashes, atomic writes and cross-process locks."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from .errors import CacheError

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


CACHE_HINT = "choose a writable cache with --cache DIR (talkbench), --talkbench-cache DIR (pytest) or $TALKBENCH_CACHE"


def not_writable(directory: Path, exc: OSError) -> CacheError:
    """The one-line error for a directory talkbench cannot write to (read-only, not ours)."""
    return CacheError(f"{directory}: directory not writable ({exc.strerror or exc}); {CACHE_HINT}")


def _writable_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        existing = next(p for p in (directory, *directory.parents) if p.exists())
        raise not_writable(existing, exc) from None


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; it replaces ``dest`` only if the block succeeds."""
    from .scratch import sweep_temp_files, temp_prefix

    _writable_dir(dest.parent)
    sweep_temp_files(dest)  # what a killed run left
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dest), suffix=dest.suffix, dir=dest.parent)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise not_writable(dest.parent, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def lock_for(path: Path) -> Iterator[None]:
    """Hold a lock guarding the creation of ``path`` across processes (xdist workers, parallel runs)."""
    _writable_dir(path.parent)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire()
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise not_writable(path.parent, exc) from None
    try:
        yield
    finally:
        lock.release()


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
