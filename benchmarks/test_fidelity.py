"""Fidelity of each generated video against its speaker's reference: PSNR and SSIM.

The tests live in talkbench_plugin/benchmarks/test_fidelity.py (shipped with the package, run from any
folder by `talkbench run`); this module collects them here under the same ids."""

from talkbench_plugin.benchmarks.test_fidelity import test_psnr, test_ssim  # noqa: F401
