"""Strict JSON for talkbench's files: no bare ``Infinity``/``NaN`` (invalid for ``JSON.parse`` and jq).

A non-finite number is written as ``null`` and named beside it: a field ``K`` of an object gets
``"K_nonfinite": "inf" | "-inf" | "nan"``; in a list ``K`` the nulls' positions are listed,
``"K_nonfinite": {"inf": [indices], ...}``. So an identical frame's PSNR reads
``"value": null, "value_nonfinite": "inf"``. ``loads`` restores the numbers, and still reads files
written before (bare ``Infinity``).
"""

from __future__ import annotations

import json
import math
from typing import Any

SUFFIX = "_nonfinite"


def _name(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _nonfinite(x: Any) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def encode(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float replaced as the module docstring says."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if _nonfinite(value):
                out[key], out[f"{key}{SUFFIX}"] = None, _name(value)
            elif isinstance(value, list) and any(map(_nonfinite, value)):
                where: dict[str, list[int]] = {}
                for i, v in enumerate(value):
                    if _nonfinite(v):
                        where.setdefault(_name(v), []).append(i)
                out[key] = [None if _nonfinite(v) else encode(v) for v in value]
                out[f"{key}{SUFFIX}"] = where
            else:
                out[key] = encode(value)
        return out
    if isinstance(obj, list | tuple):
        return [None if _nonfinite(v) else encode(v) for v in obj]
    return obj


def decode(obj: Any) -> Any:
    """``encode`` undone: the named nulls are numbers again (in place for dicts and lists, also returned)."""
    if isinstance(obj, dict):
        for key in [k for k in obj if isinstance(k, str) and k.endswith(SUFFIX)]:
            field, marks = key[: -len(SUFFIX)], obj[key]
            if field in obj and isinstance(marks, str) and obj[field] is None:
                obj[field] = float(marks)
                del obj[key]
            elif isinstance(obj.get(field), list) and isinstance(marks, dict):
                for name, indices in marks.items():
                    for i in indices:
                        obj[field][i] = float(name)
                del obj[key]
        for value in obj.values():
            decode(value)
    elif isinstance(obj, list):
        for value in obj:
            decode(value)
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``encode(obj)``, refusing anything non-finite left over."""
    return json.dumps(encode(obj), allow_nan=False, **kwargs)


def loads(text: str) -> Any:
    """``json.loads`` then ``decode``: reads strict files and older ones with bare ``Infinity``."""
    return decode(json.loads(text))
