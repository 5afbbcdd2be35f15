"""Ways to combine two models' probabilities, scored cross-tuned on their shared TGS validation fold.

``saltvol ensemble`` averages its members' probabilities.  This asks whether another rule would do
better: weighted means, the maximum, and "gating" (a tile the first model calls empty stays empty;
elsewhere the mean).  Every rule is scored with its threshold and minimum area tuned on the other
half of the fold (``_tgs_scoring.cross_tuned``), against the first model scored the same way, so a
rule's extra tuning cannot flatter it.

Usage::

    python benchmarks/ensemble_rules.py FIRST.safetensors SECOND.safetensors [--data ../shared/data/tgs]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, cross_tuned, fold_halves, load_labelled_tgs, load_model_or_exit, paired_line, validation_index


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path, help="the reference model (the gate of the gating rule)")
    p.add_argument("second", type=Path)
    add_data_option(p)
    args = p.parse_args(argv)

    from saltvol.train.evaluate import predict_probabilities

    first, second = (load_model_or_exit(path, "ensemble_rules") for path in (args.first, args.second))
    data = load_labelled_tgs(args.data, "ensemble_rules")
    keys = {(m.meta.data_fingerprint, m.meta.fold, m.meta.k_folds, m.meta.split_seed) for m in (first, second)}
    if len(keys) != 1:
        sys.exit("ensemble_rules: the two models were validated on different splits; pass two models of the same fold")
    meta = first.meta
    index = validation_index(data, meta)
    truth, halves = data.masks[index], fold_halves(data.coverage[index])
    # raw (uncalibrated) probabilities: every rule is tuned on the same raw grid
    a, b = (predict_probabilities(m.network, data.images[index], replace(m.meta, calibration=(1.0, 0.0)), device="cpu")
            for m in (first, second))
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)
    first_empty = ((a > 0.5).reshape(len(index), -1).sum(axis=1) == 0)[:, None, None]
    rules = {"first alone": a, "second alone": b}
    rules |= {f"mean, first weighted {w}": w * a + (1 - w) * b for w in (0.5, 0.6, 0.7, 0.8)}
    rules |= {"maximum": np.maximum(a, b), "gated by the first's empty tiles, else mean": np.where(first_empty, a, 0.5 * (a + b))}
    reference = cross_tuned(a, truth, halves, grid)
    print(f"validation fold {meta.fold} of {meta.k_folds}, {len(index)} tiles; every rule cross-tuned, against the first model")
    for name, probs in rules.items():
        print(paired_line(name, cross_tuned(probs, truth, halves, grid), reference))


if __name__ == "__main__":
    main()
