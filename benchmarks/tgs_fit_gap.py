"""Does a model underfit or overfit TGS?  Its score on its validation fold beside its score on training folds.

A model that scores far higher on the tiles it was trained on than on its validation fold needs
regularisation or more data; one that scores about the same on both has not learnt its training
tiles either, and needs capacity or a better optimisation.  Each fold is scored the way the model is
scored at export (horizontal-flip TTA, the model's tuned threshold and minimum area), overall and per
coverage bin.  Training folds are scored without augmentation, as validation is.  The last columns
separate TGS's vertical annotation artifacts (masks of straight full-height columns, which the image
cannot support: ``saltvol.train.data.vertical_mask_artifacts``): how many a fold holds, their score,
and the fold's score without them.

Usage::

    python benchmarks/tgs_fit_gap.py [--model M] [--train-folds 1 2] [--data ../shared/data/tgs]

Not a test: it prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, load_labelled_tgs, load_model_or_exit


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    p.add_argument("--train-folds", type=int, nargs="+", default=[1, 2], help="training folds to score beside the validation fold")
    add_data_option(p)
    args = p.parse_args(argv)

    from saltvol.metrics import tgs_score_per_image
    from saltvol.train.data import stratified_folds, vertical_mask_artifacts
    from saltvol.train.evaluate import postprocess, predict_probabilities, score_report

    model = load_model_or_exit(args.model, "tgs_fit_gap")
    data = load_labelled_tgs(args.data, "tgs_fit_gap")
    meta = model.meta
    bad = [f for f in args.train_folds if not 0 <= f < meta.k_folds or f == meta.fold]
    if bad:
        sys.exit(f"--train-folds {bad}: pick folds in 0-{meta.k_folds - 1} other than the validation fold {meta.fold}")
    folds = stratified_folds(data.coverage, k=meta.k_folds, seed=meta.split_seed)
    artifacts = vertical_mask_artifacts(data.masks)

    print(f"model {args.model or 'bundled'}: threshold {meta.threshold:.3f}, min area {meta.min_area}, hflip TTA {meta.tta}\n")
    print("| fold | role | tiles | overall | empty | <10% | 10-50% | >50% | vertical artifacts | their score | overall without them |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for fold in [meta.fold, *args.train_folds]:
        index = np.flatnonzero(folds == fold)
        probs = predict_probabilities(model.network, data.images[index], meta, device="cpu", tta=meta.tta)
        predicted = postprocess(probs, meta.threshold, meta.min_area)
        report = score_report(predicted, data.masks[index])
        per_tile = tgs_score_per_image(predicted, data.masks[index])
        odd = artifacts[index]
        role = "validation" if fold == meta.fold else "training"
        cells = " | ".join(f"{report[k]:.3f}" for k in ("overall", "empty", "<10%", "10-50%", ">50%"))
        their = f"{per_tile[odd].mean():.3f}" if odd.any() else "-"
        print(f"| {fold} | {role} | {len(index)} | {cells} | {odd.sum()} | {their} | {per_tile[~odd].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
