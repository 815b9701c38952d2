"""Command pipelines (generate.py): run once, reuse by key, regenerate when anything changes, fail clearly.

The commands run tests/tiny_pipeline.py, a real (tiny) talking-face pipeline written with PyAV.
"""

import json
import shlex
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.datasets import materialize
from talkbench_plugin.errors import GenerationError, ManifestError, MediaError
from talkbench_plugin.generate import audio_clip, generate
from talkbench_plugin.manifest import Case, load_manifest
from talkbench_plugin.media.audio import write_clip

TESTS = Path(__file__).resolve().parent
TINY = f"{shlex.quote(sys.executable)} {shlex.quote(str(TESTS / 'tiny_pipeline.py'))}"
DUB = f"{TINY} generate --face {{reference}} --audio {{audio}} --outfile {{output}}"
ONE_SHOT = f"{TINY} generate --image {{image}} --audio {{audio}} --outfile {{output}}"


def speech(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "ref").mkdir()
    write_video(tmp_path / "ref" / "a.mp4", moving_frames(50, 64, 48, seed=1), 25, audio=speech(2.0))
    write_video(tmp_path / "ref" / "b.mp4", moving_frames(50, 64, 48, seed=2), 25, audio=speech(2.0))
    from PIL import Image

    Image.fromarray(moving_frames(1, 64, 48, seed=3)[0]).save(tmp_path / "a.png")
    return tmp_path


def manifest(root: Path, pipeline: str, speaker_b: str = 'image = "a.png"') -> Path:
    path = root / "m.toml"
    path.write_text(f"""
[dataset]
name = "gen"
[speakers.a]
language = "en"
reference = "ref/a.mp4"
image = "a.png"
[speakers.b]
language = "zh"
reference = "ref/b.mp4"
{speaker_b}
[pipelines.Tiny]
{pipeline}
""")
    return path


def command(template: str, mode: str = "dubbing", **keys: object) -> str:
    lines = [f'mode = "{mode}"', f"command = {json.dumps(template)}"]
    for key, value in keys.items():
        lines.append(f"{key} = {json.dumps(value) if not isinstance(value, str) or not value.startswith('{') else value}")
    return "\n".join(lines)


def case_of(root: Path, pipeline: str, speaker: str = "a") -> Case:
    return next(c for c in load_manifest(manifest(root, pipeline)).cases() if c.speaker.id == speaker)


def runs(root: Path) -> list[str]:
    path = root / "runs.txt"
    return path.read_text().splitlines() if path.is_file() else []


def tracked(root: Path, template: str = DUB, **keys: object) -> str:
    env = keys.pop("env", {})
    env_toml = ", ".join(f"{k} = {json.dumps(v)}" for k, v in {"TINY_RUNS": str(root / "runs.txt"), **env}.items())
    return command(template, env=f"{{ {env_toml} }}", **keys)


def test_generates_once_then_reuses_with_its_stats(root: Path) -> None:
    cache = root / "cache"
    case = case_of(root, tracked(root))
    path, gen = generate(case, cache)
    assert path.parent == cache / "outputs" / "Tiny" and path.name == f"a-{gen['key'][:16]}.mp4"
    assert runs(root) == ["generate ''"]  # CUDA_VISIBLE_DEVICES is empty on the cpu device
    with av.open(str(path)) as out:
        frames = out.streams.video[0].frames
    assert gen["cached"] is False and gen["frames"] == frames > 40
    assert 0 < gen["wall_s"] < 60 and gen["cpu_s"] > 0 and gen["max_rss_mib"] > 20
    assert gen["rtf"] == pytest.approx(gen["wall_s"] / gen["duration_s"])
    assert gen["frames_per_s"] == pytest.approx(frames / gen["wall_s"])
    assert gen["spent_s"] == gen["wall_s"] and gen["device"] == "cpu"
    assert "tiny_pipeline generate" in Path(gen["log"]).read_text()
    assert gen["command"][-1] != "{output}" and "{" not in " ".join(gen["command"])

    again_path, again = generate(case, cache)
    assert again_path == path and runs(root) == ["generate ''"]
    assert again["cached"] is True and again["spent_s"] == 0
    assert again["wall_s"] == gen["wall_s"] and again["key"] == gen["key"]


def test_materialize_returns_the_generated_case(root: Path) -> None:
    case = case_of(root, tracked(root))
    assert case.generated is None
    made, gen = materialize(case, root / "cache")
    assert made.generated is not None and made.generated.is_file() and gen["output"] == str(made.generated)


def test_generation_time_is_not_the_evaluations(root: Path) -> None:
    from talkbench_plugin.engine import evaluate_case

    record = evaluate_case(case_of(root, tracked(root, env={"TINY_SLEEP": "1.5"})), ["psnr"], root / "cache")
    assert record["error"] is None and record["generation"]["wall_s"] >= 1.5
    assert record["timings"]["total"] < 1.5 and record["timings"]["prepare"] < 0.5
    assert record["throughput"]["rtf"] == pytest.approx(record["timings"]["total"] / 2.0)


def test_regenerated_when_an_input_or_the_command_changes(root: Path) -> None:
    cache = root / "cache"
    first, gen = generate(case_of(root, tracked(root)), cache)
    generate(case_of(root, tracked(root), "b"), cache)
    assert len(runs(root)) == 2
    write_video(root / "ref" / "a.mp4", moving_frames(50, 64, 48, seed=9), 25, audio=speech(2.0))
    changed, gen2 = generate(case_of(root, tracked(root)), cache)
    generate(case_of(root, tracked(root), "b"), cache)  # b's inputs did not change
    assert len(runs(root)) == 3 and gen2["key"] != gen["key"] and changed != first
    _, gen3 = generate(case_of(root, tracked(root, ONE_SHOT)), cache)
    assert len(runs(root)) == 4 and gen3["key"] not in (gen["key"], gen2["key"])
    _, gen4 = generate(case_of(root, tracked(root, env={"EXTRA": "1"})), cache)  # env is part of the key
    assert len(runs(root)) == 5 and gen4["key"] != gen2["key"]


def test_output_from_another_command_or_edited_is_not_reused(root: Path) -> None:
    """With ``outputs`` the path is fixed: the record beside it decides, not file times."""
    cache = root / "cache"
    (root / "out").mkdir()
    dest = root / "out" / "a.mp4"
    write_video(dest, moving_frames(10, 64, 48), 25)  # newer than every input, made by hand
    path, gen = generate(case_of(root, tracked(root, outputs="out/{speaker}.mp4")), cache)
    assert path == dest.resolve() and len(runs(root)) == 1 and gen["cached"] is False
    assert json.loads(dest.with_suffix(".generation.json").read_text())["key"] == gen["key"]
    assert "tiny_pipeline generate" in dest.with_suffix(".log").read_text()

    _, other = generate(case_of(root, tracked(root, ONE_SHOT, outputs="out/{speaker}.mp4")), cache)
    assert len(runs(root)) == 2 and other["key"] != gen["key"] and other["cached"] is False
    _, back = generate(case_of(root, tracked(root, outputs="out/{speaker}.mp4")), cache)
    assert len(runs(root)) == 3 and back["key"] == gen["key"] and back["cached"] is False

    write_video(dest, moving_frames(10, 64, 48), 25)  # edited after generation: same key, other content
    _, edited = generate(case_of(root, tracked(root, outputs="out/{speaker}.mp4")), cache)
    assert len(runs(root)) == 4 and edited["cached"] is False
    assert generate(case_of(root, tracked(root, outputs="out/{speaker}.mp4")), cache)[1]["cached"] is True


def test_failing_command_names_command_and_log_tail(root: Path) -> None:
    case = case_of(root, tracked(root, env={"TINY_FAIL": "no face detected in frame 0"}))
    with pytest.raises(GenerationError) as info:
        generate(case, root / "cache")
    message = str(info.value)
    assert message.startswith("Tiny for a: `") and "tiny_pipeline.py generate --face" in message
    assert "exited with status 3" in message
    assert "last lines:" in message and "error: no face detected in frame 0" in message
    assert not list((root / "cache" / "outputs").glob("**/*.mp4"))


def test_timeout_stops_the_command(root: Path) -> None:
    case = case_of(root, tracked(root, env={"TINY_SLEEP": "60"}, timeout=0.5))
    start = time.perf_counter()
    with pytest.raises(GenerationError, match=r"(?s)ran past its timeout of 0.5 s and was stopped; log .*tiny_pipeline"):
        generate(case, root / "cache")
    assert time.perf_counter() - start < 20


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("import sys; print('working on', sys.argv[1])",
         r"(?s)exited 0 after [\d.]+ s but wrote nothing at \S*output\.mp4 \(its \{output\}\); log .*working on"),
        ("import sys; open(sys.argv[1], 'w').write('not a video')",
         r"wrote .*output\.mp4, which is not a usable video: not a readable media file"),
    ],
)
def test_command_without_a_video_fails_clearly(root: Path, script: str, expected: str) -> None:
    template = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {{output}}"
    with pytest.raises(GenerationError, match=expected) as info:
        generate(case_of(root, command(template)), root / "cache")
    assert str(info.value).startswith(f"Tiny for a: `{sys.executable} -c")
    assert not list((root / "cache" / "outputs").glob("**/*.mp4"))


def test_killed_command(root: Path) -> None:
    template = f"{shlex.quote(sys.executable)} -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)' {{output}}"
    with pytest.raises(GenerationError, match=r"Tiny for a: `.*` was killed by SIGKILL after [\d.]+ s \(out of memory\?\)"):
        generate(case_of(root, command(template)), root / "cache")


def test_missing_program(root: Path) -> None:
    with pytest.raises(GenerationError, match=r"cannot run `no-such-talking-face-tool .*`.*No such file"):
        generate(case_of(root, command("no-such-talking-face-tool --out {output}")), root / "cache")


def test_output_glob_for_tools_that_name_their_outputs(root: Path) -> None:
    """SadTalker-style: the tool writes <timestamp>.mp4 into a result folder."""
    template = f"{TINY} generate --image {{image}} --audio {{audio}} --outfile {{workdir}}/2024_05_01_12.00.00.mp4"
    path, gen = generate(case_of(root, command(template, "one-shot", output_glob="*.mp4")), root / "cache")
    assert path.is_file() and path.suffix == ".mp4" and gen["frames"] > 40
    with pytest.raises(GenerationError, match=r"output_glob '\*\.avi' must match one file under .*, found nothing \(the folder holds: 2024_05_01_12.00.00.mp4\)"):
        generate(case_of(root, command(template, "one-shot", output_glob="*.avi")), root / "cache")


def test_cwd_env_and_device_reach_the_command(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (root / "tool").mkdir()
    template = f"{shlex.quote(sys.executable)} -c 'import os, shutil, sys; print(os.getcwd(), os.environ[\"MODEL\"], " \
               f"os.environ[\"CUDA_VISIBLE_DEVICES\"]); shutil.copy(sys.argv[1], sys.argv[2])' {{reference}} {{output}}"
    case = case_of(root, command(template, cwd="tool", env='{ MODEL = "big" }'))
    monkeypatch.chdir(root)
    _, gen = generate(case, Path("cache"), device="cuda:1")  # a relative cache: the command gets absolute paths
    assert Path(gen["log"]).read_text().split() == [str((root / "tool").resolve()), "big", "1"]
    assert gen["device"] == "cuda:1" and gen["cwd"] == str((root / "tool").resolve())
    _, same = generate(case, root / "cache", device="cuda:0")
    assert same["cached"] is True  # the device is not part of the key


def test_peak_memory_is_the_commands(root: Path) -> None:
    """Not this process's: a forked child's ru_maxrss starts from its parent's (launch.py avoids that)."""
    ballast = np.ones(500 * 2**20, np.uint8)
    _, small = generate(case_of(root, tracked(root)), root / "cache")
    _, big = generate(case_of(root, tracked(root, env={"TINY_ALLOCATE_MB": "300"})), root / "cache")
    assert ballast.sum() > 0 and 20 < small["max_rss_mib"] < 250 and 300 <= big["max_rss_mib"] < 500


PERSON = """
mode = "person-specific"
speakers = ["a"]
train = {{ start = 0, end = 1 }}
evaluate = {{ start = 1.2 }}
train_command = {train}
command = {command}
env = {{ TINY_RUNS = {runs} }}
"""


def person(root: Path, train: str = f"{TINY} train --reference {{reference}} --start {{train_start}} "
                                     f"--end {{train_end}} --workdir {{workdir}}") -> Case:
    text = PERSON.format(train=json.dumps(train), runs=json.dumps(str(root / "runs.txt")),
                         command=json.dumps(f"{TINY} generate --model {{train_dir}} --audio {{audio}} --outfile {{output}}"))
    return case_of(root, text)


def test_person_specific_trains_once_and_drives_with_the_evaluated_audio(root: Path) -> None:
    cache = root / "cache"
    case = person(root)
    assert [c.id for c in load_manifest(root / "m.toml").cases()] == ["a-Tiny"]  # b is not one of its speakers
    _, gen = generate(case, cache)
    assert runs(root) == ["train ''", "generate ''"]
    train = gen["train"]
    assert train["cached"] is False and train["wall_s"] > 0 and Path(train["dir"], "model.npy").is_file()
    assert "--start 0 --end 1 --workdir" in " ".join(train["command"])
    assert gen["spent_s"] == pytest.approx(train["wall_s"] + gen["wall_s"])
    clip = next(a for a in gen["command"] if a.endswith(".wav"))
    with av.open(clip) as audio:
        assert audio.duration / av.time_base == pytest.approx(2.0 - 1.2, abs=0.1)  # the reference's audio from 1.2 s
    assert gen["duration_s"] == pytest.approx(0.8, abs=0.1)

    again = generate(person(root), cache)[1]
    assert again["cached"] is True and again["train"]["cached"] is True and len(runs(root)) == 2
    retrained = generate(person(root, f"{TINY} train --reference {{reference}} --start {{train_start}} "
                                      f"--end {{train_end}} --workdir {{workdir}} "), cache)[1]
    assert len(runs(root)) == 2  # the same arguments: same key
    retrained = generate(person(root, f"{TINY} train --reference {{reference}} --start {{train_end}} "
                                      f"--end {{train_end}} --workdir {{workdir}}"), cache)[1]
    assert runs(root)[2:] == ["train ''", "generate ''"] and retrained["key"] != gen["key"]


def test_failed_training_fails_the_case(root: Path) -> None:
    case = person(root, f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(\"out of GPU memory\")'")
    with pytest.raises(GenerationError, match=r"(?s)Tiny for a \(training\): `.*` exited with status 1 .*out of GPU memory"):
        generate(case, root / "cache")


def test_audio_clip_is_the_exact_samples(tmp_path: Path) -> None:
    rate = 22050
    samples = (np.random.default_rng(0).integers(-20000, 20000, (3 * rate, 2))).astype(np.int16)
    source = tmp_path / "s.wav"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="stereo")
        for start in range(0, len(samples), 1000):
            frame = av.AudioFrame.from_ndarray(samples[start : start + 1000].reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    clip = audio_clip(source, 0.5, 2.25, tmp_path / "cache")
    with av.open(str(clip)) as got:
        stream = got.streams.audio[0]
        assert stream.codec_context.sample_rate == rate and len(stream.codec_context.layout.channels) == 2
        data = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in got.decode(stream)])
    np.testing.assert_array_equal(data, samples[int(0.5 * rate) : int(2.25 * rate)])
    assert audio_clip(source, 0.5, 2.25, tmp_path / "cache") == clip
    tail = tmp_path / "tail.wav"
    write_clip(source, 2.5, None, tail)
    with av.open(str(tail)) as got:
        assert sum(f.samples for f in got.decode(audio=0)) == len(samples) - int(2.5 * rate)
    with pytest.raises(MediaError, match=r"s.wav: its audio \(3.00 s\) has nothing from 4.0 s to the end"):
        write_clip(source, 4.0, None, tmp_path / "none.wav")


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (command(f"{TINY} --face {{refrence}} --outfile {{output}}"),
         ("pipelines.Tiny.command: unknown placeholder {refrence} (known: {audio}, {image}, {language}, {output}, "
          "{pipeline}, {reference}, {speaker}, {workdir})")),
        (command(f"{TINY} --face {{reference}} --outfile {{output}} --model {{train_dir}}"),
         "pipelines.Tiny.command: unknown placeholder {train_dir}"),
        (command(f"{TINY} --face {{reference}}"), "pipelines.Tiny.command: must write to {output}, or give output_glob"),
        (command(f"{TINY} {{output}}", output_glob="*.mp4"), "pipelines.Tiny.command: must write to {output}"),
        (command(f"{TINY} --face {{reference}} --outfile '{{output}}"), "pipelines.Tiny.command: bad command"),
        (command("{output}", cwd="nowhere"), "pipelines.Tiny.cwd: not a directory:"),
        (command("{output}", timeout=0), "pipelines.Tiny.timeout: must be a positive number of seconds"),
        (command("{output}", env='{ A = 1 }'), "pipelines.Tiny.env: values must be strings"),
        ('mode = "dubbing"\noutputs = "o/{speaker}.mp4"\ntimeout = 3',
         "pipelines.Tiny.timeout: only applies to pipelines with a command"),
        (command("{output}", train_command="x {workdir}"), "pipelines.Tiny.train_command: needs mode = \"person-specific\""),
        (command("{output}", "person-specific", evaluate="{ start = 1 }", train="{ start = 0, end = 1 }",
                 train_command="train {output}"),
         ("pipelines.Tiny.train_command: unknown placeholder {output} (known: {audio}, {image}, {language}, "
          "{pipeline}, {reference}, {speaker}, {train_end}, {train_start}, {workdir})")),
        ('mode = "dubbing"', "pipelines.Tiny.outputs: missing: a path pattern such as"),
    ],
)
def test_manifest_refuses_bad_commands(root: Path, pipeline: str, message: str) -> None:
    path = manifest(root, pipeline)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_image_placeholder_needs_every_speaker_to_have_an_image(root: Path) -> None:
    with pytest.raises(ManifestError, match=r"pipelines.Tiny.command: uses \{image\} but speakers.b has no image"):
        load_manifest(manifest(root, command(ONE_SHOT), speaker_b=""))
    pipeline = command(ONE_SHOT) + '\nspeakers = ["a"]'
    assert [c.id for c in load_manifest(manifest(root, pipeline, speaker_b="")).cases()] == ["a-Tiny"]
