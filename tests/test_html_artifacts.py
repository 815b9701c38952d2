"""report.html names what failed and what was skipped, has report.md's runtime table and alignment notes,
links rows to case cards and draws y axes on round ticks (checked in headless Chromium when installed)."""

import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from talkbench_plugin.html_report import nice_ticks, render

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def record(case: str, psnr: list[float], ssim: list[float]) -> dict:
    speaker, pipeline = case.split("-")
    return {"case": case, "speaker": speaker, "pipeline": pipeline, "language": "en", "mode": "dubbing",
            "error": None, "offset": 0.0, "segment": {"start": 0.0, "end": None},
            "inputs": {"reference": {"path": "/nowhere/ref.mp4", "fps": 25.0}, "generated": {"path": "/nowhere/g.mp4"}},
            "alignment": {"compared": len(psnr), "duplicated": 1, "dropped": 0,
                          "warnings": ["generated video is 0.2 s shorter than the reference"]},
            "timings": {"decode reference": 0.5, "psnr": 0.2, "total": 1.0},
            "throughput": {"frames_per_s": 10.0, "rtf": 0.5},
            "metrics": {"psnr": {"value": sum(psnr) / len(psnr), "unit": "dB", "higher_is_better": True,
                                 "per_frame": psnr},
                        "ssim": {"value": sum(ssim) / len(ssim), "unit": "", "higher_is_better": True,
                                 "per_frame": ssim}}}


RECORDS = [record("a-W2L", [27.3, 28.1, 26.9, 27.7, 29.0], [0.991, 0.995, 0.987, 0.999, 0.993]),
           record("b-W2L", [31.0, 30.2, 32.5, 31.7, 30.9], [0.96, 0.97, 0.95, 0.98, 0.975])]
FAILURE = {"test": "benchmarks/test_fidelity.py::test_psnr[a-W2L]", "file": "benchmarks/test_fidelity.py",
           "case": "a-W2L", "metric": "psnr", "phase": "call", "value": 27.8,
           "message": "a-W2L: psnr = 27.8 dB is below 28.5 dB: baseline 29 dB, ...", "baseline": 29.0}
GATE = {"verdict": "failed", "failed": 1, "failures": [FAILURE],
        "weights_skipped": {"metrics": ["lse_c", "lse_d"], "note": "lse_c, lse_d skipped: no syncnet weights in /w"},
        "comparison": {"against": "base/results.json", "summary": "comparison FAILED: 1 regressed, 1 same",
                       "changes": [{"case": "a-W2L", "metric": "psnr", "status": "regressed", "old": 29.0, "new": 27.8,
                                    "delta": -1.2, "bound": None, "violation": "..."},
                                   {"case": "b-W2L", "metric": "psnr", "status": "same", "old": 31.26, "new": 31.26,
                                    "delta": 0.0, "bound": None, "violation": None}]}}


def test_round_ticks_within_the_metric_range() -> None:
    assert nice_ticks(26.9, 29.0) == [26.0, 27.0, 28.0, 29.0]
    ssim = nice_ticks(0.987, 0.999, limits=(None, 1.0))
    assert ssim[-1] == 1.0 and all(t <= 1.0 for t in ssim) and ssim[0] <= 0.987
    assert all(re.fullmatch(r"0\.9\d*", f"{t:g}") or t == 1.0 for t in ssim)
    assert nice_ticks(3.0, 3.0)[0] < 3.0 < nice_ticks(3.0, 3.0)[-1]


def test_failed_tests_failing_cells_skips_runtime_and_notes() -> None:
    page = render(RECORDS, {"dataset": "tiny", "gate": GATE})
    assert "Gate: failed (1 metric test(s) failed)" in page
    assert "benchmarks/test_fidelity.py::test_psnr[a-W2L]: a-W2L: psnr = 27.8 dB is below" in page
    assert "[value 27.800; baseline 29.000]" in page
    cell = re.search(r'<td class="fail" title="([^"]*)">27\.8', page)
    assert cell and "test_psnr[a-W2L]" in cell.group(1)
    assert page.count('class="fail"') == 1
    assert "skipped, not run: lse_c, lse_d skipped: no syncnet weights in /w" in page
    assert "<h2>Runtime over 2 cases" in page and ">decode reference<" in page
    assert "<h2>Alignment notes</h2>" in page and "a-W2L: generated video is 0.2 s shorter" in page
    assert "<h2>Compared with base/results.json</h2>" in page and '<tr class=regressed>' in page
    assert '<a href="#case-a-W2L">a</a>' in page and 'id="case-a-W2L"' in page
    assert "Dashed red lines in the PSNR plot: the 2 frames with the lowest PSNR" in page
    ssim_ticks = [float(t) for t in re.findall(r'class="ytick"[^>]*>([^<]+)<', page.split("SSIM per frame")[1]
                                                  .split("</svg>")[0])]
    assert max(ssim_ticks) <= 1.0 and all(len(f"{t:g}") <= 5 for t in ssim_ticks)


CHECK = """<script>
const out = {links: [], missing: [], ticks: {}, failBackground: null};
for (const a of document.querySelectorAll('a[href^="#"]')) {
  out.links.push(a.getAttribute('href'));
  if (!document.getElementById(a.getAttribute('href').slice(1))) out.missing.push(a.getAttribute('href'));
}
for (const svg of document.querySelectorAll('svg')) {
  const title = svg.querySelector('text').textContent;
  out.ticks[title] = [...svg.querySelectorAll('text.ytick')].map(t => [parseFloat(t.textContent),
                                                                      t.getBoundingClientRect().top]);
}
const fail = document.querySelector('td.fail');
out.failBackground = fail && getComputedStyle(fail).backgroundColor;
out.failMark = fail && getComputedStyle(fail, '::after').content;
const pre = document.createElement('pre'); pre.id = 'result'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.mark.skipif(BROWSER is None, reason="chromium is not installed (apt-get install chromium)")
def test_links_ticks_and_failing_cells_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(RECORDS, {"dataset": "tiny", "gate": GATE}).replace("</body>", f"{CHECK}</body>"))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stdout[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["missing"] == [] and {"#case-a-W2L", "#case-b-W2L"} <= set(result["links"])
    assert result["failBackground"] == "rgb(255, 235, 233)" and "✗" in result["failMark"]
    for title, ticks in result["ticks"].items():
        values = [v for v, _ in ticks]
        assert len(values) >= 2 and all(math.isclose(v, round(v, 3)) for v in values), title
        assert [top for _, top in ticks] == sorted((top for _, top in ticks), reverse=True), title  # upwards
        if title.startswith("SSIM"):
            assert max(values) <= 1.0, title
