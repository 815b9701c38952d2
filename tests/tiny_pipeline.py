"""A tiny talking-face "pipeline" for tests: a face whose mouth box brightens with the audio's loudness.

    python tiny_pipeline.py generate (--face VIDEO | --image PNG | --model DIR) --audio AUDIO --outfile OUT.mp4
    python tiny_pipeline.py train --reference VIDEO --start S --end E --workdir DIR

``generate`` writes 25 fps H.264 + AAC for the audio's duration: the face video's frames (looped), the
image, or the trained model's frame. ``train`` keeps the reference frame at ``--start`` as the "model".
Each run appends a line to ``$TINY_RUNS`` (when set) so tests can count runs; ``$TINY_FAIL`` makes it
fail, ``$TINY_SLEEP`` sleeps first, ``$TINY_ALLOCATE_MB`` holds that much memory for a moment.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 25


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="action", required=True)
    gen = sub.add_parser("generate")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--face")
    source.add_argument("--image")
    source.add_argument("--model")
    gen.add_argument("--audio", required=True)
    gen.add_argument("--outfile", required=True)
    train = sub.add_parser("train")
    train.add_argument("--reference", required=True)
    train.add_argument("--start", type=float, required=True)
    train.add_argument("--end", type=float, required=True)
    train.add_argument("--workdir", required=True)
    args = parser.parse_args()
    print(f"tiny_pipeline {args.action}: {' '.join(sys.argv[1:])}")
    print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} cwd={os.getcwd()}")
    if os.environ.get("TINY_RUNS"):
        with open(os.environ["TINY_RUNS"], "a") as fh:
            fh.write(f"{args.action} {os.environ.get('CUDA_VISIBLE_DEVICES')!r}\n")
    if os.environ.get("TINY_SLEEP"):
        time.sleep(float(os.environ["TINY_SLEEP"]))
    if os.environ.get("TINY_ALLOCATE_MB"):
        block = np.ones(int(os.environ["TINY_ALLOCATE_MB"]) * 2**20, np.uint8)
        print(f"held {block.sum() / 2**20:.0f} MiB")
    if os.environ.get("TINY_FAIL"):
        print(f"error: {os.environ['TINY_FAIL']}", file=sys.stderr)
        return 3
    if args.action == "train":
        frame = next(_frames(args.reference, args.start))
        np.save(Path(args.workdir) / "model.npy", frame)
        return 0
    audio, rate = _audio(args.audio)
    if args.face:
        frames = _frames(args.face, 0.0)
    else:
        still = np.load(Path(args.model) / "model.npy") if args.model else _image(args.image)
        frames = itertools.repeat(still)
    _write(Path(args.outfile), frames, audio, rate)
    return 0


def _frames(path: str, start: float):
    """RGB frames of a video from ``start`` seconds, looped forever."""
    while True:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                if frame.time >= start - 1e-6:
                    yield frame.to_ndarray(format="rgb24")


def _image(path: str) -> np.ndarray:
    with av.open(path) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _audio(path: str) -> tuple[np.ndarray, int]:
    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [r.to_ndarray().reshape(-1) for f in container.decode(stream) for r in resampler.resample(f)]
    return np.concatenate(chunks), rate


def _write(out_path: Path, frames, audio: np.ndarray, rate: int) -> None:
    count = max(1, round(len(audio) / rate * FPS))
    per_frame = len(audio) / count
    with av.open(str(out_path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "18"})
        sound = out.add_stream("aac", rate=rate, layout="mono")
        for i in range(count):
            rgb = next(frames).copy()
            if i == 0:
                video.width, video.height = rgb.shape[1] // 2 * 2, rgb.shape[0] // 2 * 2
                video.pix_fmt = "yuv420p"
            rgb = rgb[: video.height, : video.width]
            loud = float(np.sqrt(np.mean(audio[int(i * per_frame) : int((i + 1) * per_frame)] ** 2) + 1e-12))
            h, w = rgb.shape[:2]
            rgb[int(h * 0.65) : int(h * 0.8), int(w * 0.35) : int(w * 0.65)] = min(255, int(loud * 800))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in range(0, len(audio), 1024):
            chunk = av.AudioFrame.from_ndarray(audio[None, start : start + 1024].astype(np.float32),
                                               format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))


if __name__ == "__main__":
    sys.exit(main())
