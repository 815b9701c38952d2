"""The ``talkbench`` command: the demo dataset, case listing, evaluation without pytest, weights."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import __version__
from .cache import cache_dir
from .errors import TalkbenchError
from .metrics import CONVENTIONS, KNOWN, iqa_mode
from .run_options import DEFAULT_METRICS, METRICS_HELP, add_options
from .weights import add_cli as add_weights_cli

FIXTURES = Path("fixtures")
CALIBRATIONS = "reference,static,shifted,degraded"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # everything after `run` is pytest's (argparse would take its options)
        from .runner import run

        return run(argv[1:])
    parser = argparse.ArgumentParser(prog="talkbench", description=__doc__)
    parser.add_argument("--cache", help="cache directory (default: $TALKBENCH_CACHE or ~/.cache/talkbench)")
    parser.add_argument("--version", action="version", version=f"talkbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the benchmark tests (shipped with talkbench) from any folder: "
                              "`talkbench run [pytest args]`, e.g. -n 4 --talkbench-data DIR", add_help=False)
    sub.add_parser("demo", help="build the embedded demo dataset (once) and print its manifest path")
    for name, text in (("cases", "list the cases of a dataset"), ("evaluate", "evaluate a dataset, print the tables")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data", type=Path, help="dataset root (default: the demo dataset)")
        p.add_argument("--manifest", help="manifest file or name under fixtures/datasets")
        p.add_argument("--fixtures", type=Path, default=FIXTURES, help="folder with datasets/ (default: ./fixtures)")
        p.add_argument("--calibrations", help="calibration pipelines to add, comma-separated, or 'none' (default: "
                       f"{CALIBRATIONS}; with --reference: none)")
    cache = sub.add_parser("cache", help="show or clear the cache (demo, calibration videos, statistics)")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--all", action="store_true", help="with clear: remove the weights too")
    add_weights_cli(sub)
    compare = sub.add_parser("compare", help="compare two runs per case and metric; exit 1 on a regression")
    compare.add_argument("old", help="the earlier run: results.json, its folder, a baseline file, or a pytest-benchmark "
                                     "run (its JSON file, or its number/name in the storage, e.g. 0001)")
    compare.add_argument("new", help="the later run, likewise")
    compare.add_argument("--storage", default=".benchmarks", metavar="URL|PATH",
                         help="pytest-benchmark's storage, as --benchmark-storage (default: %(default)s)")
    compare.add_argument("--thresholds", type=Path, help="take tolerances (tolerance/rel_tolerance) from this file")
    compare.add_argument("--tolerance", action="append", default=[], metavar="METRIC=N[%]",
                         help="allowed worsening of a metric, absolute or %% of the old value (repeatable)")
    compare.add_argument("--strict", action="store_true",
                         help="a name in the thresholds file that matches no pipeline, speaker or metric of the "
                              "two runs is an error (default: a warning)")
    compare.add_argument("--markdown", action="store_true", help="print Markdown (for a pull-request comment)")
    compare.add_argument("--color", action="store_true", help="colour the rows even when not on a terminal")
    merge = sub.add_parser("merge", help="merge the reports of several shards into one report and gate verdict")
    merge.add_argument("runs", type=Path, nargs="+", help="the shards' report folders (or results.json files)")
    merge.add_argument("--out", type=Path, required=True, help="folder for the merged report")
    evaluate = sub.choices["evaluate"]
    evaluate.add_argument("--metrics", metavar="LIST", default=DEFAULT_METRICS, help=METRICS_HELP)
    evaluate.add_argument("--convention", choices=CONVENTIONS, default="ffmpeg")
    evaluate.add_argument("--report", type=Path, help="write JSON/CSV/Markdown reports here")
    evaluate.add_argument("--weights", help="model weights directory (default: $TALKBENCH_WEIGHTS or the cache's)")
    evaluate.add_argument("--reference", type=Path, help="score one video pair, no manifest: the reference video")
    evaluate.add_argument("--generated", type=Path, help="with --reference: the generated video")
    evaluate.add_argument("--language", default="und", help="with --reference: the speaker's language")
    history = sub.add_parser("history", help="plot each metric per pipeline over saved runs as one HTML page")
    history.add_argument("storage", type=Path, help="a pytest-benchmark storage folder (e.g. .benchmarks) or a "
                                                    "folder of results.json files")
    history.add_argument("--out", type=Path, default=Path("talkbench-history.html"),
                         help="the page to write (default: %(default)s)")
    init = sub.add_parser("init", help="write DIR/talkbench.toml from DIR/references/* and DIR/outputs/<pipeline>/*")
    init.add_argument("dir", type=Path, help="dataset folder")
    init.add_argument("--language", help="the speakers' language (asked per speaker on a terminal when not given)")
    init.add_argument("--mode", default="one-shot", choices=("one-shot", "dubbing", "person-specific"),
                      help="the pipelines' mode (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="overwrite an existing talkbench.toml")
    add_options(evaluate.add_argument)
    evaluate.add_argument("--executor", metavar="ray[=ADDRESS]",
                          help="run the cases as Ray tasks: ray (join $RAY_ADDRESS or start a local cluster) or "
                               "ray=ADDRESS; the nodes must share the dataset, cache and weights paths")
    args = parser.parse_args(argv)
    try:
        return args.func(args) if args.command == "weights" else COMMANDS[args.command](args)
    except TalkbenchError as exc:
        print(f"talkbench: {exc}", file=sys.stderr)
        return 2


def _cache(args: argparse.Namespace) -> int:
    from .cache import clear, usage

    directory = cache_dir(args.cache)
    if args.action == "clear":
        removed = clear(directory, keep=() if args.all else ("weights",))
        print(f"removed from {directory}: {', '.join(removed) or 'nothing'}")
        return 0
    print(f"cache directory: {directory}")
    for name, (files, size) in usage(directory).items():
        print(f"  {name:<12} {files:>6} files {size / 2**20:>10.1f} MiB")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .datasets import demo_manifest

    print(demo_manifest(cache_dir(args.cache)))
    return 0


def _dataset(args: argparse.Namespace):
    from .datasets import add_calibration, load_dataset

    pair = getattr(args, "reference", None) is not None or getattr(args, "generated", None) is not None
    text = args.calibrations or ("none" if pair else CALIBRATIONS)
    kinds = [] if text == "none" else [k for k in text.split(",") if k]
    if not pair:
        return load_dataset(args.data, args.manifest, cache_dir(args.cache), args.fixtures, calibrations=kinds)
    from .scaffold import pair_dataset

    if args.reference is None or args.generated is None or args.data or args.manifest:
        raise TalkbenchError("--reference and --generated go together, without --data/--manifest")
    dataset = pair_dataset(args.reference, args.generated, args.language)
    add_calibration(dataset, kinds)
    return dataset


def _history(args: argparse.Namespace) -> int:
    from .reporting.history import write_history

    path, count = write_history(args.storage, args.out)
    print(f"wrote {path} ({count} runs)")
    return 0


def _init(args: argparse.Namespace) -> int:
    from .scaffold import init

    ask = input if args.language is None and sys.stdin.isatty() else None
    path, dataset, unmatched = init(args.dir, args.language, ask, force=args.force, mode=args.mode)
    for file in unmatched:
        print(f"not used: {file} (its name matches no reference in {args.dir / 'references'})", file=sys.stderr)
    cases = dataset.cases()
    print(f"wrote {path}: {len(dataset.speakers)} speaker(s), {len(dataset.pipelines)} pipeline(s), "
          f"{len(cases)} case(s); run `talkbench run --talkbench-data {args.dir}`"
          f" or `talkbench evaluate --data {args.dir}`")
    return 0


def _cases(args: argparse.Namespace) -> int:
    for case in _dataset(args).cases():
        generated = case.pipeline.command is not None
        where = case.generated or ("(generated by its command)" if generated else "(derived from the reference)")
        state = "" if generated or case.generated is None or case.generated.is_file() else "  [missing]"
        print(f"{case.id}\t{case.pipeline.mode}\t{where}{state}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .devices import assign, cuda_device_count
    from .engine import evaluate_case
    from .pooled import add_group_pools
    from .progress import ConsoleProgress
    from .reporting.leaderboard import boards
    from .reports import errors, notes, per_language, per_video, run_info, write_reports
    from .run_options import family_options
    from .weights import weights_dir

    cache = cache_dir(args.cache)
    metrics = [m for m in args.metrics.split(",") if m]
    unknown = sorted(m for m in set(metrics) - set(KNOWN) if iqa_mode(m) is None)
    if unknown:
        raise TalkbenchError(f"--metrics: unknown metric(s) {', '.join(unknown)}; known: {', '.join(KNOWN)} "
                             "and pyiqa's per-image metrics (pyiqa.list_models())")
    dataset = _dataset(args)
    device = assign("auto", None, cuda_device_count())  # as `pytest benchmarks` without xdist
    with tempfile.TemporaryDirectory() as scratch:
        moments = args.report.resolve() / "fid-moments" if args.report else Path(scratch)  # for the pooled FID
        options = family_options(lambda name: getattr(args, name), str(weights_dir(args.weights, cache)), device,
                                 str(moments))
        metrics = _with_weights(metrics, options, str(weights_dir(args.weights, cache)))
        records, cases = [], []
        todo = [c for c in dataset.cases() if c.generated is None or c.pipeline.command is not None
                or c.generated.is_file()]
        progress = ConsoleProgress(sys.stderr, len(todo))
        for case in dataset.cases():
            if case not in todo:
                print(f"skip {case.id}: no output at {case.generated}", file=sys.stderr)
                continue
            if args.executor:
                cases.append(case)
                continue
            records.append(evaluate_case(case, metrics, cache, convention=args.convention, device=device,
                                         options=options, progress=progress.start_case(case.id)))
            progress.case_done(records[-1])
        if args.executor:
            records = _evaluate_on_executor(args, cases, metrics, cache, moments)
        add_group_pools(records)  # reads the moments files, so before the scratch folder goes
    print(per_video(records).text(), per_language(records).text(), *(b.text(sys.stdout.isatty()) for b in
                                                                     boards(records)), sep="\n\n")
    for problem in errors(records):
        print(f"error: {problem}", file=sys.stderr)
    for note in notes(records):
        print(f"warning: {note}", file=sys.stderr)
    if args.report:
        info = run_info({"dataset": dataset.name, "metrics": metrics, "convention": args.convention,
                         "sync": options["sync"].to_dict(), "inception": options["fid"].to_dict()})
        for path in write_reports(args.report, records, info):
            print(f"wrote {path}")
    return 1 if errors(records) else 0


def _evaluate_on_executor(args: argparse.Namespace, cases: list, metrics: list[str], cache: Path,
                          moments: Path) -> list[dict]:
    """``evaluate --executor``: the cases as tasks of a cluster (execution/ray_executor.py)."""
    from .execution.ray_executor import RunSettings, evaluate_cases
    from .execution.spec import parse_executor
    from .run_options import OPTIONS
    from .weights import weights_dir

    try:
        spec = parse_executor(args.executor)
    except TalkbenchError as exc:
        raise TalkbenchError(f"--executor {exc}") from None
    values = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name in OPTIONS}
    settings = RunSettings(metrics, cache, args.convention, 32, "auto", str(weights_dir(args.weights, cache).resolve()),
                           values, moments)
    return evaluate_cases(spec, cases, settings)


def _with_weights(metrics: list[str], options: dict, directory: str) -> list[str]:
    """The metrics whose model weights are in place; the others are skipped, saying what to fetch (as pytest does)."""
    from .metrics import INCEPTION, SYNC
    from .weights import verify

    def needed(metric: str) -> tuple[str, ...]:
        return options["sync"].needed_weights() if metric in SYNC else ("inception",) if metric in INCEPTION else ()

    lacking = {m: [n for n in needed(m) if not verify(n, directory).ok] for m in metrics}
    skipped = [m for m in metrics if lacking[m]]
    if skipped:
        names = list(dict.fromkeys(n for m in skipped for n in lacking[m]))
        print(f"{', '.join(skipped)} skipped: no {' / '.join(names)} weights in {directory}; run `talkbench weights "
              f"fetch {' '.join(names)}` (or set $TALKBENCH_WEIGHTS / --weights)", file=sys.stderr)
    return [m for m in metrics if m not in skipped]


def _compare(args: argparse.Namespace) -> int:
    from .benchmark_runs import load_any
    from .compare import compare_runs, parse_tolerances, tolerance_lookup
    from .thresholds import Thresholds, typos

    thresholds = Thresholds.load(args.thresholds)
    lookup = tolerance_lookup(thresholds, parse_tolerances(args.tolerance))
    old, new = load_any(args.old, args.storage), load_any(args.new, args.storage)
    cases = [*old.cases.values(), *new.cases.values()]
    found = typos(thresholds, {c["pipeline"] for c in cases}, {c["speaker"] for c in cases},
                  {m for c in cases for m in c["metrics"]})
    if found and args.strict:
        raise TalkbenchError(f"{'; '.join(found)} (an error with --strict)")
    for typo in found:
        print(f"talkbench: warning: {typo}", file=sys.stderr)
    comparison = compare_runs(old, new, lookup)
    print(comparison.markdown() if args.markdown else comparison.text(color=args.color or sys.stdout.isatty()))
    for message in comparison.violations():
        print(f"regression: {message}", file=sys.stderr)
    return 1 if comparison.regressions else 0


def _merge(args: argparse.Namespace) -> int:
    from . import github
    from .merge import merge_runs
    from .reports import markdown, per_language, per_video, write_reports

    merged = merge_runs(args.runs)
    print(per_video(merged.records).text(), per_language(merged.records).text(), sep="\n\n")
    for path in write_reports(args.out, merged.records, merged.info):
        print(f"wrote {path}")
    for problem in merged.problems:
        print(f"gate: {problem}", file=sys.stderr)
    print(f"gate: {merged.verdict} ({len(args.runs)} shard report(s))")
    github.append_summary(f"{markdown(merged.records, merged.info)}\n({len(args.runs)} shards merged)\n")
    return 1 if merged.problems else 0


COMMANDS = {"demo": _demo, "cases": _cases, "evaluate": _evaluate, "cache": _cache, "compare": _compare,
            "merge": _merge, "init": _init, "history": _history}

if __name__ == "__main__":
    sys.exit(main())
