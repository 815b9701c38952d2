"""Errors that talkbench reports to users: each names the file and what to do."""

from __future__ import annotations


class TalkbenchError(Exception):
    """Base class: a problem with the user's inputs or settings, not a bug in talkbench."""


class ManifestError(TalkbenchError):
    """A dataset manifest or thresholds file is invalid; the message names the file and the key."""


class MediaError(TalkbenchError):
    """A video or audio file cannot be used; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class RunFileError(TalkbenchError):
    """A results.json or baseline file is unreadable or does not match the run; the message names it."""


class GenerationError(TalkbenchError):
    """A pipeline's command failed, timed out, or wrote no usable video; the message names the command,
    the expected output and the end of its log."""


class CacheError(TalkbenchError):
    """A cache directory cannot be written; the message names it and how to choose another."""
