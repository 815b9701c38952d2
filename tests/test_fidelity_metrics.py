"""PSNR/SSIM agree with the tools they reproduce, on the same frames in the same test.

The FFmpeg conventions are checked against the ``ffmpeg`` binary fed the identical planes as raw
video: its printed summary, its per-frame ``stats_file`` and, for PSNR (whose stats file has only two
decimals), the per-frame metadata printed with ``%f``. The scikit-image conventions are checked
against ``skimage.metrics`` called directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.fft
from skimage import data, filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from videos import CLIPS

from talkbench_plugin.metrics.base import FramePairs, frame_planes
from talkbench_plugin.metrics.psnr import FFmpegPSNR
from talkbench_plugin.metrics.skimage_convention import SkimagePSNR, SkimageSSIM
from talkbench_plugin.metrics.ssim import FFmpegSSIM

PSNR_TOL = 1e-4  # dB
SSIM_TOL = 1e-5

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg binary is not on PATH")
needs_clips = pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real clips not found at {CLIPS}")


# --- frames -------------------------------------------------------------------------------------


def make_frame(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """A frame holding exactly these planes."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, planes):
        np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = values
    return frame


def astronaut_frames(n: int, width: int, height: int, pix_fmt: str) -> list[av.VideoFrame]:
    """``n`` frames of a moving crop of scikit-image's astronaut."""
    image = np.pad(data.astronaut(), ((0, 64), (0, 64), (0, 0)), mode="reflect")
    return [
        av.VideoFrame.from_ndarray(
            np.ascontiguousarray(image[3 * i : 3 * i + height, 5 * i : 5 * i + width]), format="rgb24"
        ).reformat(format=pix_fmt)
        for i in range(n)
    ]


def decode(path: Path, n: int) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return [frame for _, frame in zip(range(n), container.decode(video=0))]


def _noise(plane: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(plane + rng.normal(0, 6, plane.shape), 0, 255)


def _blur(plane: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    return filters.gaussian(plane.astype(np.float64), sigma=1.2, preserve_range=True)


def _jpegish(plane: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    """Quantise the 8x8 block DCT, as JPEG does (coarser on chroma)."""
    h, w = plane.shape
    padded = np.pad(plane.astype(np.float64), ((0, -h % 8), (0, -w % 8)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // 8, 8, padded.shape[1] // 8, 8).swapaxes(1, 2)
    step = 24 if c == 0 else 40
    coeffs = np.round(scipy.fft.dctn(blocks, axes=(2, 3), norm="ortho") / step) * step
    out = scipy.fft.idctn(coeffs, axes=(2, 3), norm="ortho").swapaxes(1, 2).reshape(padded.shape)
    return np.clip(out[:h, :w], 0, 255)


def _brightness(plane: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(plane.astype(np.int16) + (12 if c == 0 else 0), 0, 255)


DEGRADATIONS = {"noise": _noise, "blur": _blur, "jpegish": _jpegish, "brightness": _brightness}


def degrade(frames: list[av.VideoFrame], how: str, seed: int = 0) -> list[av.VideoFrame]:
    rng = np.random.default_rng(seed)
    fn = DEGRADATIONS[how]
    return [
        make_frame([np.round(fn(p, c, rng)).astype(np.uint8) for c, p in enumerate(frame_planes(f))], f.format.name)
        for f in frames
    ]


# --- the ffmpeg binary ----------------------------------------------------------------------------


def _close(a: float, b: float, tol: float) -> bool:
    return a == b or abs(a - b) <= tol  # a == b: both inf


def _fields(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+):(-?[\d.]+|inf)", text)}


def write_raw(tmp_path: Path, ref: list[av.VideoFrame], gen: list[av.VideoFrame]) -> list[str]:
    """Write the exact planes to ``ref.yuv``/``gen.yuv``; return the ffmpeg options that read them."""
    for name, frames in (("ref.yuv", ref), ("gen.yuv", gen)):
        with open(tmp_path / name, "wb") as fh:
            for frame in frames:
                fh.writelines(plane.tobytes() for plane in frame_planes(frame))
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        ref[0].format.name,
        "-s",
        f"{ref[0].width}x{ref[0].height}",
        "-framerate",
        "25",
    ]


def run_ffmpeg(tmp_path: Path, ref: list[av.VideoFrame], gen: list[av.VideoFrame]) -> dict:
    """Run ``ffmpeg -lavfi psnr`` and ``ssim`` on the exact planes; return what it prints and logs."""
    raw = write_raw(tmp_path, ref, gen)
    graph = (
        "[1:v]split[g1][g2];"
        "[0:v][g1]psnr=stats_file=psnr.log,metadata=mode=print:file=psnr_meta.log[m];"
        "[m][g2]ssim=stats_file=ssim.log"
    )
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        *raw,
        "-i",
        "ref.yuv",
        *raw,
        "-i",
        "gen.yuv",
        "-lavfi",
        graph,
        "-f",
        "null",
        "-",
    ]
    log = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stderr
    psnr_meta: list[dict[str, float]] = []
    for line in (tmp_path / "psnr_meta.log").read_text().splitlines():
        if line.startswith("frame:"):
            psnr_meta.append({})
        elif "=" in line:
            key, value = line.split("=")
            psnr_meta[-1][key.removeprefix("lavfi.psnr.")] = float(value)
    return {
        "psnr": _fields(re.search(r"PSNR (.*)", log).group(1)),
        "ssim": _fields(re.search(r"SSIM (.*)", log).group(1)),
        "psnr_stats": [_fields(line) for line in (tmp_path / "psnr.log").read_text().splitlines()],
        "psnr_meta": psnr_meta,
        "ssim_stats": [_fields(line.split(" (")[0]) for line in (tmp_path / "ssim.log").read_text().splitlines()],
    }


def compute(metric_cls, ref, gen, batch: int = 7):
    metric = metric_cls()
    for i in range(0, len(ref), batch):
        metric.update(FramePairs(ref[i : i + batch], gen[i : i + batch], [j / 25 for j in range(i, i + batch)]))
    return metric.compute()


def assert_matches_ffmpeg(tmp_path: Path, ref: list[av.VideoFrame], gen: list[av.VideoFrame]) -> dict[str, float]:
    """Check both FFmpeg-convention metrics against the binary; return the largest differences seen."""
    ff = run_ffmpeg(tmp_path, ref, gen)
    psnr, ssim = compute(FFmpegPSNR, ref, gen), compute(FFmpegSSIM, ref, gen)
    n = len(ref)
    assert len(psnr.per_frame) == len(ssim.per_frame) == len(ff["psnr_meta"]) == len(ff["ssim_stats"]) == n
    planes = "yuv"

    # PSNR summary: "PSNR y:.. u:.. v:.. average:.. min:.. max:.."
    pairs = [
        (psnr.value, ff["psnr"]["average"]),
        (psnr.details["min"], ff["psnr"]["min"]),
        (psnr.details["max"], ff["psnr"]["max"]),
    ]
    pairs += [(psnr.details[p], ff["psnr"][p]) for p in planes]
    # per frame, at full precision (metadata) and at the stats file's two decimals
    pairs += [(ours, meta["psnr_avg"]) for ours, meta in zip(psnr.per_frame, ff["psnr_meta"])]
    for ours, stats in zip(psnr.per_frame, ff["psnr_stats"]):
        assert _close(ours, stats["psnr_avg"], 0.005 + 1e-9), (ours, stats)
    for ours, theirs in pairs:
        assert _close(ours, theirs, PSNR_TOL), (ours, theirs)

    # SSIM summary: "SSIM Y:.. (..) U:.. V:.. All:.. (..)", then the stats file per frame
    s_pairs = [(ssim.value, ff["ssim"]["All"])] + [(ssim.details[p], ff["ssim"][p.upper()]) for p in planes]
    s_pairs += [(ours, stats["All"]) for ours, stats in zip(ssim.per_frame, ff["ssim_stats"])]
    for ours, theirs in s_pairs:
        assert _close(ours, theirs, SSIM_TOL), (ours, theirs)

    finite = [abs(a - b) for a, b in pairs if np.isfinite(a) or np.isfinite(b)]
    return {"psnr": max(finite, default=0.0), "ssim": max(abs(a - b) for a, b in s_pairs)}


# --- tests ----------------------------------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("how", DEGRADATIONS)
@pytest.mark.parametrize(
    ("width", "height", "pix_fmt"), [(512, 512, "yuv420p"), (451, 317, "yuv420p"), (451, 317, "yuv444p")]
)
def test_ffmpeg_conventions_match_binary(tmp_path, how, width, height, pix_fmt):
    ref = astronaut_frames(5, width, height, pix_fmt)
    assert_matches_ffmpeg(tmp_path, ref, degrade(ref, how))


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
@pytest.mark.parametrize(
    ("clip", "other"),
    [
        ("may_5s.mp4", "may_radnerf_generated.mp4"),  # a real renderer's output of the same speaker
        ("may_5s.mp4", "jpegish"),
        ("obama_20s.mp4", "noise"),  # 450x450: odd chroma planes (225x225)
    ],
)
def test_ffmpeg_conventions_match_binary_on_real_clips(tmp_path, clip, other):
    ref = decode(CLIPS / clip, 25)
    gen = decode(CLIPS / other, 25) if other.endswith(".mp4") else degrade(ref, other)
    pts = [f.pts for f in ref + gen]
    assert_matches_ffmpeg(tmp_path, ref, gen)
    assert [f.pts for f in ref + gen] == pts  # FFmpegSSIM restores the timestamps it borrows


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_ffmpeg_quality_metrics_averages_frame_psnr(tmp_path):
    """ffmpeg-quality-metrics' "average" is the mean of per-frame PSNR, not ffmpeg's pooled ``average:``."""
    fqm = pytest.importorskip("ffmpeg_quality_metrics")
    ref, gen = decode(CLIPS / "may_5s.mp4", 25), decode(CLIPS / "may_radnerf_generated.mp4", 25)
    raw = write_raw(tmp_path, ref, gen)
    for name in ("ref", "gen"):  # it refuses raw .yuv; FFV1 is lossless
        subprocess.run(
            ["ffmpeg", "-v", "error", *raw, "-i", f"{name}.yuv", "-c:v", "ffv1", f"{name}.mkv"],
            cwd=tmp_path,
            check=True,
        )
    tool = fqm.FfmpegQualityMetrics(str(tmp_path / "ref.mkv"), str(tmp_path / "gen.mkv"), tmp_dir=str(tmp_path))
    tool.calculate(["psnr", "ssim"])
    stats = tool.get_global_stats()
    psnr, ssim = compute(FFmpegPSNR, ref, gen), compute(FFmpegSSIM, ref, gen)
    # it rounds per-frame PSNR to 2 decimals (SSIM to 3), then the average to 3
    assert psnr.details["mean_of_frames"] == pytest.approx(stats["psnr"]["psnr_avg"]["average"], abs=0.0055 + 1e-9)
    assert ssim.value == pytest.approx(stats["ssim"]["ssim_avg"]["average"], abs=1e-3 + 1e-6)
    assert abs(psnr.value - stats["psnr"]["psnr_avg"]["average"]) > 0.1  # on this real pair: 27.95 vs 28.10 dB


@needs_ffmpeg
def test_identical_frames(tmp_path):
    ref = astronaut_frames(3, 451, 317, "yuv420p")
    same = [make_frame(list(frame_planes(f)), "yuv420p") for f in ref]
    psnr, ssim = compute(FFmpegPSNR, ref, same), compute(FFmpegSSIM, ref, same)
    assert psnr.value == psnr.details["y"] == psnr.details["min"] == float("inf")
    assert psnr.per_frame == [float("inf")] * 3
    assert ssim.value == 1.0 and ssim.per_frame == [1.0] * 3 and ssim.details["db"] == float("inf")
    ff = run_ffmpeg(tmp_path, ref, same)
    assert ff["psnr"]["average"] == float("inf") and ff["ssim"]["All"] == 1.0
    assert compute(SkimagePSNR, ref, same).value == float("inf")
    assert compute(SkimageSSIM, ref[:1], same[:1]).value == pytest.approx(1.0, abs=1e-12)


def test_batching_does_not_change_results():
    ref = astronaut_frames(6, 96, 80, "yuv420p")
    gen = degrade(ref, "noise")
    for cls in (FFmpegPSNR, FFmpegSSIM):
        whole, split = compute(cls, ref, gen, batch=6), compute(cls, ref, gen, batch=4)
        assert (whole.value, whole.per_frame, whole.details) == (split.value, split.per_frame, split.details)


def test_protocols_name_their_settings():
    ref = astronaut_frames(2, 64, 64, "yuv444p")
    psnr, ssim = FFmpegPSNR(), FFmpegSSIM()
    for metric in (psnr, ssim):
        metric.update(FramePairs(ref, ref, [0.0, 0.04]))
        assert metric.protocol()["pix_fmt"] == "yuv444p"
    assert ssim.protocol()["libavfilter"] == ".".join(map(str, av.library_versions["libavfilter"]))
    assert SkimageSSIM().protocol()["gaussian_weights"] is True


@pytest.mark.parametrize("how", DEGRADATIONS)
def test_skimage_conventions_match_skimage(how):
    ref = astronaut_frames(2, 160, 128, "yuv420p")
    gen = degrade(ref, how)
    rgb = [(r.to_ndarray(format="rgb24"), g.to_ndarray(format="rgb24")) for r, g in zip(ref, gen)]
    want_psnr = [peak_signal_noise_ratio(a, b, data_range=255) for a, b in rgb]
    want_ssim = [
        structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
        )
        for a, b in rgb
    ]
    psnr, ssim = compute(SkimagePSNR, ref, gen), compute(SkimageSSIM, ref, gen)
    pooled = 10 * np.log10(255**2 / np.mean([np.mean((a.astype(float) - b) ** 2) for a, b in rgb]))
    assert psnr.per_frame == pytest.approx(want_psnr, abs=1e-12)
    assert psnr.value == pytest.approx(pooled, abs=1e-9)
    assert psnr.details["mean_of_frames"] == pytest.approx(np.mean(want_psnr), abs=1e-12)
    assert ssim.per_frame == pytest.approx(want_ssim, abs=1e-12) and ssim.value == pytest.approx(
        np.mean(want_ssim), abs=1e-12
    )


def test_one_identical_frame_does_not_make_the_summary_infinite():
    """A 'static' output shares its first frame with the reference: both conventions stay finite."""
    ref = astronaut_frames(3, 96, 80, "yuv420p")
    gen = [ref[0], *degrade(ref[1:], "noise")]
    for metric in (FFmpegPSNR, SkimagePSNR):
        value = compute(metric, ref, gen)
        assert value.per_frame[0] == float("inf")
        assert np.isfinite(value.value) and value.value > min(value.per_frame[1:])
    assert compute(SkimagePSNR, ref, gen).details["mean_of_frames"] == float("inf")


def test_psnr_filter_metadata_is_within_5e_6_db_of_the_exact_sse():
    """FFmpegPSNR reads the plane MSEs from the psnr filter's metadata (floats printed with 6 decimals): per
    frame, per plane and pooled it stays within 5e-6 dB of the exact integer SSE, for large MSEs and for
    tiny ones (one sample off by one, where the MSE field alone reads 0.000001)."""
    ref = astronaut_frames(4, 96, 80, "yuv420p")
    one_off = []
    for frame in ref[2:]:
        planes = [p.copy() for p in frame_planes(frame)]
        planes[1][3, 5] ^= 1
        one_off.append(make_frame(planes, "yuv420p"))
    gen = [*degrade(ref[:2], "noise"), *one_off]
    mse = np.array([[np.sum((a.astype(np.int64) - b) ** 2) / a.size for a, b in zip(frame_planes(r), frame_planes(g))]
                    for r, g in zip(ref, gen)])
    sizes = np.array([p.size for p in frame_planes(ref[0])])
    frame_mse = mse @ (sizes / sizes.sum())

    def exact(m: np.ndarray) -> np.ndarray:
        return 10 * np.log10(255**2 / np.asarray(m, dtype=np.float64))

    with np.errstate(divide="ignore"):
        psnr = compute(FFmpegPSNR, ref, gen)
        assert psnr.per_frame == pytest.approx(exact(frame_mse), abs=5e-6, rel=0)
        assert psnr.value == pytest.approx(exact(frame_mse.mean()), abs=5e-6, rel=0)
        for plane, pooled in zip("yuv", mse.mean(axis=0)):
            assert psnr.details[plane] == pytest.approx(exact(pooled), abs=5e-6, rel=0)
    assert mse[2, 1] < 1e-3 and mse[2, 0] == 0  # the tiny case is there
