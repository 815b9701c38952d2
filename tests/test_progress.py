"""Progress on long work: per case and within a case on a terminal, one line per case in CI logs, under
xdist through the run directory, and a bar for weight downloads."""

import io
import json
import re
import time
from pathlib import Path

import numpy as np
from videos import moving_frames, write_video

from talkbench_plugin import progress
from talkbench_plugin.cli import main
from talkbench_plugin.progress import (
    DownloadBar,
    ProgressFile,
    StatusLine,
    cases_of,
    status,
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_rate_eta_and_case_ids() -> None:
    state = {"case": "a-P", "stage": "compare", "done": 100, "total": 400, "stage_started": 50.0}
    assert status(state, now=60.0) == "a-P compare 100/400 frames, 10.0 frames/s, ETA 30s"
    assert status({**state, "total": None}, now=60.0) == "a-P compare 100/? frames, 10.0 frames/s"
    assert status({**state, "stage": "fid", "done": 0, "total": None}, now=60.0) == "a-P fid"
    assert progress.duration(3725) == "1h02m" and progress.duration(185) == "3m05s"
    ids = ["b/test_fidelity.py::test_psnr[a-P]", "b/test_quality.py::test_iqa[piqe-b-P]", "b/x.py::test_other"]
    assert cases_of(ids, ["a-P", "b-P", "c-P"]) == {"a-P", "b-P"}


def test_the_status_line_shows_what_each_process_reports(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "progress"
    mine = ProgressFile(folder, "a-P")
    mine("compare", 0, 50)
    (folder / "99999.json").write_text(json.dumps({"case": "b-Q", "stage": "prepare", "done": 0, "total": None,
                                                   "stage_started": time.time()}))  # another worker
    written = []
    line = StatusLine(folder, written.append)
    line.total, line.done = 4, 1
    text = line.poll()
    assert text == "talkbench [1/4] a-P compare 0/50 frames | b-Q prepare"
    assert written == ["\r\x1b[K" + text]
    monkeypatch.setattr(time, "time", lambda: mine.state["stage_started"] + 2.0)
    mine("compare", 20, 50)  # a new stage or MIN_INTERVAL later: written through
    assert "a-P compare 20/50 frames, 10.0 frames/s, ETA 3s" in line.poll()
    line.clear()
    assert written[-1] == "\r\x1b[K" and line.shown == ""
    mine.close()
    (folder / "99999.json").unlink()
    assert line.poll() == ""


def test_evaluate_shows_progress_on_a_terminal_and_a_line_per_case_in_ci(tmp_path: Path, monkeypatch) -> None:
    frames = moving_frames(40, 32, 32)
    ref = write_video(tmp_path / "ref.mp4", frames, 25, audio=np.zeros(25600) + 0.1)
    gen = write_video(tmp_path / "gen.mp4", frames, 25)
    args = ["--cache", str(tmp_path / "cache"), "evaluate", "--reference", str(ref), "--generated", str(gen),
            "--metrics", "psnr", "--calibrations", "reference"]
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0.0)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr", Tty())
    assert main(args) == 0
    err = __import__("sys").stderr.getvalue()
    assert "\r\x1b[Ktalkbench [1/2] ref-generated prepare" in err
    assert re.search(r"\r\x1b\[Ktalkbench \[1/2\] ref-generated compare 32/40 frames, [\d.]+ frames/s", err)
    assert "\r\x1b[Ktalkbench [2/2] ref-reference compare 40/40 frames" in err
    assert re.search(r"\r\x1b\[Ktalkbench \[2/2\] ref-reference: 40 frames in [\d.]+ s \([\d.]+ frames/s\)\n", err)
    monkeypatch.setenv("CI", "true")  # a CI log: no redrawing, a line per case
    monkeypatch.setattr("sys.stderr", Tty())
    assert main(args) == 0
    lines = __import__("sys").stderr.getvalue().splitlines()
    assert "\r" not in "".join(lines) and len(lines) == 2
    assert re.fullmatch(r"talkbench \[1/2\] ref-generated: 40 frames in [\d.]+ s \([\d.]+ frames/s\)", lines[0])


def test_download_bar_on_a_terminal_and_in_a_log(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)  # a terminal outside CI (CI=true would mean a log)
    tty = Tty()
    bar = DownloadBar(tty, "syncnet", width=10)
    bar._drawn = -1.0
    for done in range(0, 2**20 + 1, 2**18):
        bar._drawn = 0.0  # redraw every step
        bar(done, 2**20)
    bar.close()
    assert "\r\x1b[Ksyncnet: [#####.....]  50% 0.5/1.0 MiB" in tty.getvalue()
    assert "[##########] 100% 1.0/1.0 MiB" in tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    bar = DownloadBar(log, "syncnet")
    for done in range(0, 2**20 + 1, 2**16):
        bar(done, 2**20)
    assert log.getvalue().splitlines() == [f"syncnet: {p}% of 1.0 MiB" for p in (0, 25, 50, 75, 100)]


def test_weights_fetch_reports_download_progress(tmp_path: Path, monkeypatch) -> None:
    import functools
    import hashlib
    import http.server
    import threading

    from talkbench_plugin import weights

    data = bytes(range(256)) * 4096  # 1 MiB
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "w.pth").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        spec = weights.WeightSpec(name="tiny", filename="tiny.pth",
                                  urls=(f"http://127.0.0.1:{httpd.server_address[1]}/w.pth",),
                                  sha256=hashlib.sha256(data).hexdigest(),
                                  git_blob=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), size=len(data))
        monkeypatch.setitem(weights.REGISTRY, "tiny", spec)
        monkeypatch.setattr("sys.stderr", io.StringIO())
        monkeypatch.delenv("CI", raising=False)
        assert main(["weights", "--dir", str(tmp_path / "w"), "fetch", "tiny"]) == 0
        assert "tiny: 100% of 1.0 MiB" in __import__("sys").stderr.getvalue()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pytest_redraws_a_status_line_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    data = tmp_path / "data"
    (data / "ref").mkdir(parents=True)
    write_video(data / "ref" / "a.mp4", moving_frames(150, 96, 96, seed=1), 25)
    (data / "talkbench.toml").write_text('[speakers.a]\nlanguage = "en"\nreference = "ref/a.mp4"\n')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]), TALKBENCH_CACHE=str(tmp_path / "cache"),
               TALKBENCH_PROGRESS_INTERVAL="0.02", TERM="xterm")
    primary, secondary = pty.openpty()  # pytest's stdout is a terminal
    process = subprocess.Popen([sys.executable, "-m", "talkbench_plugin.cli", "run", "--talkbench-data", "data",
                                "--talkbench-calibrations", "reference", "--talkbench-metrics", "psnr,ssim",
                                "-p", "no:cacheprovider", "-q"], cwd=tmp_path, env=env, stdout=secondary,
                               stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    out = b"".join(chunks).decode(errors="replace")
    shown = re.findall(r"\r\x1b\[Ktalkbench \[0/1\] a-reference (\w+)( \d+/150 frames)?", out)
    assert any(stage == "compare" and frames for stage, frames in shown), out[:2000]
    assert not re.search(r"talkbench \[1/1\] a-reference: \d+ frames in", out)  # the CI log's line is not written
