"""Use a trained model on TGS tiles: a Kaggle submission from a folder of PNGs, and a scored evaluation.

Both apply the model the way it was validated: horizontal-flip TTA as its
metadata says, then its tuned threshold and minimum salt area.  The
submission CSV (``id,rle_mask``, column-major 1-based runs) is written under
a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError, OutputExistsError, OutputPathError
from ..model import SaltModel, load_model
from .data import coverage_bins, load_tgs, read_image, stratified_folds
from .evaluate import postprocess, predict_probabilities, score_report
from .rle import rle_encode

__all__ = ["evaluate", "predict_images"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def _resolve_model(model: str | os.PathLike | SaltModel | None, device: str) -> SaltModel:
    return model if isinstance(model, SaltModel) else load_model(model, device=device)


def _check_output(path: Path, *, overwrite: bool) -> None:
    if path.is_dir():
        raise OutputPathError(f"output {str(path)!r} is a folder; pass a file name such as {str(path / 'submission.csv')!r}")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {str(path)!r} exists; pass --overwrite (overwrite=True) to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise OutputPathError(f"folder {str(parent)!r} of the output does not exist; create it first")


def _check_masks_dir(masks_dir: Path, ids: list[str], *, overwrite: bool) -> None:
    if masks_dir.exists() and not masks_dir.is_dir():
        raise OutputPathError(f"mask folder {str(masks_dir)!r} is a file; pass a folder for the PNG masks")
    if overwrite or not masks_dir.is_dir():
        return
    clash = [i for i in ids if (masks_dir / f"{i}.png").exists()]
    if clash:
        raise OutputExistsError(
            f"{len(clash)} masks already exist in {str(masks_dir)!r} (first: {clash[0] + '.png'!r}); "
            "pass --overwrite (overwrite=True) to replace them or choose another folder"
        )


def _write_mask(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(tmp, format="PNG")
    os.replace(tmp, path)


def predict_images(
    images_dir: str | os.PathLike,
    output_csv: str | os.PathLike,
    *,
    model: str | os.PathLike | SaltModel | None = None,
    masks_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "auto",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Predict salt on every PNG tile in a folder and write a Kaggle submission CSV.

    Tiles are read in batches, predicted with the model's TTA setting, turned
    into masks with its tuned ``threshold`` and ``min_area``, run-length
    encoded (column-major, 1-based) and streamed into a temporary CSV that is
    renamed to ``output_csv`` when every tile is done.

    Parameters
    ----------
    images_dir : path
        A folder of greyscale PNG tiles (TGS: 101 x 101); the file stem is the id.
    output_csv : path
        The submission to write: header ``id,rle_mask``, one row per tile, sorted by id.
    model : path or SaltModel, optional
        A model file written by ``saltvol train``, a loaded model, or None for
        the bundled default.
    masks_dir : path, optional
        Also write each mask as ``<id>.png`` (uint8, 0 or 255) into this
        folder (created if missing).
    batch_size : int, default 64
        Tiles read and predicted at a time.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to run the model when ``model`` is a path (a loaded model keeps its own).
    overwrite : bool, default False
        Replace an existing CSV and existing mask PNGs.
    progress : callable, optional
        ``progress(done, total, stage)`` after each batch, with ``stage="predict"``.

    Returns
    -------
    pathlib.Path
        ``output_csv``.

    Raises
    ------
    InputError
        If ``images_dir`` is not a folder of PNG tiles, or a tile is unreadable.
    DataError
        If tiles of a batch differ in size.
    OutputExistsError
        If the CSV (or a mask PNG) exists and ``overwrite`` is False.
    OutputPathError
        If the CSV path is a folder or its folder is missing.
    CheckpointError
        If the model cannot be loaded.

    See Also
    --------
    saltvol.train.rle.rle_decode : read a row of the CSV back into a mask.

    Examples
    --------
    >>> predict_images("test/images", "submission.csv", model="run/model.safetensors")  # doctest: +SKIP
    PosixPath('submission.csv')
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    images_dir, output_csv = Path(images_dir), Path(output_csv)
    if not images_dir.is_dir():
        raise InputError(f"image folder {str(images_dir)!r} does not exist or is not a folder; pass a folder of PNG tiles")
    paths = sorted(images_dir.glob("*.png"))
    if not paths:
        raise InputError(f"no PNG tiles in {str(images_dir)!r}; pass a folder of PNG tiles such as test/images")
    ids = [p.stem for p in paths]
    _check_output(output_csv, overwrite=overwrite)
    mask_path = Path(masks_dir) if masks_dir is not None else None
    if mask_path is not None:
        _check_masks_dir(mask_path, ids, overwrite=overwrite)

    salt_model = _resolve_model(model, device)
    meta = salt_model.meta
    log.info(
        "predicting %d tiles with %s (tta=%s, threshold=%.2f, min_area=%d)",
        len(paths), salt_model.name, meta.tta, meta.threshold, meta.min_area,
    )
    if mask_path is not None:
        mask_path.mkdir(parents=True, exist_ok=True)
    tmp = output_csv.with_name(f".{output_csv.name}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["id", "rle_mask"])
            for start in range(0, len(paths), batch_size):
                batch = paths[start : start + batch_size]
                tiles = [read_image(p) for p in batch]
                shapes = {t.shape for t in tiles}
                if len(shapes) > 1:
                    raise DataError(
                        f"tiles in {str(images_dir)!r} differ in size ({sorted(shapes)}); pass tiles of one size"
                    )
                probs = predict_probabilities(
                    salt_model.network, np.stack(tiles), meta, device=salt_model.device, batch_size=batch_size, tta=meta.tta
                )
                masks = postprocess(probs, meta.threshold, meta.min_area)
                for path, mask in zip(batch, masks):
                    writer.writerow([path.stem, rle_encode(mask)])
                    if mask_path is not None:
                        _write_mask(mask, mask_path / f"{path.stem}.png")
                if progress:
                    progress(start + len(batch), len(paths), "predict")
        os.replace(tmp, output_csv)
    finally:
        tmp.unlink(missing_ok=True)
    return output_csv


def evaluate(
    data_dir: str | os.PathLike,
    *,
    model: str | os.PathLike | SaltModel | None = None,
    all_tiles: bool = False,
    device: str = "auto",
    limit: int | None = None,
) -> dict[str, Any]:
    """Score a model on TGS tiles with masks: its validation fold, or every tile.

    The fold is recomputed exactly as training split the data
    (:func:`~saltvol.train.data.stratified_folds` with the model's
    ``k_folds`` and ``split_seed``), so the score is on tiles the network did
    not train on, provided the data are the same (``data_matches_training``).

    Parameters
    ----------
    data_dir : path
        A TGS folder in Kaggle's layout (images plus masks or ``train.csv``).
    model : path or SaltModel, optional
        None for the bundled default.
    all_tiles : bool, default False
        Score every tile instead of the validation fold.
    device : {"auto", "cpu", "cuda"}, default "auto"
    limit : int, optional
        Read only the first ``limit`` tiles (as ``saltvol train --limit`` did).

    Returns
    -------
    dict
        ``tiles`` (int), ``subset`` (str), ``threshold`` (float),
        ``min_area`` (int), ``data_matches_training`` (bool or None),
        ``counts`` (tiles per bin), and ``at_0.5`` and ``tuned``: the TGS
        metric ``{"overall", "empty", "<10%", "10-50%", ">50%"}`` at
        threshold 0.5 (no minimum area) and at the model's tuned settings.
        Empty bins score NaN.

    Raises
    ------
    InputError
        If the folder is missing, has no masks, or the fold is empty.
    CheckpointError
        If the model cannot be loaded.

    Examples
    --------
    >>> evaluate("/data/tgs", model="run/model.safetensors")["tuned"]["overall"]  # doctest: +SKIP
    0.8412
    """
    data = load_tgs(data_dir, limit=limit)
    if data.masks is None:
        raise InputError(f"{str(data_dir)!r} has no masks (train/masks or train.csv); evaluation needs them")
    salt_model = _resolve_model(model, device)
    meta = salt_model.meta
    matches = None if meta.data_fingerprint is None else meta.data_fingerprint == data.fingerprint
    if all_tiles:
        index = np.arange(len(data.ids))
        subset = "all tiles"
    else:
        folds = stratified_folds(data.coverage, k=meta.k_folds, seed=meta.split_seed)
        index = np.flatnonzero(folds == meta.fold)
        subset = f"validation fold {meta.fold} of {meta.k_folds}"
        if matches is False:
            log.warning(
                "these tiles are not the ones the model was trained on (fingerprint differs); "
                "the recomputed validation fold may include training tiles"
            )
        if not len(index):
            raise InputError(f"validation fold {meta.fold} of {str(data_dir)!r} is empty; pass more tiles or --all")
    truth = data.masks[index]
    probs = predict_probabilities(
        salt_model.network, data.images[index], meta, device=salt_model.device, tta=meta.tta
    )
    coverage = truth.reshape(len(truth), -1).mean(axis=1)
    counts = {"overall": len(index)} | {k: int(v.sum()) for k, v in coverage_bins(coverage).items()}
    return {
        "tiles": len(index),
        "subset": subset,
        "threshold": float(meta.threshold),
        "min_area": int(meta.min_area),
        "data_matches_training": matches,
        "counts": counts,
        "at_0.5": score_report(postprocess(probs, 0.5, 0), truth),
        "tuned": score_report(postprocess(probs, meta.threshold, meta.min_area), truth),
    }
