"""Top- and base-of-salt surfaces from a salt-probability cube, and horizon files.

:func:`surfaces` finds, in every trace, the first and the last sample whose
probability is above a threshold (a numpy kernel mapped over the cube's
trace blocks, so a Dask cube stays lazy and is computed chunk by chunk).
:func:`write_horizons` writes each surface as a plain-text ``iline xline
value`` point file that Petrel and OpendTect import; the surfaces Dataset
itself goes to Zarr with :meth:`xarray.Dataset.to_zarr`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

from saltvol.errors import DataError, InputError, OutputExistsError, OutputPathError
from saltvol.io.cube import cube_variable

__all__ = ["surfaces", "write_horizons"]

_SURFACES = ("top_of_salt", "base_of_salt")


def surfaces(
    cube: xr.Dataset | xr.DataArray,
    *,
    threshold: float = 0.5,
    variable: str = "salt_probability",
) -> xr.Dataset:
    """Map the top and the base of salt: the first and last salt sample of every trace.

    A sample is salt when its probability is strictly above ``threshold``;
    ``top_of_salt`` is the ``sample`` value of the first such sample of the
    trace and ``base_of_salt`` that of the last one, so a trace crossing
    several salt layers gets the top of the highest and the base of the
    lowest. Traces without salt get NaN.

    Parameters
    ----------
    cube : xr.Dataset or xr.DataArray
        A cube with ``variable`` (or that DataArray), dims ``(iline, xline,
        sample)`` in any order or ``(cdp, sample)`` for a 2D line. A Dask
        cube gives lazy surfaces (its sample axis is merged into one chunk).
    threshold : float, default 0.5
        Probability above which a sample is salt.
    variable : str, default "salt_probability"
        Variable of a Dataset ``cube``.

    Returns
    -------
    xr.Dataset
        ``top_of_salt`` and ``base_of_salt``, float64 with dims ``(iline,
        xline)`` (or ``(cdp,)``), in the unit of ``sample`` (ms or m), NaN
        where the trace has no salt; the cube's trace coordinates
        (``iline``, ``xline`` or ``cdp``, ``cdp_x``, ``cdp_y``) and
        attributes ``threshold``, ``sample_unit`` and ``source`` (when the
        cube has one).

    Raises
    ------
    InputError
        ``cube`` is not a Dataset or DataArray, or has no ``variable``.
    DataError
        The dims are not those of a cube, or ``threshold`` is not finite.

    See Also
    --------
    write_horizons : write the surfaces as text point files.
    saltvol.salt_bodies.bodies : the connected salt bodies.

    Examples
    --------
    >>> from saltvol.synth import make_volume
    >>> ds = make_volume((16, 12, 64), seed=1, period=10.0)
    >>> s = surfaces(ds["salt"].astype("float32"))
    >>> s["top_of_salt"].dims, s["top_of_salt"].attrs["units"]
    (('iline', 'xline'), 'ms')
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not np.isfinite(threshold):
        raise DataError(f"threshold must be a finite number, got {threshold!r}; pass e.g. threshold=0.5")
    prob = cube_variable(cube, variable)
    if "sample" not in prob.coords:
        prob = prob.assign_coords(sample=np.arange(prob.sizes["sample"], dtype=np.float64))
    samples = np.asarray(prob["sample"].values, dtype=np.float64)
    if getattr(prob.data, "chunks", None) is not None:
        prob = prob.chunk({"sample": -1})
    top, base = xr.apply_ufunc(
        _top_base,
        prob,
        kwargs={"samples": samples, "threshold": float(threshold)},
        input_core_dims=[["sample"]],
        output_core_dims=[[], []],
        dask="parallelized",
        output_dtypes=[np.float64, np.float64],
    )
    unit = prob["sample"].attrs.get("units") or prob.attrs.get("sample_unit")
    names = {"top_of_salt": "top of salt", "base_of_salt": "base of salt"}
    out = xr.Dataset()
    for name, arr in zip(_SURFACES, (top, base)):
        arr = arr.drop_vars("sample", errors="ignore")
        arr.attrs = {"long_name": names[name], **({"units": str(unit)} if unit else {})}
        out[name] = arr
    out.attrs["threshold"] = float(threshold)
    if unit:
        out.attrs["sample_unit"] = str(unit)
    if prob.attrs.get("source"):
        out.attrs["source"] = str(prob.attrs["source"])
    return out


def write_horizons(
    surfaces_ds: xr.Dataset,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write each surface as a text point file ``NAME.txt`` of ``iline xline value`` rows.

    One row per trace with a value (NaN traces are left out), line numbers
    as integers and the value with 3 decimals, separated by spaces, after
    one ``#`` comment line naming the columns and unit. Petrel ("General
    points/lines" ASCII with inline/crossline columns) and OpendTect
    (horizon import, "Inl Crl Z" columns, header lines starting with ``#``
    skipped) read this format. 2D surfaces give ``cdp value`` rows.

    Parameters
    ----------
    surfaces_ds : xr.Dataset
        The output of :func:`surfaces` (any Dataset of ``(iline, xline)`` or
        ``(cdp,)`` variables works: every data variable is written).
    directory : str or os.PathLike
        Folder for the files; created (with its parents) if missing.
    overwrite : bool, default False
        Replace files that exist.

    Returns
    -------
    list of pathlib.Path
        The files written, one per data variable, in the Dataset's order.

    Raises
    ------
    InputError
        ``surfaces_ds`` is not a Dataset or a variable has other dims.
    OutputExistsError
        A file exists and ``overwrite`` is False (nothing is written then).
    OutputPathError
        ``directory`` is a file or cannot be created.

    See Also
    --------
    surfaces : compute the surfaces.

    Examples
    --------
    >>> write_horizons(surfaces(cube), "horizons")  # doctest: +SKIP
    [PosixPath('horizons/top_of_salt.txt'), PosixPath('horizons/base_of_salt.txt')]
    """
    if not isinstance(surfaces_ds, xr.Dataset):
        raise InputError(f"surfaces_ds must be an xarray Dataset, got {type(surfaces_ds).__name__}; pass surfaces(cube)")
    folder = Path(os.fspath(directory)).absolute()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{str(folder)!r} is a file, not a folder; pass a folder for the horizon files")
    names = [str(n) for n in surfaces_ds.data_vars]
    for name in names:
        dims = tuple(map(str, surfaces_ds[name].dims))
        if set(dims) not in ({"iline", "xline"}, {"cdp"}):
            raise InputError(f"variable {name!r} has dims {dims!r}; horizons need (iline, xline) or (cdp,)")
    targets = [folder / f"{name}.txt" for name in names]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"horizon file(s) {existing!r} exist; pass --overwrite (overwrite=True) to replace them")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"cannot create folder {str(folder)!r} ({e}); choose another output folder") from e
    unit = surfaces_ds.attrs.get("sample_unit", "")
    for name, target in zip(names, targets):
        _write_points(surfaces_ds[name], target, name=name, unit=str(surfaces_ds[name].attrs.get("units", unit)))
    return targets


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _top_base(p: np.ndarray, *, samples: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Numpy kernel: sample value of the first and last ``p > threshold`` along the last axis, NaN if none."""
    salt = np.asarray(p) > threshold
    n = salt.shape[-1]
    has = salt.any(axis=-1)
    first = np.argmax(salt, axis=-1)
    last = n - 1 - np.argmax(salt[..., ::-1], axis=-1)
    top = np.where(has, samples[first], np.nan)
    base = np.where(has, samples[last], np.nan)
    return top, base


def _write_points(arr: xr.DataArray, target: Path, *, name: str, unit: str) -> None:
    """Write the finite points of one surface to ``target`` through a temporary file."""
    trace_dims = ("iline", "xline") if "iline" in arr.dims else ("cdp",)
    arr = arr.transpose(*trace_dims)
    values = np.asarray(arr.values, dtype=np.float64)
    ok = np.isfinite(values)
    index = np.nonzero(ok)
    columns = [np.asarray(arr[d].values, dtype=np.float64)[i] for d, i in zip(trace_dims, index)]
    table = np.column_stack([*columns, values[ok]])
    value_name = f"{name}_{unit}" if unit else name
    header = " ".join([*trace_dims, value_name])
    fmt = ["%d"] * len(trace_dims) + ["%.3f"]
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with tmp.open("w") as fh:
            fh.write(f"# {header}\n")
            np.savetxt(fh, table, fmt=fmt, delimiter=" ")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
