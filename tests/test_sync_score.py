"""SyncNet scoring: agreement with syncnet-python's SyncNetInstance.evaluate, offset logic, streaming."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import python_speech_features as psf
import torch
from scipy.io import wavfile
from sync_oracle import Oracle, coded
from videos import CLIPS

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.inference import fold_batch_norms
from talkbench_plugin.sync import model as syncnet_model
from talkbench_plugin.sync.mfcc import as_int16_scale, mfcc
from talkbench_plugin.sync.score import SyncScorer, score_clip


@pytest.fixture(scope="module")
def random_syncnet(tmp_path_factory):
    """syncnet-python's S with deterministic random weights, saved and loaded in the official format."""
    path = syncnet_model.write_random_weights("syncnet", tmp_path_factory.mktemp("w") / "syncnet_v2.model", seed=0)
    return syncnet_model.build("syncnet", torch.load(path, weights_only=True))


def reference_evaluate(net, crops, audio, folder: Path, capsys) -> tuple[int, float, float, np.ndarray]:
    """Run SyncNetInstance.evaluate on the same pixels and samples: frames losslessly (PNG bytes in the
    *.jpg files it globs; cv2.imread decodes by content), audio as the int16 wav it reads."""
    from syncnet_python.SyncNetInstance import SyncNetInstance

    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(crops):
        (folder / f"{i:06d}.jpg").write_bytes(cv2.imencode(".png", crop)[1].tobytes())
        assert np.array_equal(cv2.imread(str(folder / f"{i:06d}.jpg")), crop)
    wavfile.write(folder / "audio.wav", 16000, audio)

    class Opt:
        tmp_dir, batch_size, vshift = str(folder), 20, 15

    capsys.readouterr()
    with np.printoptions():  # evaluate changes numpy's global print options
        offset, conf, dist = SyncNetInstance(net, device="cpu").evaluate(Opt())
    printed = capsys.readouterr().out
    framewise = re.search(r"Framewise conf: \n\[(.*?)\]", printed, re.DOTALL).group(1)
    return offset, conf, dist, np.array(framewise.split(), dtype=float)


def _synthetic(n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random 'faces' and speech-like noise: not silent, not constant."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n_frames, 14, 14, 3)).astype(np.float32)
    crops = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_CUBIC) for f in small])
    crops = np.clip(crops, 0, 255).astype(np.uint8)
    envelope = np.repeat(rng.uniform(0.05, 1.0, n_frames), 640)
    audio = (rng.standard_normal(n_frames * 640 + 77) * 6000 * np.r_[envelope, np.ones(77)]).astype(np.int16)
    return crops, audio


def _clip(name: str, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_frames`` of a real clip as 224×224 BGR crops (centre square) and 16 kHz int16 audio."""
    av = pytest.importorskip("av")
    path = CLIPS / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            img = frame.to_ndarray(format="bgr24")
            h, w = img.shape[:2]
            side = min(h, w)
            img = img[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            frames.append(cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA))
            if len(frames) == n_frames:
                break
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        pcm = [out.to_ndarray().ravel() for f in container.decode(audio=0) for out in resampler.resample(f)]
    return np.stack(frames), np.concatenate(pcm)[: n_frames * 640 + 333]


@pytest.mark.parametrize("source", ["synthetic", "katiehill_hdtf_8s.mp4"])
def test_agrees_with_syncnet_python(source, random_syncnet, tmp_path, capsys):
    crops, audio = _synthetic(45, seed=1) if source == "synthetic" else _clip(source, 70)
    mine = score_clip(random_syncnet, crops, audio, batch=13)  # batches unlike the reference's 20
    offset, conf, dist, framewise = reference_evaluate(random_syncnet, crops, audio, tmp_path / "ref", capsys)

    assert mine.offset == offset
    assert mine.lse_c == pytest.approx(conf, abs=1e-3)
    assert mine.lse_d == pytest.approx(dist, abs=1e-3)
    assert mine.windows == len(framewise) == len(crops) - 5
    np.testing.assert_allclose(mine.frame_confidence, framewise, atol=5e-4 + 1e-5)  # printed with 3 decimals
    assert mine.distances[mine.offsets.index(mine.offset)] == pytest.approx(mine.lse_d)
    assert mine.lse_c == pytest.approx(float(np.median(mine.distances)) - min(mine.distances), abs=1e-5)


@pytest.mark.parametrize("delay", [-7, -2, 0, 3, 11])
def test_oracle_offset_sign(delay):
    """Video delayed by k frames (it lags the audio) reports +k; audio delayed by k reports -k."""
    codes = np.random.default_rng(5).integers(0, 8, 160)
    n, k = 120, abs(delay)
    late, on_time = codes[20 - k:20 - k + n], codes[20:20 + n]  # late[t] shows what on_time showed at t - k
    video, audio = (late, on_time) if delay >= 0 else (on_time, late)
    result = score_clip(Oracle(), *coded(video, audio))
    assert result.offset == delay
    assert result.lse_d < 0.5 < result.lse_c
    assert np.median(result.frame_confidence) > 1.0


def test_oracle_agrees_with_syncnet_python(tmp_path, capsys):
    codes = np.random.default_rng(6).integers(0, 8, 80)
    crops, audio = coded(codes[4:64], codes[:60])  # video leads: offset -4, away from the edges
    mine = score_clip(Oracle(), crops, audio)
    offset, conf, dist, framewise = reference_evaluate(Oracle(), crops, audio, tmp_path, capsys)
    assert mine.offset == offset == -4
    assert mine.lse_c == pytest.approx(conf, abs=1e-4) and mine.lse_d == pytest.approx(dist, abs=1e-4)
    np.testing.assert_allclose(mine.frame_confidence, framewise, atol=5e-4 + 1e-5)


class Tiny(torch.nn.Module):
    """A cheap stand-in for SyncNet that still depends on every window's pixels and MFCCs."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.lip = torch.randn(3 * 5 * 16, 32, generator=gen)
        self.aud = torch.randn(13 * 20, 32, generator=gen)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool3d(x, (5, 4, 4)).flatten(1) / 255
        return pooled @ self.lip

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.aud / 100


def test_streaming_does_not_depend_on_batches_and_stays_bounded():
    crops, audio = _synthetic(150, seed=2)
    whole = score_clip(Tiny(), crops, audio, batch=150)
    scorer = SyncScorer(Tiny(), audio)
    sizes = []
    for i in range(0, len(crops), 3):
        scorer.update(crops[i:i + 3])
        sizes.append((len(scorer._frames), len(scorer._vid), len(scorer._aud)))
    bits = scorer.compute()
    assert bits.to_dict() == whole.to_dict()
    # buffered crops, pending video and audio embeddings never exceed one batch plus the shift window
    assert max(s[0] for s in sizes) <= 20 + 4 + 3
    assert max(s[1] for s in sizes) <= 20 + 15 and max(s[2] for s in sizes) <= 20 + 2 * 15


def test_audio_longer_or_shorter_than_video():
    crops, audio = _synthetic(40, seed=3)
    short = score_clip(Tiny(), crops, audio[: 30 * 640 + 100])
    assert (short.video_frames, short.audio_frames, short.windows) == (40, 30, 25)
    trimmed = score_clip(Tiny(), crops[:30], audio[: 30 * 640])
    assert (short.offset, short.distances, short.frame_confidence) == (
        trimmed.offset, trimmed.distances, trimmed.frame_confidence)
    long = score_clip(Tiny(), crops[:30], audio)
    assert (long.video_frames, long.audio_frames, long.windows) == (30, 40, 25)


def test_float_audio_is_scored_as_its_int16_wav():
    rng = np.random.default_rng(4)
    floats = rng.uniform(-1.2, 1.2, 5000).astype(np.float32)
    as_wav = np.clip(np.rint(floats.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(as_int16_scale(floats), as_wav.astype(np.float64))
    np.testing.assert_array_equal(as_int16_scale(as_wav), as_wav.astype(np.float64))


@pytest.mark.parametrize("n", [1, 399, 400, 401, 16000 * 2 + 7])
def test_chunked_mfcc_equals_python_speech_features(n):
    audio = (np.random.default_rng(n).standard_normal(n) * 4000).astype(np.int16)
    np.testing.assert_allclose(mfcc(audio, chunk_frames=17), psf.mfcc(audio, 16000), rtol=0, atol=1e-9)


def test_bad_input_is_a_clear_error(random_syncnet):
    crops, audio = _synthetic(10, seed=5)
    with pytest.raises(TalkbenchError, match=r"audio is silent \(-inf dBFS"):
        SyncScorer(random_syncnet, np.zeros(16000, np.int16))
    with pytest.raises(TalkbenchError, match="audio is empty"):
        SyncScorer(random_syncnet, np.zeros(0, np.int16))
    with pytest.raises(TalkbenchError, match="clip too short for SyncNet: 5 video frames"):
        score_clip(random_syncnet, crops[:5], audio)
    with pytest.raises(TalkbenchError, match=r"0\.12 s of audio"):
        score_clip(random_syncnet, crops, audio[:3 * 640])
    with pytest.raises(ValueError, match=r"uint8 crops of shape \(N, 224, 224, 3\)"):
        SyncScorer(random_syncnet, audio).update(crops[..., 0])


def test_folded_syncnet_scores_like_the_network(random_syncnet):
    """The engine's inference copy (batch norms folded into the convolutions) gives the network's scores."""
    crops, audio = _synthetic(60, seed=4)
    eager = score_clip(random_syncnet, crops, audio)
    folded_net = fold_batch_norms(copy.deepcopy(random_syncnet))
    assert not any(isinstance(m, torch.nn.BatchNorm3d | torch.nn.BatchNorm2d) for m in folded_net.modules())
    folded = score_clip(folded_net, crops, audio)
    assert folded.offset == eager.offset
    assert folded.lse_c == pytest.approx(eager.lse_c, abs=1e-4) and folded.lse_d == pytest.approx(eager.lse_d, abs=1e-4)
    np.testing.assert_allclose(folded.distances, eager.distances, atol=1e-4)
