"""FVD inside the engine against cd-fvd's own code path (``cdfvd.cdfvd('i3d').compute_fvd``) on the same
clips, with a deterministic random InceptionI3d saved in the official ``i3d_pretrained_400.pt`` format (a
state dict); the cached reference statistics, group pooling, and a clip shorter than 16 frames."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from cdfvd import fvd as cd_fvd
from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.fid.cache import read
from talkbench_plugin.fvd.groups import add_pooled_fvd
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics import fvd as fvd_metric
from talkbench_plugin.metrics.fvd import FvdOptions, cd_fvd_stats

I3D = "i3d_pretrained_400.pt"
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # cd-fvd's sqrtm call


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = InceptionI3d(400, in_channels=3)
    for module in net.modules():  # He-normal convolutions: features stay O(1) through the 20-odd layers
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("weights") / I3D
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def i3d(i3d_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The random I3D registered as 'i3d' (verify accepts only pinned hashes); its folder."""
    digest = hashlib.sha256(i3d_file.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.REGISTRY, "i3d", replace(weights.spec_for("i3d"), sha256=digest, git_blob=None))
    return i3d_file.parent


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fvd")
    return {"ref": write_video(root / "ref.mp4", moving_frames(37, 64, 48, seed=1), 25),
            "gen": write_video(root / "gen.mp4", moving_frames(32, 64, 48, seed=2), 25, options={"crf": "25"}),
            "short": write_video(root / "short.mp4", moving_frames(10, 64, 48, seed=3), 25)}


def clips(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    n = len(frames) // 16
    return frames[: n * 16].reshape(n, 16, *frames.shape[1:])


def evaluate(gen: Path, ref: Path, tmp_path: Path, folder: Path, case_id: str = "P",
             runtime: str = "openvino") -> dict:
    # no coverage rule: a generated video shorter than the reference must meet FVD's own rule here
    case = Case(Speaker("s", "en", ref), Pipeline(case_id, "dubbing", "x", min_coverage=0.0), gen, Segment())
    options = FvdOptions(weights=str(folder), moments_dir=str(tmp_path / "run"), runtime=runtime)
    return evaluate_case(case, ["psnr", "fvd"], tmp_path / "cache", options={"fvd": options})


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_fvd_agrees_with_cd_fvd(videos: dict[str, Path], i3d: Path, i3d_file: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch, runtime: str) -> None:
    record = evaluate(videos["gen"], videos["ref"], tmp_path, i3d, runtime=runtime)
    runner = record["metrics"]["fvd"]["protocol"]["runtime"]
    assert runner.startswith({"openvino": "OpenVINO CPU, f32", "torch": "torch"}[runtime])
    entry = record["metrics"]["fvd"]
    assert entry["details"]["clips"] == {"reference": 2, "generated": 2}
    assert entry["details"]["unused_frames"]["reference"] == 5 and not entry["details"]["reference_cached"]

    with contextlib.redirect_stdout(io.StringIO()):
        reference = cd_fvd.cdfvd("i3d", n_real="full", n_fake="full", ckpt_path=str(i3d_file), device="cpu")
    expected = reference.compute_fvd(clips(videos["ref"]), clips(videos["gen"]))
    assert expected > 1e-3
    assert entry["value"] == pytest.approx(float(expected), rel=1e-4)
    mu_fake, sigma_fake = reference.fake_stats.get_mean_cov()
    generated = read(entry["details"]["moments"]["generated"])
    mu, sigma = cd_fvd_stats(generated)
    np.testing.assert_allclose(mu, mu_fake, rtol=1e-4, atol=1e-6 * np.abs(mu_fake).max())
    # cd-fvd sums float32 features: the covariance's near-zero entries carry its rounding, so scaled to the largest
    np.testing.assert_allclose(sigma, sigma_fake, rtol=1e-4, atol=1e-4 * np.abs(sigma_fake).max())

    twin = copy.deepcopy(record)  # the same clips twice in one group: the same statistics
    twin["case"] = "twin"
    add_pooled_fvd([record, twin])
    assert record["fvd_pooled"]["cases"] == 2 and record["fvd_pooled"]["clips"]["generated"] == 4
    assert record["fvd_pooled"]["value"] == pytest.approx(entry["value"], rel=1e-6)

    monkeypatch.setattr(fvd_metric, "BATCH", 1)  # one clip per forward: the same value but for float rounding
    again = evaluate(videos["gen"], videos["ref"], tmp_path, i3d, runtime=runtime)["metrics"]["fvd"]
    assert again["details"]["reference_cached"] and again["value"] == pytest.approx(entry["value"], rel=1e-5)


def test_a_clip_shorter_than_16_frames_is_fvd_s_error_only(videos: dict[str, Path], i3d: Path,
                                                            tmp_path: Path) -> None:
    record = evaluate(videos["short"], videos["ref"], tmp_path, i3d)
    assert record["error"] is None and record["metrics"]["psnr"]["value"] is not None
    error = record["metrics"]["fvd"]["error"]
    assert "FVD needs at least 16 frames (one clip)" in error and str(videos["short"]) in error


def test_fvd_without_weights_names_the_fetch(videos: dict[str, Path], tmp_path: Path) -> None:
    record = evaluate(videos["gen"], videos["ref"], tmp_path, tmp_path / "none")
    assert "talkbench weights fetch i3d" in record["metrics"]["fvd"]["error"]
