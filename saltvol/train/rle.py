"""Kaggle run-length encoding of masks (TGS submission format).

The mask is flattened column-major (Fortran order); runs are written as
1-based start and length pairs separated by spaces. An empty mask is "".
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["rle_decode", "rle_encode"]


def rle_encode(mask: np.ndarray) -> str:
    """Run-length encode a 2D boolean mask, column-major, 1-based."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1]) + 1
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode a run-length string into a boolean mask of ``shape``."""
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    text = "" if rle is None or (isinstance(rle, float) and np.isnan(rle)) else str(rle).strip()
    if text:
        try:
            values = np.asarray(text.split(), dtype=np.int64)
        except ValueError as e:
            raise DataError(f"run-length mask {text[:40]!r} is not integers; check the CSV column") from e
        if len(values) % 2:
            raise DataError("run-length mask has an odd number of values; each run needs a start and a length")
        for start, length in zip(values[::2] - 1, values[1::2]):
            flat[start : start + length] = True
    return flat.reshape(shape, order="F")
