"""Perceptual columns of the papers' tables: LPIPS, CPBD, FVD.

The tests live in talkbench_plugin/benchmarks/test_perceptual.py (shipped with the package, run from any
folder by `talkbench run`); this module collects them here under the same ids."""

from talkbench_plugin.benchmarks.test_perceptual import test_lpips, test_cpbd, test_fvd  # noqa: F401
