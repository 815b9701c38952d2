"""The leaderboard (per pipeline, per language, calibrations apart, best marked) and --talkbench-latex."""

import re
from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.baseline import load
from talkbench_plugin.cli import main
from talkbench_plugin.reporting.latex import latex_table
from talkbench_plugin.reporting.leaderboard import boards

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "baselines" / "microbench-seed.json"
BENCH = (Path(__file__).resolve().parents[1] / "benchmarks" / "test_fidelity.py").read_text()


def record(speaker: str, language: str, pipeline: str, psnr: float, fid: float, mode: str = "dubbing") -> dict:
    return {"case": f"{speaker}-{pipeline}", "speaker": speaker, "pipeline": pipeline, "language": language,
            "mode": mode, "error": None,
            "metrics": {"psnr": {"value": psnr, "higher_is_better": True},
                        "fid": {"value": fid, "higher_is_better": False}}}


RECORDS = [record("a", "en", "A", 30, 20), record("a", "en", "B", 28, 10), record("b", "zh", "A", 20, 50),
           record("b", "zh", "B", 26, 40), record("a", "en", "reference", float("inf"), 0.0, "calibration")]


def test_boards_rank_pipelines_mark_the_best_and_keep_calibrations_apart() -> None:
    overall, en, zh = boards(RECORDS)
    assert [r.pipeline for r in overall.rows] == ["B", "A"]  # by PSNR: B 27, A 25
    assert [r.pipeline for r in overall.calibrations] == ["reference"]
    assert overall.best == {"psnr": 27.0, "fid": 25.0}  # FID: lower is better; the reference's 0 is not ranked
    text = overall.text()
    assert "PSNR ↑" in text and "FID ↓" in text
    assert re.search(r"^B\s+\*27\.000\s+\*25\.000\s+2/2$", text, re.M)
    assert re.search(r"^A\s+25\.000\s+35\.000\s+2/2$", text, re.M)
    assert re.search(r"^reference\s+inf\s+0\.000\s+1/1$", text, re.M)
    assert (en.title, zh.title) == ("Leaderboard: en", "Leaderboard: zh")
    assert en.best == {"psnr": 30.0, "fid": 10.0}  # per language, A wins PSNR in English and B FID
    assert "| B | 28.000 | **10.000** | 1/1 |" in en.markdown()
    assert "| _reference_ (calibration) | inf | 0.000 | 1/1 |" in overall.markdown()
    assert '<b class="best">27.000</b>' in overall.html() and "class=calibration" in overall.html()


def test_latex_is_the_seed_table_in_booktabs() -> None:
    tex = latex_table(load(SEED).records(), caption="Seed 50% & more")
    lines = tex.splitlines()
    assert lines[:3] == [r"\begin{table}[t]", r"\centering", r"\caption{Seed 50\% \& more}"]
    assert r"\begin{tabular}{llrrr}" in lines and lines.count(r"\toprule") == lines.count(r"\bottomrule") == 1
    assert r"Language & Pipeline & PSNR $\uparrow$ & SSIM $\uparrow$ & FID $\downarrow$ \\" in lines
    body = lines[lines.index(r"\toprule") + 3 : lines.index(r"\bottomrule")]
    assert body == [r"English & Wav2Lip & \textbf{33.532} & \textbf{0.9520} & \textbf{19.685} \\",
                    r" & SadTalker & 19.509 & 0.7393 & 56.405 \\", r"\midrule",
                    r"Chinese & Wav2Lip & \textbf{28.725} & \textbf{0.8977} & \textbf{30.621} \\",
                    r" & SadTalker & 16.753 & 0.6650 & 53.788 \\"]
    assert tex.count("&") == tex.count(r"\&") + 4 * 5  # 5 columns: 4 separators in the header and 4 rows
    # calibrations are no methods; special characters in names are escaped
    tex = latex_table([*RECORDS, record("a", "en", "my_model", 1, 1)])
    assert "reference" not in tex and r"my\_model" in tex


def test_the_plugin_prints_the_leaderboard_and_writes_latex_and_reports(pytester: pytest.Pytester,
                                                                         tmp_path: Path) -> None:
    data = pytester.path / "data"
    (data / "ref").mkdir(parents=True)
    (data / "out").mkdir()
    write_video(data / "ref" / "a.mp4", moving_frames(10, 32, 32, seed=1), 25)
    write_video(data / "out" / "a.mp4", moving_frames(10, 32, 32, seed=2), 25)
    (data / "talkbench.toml").write_text('[dataset]\nname = "tiny"\n[speakers.a]\nlanguage = "en"\n'
                                         'reference = "ref/a.mp4"\n[pipelines.Mine]\nmode = "dubbing"\n'
                                         'outputs = "out/{speaker}.mp4"\n')
    pytester.makepyfile(test_fidelity=BENCH)
    result = pytester.runpytest_subprocess("--talkbench-data", "data", "--talkbench-cache", str(tmp_path / "c"),
                                           "--talkbench-calibrations", "reference", "--talkbench-report", "rep",
                                           "--talkbench-latex", "paper/table.tex", "-p", "no:cacheprovider",
                                           "--benchmark-save", "first", "--benchmark-storage", "bm")
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "Leaderboard (mean over all speakers)" in out
    assert re.search(r"^Mine\s+\*\d+\.\d{3}\s+\*0\.\d{4}\s+1/1$", out, re.M)
    assert re.search(r"^reference\s+inf\s+1\.0000\s+1/1$", out, re.M)
    tex = (pytester.path / "paper" / "table.tex").read_text()
    assert r"\toprule" in tex and re.search(r"^English & Mine & \\textbf\{\d+\.\d{3}\}", tex, re.M)
    assert "### Leaderboard (mean over all speakers)" in (pytester.path / "rep" / "report.md").read_text()
    assert "<table class=leaderboard>" in (pytester.path / "rep" / "report.html").read_text()
    assert "wrote paper/table.tex" in out
    # the same run's pytest-benchmark storage feeds `talkbench history` (tests/test_history.py has the details)
    assert main(["history", str(pytester.path / "bm"), "--out", str(pytester.path / "h.html")]) == 0
    page = (pytester.path / "h.html").read_text()
    assert 'data-pipeline="Mine"' not in page and "0001_first" in page  # one run: points, no line
    assert re.search(r"<title>Mine: \d+\.\d{3}</title></circle>", page)
