"""A PSNR/SSIM run imports no heavy library: not in the pytest controller, not in any xdist worker, not in
``talkbench evaluate``. Each process writes the heavy modules it holds at its end into a file of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from videos import TWO_SPEAKERS, moving_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
# what only the network metrics need (the families' heavy imports live inside their functions)
HEAVY = ("torch", "torchvision", "pyiqa", "syncnet_python", "onnxruntime", "cv2", "lpips", "face_alignment",
         "insightface", "ray", "cpbd", "cdfvd", "openvino")
# records, at the end of each pytest process (controller or worker), which HEAVY modules it imported
RECORDER = """
import json, os, sys
from pathlib import Path

def pytest_sessionfinish(session):
    name = getattr(session.config, "workerinput", {}).get("workerid", "controller")
    heavy = sorted(m for m in sys.modules if m.partition(".")[0] in HEAVY)
    Path(os.environ["TALKBENCH_TEST_MODULES"], name + ".json").write_text(json.dumps(heavy))
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("light")
    (root / "ref").mkdir()
    (root / "out").mkdir()
    for speaker, seed in (("a", 1), ("b", 2)):
        write_video(root / "ref" / f"{speaker}.mp4", moving_frames(12, 48, 32, seed=seed), 25)
        write_video(root / "out" / f"{speaker}_Blur.mp4", moving_frames(12, 48, 32, seed=seed), 25,
                    options={"crf": "35"})
    (root / "talkbench.toml").write_text(TWO_SPEAKERS)
    return root


@pytest.mark.parametrize("workers", ["2", "0"])
def test_pytest_run_leaves_heavy_modules_out(pytester: pytest.Pytester, data: Path, workers: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "benchmarks", pytester.path / "benchmarks")
    pytester.makeconftest(f"HEAVY = {HEAVY!r}\n{RECORDER}")
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    modules = pytester.path / "modules"
    modules.mkdir()
    monkeypatch.setenv("TALKBENCH_TEST_MODULES", str(modules))
    result = pytester.runpytest_subprocess(
        "-n", workers, "--talkbench-data", str(data), "--talkbench-metrics", "psnr,ssim",
        "--talkbench-calibrations", "none", "--talkbench-cache", str(pytester.path / "cache"),
        "--talkbench-report", "report", "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=4, skipped=result.parseoutcomes().get("skipped", 0))
    seen = {path.stem: json.loads(path.read_text()) for path in modules.glob("*.json")}
    expected = {"controller", "gw0", "gw1"} if workers == "2" else {"controller"}
    assert set(seen) == expected
    assert seen == {name: [] for name in expected}


def test_cli_evaluate_leaves_heavy_modules_out(data: Path, tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from talkbench_plugin.cli import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(json.dumps([code, sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})]))\n"
    )
    args = ["--cache", str(tmp_path / "cache"), "evaluate", "--data", str(data), "--metrics", "psnr,ssim",
            "--calibrations", "none", "--report", str(tmp_path / "report")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, check=True)
    code, heavy = json.loads(out.stdout.splitlines()[-1])
    assert (code, heavy) == (0, [])
    assert (tmp_path / "report" / "results.json").is_file()
