"""pytest hooks: options, case parametrisation, the ``talkbench`` fixture, and the run's reports.

Hooks stay thin: the engine (engine.py), datasets, thresholds and reports are plain modules.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .baseline import Baseline
from .baseline import load as load_baseline
from .cache import cache_dir
from .collector import ResultCollector
from .errors import TalkbenchError
from .manifest import CALIBRATION, Case, Dataset
from .metrics import CONVENTIONS, FACE, INCEPTION, KNOWN, SYNC, iqa_mode
from .run_options import DEFAULT_METRICS, METRICS_HELP, add_options, family_options
from .scratch import new_run_dir
from .thresholds import Thresholds

if TYPE_CHECKING:
    from .compare import Comparison
    from .execution.spec import ExecutorSpec
    from .weights import WeightStatus

PAYLOAD = pytest.StashKey[dict]()
WEIGHTS_SKIP = pytest.StashKey[str]()  # the metric a test skipped for want of weights
FAILURE = pytest.StashKey[dict]()  # what a metric test checked: metric, and on failure value, bound, baseline
STATE = pytest.StashKey["RunState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("talkbench", "talkbench: talking-face benchmark")
    group.addoption("--talkbench-data", metavar="DIR", help="dataset root (default: the embedded demo dataset)")
    group.addoption("--talkbench-manifest", metavar="FILE|NAME",
                    help="dataset manifest: a TOML file or a name under fixtures/datasets "
                         "(default: DIR/talkbench.toml)")
    group.addoption("--talkbench-thresholds", metavar="FILE",
                    help="bounds file (default: thresholds.toml next to the manifest, else "
                         "fixtures/thresholds/<dataset>.toml, if present)")
    group.addoption("--talkbench-strict", action="store_true",
                    help="a pipeline, speaker or metric name in the thresholds file that matches nothing is an "
                         "error (default: a warning)")
    group.addoption("--talkbench-metrics", metavar="LIST", default=DEFAULT_METRICS, help=METRICS_HELP)
    group.addoption("--talkbench-convention", choices=CONVENTIONS, default="ffmpeg",
                    help="PSNR/SSIM convention: ffmpeg (YUV planes, FFmpeg's filters) or skimage (RGB)")
    group.addoption("--talkbench-calibrations", metavar="LIST", default="reference,static,shifted,degraded",
                    help="calibration pipelines added to every dataset, comma-separated, or 'none' "
                         "(default: %(default)s)")
    group.addoption("--talkbench-shard", metavar="I/N|auto",
                    help="run only shard I of N (1-based): cases split by expected cost (frames x metrics); auto: "
                         "from SLURM_ARRAY_TASK_ID/COUNT or TALKBENCH_SHARD_INDEX/COUNT (0-based index)")
    group.addoption("--talkbench-report", metavar="DIR",
                    help="write results.json, CSV, Markdown and HTML reports here")
    group.addoption("--talkbench-baseline", metavar="FILE",
                    help="also fail a metric test whose value got worse than this baseline (a baseline file, a "
                         "results.json or its folder) beyond its tolerance in the thresholds file")
    group.addoption("--talkbench-save-baseline", metavar="FILE", help="save this run's values as a baseline file")
    group.addoption("--talkbench-latex", metavar="FILE",
                    help="write the paper table (per language and pipeline, booktabs) as LaTeX to FILE")
    group.addoption("--talkbench-compare", metavar="RUN",
                    help="print this run against RUN (results.json, its folder, or a baseline file) at the end; "
                         "a regression beyond tolerance fails the run")
    group.addoption("--talkbench-cache", metavar="DIR",
                    help="cache for the demo dataset and derived media (default: $TALKBENCH_CACHE or "
                         "~/.cache/talkbench)")
    group.addoption("--talkbench-batch", metavar="N", type=int, default=32, help="frames per batch (default 32)")
    group.addoption("--talkbench-weights", metavar="DIR",
                    help="model weights directory (default: $TALKBENCH_WEIGHTS or the cache's weights/); "
                         "fill it with `talkbench weights fetch`")
    group.addoption("--talkbench-require-weights", action="store_true",
                    help="fail, instead of skip, the metric tests whose model weights are missing (CI gates)")
    add_options(group.addoption, "talkbench-")
    group.addoption("--talkbench-executor", metavar="ray[=ADDRESS]",
                    help="run the cases as tasks on a Ray cluster: ray (= ray=auto: join $RAY_ADDRESS, else start "
                         "a local cluster) or ray=ADDRESS; needs a filesystem shared by the nodes")
    group.addoption("--talkbench-device", metavar="DEV", default="auto",
                    help="device for pipeline commands and metric models: auto (xdist worker gwN gets CUDA "
                         "device N mod count; cpu without CUDA), cpu or cuda:N (default: %(default)s)")
    parser.addini("talkbench_fixtures", "folder holding datasets/ and thresholds/", default="fixtures")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "talkbench: a talkbench metric test over (speaker, pipeline) cases")
    metrics = parse_list(config.getoption("talkbench_metrics"))
    unknown = sorted(m for m in set(metrics) - set(KNOWN) if iqa_mode(m) is None)
    if unknown:
        raise pytest.UsageError(f"--talkbench-metrics: unknown metric(s) {', '.join(unknown)}; "
                                f"known: {', '.join(KNOWN)} and pyiqa's per-image metrics (pyiqa.list_models())")
    state = RunState(config, metrics, parse_shard(config.getoption("talkbench_shard")))
    config.stash[STATE] = state
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ControllerReporter(state), "talkbench-reporter")
        from .progress_hooks import ProgressReporter

        config.pluginmanager.register(ProgressReporter(state.run_dir / "progress", state.dataset),
                                      "talkbench-progress")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(state), "talkbench-xdist")
    if state.executor is not None and not hasattr(config, "workerinput"):
        from .execution.pytest_run import ExecutorRun

        config.pluginmanager.register(ExecutorRun(state.executor, state), "talkbench-executor")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and not hasattr(config, "workerinput") and state.owns_run_dir:
        shutil.rmtree(state.run_dir, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "talkbench_case" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    if metafunc.config.getoption("benchmark_compare", None) or metafunc.config.getoption("benchmark_compare_fail", None):
        state.collect_error = ("talkbench: --benchmark-compare / --benchmark-compare-fail do not apply to talkbench's "
                               "tests (they do not run pytest-benchmark's timer); compare metric values with "
                               "--talkbench-compare RUN (fails the regressed tests), or saved runs with "
                               "`talkbench compare 0001 0002`")
        raise pytest.Collector.CollectError(state.collect_error)
    try:
        cases = state.dataset().cases()
        state.thresholds()  # a bad bounds file stops the run here, cleanly, not in every test
        if state.config.getoption("talkbench_strict") and state.threshold_typos():
            raise TalkbenchError(f"{'; '.join(state.threshold_typos())} (an error with --talkbench-strict)")
        state.saved_run("talkbench_baseline")
        state.saved_run("talkbench_compare")
    except TalkbenchError as exc:
        state.collect_error = f"talkbench: {exc}"
        raise pytest.Collector.CollectError(state.collect_error) from None
    if state.shard:
        from .sharding import shard_cases

        cases = shard_cases(cases, *state.shard, len(state.metrics))
    if "talkbench_iqa_metric" in metafunc.fixturenames:  # before the case: ids read [<metric>-<case>]
        metafunc.parametrize("talkbench_iqa_metric", state.iqa_metrics())
    metafunc.parametrize("talkbench_case", [pytest.param(c, id=c.id, marks=pytest.mark.talkbench) for c in cases])


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list | None:
    """No items for a metric test whose metric is not enabled (``test_<metric>``, or ``test_iqa`` without a
    pyiqa metric), and none after the dataset failed to load: its error is reported once, not per module."""
    if not (callable(obj) and collector.istestfunction(obj, name)):
        return None
    state = collector.config.stash[STATE]
    try:
        import inspect

        if "talkbench" not in inspect.signature(obj).parameters:
            return None
    except (TypeError, ValueError):
        return None
    metric = name.removeprefix("test_")
    disabled = (metric in KNOWN and metric not in state.metrics) or (metric == "iqa" and not state.iqa_metrics())
    return [] if disabled or state.collect_error else None


@pytest.fixture
def talkbench(request: pytest.FixtureRequest, talkbench_case: Case) -> CaseCheck:
    """Checks one case's metrics against the run's thresholds (see benchmarks/)."""
    return CaseCheck(request.node, request.config.stash[STATE], talkbench_case)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    if call.when == "call" and PAYLOAD in item.stash:
        report.talkbench = item.stash[PAYLOAD]
    if call.when == "call" and WEIGHTS_SKIP in item.stash:
        report.talkbench_weights_skip = item.stash[WEIGHTS_SKIP]
    if report.failed and call.excinfo is not None and item.get_closest_marker("talkbench") is not None:
        report.talkbench_failure = failure_record(item, call.excinfo, report)
    return report


def failure_record(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException],
                   report: pytest.TestReport) -> dict[str, Any]:
    """A failed metric test for the reports and annotations: its id, case, metric and the failure message
    itself (not xdist's worker header or a traceback); value, bound and baseline when a check failed."""
    error = excinfo.value
    message = str(error) if isinstance(error, pytest.fail.Exception) else excinfo.exconly()
    case = item.callspec.params.get("talkbench_case") if hasattr(item, "callspec") else None
    # the file the test was collected from (a re-exported test's code lives in the package)
    return {"test": item.nodeid, "file": item.nodeid.split("::", 1)[0], "case": getattr(case, "id", None),
            "metric": None, "phase": report.when, "message": message, **item.stash.get(FAILURE, {})}


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` as (I, N) with 1 <= I <= N; ``auto`` from a SLURM array job or CI variables (execution/shard.py)."""
    if text is None:
        return None
    if text == "auto":
        import os

        from .execution.shard import shard_from_env

        try:
            return shard_from_env(os.environ)
        except TalkbenchError as exc:
            raise pytest.UsageError(f"--talkbench-shard {exc}") from None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise pytest.UsageError(f"--talkbench-shard {text}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return int(index), int(count)


def parse_device(text: str) -> str:
    """``--talkbench-device``: auto, cpu or cuda:N (a device this machine has)."""
    from .devices import assign, cuda_device_count

    try:
        assign(text, None, cuda_device_count() if text.startswith("cuda:") else 0)
    except ValueError as exc:
        raise pytest.UsageError(f"--talkbench-device {exc}") from None
    return text


def parse_executor_option(text: str | None) -> ExecutorSpec | None:
    """``--talkbench-executor``: ray, ray=auto or ray=ADDRESS."""
    from .execution.spec import parse_executor

    try:
        return parse_executor(text)
    except TalkbenchError as exc:
        raise pytest.UsageError(f"--talkbench-executor {exc}") from None


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
        self.run_dir = Path(worker["talkbench_run_dir"]) if not self.owns_run_dir else new_run_dir()
        self.device_choice = parse_device(config.getoption("talkbench_device"))
        self.executor = parse_executor_option(config.getoption("talkbench_executor"))
        self._device: str | None = None
        self._dataset: Dataset | None = None
        self._thresholds: Thresholds | None = None
        self._typos: list[str] | None = None
        self._saved: dict[str, Baseline | None] = {}  # by option
        self.collect_error: str | None = None  # the dataset's problem, reported by the first module only
        self._weights: dict[str, WeightStatus] = {}

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
            beside = self.dataset().manifest.parent / "thresholds.toml"  # next to the user's manifest
            path = Path(option) if option else next((p for p in (beside, default) if p.is_file()), None)
            self._thresholds = Thresholds.load(path)
        return self._thresholds

    def threshold_typos(self) -> list[str]:
        """The thresholds file's names that match no pipeline, speaker or metric (see thresholds.typos)."""
        if self._typos is None:
            from .thresholds import typos

            dataset = self.dataset()
            self._typos = typos(self.thresholds(), dataset.pipelines, dataset.speakers, self.metrics)
        return self._typos

    def saved_run(self, option: str) -> Baseline | None:
        """The Baseline that ``--talkbench-baseline``/``--talkbench-compare`` names, checked against the
        dataset, or None when the option is not given."""
        if option not in self._saved:
            path = self.config.getoption(option)
            run = load_baseline(Path(path)) if path else None
            if run is not None:
                run.require_dataset(self.dataset().name)
            self._saved[option] = run
        return self._saved[option]

    @property
    def device(self) -> str:
        """This process's device (``cpu`` or ``cuda:N``) for pipeline commands and metric models."""
        if self._device is None:
            from .devices import assign, cuda_device_count

            worker = getattr(self.config, "workerinput", {}).get("workerid")
            self._device = assign(self.device_choice, worker, cuda_device_count())
        return self._device

    def settings(self) -> dict[str, Any]:
        options = self.family_options()
        return {"metrics": self.metrics, "convention": self.convention, "sync": options["sync"].to_dict(),
                "inception": options["fid"].to_dict(), "cpbd": options["cpbd"].to_dict(),
                "lpips": options["lpips"].to_dict(),
                "face": options["face"].to_dict()}

    def iqa_metrics(self) -> list[str]:
        """The enabled metrics that are pyiqa's (benchmarks/test_quality.py::test_iqa runs them)."""
        return [m for m in self.metrics if iqa_mode(m)]

    def family_options(self) -> dict[str, Any]:
        """``evaluate_case``'s options by family, from the --talkbench-sync-* / --talkbench-fid-* options."""
        try:
            return family_options(lambda name: self.config.getoption(f"talkbench_{name}"), self.weights_dir(),
                                  self.device, str(self.moments_dir()))
        except TalkbenchError as exc:
            raise pytest.UsageError(f"--talkbench-sync-* / --talkbench-fid-sampling: {exc}") from None

    def moments_dir(self) -> Path:
        """Where the generated side's FID moments go for the pooled group FID."""
        report = self.config.getoption("talkbench_report")  # kept there, shards' pooled FID can be merged
        return Path(report).resolve() / "fid-moments" if report else self.run_dir / "fid"

    def weights_dir(self) -> str:
        """--talkbench-weights, else $TALKBENCH_WEIGHTS, else the run's cache's weights/."""
        from .weights import weights_dir

        return str(weights_dir(self.config.getoption("talkbench_weights"), self.cache))

    def weights_problem(self, metric: str) -> WeightStatus | None:
        """The first weights file that ``metric`` needs and that is missing or not the pinned one."""
        if iqa_mode(metric):
            return self._iqa_weights(metric)
        return next((s for s in map(self._verified, self.needed_weights(metric)) if not s.ok), None)

    def _verified(self, name: str) -> WeightStatus:
        """The registry file ``name`` checked once per process."""
        if name not in self._weights:
            from .weights import verify

            self._weights[name] = verify(name, self.weights_dir())
        return self._weights[name]

    def needed_weights(self, metric: str) -> tuple[str, ...]:
        """The registry's weights that ``metric`` needs."""
        if metric in SYNC:
            return self.family_options()["sync"].needed_weights()
        if metric == "lpips":
            return self.family_options()["lpips"].needed_weights()
        if metric == "fvd":
            return ("i3d",)
        if metric in FACE:
            return self.family_options()["face"].needed_weights(metric)
        return ("inception",) if metric in INCEPTION else ()

    def _iqa_weights(self, metric: str) -> WeightStatus | None:
        """A pyiqa metric's missing file, found by building its model (kept for this process's cases)."""
        if metric not in self._weights:
            from .metrics.iqa import IqaWeightsMissing, model
            from .weights import WeightStatus

            try:
                model(metric, self.family_options()["pyiqa"])
            except IqaWeightsMissing as exc:
                self._weights[metric] = WeightStatus(f"pyiqa {metric}", exc.path, "missing",
                                                     f"download {exc.url} into {exc.path.parent}")
            except TalkbenchError:
                pass  # not a weights problem: the case's record names it
        return self._weights.get(metric)

    def missing_weights(self, skipped: list[str]) -> str:
        """One line for the run's summary: the ``skipped`` metrics, the weights they lack, what to run."""
        directory = self.weights_dir()
        names = list(dict.fromkeys(n for m in skipped for n in self.needed_weights(m) if not self._verified(n).ok))
        pyiqa = [m for m in skipped if iqa_mode(m)]
        how = [f"run `talkbench weights fetch {' '.join(names)}`"] if names else []
        how += [(f"put pyiqa's files for {', '.join(pyiqa)} into {Path(directory) / 'pyiqa'} (the skip "
                 "reasons give their URLs)")] if pyiqa else []
        return (f"{', '.join(skipped)} skipped: no {' / '.join([*names, *(f'pyiqa {m}' for m in pyiqa)])} weights "
                f"in {directory}; {'; '.join(how)} (or set $TALKBENCH_WEIGHTS / --talkbench-weights)")

    def computable(self) -> list[str]:
        """The enabled metrics whose weights are in place: what each case's record holds."""
        return [m for m in self.metrics if self.weights_problem(m) is None]

    def record(self, case: Case) -> dict[str, Any]:
        """The case's result record, computed once per run whichever worker asks first."""
        from .engine import evaluate_case
        from .store import RunStore

        if self.executor is not None:  # the controller submitted the case (execution/pytest_run.py)
            from .execution.pytest_run import wait_record

            return wait_record(self.run_dir, case, self.executor)

        def compute() -> dict[str, Any]:
            from .progress import ProgressFile

            progress = ProgressFile(self.run_dir / "progress", case.id)  # the controller shows it (StatusLine)
            try:
                return evaluate_case(case, self.computable(), self.cache, convention=self.convention,
                                     batch_size=self.batch, device=self.device,
                                     options=self.family_options(), progress=progress)
            finally:
                progress.close()

        return RunStore(self.run_dir / "cases").get(case.id, self.settings(), compute)


class CaseCheck:
    """What a metric test does: get the case's record, attach it to the report, assert the bound."""

    def __init__(self, item: pytest.Item, state: RunState, case: Case) -> None:
        self.item = item
        self.state = state
        self.case = case

    def check(self, metric: str) -> float:
        case = self.case
        checked = self.item.stash[FAILURE] = {"metric": metric}
        if metric not in self.state.metrics:
            pytest.skip(f"{metric} is not enabled (--talkbench-metrics {','.join(self.state.metrics)})")
        if case.pipeline.mode != CALIBRATION and case.pipeline.command is None and not case.generated.is_file():
            pytest.skip(f"no output of {case.pipeline.name} for {case.speaker.id}: expected {case.generated}")
        self._require_weights(metric)
        record = self.state.record(case)
        entry = record.get("metrics", {}).get(metric)
        self.item.stash[PAYLOAD] = {"metric": metric, "record": _only(record, metric)}
        if record.get("error"):
            pytest.fail(f"{case.id}: {record['error']}", pytrace=False)
        if entry.get("error"):
            pytest.fail(f"{case.id}: {metric}: {entry['error']}", pytrace=False)
        value = checked["value"] = entry["value"]
        self.item.user_properties.append((f"talkbench.{metric}", value))
        bound = self.state.thresholds().bound(case.pipeline.name, case.speaker.id, metric)
        problem = bound.violation(value) if bound else None
        if problem:
            checked["bound"] = bound.describe()
        for option in ("talkbench_baseline", "talkbench_compare"):  # a saved run to keep up with
            baseline = self.state.saved_run(option)
            if baseline is not None and not problem:
                tolerance = self.state.thresholds().tolerance(case.pipeline.name, case.speaker.id, metric)
                problem = baseline.violation(record, metric, tolerance)
                if problem:
                    checked.update(baseline=baseline.entry(case.id, metric)["value"], against=baseline.source)
        if problem:
            unit = f" {entry['unit']}" if entry["unit"] else ""
            pytest.fail(f"{case.id}: {metric} = {value:.6g}{unit} {problem}", pytrace=False)
        return value


    def _require_weights(self, metric: str) -> None:
        """Skip (or, with --talkbench-require-weights, fail) a metric whose model weights are missing;
        fail one whose weights file is not the pinned one."""
        status = self.state.weights_problem(metric)
        if status is None:
            return
        if status.state == "missing":
            reason = f"{metric} needs the {status.name} weights, not found at {status.path}: {status.detail}"
            if not self.state.config.getoption("talkbench_require_weights"):
                self.item.stash[WEIGHTS_SKIP] = metric
                pytest.skip(reason)
            pytest.fail(f"{reason} (--talkbench-require-weights)", pytrace=False)
        from .weights import fetch_hint

        pytest.fail(f"{metric}: {status.path} is not the pinned {status.name} weights, refused ({status.detail}); "
                    f"{fetch_hint(status.name, status.path.parent)}", pytrace=False)


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
        self.failures: list[dict[str, Any]] = []  # failure_record()s of the failed metric tests
        self.benchmarks: list[dict[str, Any]] = []  # pytest-benchmark entries: (case, metric), generate[case]
        self.weights_skipped: list[str] = []  # metrics skipped for want of weights, in first-seen order
        self.comparison: Comparison | None = None  # with --talkbench-compare
        self.compare_error: str | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect([item.nodeid for item in session.items])

    def expect(self, ids: list[str]) -> None:
        """Every collected test must report back, unless the run only collects."""
        if not self.state.config.option.collectonly:
            self.collector.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        skipped = getattr(report, "talkbench_weights_skip", None)
        if skipped and skipped not in self.weights_skipped:
            self.weights_skipped.append(skipped)
        payload = getattr(report, "talkbench", None)
        if payload is not None:
            self.collector.add_payload(payload)
            if payload["record"].get("metrics", {}).get(payload["metric"], {}).get("value") is not None:
                from .benchmark_json import entry

                self.benchmarks.append(entry(report.nodeid, payload["metric"], payload["record"],
                                             self.state.dataset().name))
            if payload["record"].get("generation"):
                from .benchmark_json import generation_entry

                self.benchmarks.append(generation_entry(report.nodeid, payload["record"]))
        failure = getattr(report, "talkbench_failure", None)
        if failure is not None:
            self.failures.append(failure)
        if report.when in ("teardown", "???"):  # "???": xdist's report for a test whose worker crashed
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
        from .pooled import add_group_pools

        add_group_pools(records)
        self._compare(session, records)
        verdict = "failed" if session.exitstatus != pytest.ExitCode.OK else "passed"
        dataset = self.state.dataset()
        gate = {"verdict": verdict, "failed": len(self.failures), "failures": self.failures}
        if self.weights_skipped:
            gate["weights_skipped"] = {"metrics": self.weights_skipped,
                                       "note": self.state.missing_weights(self.weights_skipped)}
        if self.comparison is not None:
            gate["comparison"] = self.comparison.to_json()
        if self.compare_error:
            gate["compare_error"] = self.compare_error
        info = run_info({"dataset": dataset.name, **self.state.settings(), "cases": [c.id for c in dataset.cases()],
                         "shard": "/".join(map(str, self.state.shard)) if self.state.shard else None,
                         "gate": gate})
        directory = self.state.config.getoption("talkbench_report")
        if directory:
            self.written = write_reports(Path(directory), records, info)
        self.written += save(self.state.config, self.benchmarks)
        latex = self.state.config.getoption("talkbench_latex")
        if latex:
            from .reporting.latex import write_latex

            self.written.append(write_latex(Path(latex), records, dataset.name))
        baseline = self.state.config.getoption("talkbench_save_baseline")
        if baseline:
            self.written.append(Baseline.from_records(records, dataset.name).save(Path(baseline)))
        github.append_summary(markdown(records, info))
        if github.in_actions():
            for failure in self.failures:
                github.annotate("error", failure["message"], file=failure["file"],
                                title=f"talkbench {failure['metric'] or failure['test']}")

    def _compare(self, session: pytest.Session, records: list[dict[str, Any]]) -> None:
        """With --talkbench-compare: this run against the saved one; a regression fails the run."""
        if not self.state.config.getoption("talkbench_compare"):
            return
        from .compare import compare_runs, tolerance_lookup

        try:
            current = Baseline.from_records(records, self.state.dataset().name, "this run")
            self.comparison = compare_runs(self.state.saved_run("talkbench_compare"), current,
                                           tolerance_lookup(self.state.thresholds(), {}))
        except TalkbenchError as exc:
            self.compare_error = str(exc)
        if (self.compare_error or self.comparison.regressions) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.collector.records:  # talkbench tests ran: the bounds file was read
            for typo in self.state.threshold_typos():
                terminalreporter.write_line(f"talkbench: warning: {typo}", yellow=True)
        weights = self.state.missing_weights(self.weights_skipped) if self.weights_skipped else None
        if not self.collector.records and not self.missing and not weights:
            return
        from .reports import errors, notes, per_language, per_video, runtime

        tr = terminalreporter
        records = self.collector.ordered()
        tr.write_sep("=", "talkbench")
        if records:
            tr.write_line(per_video(records).text())
            tr.write_line("")
            tr.write_line(per_language(records).text())
            tr.write_line("")
            from .reporting.leaderboard import boards

            for board in boards(records):
                tr.write_line(board.text(bold=tr.hasmarkup))
                tr.write_line("")
            tr.write_line(runtime(records).text())
        for problem in errors(records):
            tr.write_line(f"error: {problem}", red=True)
        for note in notes(records):
            tr.write_line(f"warning: {note}", yellow=True)
        for nodeid in self.missing:
            tr.write_line(f"missing result: {nodeid} produced no report", red=True)
        if self.comparison is not None:
            tr.write_line("")
            tr.write_line(self.comparison.text(color=tr.hasmarkup))
            for message in self.comparison.violations():
                tr.write_line(f"regression: {message}", red=True)
        if self.compare_error:
            tr.write_line(f"error: --talkbench-compare: {self.compare_error}", red=True)
        if weights:
            tr.write_line(weights, yellow=True)
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
