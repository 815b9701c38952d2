"""LPIPS inside the engine against the lpips package (``lpips.LPIPS(net='alex')``, backbone loaded by
torchvision from the torch.hub cache, as a user's would be) and against pyiqa's ``lpips``, on the same
frames, with a deterministic random AlexNet saved in torchvision's state-dict format."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import av
import lpips
import numpy as np
import pytest
import torch
import torchvision
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics import make_metric
from talkbench_plugin.metrics.iqa import IqaOptions, _scores, model
from talkbench_plugin.metrics.perceptual import (
    LpipsMetric,
    LpipsOptions,
    linear_weights,
)

ALEX = "alexnet-owt-7be5be79.pth"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:torchvision")


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / ALEX
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


@pytest.fixture
def alexnet(alexnet_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The random AlexNet registered as 'alexnet' (verify accepts only pinned hashes); its folder."""
    digest = hashlib.sha256(alexnet_file.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.REGISTRY, "alexnet", replace(weights.spec_for("alexnet"), sha256=digest,
                                                             sha256_ends=None))
    return alexnet_file.parent


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lpips")
    return {"ref": write_video(root / "ref.mp4", moving_frames(6, 96, 80, seed=1), 25),
            "gen": write_video(root / "gen.mp4", moving_frames(6, 96, 80, seed=2), 25, options={"crf": "25"})}


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def package_lpips(ref: np.ndarray, gen: np.ndarray, hub: Path, alexnet_file: Path) -> list[float]:
    """lpips' README way: LPIPS(net='alex'), im2tensor per image; torchvision finds the backbone in the hub cache."""
    (hub / "checkpoints").mkdir(parents=True)
    shutil.copy(alexnet_file, hub / "checkpoints" / ALEX)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    try:
        net = lpips.LPIPS(net="alex", verbose=False)
    finally:
        torch.hub.set_dir(previous)
    with torch.no_grad():
        return [float(net(lpips.im2tensor(g), lpips.im2tensor(r))) for r, g in zip(ref, gen, strict=True)]


@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_lpips_agrees_with_the_package_and_pyiqa(videos: dict[str, Path], alexnet: Path, alexnet_file: Path,
                                                 tmp_path: Path, runtime: str) -> None:
    case = Case(Speaker("s", "en", videos["ref"]), Pipeline("P", "dubbing", "x"), videos["gen"], Segment())
    record = evaluate_case(case, ["psnr", "lpips"], tmp_path / "cache",
                           options={"lpips": LpipsOptions(weights=str(alexnet), runtime=runtime)})
    entry = record["metrics"]["lpips"]
    assert entry["protocol"]["runtime"].startswith({"openvino": "OpenVINO CPU, f32", "torch": "torch"}[runtime])
    assert (tmp_path / "cache" / "openvino").is_dir() == (runtime == "openvino")
    ref, gen = decoded(videos["ref"]), decoded(videos["gen"])
    expected = package_lpips(ref, gen, tmp_path / "hub", alexnet_file)
    assert len(entry["per_frame"]) == len(expected) == 6 and min(expected) > 1e-3
    np.testing.assert_allclose(entry["per_frame"], expected, rtol=1e-4)
    assert entry["value"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert entry["higher_is_better"] is False and entry["protocol"]["backbone"] == ALEX

    # pyiqa's lpips: its linear file LPIPS_v0.1_alex-df73285e.pth is the lpips wheel's alex.pth (same SHA-256
    # prefix), its backbone torchvision's AlexNet from the hub cache: both fed the same files here
    root = tmp_path / "iqa"
    (root / "pyiqa" / "torch" / "checkpoints").mkdir(parents=True)
    shutil.copy(linear_weights("alex"), root / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth")
    shutil.copy(alexnet_file, root / "pyiqa" / "torch" / "checkpoints" / ALEX)
    assert hashlib.sha256(linear_weights("alex").read_bytes()).hexdigest().startswith("df73285e")
    pyiqa_values = _scores("lpips", model("lpips", IqaOptions(str(root))), "cpu", gen, ref)
    np.testing.assert_allclose(entry["per_frame"], pyiqa_values, rtol=1e-4)


def test_lpips_is_talkbench_s_own_not_pyiqa_s(alexnet: Path) -> None:
    assert isinstance(make_metric("lpips", "skimage", {"lpips": LpipsOptions(weights=str(alexnet))}), LpipsMetric)
    assert LpipsOptions("vgg").needed_weights() == ("vgg16",)
    with pytest.raises(Exception, match="LPIPS net must be one of alex, vgg"):
        LpipsOptions("squeeze")


def test_lpips_without_weights_is_its_own_error(videos: dict[str, Path], tmp_path: Path) -> None:
    case = Case(Speaker("s", "en", videos["ref"]), Pipeline("P", "dubbing", "x"), videos["gen"], Segment())
    record = evaluate_case(case, ["psnr", "lpips"], tmp_path / "cache",
                           options={"lpips": LpipsOptions(weights=str(tmp_path / "none"))})
    assert record["error"] is None and record["metrics"]["psnr"]["value"] is not None
    assert "talkbench weights fetch alexnet" in record["metrics"]["lpips"]["error"]


def test_a_foreign_backbone_file_is_refused(alexnet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / ALEX
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    monkeypatch.setitem(weights.REGISTRY, "alexnet", replace(weights.spec_for("alexnet"),
                                                             sha256=hashlib.sha256(bad.read_bytes()).hexdigest()))
    with pytest.raises(Exception, match="not torchvision's alexnet"):
        LpipsMetric(LpipsOptions(weights=str(tmp_path))).compute()


@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_frames_too_small_for_alexnet_are_lpips_s_error(alexnet: Path, tmp_path: Path, runtime: str) -> None:
    ref = write_video(tmp_path / "ref.mp4", moving_frames(3, 16, 16, seed=1), 25)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(3, 16, 16, seed=2), 25)
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    record = evaluate_case(case, ["psnr", "lpips"], tmp_path / "cache",
                           options={"lpips": LpipsOptions(weights=str(alexnet), runtime=runtime)})
    assert record["metrics"]["psnr"]["value"] is not None
    error = record["metrics"]["lpips"]["error"]
    assert "LPIPS alex cannot score 16x16 frames, too small for the backbone" in error
    assert "size" in error.split("backbone (", 1)[1]  # the library's reason, not its source location
