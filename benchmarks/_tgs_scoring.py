"""Shared by the TGS model comparisons (not a benchmark itself): loading, the validation fold, and per-tile scores
with cross-tuned post-processing.

A model's stored threshold and minimum area were tuned on its validation fold, so scoring it on
that fold flatters it by however much the tuning fits noise.  ``cross_tuned`` splits the fold in
two halves (seeded, stratified by salt coverage), tunes on one half and scores the other, both ways.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: The shared TGS training set beside the repository (``../shared/data/tgs``).
DEFAULT_TGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tgs"


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_TGS, help="TGS folder (Kaggle layout, with masks)")


def load_labelled_tgs(path: Path, script: str) -> Any:
    """The TGS tiles and masks at ``path``, or exit with one line saying what is wrong."""
    from saltvol.errors import SaltvolError
    from saltvol.train.data import load_tgs

    try:
        data = load_tgs(path)
    except SaltvolError as e:
        sys.exit(f"{script}: {e}")
    if data.masks is None or data.images.shape[-1] != 101:
        sys.exit(f"{script}: {path} is not the TGS training folder (101 px tiles with masks); pass it with --data")
    return data


def load_model_or_exit(path: Path | None, script: str) -> Any:
    """A model file (None: the bundled model) on the CPU, or exit with one line saying what is wrong."""
    from saltvol.errors import SaltvolError
    from saltvol.model import load_model

    try:
        return load_model(path, device="cpu")
    except SaltvolError as e:
        sys.exit(f"{script}: {e}")


def validation_index(data: Any, meta: Any) -> np.ndarray:
    """Indices of the tiles of the model's validation fold (its split, re-derived from the data)."""
    from saltvol.train.data import stratified_folds

    return np.flatnonzero(stratified_folds(data.coverage, k=meta.k_folds, seed=meta.split_seed) == meta.fold)


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
