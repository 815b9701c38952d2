"""``--talkbench-executor`` / ``talkbench evaluate --executor``: which executor runs the cases, and where."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import TalkbenchError

KINDS = ("ray",)
AUTO = "auto"


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor and its cluster address: ``auto`` joins ``$RAY_ADDRESS`` or starts a local cluster."""

    kind: str
    address: str = AUTO

    def ray_address(self) -> str | None:
        """The address ``ray.init`` gets: None (start a local cluster) or the one to join."""
        if self.address != AUTO:
            return self.address
        return os.environ.get("RAY_ADDRESS") or None

    def describe(self) -> str:
        where = self.ray_address()
        return f"{self.kind} ({where or 'a local cluster'})"


def parse_executor(text: str | None) -> ExecutorSpec | None:
    """``ray``, ``ray=auto`` or ``ray=ADDRESS`` (``ray://host:10001``, ``host:6379``); None when not given.
    Raises TalkbenchError naming what is accepted."""
    if not text:
        return None
    kind, _, address = text.partition("=")
    if kind not in KINDS or (_ and not address.strip()):
        raise TalkbenchError(f"{text!r}: expected ray, ray=auto or ray=ADDRESS (e.g. ray=headnode:6379)")
    return ExecutorSpec(kind, address.strip() or AUTO)
