"""Lip sync of each generated video: SyncNet's LSE-C, LSE-D and AV offset, as syncnet-python computes them.

One SyncNet pass per case gives all three (25 fps, face tracks by S3FD, the video's own audio by
default; see the --talkbench-sync-* options). Without the weights these tests skip with the command
that fetches them; --talkbench-require-weights makes them fail instead.
"""


def test_lse_c(talkbench):
    talkbench.check("lse_c")


def test_lse_d(talkbench):
    talkbench.check("lse_d")


def test_av_offset(talkbench):
    talkbench.check("av_offset")
