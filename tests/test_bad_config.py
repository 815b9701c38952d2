"""Bad settings files and options: one line naming the file or option and what to do, never a traceback
and never a gate that cannot fail. The media side of the corpus is in test_bad_input.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.cli import main
from talkbench_plugin.errors import ManifestError
from talkbench_plugin.manifest import load_manifest
from talkbench_plugin.thresholds import Thresholds, typos

MANIFEST = """[speakers.a]
language = "en"
reference = "ref/a.mp4"
[pipelines.P]
mode = "dubbing"
outputs = "out/{speaker}.mp4"
"""
DEEP = "a = " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A dataset of one speaker and one pipeline, tiny videos."""
    (tmp_path / "ref").mkdir()
    (tmp_path / "out").mkdir()
    write_video(tmp_path / "ref" / "a.mp4", moving_frames(5, 32, 32), 25)
    write_video(tmp_path / "out" / "a.mp4", moving_frames(5, 32, 32, seed=4), 25)
    (tmp_path / "m.toml").write_text(MANIFEST)
    return tmp_path


def manifest_error(data: Path, text: str) -> str:
    path = data / "m.toml"
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


# -- manifest templates: placeholders are bare names -------------------------------------------------------

@pytest.mark.parametrize("template", ["out/{speaker:999999999}.mp4", "out/{speaker!r}.mp4", "out/{speaker.x}.mp4",
                                      "out/{speaker[0]}.mp4", "out/{speaker:{pipeline}}.mp4", "out/{}.mp4",
                                      "out/{0}.mp4", "out/{speaker!s:>3}.mp4"])
def test_outputs_template_takes_bare_names_only(data: Path, template: str) -> None:
    message = manifest_error(data, MANIFEST.replace("out/{speaker}.mp4", template))
    assert "pipelines.P.outputs: " in message
    assert "placeholders are bare names" in message or "unknown placeholder" in message


@pytest.mark.parametrize("command", ["gen {output:999999999}", "gen {output!a}", "gen {reference.name} {output}",
                                     "gen {reference[0]} {output}"])
def test_command_template_takes_bare_names_only(data: Path, command: str) -> None:
    text = MANIFEST.replace('outputs = "out/{speaker}.mp4"', f'command = "{command}"')
    message = manifest_error(data, text)
    assert "pipelines.P.command: placeholder {" in message and "bare names" in message


def test_literal_braces_still_work(data: Path) -> None:
    text = MANIFEST.replace('outputs = "out/{speaker}.mp4"', 'command = "gen --json {{}} {output}"')
    (data / "m.toml").write_text(text)
    assert load_manifest(data / "m.toml").pipelines["P"].command.fields() == {"output"}


# -- unreadable TOML ---------------------------------------------------------------------------------------

def test_deeply_nested_manifest(data: Path) -> None:
    assert "not valid TOML: nested too deeply" in manifest_error(data, MANIFEST + DEEP)


def test_non_utf8_manifest(data: Path) -> None:
    assert "not valid TOML: not UTF-8 text" in manifest_error(data, MANIFEST.encode() + b"# caf\xe9\n")


def thresholds_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    with pytest.raises(ManifestError) as info:
        Thresholds.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_deeply_nested_and_non_utf8_thresholds(tmp_path: Path) -> None:
    assert "nested too deeply" in thresholds_error(tmp_path, DEEP)
    assert "not UTF-8 text" in thresholds_error(tmp_path, b"[P]\npsnr = { min = 3 } # \xff\n")


# -- vacuous or wrong-typed bounds -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("[P]\npsnr = { min = nan }\n", "P.psnr.min: is NaN"),
    ("[P]\npsnr = { max = -nan }\n", "P.psnr.max: is NaN"),
    ("[P.speakers.a]\npsnr = { min = nan }\n", "P.speakers.a.psnr.min: is NaN"),
    ("[P]\npsnr = { tolerance = nan }\n", "P.psnr.tolerance: is NaN"),
    ("[P]\npsnr = { rel_tolerance = nan }\n", "P.psnr.rel_tolerance: is NaN"),
    ("[P]\npsnr = { min = 40, max = 30 }\n", "P.psnr: min 40 > max 30: no value can pass"),
    ('["*"]\nssim = { min = true }\n', '*.ssim.min: must be a number (got True)'),
    ("[P]\npsnr = { max = false }\n", "P.psnr.max: must be a number (got False)"),
    ("[P]\npsnr = { min = '30' }\n", "P.psnr.min: must be a number (got '30')"),
    ("[P]\npsnr = { tolerance = -0.5 }\n", "P.psnr.tolerance: must be a finite number >= 0 (got -0.5)"),
    ("[P]\npsnr = { rel_tolerance = inf }\n", "P.psnr.rel_tolerance: must be a finite number >= 0"),
    ("[P]\npsnr = { min = [30] }\n", "P.psnr.min: must be a number"),
])
def test_vacuous_bounds_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    assert message in thresholds_error(tmp_path, text)


def test_infinite_bound_and_equal_min_max_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[reference]\npsnr = { min = inf }\n[P]\nssim = { min = 1, max = 1 }\n")
    thresholds = Thresholds.load(path)
    assert thresholds.bound("reference", "a", "psnr").violation(99.0) is not None
    assert thresholds.bound("P", "a", "ssim").violation(1.0) is None


# -- names that match nothing ------------------------------------------------------------------------------

TYPOS = """
[Wav2Lp]
psnr = { min = 30 }
[W2L]
pnsr = { min = 30 }
[W2L.speakers.obma1]
ssim = { min = 0.5 }
[W2L.speakers.obama1]
lse_c = { min = 5 }
["*"]
ssim = { min = 0.4 }
[reference]
psnr = { min = inf }
"""


def test_typos_are_named_with_close_matches(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TYPOS)
    found = typos(Thresholds.load(path), ["W2L", "Wav2Lip"], ["obama1", "may"], ["psnr", "ssim"])
    assert found == [f"{path}: Wav2Lp: matches no pipeline of this run; did you mean Wav2Lip or W2L?",
                     f"{path}: W2L.pnsr: matches no metric of this run; did you mean psnr?",
                     f"{path}: W2L.speakers.obma1: matches no speaker of this run; did you mean obama1?"]


def test_a_pyiqa_metric_is_a_name(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[P]\nlpips = { max = 0.3 }\nlpipz = { max = 0.3 }\n")
    found = typos(Thresholds.load(path), ["P"], ["a"], ["psnr"])
    assert len(found) == 1 and "P.lpipz: matches no metric" in found[0]


def run_files(folder: Path, psnr: float) -> Path:
    folder.mkdir()
    record = {"case": "a-P", "speaker": "a", "pipeline": "P", "language": "en", "error": None,
              "metrics": {"psnr": {"value": psnr, "unit": "dB", "higher_is_better": True, "protocol": {}}}}
    (folder / "results.json").write_text(json.dumps({"run": {"dataset": "d"}, "results": [record]}))
    return folder


def test_compare_warns_on_typos_and_strict_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = run_files(tmp_path / "old", 30.0), run_files(tmp_path / "new", 29.0)
    (tmp_path / "t.toml").write_text("[P]\npnsr = { tolerance = 2 }\n")
    args = ["compare", str(old), str(new), "--thresholds", str(tmp_path / "t.toml")]
    assert main(args) == 1  # the typo leaves psnr without a tolerance: the drop regresses
    assert f"talkbench: warning: {tmp_path / 't.toml'}: P.pnsr: matches no metric of this run; did you mean " \
           "psnr?" in capsys.readouterr().err
    assert main([*args, "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"talkbench: {tmp_path / 't.toml'}: P.pnsr: matches no metric") and err.count("\n") == 1


def test_compare_with_non_utf8_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = run_files(tmp_path / "old", 30.0), run_files(tmp_path / "new", 29.0)
    (tmp_path / "t.toml").write_bytes(b"[P]\npsnr = { tolerance = 2 } # \xe9\n")
    assert main(["compare", str(old), str(new), "--thresholds", str(tmp_path / "t.toml")]) == 2
    assert capsys.readouterr().err.startswith(f"talkbench: {tmp_path / 't.toml'}: not valid TOML: not UTF-8")


def test_compare_with_deeply_nested_run_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = run_files(tmp_path / "old", 30.0)
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    assert main(["compare", str(old), str(tmp_path / "deep.json")]) == 2
    err = capsys.readouterr().err
    assert err == f"talkbench: {tmp_path / 'deep.json'}: not a valid baseline file (JSON nested too deeply); " \
                  "write it again\n"


def test_thresholds_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=f"^{tmp_path}: thresholds file not found$"):
        Thresholds.load(tmp_path)


def test_evaluate_unknown_metric(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache", str(data / "cache"), "evaluate", "--data", str(data), "--manifest",
                 str(data / "m.toml"), "--metrics", "psnr,bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("talkbench: --metrics: unknown metric(s) bogus; known: psnr, ssim,") and err.count("\n") == 1
    assert not (data / "cache").exists()  # refused before any work


# -- the real command and pytest: no traceback, no INTERNALERROR on any of these ---------------------------

def test_no_traceback_from_the_command_or_pytest(data: Path) -> None:
    """A handful of the bad inputs above through ``talkbench`` and ``pytest`` as subprocesses."""
    (data / "t.toml").write_text("[P]\npnsr = { min = 30 }\n")
    (data / "nan.toml").write_text("[P]\npsnr = { min = nan }\n")
    (data / "fmt.toml").write_text(MANIFEST.replace("{speaker}", "{speaker:999999999}"))
    base = ["--cache", str(data / "cache")]
    cli = [([*base, "evaluate", "--data", str(data), "--manifest", str(data / "m.toml"), "--metrics", "bogus"],
            "--metrics"),
           ([*base, "cases", "--data", str(data), "--manifest", str(data / "fmt.toml")], "fmt.toml")]
    for args, named in cli:
        done = subprocess.run([sys.executable, "-m", "talkbench_plugin.cli", *args], capture_output=True, text=True,
                              cwd=data, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
        assert named in done.stderr and done.stderr.count("\n") == 1, (args, done.stderr)
    runs = [(["--talkbench-thresholds", data / "t.toml", "--talkbench-strict"], "t.toml: P.pnsr: matches no metric"),
            (["--talkbench-thresholds", data / "nan.toml"], "nan.toml: P.psnr.min: is NaN")]
    for extra, named in runs:
        done = subprocess.run([sys.executable, "-m", "pytest", *map(str, pytest_args(data)), *map(str, extra)],
                              capture_output=True, text=True, cwd=data, timeout=120)
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
        assert named in out, out[-3000:]


def pytest_args(data: Path) -> list:
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "test_fidelity.py"
    return [bench, "-p", "no:cacheprovider", "--talkbench-data", data, "--talkbench-manifest", data / "m.toml",
            "--talkbench-cache", data / "cache", "--talkbench-calibrations", "none", "--talkbench-metrics", "psnr",
            "--rootdir", data]


def test_typo_is_a_warning_in_the_summary(data: Path, pytester: pytest.Pytester) -> None:
    (data / "t.toml").write_text("[P]\npnsr = { min = 30 }\n")
    result = pytester.runpytest(*map(str, pytest_args(data)), "--talkbench-thresholds", str(data / "t.toml"))
    result.assert_outcomes(passed=1)  # ssim is not enabled: not collected
    result.stdout.fnmatch_lines([f"talkbench: warning: {data / 't.toml'}: P.pnsr: matches no metric of this run; "
                                 "did you mean psnr?"])
