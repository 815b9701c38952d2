"""Image quality of each generated video: FID, Inception Score, and any pyiqa metric by name.

The tests live in talkbench_plugin/benchmarks/test_quality.py (shipped with the package, run from any
folder by `talkbench run`); this module collects them here under the same ids."""

from talkbench_plugin.benchmarks.test_quality import test_fid, test_inception_score, test_iqa  # noqa: F401
