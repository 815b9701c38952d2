"""The OpenVINO runtime: a torch module converted once into the cache (fp32 weights, f32 inference), the
same outputs as torch, read back without converting, and no half-written IR left by a failed conversion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import openvino
import pytest
import torch

from talkbench_plugin.runtime import openvino as runtime
from talkbench_plugin.scratch import host

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (-1, 3, 4, 20, 20)


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.BatchNorm3d(8), torch.nn.ReLU(),
                               torch.nn.Conv3d(8, 4, 3, stride=2), torch.nn.AdaptiveAvgPool3d(1),
                               torch.nn.Flatten()).eval()


def convert(cache: Path, sha: str = "ab" * 32) -> Path:
    folder = runtime.ir_folder(cache, "tiny", sha, [SHAPE])
    return runtime.converted(folder, build, (torch.zeros(1, *SHAPE[1:]),), [SHAPE])


def test_the_converted_network_gives_torch_s_outputs_in_f32(tmp_path: Path) -> None:
    folder = convert(tmp_path)
    net = runtime.OpenVinoNetwork(folder)
    assert net.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
    parameters = sum(p.numel() for p in build().parameters())
    assert (folder / "model.bin").stat().st_size >= 4 * parameters * 0.9  # fp32 weights, not save_model's fp16
    x = torch.randn(3, *SHAPE[1:])
    with torch.no_grad():
        expected = build()(x).numpy()
    for batch in (x, x[:1]):  # any batch size
        np.testing.assert_allclose(net(batch.numpy()), expected[:len(batch)], rtol=1e-5, atol=1e-6)


def test_a_converted_network_is_read_back_not_converted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = convert(tmp_path)
    monkeypatch.setattr(openvino, "convert_model", lambda *a, **k: pytest.fail("converted twice"))
    assert convert(tmp_path) == folder


RACE = """
import sys, time
from pathlib import Path
import torch
from talkbench_plugin.runtime.openvino import converted

def build():
    with open(sys.argv[2], "a") as log:
        log.write("built\\n")
    time.sleep(1)
    return torch.nn.Linear(3, 1)

print(converted(Path(sys.argv[1]), build, (torch.zeros(1, 3),), [(-1, 3)]))
"""


def test_processes_converting_one_network_at_once_convert_it_once(tmp_path: Path) -> None:
    folder, log = runtime.ir_folder(tmp_path, "race", "ab" * 32, [(-1, 3)]), tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(folder), str(log)], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(3)]
    outs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0] and set(outs) == {str(folder)}
    assert log.read_text() == "built\n"
    assert runtime.OpenVinoNetwork(folder)(np.ones((2, 3), np.float32)).shape == (2, 1)


def test_other_weights_or_shapes_get_their_own_folder(tmp_path: Path) -> None:
    folders = {runtime.ir_folder(tmp_path, "tiny", sha, [shape])
               for sha in ("ab" * 32, "cd" * 32) for shape in (SHAPE, (-1, 3, 8, 20, 20))}
    assert len(folders) == 4


def test_a_failed_conversion_leaves_nothing_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: object, path: Path, **_: object) -> None:
        Path(path).write_text("<half")
        raise OSError("disk full")

    monkeypatch.setattr(openvino, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        convert(tmp_path)
    assert [p.name for p in (tmp_path / "openvino").iterdir() if not p.name.endswith(".lock")] == []


def test_a_killed_conversion_s_folder_is_swept_and_a_live_one_kept(tmp_path: Path) -> None:
    folder = runtime.ir_folder(tmp_path, "tiny", "ab" * 32, [SHAPE])
    folder.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = folder.parent / f".{folder.name}.{dead.stdout.strip()}@{host()}.abc"
    live = folder.parent / f".{folder.name}.{os.getppid()}@{host()}.def"
    for left in (stale, live):
        left.mkdir()
        (left / "model.xml").write_text("<half")
    convert(tmp_path)
    assert not stale.exists() and live.exists() and (folder / "model.xml").is_file()
