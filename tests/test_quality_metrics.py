"""FID, Inception Score and pyiqa metrics inside the engine: agreement with pyiqa on the same frames, the
reference-statistics cache, group pooling, and bad input (too few frames, NaN features, singular
covariances, damaged or foreign cache files)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image
from pyiqa.utils import download_util
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.cache import read
from talkbench_plugin.fid.features import InceptionNet, random_inception_state
from talkbench_plugin.fid.frechet import fid
from talkbench_plugin.fid.groups import add_pooled_fid
from talkbench_plugin.fid.moments import Moments
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.merge import merge_runs
from talkbench_plugin.metrics.fid import InceptionOptions
from talkbench_plugin.metrics.inception_score import split_scores
from talkbench_plugin.metrics.iqa import IqaOptions
from talkbench_plugin.reports import per_language

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning:torchvision",  # pyiqa's network build
    "ignore:The `disp` argument:DeprecationWarning",  # pyiqa's sqrtm call
    "ignore:Matrix is singular:scipy.linalg.LinAlgWarning",  # pyiqa's sqrtm on a rank-deficient product
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inception(weights_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The random Inception file registered as 'inception' (verify accepts only pinned hashes); its folder."""
    spec = replace(weights.spec_for("inception"), sha256=sha256(weights_file), size=None)
    monkeypatch.setitem(weights.REGISTRY, "inception", spec)
    return weights_file.parent


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(5)
    colours = rng.integers(0, 256, (30, 1, 1, 3))  # very different frames: IS above 1
    varied = np.clip(colours + rng.integers(-40, 40, (30, 48, 64, 3)), 0, 255).astype(np.uint8)
    return {
        "ref": write_video(root / "ref.mp4", moving_frames(10, 64, 48, seed=1), 25),
        "gen": write_video(root / "gen.mp4", moving_frames(10, 64, 48, seed=2), 25, options={"crf": "20"}),
        "varied": write_video(root / "varied.mp4", varied, 25),
        "static1": write_video(root / "static1.mp4", np.repeat(moving_frames(1, 64, 48, seed=3), 6, axis=0), 25),
        "static2": write_video(root / "static2.mp4", np.repeat(moving_frames(1, 64, 48, seed=4), 6, axis=0), 25),
    }


def case(reference: Path, generated: Path, segment: Segment = Segment(), speaker: str = "s", pipeline: str = "P",
         language: str = "en") -> Case:
    return Case(Speaker(speaker, language, reference), Pipeline(pipeline, "dubbing", "x"), generated, segment)


def evaluate(c: Case, metrics: list[str], tmp_path: Path, folder: Path, **inception: object) -> dict:
    options = InceptionOptions(weights=str(folder), moments_dir=str(tmp_path / "run"), **inception)
    return evaluate_case(c, metrics, tmp_path / "cache", options={
        "fid": options, "inception_score": options, "pyiqa": IqaOptions(weights=str(folder))})


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def png_folder(frames: np.ndarray, folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    files = [folder / f"{i:04d}.png" for i in range(len(frames))]
    for frame, file in zip(frames, files, strict=True):
        Image.fromarray(frame).save(file)
    return files


def pyiqa_offline(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyiqa finds the random Inception file under its official name in ``folder`` and never downloads."""
    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"pyiqa tried to download {url}")

    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(folder))
    monkeypatch.setattr(download_util, "download_url_to_file", no_download)


@pytest.fixture
def sharp_inception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Random Inception weights with the classifier scaled up, so that class probabilities differ between
    frames (with the plain random head every frame gets nearly the same ones and IS is 1), registered."""
    state = random_inception_state(seed=0)
    state["fc.weight"] *= 30  # (much more and float32 softmax underflows: pyiqa gives NaN)
    path = tmp_path / "sharp" / weights.spec_for("inception").filename
    path.parent.mkdir()
    torch.save(state, path)
    monkeypatch.setitem(weights.REGISTRY, "inception", replace(weights.spec_for("inception"), sha256=sha256(path),
                                                                size=None))
    return path.parent


@pytest.mark.slow
def test_engine_fid_equals_pyiqa_fid_on_the_same_frames(videos, inception, tmp_path, monkeypatch) -> None:
    pyiqa_offline(inception, monkeypatch)
    record = evaluate(case(videos["ref"], videos["gen"]), ["psnr", "fid"], tmp_path, inception)
    assert record["error"] is None
    entry = record["metrics"]["fid"]
    png_folder(decoded(videos["gen"]), tmp_path / "gen")
    png_folder(decoded(videos["ref"]), tmp_path / "ref")
    metric = pyiqa.create_metric("fid", device=torch.device("cpu"))
    expected = float(metric(str(tmp_path / "gen"), str(tmp_path / "ref"), num_workers=0, batch_size=8, verbose=False))
    assert expected > 0
    assert entry["value"] == pytest.approx(expected, rel=1e-3)
    assert entry["details"]["frames"] == {"generated": 10, "reference": 10}
    assert entry["unit"] == "" and entry["higher_is_better"] is False
    assert entry["protocol"]["weights_sha256"] == sha256(inception / weights.spec_for("inception").filename)


def test_inception_score_equals_pyiqa_on_the_same_frames(videos, sharp_inception, tmp_path, monkeypatch) -> None:
    pyiqa_offline(sharp_inception, monkeypatch)
    record = evaluate(case(videos["varied"], videos["varied"]), ["inception_score"], tmp_path, sharp_inception)
    entry = record["metrics"]["inception_score"]
    png_folder(decoded(videos["varied"]), tmp_path / "gen")
    metric = pyiqa.create_metric("inception_score", device=torch.device("cpu"))
    expected = metric(str(tmp_path / "gen"), num_workers=0, batch_size=4, verbose=False)
    assert expected["inception_score_mean"] > 1.05  # varied frames, a sharp head: a score that can disagree
    assert entry["value"] == pytest.approx(expected["inception_score_mean"], rel=1e-4)
    assert entry["details"]["std"] == pytest.approx(expected["inception_score_std"], rel=1e-3, abs=1e-6)
    assert entry["details"]["frames"] == 30 and len(entry["details"]["split_scores"]) == 10
    assert entry["protocol"]["resize"] == "legacy_tensorflow" and entry["higher_is_better"] is True
    assert "decode reference" not in record["timings"]  # IS needs the generated video only


def test_split_scores_cut_as_torch_chunk_and_stream_in_any_batches() -> None:
    logits = np.random.default_rng(0).normal(0, 3, (23, 7)).astype(np.float32)
    t = torch.from_numpy(logits)
    expected = [float(torch.exp((p.softmax(1) * (p.log_softmax(1) - p.softmax(1).mean(0, keepdim=True).log()))
                                .sum(1).mean())) for p in t.chunk(10)]
    assert len(expected) == 8  # torch.chunk: size ceil(23 / 10) = 3, so 8 chunks
    for batches in ([logits], np.split(logits, [1, 5, 6, 17])):
        assert split_scores(batches, 23, 7) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("fr", "nr"), [("gmsd", "piqe"), ("vif", "entropy")])
def test_pyiqa_metrics_equal_pyiqa_on_the_same_frames(videos, tmp_path, fr: str, nr: str) -> None:
    record = evaluate(case(videos["ref"], videos["gen"]), [fr, nr], tmp_path, tmp_path / "weights")
    assert record["error"] is None
    gen = png_folder(decoded(videos["gen"]), tmp_path / "gen")
    ref = png_folder(decoded(videos["ref"]), tmp_path / "ref")
    fr_metric, nr_metric = (pyiqa.create_metric(n, device=torch.device("cpu")) for n in (fr, nr))
    fr_expected = [float(fr_metric(str(g), str(r))) for g, r in zip(gen, ref, strict=True)]
    nr_expected = [float(nr_metric(str(g))) for g in gen]
    assert record["metrics"][fr]["per_frame"] == pytest.approx(fr_expected, rel=1e-5, abs=1e-7)
    assert record["metrics"][nr]["per_frame"] == pytest.approx(nr_expected, rel=1e-5, abs=1e-7)
    assert record["metrics"][fr]["value"] == pytest.approx(np.mean(fr_expected), rel=1e-5)
    assert len(set(fr_expected)) > 1  # frames that differ, so a mixed-up order would show
    assert record["metrics"][fr]["higher_is_better"] is (not fr_metric.lower_better)
    assert record["metrics"][nr]["protocol"]["metric"].endswith(f"{nr} (NR)")


def test_reference_statistics_cached_and_not_decoded_again(videos, inception, tmp_path) -> None:
    c = case(videos["ref"], videos["gen"], Segment(0.0, 0.2))  # 5 frames a side
    first = evaluate(c, ["fid"], tmp_path, inception)
    second = evaluate(c, ["fid"], tmp_path, inception)
    assert not first["metrics"]["fid"]["details"]["reference_cached"]
    assert second["metrics"]["fid"]["details"]["reference_cached"]
    assert second["metrics"]["fid"]["value"] == first["metrics"]["fid"]["value"] > 0
    assert "decode reference" in first["timings"] and "decode reference" not in second["timings"]
    assert first["metrics"]["fid"]["details"]["frames"] == {"generated": 5, "reference": 5}


def test_damaged_cache_file_is_recomputed_to_the_same_value(videos, inception, tmp_path) -> None:
    c = case(videos["ref"], videos["gen"], Segment(0.0, 0.2))
    first = evaluate(c, ["fid"], tmp_path, inception)
    path = Path(first["metrics"]["fid"]["details"]["moments"]["reference"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    again = evaluate(c, ["fid"], tmp_path, inception)
    assert not again["metrics"]["fid"]["details"]["reference_cached"]
    assert again["metrics"]["fid"]["value"] == first["metrics"]["fid"]["value"]
    assert path.read_bytes() == data


def test_cache_of_another_weights_file_is_not_reused(videos, inception, tmp_path, monkeypatch) -> None:
    c = case(videos["ref"], videos["gen"], Segment(0.0, 0.2))
    first = evaluate(c, ["fid"], tmp_path, inception)
    other = tmp_path / "other"
    other.mkdir()
    path = other / weights.spec_for("inception").filename
    torch.save(random_inception_state(seed=1), path)
    monkeypatch.setitem(weights.REGISTRY, "inception", replace(weights.spec_for("inception"), sha256=sha256(path)))
    second = evaluate(c, ["fid"], tmp_path, other)
    assert not second["metrics"]["fid"]["details"]["reference_cached"]
    assert second["metrics"]["fid"]["value"] != first["metrics"]["fid"]["value"]
    protocols = (run["metrics"]["fid"]["protocol"]["weights_sha256"] for run in (first, second))
    assert len(set(protocols)) == 2


def test_fewer_than_two_frames_is_a_clear_fid_error_and_psnr_goes_on(videos, inception, tmp_path) -> None:
    record = evaluate(case(videos["ref"], videos["gen"], Segment(0.0, 0.04)), ["psnr", "fid", "inception_score"],
                      tmp_path, inception)
    assert record["error"] is None and record["metrics"]["psnr"]["value"] > 0
    assert "FID needs at least 2 frames, got 1" in record["metrics"]["fid"]["error"]
    assert "gen.mp4" in record["metrics"]["fid"]["error"]
    assert "Inception Score needs at least 2 frames" in record["metrics"]["inception_score"]["error"]


def test_nonfinite_features_are_a_clear_error_not_a_number(videos, inception, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(InceptionNet, "features", lambda self, frames: np.full((len(frames), 2048), np.nan))
    record = evaluate(case(videos["ref"], videos["gen"], Segment(0.0, 0.2)), ["psnr", "fid"], tmp_path, inception)
    assert record["error"] is None and record["metrics"]["psnr"]["value"] > 0
    assert record["metrics"]["fid"]["value"] is None
    assert "NaN or inf" in record["metrics"]["fid"]["error"]
    assert not list((tmp_path / "cache").rglob("fid-*.npz"))  # nothing cached from bad features


def test_singular_covariances_give_the_mean_distance(videos, inception, tmp_path) -> None:
    """Static videos: every covariance is zero (rank 0), so FID is exactly the squared distance of the means."""
    record = evaluate(case(videos["static1"], videos["static2"]), ["fid"], tmp_path, inception)
    net = InceptionNet.from_file(inception / weights.spec_for("inception").filename)
    mu1, mu2 = net.features(decoded(videos["static2"])[:1])[0], net.features(decoded(videos["static1"])[:1])[0]
    assert record["metrics"]["fid"]["value"] == pytest.approx(float(((mu1 - mu2) ** 2).sum()), rel=1e-6)
    itself = evaluate(case(videos["static1"], videos["static1"]), ["fid"], tmp_path, inception)
    assert itself["metrics"]["fid"]["value"] == pytest.approx(0.0, abs=1e-9)


def test_count_sampling_spreads_frames_and_is_in_the_protocol(videos, inception, tmp_path) -> None:
    record = evaluate(case(videos["ref"], videos["gen"]), ["fid"], tmp_path, inception, sampling="count=3")
    entry = record["metrics"]["fid"]
    assert entry["details"]["frames"] == {"generated": 3, "reference": 3}
    assert entry["protocol"]["sampling"] == "count=3"


def test_pooled_group_fid_is_the_fid_of_all_frames(tmp_path) -> None:
    """Pooling sums the moments files: equal to the FID of the concatenated features, not the mean of FIDs."""
    from talkbench_plugin.fid.cache import write

    rng = np.random.default_rng(0)
    feats = {k: rng.normal(i, 1 + i, (40, 8)) for i, k in enumerate(("g1", "g2", "r1", "r2"))}
    paths = {}
    for key, f in feats.items():
        moments = Moments.zeros(8)
        moments.add(f)
        paths[key] = str(tmp_path / f"{key}.npz")
        write(Path(paths[key]), moments, key)
    records = []
    for speaker, g, r in (("s1", "g1", "r1"), ("s2", "g2", "r2")):
        value = fid(Moments(40, feats[g].sum(0), feats[g].T @ feats[g]).compute(),
                    Moments(40, feats[r].sum(0), feats[r].T @ feats[r]).compute()).value
        records.append({"case": f"{speaker}-P", "speaker": speaker, "language": "en", "pipeline": "P", "error": None,
                        "metrics": {"fid": {"value": value, "details": {
                            "frames": {"generated": 40, "reference": 40}, "moments": {"generated": paths[g],
                                                                                      "reference": paths[r]}}}}})
    add_pooled_fid(records)
    gen, ref = np.concatenate([feats["g1"], feats["g2"]]), np.concatenate([feats["r1"], feats["r2"]])
    expected = fid(Moments(80, gen.sum(0), gen.T @ gen).compute(), Moments(80, ref.sum(0), ref.T @ ref).compute())
    pooled = records[0]["fid_pooled"]
    assert pooled["value"] == pytest.approx(expected.value, rel=1e-9) and pooled == records[1]["fid_pooled"]
    assert pooled["frames"] == {"generated": 80, "reference": 80} and pooled["cases"] == 2
    assert pooled["value"] != pytest.approx(np.mean([r["metrics"]["fid"]["value"] for r in records]))
    table = per_language(records)
    assert table.headers == ["lang", "pipeline", "FID", "FID pooled", "n"]
    assert table.rows[0][3] == f"{expected.value:.3f}"
    # shards of the group each pooled only their own case; merging pools the whole group again
    shards = []
    for i, r in enumerate(records, 1):
        r["metrics"]["fid"]["higher_is_better"] = False
        shard = {**r, "fid_pooled": {**r["fid_pooled"], "value": r["metrics"]["fid"]["value"], "cases": 1}}
        run = {"dataset": "d", "cases": ["s1-P", "s2-P"], "shard": f"{i}/2", "gate": {"verdict": "passed"}}
        (tmp_path / f"shard{i}").mkdir()
        (tmp_path / f"shard{i}" / "results.json").write_text(json.dumps({"run": run, "results": [shard]}))
        shards.append(tmp_path / f"shard{i}")
    merged = merge_runs(shards).records
    assert [r["fid_pooled"]["value"] for r in merged] == [pytest.approx(expected.value, rel=1e-9)] * 2
    Path(paths["g2"]).write_bytes(b"truncated")
    del records[0]["fid_pooled"], records[1]["fid_pooled"]
    add_pooled_fid(records)
    assert records[0]["fid_pooled"]["value"] is None and "g2.npz" in records[0]["fid_pooled"]["error"]
    assert per_language(records).rows[0][3] == "error"
    with pytest.raises(TalkbenchError, match="damaged FID moments file"):
        read(paths["g2"])


def test_a_pyiqa_metric_failing_on_the_frames_is_that_metrics_error(videos, tmp_path) -> None:
    """ms_ssim needs frames of at least 161 px; on 64x48 frames pyiqa raises: the case's other metrics go on."""
    record = evaluate(case(videos["ref"], videos["gen"]), ["psnr", "ms_ssim", "piqe"], tmp_path, tmp_path / "w")
    assert record["error"] is None and record["metrics"]["psnr"]["value"] > 0
    assert record["metrics"]["piqe"]["value"] > 0
    assert record["metrics"]["ms_ssim"]["value"] is None
    assert "pyiqa ms_ssim failed on 64x48 frames" in record["metrics"]["ms_ssim"]["error"]
