"""pytest hooks: options, case parametrisation, the ``talkbench`` fixture, and the run's reports.

Hooks stay thin: the engine (engine.py), datasets, thresholds and reports are plain modules.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from .cache import cache_dir
from .collector import ResultCollector
from .errors import TalkbenchError
from .manifest import CALIBRATION, Case, Dataset
from .metrics import CONVENTIONS, FIDELITY
from .thresholds import Thresholds

PAYLOAD = pytest.StashKey[dict]()
STATE = pytest.StashKey["RunState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talkbench", "talkbench: talking-face benchmark")
    group.addoption("--talkbench-data", metavar="DIR", help="dataset root (default: the embedded demo dataset)")
    group.addoption("--talkbench-manifest", metavar="FILE|NAME",
                    help="dataset manifest: a TOML file or a name under fixtures/datasets "
                         "(default: DIR/talkbench.toml, else microbench)")
    group.addoption("--talkbench-thresholds", metavar="FILE",
                    help="bounds file (default: fixtures/thresholds/<dataset>.toml if present)")
    group.addoption("--talkbench-metrics", metavar="LIST", default=",".join(FIDELITY),
                    help="metrics to compute, comma-separated (default: %(default)s)")
    group.addoption("--talkbench-convention", choices=CONVENTIONS, default="ffmpeg",
                    help="PSNR/SSIM convention: ffmpeg (YUV planes, FFmpeg's filters) or skimage (RGB)")
    group.addoption("--talkbench-calibrations", metavar="LIST", default="reference,static,shifted,degraded",
                    help="calibration pipelines added to every dataset, comma-separated, or 'none' "
                         "(default: %(default)s)")
    group.addoption("--talkbench-shard", metavar="I/N",
                    help="run only shard I of N (1-based): every N-th case of the dataset, from the I-th on")
    group.addoption("--talkbench-report", metavar="DIR", help="write results.json, CSV and Markdown tables here")
    group.addoption("--talkbench-cache", metavar="DIR",
                    help="cache for the demo dataset and derived media (default: $TALKBENCH_CACHE or "
                         "~/.cache/talkbench)")
    group.addoption("--talkbench-batch", metavar="N", type=int, default=32, help="frames per batch (default 32)")
    parser.addini("talkbench_fixtures", "folder holding datasets/ and thresholds/", default="fixtures")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "talkbench: a talkbench metric test over (speaker, pipeline) cases")
    metrics = parse_list(config.getoption("talkbench_metrics"))
    unknown = sorted(set(metrics) - set(FIDELITY))
    if unknown:
        raise pytest.UsageError(f"--talkbench-metrics: unknown metric(s) {', '.join(unknown)}; "
                                f"known: {', '.join(FIDELITY)}")
    state = RunState(config, metrics, parse_shard(config.getoption("talkbench_shard")))
    config.stash[STATE] = state
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ControllerReporter(state), "talkbench-reporter")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(state), "talkbench-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and not hasattr(config, "workerinput") and state.owns_run_dir:
        shutil.rmtree(state.run_dir, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "talkbench_case" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    try:
        cases = state.dataset().cases()
        state.thresholds()  # a bad bounds file stops the run here, cleanly, not in every test
    except TalkbenchError as exc:
        raise pytest.Collector.CollectError(f"talkbench: {exc}") from None
    if state.shard:
        index, count = state.shard
        cases = cases[index - 1 :: count]
    metafunc.parametrize("talkbench_case", cases, ids=[c.id for c in cases])
    metafunc.definition.add_marker("talkbench")


@pytest.fixture
def talkbench(request: pytest.FixtureRequest, talkbench_case: Case) -> CaseCheck:
    """Checks one case's metrics against the run's thresholds (see benchmarks/)."""
    return CaseCheck(request.node, request.config.stash[STATE], talkbench_case)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    if call.when == "call" and PAYLOAD in item.stash:
        report.talkbench = item.stash[PAYLOAD]
    return report


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` as (I, N) with 1 <= I <= N."""
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise pytest.UsageError(f"--talkbench-shard {text}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return int(index), int(count)


def parse_list(text: str) -> list[str]:
    """A comma-separated option value; 'none' is the empty list."""
    return [] if text.strip() == "none" else [item.strip() for item in text.split(",") if item.strip()]


class RunState:
    """Per-process settings and lazily loaded dataset/thresholds."""

    def __init__(self, config: pytest.Config, metrics: list[str], shard: tuple[int, int] | None) -> None:
        self.config = config
        self.metrics = metrics
        self.shard = shard
        self.convention = config.getoption("talkbench_convention")
        self.batch = config.getoption("talkbench_batch")
        self.calibrations = parse_list(config.getoption("talkbench_calibrations"))
        self.cache = cache_dir(config.getoption("talkbench_cache"))
        self.fixtures = config.rootpath / config.getini("talkbench_fixtures")
        worker = getattr(config, "workerinput", None)
        self.owns_run_dir = worker is None or "talkbench_run_dir" not in worker
        self.run_dir = Path(worker["talkbench_run_dir"]) if not self.owns_run_dir else \
            Path(tempfile.mkdtemp(prefix="talkbench-run-"))
        self._dataset: Dataset | None = None
        self._thresholds: Thresholds | None = None

    def dataset(self) -> Dataset:
        if self._dataset is None:
            from .datasets import load_dataset

            data = self.config.getoption("talkbench_data")
            self._dataset = load_dataset(Path(data) if data else None, self.config.getoption("talkbench_manifest"),
                                         self.cache, self.fixtures, calibrations=self.calibrations)
        return self._dataset

    def thresholds(self) -> Thresholds:
        if self._thresholds is None:
            option = self.config.getoption("talkbench_thresholds")
            default = self.fixtures / "thresholds" / f"{self.dataset().name}.toml"
            path = Path(option) if option else (default if default.is_file() else None)
            self._thresholds = Thresholds.load(path)
        return self._thresholds

    def settings(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "convention": self.convention}

    def record(self, case: Case) -> dict[str, Any]:
        """The case's result record, computed once per run whichever worker asks first."""
        from .engine import evaluate_case
        from .store import RunStore

        def compute() -> dict[str, Any]:
            return evaluate_case(case, self.metrics, self.cache, convention=self.convention, batch_size=self.batch)

        return RunStore(self.run_dir / "cases").get(case.id, self.settings(), compute)


class CaseCheck:
    """What a metric test does: get the case's record, attach it to the report, assert the bound."""

    def __init__(self, item: pytest.Item, state: RunState, case: Case) -> None:
        self.item = item
        self.state = state
        self.case = case

    def check(self, metric: str) -> float:
        case = self.case
        if metric not in self.state.metrics:
            pytest.skip(f"{metric} is not enabled (--talkbench-metrics {','.join(self.state.metrics)})")
        if case.pipeline.mode != CALIBRATION and not case.generated.is_file():
            pytest.skip(f"no output of {case.pipeline.name} for {case.speaker.id}: expected {case.generated}")
        record = self.state.record(case)
        entry = record.get("metrics", {}).get(metric)
        self.item.stash[PAYLOAD] = {"metric": metric, "record": _only(record, metric)}
        if record.get("error"):
            pytest.fail(f"{case.id}: {record['error']}", pytrace=False)
        value = entry["value"]
        self.item.user_properties.append((f"talkbench.{metric}", value))
        bound = self.state.thresholds().bound(case.pipeline.name, case.speaker.id, metric)
        problem = bound.violation(value) if bound else None
        if problem:
            unit = f" {entry['unit']}" if entry["unit"] else ""
            pytest.fail(f"{case.id}: {metric} = {value:.6g}{unit} {problem}", pytrace=False)
        return value


def _only(record: dict[str, Any], metric: str) -> dict[str, Any]:
    """The record with just one metric: each metric test carries its own number to the controller."""
    metrics = record.get("metrics", {})
    return {**record, "metrics": {metric: metrics[metric]} if metric in metrics else {}}


class ControllerReporter:
    """Runs on the controller only: collects payloads, prints the tables, writes the reports."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.collector = ResultCollector()
        self.missing: list[str] = []
        self.written: list[Path] = []
        self.failures: list[tuple[str, str, str]] = []  # (test file, metric, message)
        self.benchmarks: list[dict[str, Any]] = []  # pytest-benchmark entries, one per (case, metric)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect([item.nodeid for item in session.items])

    def expect(self, ids: list[str]) -> None:
        """Every collected test must report back, unless the run only collects."""
        if not self.state.config.option.collectonly:
            self.collector.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "talkbench", None)
        if payload is not None:
            self.collector.add_payload(payload)
            if payload["metric"] in payload["record"].get("metrics", {}):
                from .benchmark_json import entry

                self.benchmarks.append(entry(report.nodeid, payload["metric"], payload["record"]))
            if report.failed:
                self.failures.append((report.location[0], payload["metric"], report.longreprtext))
        if report.when == "teardown":
            self.collector.finish(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        interrupted = session.shouldstop or session.shouldfail
        self.missing = [] if interrupted else self.collector.missing()
        if self.missing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if not self.collector.records:
            return
        from . import github
        from .benchmark_json import save
        from .reports import markdown, run_info, write_reports

        records = self.collector.ordered()
        info = run_info({"dataset": self.state.dataset().name, **self.state.settings()})
        directory = self.state.config.getoption("talkbench_report")
        if directory:
            self.written = write_reports(Path(directory), records, info)
        self.written += save(self.state.config, self.benchmarks)
        verdict = "failed" if session.exitstatus != pytest.ExitCode.OK else "passed"
        github.append_summary(f"{markdown(records, info)}\n**Gate: {verdict}** "
                              f"({len(self.failures)} metric test(s) failed)\n")
        if github.in_actions():
            for file, metric, message in self.failures:
                github.annotate("error", message, file=file, title=f"talkbench {metric}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.collector.records and not self.missing:
            return
        from .reports import errors, per_language, per_video

        tr = terminalreporter
        records = self.collector.ordered()
        tr.write_sep("=", "talkbench")
        if records:
            tr.write_line(per_video(records).text())
            tr.write_line("")
            tr.write_line(per_language(records).text())
        for problem in errors(records):
            tr.write_line(f"error: {problem}", red=True)
        for nodeid in self.missing:
            tr.write_line(f"missing result: {nodeid} produced no report", red=True)
        for path in self.written:
            tr.write_line(f"wrote {path}")


class XdistHooks:
    """xdist-only hooks: share the run directory, learn the collected ids, group a case on one worker."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["talkbench_run_dir"] = os.fspath(self.state.run_dir)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        reporter = self.state.config.pluginmanager.get_plugin("talkbench-reporter")
        if reporter is not None:
            reporter.expect(ids)

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from .scheduling import CaseScheduling

        return CaseScheduling(config, log)
