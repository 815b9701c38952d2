"""Lip sync (LSE-C, LSE-D, AV offset) the way syncnet-python computes it, streaming.

``faces``: detection, tracking and 224×224 crops from frames in memory; ``score``: SyncNet
distances and scores from crops and 16 kHz audio; ``mfcc``: the reference's audio features;
``model``: syncnet-python's networks with verified (or deterministic random) weights; ``video``:
a whole video's score from its face tracks, combined by a named rule.
"""

from .faces import FaceCropper, FaceSettings, FaceTrack, FixedBoxDetector, S3FDDetector
from .score import SyncScore, SyncScorer, score_clip
from .video import COMBINE, VideoSync, VideoSyncScorer

__all__ = [
    "COMBINE", "FaceCropper", "FaceSettings", "FaceTrack", "FixedBoxDetector", "S3FDDetector",
    "SyncScore", "SyncScorer", "VideoSync", "VideoSyncScorer", "score_clip",
]
