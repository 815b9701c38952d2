"""PyTorch networks converted once to OpenVINO IR, cached on disk, and run by OpenVINO's CPU plugin in fp32.

On this project's CPUs OpenVINO runs some networks' fp32 convolutions faster than eager PyTorch on the same
cores (cd-fvd's I3D, its 3-D convolutions: ~1.6x) to the same values within fp32 rounding. Two settings keep
it so: the IR keeps fp32 weights (``save_model`` compresses them to fp16 by default) and the compiled model
infers in f32 (the CPU plugin's default is bf16 on CPUs that have it).

A converted network is cached under ``<cache>/openvino/<key>``, keyed by its name, the SHA-256 of its
weights, its input shape and the torch and openvino versions; it is written into a temporary folder that
is renamed into place under a cross-process lock. A later run reads it (~0.1 s) instead of converting it
(seconds: conversion traces the network).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import lock_for
from ..scratch import left_by_dead_process, temp_prefix

_MODEL = "model.xml"
_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def use_openvino(runtime: str, device: str, cache: Path | None) -> bool:
    """Whether a network runs here: asked for (``--talkbench-runtime``), on the CPU (OpenVINO's only device
    in this project) and with a cache to convert into."""
    return runtime == "openvino" and device == "cpu" and cache is not None


def runtime_described(openvino: bool, device: str) -> str:
    """What ran a network, as the metrics' protocols record it."""
    return "OpenVINO CPU, f32 (IR converted from the torch module, fp32 weights)" if openvino else f"torch on {device}"


def openvino_network(cache: Path, name: str, weights_sha256: str, build: Callable[[], Any], example: tuple[Any, ...],
            shapes: Sequence[Sequence[int]]) -> OpenVinoNetwork:
    """``build()``'s network for these weights, converted into ``cache`` unless it is there, compiled."""
    return OpenVinoNetwork(converted(ir_folder(cache, name, weights_sha256, shapes), build, example, shapes))


def ir_folder(cache: Path, name: str, weights_sha256: str, shapes: Sequence[Sequence[int]]) -> Path:
    """Where ``name``'s IR for these weights and input shapes (-1: any size) lives in ``cache``."""
    import openvino
    import torch

    described = {"name": name, "weights_sha256": weights_sha256, "shapes": [list(shape) for shape in shapes],
                 "torch": torch.__version__, "openvino": openvino.__version__, "weights": "fp32"}
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]
    return cache / "openvino" / f"{name}-{key}"


def _sweep(folder: Path) -> None:
    """Remove ``folder``'s temporary twins left by killed processes of this machine."""
    start = f".{folder.name}."
    for old in folder.parent.glob(f"{start}*"):
        if left_by_dead_process(old, start):
            shutil.rmtree(old, ignore_errors=True)


def converted(folder: Path, build: Callable[[], Any], example: tuple[Any, ...],
              shapes: Sequence[Sequence[int]]) -> Path:
    """``folder`` holding the IR of ``build()`` (a torch module) traced on the ``example`` inputs, with input
    shapes ``shapes``; converted only if it is not there yet (a read-only cache's IR is read, not locked)."""
    if (folder / _MODEL).is_file():
        return folder
    with lock_for(folder):
        if not (folder / _MODEL).is_file():
            import openvino
            import torch

            _sweep(folder)
            module = build().eval()
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(folder), dir=folder.parent))
            try:
                with torch.no_grad(), warnings.catch_warnings():  # shapes traced as constants: the input's are fixed
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    warnings.simplefilter("ignore", FutureWarning)  # openvino traces with torch.jit.trace_method
                    model = openvino.convert_model(module, example_input=example,
                                                   input=[tuple(shape) for shape in shapes])
                openvino.save_model(model, tmp / _MODEL, compress_to_fp16=False)
                os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


class OpenVinoNetwork:
    """A converted network compiled for the CPU in f32: called with arrays, gives its first output."""

    def __init__(self, folder: Path) -> None:
        import openvino

        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(folder / _MODEL), "CPU", _CONFIG)
        self._request = self.compiled.create_infer_request()

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        feed = {i: np.ascontiguousarray(x, dtype=np.float32) for i, x in enumerate(inputs)}
        return self._request.infer(feed)[0]
