"""The TGS Salt Identification training set, in Kaggle's layout, as arrays.

``train/images/*.png`` are 101x101 greyscale seismic tiles stored as RGB with
equal channels; ``train/masks/*.png`` are the salt masks (some 16-bit, so the
mask is ``png > 0``); ``train.csv`` holds the same masks run-length encoded
and is used when the mask folder is absent; ``depths.csv`` is optional.
Images are returned in *image units* (pixel / 255), the units that
:class:`saltvol.model.SaltModel` and :mod:`saltvol.normalize` share.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .rle import rle_decode

__all__ = ["COVERAGE_BINS", "TGSData", "coverage_bins", "load_tgs", "read_image", "stratified_folds", "vertical_mask_artifacts"]

#: Salt-coverage bins used to stratify folds and to report scores.
COVERAGE_BINS: dict[str, tuple[float, float]] = {
    "empty": (0.0, 0.0),
    "<10%": (0.0, 0.10),
    "10-50%": (0.10, 0.50),
    ">50%": (0.50, 1.01),
}


@dataclass(frozen=True)
class TGSData:
    """Tiles, masks and ids of a TGS-layout folder."""

    ids: list[str]
    images: np.ndarray  # (N, 101, 101) float32 image units
    masks: np.ndarray | None  # (N, 101, 101) bool, None when the folder has no masks
    depths: np.ndarray | None  # (N,) float32 or None
    fingerprint: str

    @property
    def coverage(self) -> np.ndarray:
        if self.masks is None:
            raise InputError("these tiles have no masks; pass a folder with train/masks or train.csv")
        return self.masks.reshape(len(self.masks), -1).mean(axis=1)

    def subset(self, index: np.ndarray) -> TGSData:
        return TGSData(
            ids=[self.ids[i] for i in index],
            images=self.images[index],
            masks=None if self.masks is None else self.masks[index],
            depths=None if self.depths is None else self.depths[index],
            fingerprint=self.fingerprint,
        )


def read_image(path: Path) -> np.ndarray:
    """One PNG as a float32 array in image units (first channel / 255)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{path} is not a readable image ({e}); remove it or pass a folder of PNG tiles") from e
    if array.ndim == 3:
        array = array[..., 0]
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return array.astype(np.float32) / scale


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img)
    if array.ndim == 3:
        array = array[..., 0]
    return array > 0


def _image_dir(root: Path) -> Path:
    for candidate in (root / "train" / "images", root / "images", root):
        if candidate.is_dir() and any(candidate.glob("*.png")):
            return candidate
    raise InputError(f"no PNG tiles under {str(root)!r}; pass the folder that holds train/images (Kaggle layout)")


def load_tgs(root: str | Path, *, limit: int | None = None) -> TGSData:
    """Read a TGS-layout folder into arrays.

    Parameters
    ----------
    root : path
        A folder with ``train/images`` (and ``train/masks`` or ``train.csv``),
        or a plain folder of PNG tiles.
    limit : int, optional
        Read only the first ``limit`` tiles (sorted by id), for quick runs and tests.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"TGS data folder {str(root)!r} does not exist; pass --data DIR (Kaggle layout)")
    image_dir = _image_dir(root)
    paths = sorted(image_dir.glob("*.png"))[: limit if limit else None]
    ids = [p.stem for p in paths]
    images = np.stack([read_image(p) for p in paths])
    masks = _load_masks(root, image_dir, ids)
    depths = _load_depths(root, ids)
    digest = hashlib.sha256()
    digest.update("\n".join(ids).encode())
    digest.update(np.round(images * 255).astype(np.uint8).tobytes())
    if masks is not None:
        digest.update(np.packbits(masks).tobytes())
    return TGSData(ids=ids, images=images, masks=masks, depths=depths, fingerprint=digest.hexdigest()[:16])


def _load_masks(root: Path, image_dir: Path, ids: list[str]) -> np.ndarray | None:
    mask_dir = image_dir.parent / "masks"
    if mask_dir.is_dir():
        missing = [i for i in ids if not (mask_dir / f"{i}.png").is_file()]
        if missing:
            raise InputError(f"{len(missing)} tiles have no mask in {mask_dir} (first: {missing[0]!r}); add them or remove the tiles")
        return np.stack([_read_mask(mask_dir / f"{i}.png") for i in ids])
    for csv_path in (root / "train.csv", image_dir.parent / "train.csv"):
        if csv_path.is_file():
            with open(csv_path, newline="") as fh:
                table = {row["id"]: row.get("rle_mask", "") for row in csv.DictReader(fh)}
            missing = [i for i in ids if i not in table]
            if missing:
                raise InputError(f"{len(missing)} tiles are not in {csv_path} (first: {missing[0]!r}); add their masks")
            return np.stack([rle_decode(table[i], (101, 101)) for i in ids])
    return None


def _load_depths(root: Path, ids: list[str]) -> np.ndarray | None:
    path = root / "depths.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        table = {row["id"]: float(row["z"]) for row in csv.DictReader(fh)}
    return np.asarray([table.get(i, np.nan) for i in ids], dtype=np.float32)


def coverage_bins(coverage: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean index of each coverage bin (empty, <10%, 10-50%, >50%)."""
    return {
        "empty": coverage == 0,
        "<10%": (coverage > 0) & (coverage < 0.10),
        "10-50%": (coverage >= 0.10) & (coverage < 0.50),
        ">50%": coverage >= 0.50,
    }


def stratified_folds(coverage: np.ndarray, *, k: int = 8, seed: int = 42) -> np.ndarray:
    """Fold number of each tile, stratified by salt coverage.

    Tiles are sorted by coverage with a random tie-break (so the many empty
    tiles spread evenly) and dealt to folds in turn.
    """
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(coverage)), coverage))
    folds = np.empty(len(coverage), dtype=np.int64)
    folds[order] = np.arange(len(coverage)) % k
    return folds


def vertical_mask_artifacts(masks: np.ndarray) -> np.ndarray:
    """Which masks are TGS's vertical annotation artifacts: every column all salt or all sediment, top to bottom.

    About 100 of TGS's 3,600 masks are blocks or strips with perfectly vertical
    edges over the full tile height, often laid over plainly layered sediment.
    Real salt boundaries are never straight pixel columns over 101 rows, so
    these are labels the image cannot support: the shipped model scores them
    0.09-0.24 on folds it trained on and 0.26 on its validation fold
    (docs/model.md, "Session 11").
    Empty and all-salt masks are not counted: those are ordinary labels.

    Parameters
    ----------
    masks : (N, H, W) bool
    """
    masks = np.asarray(masks, dtype=bool)
    columns_constant = np.all(masks == masks[:, :1, :], axis=1).all(axis=1)
    some_salt = masks.any(axis=(1, 2))
    all_salt = masks.all(axis=(1, 2))
    return columns_constant & some_salt & ~all_salt
