"""Where a model loses the TGS score, and two inference-time ideas measured on the validation fold.

Prints, for one model on its own validation fold:

* how the tiles with salt fail, per coverage bin: predicted empty, predicted with IoU under 0.5, IoU 0.5-0.8, IoU 0.8+;
* multi-scale test-time averaging: the hflip-TTA probabilities of the tile averaged with those of the tile resized
  by 0.8, 1.25 or 1.5 (and back), each scored at the model's threshold and re-tuned;
* gating by the auxiliary "has salt" head (trained with the network, unused at inference): tiles predicted empty
  that the head calls salty are re-thresholded lower.

The tuned figures are optimistic in the same way as the model's own (chosen on the fold they are scored on).

Usage::

    python benchmarks/tgs_diagnostics.py [--model M] [--data ../shared/data/tgs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _tgs_scoring import add_data_option, load_labelled_tgs, load_model_or_exit, validation_index


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    add_data_option(p)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from saltvol.metrics import tgs_score_per_image
    from saltvol.train.augment import to_network_size
    from saltvol.train.evaluate import postprocess, tune_postprocessing

    model = load_model_or_exit(args.model, "tgs_diagnostics")
    data = load_labelled_tgs(args.data, "tgs_diagnostics")
    meta = model.meta
    val = data.subset(validation_index(data, meta))
    truth = val.masks
    n = len(truth)

    def resized(x: np.ndarray, size: int) -> np.ndarray:
        return F.interpolate(torch.from_numpy(x)[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()

    def at_scale(factor: float) -> np.ndarray:
        if factor == 1.0:
            return model.predict_tiles(val.images, batch_size=64)
        side = val.images.shape[-1]
        return resized(model.predict_tiles(resized(val.images, int(round(side * factor))), batch_size=32), side)

    def scores(probs: np.ndarray) -> tuple[float, float]:
        shipped = tgs_score_per_image(postprocess(probs, meta.threshold, meta.min_area), truth).mean()
        threshold, min_area = tune_postprocessing(probs, truth)
        return float(shipped), float(tgs_score_per_image(postprocess(probs, threshold, min_area), truth).mean())

    probs = {factor: at_scale(factor) for factor in (1.0, 0.8, 1.25, 1.5)}
    pred = postprocess(probs[1.0], meta.threshold, meta.min_area)
    flat_pred, flat_true = pred.reshape(n, -1), truth.reshape(n, -1)
    coverage, area = flat_true.mean(axis=1), flat_pred.sum(axis=1)
    union = (flat_pred | flat_true).sum(axis=1)
    iou = np.where(union > 0, (flat_pred & flat_true).sum(axis=1) / np.maximum(union, 1), 1.0)

    print(f"model: {args.model or 'bundled'}; validation fold {meta.fold} of {meta.k_folds}, {n} tiles\n")
    print("| salt coverage | tiles | predicted empty | IoU < 0.5 | IoU 0.5-0.8 | IoU >= 0.8 |\n|---|---|---|---|---|---|")
    for name, sel in (("< 10 %", (coverage > 0) & (coverage < 0.1)), ("10-50 %", (coverage >= 0.1) & (coverage <= 0.5)), ("> 50 %", coverage > 0.5)):
        print(f"| {name} | {sel.sum()} | {(sel & (area == 0)).sum()} | {(sel & (area > 0) & (iou < 0.5)).sum()} | "
              f"{(sel & (iou >= 0.5) & (iou < 0.8)).sum()} | {(sel & (iou >= 0.8)).sum()} |")
    empty = coverage == 0
    print(f"| empty | {empty.sum()} | {(empty & (area == 0)).sum()} (correct) | | | |\n")

    print("| test-time scales averaged | score at the model's threshold | re-tuned |\n|---|---|---|")
    for combo in ((1.0,), (0.8,), (1.25,), (1.5,), (1.0, 1.25), (1.0, 1.5), (0.8, 1.0, 1.25), (1.0, 1.25, 1.5)):
        shipped, tuned = scores(np.mean([probs[f] for f in combo], axis=0))
        print(f"| {' + '.join(map(str, combo))} | {shipped:.4f} | {tuned:.4f} |")

    network = model.network.float().eval()
    x = to_network_size(torch.from_numpy((val.images - meta.image_mean) / meta.image_std)[:, None], meta.train_size, meta.input_mode, meta.input_scale)
    with torch.inference_mode():
        outputs = [network(torch.cat([b, b.flip(-1)]).contiguous(memory_format=torch.channels_last)) for b in x.split(64)]
    if not all(isinstance(o, tuple) for o in outputs):
        print("\nthe model has no auxiliary head (or is an ensemble, which returns only the mean mask); no gating")
        return
    has_salt = torch.cat([torch.sigmoid(o[1].float())[:, 0].view(2, -1).mean(0) for o in outputs]).numpy()
    print(f"\naux 'has salt' probability: empty tiles median {np.median(has_salt[empty]):.2f}, 90th percentile "
          f"{np.percentile(has_salt[empty], 90):.2f}; missed salt tiles (n={(~empty & (area == 0)).sum()}) "
          f"{np.percentile(has_salt[~empty & (area == 0)], [10, 50, 90]).round(2).tolist()} (10th/50th/90th)")
    base = tgs_score_per_image(pred, truth).mean()
    print(f"\n| gate: aux above | re-threshold at | tiles changed | score (model alone {base:.4f}) |\n|---|---|---|---|")
    for gate in (0.5, 0.7, 0.9):
        for low in (0.05, 0.1, 0.2):
            chosen = (area == 0) & (has_salt > gate)
            gated = pred.copy()
            gated[chosen] = probs[1.0][chosen] > low
            print(f"| {gate} | {low} | {chosen.sum()} | {tgs_score_per_image(gated, truth).mean():.4f} |")


if __name__ == "__main__":
    main()
