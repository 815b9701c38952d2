"""Full path on real clips: talkbench's faces + scoring against syncnet-python's SyncNetPipeline.inference,
with the same deterministic face detector (one fixed box per clip) and the same random weights in both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile
from videos import CLIPS

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.sync import SyncOptions
from talkbench_plugin.sync import model as syncnet_model
from talkbench_plugin.sync.faces import FaceCropper, FixedBoxDetector, S3FDDetector
from talkbench_plugin.sync.score import score_clip
from talkbench_plugin.sync.video import VideoSyncScorer

av = pytest.importorskip("av")
SECONDS = 2.56  # 64 frames: more than min_track (50), little CPU


def _lossless_excerpt(name: str, folder: Path) -> Path:
    """The clip's first seconds as constant 25 fps FFV1 with 16 kHz mono PCM, so both sides decode
    identical pixels and samples and neither meets a timestamp gap."""
    src = CLIPS / name
    if not src.is_file():
        pytest.skip(f"{src} not available")
    out = folder / f"{src.stem}.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(SECONDS), "-vf", "fps=25",
                    "-c:v", "ffv1", "-c:a", "pcm_s16le", "-ar", "16000", "-ac", "1", str(out)], check=True)
    return out


def _xvid_jpeg_roundtrip(crops: np.ndarray, folder: Path) -> np.ndarray:
    """What the reference does to crops before scoring them: XVID via OpenCV, then JPEG frames via ffmpeg."""
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "t.avi"), cv2.VideoWriter_fourcc(*"XVID"), 25, (224, 224))
    for crop in crops:
        writer.write(crop)
    writer.release()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(folder / "t.avi"), "-f", "image2", "-threads", "1",
                    str(folder / "%06d.jpg")], check=True)
    return np.stack([cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))])


@pytest.mark.parametrize(("clip", "box"), [
    ("may_5s.mp4", (120, 100, 400, 420)),
    ("syncnet_example.avi", (400, 110, 650, 400)),  # off-centre face
    ("hdtf_face4_30fps.mp4", (300, 80, 540, 400)),  # resampled to 25 fps
    ("hdtf_face1_22fps.mp4", (240, 80, 520, 400)),  # 22.131 fps, resampled to 25 fps
])
def test_full_path_matches_syncnet_pipeline(clip, box, sync_weights, tmp_path, monkeypatch):
    from syncnet_python import SyncNetPipeline

    video = _lossless_excerpt(clip, tmp_path)
    pipe = SyncNetPipeline({"syncnet_weights": str(sync_weights / "syncnet_v2.model"),
                            "s3fd_weights": str(sync_weights / "sfd_face.pth")}, device="cpu")
    monkeypatch.setattr(pipe.s3fd, "detect_faces", lambda img, conf_th, scales: np.array([[*box, 1.0]]))
    ref_tracks = []
    track = pipe._track
    monkeypatch.setattr(pipe, "_track", lambda dets: ref_tracks.extend(track(dets)) or ref_tracks[-1:])
    offsets, confs, dists, *_ = pipe.inference(str(video), None, cache_dir=str(tmp_path / "ref"))

    net = syncnet_model.build("syncnet", torch.load(sync_weights / "syncnet_v2.model", weights_only=True))
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-f", "s16le", "-"], capture_output=True,
                         check=True).stdout
    audio = np.frombuffer(pcm, np.int16)
    scorer = VideoSyncScorer(net, audio, detector=FixedBoxDetector(box))
    with av.open(str(video)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    for i in range(0, len(frames), 16):
        scorer.update(frames[i:i + 16])
    ours = scorer.compute()

    # the same tracks
    assert [(t.track.first, t.track.last) for t in ours.tracks] == [
        (int(t["frame"][0]), int(t["frame"][-1])) for t in ref_tracks]
    # the same scoring: talkbench on the very crops and audio the reference scored gives its numbers
    ref_dir = tmp_path / "ref" / "cropped" / "crop_00000"
    ref_crops = np.stack([cv2.imread(str(p)) for p in sorted(ref_dir.glob("*.jpg"))])
    same = score_clip(net, ref_crops, wavfile.read(ref_dir / "audio.wav")[1])
    assert (same.offset, same.lse_c, same.lse_d) == (offsets[0], pytest.approx(confs[0], abs=1e-4),
                                                     pytest.approx(dists[0], abs=1e-4))
    # the same scores once talkbench's crops go through the reference's lossy XVID + JPEG round trip;
    # what is left (< 0.05) is the reference's MPEG-4 q2 + JPEG q2 re-encoding of the whole frames
    cropper = FaceCropper(FixedBoxDetector(box))
    ours_crops = np.concatenate([b.crops for b in cropper.update(frames) + cropper.finish()])
    lossy = score_clip(net, _xvid_jpeg_roundtrip(ours_crops, tmp_path / "rt"), audio)
    assert lossy.lse_c == pytest.approx(confs[0], abs=0.05)
    assert lossy.lse_d == pytest.approx(dists[0], abs=0.05)
    # the streamed video scorer gives exactly what its own crops score
    own = score_clip(net, ours_crops, audio)
    assert (ours.offset, ours.lse_c, ours.lse_d) == (own.offset, pytest.approx(own.lse_c, abs=1e-5),
                                                     pytest.approx(own.lse_d, abs=1e-5))

    # the engine on the ORIGINAL clip (its own frame rate, resampled by timestamp inside the decode pass,
    # its own audio track) gives the tracks and scores of the ffmpeg fps=25 excerpt above
    monkeypatch.setattr(S3FDDetector, "detect", lambda self, frames: [np.array([[*box, 1.0]])] * len(frames))
    speaker = Speaker("clip", "en", CLIPS / clip)
    case = Case(speaker, Pipeline("reference", CALIBRATION), None, Segment(0.0, len(frames) / 25))
    record = evaluate_case(case, ["lse_c", "lse_d", "av_offset"], tmp_path / "cache",
                           options={"sync": SyncOptions(weights=str(sync_weights))})
    engine = record["metrics"]
    assert [(t["first"], t["last"]) for t in engine["lse_c"]["details"]["tracks"]] == \
        [(t.track.first, t.track.last) for t in ours.tracks]
    assert engine["av_offset"]["value"] == ours.offset
    assert engine["lse_c"]["value"] == pytest.approx(ours.lse_c, abs=1e-3)
    assert engine["lse_d"]["value"] == pytest.approx(ours.lse_d, abs=1e-3)
