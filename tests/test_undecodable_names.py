"""A generated file whose name holds a byte that is not UTF-8 (issue 16.10): the record carries the name as
text with the byte escaped, so reports are written and xdist can send the record (no DumpError)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from execnet.gateway_base import dumps
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.reports import write_reports


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="these file systems refuse names that are not UTF-8")
def test_a_non_utf8_file_name_is_kept_as_escaped_text(tmp_path: Path) -> None:
    ref = write_video(tmp_path / "ref.mp4", moving_frames(5, 32, 24), 25)
    gen = Path(os.fsdecode(os.fsencode(tmp_path) + b"/gen\xff.mp4"))
    write_video(gen, moving_frames(5, 32, 24, seed=1), 25)
    record = evaluate_case(Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment()),
                           ["psnr", "ssim"], tmp_path / "cache")
    assert record["error"] is None and record["metrics"]["psnr"]["value"] > 0
    assert record["inputs"]["generated"]["path"] == f"{tmp_path}/gen\\xff.mp4"
    dumps(record)  # what xdist does with a report's payload
    json.dumps(record, ensure_ascii=False).encode("utf-8")
    written = write_reports(tmp_path / "report", [record], {"dataset": "d"})
    saved = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))["results"][0]
    assert saved["inputs"]["generated"]["path"] == f"{tmp_path}/gen\\xff.mp4"
    assert len(written) == 5
