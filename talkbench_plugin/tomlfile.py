"""Reading the TOML files users write (manifests, thresholds): every way one can be unreadable is one line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ManifestError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML of ``path``, or a ManifestError naming the file, the problem and what to do."""
    if not path.is_file():
        raise ManifestError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start}); save the {what} as "
                            f"UTF-8") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ManifestError(f"{path}: not valid TOML: nested too deeply for the parser; flatten the "
                            f"{what}'s tables and arrays") from None
