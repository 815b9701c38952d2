"""Cases as Ray tasks: the controller connects (or starts a local cluster), submits every case with the
resources it needs, and takes the records back as they finish, in any order.

A task whose worker dies is retried once (``max_retries=1``); after that the case gets a record whose
``error`` names the node(s) and the reason, and the other cases go on. ``cancel`` interrupts the running
tasks (a pipeline command's process group is killed by generate.py) and drops the queued ones.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import atomic_path
from ..errors import TalkbenchError
from ..manifest import Case
from .spec import ExecutorSpec
from .task import Tracker, absolute, moments_paths, run_case, task_options

MAX_RETRIES = 1


@dataclass
class RunSettings:
    """What every task of a run gets: metrics, convention, batch, device choice, weights folder, the family
    options' values by name, and where the controller keeps the FID moments that come back."""

    metrics: list[str]
    cache: Path
    convention: str
    batch: int
    device: str
    weights: str
    options: dict[str, Any]
    moments_dir: Path | None

    def task_run(self) -> dict[str, Any]:
        """What every task gets, the controller's weights registry included: a file registered there
        (``weights.register``: a mirror, a private or test file) is verified by the same pins on every node."""
        from .. import weights

        return {"convention": self.convention, "batch": self.batch, "device": self.device,
                "weights": os.path.abspath(self.weights), "registry": dict(weights.REGISTRY),
                "options": self.options}


class RayExecutor:
    """One run's tasks on one Ray cluster."""

    def __init__(self, spec: ExecutorSpec, settings: RunSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.pending: dict[Any, Case] = {}  # ObjectRef -> case
        self._tracker: Any = None
        self._connected = False

    def connect(self) -> None:
        """Join the cluster (``auto``: $RAY_ADDRESS, else start a local one). TalkbenchError when it fails."""
        try:
            import ray
        except ImportError:
            raise TalkbenchError(f"--talkbench-executor {self.spec.kind}: Ray is not installed; "
                                 "pip install 'talkbench[ray]' (on the controller and every node)") from None

        address = self.spec.ray_address()
        try:
            if address is None:  # "local": a new cluster, not the last one started on this machine
                ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... by version
            raise TalkbenchError(f"--talkbench-executor {self.spec.kind}={self.spec.address}: cannot "
                                 f"{'start a local Ray cluster' if address is None else f'join {address}'}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self._connected = True
        self._tracker = ray.remote(num_cpus=0)(Tracker).remote()

    def submit(self, cases: Sequence[Case]) -> None:
        """One task per case, each asking for the resources of its pipeline."""
        import ray

        if not self._connected:
            self.connect()
        gpus = ray.cluster_resources().get("GPU", 0.0)
        task = ray.remote(run_case)
        cache = os.fspath(self.settings.cache.resolve())
        run = self.settings.task_run()
        for case in cases:
            options = task_options(case, self.settings.metrics, gpus, self.settings.device)
            ref = task.options(name=f"talkbench {case.id}", max_retries=MAX_RETRIES, **options).remote(
                absolute(case), self.settings.metrics, cache, run, self._tracker)
            self.pending[ref] = case

    def results(self, stop: threading.Event | None = None, poll: float = 0.2) -> Iterator[tuple[Case, dict[str, Any]]]:
        """(case, record) as each task ends, failed ones included, until none is left or ``stop`` is set."""
        import ray

        while self.pending and not (stop and stop.is_set()):
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=poll)
            for ref in ready:
                case = self.pending.pop(ref)
                yield case, self._record(ref, case)

    def _record(self, ref: Any, case: Case) -> dict[str, Any]:
        import ray

        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            return self._failed(case, exc)
        record = result["record"]
        if result["moments"]:
            self.keep_moments(record, result["moments"])
        return record

    def _failed(self, case: Case, exc: Exception) -> dict[str, Any]:
        """A record whose error says where the case ran, how often, and why it failed."""
        import ray

        from ..engine import case_record

        try:
            nodes = ray.get(self._tracker.where.remote(case.id), timeout=10)
        except ray.exceptions.RayError:
            nodes = []
        where = (f"on {' then '.join(nodes)}" if nodes else "before it started on any node")
        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = exc.cause if exc.cause is not None else exc
            reason = f"{type(cause).__name__}: {str(cause).splitlines()[-1] if str(cause) else ''}"
        elif isinstance(exc, ray.exceptions.TaskCancelledError):
            reason = "cancelled (the run was interrupted)"
        elif isinstance(exc, ray.exceptions.WorkerCrashedError):
            reason = "its Ray worker process died (killed, out of memory or crashed)"
        else:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        tries = f"{len(nodes)} attempt(s), max_retries={MAX_RETRIES}"
        return {**case_record(case, f"Ray task failed {where} ({tries}): {reason}"),
                "execution": {"executor": "ray", "nodes": nodes}}

    def keep_moments(self, record: dict[str, Any], moments: Mapping[str, bytes]) -> None:
        """Write the task's FID and FVD moments files into the controller's moments folder and point the record there
        (the node's own files may be on a disk the controller cannot see)."""
        directory = self.settings.moments_dir
        if directory is None:
            return
        for paths in moments_paths(record):
            for side, path in paths.items():
                if path in moments:
                    dest = directory / Path(path).name
                    with atomic_path(dest) as tmp:
                        tmp.write_bytes(moments[path])
                    paths[side] = str(dest)

    def cancel(self) -> list[Case]:
        """Interrupt the running tasks and drop the queued ones; the cases that had not finished."""
        import ray

        cases = list(self.pending.values())
        for ref in self.pending:
            ray.cancel(ref, force=False, recursive=True)  # KeyboardInterrupt in the task: commands are killed
        self.pending.clear()
        return cases

    def close(self) -> None:
        """Leave the cluster (a local cluster started by connect() stops)."""
        import ray

        if self._connected:
            ray.shutdown()
            self._connected = False


def evaluate_cases(spec: ExecutorSpec, cases: Sequence[Case], settings: RunSettings) -> list[dict[str, Any]]:
    """``talkbench evaluate --executor``: every case as a task, the records in the cases' order. Ctrl-C
    cancels the tasks."""
    executor = RayExecutor(spec, settings)
    try:
        executor.submit(cases)
        done = {case.id: record for case, record in executor.results()}
    finally:
        executor.cancel()
        executor.close()
    return [done[case.id] for case in cases]
