"""A worker killed mid-case (as an OOM kill would) fails that case's tests naming the worker, and the run
ends (issue 16.11): talkbench's scheduler does not hand the lost case to a new worker to be killed again.

The case's pipeline command kills the xdist worker that runs it (its grandparent: the worker starts
commands through launch.py)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from test_plugin import BENCH
from videos import moving_frames, write_video

KILL_WORKER = """import os, signal
stat = open(f"/proc/{os.getppid()}/stat").read()
os.kill(int(stat.rsplit(")", 1)[1].split()[1]), signal.SIGKILL)
"""
MANIFEST = """
[dataset]
name = "crash"
[speakers.a]
language = "en"
reference = "ref/a.mp4"
[speakers.b]
language = "en"
reference = "ref/b.mp4"
[pipelines.Same]
mode = "dubbing"
outputs = "ref/{{speaker}}.mp4"
[pipelines.Kill]
mode = "dubbing"
speakers = ["a"]
command = {command}
"""


@pytest.mark.slow  # three worker start-ups (~20 s on 2 busy cores)
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="the killer reads its grandparent from /proc")
def test_a_killed_worker_fails_its_case_and_the_run_ends(pytester: pytest.Pytester, tmp_path: Path) -> None:
    data = pytester.path / "data"
    (data / "ref").mkdir(parents=True)
    for speaker, seed in (("a", 1), ("b", 2)):
        write_video(data / "ref" / f"{speaker}.mp4", moving_frames(5, 32, 24, seed=seed), 25)
    (pytester.path / "kill_worker.py").write_text(KILL_WORKER)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(pytester.path / 'kill_worker.py'))} {{output}}"
    (data / "talkbench.toml").write_text(MANIFEST.format(command=json.dumps(command)))
    (pytester.path / "benchmarks").mkdir()
    (pytester.path / "benchmarks" / "test_fidelity.py").write_text(BENCH)
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    result = pytester.runpytest_subprocess(
        "--talkbench-data", "data", "--talkbench-cache", str(tmp_path / "cache"), "-p", "no:cacheprovider",
        "-p", "no:randomly", "-n", "2", "--talkbench-calibrations", "none", "--talkbench-metrics", "psnr,ssim",
        "--talkbench-report", "report", timeout=240)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(passed=4, failed=2)  # a-Same, b-Same pass; both tests of a-Kill fail
    result.stdout.fnmatch_lines(["FAILED benchmarks/test_fidelity.py::test_ssim[[]a-Kill[]] - worker 'gw?' crashed*",
                                 "FAILED benchmarks/test_fidelity.py::test_psnr[[]a-Kill[]] - worker 'gw?' crashed*"])
    assert out.count("replacing crashed worker") == 1  # the lost case did not go on to kill a replacement
    assert "missing result" not in out
    records = json.loads((pytester.path / "report" / "results.json").read_text())["results"]
    assert sorted(r["case"] for r in records) == ["a-Same", "b-Same"]
