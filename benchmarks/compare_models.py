"""Compare two models on the same TGS validation tiles, tile by tile (a paired comparison).

One model's score over 450 validation tiles has a standard error of about 0.017, so two scores a
0.01 apart look like noise side by side; but both models are scored on the same tiles, and the
per-tile differences vary far less.  This prints both scores at each model's tuned threshold and
minimum area, the mean per-tile difference with its paired standard error, and how many tiles
each model wins.  Both models must share the validation fold (data fingerprint, fold, seed).

The stored threshold and minimum area were tuned on the very tiles scored here, which flatters a
model (an ensemble of two, say) by however much that tuning fits noise.  The second comparison,
"cross-tuned", removes that: the fold is split in two halves (seeded, stratified by salt
coverage), each model's threshold and minimum area are tuned on one half and scored on the other,
and the other way round, so every tile is scored with settings chosen without it.

Usage::

    python benchmarks/compare_models.py OLD.safetensors NEW.safetensors [--data ../shared/data/tgs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, cross_tuned, fold_halves, load_labelled_tgs, load_model_or_exit, paired_line, validation_index


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path, help="the reference model file")
    p.add_argument("new", type=Path, help="the candidate model file")
    add_data_option(p)
    args = p.parse_args(argv)

    from saltvol.metrics import tgs_score_per_image
    from saltvol.model import calibrate
    from saltvol.train.evaluate import postprocess, predict_probabilities

    models = [load_model_or_exit(path, "compare_models") for path in (args.old, args.new)]
    data = load_labelled_tgs(args.data, "compare_models")
    splits = {(m.meta.data_fingerprint, m.meta.fold, m.meta.k_folds, m.meta.split_seed) for m in models}
    if len(splits) != 1:
        sys.exit(f"the two models were validated on different splits {sorted(map(str, splits))}; a paired comparison needs the same tiles")
    meta = models[0].meta
    index = validation_index(data, meta)
    truth = data.masks[index]
    halves = fold_halves(data.coverage[index])
    stored, crossed = [], []
    for model in models:
        probs = predict_probabilities(model.network, data.images[index], model.meta, device="cpu", tta=model.meta.tta)
        stored.append(tgs_score_per_image(postprocess(probs, model.meta.threshold, model.meta.min_area), truth))
        thresholds = np.round(calibrate(np.round(np.arange(0.3, 0.71, 0.05), 2), model.meta.calibration), 4)
        crossed.append(cross_tuned(probs, truth, halves, thresholds))
    print(f"validation fold {meta.fold} of {meta.k_folds}, {len(index)} tiles")
    _report("each model at its stored (tuned on these tiles) threshold and minimum area", stored, args)
    _report("cross-tuned: threshold and minimum area tuned on the other half of the fold", crossed, args)


def _report(title: str, scores: list[np.ndarray], args: argparse.Namespace) -> None:
    old, new = scores
    n = len(old)
    print(title)
    print(f"  old {old.mean():.4f} (standard error {old.std(ddof=1) / np.sqrt(n):.4f})  {args.old}")
    print(f"  new {new.mean():.4f} (standard error {new.std(ddof=1) / np.sqrt(n):.4f})  {args.new}")
    print("  " + paired_line("new - old", new, old).split("; ", 1)[1])

if __name__ == "__main__":
    main()
