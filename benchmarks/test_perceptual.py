"""Perceptual columns of the papers' tables: LPIPS (ER-NeRF), CPBD (SadTalker), FVD (video generation papers).

- CPBD: sharpness of the generated frames' luma by the ``cpbd`` package, mean over frames; no reference,
  no weights (--talkbench-cpbd-sampling scores every K-th frame instead of all).
Without their weights the network metrics skip with the command that fetches them;
--talkbench-require-weights makes them fail instead.
"""


def test_cpbd(talkbench):
    talkbench.check("cpbd")
