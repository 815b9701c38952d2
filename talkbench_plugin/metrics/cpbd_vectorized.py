"""``cpbd.compute`` with its per-pixel Python loops done by numpy: the same numbers, ~10x sooner.

The cpbd package walks every pixel in Python to find edge angles and Marziliano edge widths, and every
edge to fill its histogram: about half a second for a 512x512 frame. Here the same steps run on whole
arrays: the package's own Canny (scikit-image) and Sobel thinning (``cpbd.octave.sobel``) find the edges,
an edge's width is two run lengths of the row's intensity differences (the package's walk, capped at
101 steps each side), and the blocks' probabilities of blur detection fill the histogram with
``bincount``. ``tests/test_cpbd.py`` holds it to ``cpbd.compute`` within 1e-6 on real and synthetic frames.
"""

from __future__ import annotations

import numpy as np

MAX_STEPS = 100  # the package's `for margin in range(100 + 1)`: at most 101 steps each side


def compute(image: np.ndarray) -> float:
    """CPBD sharpness of a 2-D (gray) image, as ``cpbd.compute(image)``."""
    from cpbd.compute import BETA, BLOCK_HEIGHT, BLOCK_WIDTH, THRESHOLD, WIDTH_JNB
    from cpbd.octave import sobel
    from skimage.feature import canny

    image = image.astype(np.float64)
    edges = canny(image)
    widths = edge_widths(sobel(image), image)
    hist = np.zeros(101)
    total = 0
    for i in range(image.shape[0] // BLOCK_HEIGHT):
        for j in range(image.shape[1] // BLOCK_WIDTH):
            rows = slice(BLOCK_HEIGHT * i, BLOCK_HEIGHT * (i + 1))
            cols = slice(BLOCK_WIDTH * j, BLOCK_WIDTH * (j + 1))
            if np.count_nonzero(edges[rows, cols]) <= BLOCK_HEIGHT * BLOCK_WIDTH * THRESHOLD:
                continue
            block = widths[rows, cols]
            block = block[block != 0]
            contrast = int(np.max(image[rows, cols]) - np.min(image[rows, cols]))
            probability = 1 - np.exp(-abs(block / WIDTH_JNB[contrast]) ** BETA)
            hist += np.bincount(np.rint(probability * 100).astype(np.int64), minlength=101)
            total += block.size
    if total > 0:
        hist = hist / total
    return float(np.sum(hist[:64]))


def edge_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The package's ``marziliano_method``: at each interior edge pixel whose gradient points left or right,
    the edge's width (steps to the intensity's turning point on either side); 0 elsewhere."""
    gy, gx = np.gradient(image)
    with np.errstate(divide="ignore", invalid="ignore"):
        angles = np.where(gx != 0, np.arctan2(gy, gx) * (180 / np.pi), np.where(gy == np.pi / 2, 90.0, 0.0))
    widths = np.zeros(image.shape)
    if not np.any(angles):
        return widths
    quantized = 45 * np.round(angles / 45)
    diff = image[:, :-1] - image[:, 1:]  # diff[r, c] = image[r, c] - image[r, c + 1]
    for falling, direction in ((True, quantized == 0), (False, np.abs(quantized) == 180)):
        step = diff < 0 if falling else diff > 0  # the walk goes on while the intensity keeps this course
        left = _run_ending(step)  # consecutive steps ending at column c, leftwards
        right = _run_ending(step[:, ::-1])[:, ::-1]  # consecutive steps starting at column c, rightwards
        interior = np.zeros(image.shape, bool)
        interior[1:-1, 1:-1] = True
        rows, cols = np.nonzero(edges.astype(bool) & direction & interior)
        k_left = np.where(cols >= 2, left[rows, np.maximum(cols - 2, 0)], 0)
        k_right = np.where(cols + 1 <= diff.shape[1] - 1, right[rows, np.minimum(cols + 1, diff.shape[1] - 1)], 0)
        widths[rows, cols] = np.minimum(k_left, MAX_STEPS) + 1 + np.minimum(k_right, MAX_STEPS) + 1
    return widths


def _run_ending(flags: np.ndarray) -> np.ndarray:
    """For each position, how many consecutive True values end there (0 where it is False), per row."""
    index = np.arange(flags.shape[1])
    last_false = np.maximum.accumulate(np.where(flags, -1, index), axis=1)
    return index - last_false
