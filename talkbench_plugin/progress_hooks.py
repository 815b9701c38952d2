"""The controller's progress display under pytest (thin hooks; the logic is in progress.py).

Every process that computes a case writes its state into the run directory's ``progress/`` folder; here
the controller shows them: a status line redrawn on a terminal, or one line per finished case in a CI log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .errors import TalkbenchError
from .progress import StatusLine, case_line, cases_of, in_ci


class ProgressReporter:
    def __init__(self, folder: Path, dataset: Callable[[], Any]) -> None:
        self.folder = folder
        self.dataset = dataset  # RunState.dataset: loaded lazily, after the options are checked
        self.expected: set[str] = set()
        self.finished: set[str] = set()
        self.line: StatusLine | None = None
        self.terminal: Any = None
        self.fd = -1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if self.terminal is None or session.config.option.collectonly:
            return
        if self.terminal.isatty and not in_ci():
            # the terminal itself (pytest's capture is suspended now): a test's output capture, which
            # redirects fd 1 while it runs, does not swallow the status line
            self.fd = os.dup(sys.stdout.fileno())
            interval = float(os.environ.get("TALKBENCH_PROGRESS_INTERVAL", "0.5"))  # seconds between redraws
            self.line = StatusLine(self.folder, lambda text: os.write(self.fd, text.encode()) and None, interval)
            self.line.start()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.expect(ids)

    def expect(self, nodeids: list[str]) -> None:
        try:
            known = [case.id for case in self.dataset().cases()]
        except TalkbenchError:
            return  # the collection error says why
        self.expected |= cases_of(nodeids, known)
        if self.line is not None:
            self.line.total = len(self.expected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.line is not None:
            self.line.clear()  # pytest writes its own output next
        payload = getattr(report, "talkbench", None)
        if payload is None or payload["record"]["case"] in self.finished:
            return
        self.finished.add(payload["record"]["case"])
        if self.line is not None:
            self.line.done = len(self.finished)
        elif self.terminal is not None:  # a line of its own, also after pytest's progress dots
            column = getattr(getattr(self.terminal, "_tw", None), "width_of_current_line", 0)
            self.terminal.write(("\n" if column else "") + case_line(payload["record"], len(self.finished),
                                                                      len(self.expected)) + "\n")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        if self.line is not None:
            self.line.stop()
            os.close(self.fd)
            self.line = None
