"""Lip sync of each generated video: SyncNet's LSE-C, LSE-D and AV offset, as syncnet-python computes them.

The tests live in talkbench_plugin/benchmarks/test_sync.py (shipped with the package, run from any
folder by `talkbench run`); this module collects them here under the same ids."""

from talkbench_plugin.benchmarks.test_sync import test_lse_c, test_lse_d, test_av_offset  # noqa: F401
