from __future__ import annotations

import numpy as np
import pytest

from saltvol.tiling import TileGrid, blend, hann_window, tile_starts


@pytest.mark.parametrize(
    "length, tile, stride, expected",
    [
        (10, 4, 2, [0, 2, 4, 6]),
        (11, 4, 2, [0, 2, 4, 6, 7]),
        (4, 4, 2, [0]),
        (3, 4, 2, [0]),
        (300, 256, 128, [0, 44]),
        (500, 256, 128, [0, 128, 244]),
    ],
)
def test_tile_starts_cover_the_axis_and_clamp_the_last(length, tile, stride, expected):
    starts = tile_starts(length, tile, stride)
    assert starts.tolist() == expected
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()


def test_stride_larger_than_tile_is_refused():
    with pytest.raises(ValueError, match="stride"):
        tile_starts(100, 16, 32)


def test_hann_window_is_positive_and_sums_to_constant_at_half_overlap():
    w = hann_window(64)
    assert (w > 0).all()
    total = np.zeros(64 * 4)
    for start in range(0, 64 * 3 + 1, 32):
        total[start : start + 64] += w
    assert np.allclose(total[64:-64], 1.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(100, 300), (256, 256), (40, 30), (257, 129), (1, 5)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
def test_blending_an_identity_predictor_reproduces_the_section(shape, overlap):
    rng = np.random.default_rng(0)
    section = rng.normal(size=shape).astype(np.float32)
    grid = TileGrid(shape, 64, overlap)
    th, tw = grid.tile_shape
    tiles = np.stack([section[t : t + th, l : l + tw] for t, l in grid])
    np.testing.assert_allclose(blend(tiles, grid), section, rtol=0, atol=1e-5)


def test_blending_a_constant_gives_that_constant_without_seams():
    grid = TileGrid((200, 333), 64, 0.5)
    tiles = np.full((len(grid), *grid.tile_shape), 0.7, np.float32)
    np.testing.assert_allclose(blend(tiles, grid), 0.7, atol=1e-6)


def test_grid_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        TileGrid((10, 10), 4, 1.0)
