"""FID, pooled group FID and pyiqa metrics through pytest end to end (pytester, xdist, cached reference statistics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from videos import moving_frames, write_video

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
INCEPTION = "pt_inception-2015-12-05-6726825d.pth"

MANIFEST = """
[dataset]
name = "tinyq"
[speakers.a]
language = "en"
reference = "ref/a.mp4"
[speakers.b]
language = "en"
reference = "ref/b.mp4"
[pipelines.Blur]
mode = "dubbing"
outputs = "out/{speaker}_Blur.mp4"
"""

# registers the random Inception file's hash in every process of the run (controller and workers)
CONFTEST = """
import hashlib, os
from talkbench_plugin import weights

def pytest_configure(config):
    path = os.path.join(os.environ["RANDOM_WEIGHTS"], "{name}")
    weights.register(weights.WeightSpec(name="inception", filename="{name}", urls=(),
                                        sha256=hashlib.sha256(open(path, "rb").read()).hexdigest()))
""".replace("{name}", INCEPTION)

WHERE = """
import os, pytest
@pytest.fixture(autouse=True)
def _where(request):
    with open('where.txt', 'a') as fh:
        fh.write(f"{request.node.nodeid} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")
"""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "ref").mkdir()
    (root / "out").mkdir()
    write_video(root / "ref" / "a.mp4", moving_frames(24, 64, 48, seed=1), 25)
    write_video(root / "ref" / "b.mp4", moving_frames(24, 48, 64, seed=2), 25)
    write_video(root / "out" / "a_Blur.mp4", moving_frames(24, 32, 24, seed=1), 25, options={"crf": "30"})
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, media: Path, weights_file: Path,
            monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    shutil.copytree(media, pytester.path / "data")
    (pytester.path / "data" / "talkbench.toml").write_text(MANIFEST)
    (pytester.path / "benchmarks").mkdir()
    for name in ("test_fidelity.py", "test_quality.py"):
        shutil.copy(BENCH / name, pytester.path / "benchmarks" / name)
    (pytester.path / "conftest.py").write_text(CONFTEST)
    (pytester.path / "weights").mkdir()
    shutil.copy(weights_file, pytester.path / "weights" / INCEPTION)
    monkeypatch.setenv("RANDOM_WEIGHTS", str(pytester.path / "weights"))
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--talkbench-data", "data", "--talkbench-cache", str(pytester.path / "cache"), "-p", "no:cacheprovider",
        "-p", "no:randomly", "--talkbench-calibrations", "reference,degraded", "--talkbench-fid-sampling", "stride=4",
        "-rs", *args)


def results(pytester: pytest.Pytester, folder: str) -> dict[str, dict]:
    return {r["case"]: r for r in json.loads((pytester.path / folder / "results.json").read_text())["results"]}


@pytest.mark.slow
def test_fid_per_case_pooled_per_group_and_cached(project: pytest.Pytester) -> None:
    (project.path / "benchmarks" / "conftest.py").write_text(WHERE)
    first = run(project, "-n", "2", "--talkbench-metrics", "psnr,fid,gmsd,piqe", "--talkbench-weights", "weights",
                "--talkbench-report", "one")
    # a: Blur, reference, degraded; b: reference, degraded, Blur (missing: skipped); psnr, fid, gmsd, piqe pass,
    # ssim and inception_score are not enabled: not collected
    first.assert_outcomes(passed=5 * 4, skipped=4)
    one = results(project, "one")
    fid = {case: r["metrics"]["fid"]["value"] for case, r in one.items()}
    degraded = fid["a-degraded"]
    assert degraded > 0 and fid["b-degraded"] > 0 and fid["a-Blur"] > 0
    assert abs(fid["a-reference"]) < 1e-6 * degraded and abs(fid["b-reference"]) < 1e-6 * degraded
    entry = one["a-Blur"]["metrics"]["fid"]
    assert entry["details"]["frames"] == {"generated": 6, "reference": 6}  # 24 frames, stride=4
    assert "fewer than the 2048 feature dimensions" in entry["details"]["warnings"][0]
    assert entry["protocol"]["sampling"] == "stride=4" and entry["protocol"]["resize"] == "clean"
    assert len(one["a-Blur"]["metrics"]["piqe"]["per_frame"]) == 24
    assert len(one["a-Blur"]["metrics"]["gmsd"]["per_frame"]) == 24
    # the per-language table: mean of per-video FID and, beside it, the FID of the group's pooled frames
    pooled = one["a-degraded"]["fid_pooled"]
    assert pooled["cases"] == 2 and pooled["frames"]["generated"] == one["a-degraded"]["metrics"]["fid"][
        "details"]["frames"]["generated"] + one["b-degraded"]["metrics"]["fid"]["details"]["frames"]["generated"]
    assert pooled["value"] > 0 and pooled["value"] != pytest.approx((fid["a-degraded"] + fid["b-degraded"]) / 2)
    out = first.stdout.str()
    assert "FID pooled" in out
    language_csv = (project.path / "one" / "per_language.csv").read_text().splitlines()
    assert language_csv[0].split(",")[:5] == ["lang", "pipeline", "PSNR", "FID", "FID pooled"]
    row = next(line.split(",") for line in language_csv if line.startswith("en,degraded"))
    assert float(row[3]) == pytest.approx((fid["a-degraded"] + fid["b-degraded"]) / 2, abs=1e-3)
    assert float(row[4]) == pytest.approx(pooled["value"], abs=1e-3)
    # each case's tests ran on one worker, the pyiqa tests (test_iqa[<metric>-<case>]) included
    workers: dict[str, set[str]] = {}
    for line in (project.path / "where.txt").read_text().splitlines():
        nodeid, worker = line.split()
        case = nodeid.split("[", 1)[1].rstrip("]").removeprefix("gmsd-").removeprefix("piqe-")
        workers.setdefault(case, set()).add(worker)
    assert "benchmarks/test_quality.py::test_iqa[piqe-a-Blur]" in (project.path / "where.txt").read_text()
    assert all(len(w) == 1 for w in workers.values()), workers

    second = run(project, "-n", "2", "--talkbench-metrics", "psnr,fid", "--talkbench-weights", "weights",
                 "--talkbench-report", "two")
    second.assert_outcomes(passed=5 * 2, skipped=2)
    two = results(project, "two")
    assert all(r["metrics"]["fid"]["details"]["reference_cached"] for r in two.values())
    assert {r["speaker"] for r in one.values() if not r["metrics"]["fid"]["details"]["reference_cached"]} == {"a", "b"}
    assert {case: r["metrics"]["fid"]["value"] for case, r in two.items()} == fid
    assert two["a-degraded"]["fid_pooled"]["value"] == pooled["value"]


def test_without_weights_fid_skips_with_the_fetch_hint(project: pytest.Pytester) -> None:
    (project.path / "empty").mkdir()
    result = run(project, "--talkbench-metrics", "psnr,fid", "--talkbench-weights", "empty", "-k", "a-")
    result.assert_outcomes(passed=3, skipped=3)  # fid for want of weights; ssim, IS not enabled: not collected
    out = result.stdout.str()
    assert "fid needs the inception weights, not found at" in out and "talkbench weights fetch inception" in out
    lines = [line for line in result.outlines if line.startswith("fid skipped: no inception weights in")]
    assert len(lines) == 1 and "empty" in lines[0]
    assert "FID" not in out.split("Per video")[1].splitlines()[0]


def test_pyiqa_metric_without_its_file_skips_with_its_url(project: pytest.Pytester) -> None:
    result = run(project, "--talkbench-metrics", "psnr,niqe", "-k", "a-reference")
    result.assert_outcomes(passed=1, skipped=1)  # niqe for want of its file; ssim, fid, IS not enabled: not collected
    out = result.stdout.str()
    assert "niqe needs the pyiqa niqe weights" in out and "niqe_modelparameters.mat" in out
    assert "download https://" in out
    assert "Traceback" not in out


def test_unknown_metric_is_a_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--talkbench-metrics", "psnr,not_a_metric")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown metric(s) not_a_metric*pyiqa*"])

