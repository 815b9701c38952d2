"""Identity embeddings: insightface's ArcFace (buffalo_l's ``w600k_r50.onnx``) on its 5-point aligned crops.

insightface aligns a face by 5 keypoints (eye centres, nose tip, mouth corners) with
``face_align.norm_crop`` to 112×112 and embeds the crop with ``ArcFaceONNX.get_feat`` (onnxruntime).
talkbench takes the 5 points from FAN's 68 landmarks instead of insightface's own detector (SCRFD):
the means of points 36-41 and 42-47 (the eyes), point 30 (nose tip), points 48 and 54 (mouth corners).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import weights

_MODELS: dict[tuple[str, str], Any] = {}


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """insightface's 5 keypoints (image-left eye, image-right eye, nose, left and right mouth corner) of a
    (68, 2) landmark array."""
    points = np.asarray(landmarks, dtype=np.float32)
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


def load_arcface(directory: str | None = None, device: str = "cpu") -> Any:
    """insightface's ``ArcFaceONNX`` on the pinned ``w600k_r50.onnx`` (verified), once per process."""
    path = weights.verified_path("arcface", directory)
    key = (str(path), device)
    if key not in _MODELS:
        import onnxruntime
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else \
            ["CPUExecutionProvider"]
        session = onnxruntime.InferenceSession(str(path), providers=providers)
        _MODELS[key] = ArcFaceONNX(model_file=str(path), session=session)
    return _MODELS[key]


def embed(model: Any, frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """ArcFace embeddings (N, 512) of RGB ``frames``' faces, aligned by the 5 points of ``landmarks``
    (N, 68, 2): insightface's norm_crop of the BGR frame, then ``get_feat`` on the batch of crops."""
    from insightface.utils.face_align import norm_crop

    with warnings.catch_warnings():  # scikit-image's notice about the SimilarityTransform.estimate norm_crop uses
        warnings.simplefilter("ignore", FutureWarning)
        crops = [norm_crop(np.ascontiguousarray(f[..., ::-1]), five_points(p), image_size=model.input_size[0])
                 for f, p in zip(frames, landmarks)]
    return np.asarray(model.get_feat(crops), dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (``ArcFaceONNX.compute_sim`` per row)."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
