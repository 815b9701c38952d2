"""The ``talkbench`` command: the demo dataset, case listing, evaluation without pytest, weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cache import cache_dir
from .errors import TalkbenchError
from .metrics import CONVENTIONS, FIDELITY
from .weights import add_cli as add_weights_cli

FIXTURES = Path("fixtures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkbench", description=__doc__)
    parser.add_argument("--cache", help="cache directory (default: $TALKBENCH_CACHE or ~/.cache/talkbench)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="build the embedded demo dataset (once) and print its manifest path")
    for name, text in (("cases", "list the cases of a dataset"), ("evaluate", "evaluate a dataset, print the tables")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data", type=Path, help="dataset root (default: the demo dataset)")
        p.add_argument("--manifest", help="manifest file or name under fixtures/datasets")
        p.add_argument("--fixtures", type=Path, default=FIXTURES, help="folder with datasets/ (default: ./fixtures)")
        p.add_argument("--calibrations", default="reference,static,shifted,degraded",
                       help="calibration pipelines to add, comma-separated, or 'none'")
    cache = sub.add_parser("cache", help="show or clear the cache (demo, calibration videos, statistics)")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--all", action="store_true", help="with clear: remove the weights too")
    add_weights_cli(sub)
    evaluate = sub.choices["evaluate"]
    evaluate.add_argument("--metrics", default=",".join(FIDELITY))
    evaluate.add_argument("--convention", choices=CONVENTIONS, default="ffmpeg")
    evaluate.add_argument("--report", type=Path, help="write JSON/CSV/Markdown reports here")
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
    from .datasets import load_dataset

    kinds = [] if args.calibrations == "none" else [k for k in args.calibrations.split(",") if k]
    return load_dataset(args.data, args.manifest, cache_dir(args.cache), args.fixtures, calibrations=kinds)


def _cases(args: argparse.Namespace) -> int:
    for case in _dataset(args).cases():
        where = case.generated if case.generated else "(derived from the reference)"
        state = "" if case.generated is None or case.generated.is_file() else "  [missing]"
        print(f"{case.id}\t{case.pipeline.mode}\t{where}{state}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .engine import evaluate_case
    from .reports import errors, per_language, per_video, run_info, write_reports

    dataset = _dataset(args)
    cache = cache_dir(args.cache)
    metrics = [m for m in args.metrics.split(",") if m]
    records = []
    for case in dataset.cases():
        if case.generated is not None and not case.generated.is_file():
            print(f"skip {case.id}: no output at {case.generated}", file=sys.stderr)
            continue
        records.append(evaluate_case(case, metrics, cache, convention=args.convention))
    print(per_video(records).text(), per_language(records).text(), sep="\n\n")
    for problem in errors(records):
        print(f"error: {problem}", file=sys.stderr)
    if args.report:
        info = run_info({"dataset": dataset.name, "metrics": metrics, "convention": args.convention})
        for path in write_reports(args.report, records, info):
            print(f"wrote {path}")
    return 1 if errors(records) else 0


COMMANDS = {"demo": _demo, "cases": _cases, "evaluate": _evaluate, "cache": _cache}

if __name__ == "__main__":
    sys.exit(main())
