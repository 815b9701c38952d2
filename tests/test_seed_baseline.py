"""The seed's published per-video values (fixtures/baselines/microbench-seed.json) against its own table.

Source: Jason-cs18/awesome-avatar, benchmarks/readme.md. The per-video PSNR/SSIM/FID come from its
"Qualitative Results for One-shot Pipelines" captions, the means below from "Quantitative Results for
One-shot Pipelines". talkbench's own per-language aggregation (reports.per_language) recomputes them.

Findings: 10 of the 12 published means are the means of the published per-video values (within the
rounding of 3-decimal values). Two are not:
- SadTalker en FID: the per-video values (24.051, 46.182, 98.982) average to 56.405, not 56.407 (off by
  0.002, more than rounding of three 3-decimal values can explain: at most 0.0005 + 0.0005).
- SadTalker zh FID: the per-video values (52.362, 104.221, 4.781) average to 53.788, not 68.120. No subset
  of the 12 published per-video FIDs averages to 68.120; it would be the zh mean if
  zuijiapaidang_chinese-SadTalker's FID were 47.777 instead of 4.781 (an outlier: below every Wav2Lip FID
  while its PSNR, 17.359, is among the worst). Either that per-video value or the mean is a typo, or the
  mean came from another run; the readme does not say which.
(Wav2Lip zh SSIM: the published per-video values average to 0.89767, which rounds to 0.898; the table's
0.897 is consistent with unrounded per-video values, so it is within tolerance.)
"""

import itertools
import math
import statistics
import tomllib
from pathlib import Path

import pytest

from talkbench_plugin.baseline import load
from talkbench_plugin.reports import per_language

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED = FIXTURES / "baselines" / "microbench-seed.json"

# The seed's quantitative table: (language, pipeline) -> metric -> published mean.
TABLE = {
    ("en", "Wav2Lip"): {"psnr": 33.532, "ssim": 0.952, "fid": 19.685},
    ("zh", "Wav2Lip"): {"psnr": 28.725, "ssim": 0.897, "fid": 30.621},
    ("en", "SadTalker"): {"psnr": 19.509, "ssim": 0.739, "fid": 56.407},
    ("zh", "SadTalker"): {"psnr": 16.753, "ssim": 0.665, "fid": 68.120},
}
# Per-video values have 3 decimals (±0.0005 each, so ±0.0005 on a mean) and so has the published mean.
ROUNDING = 0.001
INCONSISTENT = {("en", "SadTalker", "fid"): 56.405, ("zh", "SadTalker", "fid"): 53.788}


@pytest.fixture(scope="module")
def means() -> dict[tuple[str, str, str], float]:
    table = per_language(load(SEED).records())
    names = [h.lower() for h in table.headers[2:-1]]
    return {(row[0], row[1], name): float(cell) for row in table.rows for name, cell in zip(names, row[2:-1])}


def test_the_file_holds_every_published_value() -> None:
    baseline = load(SEED)
    manifest = tomllib.loads((FIXTURES / "datasets" / "microbench.toml").read_text())
    assert baseline.dataset == manifest["dataset"]["name"]
    assert {c["speaker"] for c in baseline.cases.values()} == set(manifest["speakers"])
    assert {c["pipeline"] for c in baseline.cases.values()} == {"Wav2Lip", "SadTalker"}
    assert all(set(c["metrics"]) == {"psnr", "ssim", "fid"} for c in baseline.cases.values())
    assert len(baseline.cases) == 12
    assert baseline.entry("zuijiapaidang_chinese-SadTalker", "fid")["higher_is_better"] is False


def test_per_language_means_reproduce_the_seed_table(means: dict) -> None:
    assert len(means) == 12
    for (language, pipeline), published in TABLE.items():
        for metric, value in published.items():
            key = (language, pipeline, metric)
            if key in INCONSISTENT:
                assert means[key] == pytest.approx(INCONSISTENT[key], abs=1e-3)
                assert abs(means[key] - value) > ROUNDING, key
            else:
                assert abs(means[key] - value) <= ROUNDING, (key, means[key], value)


def test_the_zh_sadtalker_fid_is_no_mean_of_the_published_values() -> None:
    baseline = load(SEED)
    fids = {case: c["metrics"]["fid"]["value"] for case, c in baseline.cases.items()}
    matches = [subset for n in range(1, len(fids) + 1) for subset in itertools.combinations(fids, n)
               if abs(statistics.fmean(fids[c] for c in subset) - 68.120) <= ROUNDING]
    assert matches == []
    zh = ["laoliang_chinese_50s-SadTalker", "luoxiang_chinese-SadTalker"]
    needed = 3 * 68.120 - sum(fids[c] for c in zh)
    assert needed == pytest.approx(47.777, abs=1e-9)
    assert fids["zuijiapaidang_chinese-SadTalker"] == 4.781
    assert math.isclose(statistics.fmean([*(fids[c] for c in zh), needed]), 68.120)


def test_the_seed_protocol_is_not_talkbench_s() -> None:
    """The seed's numbers are ffmpeg-quality-metrics' means of frames: a talkbench PSNR is refused."""
    record = {"case": "obama1-Wav2Lip", "metrics": {"psnr": {"value": 40.0, "protocol": {"convention": "ffmpeg"}}}}
    problem = load(SEED).violation(record, "psnr", None)
    assert problem.startswith("cannot be compared with the baseline") and "protocol differs" in problem
