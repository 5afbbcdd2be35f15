"""How firm a cross-tuned TGS score is: the same models re-scored with other threshold grids and choice rules.

``compare_models.py`` scores each model with its threshold and minimum area tuned on the other half
of the validation fold.  That choice is made on 225 tiles, so it is itself noisy; this prints, per
model, the cross-tuned score (and the score tuned on the whole fold) with raw-probability thresholds
on a coarse grid (steps of 0.05) and a fine one (0.025), each chosen by the plain maximum and by the
maximum of the score curve smoothed over 3, 5 or 9 neighbouring thresholds.  If the rows of one
model differ by as much as two models do, a cross-tuned difference that size is noise.

Usage::

    python benchmarks/tgs_cross_tuning.py MODEL [MODEL ...] [--data ../shared/data/tgs]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, fold_halves, load_labelled_tgs, load_model_or_exit, validation_index

MIN_AREAS = (0, 10, 25, 50, 100, 150, 200)
GRIDS = {"0.05": np.round(np.arange(0.2, 0.81, 0.05), 3), "0.025": np.round(np.arange(0.2, 0.81, 0.025), 3)}
SMOOTHING = (0, 1, 2, 4)  # neighbours on each side: curves of 1, 3, 5, 9 thresholds


def _choose(mean_scores: np.ndarray, smooth: int) -> tuple[int, int]:
    """(threshold index, min-area index) maximising the mean score, after a moving average over thresholds."""
    if smooth:
        padded = np.pad(mean_scores, ((smooth, smooth), (0, 0)), mode="edge")
        mean_scores = np.mean([padded[i : i + len(mean_scores)] for i in range(2 * smooth + 1)], axis=0)
    i, j = np.unravel_index(np.argmax(mean_scores), mean_scores.shape)
    return int(i), int(j)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", type=Path, nargs="+", help="model files")
    add_data_option(p)
    args = p.parse_args(argv)

    from saltvol.metrics import tgs_score_per_image
    from saltvol.train.evaluate import postprocess, predict_probabilities

    data = load_labelled_tgs(args.data, "tgs_cross_tuning")
    print("| model | grid | smoothed over | tuned on the fold: score (threshold, min area) | cross-tuned |")
    print("|---|---|---|---|---|")
    for path in args.models:
        model = load_model_or_exit(path, "tgs_cross_tuning")
        meta = model.meta
        index = validation_index(data, meta)
        truth, halves = data.masks[index], fold_halves(data.coverage[index])
        probs = predict_probabilities(model.network, data.images[index], replace(meta, calibration=(1.0, 0.0)), device="cpu")
        for name, grid in GRIDS.items():
            # per-tile scores for every (threshold, min area): (T, A, N)
            table = np.array([[tgs_score_per_image(postprocess(probs, t, a), truth) for a in MIN_AREAS] for t in grid])
            for smooth in SMOOTHING:
                crossed = np.empty(len(truth))
                for half in (0, 1):
                    i, j = _choose(table[:, :, halves != half].mean(-1), smooth)
                    crossed[halves == half] = table[i, j, halves == half]
                i, j = _choose(table.mean(-1), smooth)
                print(f"| {path.name} | {name} | {2 * smooth + 1} | {table[i, j].mean():.4f} ({grid[i]}, {MIN_AREAS[j]}) | "
                      f"{crossed.mean():.4f} |", flush=True)


if __name__ == "__main__":
    main()
