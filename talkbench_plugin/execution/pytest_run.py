"""A pytest run whose cases execute elsewhere (``--talkbench-executor``): the controller submits every
selected case once, right after collection, and stores each record in the run's store as it comes back;
every metric test (in any xdist worker) waits for its case's record there. Hooks here stay thin.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ..cache import atomic_path
from ..errors import TalkbenchError
from ..manifest import CALIBRATION, Case
from ..store import RunStore
from .ray_executor import RayExecutor, RunSettings
from .spec import ExecutorSpec

SUBMITTED = "submitted.json"  # beside the records: the cases the controller submitted


def store_key(spec: ExecutorSpec) -> dict[str, Any]:
    """The records' key in the run's store: a run directory holds one run's settings, so the executor suffices."""
    return {"executor": spec.kind}


def wait_record(run_dir: Path, case: Case, spec: ExecutorSpec) -> dict[str, Any]:
    """A metric test's side: the case's record once the controller has stored it."""
    store = RunStore(run_dir / "cases")
    listed = run_dir / "cases" / SUBMITTED
    if not listed.is_file() or case.id not in json.loads(listed.read_text(encoding="utf-8")):
        from ..engine import case_record

        return case_record(case, "not submitted to the executor (its output was missing at collection)")
    return store.wait(case.id, store_key(spec))


def needs_record(case: Case) -> bool:
    """Whether a metric test of ``case`` would ask for its record (CaseCheck skips a missing output)."""
    return case.pipeline.mode == CALIBRATION or case.pipeline.command is not None or case.generated.is_file()


class ExecutorRun:
    """Controller-only hooks: submit at collection, store records from a background thread, cancel at the end."""

    def __init__(self, spec: ExecutorSpec, state: Any) -> None:
        self.spec = spec
        self.state = state  # plugin.RunState
        self.executor: RayExecutor | None = None
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.store = RunStore(state.run_dir / "cases")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        cases = [item.callspec.params["talkbench_case"] for item in session.items
                 if "talkbench_case" in getattr(getattr(item, "callspec", None), "params", {})]
        if cases and not session.config.option.collectonly:
            self.start(cases)

    @pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.thread is not None or self.state.config.option.collectonly:
            return
        from ..scheduling import case_key

        keys = {case_key(nodeid, self.state.iqa_metrics()) for nodeid in ids}
        cases = [c for c in self._dataset_cases() if c.id in keys]
        if cases:
            self.start(cases)

    def _dataset_cases(self) -> list[Case]:
        cases = self.state.dataset().cases()
        if self.state.shard:
            index, count = self.state.shard
            cases = cases[index - 1 :: count]
        return cases

    def start(self, cases: Iterable[Case]) -> None:
        """Submit the cases that need a record (each once) and start storing what comes back."""
        unique = {c.id: c for c in cases if needs_record(c)}
        with atomic_path(self.store.directory / SUBMITTED) as tmp:
            tmp.write_text(json.dumps(sorted(unique)), encoding="utf-8")
        run = RunSettings(self.state.computable(), self.state.cache, self.state.convention, self.state.batch,
                          self.state.device_choice, self.state.weights_dir(), self._option_values(),
                          self.state.moments_dir())
        self.executor = RayExecutor(self.spec, run)
        try:
            self.executor.submit(list(unique.values()))
        except TalkbenchError as exc:
            print(f"talkbench: {exc}", file=sys.stderr)
            for case in unique.values():
                self._store_error(case, str(exc))
            return
        self.thread = threading.Thread(target=self._collect, name="talkbench-executor", daemon=True)
        self.thread.start()

    def _option_values(self) -> dict[str, Any]:
        from ..run_options import OPTIONS

        return {name.replace("-", "_"): self.state.config.getoption(f"talkbench_{name.replace('-', '_')}")
                for name in OPTIONS}

    def _collect(self) -> None:
        try:
            for case, record in self.executor.results(self.stop):
                self.store.put(case.id, store_key(self.spec), record)
        except Exception as exc:  # the cluster went away: no test may wait forever
            for case in list(self.executor.pending.values()):
                self._store_error(case, f"lost the Ray cluster: {type(exc).__name__}: {exc}")

    def _store_error(self, case: Case, error: str) -> None:
        from ..engine import case_record

        self.store.put(case.id, store_key(self.spec), case_record(case, error))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Interrupted (Ctrl-C, -x): cancel what still runs; then leave the cluster."""
        if self.executor is None:
            return
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        for case in self.executor.cancel():
            self._store_error(case, "cancelled: the run was interrupted")
        self.executor.close()
