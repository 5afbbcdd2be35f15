from __future__ import annotations

import csv

import numpy as np
import pytest

from saltvol.train.data import coverage_bins, load_tgs, stratified_folds
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
