"""Shifted placements as test-time augmentation: does averaging a tile over its place in the padded frame help?

A 101 px TGS tile is reflect-padded to 128 px: 13 px above and left, 14 below and right.  This scores the
hflip-TTA probabilities of one model on its validation fold with the tile placed elsewhere in
that frame (corners, edges), alone and averaged with the centred placement, each cross-tuned
(``_tgs_scoring.cross_tuned``, raw thresholds 0.20-0.80 in steps of 0.05) against the centred
placement alone.  ``saltvol segment`` does not use the frame (it tiles whole sections), so this
concerns ``predict-images`` and ``evaluate`` only.

Usage::

    python benchmarks/tta_placement.py [--model M] [--data ../shared/data/tgs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, cross_tuned, fold_halves, load_labelled_tgs, load_model_or_exit, paired_line, validation_index

TILE, FRAME = 101, 128
#: (top, left) padding of each placement; (13, 13) is the centred one training and predict_tiles use.
PLACEMENTS = {"centre": (13, 13), "one pixel right": (13, 14), "top left": (0, 0), "bottom right": (27, 27), "top right": (0, 27),
              "bottom left": (27, 0), "left": (13, 0), "right": (13, 27)}
AVERAGES = {
    "centre + left + right": ("centre", "left", "right"),
    "centre + top left + bottom right": ("centre", "top left", "bottom right"),
    "centre + four corners": ("centre", "top left", "bottom right", "top right", "bottom left"),
    "all eight": tuple(PLACEMENTS),
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    add_data_option(p)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    model = load_model_or_exit(args.model, "tta_placement")
    data = load_labelled_tgs(args.data, "tta_placement")
    meta = model.meta
    index = validation_index(data, meta)
    truth, halves = data.masks[index], fold_halves(data.coverage[index])
    inputs = (torch.from_numpy(data.images[index]).float()[:, None] - meta.image_mean) / meta.image_std
    pad = FRAME - TILE

    def placed(top: int, left: int) -> np.ndarray:
        framed = F.pad(inputs, (left, pad - left, top, pad - top), mode="reflect")
        out = np.empty((len(index), TILE, TILE), np.float32)
        with torch.inference_mode():
            for start in range(0, len(index), 64):
                batch = framed[start : start + 64].contiguous(memory_format=torch.channels_last)
                prob = 0.5 * (model._forward(batch) + model._forward(batch.flip(-1)).flip(-1))  # raw: no calibration
                out[start : start + 64] = prob[:, top : top + TILE, left : left + TILE].numpy()
        return out

    probs = {name: placed(*where) for name, where in PLACEMENTS.items()}
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)
    reference = cross_tuned(probs["centre"], truth, halves, grid)
    print(f"validation fold {meta.fold}, {len(index)} tiles; cross-tuned, against the centred placement ({reference.mean():.4f})")
    for name in PLACEMENTS:
        if name != "centre":
            print(paired_line(f"{name} alone", cross_tuned(probs[name], truth, halves, grid), reference))
    for name, members in AVERAGES.items():
        print(paired_line(name, cross_tuned(np.mean([probs[m] for m in members], axis=0), truth, halves, grid), reference))


if __name__ == "__main__":
    main()
