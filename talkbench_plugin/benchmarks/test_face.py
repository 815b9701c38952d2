"""Face metrics of each generated video against its speaker: LMD and CSIM.

LMD (GeneFace, ER-NeRF): face-alignment's 68 FAN landmarks of each aligned frame pair, one S3FD box per
frame (lip sync's detector); mean distance over the mouth (``lmd``) and the whole face (``lmd_face``) in
reference pixels, normalised by the outer-eye-corner distance in the details. CSIM (SadTalker): cosine
similarity of insightface's ArcFace embeddings between the speaker's identity source and each generated
frame. Without their weights these tests skip with the command that fetches them;
--talkbench-require-weights makes them fail instead.
"""


def test_lmd(talkbench):
    talkbench.check("lmd")


def test_lmd_face(talkbench):
    talkbench.check("lmd_face")


def test_csim(talkbench):
    talkbench.check("csim")
