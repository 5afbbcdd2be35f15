"""Segmentation metrics: the TGS competition score, IoU and Dice.

The TGS Salt Identification score is, per image, the fraction of IoU
thresholds t in {0.50, 0.55, ..., 0.95} that the whole-mask IoU exceeds; an
image whose truth and prediction are both empty scores 1, and one where
exactly one of them is empty scores 0. The score of a set is the mean over
its images. Everything here is vectorised over a stack of masks.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["TGS_THRESHOLDS", "dice", "iou", "tgs_score", "tgs_score_per_image"]

#: The IoU thresholds of the competition metric.
TGS_THRESHOLDS: np.ndarray = np.arange(0.5, 1.0, 0.05)


def _as_stack(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred).astype(bool, copy=False)
    true = np.asarray(true).astype(bool, copy=False)
    if pred.shape != true.shape:
        raise DataError(
            f"prediction shape {pred.shape!r} differs from truth shape {true.shape!r}; "
            "pass masks of the same shape"
        )
    if pred.ndim == 2:
        pred, true = pred[None], true[None]
    return pred.reshape(len(pred), -1), true.reshape(len(true), -1)


def _intersection_union(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inter = np.count_nonzero(pred & true, axis=1)
    union = np.count_nonzero(pred | true, axis=1)
    return inter, union


def tgs_score_per_image(pred_masks: np.ndarray, true_masks: np.ndarray) -> np.ndarray:
    """Score of each image under the TGS metric.

    Parameters
    ----------
    pred_masks, true_masks : array of bool, shape (N, H, W) or (H, W)

    Returns
    -------
    np.ndarray of float64, shape (N,)
    """
    pred, true = _as_stack(pred_masks, true_masks)
    inter, union = _intersection_union(pred, true)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou_values = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    hits = iou_values[:, None] > TGS_THRESHOLDS[None, :]
    return hits.mean(axis=1)


def tgs_score(pred_masks: np.ndarray, true_masks: np.ndarray) -> float:
    """Mean precision over IoU thresholds 0.50..0.95, the TGS competition metric.

    Examples
    --------
    >>> import numpy as np
    >>> empty = np.zeros((1, 4, 4), bool)
    >>> tgs_score(empty, empty)
    1.0
    >>> full = np.ones((1, 4, 4), bool)
    >>> tgs_score(full, empty)
    0.0
    """
    return float(tgs_score_per_image(pred_masks, true_masks).mean())


def iou(pred_masks: np.ndarray, true_masks: np.ndarray) -> float:
    """Intersection over union of all pixels (or voxels) together; 1.0 when both are empty."""
    pred, true = _as_stack(pred_masks, true_masks)
    inter, union = _intersection_union(pred.reshape(1, -1), true.reshape(1, -1))
    return float(inter[0] / union[0]) if union[0] else 1.0


def dice(pred_masks: np.ndarray, true_masks: np.ndarray) -> float:
    """Dice coefficient of all pixels (or voxels) together; 1.0 when both are empty."""
    pred, true = _as_stack(pred_masks, true_masks)
    inter = np.count_nonzero(pred & true)
    total = np.count_nonzero(pred) + np.count_nonzero(true)
    return float(2 * inter / total) if total else 1.0
