"""Perceptual columns of the papers' tables: LPIPS (ER-NeRF), CPBD (SadTalker), FVD (video generation papers).

- LPIPS: AlexNet v0.1 as the ``lpips`` package computes it on the aligned frame pairs in RGB [-1, 1], mean
  over frames (--talkbench-lpips-net vgg for VGG); needs torchvision's backbone file (`talkbench weights fetch
  alexnet`).
- CPBD: sharpness of the generated frames' luma by the ``cpbd`` package, mean over frames; no reference,
  no weights (--talkbench-cpbd-sampling scores every K-th frame instead of all).
- FVD: cd-fvd's I3D on consecutive 16-frame clips (224x224) of each video's own frames in the segment, the
  generated video's against its speaker's reference (cached statistics), pooled per language group in the
  per-language table; needs `talkbench weights fetch i3d`.
Without their weights the network metrics skip with the command that fetches them;
--talkbench-require-weights makes them fail instead.
"""


def test_lpips(talkbench):
    talkbench.check("lpips")


def test_cpbd(talkbench):
    talkbench.check("cpbd")


def test_fvd(talkbench):
    talkbench.check("fvd")
