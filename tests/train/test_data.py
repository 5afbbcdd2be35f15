from __future__ import annotations

import csv

import numpy as np
import pytest

from saltvol.train.data import coverage_bins, load_tgs, stratified_folds, vertical_mask_artifacts
from saltvol.train.loop import training_tiles
from saltvol.train.rle import rle_decode, rle_encode
from tests.conftest import TGS_DIR

pytestmark = pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")


def test_loads_real_tiles_and_masks():
    data = load_tgs(TGS_DIR, limit=30)
    assert data.images.shape == (30, 101, 101) and data.images.dtype == np.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.masks.shape == (30, 101, 101) and data.masks.dtype == bool
    assert data.depths is not None and np.isfinite(data.depths).all()


def test_masks_from_png_equal_masks_from_train_csv():
    data = load_tgs(TGS_DIR, limit=60)
    with open(TGS_DIR / "train.csv", newline="") as fh:
        table = {row["id"]: row["rle_mask"] for row in csv.DictReader(fh)}
    for tile_id, mask in zip(data.ids, data.masks):
        np.testing.assert_array_equal(rle_decode(table[tile_id], (101, 101)), mask)
        assert rle_encode(mask) == (table[tile_id] or "")


def test_rle_round_trip_on_odd_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((13, 7)) > 0.6
        assert (rle_decode(rle_encode(mask), mask.shape) == mask).all()
    assert rle_encode(np.zeros((4, 4), bool)) == ""
    assert rle_encode(np.ones((2, 2), bool)) == "1 4"


def test_folds_are_stratified_by_coverage():
    coverage = np.r_[np.zeros(40), np.linspace(0.01, 1, 60)]
    folds = stratified_folds(coverage, k=5, seed=1)
    assert np.bincount(folds).tolist() == [20] * 5
    for fold in range(5):
        assert (coverage[folds == fold] == 0).sum() == 8
    np.testing.assert_array_equal(folds, stratified_folds(coverage, k=5, seed=1))
    assert set(coverage_bins(coverage)) == {"empty", "<10%", "10-50%", ">50%"}


def test_vertical_mask_artifacts_are_straight_full_height_columns():
    strip = np.zeros((3, 101, 101), bool)
    strip[0, :, 40:45] = True  # a vertical strip: the TGS artifact
    strip[1, 30:, 40:45] = True  # a block that starts below the top: a real boundary
    strip[2, :, :] = np.arange(101)[:, None] > np.arange(101)[None, :]  # a dipping boundary
    empty, full = np.zeros((1, 101, 101), bool), np.ones((1, 101, 101), bool)
    flags = vertical_mask_artifacts(np.concatenate([strip, empty, full]))
    assert flags.tolist() == [True, False, False, False, False]


def test_real_tgs_has_a_few_vertical_artifacts_and_training_can_leave_them_out():
    data = load_tgs(TGS_DIR, limit=600)
    flags = vertical_mask_artifacts(data.masks)
    salty = data.masks.any(axis=(1, 2))
    assert 0 < flags.sum() < 0.1 * salty.sum()  # about 3 % of TGS's masks
    assert all((m == m[0]).all() for m in data.masks[flags])  # every row the same: straight columns
    folds = stratified_folds(data.coverage, k=4, seed=0)
    kept = training_tiles(folds, 0, data.masks)
    dropped = training_tiles(folds, 0, data.masks, drop_vertical_masks=True)
    assert set(dropped) == set(kept) - set(np.flatnonzero(flags))
    assert len(dropped) < len(kept) and not (folds[kept] == 0).any()


def test_the_model_card_counts_of_vertical_artifacts_on_the_whole_tgs_set():
    """docs/model.md quotes 98 artifacts in the 3,600 masks and 12 in validation fold 0 (k=8, seed 42)."""
    data = load_tgs(TGS_DIR)
    if len(data.ids) != 3600:
        pytest.skip("the counts are those of the 3,600-tile TGS set")
    flags = vertical_mask_artifacts(data.masks)
    folds = stratified_folds(data.coverage, k=8, seed=42)
    assert flags.sum() == 98
    assert flags[folds == 0].sum() == 12
