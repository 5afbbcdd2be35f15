"""Split a salt-probability cube into connected salt bodies and measure them.

:func:`bodies` thresholds the cube one block of inlines at a time into a
boolean mask, labels the mask's connected components with
:func:`scipy.ndimage.label`, then reads the cube again block by block to sum
each body's probability and voxel positions with :func:`numpy.bincount`.
Only the mask (1 byte per voxel) and the labels (4 bytes per voxel) are held
whole; the float cube is never loaded at once.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import xarray as xr

from saltvol.errors import DataError
from saltvol.io.cube import cube_variable

__all__ = ["bodies"]

logger = logging.getLogger(__name__)

#: Cube values thresholded or summed at once, in bytes (at least one inline).
_BLOCK_BYTES = 64 * 2**20


def bodies(
    cube: xr.Dataset | xr.DataArray,
    *,
    threshold: float = 0.5,
    min_voxels: int = 100,
    connectivity: Literal[6, 26] = 26,
    variable: str = "salt_probability",
) -> list[dict[str, Any]]:
    """Find the connected salt bodies of a probability cube, largest first.

    Voxels with probability above ``threshold`` are grouped into connected
    components; components smaller than ``min_voxels`` are dropped and the
    others are described by their size, volume, bounding box, centroid and
    mean probability.

    Labelling needs the whole thresholded cube in memory: the boolean mask
    (1 byte per voxel, a quarter of the float32 cube) plus the int32 labels
    (4 bytes per voxel), so about 5 bytes per voxel, 5 GB for a
    1000 x 1000 x 1000 cube. The probabilities themselves are read one block
    of inlines at a time, twice.

    Parameters
    ----------
    cube : xr.Dataset or xr.DataArray
        A cube with ``variable`` (or that DataArray), dims ``(iline, xline,
        sample)`` in any order, or ``(cdp, sample)`` for a 2D line, which is
        labelled in 2D. Lazy (Dask) cubes are read block by block.
    threshold : float, default 0.5
        A voxel is salt when its probability is strictly above this.
    min_voxels : int, default 100
        Bodies with fewer voxels are removed.
    connectivity : {26, 6}, default 26
        26: voxels touching by a face, an edge or a corner belong together
        (8 for a 2D line); 6: by a face only (4 for a 2D line), which keeps
        bodies that touch only diagonally apart.
    variable : str, default "salt_probability"
        Variable of a Dataset ``cube``.

    Returns
    -------
    list of dict
        One dict per body, sorted by voxel count, largest first, with plain
        JSON types: ``id`` (1, 2, ... in that order), ``voxels`` (int),
        ``volume_m3`` (float, or None), ``mean_probability`` (float),
        ``bbox`` (``{dim: [first, last]}`` in line numbers and sample
        values), and ``centroid`` (``{dim: value}``, voxel positions averaged
        and mapped to line numbers and samples). ``volume_m3`` is the voxel
        count times the inline and crossline bin spacings (median distance
        between the ``cdp_x``/``cdp_y`` of neighbouring traces) times the
        sample interval; it is None for time data (sample unit not "m"),
        without coordinates, and for 2D lines.

    Raises
    ------
    InputError
        ``cube`` is not a Dataset or DataArray, or has no ``variable``.
    DataError
        The dims are not those of a cube, or an argument is out of range.

    See Also
    --------
    saltvol.salt_surfaces.surfaces : top and base of salt per trace.

    Examples
    --------
    >>> from saltvol.synth import make_volume
    >>> ds = make_volume((24, 20, 64), seed=1, period=10.0)
    >>> found = bodies(ds["salt"].astype("float32"), min_voxels=10)
    >>> len(found), found[0]["voxels"] == int(ds["salt"].sum())
    (1, True)
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not np.isfinite(threshold):
        raise DataError(f"threshold must be a finite number, got {threshold!r}; pass e.g. threshold=0.5")
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise DataError(f"min_voxels must be a positive integer, got {min_voxels!r}; pass e.g. min_voxels=100")
    if connectivity not in (6, 26):
        raise DataError(f"connectivity must be 6 or 26, got {connectivity!r}; pass connectivity=26 (or 6)")
    prob = cube_variable(cube, variable)
    from scipy import ndimage

    mask = _threshold(prob, float(threshold))
    structure = ndimage.generate_binary_structure(mask.ndim, 1 if connectivity == 6 else mask.ndim)
    labels, n = ndimage.label(mask, structure=structure)
    del mask
    if n == 0:
        return []
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    keep = np.flatnonzero(counts >= min_voxels)
    keep = keep[keep > 0]
    logger.info("%d connected bodies above p > %g, %d with at least %d voxels", n, threshold, keep.size, min_voxels)
    if keep.size == 0:
        return []
    sums = _sums(prob, labels, n)
    slices = ndimage.find_objects(labels)
    voxel_volume = _voxel_volume(prob)
    axes = {str(d): _axis(prob, str(d)) for d in prob.dims}
    dims = [str(d) for d in prob.dims]

    order = keep[np.argsort(-counts[keep], kind="stable")]
    out = []
    for rank, lab in enumerate(order, start=1):
        count = int(counts[lab])
        box = slices[lab - 1]
        out.append(
            {
                "id": rank,
                "voxels": count,
                "volume_m3": float(count * voxel_volume) if voxel_volume is not None else None,
                "mean_probability": float(sums["p"][lab] / count),
                "bbox": {d: [_py(axes[d][s.start]), _py(axes[d][s.stop - 1])] for d, s in zip(dims, box)},
                "centroid": {d: float(np.interp(sums[d][lab] / count, np.arange(axes[d].size), axes[d])) for d in dims},
            }
        )
    return out


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _blocks(prob: xr.DataArray) -> list[slice]:
    """Slices along the first dim holding about _BLOCK_BYTES of float32, aligned with Dask chunks."""
    n = prob.shape[0]
    row = 4 * int(np.prod(prob.shape[1:], dtype=np.int64))
    rows = max(1, _BLOCK_BYTES // max(1, row))
    chunks = getattr(prob.data, "chunks", None)
    if chunks:
        step = int(chunks[0][0])
        rows = max(step, rows // step * step)
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


def _threshold(prob: xr.DataArray, threshold: float) -> np.ndarray:
    mask = np.empty(prob.shape, dtype=bool)
    for sl in _blocks(prob):
        mask[sl] = np.asarray(prob[sl].values) > threshold
    return mask


def _sums(prob: xr.DataArray, labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-label sums of the probability and of each voxel index, block by block."""
    dims = [str(d) for d in prob.dims]
    sums = {k: np.zeros(n + 1, dtype=np.float64) for k in ["p", *dims]}
    for sl in _blocks(prob):
        lab = labels[sl]
        flat = lab.ravel()
        if not flat.any():
            continue
        values = np.asarray(prob[sl].values, dtype=np.float64).ravel()
        sums["p"] += np.bincount(flat, weights=values, minlength=n + 1)
        for axis, d in enumerate(dims):
            shape = [1] * lab.ndim
            shape[axis] = lab.shape[axis]
            index = np.arange(lab.shape[axis], dtype=np.float64).reshape(shape) + (sl.start if axis == 0 else 0)
            sums[d] += np.bincount(flat, weights=np.broadcast_to(index, lab.shape).ravel(), minlength=n + 1)
    return sums


def _axis(prob: xr.DataArray, dim: str) -> np.ndarray:
    """Coordinate values of ``dim`` (positions 0..n-1 if it has none)."""
    if dim in prob.coords:
        return np.asarray(prob[dim].values)
    return np.arange(prob.sizes[dim])


def _py(value: Any) -> int | float:
    v = np.asarray(value).item()
    return int(v) if isinstance(v, (int, np.integer)) else float(v)


def _voxel_volume(prob: xr.DataArray) -> float | None:
    """Volume of one voxel in m^3, or None when the sample axis is not in metres or bins are unknown."""
    if prob.ndim != 3:
        return None
    unit = prob["sample"].attrs.get("units") if "sample" in prob.coords else None
    unit = unit or prob.attrs.get("sample_unit")
    if unit != "m" or "sample" not in prob.coords or prob.sizes["sample"] < 2:
        return None
    if "cdp_x" not in prob.coords or "cdp_y" not in prob.coords:
        return None
    x = np.asarray(prob["cdp_x"].transpose("iline", "xline").values, dtype=np.float64)
    y = np.asarray(prob["cdp_y"].transpose("iline", "xline").values, dtype=np.float64)
    di = _bin_spacing(x, y, axis=0)
    dj = _bin_spacing(x, y, axis=1)
    dz = float(np.median(np.abs(np.diff(np.asarray(prob["sample"].values, dtype=np.float64)))))
    if di is None or dj is None or not dz > 0:
        return None
    return di * dj * dz


def _bin_spacing(x: np.ndarray, y: np.ndarray, *, axis: int) -> float | None:
    """Median distance between the CDPs of neighbouring grid cells along ``axis`` (NaN cells skipped)."""
    if x.shape[axis] < 2:
        return None
    d = np.hypot(np.diff(x, axis=axis), np.diff(y, axis=axis))
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if d.size else None
