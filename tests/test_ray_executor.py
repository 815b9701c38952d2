"""Cases on a Ray cluster of two worker nodes started here (ray.cluster_utils): both nodes run cases, the
results equal a local run's, a killed worker's case is retried once and then fails naming its node, two
nodes filling one cache entry at once (generated output, calibration video, FID statistics, face detections,
the demo dataset) leave it correct, a node that cannot see a file is refused, and a case that runs a command
gets a GPU where a node has one.

Skipped where Ray cannot start. Workers of one pytest-xdist run take turns (a file lock): one cluster at a time.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from pinned import pin
from test_generate_plugin import TINY, speech
from test_plugin import BENCH, run
from videos import SPEAKERS_AB, moving_frames, write_video

HERE = Path(__file__).resolve().parent
DUB = f"{TINY} generate --face {{reference}} --audio {{audio}} --outfile {{output}}"
KILLER = (f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'killer_pipeline.py'))} attempts {{speaker}} -- "
          f"generate --face {{reference}} --audio {{audio}} --outfile {{output}}")
MANIFEST = """
[dataset]
name = "tinyray"
""" + SPEAKERS_AB + """[pipelines.Tiny]
mode = "dubbing"
command = {command}
env = {{ TINY_RUNS = "runs.txt", KILLS_a = "1", KILLS_b = "2" }}
cwd = ".."
"""
FLAGS = ("--talkbench-metrics", "psnr,ssim", "-p", "no:randomly")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A head node without CPUs (the driver's) and two worker nodes of one CPU each, resources node_a/node_b."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    with FileLock(str(tmp_path_factory.getbasetemp().parent / "talkbench-ray-cluster.lock")):
        try:
            nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
            for name in ("node_a", "node_b"):
                nodes.add_node(num_cpus=1, resources={name: 1})
            nodes.wait_for_nodes()
        except Exception as exc:  # no shared memory, ports refused, ...: Ray cannot start here
            pytest.skip(f"Ray cannot start a local cluster here: {type(exc).__name__}: {exc}")
        try:
            yield nodes
        finally:
            if ray.is_initialized():
                ray.shutdown()
            nodes.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raymedia")
    (root / "ref").mkdir()
    write_video(root / "ref" / "a.mp4", moving_frames(25, 64, 48, seed=1), 25, audio=speech(1.0))
    write_video(root / "ref" / "b.mp4", moving_frames(25, 48, 64, seed=2), 25, audio=speech(1.0))
    return root


def project(pytester: pytest.Pytester, media: Path, command: str) -> pytest.Pytester:
    shutil.copytree(media, pytester.path / "data")
    (pytester.path / "data" / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(command)))
    (pytester.path / "benchmarks").mkdir()
    (pytester.path / "benchmarks" / "test_fidelity.py").write_text(BENCH)
    (pytester.path / "attempts").mkdir()
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def results(pytester: pytest.Pytester, report: str) -> dict[str, dict]:
    return {r["case"]: r for r in json.loads((pytester.path / report / "results.json").read_text())["results"]}


def values(records: dict[str, dict]) -> dict[tuple[str, str], float]:
    return {(case, m): v["value"] for case, r in records.items() for m, v in r["metrics"].items()}


def test_cases_run_on_both_nodes_once_and_match_a_local_run(cluster, pytester: pytest.Pytester, media: Path) -> None:
    project(pytester, media, DUB)
    calibrations = ("--talkbench-calibrations", "reference,static")
    run(pytester, *FLAGS, *calibrations, "--talkbench-report", "local", "--benchmark-json", "local.json",
        "-n", "0").assert_outcomes(passed=12)
    runs = (pytester.path / "runs.txt").read_text().splitlines()
    result = run(pytester, *FLAGS, *calibrations, "--talkbench-report", "ray", "--benchmark-json", "ray.json",
                 "--talkbench-cache", str(pytester.path / "cache-ray"), "-n", "2",
                 "--talkbench-executor", f"ray={cluster.address}")
    result.assert_outcomes(passed=12)
    assert len((pytester.path / "runs.txt").read_text().splitlines()) == len(runs) + 2  # each case once
    local, remote = results(pytester, "local"), results(pytester, "ray")
    assert values(remote) == values(local) and len(values(local)) == 12
    nodes = {r["execution"]["node"].rsplit("node ", 1)[1].rstrip(")") for r in remote.values()}
    workers = {n.node_id[:8] for n in cluster.worker_nodes}
    assert nodes == workers  # both worker nodes ran cases, the CPU-less head none
    assert all(r["execution"]["attempt"] == 1 for r in remote.values())

    def benchmarks(name: str) -> set[str]:
        return {b["fullname"] for b in json.loads((pytester.path / name).read_text())["benchmarks"]}

    assert benchmarks("ray.json") == benchmarks("local.json") and benchmarks("local.json")


def test_a_killed_worker_is_retried_once_then_its_case_fails_naming_the_node(
        cluster, pytester: pytest.Pytester, media: Path) -> None:
    project(pytester, media, KILLER)
    result = run(pytester, *FLAGS, "--talkbench-calibrations", "none", "--talkbench-report", "rep",
                 "--talkbench-executor", f"ray={cluster.address}")
    result.assert_outcomes(passed=2, failed=2)  # a-Tiny: killed once, passes; b-Tiny: killed twice, fails
    assert len((pytester.path / "attempts" / "a.txt").read_text().splitlines()) == 2
    assert len((pytester.path / "attempts" / "b.txt").read_text().splitlines()) == 2
    out = result.stdout.str()
    workers = "|".join(n.node_id[:8] for n in cluster.worker_nodes)
    failure = (rf".*b-Tiny: Ray task failed on .*node ({workers})\) then .*node ({workers})\) "
               r"\(2 attempt\(s\), max_retries=1\): its Ray worker process died.*")
    result.stdout.re_match_lines([failure])
    assert "Traceback" not in out and "INTERNALERROR" not in out
    records = results(pytester, "rep")
    assert records["a-Tiny"]["execution"]["attempt"] == 2 and records["a-Tiny"]["metrics"]["psnr"]["value"] > 10


@pytest.fixture
def executor(cluster, tmp_path: Path):
    import ray

    from talkbench_plugin.execution.ray_executor import RayExecutor, RunSettings
    from talkbench_plugin.execution.spec import ExecutorSpec
    from talkbench_plugin.run_options import OPTIONS

    defaults = {name.replace("-", "_"): option["default"] for name, option in OPTIONS.items()}
    settings = RunSettings(["psnr", "ssim"], tmp_path / "cache", "ffmpeg", 32, "auto", str(tmp_path / "w"),
                           defaults, tmp_path / "moments")
    runner = RayExecutor(ExecutorSpec("ray", cluster.address), settings)
    runner.connect()
    yield runner
    runner.close()
    assert not ray.is_initialized()


def on(case, node: str):
    import dataclasses

    return dataclasses.replace(case, pipeline=dataclasses.replace(case.pipeline, resources=((node, 1.0),)))


def speaker_a_cases(media: Path, tmp_path: Path, env: str = "") -> list:
    """Speaker a's cases of a copy of ``media``: a-Tiny (a pipeline command logging to runs.txt, ``env``
    added to its environment) and a-static (a calibration)."""
    from talkbench_plugin.datasets import add_calibration
    from talkbench_plugin.manifest import load_manifest

    root = tmp_path / "data"
    shutil.copytree(media, root)
    (root / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(DUB)).replace(
        'TINY_RUNS = "runs.txt"', f'TINY_RUNS = "{tmp_path / "runs.txt"}"{env}'))
    dataset = load_manifest(root / "talkbench.toml", root)
    add_calibration(dataset, ["static"])
    return [c for c in dataset.cases() if c.speaker.id == "a"]


def test_two_nodes_filling_one_cache_entry_at_once_agree(executor, media: Path, tmp_path: Path) -> None:
    cases = speaker_a_cases(media, tmp_path, ', TINY_SLEEP = "0.5"')  # a-Tiny (generated output), a-static
    executor.submit([on(c, node) for c in cases for node in ("node_a", "node_b")])
    records: dict[str, list[dict]] = {}
    for case, record in executor.results():
        assert record["error"] is None, record["error"]
        records.setdefault(case.id, []).append(record)
    assert (tmp_path / "runs.txt").read_text().count("generate") == 1  # made once, reused by the other node
    for pair in records.values():
        assert len(pair) == 2 and pair[0]["execution"]["node"] != pair[1]["execution"]["node"]
        assert pair[0]["inputs"]["generated"] == pair[1]["inputs"]["generated"]
        assert values({"x": pair[0]}) == values({"x": pair[1]})
    assert sorted(r["generation"]["cached"] for r in records["a-Tiny"]) == [False, True]
    assert no_temporary_files(tmp_path / "cache") == []  # no half-written temporary file stayed behind


def test_a_node_that_cannot_see_a_dataset_file_is_refused(executor, media: Path, tmp_path: Path) -> None:
    from talkbench_plugin.datasets import add_calibration
    from talkbench_plugin.manifest import load_manifest

    root = tmp_path / "data"
    shutil.copytree(media, root)
    (root / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(DUB)))
    dataset = load_manifest(root / "talkbench.toml", root)
    add_calibration(dataset, ["static"])
    (root / "ref" / "b.mp4").unlink()  # as on a node that does not mount the dataset
    executor.submit([c for c in dataset.cases() if c.id == "b-static"])
    [(_, record)] = list(executor.results())
    assert record["error"].startswith(f"Ray node {record['execution']['node']} cannot see the reference "
                                      f"{root / 'ref' / 'b.mp4'}: run on a cluster whose nodes share")
    assert record["metrics"] == {} and record["speaker"] == "b"


def test_cancel_interrupts_a_running_case_and_kills_its_command(executor, media: Path, tmp_path: Path) -> None:
    """What Ctrl-C does to a run on Ray (ExecutorRun.pytest_sessionfinish): the task stops, its command dies."""
    import time

    from talkbench_plugin.manifest import load_manifest

    root = tmp_path / "data"
    shutil.copytree(media, root)
    (root / "attempts").mkdir()
    (root / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(KILLER)).replace(
        'cwd = ".."', 'cwd = "."').replace('KILLS_a = "1"', 'KILLS_a = "0", TINY_SLEEP = "60"'))
    dataset = load_manifest(root / "talkbench.toml", root)
    executor.submit([c for c in dataset.cases() if c.id == "a-Tiny"])
    started = root / "attempts" / "a.txt"
    deadline = time.monotonic() + 30
    while not started.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(started.read_text().split()[1])  # the command (killer_pipeline.py, then tiny_pipeline.py, sleeping)
    assert [c.id for c in executor.cancel()] == ["a-Tiny"]
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert list(executor.results()) == []


@pytest.mark.slow
def test_fid_moments_come_back_with_the_record_and_pool_on_the_controller(
        executor, media: Path, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task's generated-side FID moments live in the node's scratch folder, gone when the task returns: they
    travel back with the record, land in the controller's moments folder, and the group FID pools them."""

    from talkbench_plugin.datasets import add_calibration
    from talkbench_plugin.execution.task import absolute, run_case
    from talkbench_plugin.fid.groups import add_pooled_fid
    from talkbench_plugin.manifest import load_manifest

    pin(monkeypatch, "inception", weights_file)
    root = tmp_path / "data"
    shutil.copytree(media, root)
    (root / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(DUB)))
    dataset = load_manifest(root / "talkbench.toml", root)
    add_calibration(dataset, ["degraded"])
    run = {**executor.settings.task_run(), "weights": str(weights_file.parent),
           "options": {**executor.settings.options, "fid_sampling": "stride=5"}}
    records = []
    for case in [c for c in dataset.cases() if c.pipeline.name == "degraded"]:  # the task's code, in this driver
        result = run_case(absolute(case), ["fid"], str(tmp_path / "cache"), run, None)
        scratch = [Path(p) for p in result["moments"] if "talkbench-moments-" in p]
        assert len(scratch) == 1 and not scratch[0].exists()  # the node's file is gone, its bytes came back
        executor.keep_moments(result["record"], result["moments"])
        records.append({**result["record"], "language": "en"})  # one group: its FID pools both cases
    for record in records:
        moments = record["metrics"]["fid"]["details"]["moments"]
        assert all(Path(p).parent == tmp_path / "moments" and Path(p).is_file() for p in moments.values())
    add_pooled_fid(records)
    pooled = records[0]["fid_pooled"]
    assert pooled.get("error") is None and pooled["cases"] == 2 and pooled["value"] > 0
    assert pooled["frames"]["generated"] == sum(r["metrics"]["fid"]["details"]["frames"]["generated"]
                                                for r in records)


@pytest.fixture
def races():
    """tests/ray_races.py, shipped to the Ray workers by value (they cannot import the tests folder)."""
    import ray
    import ray_races

    ray.cloudpickle.register_pickle_by_value(ray_races)
    yield ray_races
    ray.cloudpickle.unregister_pickle_by_value(ray_races)


def no_temporary_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob(".*") if not p.name.endswith(".lock")]


def test_two_nodes_filling_one_fid_statistics_and_face_detections_entry_at_once_agree(
        executor, races, tmp_path: Path, weights_file: Path, sync_weights: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tasks of one case, on node_a and node_b, through the executor with FID and lip sync: both miss the
    reference's FID statistics and the generated video's face detections, compute them, and meet right before
    storing them. The FID entry is stored once (under its lock, the other node waits and reads it), the two
    detections files are written side by side and renamed over one another; both nodes agree, the entries
    load to what they computed, and a later task uses them instead of computing again."""

    from talkbench_plugin import weights
    from talkbench_plugin.execution import ray_executor
    from talkbench_plugin.execution.task import run_case
    from talkbench_plugin.fid import cache as fid_cache
    from talkbench_plugin.fid.frechet import fid
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker

    folder = tmp_path / "weights"  # the run's one weights folder: random Inception, SyncNet and S3FD
    folder.mkdir()
    for path in (weights_file, *(sync_weights / weights.spec_for(k).filename for k in ("syncnet", "s3fd"))):
        (folder / path.name).symlink_to(path)
    pin(monkeypatch, "inception", weights_file)  # in this process only: the tasks get the controller's registry
    frames = 56  # a face track needs more than 50 detections
    reference, generated = (write_video(tmp_path / f"{name}.mp4", moving_frames(frames, 160, 176, seed=seed), 25,
                                        audio=speech(frames / 25)) for name, seed in (("ref", 3), ("gen", 4)))
    case = Case(Speaker("a", "en", reference), Pipeline("Gen", "one-shot"), generated, Segment())
    settings = executor.settings
    settings.metrics, settings.weights = ["fid", "lse_c", "lse_d", "av_offset"], str(folder)
    settings.options = {**settings.options, "fid_sampling": "count=3"}
    race = tmp_path / "race"
    monkeypatch.setattr(ray_executor, "run_case", races.racing_case(race, run_case))
    executor.submit([on(case, "node_a"), on(case, "node_b")])
    pair = [record for _, record in executor.results()]
    monkeypatch.setattr(ray_executor, "run_case", run_case)
    executor.submit([on(case, "node_a")])
    [(_, later)] = list(executor.results())

    for record in (*pair, later):
        assert record["error"] is None and all(m.get("error") is None for m in record["metrics"].values()), record
    assert pair[0]["execution"]["node"] != pair[1]["execution"]["node"]
    assert values({"x": pair[0]}) == values({"x": pair[1]}) == values({"x": later})
    assert len({json.dumps(r["metrics"]["lse_c"]["per_frame"]) for r in (*pair, later)}) == 1

    # FID statistics: both computed them, met, one stored them while the other waited at the lock and read them
    details = [r["metrics"]["fid"]["details"] for r in (*pair, later)]
    assert [d["reference_cached"] for d in details] == [False, False, True]
    met = races.events(race, "fid")
    [stored] = races.events(race, "fid-write")
    assert sorted(e["cached"] for e in met) == [False, True]
    assert abs(met[0]["met"] - met[1]["met"]) < 0.5  # at the entry at the same moment
    reader = next(e for e in met if e["cached"])
    assert reader["met"] < stored["done"] <= reader["done"]  # came while the other wrote, read it once written
    entry = Path(stored["path"])
    assert [p.name for p in entry.parent.glob("fid-*.npz")] == [entry.name]
    for record in (*pair, later):
        moments = record["metrics"]["fid"]["details"]["moments"]
        assert Path(moments["reference"]).read_bytes() == entry.read_bytes()  # the controller's copy of the entry
        mine = fid(fid_cache.read(moments["generated"]).compute(), fid_cache.read(entry).compute())
        assert mine.value == pytest.approx(record["metrics"]["fid"]["value"], rel=1e-9) and mine.value > 0

    # face detections: both detected, wrote their temporary files side by side, renamed one over the other
    written = races.events(race, "faces")
    assert len(written) == 2 and written[0]["tmp"] != written[1]["tmp"]
    assert all(sorted(e["seen"]) == sorted([written[0]["tmp"], written[1]["tmp"]]) for e in written)
    assert abs(written[0]["met"] - written[1]["met"]) < 0.5
    assert written[0]["boxes"] == written[1]["boxes"] and len(written[0]["boxes"]) == frames
    assert len(races.events(race, "faces-renamed")) == 2  # both renames went through, one over the other
    sources = [r["metrics"]["lse_c"]["details"]["detections"] for r in (*pair, later)]
    assert [s["source"] for s in sources] == ["detected", "detected", "cache"]  # S3FD is not patched for the last
    [faces] = list((tmp_path / "cache" / "faces").glob("faces-*.npz"))
    assert {s["file"] for s in sources} == {str(faces)}
    with np.load(faces) as data:
        assert data["boxes"].tolist() == written[0]["boxes"]
    assert no_temporary_files(tmp_path / "cache") == []


def test_two_nodes_building_the_demo_dataset_at_once_agree(executor, races, tmp_path: Path) -> None:
    """Two tasks on node_a and node_b ask the shared cache for the demo dataset at the same moment
    (datasets.demo_manifest, as a controller does): one builds it under the lock, the other waits and reads
    it, both see the same files, and a later reader uses them instead of building again."""
    import hashlib

    import ray

    from talkbench_plugin import demo
    from talkbench_plugin.datasets import demo_manifest
    from talkbench_plugin.manifest import load_manifest
    from talkbench_plugin.media.video import iter_frames

    cache, race = tmp_path / "cache", tmp_path / "race"
    task = ray.remote(races.racing_demo)
    pair = ray.get([task.options(num_cpus=1, resources={node: 1}).remote(race, cache)
                    for node in ("node_a", "node_b")])
    assert pair[0]["node"] != pair[1]["node"]
    [built] = races.events(race, "demo-build")  # built once
    assert abs(pair[0]["met"] - pair[1]["met"]) < 0.5
    assert max(p["met"] for p in pair) < built["done"] <= min(p["done"] for p in pair)  # one waited for the other
    assert pair[0]["manifest"] == pair[1]["manifest"] and pair[0]["files"] == pair[1]["files"]
    manifest = Path(pair[0]["manifest"])
    before = {p: p.stat().st_mtime_ns for p in manifest.parent.rglob("*")}
    assert demo_manifest(cache) == manifest  # a later reader: nothing is built again
    assert {p: p.stat().st_mtime_ns for p in manifest.parent.rglob("*")} == before
    files = {str(p.relative_to(manifest.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in manifest.parent.rglob("*") if p.is_file()}
    assert files == pair[0]["files"]
    decoded = {s.id: sum(1 for _ in iter_frames(s.reference)) for s in load_manifest(manifest).speakers.values()}
    assert decoded == {s.id: round(0.6 * s.fps) for s in demo.SPEAKERS}  # intact: the short demo's every frame
    assert len(files) == 3 * len(demo.SPEAKERS) + 1  # image, audio, video a speaker; the manifest
    assert no_temporary_files(cache) == []


def test_a_case_that_runs_a_command_gets_a_gpu_where_a_node_has_cuda(
        cluster, executor, media: Path, tmp_path: Path) -> None:
    """Ray counts a node's CUDA devices as its GPUs: a node that reports one joins (declared here, this machine
    has none). The case that runs a pipeline command asks for a GPU, runs there and its command sees the
    device Ray gave the task; a PSNR/SSIM calibration case asks for a CPU only and gets no GPU."""
    import time

    import ray

    cases = speaker_a_cases(media, tmp_path)  # a-Tiny (a command), a-static
    gpu = cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        cluster.wait_for_nodes()
        executor.submit(cases)
        records = {case.id: record for case, record in executor.results()}
    finally:
        cluster.remove_node(gpu)
        deadline = time.monotonic() + 30
        while ray.cluster_resources().get("GPU") and time.monotonic() < deadline:  # gone for the next tests
            time.sleep(0.1)
    assert all(r["error"] is None for r in records.values()), records
    tiny, static = records["a-Tiny"]["execution"], records["a-static"]["execution"]
    assert tiny["device"] == "cuda:0" and tiny["node"].endswith(f"node {gpu.node_id[:8]})")
    assert (tmp_path / "runs.txt").read_text().splitlines() == ["generate '0'"]  # CUDA_VISIBLE_DEVICES=0
    assert static["device"] == "cpu"  # under the run's device auto, a task holding a GPU would use cuda:0
