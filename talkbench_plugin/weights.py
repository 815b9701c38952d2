"""Model weights: a registry of known files, a verified cache directory, safe loading, a CLI.

Every known file has pinned sources and hashes. A file is accepted only if every hash the registry
pins for it matches: the full SHA-256, the SHA-256 ends that a README publishes, the git blob id
(``git hash-object FILE``) that a repository tree publishes, and the size. Loading always goes
through ``torch.load(..., weights_only=True)``, never a plain unpickle.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import cache_dir
from .errors import TalkbenchError

ENV_WEIGHTS = "TALKBENCH_WEIGHTS"
_CHUNK = 1 << 20


class WeightsError(TalkbenchError):
    """A weights file is missing, corrupt or not the pinned one; the message says what to do."""


class WeightsMissing(WeightsError):
    """A weights file is not in the cache: metrics that need it are skipped with this message."""


@dataclass(frozen=True)
class WeightSpec:
    """One known weights file: where to get it and how to recognise it."""

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    sha256_ends: tuple[str, str] | None = None  # (prefix, suffix) as a README publishes them
    git_blob: str | None = None  # sha1 of b"blob <size>\0" + content
    size: int | None = None
    used_by: str = ""
    provenance: str = ""

    def __post_init__(self) -> None:
        if not (self.sha256 or self.sha256_ends or self.git_blob):
            raise ValueError(f"weights {self.name!r}: pin at least one hash")


_OXFORD = "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data"
_SYNCNET_MIRROR = "https://raw.githubusercontent.com/nawta/SyncNet_py309_313/main/weights"
_INCEPTION = "pt_inception-2015-12-05-6726825d.pth"

REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="syncnet",
            filename="syncnet_v2.model",
            urls=(f"{_OXFORD}/syncnet_v2.model", f"{_SYNCNET_MIRROR}/syncnet_v2.model"),
            sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
            sha256_ends=("961e8696", "5442"),
            git_blob="d714bbf3b30324ced69e3815fc41ae6dc519303c",
            size=54_573_114,
            used_by="lip sync (LSE-C, LSE-D, AV offset)",
            provenance="git blob: syncnet-python repository tree (weights/); SHA-256 ends: its README; "
            "full SHA-256 and size: as pinned by several independent projects, consistent with both",
        ),
        WeightSpec(
            name="s3fd",
            filename="sfd_face.pth",
            urls=(f"{_OXFORD}/sfd_face.pth", f"{_SYNCNET_MIRROR}/sfd_face.pth"),
            sha256="d54a87c2b7543b64729c9a25eafd188da15fd3f6e02f0ecec76ae1b30d86c491",
            sha256_ends=("d54a87c2", "c491"),
            git_blob="2bdf053a994371d57f6f535cb2682dc3e2990e89",
            size=89_844_381,
            used_by="face detection (S3FD) for lip sync, LMD and CSIM",
            provenance="git blob: syncnet-python repository tree (weights/); SHA-256 ends: its README; "
            "full SHA-256 and size: as pinned by several independent projects, consistent with both",
        ),
        WeightSpec(
            name="inception",
            filename=_INCEPTION,
            urls=(
                f"https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/{_INCEPTION}",
                f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{_INCEPTION}",
            ),
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            size=95_628_359,
            used_by="FID (InceptionV3 pool3, TF-ported weights, as pyiqa loads them)",
            provenance="URL: pyiqa/archs/inception.py (get_url_from_name) and pytorch-fid's release; "
            "SHA-256: pinned by several projects, its first 8 digits are the file name's suffix",
        ),
        WeightSpec(
            name="alexnet",
            filename="alexnet-owt-7be5be79.pth",
            urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
            sha256_ends=("7be5be79", ""),
            used_by="LPIPS (alex, v0.1): the torchvision AlexNet backbone under lpips' linear layers",
            provenance="URL and SHA-256 prefix: torchvision (AlexNet_Weights.IMAGENET1K_V1); torch.hub checks "
            "the same 8-digit prefix. No full SHA-256 found published: only the prefix is pinned",
        ),
        WeightSpec(
            name="vgg16",
            filename="vgg16-397923af.pth",
            urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
            sha256_ends=("397923af", ""),
            used_by="LPIPS (vgg, v0.1): the torchvision VGG16 backbone under lpips' linear layers",
            provenance="URL and SHA-256 prefix: torchvision (VGG16_Weights.IMAGENET1K_V1); torch.hub checks "
            "the same 8-digit prefix. No full SHA-256 found published: only the prefix is pinned",
        ),
        WeightSpec(
            name="i3d",
            filename="i3d_pretrained_400.pt",
            urls=("https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt",),
            git_blob="a867b87ac3a9097d200598b1d48a1b890d8ec744",
            used_by="FVD (cd-fvd's InceptionI3d, Kinetics-400)",
            provenance="URL: cd-fvd (third_party/i3d/utils.py load_i3d_model); git blob id: the TATS "
            "repository tree (tats/fvd/i3d_pretrained_400.pt, commit 03bbce1)",
        ),
        WeightSpec(
            name="fan2d",
            filename="2DFAN4-11f355bf06.pth.tar",
            urls=("https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",),
            sha256="11f355bf0693120222f5955ce3f9dc8fb5763ebb30a47d7906e509490d32e4aa",
            used_by="LMD and CSIM face landmarks (face-alignment's 2D FAN, 68 points)",
            provenance="URL: face_alignment/api.py (models_urls['2DFAN-4'], face-alignment 1.5); SHA-256: "
            "pinned by a project that verifies face-alignment's files, its first 10 digits are the file name's "
            "suffix (torch.hub's convention)",
        ),
        WeightSpec(
            name="arcface",
            filename="w600k_r50.onnx",
            urls=("https://huggingface.co/maze/faceX/resolve/main/w600k_r50.onnx",),
            sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
            used_by="CSIM identity embeddings (insightface buffalo_l ArcFace R50, run with onnxruntime)",
            provenance="file of insightface's buffalo_l.zip (github.com/deepinsight/insightface releases v0.7); "
            "SHA-256: pinned by several independent projects; URL: a mirror a project downloads it from "
            "(or unzip buffalo_l.zip into the weights directory)",
        ),
    )
}


@dataclass(frozen=True)
class WeightStatus:
    """What ``verify`` found: ``state`` is "ok", "missing" or "mismatch"."""

    name: str
    path: Path
    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def register(spec: WeightSpec) -> WeightSpec | None:
    """Add or replace a registry entry (e.g. a mirror or a test file); return the previous one."""
    previous = REGISTRY.get(spec.name)
    REGISTRY[spec.name] = spec
    return previous


def spec_for(name: str) -> WeightSpec:
    """The registry entry called ``name`` (its file name works too)."""
    if name in REGISTRY:
        return REGISTRY[name]
    for spec in REGISTRY.values():
        if spec.filename == name:
            return spec
    raise WeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}")


def weights_dir(override: str | os.PathLike[str] | None = None, cache: Path | None = None) -> Path:
    """The weights cache: ``override`` > $TALKBENCH_WEIGHTS > ``weights/`` of ``cache`` (default: the
    talkbench cache)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_WEIGHTS):
        return Path(os.environ[ENV_WEIGHTS]).expanduser()
    return (cache or cache_dir()) / "weights"


def weight_path(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the file for ``name`` lives (whether or not it is there yet)."""
    return weights_dir(directory) / spec_for(name).filename


def fetch_hint(name: str, directory: str | os.PathLike[str] | None = None) -> str:
    """What a user runs to get ``name``."""
    spec = spec_for(name)
    source = f" from {spec.urls[0]}" if spec.urls else ""
    return (f"run `talkbench weights fetch {spec.name}` (or put {spec.filename}{source} into "
            f"{weights_dir(directory)}; ${ENV_WEIGHTS} moves that directory)")


def _file_digests(path: Path) -> tuple[str, str, int]:
    """(sha256, git blob id, size) of a file; the blob header needs the size, read from stat."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest(), size


_DIGESTS: dict[tuple[str, int, int], tuple[str, str, int]] = {}


def _cached_digests(path: Path) -> tuple[str, str, int]:
    st = path.stat()
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _file_digests(path)
    return _DIGESTS[key]


def _mismatches(spec: WeightSpec, sha256: str, blob: str, size: int) -> list[str]:
    """Each pinned value the file fails, as 'what: expected X, got Y'."""
    problems = []
    if spec.size is not None and size != spec.size:
        problems.append(f"size: expected {spec.size} bytes, got {size}")
    if spec.sha256 and sha256 != spec.sha256:
        problems.append(f"sha256: expected {spec.sha256}, got {sha256}")
    if spec.sha256_ends and not (sha256.startswith(spec.sha256_ends[0]) and sha256.endswith(spec.sha256_ends[1])):
        problems.append(f"sha256: expected {spec.sha256_ends[0]}…{spec.sha256_ends[1]}, got {sha256}")
    if spec.git_blob and blob != spec.git_blob:
        problems.append(f"git blob id: expected {spec.git_blob}, got {blob}")
    return problems


def verify(name: str, directory: str | os.PathLike[str] | None = None) -> WeightStatus:
    """Check the cached file for ``name`` against every hash the registry pins."""
    spec = spec_for(name)
    path = weight_path(name, directory)
    if not path.is_file():
        return WeightStatus(spec.name, path, "missing", fetch_hint(spec.name, directory))
    problems = _mismatches(spec, *_cached_digests(path))
    if problems:
        return WeightStatus(spec.name, path, "mismatch", "; ".join(problems))
    return WeightStatus(spec.name, path, "ok")


def _download(url: str, dest_dir: Path, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` into a temporary file in ``dest_dir``; return its path. ``progress`` gets the bytes
    done and the total (None when the server does not say) after each chunk."""
    import urllib.request  # here: http/ssl/email would cost every `talkbench` and `pytest` start ~30 ms of CPU

    fd, tmp = tempfile.mkstemp(prefix=".download.", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total, done = (int(length) if length and length.isdigit() else None), 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def fetch(name: str, url: str | None = None, directory: str | os.PathLike[str] | None = None,
          *, force: bool = False, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``name`` (from ``url``, else its registered sources in order), verify, install.

    The file replaces the cached one atomically and only after it matches every pinned hash; a
    source that serves other bytes is refused with the expected and actual hashes.
    """
    spec = spec_for(name)
    dest = weight_path(spec.name, directory)
    if not force and verify(spec.name, directory).ok:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in (url,) if url else spec.urls:
        try:
            tmp = _download(source, dest.parent, progress)
        except (OSError, ValueError) as exc:  # urllib.error.URLError is an OSError
            failures.append(f"{source}: download failed ({exc})")
            continue
        try:
            problems = _mismatches(spec, *_file_digests(tmp))
            if problems:
                failures.append(f"{source}: refused, not the pinned {spec.filename} ({'; '.join(problems)})")
                continue
            os.replace(tmp, dest)
            return dest
        finally:
            if tmp.exists():
                tmp.unlink()
    raise WeightsError(f"could not fetch {spec.filename} for {spec.name!r}:\n  " + "\n  ".join(failures))


def load_state(name: str, directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The verified state dict of ``name``, loaded with ``torch.load(weights_only=True)`` on CPU."""
    status = verify(name, directory)
    if status.state == "missing":
        raise WeightsMissing(f"{status.path}: weights file not found; {status.detail}")
    if status.state == "mismatch":
        raise WeightsError(f"{status.path} is not the pinned {spec_for(name).filename} ({status.detail}); "
                           f"run `talkbench weights fetch {status.name}` to replace it")
    return load_state_file(status.path)


def verified_path(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The path of ``name``'s file once it matches every pinned hash (for files that are not state dicts)."""
    status = verify(name, directory)
    if status.state == "missing":
        raise WeightsMissing(f"{status.path}: weights file not found; {status.detail}")
    if status.state == "mismatch":
        raise WeightsError(f"{status.path} is not the pinned {spec_for(name).filename} ({status.detail}); "
                           f"run `talkbench weights fetch {status.name}` to replace it")
    return status.path


def verified_sha256(name: str, directory: str | os.PathLike[str] | None = None) -> str:
    """The SHA-256 of ``name``'s file once it matches every pinned hash (what a converted network is keyed by)."""
    return _cached_digests(verified_path(name, directory))[0]


def load_state_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a state dict from ``path`` with ``weights_only=True``; a bad file raises WeightsError."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a loadable weights file ({first}); delete it and fetch it again "
                           "with `talkbench weights fetch`") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


# ---------------------------------------------------------------- command line


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``weights list|fetch|verify|path`` to a ``talkbench`` argparse subparsers object.

    Each leaf sets ``func``: call ``args.func(args)``; it returns the process exit code.
    """
    parser = subparsers.add_parser("weights", help="list, fetch and verify model weights")
    parser.add_argument("--dir", default=None, help=f"weights directory (default: ${ENV_WEIGHTS} or "
                        "the talkbench cache's weights/)")
    actions = parser.add_subparsers(dest="weights_command", required=True)
    actions.add_parser("list", help="known weights, their sources and whether they are here").set_defaults(
        func=_cmd_list)
    p_fetch = actions.add_parser("fetch", help="download and verify weights (default: all)")
    p_fetch.add_argument("names", nargs="*", metavar="NAME",
                         help=f"weights to fetch: {', '.join(sorted(REGISTRY))} (default: all)")
    p_fetch.add_argument("--url", help="download from this URL instead (one name only)")
    p_fetch.add_argument("--force", action="store_true", help="download even if a verified file is there")
    p_fetch.set_defaults(func=_cmd_fetch)
    p_verify = actions.add_parser("verify", help="check cached files against their pinned hashes")
    p_verify.add_argument("names", nargs="*")
    p_verify.set_defaults(func=_cmd_verify)
    p_path = actions.add_parser("path", help="print a weights file's path (or the directory)")
    p_path.add_argument("name", nargs="?")
    p_path.set_defaults(func=_cmd_path)
    return parser


def _names(args: argparse.Namespace) -> list[str]:
    return [spec_for(n).name for n in args.names] if args.names else sorted(REGISTRY)


def _cmd_list(args: argparse.Namespace) -> int:
    print(f"weights directory: {weights_dir(args.dir)}")
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        here = "present" if weight_path(name, args.dir).is_file() else "missing"
        pin = spec.sha256 or (f"{spec.sha256_ends[0]}…{spec.sha256_ends[1]}" if spec.sha256_ends else "-")
        print(f"{name:<10} {spec.filename:<38} {here:<8} sha256 {pin}  ({spec.used_by})")
        for url in spec.urls:
            print(f"{'':<10} {url}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    names = _names(args)
    if args.url and len(names) != 1:
        print("--url needs exactly one weights name", file=sys.stderr)
        return 2
    code = 0
    for name in names:
        try:
            from .progress import DownloadBar

            bar = DownloadBar(sys.stderr, name)
            try:
                path = fetch(name, args.url, args.dir, force=args.force, progress=bar)
            finally:
                bar.close()
            print(f"{name}: ok {path}")
        except WeightsError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            code = 1
    return code


def _cmd_verify(args: argparse.Namespace) -> int:
    code = 0
    for name in _names(args):
        status = verify(name, args.dir)
        print(f"{name}: {status.state} {status.path}" + (f" ({status.detail})" if status.detail else ""))
        code = code or (0 if status.ok else 1)
    return code


def _cmd_path(args: argparse.Namespace) -> int:
    print(weight_path(args.name, args.dir) if args.name else weights_dir(args.dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``weights`` commands alone: ``python -m talkbench_plugin.weights list``."""
    parser = argparse.ArgumentParser(prog="talkbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["weights", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
