"""Face metrics of each generated video against its speaker: LMD and CSIM.

The tests live in talkbench_plugin/benchmarks/test_face.py (shipped with the package, run from any
folder by `talkbench run`); this module collects them here under the same ids."""

from talkbench_plugin.benchmarks.test_face import test_lmd, test_lmd_face, test_csim  # noqa: F401
