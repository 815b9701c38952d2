"""GitHub Actions: the job's step summary and workflow-command annotations."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SUMMARY_LIMIT = 1 << 20  # GitHub refuses step summaries over 1 MiB


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def append_summary(markdown: str) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY when it is set (truncated to stay under GitHub's limit)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    data = markdown.encode("utf-8")
    if len(data) > SUMMARY_LIMIT - 1024:
        data = data[: SUMMARY_LIMIT - 1024].decode("utf-8", "ignore").encode() + b"\n\n(truncated)\n"
    with open(target, "ab") as fh:
        fh.write(data + b"\n")
    return Path(target)


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def annotate(level: str, message: str, *, file: str | None = None, title: str | None = None) -> None:
    """Print an ``::error``/``::warning`` workflow command on stderr, on a line of its own."""
    props = []
    if file:
        workspace = os.environ.get("GITHUB_WORKSPACE")
        if workspace and os.path.isabs(file):
            file = os.path.relpath(file, workspace)
        props.append(f"file={_escape(file, prop=True)}")
    if title:
        props.append(f"title={_escape(title, prop=True)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    sys.stderr.write(f"\n{head}::{_escape(message)}\n")
    sys.stderr.flush()
