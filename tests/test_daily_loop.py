"""The daily loop with pytester (issue 13): storage anywhere, the marker, annotations under xdist,
--talkbench-compare failing named tests, pytest-benchmark's compare options, what a run collects."""

import json
import shutil
from pathlib import Path

import pytest
from videos import TWO_SPEAKERS, moving_frames, write_video

from talkbench_plugin.cli import main

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"



@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "ref").mkdir()
    (root / "out").mkdir()
    write_video(root / "ref" / "a.mp4", moving_frames(20, 48, 32, seed=1), 25)
    write_video(root / "ref" / "b.mp4", moving_frames(10, 48, 32, seed=2), 25)
    write_video(root / "out" / "a_Blur.mp4", moving_frames(20, 32, 24, seed=1), 25, options={"crf": "30"})
    write_video(root / "out" / "b_Blur.mp4", moving_frames(10, 32, 24, seed=2), 25, options={"crf": "30"})
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, media: Path) -> pytest.Pytester:
    shutil.copytree(media, pytester.path / "data")
    (pytester.path / "data" / "talkbench.toml").write_text(TWO_SPEAKERS)
    (pytester.path / "benchmarks").mkdir()
    for name in ("test_fidelity.py", "test_quality.py"):
        shutil.copy(BENCH / name, pytester.path / "benchmarks" / name)
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--talkbench-data", "data", "--talkbench-cache", str(pytester.path / "cache"),
                                         "--talkbench-metrics", "psnr,ssim", "--talkbench-calibrations", "reference",
                                         "-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_benchmark_storage_outside_the_working_directory(project: pytest.Pytester,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    url, plain = tmp_path_factory.mktemp("url-store"), tmp_path_factory.mktemp("plain-store")
    for storage, folder in ((f"file://{url}", url), (str(plain), plain)):
        result = run(project, "-k", "a-Blur", f"--benchmark-storage={storage}", "--benchmark-save=base")
        result.assert_outcomes(passed=2)
        assert result.ret == 0 and "Traceback" not in result.stdout.str() + result.stderr.str()
        saved = list(folder.rglob("*.json"))
        assert [p.name for p in saved] == ["0001_base.json"]
        assert f"wrote {saved[0]}" in result.stdout.str() and "Per video" in result.stdout.str()


def test_talkbench_marker_selects_and_deselects(project: pytest.Pytester) -> None:
    (project.path / "benchmarks" / "test_other.py").write_text("def test_plain():\n    pass\n")
    selected = run(project, "--co", "-q", "-m", "talkbench")
    ids = [line for line in selected.outlines if "::" in line]
    assert len(ids) == 8 and all("test_other" not in i for i in ids)  # psnr, ssim x (a, b) x (Blur, reference)
    others = run(project, "--co", "-q", "-m", "not talkbench")
    assert [line for line in others.outlines if "::" in line] == ["benchmarks/test_other.py::test_plain"]


def test_error_annotations_under_xdist_carry_the_message(project: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    (project.path / "t.toml").write_text("[Blur]\npsnr = { min = 99.0 }\n")
    result = run(project, "--talkbench-thresholds", "t.toml", "-n", "2")
    result.assert_outcomes(passed=6, failed=2)
    lines = [line for line in result.errlines if line.startswith("::error")]
    assert len(lines) == 2, result.errlines
    for line in lines:
        assert line.startswith("::error file=benchmarks/test_fidelity.py,title=talkbench psnr::")
        message = line.split("::", 2)[2]
        assert message.startswith(("a-Blur: psnr = ", "b-Blur: psnr = ")) and "below the minimum 99" in message
        assert "[gw" not in message and "%0A" not in message
    summary = (project.path / "summary.md").read_text()
    assert "**Gate: failed** (2 metric test(s) failed)" in summary
    assert "- ✗ benchmarks/test_fidelity.py::test_psnr[a-Blur]: a-Blur: psnr = " in summary
    assert "[value " in summary and "; bound >= 99]" in summary


def test_compare_regression_fails_named_tests_and_is_in_every_artifact(project: pytest.Pytester) -> None:
    run(project, "--talkbench-report", "r1").assert_outcomes(passed=8)
    data = json.loads((project.path / "r1" / "results.json").read_text())
    blur = next(r for r in data["results"] if r["case"] == "a-Blur")
    blur["metrics"]["psnr"]["value"] += 5.0  # the earlier run was better
    (project.path / "r1" / "results.json").write_text(json.dumps(data))
    result = run(project, "--talkbench-compare", "r1", "--talkbench-report", "r2")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.re_match_lines([r"FAILED benchmarks/test_fidelity.py::test_psnr\[a-Blur\] - Failed: a-Blur: psnr"])
    assert "is below" in result.stdout.str() and "(baseline: r1/results.json)" in result.stdout.str()
    assert "Gate: failed (0 metric" not in result.stdout.str()
    report = json.loads((project.path / "r2" / "results.json").read_text())["run"]["gate"]
    assert [f["test"] for f in report["failures"]] == ["benchmarks/test_fidelity.py::test_psnr[a-Blur]"]
    assert report["failures"][0]["baseline"] == blur["metrics"]["psnr"]["value"]
    regressed = [c for c in report["comparison"]["changes"] if c["status"] == "regressed"]
    assert [(c["case"], c["metric"]) for c in regressed] == [("a-Blur", "psnr")]
    md = (project.path / "r2" / "report.md").read_text()
    assert "### Compared with " in md and "| a-Blur | psnr | **regressed** |" in md
    html = (project.path / "r2" / "report.html").read_text()
    assert "Compared with" in html and "test_psnr[a-Blur]" in html


def test_benchmark_compare_options_stop_with_what_to_use(project: pytest.Pytester) -> None:
    for args in (("--benchmark-compare",), ("--benchmark-compare=0001",), ("--benchmark-compare-fail=min:5%",),
                 ("-n", "2", "--benchmark-compare")):
        result = run(project, *args)
        assert result.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.TESTS_FAILED), args  # xdist: 1
        out = result.stdout.str()
        assert "passed" not in result.stdout.lines[-1], args
        message = "--benchmark-compare / --benchmark-compare-fail do not apply"
        # the short summary repeats it, untruncated under CI=true
        said = [line for line in out.splitlines() if message in line and not line.startswith("ERROR ")]
        assert len(said) == 1, args
        assert "--talkbench-compare RUN" in out and "talkbench compare 0001 0002" in out


def test_talkbench_compare_reads_pytest_benchmark_storage(project: pytest.Pytester,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    storage = project.path / "store"
    for name in ("base", "new"):
        run(project, "-k", "a-", f"--benchmark-storage={storage}", f"--benchmark-save={name}").assert_outcomes(passed=4)
    saved = next(storage.rglob("0002_new.json"))
    data = json.loads(saved.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in {saved}"))
    entries = {b["fullname"]: b for b in data["benchmarks"]}
    assert entries["benchmarks/test_fidelity.py::test_psnr[a-reference]"]["extra_info"]["psnr_nonfinite"] == "inf"
    entries["benchmarks/test_fidelity.py::test_ssim[a-Blur]"]["extra_info"]["ssim"] -= 0.2
    saved.write_text(json.dumps(data))
    code = main(["compare", "0001", "0002", "--storage", f"file://{storage}"])
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:3]) for line in out.splitlines()}
    assert code == 1 and ("a-Blur", "ssim", "regressed") in rows and ("a-reference", "psnr", "same") in rows
    assert "comparison FAILED: 1 regressed, 3 same" in out
    assert main(["compare", "0001", "0009", "--storage", str(storage)]) == 2
    assert "no saved run '0009' in the pytest-benchmark storage" in capsys.readouterr().err


def test_disabled_metrics_are_not_collected_and_nothing_is_deselected(project: pytest.Pytester) -> None:
    result = run(project, "-rs")
    result.assert_outcomes(passed=8)
    out = result.stdout.str()
    assert " deselected" not in out and "is not enabled" not in out and "collected 8 items" in out


def test_dataset_error_is_reported_once(project: pytest.Pytester) -> None:
    (project.path / "data" / "talkbench.toml").write_text(TWO_SPEAKERS.replace("ref/b.mp4", "ref/nope.mp4"))
    result = run(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert result.stdout.str().count("speakers.b.reference: file not found") == 1
    assert "1 error" in result.stdout.lines[-1]


def test_data_folder_without_talkbench_toml_says_so(project: pytest.Pytester) -> None:
    (project.path / "data" / "talkbench.toml").rename(project.path / "data" / "mine.toml")
    result = run(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "data: no talkbench.toml in this folder (it has mine.toml)" in out and "--talkbench-manifest FILE" in out
    assert "obama1" not in out
