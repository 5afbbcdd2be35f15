"""Shared by the TGS model comparisons (not a benchmark itself): per-tile scores with cross-tuned post-processing.

A model's stored threshold and minimum area were tuned on its validation fold, so scoring it on
that fold flatters it by however much the tuning fits noise.  ``cross_tuned`` splits the fold in
two halves (seeded, stratified by salt coverage), tunes on one half and scores the other, both ways.
"""

from __future__ import annotations

import numpy as np


def fold_halves(coverage: np.ndarray) -> np.ndarray:
    """0/1 per validation tile: two halves stratified by salt coverage, the same for every model."""
    from saltvol.train.data import stratified_folds

    return stratified_folds(coverage, k=2, seed=0)


def cross_tuned(probs: np.ndarray, truth: np.ndarray, halves: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per-tile TGS scores, each tile's threshold and minimum area tuned on the other half of the fold."""
    from saltvol.metrics import tgs_score_per_image
    from saltvol.train.evaluate import postprocess, tune_postprocessing

    scores = np.empty(len(truth))
    for half in (0, 1):
        tune, score = halves != half, halves == half
        threshold, min_area = tune_postprocessing(probs[tune], truth[tune], thresholds=thresholds)
        scores[score] = tgs_score_per_image(postprocess(probs[score], threshold, min_area), truth[score])
    return scores


def paired_line(name: str, scores: np.ndarray, reference: np.ndarray) -> str:
    """``name``'s mean score and its paired difference to ``reference`` with the standard error."""
    diff = scores - reference
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return (f"{name}: {scores.mean():.4f}; difference {diff.mean():+.4f}, paired standard error {se:.4f}; "
            f"tiles better {int((diff > 0).sum())}, worse {int((diff < 0).sum())}, equal {int((diff == 0).sum())}")
