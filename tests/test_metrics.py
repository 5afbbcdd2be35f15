from __future__ import annotations

import numpy as np
import pytest

from saltvol.metrics import dice, iou, tgs_score, tgs_score_per_image


def _mask(rows: slice, cols: slice, shape=(10, 10)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_empty_truth_and_empty_prediction_score_one():
    empty = np.zeros((3, 10, 10), bool)
    assert tgs_score(empty, empty) == 1.0


def test_one_sided_empty_scores_zero():
    empty = np.zeros((10, 10), bool)
    full = np.ones((10, 10), bool)
    assert tgs_score(full[None], empty[None]) == 0.0
    assert tgs_score(empty[None], full[None]) == 0.0


def test_known_iou_between_thresholds():
    truth = _mask(slice(0, 10), slice(0, 10))
    pred = _mask(slice(0, 10), slice(0, 7))  # IoU = 0.7: exceeds 0.50..0.65 (4 of 10 thresholds)
    assert tgs_score_per_image(pred[None], truth[None])[0] == pytest.approx(0.4)
    pred = _mask(slice(0, 10), slice(0, 6))  # IoU = 0.6 exactly: > 0.50, 0.55 only (strict)
    assert tgs_score_per_image(pred[None], truth[None])[0] == pytest.approx(0.2)


def test_score_is_the_mean_over_images():
    truth = np.stack([np.zeros((10, 10), bool), _mask(slice(0, 10), slice(0, 10))])
    pred = np.stack([np.zeros((10, 10), bool), _mask(slice(0, 10), slice(0, 7))])
    assert tgs_score(pred, truth) == pytest.approx((1.0 + 0.4) / 2)


def test_iou_and_dice():
    a = _mask(slice(0, 4), slice(0, 5))
    b = _mask(slice(2, 6), slice(0, 5))
    assert iou(a, b) == pytest.approx(10 / 30)
    assert dice(a, b) == pytest.approx(20 / 40)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        tgs_score(np.zeros((1, 4, 4)), np.zeros((1, 5, 5)))
