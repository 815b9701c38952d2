"""Face tracks and crops: exact agreement with syncnet-python's pipeline, streaming bounds, modes, errors."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from pinned import pin

from talkbench_plugin import weights
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.sync import model as syncnet_model
from talkbench_plugin.sync.faces import (
    SMOOTH,
    FaceCropper,
    FaceSettings,
    S3FDDetector,
)
from talkbench_plugin.sync.video import VideoSyncScorer


class Scripted:
    """A detector that replays given boxes: one list of [x1, y1, x2, y2, score] per frame."""

    def __init__(self, boxes: list[list[list[float]]]) -> None:
        self.boxes, self.calls = boxes, []

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        start = sum(len(c) for c in self.calls)
        self.calls.append(range(start, start + len(frames)))
        return [np.array(self.boxes[i], dtype=np.float64).reshape(-1, 5) for i in range(start, start + len(frames))]

    def settings(self) -> dict:
        return {"detector": "scripted"}


def _scene(seed: int, n: int = 150) -> list[list[list[float]]]:
    """Two speakers with jitter and missed detections, a split track (gap > 25), a small face, false
    positives, and the box order shuffled in some frames (the reference's tracking depends on it)."""
    rng = np.random.default_rng(seed)
    boxes: list[list[list[float]]] = [[] for _ in range(n)]

    def face(cx, cy, size, frames):
        for f in frames:
            x, y = np.array([cx, cy]) + rng.normal(0, 3, 2)
            s = size + rng.normal(0, 3)
            boxes[f].append([x - s / 2, y - s / 2, x + s / 2, y + s / 2, rng.uniform(0.9, 1)])

    face(150, 180, 130, [f for f in range(140) if not 40 <= f < 52 and rng.random() > 0.1])
    face(350, 170, 150, [*range(20, 70), *range(95, n)])
    face(350, 300, 60, range(30, 120))
    for f in rng.choice(n, 15):
        x, y = rng.uniform(0, 300, 2)
        boxes[f].append([x, y, x + 40, y + 40, 0.95])
    for frame in boxes:
        if rng.random() < 0.15:
            rng.shuffle(frame)
    return boxes


def _reference_tracks(boxes, frames, tmp_path, monkeypatch):
    """syncnet-python's own ``_track`` and ``_crop`` on the same detections and frames; the crops are
    taken from what ``_crop`` hands to its (lossy XVID) VideoWriter."""
    from syncnet_python import syncnet_pipeline as sp

    pipe = sp.SyncNetPipeline.__new__(sp.SyncNetPipeline)  # no weights needed for these two steps
    pipe.cfg = sp.PipelineConfig()
    dets = [[{"frame": i, "bbox": [float(v) for v in b[:4]], "conf": float(b[4])} for b in frame]
            for i, frame in enumerate(boxes)]
    tracks = pipe._track([list(d) for d in dets])
    paths = []
    for i, frame in enumerate(frames):
        paths.append(str(tmp_path / f"{i:06d}.png"))
        cv2.imwrite(paths[-1], frame)
    written = []

    class Capture:
        def __init__(self, *args):
            written.append([])

        def write(self, img):
            written[-1].append(img.copy())

        def release(self):
            pass

    monkeypatch.setattr(sp.cv2, "VideoWriter", Capture)
    monkeypatch.setattr(sp.subprocess, "run", lambda *a, **k: None)
    monkeypatch.setattr(sp.os, "remove", lambda path: None)
    for i, track in enumerate(tracks):
        pipe._crop(track, paths, "unused.wav", tmp_path / "crops" / f"{i:05d}")
    return tracks, [np.stack(w) for w in written]


def _run(cropper: FaceCropper, frames: np.ndarray, step: int) -> dict[int, np.ndarray]:
    got: dict[int, list] = {}
    for i in range(0, len(frames), step):
        for batch in cropper.update(frames[i:i + step]):
            got.setdefault(batch.track, []).append(batch)
    for batch in cropper.finish():
        got.setdefault(batch.track, []).append(batch)
    out = {}
    for track, batches in got.items():
        assert [b.start for b in batches] == list(np.cumsum([batches[0].start] + [len(b.crops) for b in batches[:-1]]))
        out[track] = np.concatenate([b.crops for b in batches])
    return out


@pytest.mark.parametrize(("seed", "step"), [(0, 7), (1, 1), (2, 64)])
def test_tracks_and_crops_equal_syncnet_python(seed, step, tmp_path, monkeypatch):
    boxes = _scene(seed)
    frames = np.random.default_rng(seed).integers(0, 256, (len(boxes), 300, 420, 3), dtype=np.uint8)
    ref_tracks, ref_crops = _reference_tracks(boxes, frames, tmp_path, monkeypatch)

    cropper = FaceCropper(Scripted(boxes), color="bgr")
    crops = _run(cropper, frames, step)
    valid = [t for t in cropper.tracks if t.valid]
    assert len(ref_tracks) >= 2
    assert [(t.first, t.last) for t in valid] == [(int(t["frame"][0]), int(t["frame"][-1])) for t in ref_tracks]
    for track, ref in zip(valid, ref_crops):
        assert np.array_equal(crops[track.id], ref)
    rejected = {t.reason.split(":")[0] for t in cropper.tracks if not t.valid}
    assert "face too small" in rejected
    # RGB input gives the same BGR crops
    rgb = _run(FaceCropper(Scripted(boxes), color="rgb"), np.ascontiguousarray(frames[..., ::-1]), step)
    assert all(np.array_equal(rgb[t.id], crops[t.id]) for t in valid)


def test_frames_held_are_bounded():
    """Only the frames within the smoothing window and the largest detection gap are held."""
    n, gap = 400, 25
    boxes = [[[100 + f % 7, 80, 260 + f % 7, 240, 0.99]] if f % gap == 0 else [] for f in range(n)]
    cropper = FaceCropper(Scripted(boxes), FaceSettings(min_track=5))
    frames = np.zeros((n, 320, 360, 3), np.uint8)
    held, emitted = [], 0
    for i in range(0, n, 10):
        emitted += sum(len(b.crops) for b in cropper.update(frames[i:i + 10]))
        held.append(len(cropper._buffer))
    emitted += sum(len(b.crops) for b in cropper.finish())
    assert max(held) <= SMOOTH // 2 + gap + 10 + 1
    track = cropper.tracks[0]
    assert track.valid and emitted == track.frames == 376


def test_every_kth_frame_detection_interpolates():
    n, k = 140, 5
    moving = [[[60 + f, 40, 230 + f, 210, 0.99]] for f in range(n)]  # 1 px per frame: exact interpolation
    frames = np.random.default_rng(0).integers(0, 256, (n, 260, 400, 3), dtype=np.uint8)
    every = Scripted(moving[::k])  # it is shown frames 0, k, 2k, ... only
    sparse = _run(cropper := FaceCropper(every, FaceSettings(detect_every=k)), frames, 16)
    dense = _run(FaceCropper(Scripted(moving)), frames, 16)
    assert sum(len(c) for c in every.calls) == math.ceil(n / k)
    last = (n - 1) // k * k
    assert (cropper.tracks[0].first, cropper.tracks[0].last) == (0, last)
    assert len(sparse[0]) == last + 1
    # equal except where the median filter reaches past the (earlier) end of the sparse track
    assert np.array_equal(sparse[0][: last + 1 - SMOOTH // 2], dense[0][: last + 1 - SMOOTH // 2])
    assert cropper.protocol()["detect_every"] == k
    # a track needs more than min_track / k detections
    short = FaceCropper(Scripted(moving[:50:k]), FaceSettings(detect_every=k))
    _run(short, frames[:50], 16)
    assert not short.tracks[0].valid and "10 detections" in short.tracks[0].reason


def test_no_detector_uses_whole_frames():
    frames = np.random.default_rng(1).integers(0, 256, (12, 256, 256, 3), dtype=np.uint8)
    cropper = FaceCropper(None, color="rgb")
    crops = _run(cropper, frames, 5)[0]
    expected = np.stack([cv2.resize(f, (224, 224))[..., ::-1] for f in frames])
    assert np.array_equal(crops, expected)
    assert [(t.first, t.last, t.valid) for t in cropper.tracks] == [(0, 11, True)]
    assert cropper.protocol()["detector"] == "none"


def test_s3fd_detector_from_verified_weights(tmp_path, monkeypatch):
    path = syncnet_model.write_random_weights("s3fd", tmp_path / "sfd_face.pth", seed=0)
    pin(monkeypatch, "s3fd", path)
    detector = S3FDDetector(weights_dir=tmp_path, conf_th=0.5, batch_pixels=2 * 64 * 80)  # 2 frames a batch; random weights score about 0.5
    frames = np.random.default_rng(2).integers(0, 256, (3, 256, 320, 3), dtype=np.uint8)
    found = detector.detect(frames)
    # batched, channels-last: the boxes that syncnet-python's S3FD.detect_faces finds frame by frame
    from syncnet_python.detectors.s3fd import S3FD

    reference = S3FD(detector.net, device="cpu")
    for frame, boxes in zip(frames, found):
        expected = reference.detect_faces(frame, conf_th=0.5, scales=[0.25])
        assert len(expected) > 0 and boxes.shape == expected.shape
        np.testing.assert_allclose(boxes, expected, atol=1e-3)
    assert detector.settings() == {"detector": "s3fd", "scale": 0.25, "conf_th": 0.5}
    path.write_bytes(path.read_bytes()[:-10])  # a truncated download is refused before unpickling
    with pytest.raises(weights.WeightsError, match="not the pinned sfd_face.pth"):
        S3FDDetector(weights_dir=tmp_path)


class Brightness(torch.nn.Module):
    """A cheap SyncNet stand-in: mean brightness of each window frame vs MFCC energy."""

    def forward_lip(self, x):
        return x.mean(dim=(1, 3, 4)) / 50

    def forward_aud(self, x):
        return x[:, 0, 0, ::4] / 10


def _video(n: int, faces: list[tuple[tuple[int, int, int, int], range]]):
    """Frames with grey squares where the faces are, the boxes a detector would report, and audio."""
    rng = np.random.default_rng(3)
    frames = np.zeros((n, 300, 500, 3), np.uint8)
    boxes: list[list[list[float]]] = [[] for _ in range(n)]
    for box, span in faces:
        for f in span:
            frames[f, box[1]:box[3], box[0]:box[2]] = rng.integers(60, 200)
            boxes[f].append([*box, 0.99])
    audio = (rng.standard_normal(n * 640) * 3000).astype(np.int16)
    return frames, boxes, audio


def _score(frames, boxes, audio, **kw):
    scorer = VideoSyncScorer(Brightness(), audio, detector=Scripted(boxes), **kw)
    for i in range(0, len(frames), 32):
        scorer.update(frames[i:i + 32])
    return scorer.compute()


def test_bad_videos_are_clear_errors():
    frames, boxes, audio = _video(80, [((20, 20, 150, 150), range(10, 40))])
    with pytest.raises(TalkbenchError, match="no face detected in any of 80 frames"):
        _score(frames, [[] for _ in boxes], audio)
    with pytest.raises(TalkbenchError, match=r"no face track ≥ 51 frames found in 80 frames \(1 rejected: "
                                             r"frames 10-39: 30 detections"):
        _score(frames, boxes, audio)
    frames, boxes, audio = _video(80, [((20, 20, 90, 90), range(80))])
    with pytest.raises(TalkbenchError, match="face too small: mean 70×70 px"):
        _score(frames, boxes, audio)
    with pytest.raises(TalkbenchError, match="audio is silent"):
        VideoSyncScorer(Brightness(), np.zeros(80 * 640, np.int16), detector=None)
    frames, boxes, audio = _video(80, [((20, 20, 150, 150), range(80))])
    with pytest.raises(TalkbenchError, match=r"no face track could be scored: frames 0-79: clip too short for "
                                             r"SyncNet: 80 video frames and 0\.12 s of audio"):
        _score(frames, boxes, audio[: 3 * 640])


def test_several_faces_combine_rules():
    frames, boxes, audio = _video(120, [((20, 20, 150, 150), range(120)), ((260, 40, 400, 180), range(30, 110))])
    results = {rule: _score(frames, boxes, audio, combine=rule) for rule in ("best", "longest", "mean")}
    tracks = results["best"].tracks
    assert [(t.track.first, t.track.last) for t in tracks] == [(0, 119), (30, 109)]
    c = [t.score.lse_c for t in tracks]
    d = [t.score.lse_d for t in tracks]
    assert (results["best"].lse_c, results["best"].lse_d) == (max(c), min(d))
    assert (results["longest"].lse_c, results["longest"].lse_d) == (c[0], d[0])
    assert results["mean"].lse_c == pytest.approx((120 * c[0] + 80 * c[1]) / 200)
    assert results["mean"].protocol["combine"] == "mean" and results["mean"].protocol["faces"]["min_track"] == 50
    with pytest.raises(TalkbenchError, match=r"several faces: 2 face tracks \(frames 0-119, 30-109\)"):
        _score(frames, boxes, audio, combine="single")
    # each track is scored against the audio from its own first frame on
    assert tracks[1].score.audio_frames == 120 - 30
