"""The calibration pipelines move the fidelity metrics the right way on the demo dataset."""


import pytest

from talkbench_plugin.datasets import add_calibration, demo_manifest
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import load_manifest


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    cache = tmp_path_factory.mktemp("cache")
    dataset = load_manifest(demo_manifest(cache))
    add_calibration(dataset)
    records = {}
    for case in dataset.cases():
        record = evaluate_case(case, ["psnr", "ssim"], cache)
        assert record["error"] is None, record["error"]
        records[case.speaker.id, case.pipeline.name] = record
    return records


@pytest.mark.parametrize("speaker", ["eileen_en", "eileen_zh"])
def test_ordering(scores: dict, speaker: str) -> None:
    def value(pipeline: str, metric: str) -> float:
        return scores[speaker, pipeline]["metrics"][metric]["value"]

    for metric in ("psnr", "ssim"):
        assert value("reference", metric) == value("shifted", metric)  # same frames, bit-exact
        assert value("reference", metric) > value("degraded", metric)
        assert value("reference", metric) > value("static", metric)
    assert value("reference", "psnr") == float("inf") and value("reference", "ssim") == 1.0
    # static: only its first frame is right; the mouth moves afterwards
    static = scores[speaker, "static"]["metrics"]["psnr"]["per_frame"]
    assert static[0] == float("inf") and max(static[1:]) < 60


def test_degraded_exercises_alignment_and_resizing(scores: dict) -> None:
    en = scores["eileen_en", "degraded"]["alignment"]  # 25 fps reference, 30 fps degraded
    zh = scores["eileen_zh", "degraded"]["alignment"]  # 30 fps reference, 25 fps degraded
    assert en["resized"] and zh["resized"]
    assert en["compared"] == 150 and en["dropped"] == 30 and en["duplicated"] == 0
    assert zh["compared"] == 210 and zh["duplicated"] == 35 and zh["dropped"] == 0
