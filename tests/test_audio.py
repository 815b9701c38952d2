"""Audio decoding to 16 kHz mono int16."""

from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.errors import MediaError
from talkbench_plugin.media.audio import load_audio


def test_resamples_to_16k_mono(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    video = write_video(tmp_path / "v.mp4", moving_frames(25, 32, 32), 25, audio=tone, sample_rate=rate)
    audio = load_audio(video)
    assert audio.dtype == np.int16
    assert abs(len(audio) - 16000) < 1100  # AAC priming/padding adds at most one frame
    spectrum = np.abs(np.fft.rfft(audio[2000:14000].astype(float)))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 3
    assert 0.3 * 32767 < np.abs(audio[2000:14000]).max() < 0.6 * 32767


def test_no_audio_stream(tmp_path: Path) -> None:
    video = write_video(tmp_path / "silent.mp4", moving_frames(5, 32, 32), 25)
    with pytest.raises(MediaError, match=r"silent.mp4: has no audio stream"):
        load_audio(video)
