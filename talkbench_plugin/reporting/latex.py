"""The paper table as LaTeX (booktabs), in the seed's layout: per language, each pipeline's mean over the
language's speakers, one column per metric with its direction; the best value per language in bold.

Calibration pipelines are left out (they are not methods). Needs ``\\usepackage{booktabs}`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..reports import fmt_value
from .leaderboard import board, is_calibration

LANGUAGES = {"en": "English", "zh": "Chinese"}
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_ARROWS = {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}
_NAMES = {"psnr": "PSNR", "ssim": "SSIM", "fid": "FID", "lse_c": "LSE-C", "lse_d": "LSE-D",
          "av_offset": "AV offset", "inception_score": "IS"}


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def _value(metric: str, value: float | None) -> str:
    text = fmt_value(metric, value)
    return {"–": "--", "inf": r"$\infty$", "-inf": r"$-\infty$"}.get(text, text)


def latex_table(records: Sequence[dict[str, Any]], caption: str = "", label: str = "tab:talkbench") -> str:
    """A ``table`` environment with a booktabs ``tabular``: Language | Pipeline | metric columns."""
    records = [r for r in records if not is_calibration(r)]
    languages = list(dict.fromkeys(r["language"] for r in records))
    blocks = [board([r for r in records if r["language"] == lang], lang) for lang in languages]
    metrics = list(dict.fromkeys(m for b in blocks for m in b.metrics))
    ways = {m: next((b.directions[m] for b in blocks if b.directions.get(m) is not None), None) for m in metrics}
    head = ["Language", "Pipeline", *(escape(_NAMES.get(m, m)) + _ARROWS[ways[m]] for m in metrics)]
    lines = [r"\begin{table}[t]", r"\centering", *([rf"\caption{{{escape(caption)}}}"] if caption else []),
             r"\begin{tabular}{ll" + "r" * len(metrics) + "}", r"\toprule",
             " & ".join(head) + r" \\", r"\midrule"]
    for i, block in enumerate(blocks):
        if i:
            lines.append(r"\midrule")
        for j, row in enumerate(block.rows):
            cells = [escape(LANGUAGES.get(block.title, block.title)) if j == 0 else "", escape(row.pipeline)]
            for m in metrics:
                value = row.values.get(m)
                text = _value(m, value)
                best = value is not None and m in block.best and value == block.best[m]
                cells.append(rf"\textbf{{{text}}}" if best else text)
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_latex(path: Path, records: Sequence[dict[str, Any]], dataset: str) -> Path:
    """Write the paper table to ``path`` (folders made as needed)."""
    caption = (f"Results on {dataset}: mean over each language's speakers; "
               "arrows give the better direction, bold the best per language.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(latex_table(records, caption), encoding="utf-8")
    return path
