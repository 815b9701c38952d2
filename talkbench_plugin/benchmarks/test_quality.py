"""Image quality of each generated video: FID, Inception Score, and any pyiqa metric by name.

FID compares the generated video's own frames in the evaluated segment with its speaker's reference
frames (pyiqa's InceptionV3; the reference statistics are cached); the per-language table adds the FID of
each group's pooled frames. The Inception Score scores the generated frames alone. Other names in
--talkbench-metrics are pyiqa's: full-reference ones on the aligned frame pairs, no-reference ones on the
generated frames, one test each: ``test_iqa[<metric>-<case>]``. Without their weights these tests skip
with what to fetch; --talkbench-require-weights makes them fail instead.
"""


def test_fid(talkbench):
    talkbench.check("fid")


def test_inception_score(talkbench):
    talkbench.check("inception_score")


def test_iqa(talkbench, talkbench_iqa_metric):
    talkbench.check(talkbench_iqa_metric)
