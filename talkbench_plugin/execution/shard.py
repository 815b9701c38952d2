"""``--talkbench-shard auto``: this job's shard I/N from a SLURM array job, or from variables a CI matrix sets.

SLURM sets ``SLURM_ARRAY_TASK_ID`` (from ``SLURM_ARRAY_TASK_MIN``, in steps of ``SLURM_ARRAY_TASK_STEP``)
and ``SLURM_ARRAY_TASK_COUNT``. GitHub Actions has no such variables; a workflow passes its matrix
position explicitly: ``TALKBENCH_SHARD_INDEX: ${{ strategy.job-index }}`` (0-based) and
``TALKBENCH_SHARD_COUNT: ${{ strategy.job-total }}``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import TalkbenchError

SLURM = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
EXPLICIT = ("TALKBENCH_SHARD_INDEX", "TALKBENCH_SHARD_COUNT")


def shard_from_env(environ: Mapping[str, str]) -> tuple[int, int]:
    """(I, N), 1-based, for this job; TalkbenchError when no scheduler variables are set or they are bad."""
    if SLURM[0] in environ:
        task, count = _int(environ, SLURM[0]), _int(environ, SLURM[1])
        first = _int(environ, "SLURM_ARRAY_TASK_MIN", 0)
        step = _int(environ, "SLURM_ARRAY_TASK_STEP", 1) or 1
        index, source = (task - first) // step, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
    elif EXPLICIT[0] in environ:
        index, count = _int(environ, EXPLICIT[0]), _int(environ, EXPLICIT[1])
        source = "TALKBENCH_SHARD_INDEX/TALKBENCH_SHARD_COUNT"
    else:
        raise TalkbenchError("auto: no SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (a SLURM array job) nor "
                             "TALKBENCH_SHARD_INDEX/TALKBENCH_SHARD_COUNT (set them from your CI matrix, e.g. "
                             "${{ strategy.job-index }} and ${{ strategy.job-total }}); or give I/N")
    if not 0 <= index < count:
        raise TalkbenchError(f"auto: {source} give shard {index + 1} of {count}, outside 1..{count}")
    return index + 1, count


def _int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = environ.get(name)
    if value is None and default is not None:
        return default
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TalkbenchError(f"auto: ${name} is {value!r}, not a whole number") from None
