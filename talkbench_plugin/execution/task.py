"""What a Ray task does on its node: check that the node sees the case's files, evaluate the case there, and
send back the record with the FID and FVD moments files it names (the controller pools a group's FID from them).

Runs inside Ray workers; ``ray`` is imported in the functions that use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..manifest import CALIBRATION, Case
from ..metrics import FIDELITY
from ..pooled import POOLED


class Tracker:
    """A Ray actor (no CPU) that remembers on which node each attempt of a case started, so that a task
    whose worker died can still be reported with its node."""

    def __init__(self) -> None:
        self.nodes: dict[str, list[str]] = {}

    def started(self, case_id: str, node: str) -> int:
        self.nodes.setdefault(case_id, []).append(node)
        return len(self.nodes[case_id])

    def where(self, case_id: str) -> list[str]:
        return self.nodes.get(case_id, [])


def node_name() -> str:
    """This Ray node as people find it: host name, IP address and the start of its node id."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return f"{socket.gethostname()} ({ray.util.get_node_ip_address()}, node {node_id[:8]})"


def absolute(case: Case) -> Case:
    """The case with absolute paths: a Ray worker's working directory is not the controller's."""
    speaker = case.speaker
    speaker = dataclasses.replace(speaker, reference=speaker.reference.absolute(),
                                  audio=speaker.audio and speaker.audio.absolute(),
                                  image=speaker.image and speaker.image.absolute())
    return dataclasses.replace(case, speaker=speaker, generated=case.generated and case.generated.absolute())


def unseen_path(case: Case) -> str | None:
    """The first of the case's input files (or command folder) this node cannot see, named, or None."""
    files = {"reference": case.speaker.reference, "audio": case.speaker.audio, "image": case.speaker.image}
    if case.pipeline.command is None and case.pipeline.mode != CALIBRATION:
        files["generated video"] = case.generated
    for what, path in files.items():
        if path is not None and not path.is_file():
            return f"{what} {path}"
    for command in (case.pipeline.command, case.pipeline.train_command):
        if command is not None and not command.cwd.is_dir():
            return f"command folder (cwd) {command.cwd}"
    return None


def run_case(case: Case, metrics: Sequence[str], cache: str, run: Mapping[str, Any], tracker: Any) -> dict[str, Any]:
    """The Ray task: ``{"record": ..., "moments": {path: bytes}}`` for one case.

    ``run`` holds the run's settings: convention, batch, device choice, weights folder, the controller's
    weights registry and the family options' values by name (run_options.OPTIONS).
    """
    import ray

    from ..engine import case_record, evaluate_case
    from ..run_options import family_options

    node = node_name()
    attempt = ray.get(tracker.started.remote(case.id, node)) if tracker is not None else 1
    execution = {"executor": "ray", "node": node, "attempt": attempt}
    missing = unseen_path(case)
    if missing:
        record = case_record(case, f"Ray node {node} cannot see the {missing}: run on a cluster whose nodes "
                                   "share the dataset, cache and weights folders at the same paths")
        return {"record": {**record, "execution": execution}, "moments": {}}
    device = "cuda:0" if run["device"] != "cpu" and ray.get_gpu_ids() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES
    with tempfile.TemporaryDirectory(prefix="talkbench-moments-") as moments_dir, registry(run["registry"]):
        options = family_options(lambda name: run["options"][name], run["weights"], device, moments_dir)
        record = evaluate_case(case, metrics, Path(cache), convention=run["convention"], batch_size=run["batch"],
                               options=options, device=device)
        moments = {path: Path(path).read_bytes() for path in moments_files(record)}
    record["execution"] = {**execution, "device": device}
    return {"record": record, "moments": moments}


@contextlib.contextmanager
def registry(entries: Mapping[str, Any]) -> Iterator[None]:
    """The controller's weights registry in place of this worker's for the task (a worker runs many tasks)."""
    from .. import weights

    own = dict(weights.REGISTRY)
    weights.REGISTRY.clear()
    weights.REGISTRY.update(entries)
    try:
        yield
    finally:
        weights.REGISTRY.clear()
        weights.REGISTRY.update(own)


def moments_paths(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``{side: path}`` moments entries of the record's pooled metrics (FID, FVD), each a live dict."""
    metrics = record.get("metrics", {})
    return [metrics[name]["details"]["moments"] for name in POOLED
            if (metrics.get(name) or {}).get("details", {}).get("moments")]


def moments_files(record: Mapping[str, Any]) -> list[str]:
    """The moments files a record names (generated and reference side of FID and FVD)."""
    return [path for paths in moments_paths(record) for path in paths.values() if path]


def task_options(case: Case, metrics: Sequence[str], cluster_gpus: float, device: str = "auto") -> dict[str, Any]:
    """Ray resources for the case's task: one GPU when the cluster has GPUs (Ray counts each node's CUDA
    devices), the run's ``device`` is not ``cpu`` and a pipeline command or a network metric runs, else one
    CPU; the pipeline's ``resources`` table in the manifest overrides."""
    network = any(m not in FIDELITY for m in metrics)  # SyncNet, Inception, pyiqa's models
    wants_gpu = cluster_gpus > 0 and device != "cpu" and (case.pipeline.command is not None or network)
    asked = {"num_cpus": 1.0, "num_gpus": 1.0 if wants_gpu else 0.0, **dict(case.pipeline.resources)}
    options = {key: asked.pop(key) for key in ("num_cpus", "num_gpus")}
    if "memory" in asked:
        options["memory"] = asked.pop("memory")
    if asked:
        options["resources"] = asked
    return options
