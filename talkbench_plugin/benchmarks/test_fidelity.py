"""Fidelity of each generated video against its speaker's reference: PSNR and SSIM.

Parametrized over the dataset's (speaker, pipeline) cases by the talkbench plugin; each test asserts
the bounds of ``fixtures/thresholds/<dataset>.toml``. All metrics of a case share one decode pass.
"""


def test_psnr(talkbench):
    talkbench.check("psnr")


def test_ssim(talkbench):
    talkbench.check("ssim")
