"""The plugin end to end with pytester: parametrised ids, tables, reports, skips, failures, xdist."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from videos import TWO_SPEAKERS, moving_frames, write_video

from talkbench_plugin import strict_json

BENCH = (Path(__file__).resolve().parents[1] / "benchmarks" / "test_fidelity.py").read_text()



@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "ref").mkdir()
    (root / "out").mkdir()
    t = __import__("numpy").linspace(0, 1.2, 16000 * 12 // 10)
    audio = 0.3 * __import__("numpy").sin(2 * 3.14159 * 220 * t)
    write_video(root / "ref" / "a.mp4", moving_frames(30, 64, 48, seed=1), 25, audio=audio)
    write_video(root / "ref" / "b.mp4", moving_frames(36, 48, 64, seed=2), 30, audio=audio)
    write_video(root / "out" / "a_Blur.mp4", moving_frames(30, 32, 24, seed=1), 25,
                options={"crf": "30"})
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, media: Path) -> pytest.Pytester:
    shutil.copytree(media, pytester.path / "data")
    (pytester.path / "data" / "talkbench.toml").write_text(TWO_SPEAKERS)
    bench = pytester.path / "benchmarks"
    bench.mkdir()
    (bench / "test_fidelity.py").write_text(BENCH)
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    cache = pytester.path / "cache"
    return pytester.runpytest_subprocess("--talkbench-data", "data", "--talkbench-cache", str(cache),
                                         "-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_cases_tables_and_reports(project: pytest.Pytester) -> None:
    result = run(project, "--talkbench-report", "rep", "-rs")
    # a: Blur + 4 calibrations; b: Blur output missing (skipped) + 4 calibrations; 2 metrics each
    result.assert_outcomes(passed=18, skipped=2)
    out = result.stdout.str()
    assert "test_psnr[a-Blur]" in "\n".join(project.runpytest("--co", "-q", "--talkbench-data", "data",
                                                           "--talkbench-cache", "cache").outlines)
    assert "no output of Blur for b: expected" in out and "out/b_Blur.mp4" in out
    assert "Per video" in out and "Per language (mean over speakers)" in out
    data = strict_json.loads((project.path / "rep" / "results.json").read_text())  # inf as null + name
    cases = {r["case"]: r for r in data["results"]}
    assert set(cases) == {"a-Blur", "a-reference", "a-static", "a-shifted", "a-degraded",
                          "b-reference", "b-static", "b-shifted", "b-degraded"}
    assert cases["a-reference"]["metrics"]["psnr"]["value"] == float("inf")
    assert cases["a-reference"]["metrics"]["ssim"]["value"] == 1.0
    blur = cases["a-Blur"]
    assert 10 < blur["metrics"]["psnr"]["value"] < 60
    assert blur["alignment"]["compared"] == 30 and blur["alignment"]["resized"] is True
    assert len(blur["metrics"]["ssim"]["per_frame"]) == 30
    assert blur["metrics"]["psnr"]["protocol"]["convention"] == "ffmpeg"
    assert blur["inputs"]["generated"]["sha256"]
    assert data["run"]["packages"]["av"]
    for name in ("per_video.csv", "per_language.csv", "report.md"):
        assert (project.path / "rep" / name).is_file()


def test_xdist_groups_cases_and_matches_serial(project: pytest.Pytester) -> None:
    (project.path / "benchmarks" / "conftest.py").write_text(
        "import os, pytest\n"
        "@pytest.fixture(autouse=True)\n"
        "def _where(request):\n"
        "    with open('where.txt', 'a') as fh:\n"
        "        fh.write(f\"{request.node.callspec.id} {os.environ.get('PYTEST_XDIST_WORKER')}\\n\")\n"
    )
    run(project, "-n", "2", "--talkbench-report", "par").assert_outcomes(passed=18, skipped=2)
    workers: dict[str, set[str]] = {}
    for line in (project.path / "where.txt").read_text().splitlines():
        case, worker = line.split()
        workers.setdefault(case, set()).add(worker)
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2
    run(project, "--talkbench-report", "ser").assert_outcomes(passed=18, skipped=2)

    def values(name: str) -> dict:
        data = json.loads((project.path / name / "results.json").read_text())
        return {(r["case"], m): v["value"] for r in data["results"] for m, v in r["metrics"].items()}

    assert values("par") == values("ser")
    assert len(values("par")) == 18


def test_threshold_failure_names_value_bound_and_case(project: pytest.Pytester) -> None:
    (project.path / "t.toml").write_text("[Blur]\npsnr = { min = 99.0 }\n")
    result = run(project, "--talkbench-thresholds", "t.toml", "-k", "Blur")
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    result.stdout.re_match_lines([r".*a-Blur: psnr = [\d.]+ dB is below the minimum 99 \(.*t.toml: Blur.psnr\).*"])


def test_bad_generated_video_fails_its_case_only(project: pytest.Pytester) -> None:
    (project.path / "data" / "out" / "b_Blur.mp4").write_text("not a video")
    result = run(project, "-n", "2")
    result.assert_outcomes(passed=18, failed=2)
    out = result.stdout.str()
    assert "b_Blur.mp4: not a readable media file" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out


def test_manifest_error_is_a_clean_collection_error(project: pytest.Pytester) -> None:
    (project.path / "data" / "talkbench.toml").write_text(TWO_SPEAKERS.replace("ref/b.mp4", "ref/nope.mp4"))
    result = run(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*talkbench: *talkbench.toml: speakers.b.reference: file not found*"])
    assert "Traceback" not in result.stdout.str()


def test_a_lost_report_fails_the_run(pytester: pytest.Pytester) -> None:
    """A report xdist cannot serialise vanishes silently; the controller notices and fails the run."""
    pytester.makeconftest(
        "import numpy as np, pytest\n"
        "@pytest.hookimpl(wrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    report = yield\n"
        "    if item.name == 'test_b':\n"
        "        report.bad = np.float32(1.0)\n"
        "    return report\n"
    )
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*missing result: test_a_lost_report_fails_the_run.py::test_b produced no report*"])


def test_github_summary_annotations_and_junit_properties(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.path))
    (project.path / "t.toml").write_text("[Blur]\npsnr = { min = 99.0 }\n")
    result = run(project, "--talkbench-thresholds", "t.toml", "-k", "a-", "-n", "2", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=9, failed=1)
    text = summary.read_text()
    assert "| a | en | Blur |" in text and "### Per language (mean over speakers)" in text
    assert "**Gate: failed** (1 metric test(s) failed)" in text
    result.stderr.re_match_lines([r"::error file=benchmarks/test_fidelity.py,title=talkbench psnr::"
                                  r".*a-Blur: psnr = [\d.]+ dB is below the minimum 99.*"])
    junit = (project.path / "junit.xml").read_text()
    assert '<property name="talkbench.ssim" value="1.0"' in junit
    assert '<property name="talkbench.psnr" value="inf"' in junit


def test_no_github_output_outside_actions(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (project.path / "t.toml").write_text("[Blur]\npsnr = { min = 99.0 }\n")
    result = run(project, "--talkbench-thresholds", "t.toml", "-k", "Blur")
    assert "::error" not in result.stderr.str() + result.stdout.str()


def test_bad_thresholds_file_is_a_clean_collection_error(project: pytest.Pytester) -> None:
    (project.path / "t.toml").write_text("[Blur]\npsnr = { low = 3 }\n")
    result = run(project, "--talkbench-thresholds", "t.toml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*talkbench: *t.toml: Blur.psnr: must be a table with min and/or max*"])
    assert "Traceback" not in result.stdout.str()


def test_pytest_benchmark_files_under_xdist_read_by_its_cli(project: pytest.Pytester) -> None:
    """pytest-benchmark is disabled under xdist; talkbench still saves runs that its CLI lists and compares."""
    storage = project.path / "bench-store"
    for name, workers in (("base", "2"), ("new", "2"), ("serial", "0")):
        run(project, "-n", workers, "-k", "a-", f"--benchmark-storage=file://{storage}", f"--benchmark-save={name}",
            "--benchmark-json", f"{name}.json").assert_outcomes(passed=10)
    data = json.loads((project.path / "new.json").read_text())
    entries = {b["fullname"]: b for b in data["benchmarks"]}
    assert len(entries) == 10 and data["machine_info"]["python_version"]
    blur = entries["benchmarks/test_fidelity.py::test_psnr[a-Blur]"]
    assert blur["group"] == "psnr" and blur["stats"]["rounds"] == 1 and blur["stats"]["min"] > 0
    assert 10 < blur["extra_info"]["psnr"] < 60 and blur["extra_info"]["protocol"]["convention"] == "ffmpeg"
    saved = sorted(p.name for p in storage.rglob("*.json"))
    assert saved == ["0001_base.json", "0002_new.json", "0003_serial.json"]
    serial = json.loads((project.path / "serial.json").read_text())
    assert {b["fullname"] for b in serial["benchmarks"]} == set(entries)

    cli = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent))
    listed = subprocess.run([cli, "--storage", f"file://{storage}", "list"], capture_output=True, text=True, check=True)
    assert "0001_base.json" in listed.stdout and "0002_new.json" in listed.stdout
    compared = subprocess.run([cli, "--storage", f"file://{storage}", "compare", "0001", "0002", "--group-by", "name"],
                              capture_output=True, text=True, cwd=project.path, check=True)
    assert "test_psnr[a-Blur]" in compared.stdout and "0001_base" in compared.stdout


def test_shards_split_the_cases(project: pytest.Pytester) -> None:
    def ids(*args: str) -> set[str]:
        result = project.runpytest("--co", "-q", "--talkbench-data", "data", "--talkbench-cache", "cache", *args)
        assert "missing result" not in result.stdout.str()
        return {line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::test_" in line}

    everything = ids()
    shards = [ids("--talkbench-shard", f"{i}/3") for i in (1, 2, 3)]
    assert set().union(*shards) == everything and sum(map(len, shards)) == len(everything) == 10
    assert shards[0] == ids("--talkbench-shard", "1/3")  # deterministic
    result = project.runpytest("--co", "--talkbench-shard", "4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--talkbench-shard 4/3: expected I/N with 1 <= I <= N*"])


SYNC_BENCH = (Path(__file__).resolve().parents[1] / "benchmarks" / "test_sync.py").read_text()


def _sync_project(project: pytest.Pytester, weights: Path | None = None) -> None:
    """The sync benchmark tests, and (given a folder of random weights) a registry pinning those files."""
    (project.path / "benchmarks" / "test_sync.py").write_text(SYNC_BENCH)
    if weights is not None:
        import hashlib

        pins = {kind: hashlib.sha256((weights / name).read_bytes()).hexdigest()
                for kind, name in (("syncnet", "syncnet_v2.model"), ("s3fd", "sfd_face.pth"))}
        project.makeconftest(
            "from talkbench_plugin import weights\n"
            f"for kind, name, digest in [('syncnet', 'syncnet_v2.model', {pins['syncnet']!r}), "
            f"('s3fd', 'sfd_face.pth', {pins['s3fd']!r})]:\n"
            "    weights.register(weights.WeightSpec(kind, name, (), sha256=digest))\n")


def test_sync_tests_with_weights(project: pytest.Pytester, sync_weights_dir: Path) -> None:
    _sync_project(project, sync_weights_dir)
    result = run(project, "-n", "2", "-k", "a-", "--talkbench-weights", str(sync_weights_dir),
                 "--talkbench-sync-detector", "none", "--talkbench-metrics", "psnr,lse_c,lse_d,av_offset",
                 "--talkbench-calibrations", "reference,shifted", "--talkbench-report", "rep")
    # a-Blur's output has no audio: its three sync tests fail, naming the file; the rest pass
    result.assert_outcomes(passed=9, failed=3)  # ssim is not enabled: not collected
    out = result.stdout.str()
    assert "a-Blur: lse_c: " in out and "a_Blur.mp4: has no audio stream" in out
    assert "LSE_C" in out and "AV_OFFSET" in out and "skipped: no" not in out
    cases = {r["case"]: r for r in json.loads((project.path / "rep" / "results.json").read_text())["results"]}
    for case in ("a-reference", "a-shifted"):
        metrics = cases[case]["metrics"]
        assert {"lse_c", "lse_d", "av_offset"} <= set(metrics) and metrics["lse_d"]["value"] > 0
        assert metrics["lse_c"]["protocol"]["settings"]["detector"] == "none"
        assert len(metrics["lse_c"]["per_frame"]) == 30 - 5
    assert cases["a-Blur"]["metrics"]["lse_c"]["error"].endswith("lip sync needs the speech that drives the video")


def test_sync_tests_without_weights_skip_once_or_fail(project: pytest.Pytester, tmp_path: Path) -> None:
    _sync_project(project)
    empty = tmp_path / "no-weights"
    result = run(project, "--talkbench-weights", str(empty), "--talkbench-calibrations", "reference", "-rs")
    result.assert_outcomes(passed=6, skipped=5 + 9)  # b-Blur's output is missing; 9 sync tests lack weights
    out = result.stdout.str()
    assert "lse_c needs the syncnet weights, not found at" in out and "talkbench weights fetch syncnet" in out
    summary = [line for line in result.outlines if "skipped: no syncnet / s3fd weights in" in line]
    assert summary == [f"lse_c, lse_d, av_offset skipped: no syncnet / s3fd weights in {empty}; run `talkbench "
                       "weights fetch syncnet s3fd` (or set $TALKBENCH_WEIGHTS / --talkbench-weights)"]
    required = run(project, "--talkbench-weights", str(empty), "--talkbench-calibrations", "reference",
                   "--talkbench-require-weights")
    required.assert_outcomes(passed=6, skipped=5, failed=9)
    assert "(--talkbench-require-weights)" in required.stdout.str()


def test_sync_weights_that_are_not_the_pinned_ones_are_refused(project: pytest.Pytester, tmp_path: Path) -> None:
    _sync_project(project)
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "syncnet_v2.model").write_bytes(b"a different file")
    result = run(project, "--talkbench-weights", str(folder), "--talkbench-calibrations", "reference",
                 "--talkbench-sync-detector", "none", "-k", "a-reference")
    result.assert_outcomes(passed=2, failed=3)
    assert f"{folder / 'syncnet_v2.model'} is not the pinned syncnet weights, refused (" in result.stdout.str()
