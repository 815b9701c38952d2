"""Case results shared by the workers of one run: computed once under a lock, read by the others."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache import atomic_path, lock_for


class RunStore:
    """A directory of case records for one run; ``get`` computes a record at most once per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, case_id: str, settings: dict[str, Any]) -> Path:
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return self.directory / f"{case_id}.{key}.json"

    def get(self, case_id: str, settings: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.path(case_id, settings)
        with lock_for(path):
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
            record = compute()
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(record), encoding="utf-8")
            return record

    def put(self, case_id: str, settings: dict[str, Any], record: dict[str, Any]) -> None:
        """Store a record computed elsewhere (an executor's task); the first one stored stays."""
        self.get(case_id, settings, lambda: record)

    def wait(self, case_id: str, settings: dict[str, Any], interval: float = 0.05) -> dict[str, Any]:
        """The record once another process has stored it (polls: the writer may be another process)."""
        path = self.path(case_id, settings)
        while not path.is_file():
            time.sleep(interval)
        return json.loads(path.read_text(encoding="utf-8"))
