"""Overlapping tiles on one grid over a 2D section, and their blending windows.

Pure integer maths and numpy: no xarray, no torch.  Tiles start at 0, step by
``stride`` and the last tile is clamped to end exactly at the section's edge,
so every pixel is covered and the grid depends only on the section's size:
results do not depend on how a volume was chunked.  A section smaller than a
tile gets one tile of the section's own size (the model pads it).

Blending uses a separable Hann window, ``w(i) = sin^2(pi (i + 1/2) / n)``.
At 50 % overlap shifted copies of it sum to a constant, so blending is a
smooth cross-fade with no seams; it is strictly positive, so the weight sum
never vanishes; and on tiles that touch the section's border the outer half
is flattened to 1, so border pixels, which only one tile sees, keep full
weight instead of being divided by a near-zero sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["TileGrid", "blend", "hann_window", "tile_starts"]


def tile_starts(length: int, tile: int, stride: int) -> np.ndarray:
    """Start offsets of tiles of size ``tile`` every ``stride`` along ``length``, the last clamped to the edge.

    Examples
    --------
    >>> tile_starts(10, 4, 2).tolist()
    [0, 2, 4, 6]
    >>> tile_starts(11, 4, 2).tolist()
    [0, 2, 4, 6, 7]
    >>> tile_starts(3, 4, 2).tolist()
    [0]
    """
    if length < 1 or tile < 1 or stride < 1:
        raise ValueError(f"length, tile and stride must be positive, got {length!r}, {tile!r}, {stride!r}")
    if stride > tile:
        raise ValueError(f"stride {stride!r} is larger than the tile {tile!r}: pixels would be skipped")
    if length <= tile:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - tile + 1, stride, dtype=np.int64)
    if starts[-1] + tile < length:
        starts = np.append(starts, length - tile)
    return starts


def hann_window(n: int, *, flat_start: bool = False, flat_end: bool = False) -> np.ndarray:
    """A strictly positive 1D Hann window, optionally flat (1.0) on its first or last half."""
    window = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
    half = n // 2
    if flat_start:
        window[:half] = 1.0
    if flat_end:
        window[n - half :] = 1.0
    return window.astype(np.float32)


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one section of shape ``shape`` (rows, columns).

    Parameters
    ----------
    shape : (int, int)
        Section size (rows = samples down, columns = traces across).
    tile : int
        Tile edge; clipped to the section size along each axis.
    overlap : float, default 0.5
        Fraction of a tile shared with its neighbour, in [0, 1).
    """

    shape: tuple[int, int]
    tile: int
    overlap: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap!r}")
        if self.tile < 1:
            raise ValueError(f"tile size must be positive, got {self.tile!r}")
        if min(self.shape) < 1:
            raise ValueError(f"section shape must be positive, got {self.shape!r}")

    @property
    def stride(self) -> int:
        return max(1, int(round(self.tile * (1 - self.overlap))))

    @cached_property
    def tile_shape(self) -> tuple[int, int]:
        return (min(self.tile, self.shape[0]), min(self.tile, self.shape[1]))

    @cached_property
    def starts(self) -> tuple[np.ndarray, np.ndarray]:
        stride = self.stride
        return tuple(  # type: ignore[return-value]
            tile_starts(n, t, min(stride, t)) for n, t in zip(self.shape, self.tile_shape)
        )

    def __len__(self) -> int:
        rows, cols = self.starts
        return len(rows) * len(cols)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rows, cols = self.starts
        for top in rows:
            for left in cols:
                yield int(top), int(left)

    def window(self, top: int, left: int) -> np.ndarray:
        """Blending weights of the tile at (top, left), flattened on the section's borders."""
        th, tw = self.tile_shape
        rows = hann_window(th, flat_start=top == 0, flat_end=top + th >= self.shape[0])
        cols = hann_window(tw, flat_start=left == 0, flat_end=left + tw >= self.shape[1])
        return np.outer(rows, cols)


def blend(predictions: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Blend per-tile predictions (in ``grid`` order) into one section by weighted average.

    Parameters
    ----------
    predictions : np.ndarray, shape (len(grid), *grid.tile_shape)

    Returns
    -------
    np.ndarray of float32, shape grid.shape
    """
    if len(predictions) != len(grid):
        raise ValueError(f"got {len(predictions)} tile predictions for a grid of {len(grid)} tiles")
    accumulator = np.zeros(grid.shape, dtype=np.float64)
    weights = np.zeros(grid.shape, dtype=np.float64)
    th, tw = grid.tile_shape
    for prediction, (top, left) in zip(predictions, grid):
        window = grid.window(top, left)
        accumulator[top : top + th, left : left + tw] += window * prediction
        weights[top : top + th, left : left + tw] += window
    return (accumulator / weights).astype(np.float32)
