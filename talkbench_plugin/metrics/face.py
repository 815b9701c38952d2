"""Face metrics on the aligned frame pairs: LMD (landmark distance) and CSIM (identity similarity).

Both use one S3FD box and face-alignment's 68 FAN landmarks per frame (``face.landmarks``), computed
once per batch and side whichever of them asks first (``FramePairs.shared``). A frame without exactly
one usable face makes the metric's error (naming the file and the time); the case's other metrics go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import TalkbenchError
from ..options.face import FaceOptions
from .base import FramePairs, Metric, MetricValue

if TYPE_CHECKING:
    from ..face.landmarks import FrameFaces, Landmarker
    from ..manifest import Case

MOUTH = slice(48, 68)
OUTER_EYE_CORNERS = (36, 45)
_LANDMARKERS: dict[FaceOptions, Landmarker] = {}


def landmarker(options: FaceOptions, cache: Path | None = None) -> Landmarker:
    """The process's S3FD + FAN for ``options`` (the networks load once; FAN's OpenVINO conversion goes into
    the first case's ``cache``)."""
    if options not in _LANDMARKERS:
        from ..face.landmarks import Landmarker

        _LANDMARKERS[options] = Landmarker(options, cache=cache)
    return _LANDMARKERS[options]


def side_faces(pairs: FramePairs, side: str, options: FaceOptions, path: Any, shift: float = 0.0,
               cache: Path | None = None) -> FrameFaces:
    """Landmarks of one side of a batch, computed once for all the face metrics (a problem is kept too);
    ``shift`` turns the reference timeline into the video's own for the error message."""
    from ..face.landmarks import FaceProblem

    key = ("faces", side, options)
    if key not in pairs.shared:
        frames = pairs.ref_rgb if side == "ref" else pairs.gen_rgb
        name = "reference" if side == "ref" else "generated"
        where = [f"the {name} frame at {t - shift:.3f} s of {path}" for t in pairs.times]
        try:
            pairs.shared[key] = landmarker(options, cache).landmarks(frames, where)
        except FaceProblem as exc:
            pairs.shared[key] = exc
    found = pairs.shared[key]
    if isinstance(found, Exception):
        raise found
    return found


class FaceMetric(Metric):
    """A face metric for one case: the first frame without a usable face ends it with that error."""

    def __init__(self, case: Case | None = None, options: FaceOptions | None = None,
                 cache: Path | None = None) -> None:
        self.case = case
        self.options = options or FaceOptions()
        self.cache = cache
        self.error: str | None = None

    def update(self, pairs: FramePairs) -> None:
        from ..face.landmarks import FaceProblem

        if self.error is not None or len(pairs) == 0:
            return
        try:
            self.update_faces(pairs)
        except FaceProblem as exc:
            self.error = f"{self.name}: {exc}"
        except TalkbenchError as exc:  # weights missing or not the pinned ones
            self.error = str(exc)

    def update_faces(self, pairs: FramePairs) -> None:
        raise NotImplementedError

    def check(self, count: int) -> None:
        if self.error is not None:
            raise TalkbenchError(self.error)
        if count == 0:
            raise TalkbenchError(f"{self.name}: no frame pair to compare")

    def faces(self, pairs: FramePairs, side: str) -> FrameFaces:
        """``side_faces`` of this case's reference ("ref") or generated ("gen") frames."""
        if self.case is None:
            return side_faces(pairs, side, self.options, f"the {side} video", cache=self.cache)
        if side == "ref":
            return side_faces(pairs, side, self.options, self.case.speaker.reference, cache=self.cache)
        return side_faces(pairs, side, self.options, self.case.generated, self.case.offset, self.cache)


class LandmarkDistance(FaceMetric):
    """LMD: mean Euclidean distance between the reference's and the generated frame's FAN landmarks, over
    the mouth (points 48-67, ``lmd``) or the whole face (all 68, ``lmd_face``), in pixels of the reference
    frame; per frame also divided by the reference's outer-eye-corner distance (points 36 and 45)."""

    higher_is_better = False
    unit = "px"
    POINTS: ClassVar[dict[str, slice]] = {"lmd": MOUTH, "lmd_face": slice(0, 68)}

    def __init__(self, name: str, case: Case | None = None, options: FaceOptions | None = None,
                 cache: Path | None = None) -> None:
        super().__init__(case, options, cache)
        self.name = name
        self.pixels: list[float] = []
        self.normalised: list[float] = []

    def update_faces(self, pairs: FramePairs) -> None:
        ref, gen = self.faces(pairs, "ref").points, self.faces(pairs, "gen").points
        values = per_frame_distance(ref, gen, self.POINTS[self.name])
        eyes = np.linalg.norm(ref[:, OUTER_EYE_CORNERS[0]] - ref[:, OUTER_EYE_CORNERS[1]], axis=1)
        self.pixels += values.tolist()
        self.normalised += (values / np.maximum(eyes, 1e-6)).tolist()

    def compute(self) -> MetricValue:
        self.check(len(self.pixels))
        return MetricValue(float(np.mean(self.pixels)), list(self.pixels),
                           {"normalised": float(np.mean(self.normalised)), "per_frame_normalised": self.normalised,
                            "frames": len(self.pixels)})

    def protocol(self) -> dict[str, Any]:
        points = self.POINTS[self.name]
        return {**landmarker(self.options, self.cache).protocol(),
                "points": f"{points.start}-{points.stop - 1} ({'mouth' if self.name == 'lmd' else 'all 68'})",
                "distance": "per frame: mean Euclidean distance over the points, reference vs generated landmarks "
                            "in the reference frame's pixels; value: mean over the aligned frames",
                "normalised": "per frame divided by the reference's outer-eye-corner distance (points 36, 45)",
                "settings": self.options.to_dict()}


def per_frame_distance(ref: np.ndarray, gen: np.ndarray, points: slice) -> np.ndarray:
    """Mean Euclidean distance over ``points`` of each frame's (68, 2) landmarks: shape (N,)."""
    return np.linalg.norm(ref[:, points].astype(np.float64) - gen[:, points], axis=2).mean(axis=1)


class IdentitySimilarity(FaceMetric):
    """CSIM: per generated frame, the cosine similarity of insightface's ArcFace embeddings of its face and
    of the speaker's identity source: the source image for one-shot pipelines, the aligned reference frame
    for the others (dubbing, person-specific, calibration); the value is the mean over the frames."""

    name = "csim"
    higher_is_better = True

    def __init__(self, case: Case | None = None, options: FaceOptions | None = None,
                 cache: Path | None = None) -> None:
        super().__init__(case, options, cache)
        self.values: list[float] = []
        self._model: Any = None
        self._source: np.ndarray | None = None  # the source image's embedding (one-shot)

    def one_shot(self) -> bool:
        return self.case is not None and self.case.pipeline.mode == "one-shot"

    def update_faces(self, pairs: FramePairs) -> None:
        from ..face.identity import cosine, embed

        if self.one_shot() and self._source is None:
            self._source = self._source_embedding()
        generated = embed(self.arcface(), pairs.gen_rgb, self.faces(pairs, "gen").points)
        if self._source is not None:
            source = np.broadcast_to(self._source, generated.shape)
        else:
            source = embed(self.arcface(), pairs.ref_rgb, self.faces(pairs, "ref").points)
        self.values += cosine(source, generated).tolist()

    def arcface(self) -> Any:
        if self._model is None:
            from ..face.identity import load_arcface

            self._model = load_arcface(self.options.weights, self.options.device)
        return self._model

    def _source_embedding(self) -> np.ndarray:
        """The ArcFace embedding of the speaker's source image (one face)."""
        from ..face.identity import embed

        speaker, pipeline = self.case.speaker, self.case.pipeline
        if speaker.image is None:
            raise TalkbenchError(f"csim: speaker {speaker.id} has no identity image for the one-shot pipeline "
                                 f"{pipeline.name}; set speakers.{speaker.id}.image in the manifest (the source "
                                 "image the pipeline animates)")
        image = read_image(speaker.image)[None]
        faces = landmarker(self.options, self.cache).landmarks(image, [f"the identity image {speaker.image}"])
        return embed(self.arcface(), image, faces.points)[0]

    def compute(self) -> MetricValue:
        self.check(len(self.values))
        source = f"the source image {self.case.speaker.image}" if self.one_shot() else "the aligned reference frames"
        return MetricValue(float(np.mean(self.values)), list(self.values),
                           {"identity_source": source, "frames": len(self.values)})

    def protocol(self) -> dict[str, Any]:
        from .. import weights

        return {**landmarker(self.options, self.cache).protocol(),
                "embedding": {"model": "insightface ArcFace (buffalo_l w600k_r50.onnx, onnxruntime)",
                              "alignment": "insightface face_align.norm_crop 112x112 on 5 points from the 68 FAN "
                                           "landmarks (eye centres 36-41 / 42-47, nose tip 30, mouth corners 48, 54)",
                              "weights_sha256": weights.spec_for("arcface").sha256},
                "similarity": "cosine of the embeddings of the identity source and each generated frame; value: "
                              "mean over the frames",
                "identity_source": "one-shot: the speaker's source image; otherwise the aligned reference frame",
                "settings": self.options.to_dict()}


def read_image(path: Any) -> np.ndarray:
    """An image file's first frame as (H, W, 3) RGB uint8 (PyAV)."""
    import av

    from ..errors import MediaError

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, OSError) as exc:
        raise MediaError(path, f"cannot read the identity image: {exc}") from None
    return frame.to_ndarray(format="rgb24")


def make_face_metric(name: str, case: Case | None, options: FaceOptions | None,
                     cache: Path | None = None) -> Metric:
    """``lmd``, ``lmd_face`` or ``csim`` for ``case``; FAN converts into ``cache`` (OpenVINO)."""
    if name in LandmarkDistance.POINTS:
        return LandmarkDistance(name, case, options, cache)
    if name == "csim":
        return IdentitySimilarity(case, options, cache)
    raise KeyError(f"unknown face metric {name!r}")
