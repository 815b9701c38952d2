"""Command pipelines through pytest (pytester): `pytest benchmarks` generates, reuses, regenerates, reports.

The pipelines run tests/tiny_pipeline.py; TINY_RUNS counts its runs (one line each, with the
CUDA_VISIBLE_DEVICES it saw).
"""

import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_plugin import BENCH, run
from videos import SPEAKERS_AB, moving_frames, write_video

TINY = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve().parent / 'tiny_pipeline.py'))}"
DUB = f"{TINY} generate --face {{reference}} --audio {{audio}} --outfile {{output}}"
FLAGS = ("--talkbench-calibrations", "none", "--talkbench-metrics", "psnr,ssim")

MANIFEST = """
[dataset]
name = "tinygen"
""" + SPEAKERS_AB + """[pipelines.Tiny]
mode = "dubbing"
command = {dub}
env = {{ TINY_RUNS = "runs.txt" }}
cwd = ".."
[pipelines.PS]
mode = "person-specific"
speakers = ["a"]
train = {{ start = 0, end = 1 }}
evaluate = {{ start = 1 }}
train_command = {train}
command = {ps}
env = {{ TINY_RUNS = "runs.txt" }}
cwd = ".."
"""


def manifest(dub: str = DUB, extra: str = "") -> str:
    train = f"{TINY} train --reference {{reference}} --start {{train_start}} --end {{train_end}} --workdir {{workdir}}"
    ps = f"{TINY} generate --model {{train_dir}} --audio {{audio}} --outfile {{output}}"
    return MANIFEST.format(dub=json.dumps(dub), train=json.dumps(train), ps=json.dumps(ps)) + extra


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("genmedia")
    (root / "ref").mkdir()
    write_video(root / "ref" / "a.mp4", moving_frames(50, 64, 48, seed=1), 25, audio=speech(2.0))
    write_video(root / "ref" / "b.mp4", moving_frames(50, 64, 48, seed=2), 25, audio=speech(2.0))
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, media: Path) -> pytest.Pytester:
    shutil.copytree(media, pytester.path / "data")
    (pytester.path / "data" / "talkbench.toml").write_text(manifest())
    (pytester.path / "benchmarks").mkdir()
    (pytester.path / "benchmarks" / "test_fidelity.py").write_text(BENCH)
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def runs(project: pytest.Pytester) -> list[str]:
    path = project.path / "runs.txt"
    return path.read_text().splitlines() if path.is_file() else []


def results(project: pytest.Pytester, report: str) -> dict[str, dict]:
    return {r["case"]: r for r in json.loads((project.path / report / "results.json").read_text())["results"]}


def test_generated_once_reused_regenerated_and_reported(project: pytest.Pytester) -> None:
    first = run(project, *FLAGS, "--talkbench-report", "rep1", "--benchmark-json", "b1.json")
    first.assert_outcomes(passed=6)
    assert sorted(runs(project)) == ["generate ''"] * 3 + ["train ''"]
    records = results(project, "rep1")
    assert set(records) == {"a-Tiny", "b-Tiny", "a-PS"}
    for record in records.values():
        gen = record["generation"]
        assert gen["cached"] is False and gen["rtf"] == pytest.approx(gen["wall_s"] / gen["duration_s"])
        assert Path(gen["output"]).is_file() and Path(gen["output"]).is_relative_to(project.path / "cache" / "outputs")
    assert records["a-PS"]["generation"]["train"]["cached"] is False
    assert records["a-PS"]["segment"]["start"] == 1.0 and records["a-PS"]["alignment"]["compared"] == 25
    header = (project.path / "rep1" / "per_video.csv").read_text().splitlines()[0]
    assert header.endswith("rtf,gen_rtf,gen_fps,error")
    first.stdout.re_match_lines([r".*a\s+en\s+Tiny\s+[\d.]+\s+[\d.]+\s+50\s+.*\s[\d.]+\s+[\d.]+$"])
    bench = json.loads((project.path / "b1.json").read_text())["benchmarks"]
    generated = {b["name"]: b for b in bench if b["group"] == "generate"}
    assert set(generated) == {"generate[a-Tiny]", "generate[b-Tiny]", "generate[a-PS]"}
    tiny = generated["generate[a-Tiny]"]
    assert tiny["fullname"] == "benchmarks/test_fidelity.py::generate[a-Tiny]"
    assert tiny["stats"]["min"] == records["a-Tiny"]["generation"]["wall_s"] > 0
    assert tiny["extra_info"]["rtf"] == records["a-Tiny"]["generation"]["rtf"]
    assert tiny["extra_info"]["max_rss_mib"] > 20 and tiny["extra_info"]["cached"] is False
    assert generated["generate[a-PS]"]["extra_info"]["train_s"] > 0

    run(project, *FLAGS, "--talkbench-report", "rep2").assert_outcomes(passed=6)
    assert len(runs(project)) == 4  # all reused
    again = results(project, "rep2")
    assert all(r["generation"]["cached"] for r in again.values())
    assert again["a-Tiny"]["generation"]["wall_s"] == records["a-Tiny"]["generation"]["wall_s"]

    write_video(project.path / "data" / "ref" / "b.mp4", moving_frames(50, 64, 48, seed=5), 25, audio=speech(2.0))
    run(project, *FLAGS, "--talkbench-report", "rep3").assert_outcomes(passed=6)
    assert len(runs(project)) == 5  # only b-Tiny: PS is trained and evaluated on a
    assert {c for c, r in results(project, "rep3").items() if not r["generation"]["cached"]} == {"b-Tiny"}

    reordered = f"{TINY} generate --audio {{audio}} --face {{reference}} --outfile {{output}}"
    (project.path / "data" / "talkbench.toml").write_text(manifest(reordered))
    run(project, *FLAGS, "--talkbench-report", "rep4").assert_outcomes(passed=6)
    assert len(runs(project)) == 7
    assert {c for c, r in results(project, "rep4").items() if not r["generation"]["cached"]} == {"a-Tiny", "b-Tiny"}


def test_failing_command_fails_its_cases_only(project: pytest.Pytester) -> None:
    broken = f"""
[pipelines.Broken]
mode = "dubbing"
command = {json.dumps(DUB)}
env = {{ TINY_FAIL = "CUDA out of memory" }}
"""
    (project.path / "data" / "talkbench.toml").write_text(manifest(extra=broken))
    result = run(project, *FLAGS, "-n", "2")
    result.assert_outcomes(passed=6, failed=4)
    out = result.stdout.str()
    assert "a-Broken: Broken for a: `" in out and "exited with status 3" in out
    assert "error: CUDA out of memory" in out and "last lines:" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_one_cuda_device_per_worker_simulated(project: pytest.Pytester) -> None:
    """Two fake CUDA devices: each worker's commands see only its own, recorded as the case's device."""
    (project.path / "conftest.py").write_text("import talkbench_plugin.devices as d\nd.cuda_device_count = lambda: 2\n")
    second = f"\n[pipelines.Tiny2]\nmode = \"dubbing\"\ncommand = {json.dumps(DUB)}\n" \
             "env = { TINY_RUNS = \"runs.txt\" }\ncwd = \"..\"\n"
    (project.path / "data" / "talkbench.toml").write_text(manifest(extra=second))
    run(project, *FLAGS, "-n", "2", "--talkbench-report", "rep").assert_outcomes(passed=10)
    devices = [r["generation"]["device"] for r in results(project, "rep").values()]
    assert set(devices) == {"cuda:0", "cuda:1"}
    seen = sorted(line.split()[1] for line in runs(project) if line.startswith("generate"))
    assert seen == sorted(f"'{d[-1]}'" for d in devices)

    result = run(project, *FLAGS, "--talkbench-device", "cuda:2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--talkbench-device 'cuda:2': this machine has 2 CUDA device(s)*"])
    (project.path / "runs.txt").unlink()
    shutil.rmtree(project.path / "cache" / "outputs")
    run(project, *FLAGS, "--talkbench-device", "cpu", "--talkbench-report", "cpu").assert_outcomes(passed=10)
    assert {r["generation"]["device"] for r in results(project, "cpu").values()} == {"cpu"}
    assert {line.split()[1] for line in runs(project) if line.startswith("generate")} == {"''"}
