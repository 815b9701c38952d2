"""The executor's plain parts, without a cluster: --talkbench-shard auto, the executor option, task resources."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from talkbench_plugin.errors import ManifestError, TalkbenchError
from talkbench_plugin.execution.shard import shard_from_env
from talkbench_plugin.execution.spec import ExecutorSpec, parse_executor
from talkbench_plugin.execution.task import task_options
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker, load_manifest
from talkbench_plugin.plugin import parse_shard


def test_shard_auto_from_a_slurm_array_or_explicit_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}) == (1, 4)
    # sbatch --array=1-7:2 -> ids 1, 3, 5, 7: the third job is shard 3 of 4
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
             "SLURM_ARRAY_TASK_STEP": "2"}
    assert shard_from_env(slurm) == (3, 4)
    assert shard_from_env({"TALKBENCH_SHARD_INDEX": "2", "TALKBENCH_SHARD_COUNT": "3"}) == (3, 3)  # job-index 0-based
    with pytest.raises(TalkbenchError, match=r"shard 5 of 4, outside 1..4"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"})
    with pytest.raises(TalkbenchError, match=r"\$TALKBENCH_SHARD_COUNT is None, not a whole number"):
        shard_from_env({"TALKBENCH_SHARD_INDEX": "0"})
    for name in ("SLURM_ARRAY_TASK_ID", "TALKBENCH_SHARD_INDEX"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.UsageError, match=r"--talkbench-shard auto: no SLURM_ARRAY_TASK_ID"):
        parse_shard("auto")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    assert parse_shard("auto") == (2, 2)


def test_executor_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_executor(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert parse_executor("ray") == ExecutorSpec("ray", "auto") and parse_executor("ray").ray_address() == "head:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert parse_executor("ray=auto").ray_address() is None  # start a local cluster
    assert parse_executor("ray=ray://h:10001").ray_address() == "ray://h:10001"
    for bad in ("dask", "ray=", "ray = x"):
        with pytest.raises(TalkbenchError, match="expected ray, ray=auto or ray=ADDRESS"):
            parse_executor(bad)


def case(pipeline: Pipeline) -> Case:
    return Case(Speaker("a", "en", Path("a.mp4")), pipeline, None, Segment())


def test_task_resources_gpu_for_networks_and_commands_only_where_there_are_gpus(tmp_path: Path) -> None:
    calibration = case(Pipeline("static", "calibration"))
    assert task_options(calibration, ["psnr", "ssim"], 2) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert task_options(calibration, ["psnr", "fid"], 2) == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert task_options(calibration, ["psnr", "fid"], 0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert task_options(calibration, ["psnr", "fid"], 2, "cpu") == {"num_cpus": 1.0, "num_gpus": 0.0}  # device cpu
    (tmp_path / "ref.mp4").write_bytes(b"")
    (tmp_path / "m.toml").write_text(
        '[dataset]\nname = "r"\n[speakers.a]\nlanguage = "en"\nreference = "ref.mp4"\n'
        '[pipelines.Gen]\nmode = "one-shot"\ncommand = "gen {reference} {output}"\n'
        'resources = { num_cpus = 4, memory = 8e9, big_disk = 1 }\n')
    [generated] = load_manifest(tmp_path / "m.toml").cases()
    assert task_options(generated, ["psnr"], 1) == {"num_cpus": 4.0, "num_gpus": 1.0, "memory": 8e9,
                                                    "resources": {"big_disk": 1.0}}
    (tmp_path / "m.toml").write_text((tmp_path / "m.toml").read_text().replace("num_cpus = 4", "num_cpus = -1"))
    with pytest.raises(ManifestError, match=r"pipelines.Gen.resources.num_cpus: must be a number >= 0"):
        load_manifest(tmp_path / "m.toml")


def test_tasks_verify_weights_by_the_controllers_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file registered on the controller (weights.register: a mirror, a private file) travels with every task
    and replaces the worker's registry for that task only (a Ray worker runs many tasks)."""
    import pickle

    from talkbench_plugin import weights
    from talkbench_plugin.execution.ray_executor import RunSettings
    from talkbench_plugin.execution.task import registry

    mine = weights.WeightSpec("syncnet", "syncnet_v2.model", (), sha256="0" * 64)
    monkeypatch.setitem(weights.REGISTRY, "syncnet", mine)
    run = RunSettings(["lse_c"], tmp_path, "ffmpeg", 32, "auto", str(tmp_path), {}, None).task_run()
    run = pickle.loads(pickle.dumps(run))  # as Ray ships it
    monkeypatch.undo()  # a worker: the shipped registry only
    own = dict(weights.REGISTRY)
    assert weights.spec_for("syncnet") != mine
    with registry(run["registry"]):
        assert weights.spec_for("syncnet") == mine and set(weights.REGISTRY) == set(own)
    assert weights.REGISTRY == own


def test_a_run_without_the_executor_imports_no_ray() -> None:
    code = ("import sys, talkbench_plugin.plugin, talkbench_plugin.cli, talkbench_plugin.execution.pytest_run; "
            "print(json.dumps(sorted(m for m in ('ray', 'torch') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", f"import json; {code}"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_fid_and_fvd_moments_travel_back_and_land_in_the_controllers_folder(tmp_path: Path) -> None:
    """A task's moments files (FID's and FVD's, for group pooling) are read on the node and rewritten under the
    controller's moments folder, the record pointing there; a metric without moments is left alone."""
    from types import SimpleNamespace

    from talkbench_plugin.execution.ray_executor import RayExecutor
    from talkbench_plugin.execution.task import moments_files

    node = tmp_path / "node"
    node.mkdir()
    files = {name: node / f"{name}.npz" for name in ("fid-gen", "fid-ref", "fvd-gen", "fvd-ref")}
    for path in files.values():
        path.write_bytes(path.name.encode())
    record = {"metrics": {
        "fid": {"details": {"moments": {"generated": str(files["fid-gen"]), "reference": str(files["fid-ref"])}}},
        "fvd": {"details": {"moments": {"generated": str(files["fvd-gen"]), "reference": str(files["fvd-ref"])}}},
        "psnr": {"details": {}}, "lpips": {"value": None, "error": "no weights"}}}
    assert sorted(moments_files(record)) == sorted(map(str, files.values()))
    moments = {str(path): path.read_bytes() for path in files.values()}
    controller = tmp_path / "moments"
    controller.mkdir()
    RayExecutor.keep_moments(SimpleNamespace(settings=SimpleNamespace(moments_dir=controller)), record, moments)
    for name in ("fid", "fvd"):
        for side, path in record["metrics"][name]["details"]["moments"].items():
            assert Path(path).parent == controller and Path(path).read_bytes() == Path(path).name.encode(), side
