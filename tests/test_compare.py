"""Two runs compared: rows per case and metric, tolerances, colour, Markdown, and ``talkbench compare``."""

import json
import math
import re
from pathlib import Path

import pytest

from talkbench_plugin.baseline import Baseline
from talkbench_plugin.cli import main
from talkbench_plugin.compare import compare_runs, parse_tolerances
from talkbench_plugin.errors import RunFileError, TalkbenchError


def record(case: str, psnr: float, fid: float, convention: str = "ffmpeg") -> dict:
    speaker, pipeline = case.split("-")
    return {"case": case, "speaker": speaker, "pipeline": pipeline, "language": "en", "error": None,
            "metrics": {"psnr": {"value": psnr, "unit": "dB", "higher_is_better": True,
                                 "protocol": {"convention": convention}},
                        "fid": {"value": fid, "unit": "", "higher_is_better": False, "protocol": {}}}}


OLD = [record("a-W2L", 30.0, 20.0), record("b-W2L", 28.0, 30.0), record("a-reference", math.inf, 0.0)]
NEW = [record("a-W2L", 29.0, 19.0), record("b-W2L", 28.2, 30.5), record("a-reference", math.inf, 0.0),
       record("c-W2L", 25.0, 40.0)]


def write_run(folder: Path, records: list, dataset: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"run": {"dataset": dataset}, "results": records}))
    return folder


def statuses(comparison) -> dict:
    return {(c.case, c.metric): c.status for c in comparison.changes}


def test_rows_statuses_and_tolerances() -> None:
    old, new = Baseline.from_records(OLD, "tiny", "old"), Baseline.from_records(NEW, "tiny", "new")
    tolerances = parse_tolerances(["psnr=0.5", "fid=2%"])
    comparison = compare_runs(old, new, lambda pipeline, speaker, metric: tolerances.get(metric))
    assert statuses(comparison) == {
        ("a-W2L", "psnr"): "regressed", ("a-W2L", "fid"): "better",
        ("b-W2L", "psnr"): "better", ("b-W2L", "fid"): "worse",  # +0.5 is within 2% of 30
        ("a-reference", "psnr"): "same", ("a-reference", "fid"): "same",
        ("c-W2L", "psnr"): "new", ("c-W2L", "fid"): "new"}
    assert [c.case for c in comparison.regressions] == ["a-W2L"]
    assert comparison.violations() == ["a-W2L: psnr = 29 dB is below 29.5 dB: baseline 30 dB, minus the tolerance "
                                       "0.5 (--tolerance psnr=0.5); Δ -1 dB (baseline: old)"]
    rows = {(r[0], r[1]): r for r in comparison.table().rows}
    assert rows["a-W2L", "psnr"][3:] == ["30.000", "29.000", "-1.000", "-3.33%", "29.500"]
    assert rows["b-W2L", "fid"][3:] == ["30.000", "30.500", "+0.500", "+1.67%", "30.600"]
    assert rows["c-W2L", "psnr"][3:6] == ["–", "25.000", "–"]
    # without tolerances any worsening regresses; a case only in the old run is 'gone'
    strict = compare_runs(new, Baseline.from_records(OLD, "tiny", "old"))
    assert statuses(strict)["b-W2L", "psnr"] == "regressed" and statuses(strict)["c-W2L", "fid"] == "gone"


def test_text_colour_and_markdown() -> None:
    comparison = compare_runs(Baseline.from_records(OLD, "tiny", "old"), Baseline.from_records(NEW, "tiny", "new"))
    plain = comparison.text()
    assert "\x1b[" not in plain and plain.splitlines()[0] == "Compared with old"
    assert plain.splitlines()[-1] == "comparison FAILED: 2 regressed, 2 better, 2 same, 2 new"
    coloured = comparison.text(color=True).splitlines()
    assert coloured[3].startswith("\x1b[31;1ma-W2L") and coloured[4].startswith("\x1b[32ma-W2L")  # red, green
    md = comparison.markdown()
    assert "| a-W2L | psnr | **regressed** | 30.000 | 29.000 | -1.000 | -3.33% | – |" in md
    assert md.rstrip().endswith("comparison FAILED: 2 regressed, 2 better, 2 same, 2 new")


def test_runs_of_other_datasets_or_protocols_are_refused() -> None:
    old = Baseline.from_records(OLD, "tiny", "old.json")
    with pytest.raises(RunFileError, match="new.json evaluates dataset 'other' but old.json is of 'tiny'"):
        compare_runs(old, Baseline.from_records(NEW, "other", "new.json"))
    skimage = Baseline.from_records([record("a-W2L", 30.0, 20.0, "skimage")], "tiny", "new.json")
    with pytest.raises(RunFileError, match="a-W2L psnr: the protocol differs from old.json "
                                           r"\(convention: 'ffmpeg' -> 'skimage'\)"):
        compare_runs(old, skimage)


@pytest.mark.parametrize("item", ["psnr", "psnr=", "psnr=-1", "psnr=abc%", "=2", "psnr=inf"])
def test_bad_tolerance_options(item: str) -> None:
    with pytest.raises(TalkbenchError, match="expected METRIC=NUMBER or METRIC=NUMBER%"):
        parse_tolerances([item])


def test_cli_exit_codes_tolerance_file_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    old, new = write_run(tmp_path / "old", OLD), write_run(tmp_path / "new", NEW)
    assert main(["compare", str(old), str(new)]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"^a-W2L +psnr +regressed +30.000 +29.000", out, re.MULTILINE) and "\x1b[" not in out  # no tty
    assert "regression: a-W2L: psnr = 29 dB is below 30 dB" in err
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[W2L]\npsnr = { tolerance = 1.0 }\nfid = { rel_tolerance = 0.02 }\n")
    assert main(["compare", str(old / "results.json"), str(new), "--thresholds", str(thresholds)]) == 0
    assert main(["compare", str(old), str(new), "--thresholds", str(thresholds), "--tolerance", "psnr=0.1",
                 "--markdown", "--color"]) == 1
    out, err = capsys.readouterr()
    assert "| a-W2L | psnr | **regressed** |" in out and "\x1b[" not in out
    assert "(--tolerance psnr=0.1)" in err
    assert main(["compare", str(old), str(new), "--color"]) == 1
    assert "\x1b[31;1m" in capsys.readouterr().out


def test_cli_refusals_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    old = write_run(tmp_path / "old", OLD)
    other = write_run(tmp_path / "other", NEW, dataset="microbench")
    (tmp_path / "bad.json").write_text('{"run": ')
    assert main(["compare", str(old), str(other)]) == 2
    assert "evaluates dataset 'microbench'" in capsys.readouterr().err
    assert main(["compare", str(old), str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json: not a valid baseline file (corrupt JSON" in err and "Traceback" not in err
    assert main(["compare", str(old), str(old), "--tolerance", "psnr=x"]) == 2
