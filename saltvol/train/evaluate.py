"""Score a network on TGS tiles: probabilities, the metric by coverage bin, and post-processing.

Post-processing has two knobs, both chosen on the validation fold only: the
pixel threshold and a minimum salt area below which a tile is called empty
(the TGS metric punishes a few false-positive pixels on an empty tile as
hard as a missed salt body).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..metrics import tgs_score_per_image
from ..model import ModelMeta, autocast_dtype, calibrate
from .augment import from_network_size, to_network_size
from .data import coverage_bins

__all__ = [
    "fit_calibration",
    "postprocess",
    "predict_probabilities",
    "score_report",
    "tune_on_validation",
    "tune_postprocessing",
]


def predict_probabilities(
    network: torch.nn.Module,
    images: np.ndarray,
    meta: ModelMeta,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    tta: bool = True,
) -> np.ndarray:
    """Salt probability of each pixel of (N, H, W) tiles in image units, with hflip TTA."""
    network.eval()
    amp = autocast_dtype(device)
    size = images.shape[-2:]
    out = np.empty(images.shape, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy((images[start : start + batch_size] - meta.image_mean) / meta.image_std).float()[:, None]
            x = to_network_size(x, meta.train_size, meta.input_mode, meta.input_scale)
            n = len(x)
            if tta:
                x = torch.cat([x, x.flip(-1)])
            x = x.contiguous(memory_format=torch.channels_last).to(device)
            with torch.autocast(device_type=device, dtype=amp or torch.float32, enabled=amp is not None):
                logits = network(x)
            logits = logits[0] if isinstance(logits, tuple) else logits
            prob = torch.sigmoid(logits.float())
            if tta:
                prob = 0.5 * (prob[:n] + prob[n:].flip(-1))
            prob = calibrate(prob, meta.calibration)
            out[start : start + n] = from_network_size(prob, size, meta.input_mode, meta.input_scale)[:, 0].cpu().numpy()
    return out


def postprocess(probs: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """Masks from probabilities: threshold, then empty out tiles with fewer than ``min_area`` salt pixels."""
    masks = probs > threshold
    small = masks.reshape(len(masks), -1).sum(axis=1) < min_area
    masks[small] = False
    return masks


def score_report(pred_masks: np.ndarray, true_masks: np.ndarray) -> dict[str, float]:
    """The TGS metric overall and per salt-coverage bin (empty, <10%, 10-50%, >50%)."""
    per_image = tgs_score_per_image(pred_masks, true_masks)
    coverage = true_masks.reshape(len(true_masks), -1).mean(axis=1)
    report = {"overall": float(per_image.mean())}
    for name, index in coverage_bins(coverage).items():
        report[name] = float(per_image[index].mean()) if index.any() else float("nan")
    return report


def tune_postprocessing(
    probs: np.ndarray,
    true_masks: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    min_areas: tuple[int, ...] = (0, 10, 25, 50, 100, 150, 200),
) -> tuple[float, int]:
    """Threshold and minimum area that maximise the TGS metric on (validation) tiles."""
    thresholds = np.round(np.arange(0.3, 0.71, 0.05), 2) if thresholds is None else thresholds
    best = (-1.0, 0.5, 0)
    for threshold in thresholds:
        for min_area in min_areas:
            score = float(tgs_score_per_image(postprocess(probs, threshold, min_area), true_masks).mean())
            if score > best[0] + 1e-9:
                best = (score, float(threshold), int(min_area))
    return best[1], best[2]


def fit_calibration(probs: np.ndarray, true_masks: np.ndarray, *, max_pixels: int = 2_000_000, seed: int = 0) -> tuple[float, float]:
    """Platt scaling ``(a, b)`` that minimises the pixel cross-entropy of ``sigmoid(a * logit(p) + b)``.

    Fitted on (a random sample of at most ``max_pixels``) validation pixels with
    scipy's L-BFGS-B; ``a`` is kept positive so the ranking of pixels, and
    therefore every mask, is unchanged.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    p = np.clip(probs.reshape(-1).astype(np.float64), 1e-6, 1 - 1e-6)
    y = true_masks.reshape(-1).astype(np.float64)
    if p.size > max_pixels:
        pick = np.random.default_rng(seed).choice(p.size, max_pixels, replace=False)
        p, y = p[pick], y[pick]
    z = np.log(p / (1 - p))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        t = a * z + b
        value = -np.mean(y * log_expit(t) + (1 - y) * log_expit(-t))
        residual = expit(t) - y
        return float(value), np.array([np.mean(residual * z), np.mean(residual)])

    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(1e-3, 100.0), (-50.0, 50.0)])
    a, b = (float(v) for v in result.x)
    return round(a, 4), round(b, 4)


def tune_on_validation(
    network: torch.nn.Module, meta: ModelMeta, images: np.ndarray, masks: np.ndarray, *, device: str = "cpu"
) -> tuple[ModelMeta, dict[str, float]]:
    """``meta`` with calibration, threshold, minimum area and validation scores fitted on these tiles.

    The network's raw (uncalibrated; flip-averaged if ``meta.tta``) probabilities are Platt
    scaled, then the threshold is picked from the usual raw grid (0.30-0.70)
    mapped into calibrated units, so the masks, and the score, are those of
    the raw probabilities.  Returns the new metadata and the score report at
    the chosen settings.
    """
    raw = predict_probabilities(network, images, replace(meta, calibration=(1.0, 0.0)), device=device, tta=meta.tta)
    calibration = fit_calibration(raw, masks)
    probs = calibrate(raw, calibration)
    thresholds = np.round(calibrate(np.round(np.arange(0.3, 0.71, 0.05), 2), calibration), 4)
    threshold, min_area = tune_postprocessing(probs, masks, thresholds=thresholds)
    report = score_report(postprocess(probs, threshold, min_area), masks)
    tuned = replace(
        meta,
        calibration=calibration,
        threshold=threshold,
        min_area=min_area,
        val_score=round(report["overall"], 4),
        val_scores_by_bin={k: round(v, 4) for k, v in report.items() if k != "overall"},
    )
    return tuned, report
