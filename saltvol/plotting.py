"""Render one section of a volume or a salt cube to a PNG for a quick look.

:func:`preview` loads a single inline, crossline or time/depth slice (only
the chunks that section crosses are read), draws the seismic in grey, clipped
at the 99th percentile of its absolute amplitude, and lays the salt
probability over it in colour, more opaque where the probability is higher,
with a colour bar. It draws on a bare :class:`matplotlib.figure.Figure` with
the Agg canvas, so it never touches pyplot's global state or backend and can
run in threads and on headless machines.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from saltvol.errors import DataError, InputError
from saltvol.io.cube import check_file_output, open_cube

__all__ = ["preview"]

#: Figure size in inches: the PNG is ``dpi * 10`` by ``dpi * 6`` pixels (1100 x 660 at 110 dpi).
FIGSIZE = (10.0, 6.0)
_CMAP = "inferno"
#: Opacity of the overlay at probability 1 (scaled linearly down to 0 at probability 0).
_MAX_ALPHA = 0.75
_MASK_COLOUR = (1.0, 0.15, 0.05)
_MASK_ALPHA = 0.45


def preview(
    path_or_dataset: str | os.PathLike[str] | xr.Dataset,
    output_png: str | os.PathLike[str],
    *,
    iline: int | None = None,
    xline: int | None = None,
    sample: float | None = None,
    seismic: str | os.PathLike[str] | xr.Dataset | None = None,
    threshold: float | None = None,
    variable: str = "salt_probability",
    dpi: int = 110,
    overwrite: bool = False,
) -> Path:
    """Draw one section of a salt cube over its seismic (or either alone) into a PNG.

    The section is selected by line number or sample value and loaded alone;
    the seismic is drawn in grey with a symmetric clip at the 99th percentile
    of ``|amplitude|`` and the probability on top with the ``inferno``
    colour map, its opacity rising linearly from 0 (probability 0) to 0.75
    (probability 1); without seismic the probability is drawn opaque.

    Parameters
    ----------
    path_or_dataset : path or xr.Dataset
        A salt cube (Zarr store or Dataset with ``variable``), a seismic
        volume (SEG-Y file, Zarr store or Dataset with ``amplitude``) or a
        Dataset with both. Dims ``(iline, xline, sample)`` or, for a 2D
        line, ``(cdp, sample)``.
    output_png : str or os.PathLike
        The PNG to write; its folder must exist.
    iline, xline : int, optional
        Draw this inline or crossline (a line number, not an index). 3D only.
    sample : float, optional
        Draw the time (or depth) slice nearest to this sample value, in the
        unit of the ``sample`` coordinate (ms or m). 3D only.
        Give at most one of ``iline``, ``xline`` and ``sample``; by default
        the middle inline of a 3D cube, or the line itself for a 2D line.
    seismic : path or xr.Dataset, optional
        Seismic to draw under a cube that has no ``amplitude`` (the SEG-Y
        file or Zarr volume the cube was computed from). Its line numbers
        must include the section's.
    threshold : float, optional
        Draw the salt mask ``probability > threshold`` in one colour, with
        its outline, instead of the graded probability.
    variable : str, default "salt_probability"
        Name of the probability variable.
    dpi : int, default 110
        Resolution; the image is ``10 * dpi`` x ``6 * dpi`` pixels.
    overwrite : bool, default False
        Replace an existing file at ``output_png``.

    Returns
    -------
    pathlib.Path
        The absolute path of the PNG.

    Raises
    ------
    InputError
        A path is missing or not a volume, or there is nothing to draw.
    DataError
        More than one section is given, the line or sample is out of range,
        the seismic lacks the section, or ``dpi``/``threshold`` are invalid.
    OutputExistsError
        ``output_png`` exists and ``overwrite`` is False.
    OutputPathError
        ``output_png`` is a folder or its folder is missing.

    See Also
    --------
    saltvol.pipeline.segment_to_zarr : compute the cube.

    Examples
    --------
    >>> from saltvol.synth import make_volume
    >>> ds = make_volume((16, 12, 64), seed=1, period=10.0)
    >>> ds["salt_probability"] = ds["salt"].astype("float32")
    >>> preview(ds, tmp_path / "section.png", xline=2005)  # doctest: +SKIP
    PosixPath('.../section.png')
    """
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not 10 <= dpi <= 1000:
        raise DataError(f"dpi must be an integer from 10 to 1000, got {dpi!r}; pass e.g. dpi=110")
    if threshold is not None and (isinstance(threshold, bool) or not np.isfinite(threshold)):
        raise DataError(f"threshold must be a finite number, got {threshold!r}; pass e.g. threshold=0.5")
    target = _check_output(output_png, overwrite=overwrite)
    ds = _open(path_or_dataset)
    prob = ds[variable] if variable in ds.data_vars else None
    amp = ds["amplitude"] if "amplitude" in ds.data_vars else None
    if seismic is not None:
        amp = _open(seismic).get("amplitude")
        if amp is None:
            raise InputError("seismic= has no 'amplitude' variable; pass the SEG-Y file or Zarr volume the cube came from")
    if prob is None and amp is None:
        raise InputError(
            f"nothing to draw: no {variable!r} or 'amplitude' variable (has {sorted(map(str, ds.data_vars))!r}); "
            "pass a salt cube or a seismic volume"
        )
    ref = prob if prob is not None else amp
    assert ref is not None
    section = _section(ref, iline=iline, xline=xline, sample=sample)
    p_img = _cut(prob, section, "cube") if prob is not None else None
    a_img = _cut(amp, section, "seismic") if amp is not None else None
    unit = _unit(ref, ds)
    name = _source_name(path_or_dataset, ds)
    _render(target, section, a_img, p_img, unit=unit, name=name, threshold=threshold, dpi=int(dpi))
    return target


# --------------------------------------------------------------------------- #
# inputs
# --------------------------------------------------------------------------- #


def _open(obj: str | os.PathLike[str] | xr.Dataset) -> xr.Dataset:
    """A Dataset from a Dataset, a Zarr store (xr.open_zarr) or a SEG-Y file (open_volume)."""
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=str(obj.name or "salt_probability"))
    if not isinstance(obj, (str, os.PathLike)):
        raise InputError(f"expected a path or an xarray Dataset, got {type(obj).__name__}; pass a cube or a volume")
    p = Path(os.fspath(obj))
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist; check the path (a SEG-Y file or a .zarr store)")
    if p.is_dir():
        return open_cube(p)
    from saltvol.io.zarr import open_volume

    return open_volume(p)


def _check_output(output: str | os.PathLike[str], *, overwrite: bool) -> Path:
    return check_file_output(output, overwrite=overwrite, example="preview.png")


def _unit(ref: xr.DataArray, ds: xr.Dataset) -> str | None:
    unit = ref["sample"].attrs.get("units") if "sample" in ref.coords else None
    unit = unit or ds.attrs.get("sample_unit")
    return str(unit) if unit else None


def _source_name(obj: Any, ds: xr.Dataset) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return Path(os.fspath(obj)).name
    source = ds.attrs.get("source")
    return Path(str(source)).name if source else ""


# --------------------------------------------------------------------------- #
# section selection
# --------------------------------------------------------------------------- #


class _Section:
    """Which section to draw: the dim it cuts, the value, and the two axes of the image."""

    def __init__(self, dim: str, value: Any, x_dim: str, y_dim: str) -> None:
        self.dim, self.value, self.x_dim, self.y_dim = dim, value, x_dim, y_dim


def _section(ref: xr.DataArray, *, iline: int | None, xline: int | None, sample: float | None) -> _Section:
    given = {k: v for k, v in (("iline", iline), ("xline", xline), ("sample", sample)) if v is not None}
    if len(given) > 1:
        raise DataError(f"give at most one of iline, xline and sample, got {given!r}; draw one section per call")
    dims = tuple(map(str, ref.dims))
    if dims not in (("iline", "xline", "sample"), ("cdp", "sample")):
        raise DataError(
            f"cannot draw data with dims {dims!r}; pass a cube or volume with dims (iline, xline, sample) "
            "or (cdp, sample)"
        )
    if dims[0] == "cdp":
        if given:
            raise DataError(f"a 2D line has a single section, but {given!r} was given; leave iline, xline and sample unset")
        return _Section("", None, "cdp", "sample")
    if not given:
        given = {"iline": ref["iline"].values[ref.sizes["iline"] // 2]}
    (dim, value), = given.items()
    if dim == "sample":
        s = np.asarray(ref["sample"].values, dtype=np.float64)
        half = abs(float(s[1] - s[0])) / 2 if s.size > 1 else 0.5
        if not s.min() - half <= float(value) <= s.max() + half:
            raise DataError(f"sample {value!r} is outside the data ({s.min():g} to {s.max():g}); pass a sample in that range")
        value = float(s[np.argmin(np.abs(s - float(value)))])
        return _Section("sample", value, "xline", "iline")
    lines = np.asarray(ref[dim].values)
    if isinstance(value, bool) or not np.isin(value, lines):
        raise DataError(
            f"{dim} {value!r} is not in the data ({dim}s {lines.min()} to {lines.max()}, {lines.size} lines); "
            f"pass one of its {dim} numbers"
        )
    return _Section(dim, int(value), "xline" if dim == "iline" else "iline", "sample")


def _cut(array: xr.DataArray, section: _Section, what: str) -> xr.DataArray:
    """The section of ``array`` as a (y, x) DataArray, loaded."""
    if section.dim:
        if section.dim not in array.coords:
            raise DataError(f"the {what} has no {section.dim!r} coordinate; pass data with the same dims as the cube")
        try:
            if section.dim == "sample":
                cut = array.sel(sample=section.value, method="nearest", tolerance=_tolerance(array))
            else:
                cut = array.sel({section.dim: section.value})
        except KeyError as e:
            raise DataError(
                f"the {what} has no {section.dim} {section.value!r}; pass seismic that covers the cube's section"
            ) from e
    else:
        cut = array
    return cut.transpose(section.y_dim, section.x_dim).load()


def _tolerance(array: xr.DataArray) -> float:
    s = np.asarray(array["sample"].values, dtype=np.float64)
    return abs(float(s[1] - s[0])) / 2 if s.size > 1 else 0.5


# --------------------------------------------------------------------------- #
# drawing
# --------------------------------------------------------------------------- #

_LABELS = {"iline": "inline", "xline": "crossline", "cdp": "CDP"}


def _axis_label(dim: str, unit: str | None) -> str:
    if dim != "sample":
        return _LABELS[dim]
    if unit == "m":
        return "depth (m)"
    if unit == "ms":
        return "time (ms)"
    return f"sample ({unit})" if unit else "sample"


def _extent(img: xr.DataArray, section: _Section) -> tuple[float, float, float, float]:
    """imshow extent with half-cell margins; the sample axis points down, inlines up."""
    x = np.asarray(img[section.x_dim].values, dtype=np.float64)
    y = np.asarray(img[section.y_dim].values, dtype=np.float64)
    dx = abs(x[-1] - x[0]) / (x.size - 1) / 2 if x.size > 1 else 0.5
    dy = abs(y[-1] - y[0]) / (y.size - 1) / 2 if y.size > 1 else 0.5
    left, right = x[0] - dx, x[-1] + dx
    if section.y_dim == "sample":
        return (left, right, y[-1] + dy, y[0] - dy)
    return (left, right, y[0] - dy, y[-1] + dy)


def _title(section: _Section, unit: str | None, name: str) -> str:
    if not section.dim:
        what = "2D line"
    elif section.dim == "sample":
        kind = "depth" if unit == "m" else "time"
        what = f"{kind} slice {section.value:g} {unit or ''}".rstrip()
    else:
        what = f"{_LABELS[section.dim]} {section.value}"
    return f"{name}: {what}" if name else what


def _render(
    target: Path,
    section: _Section,
    amp: xr.DataArray | None,
    prob: xr.DataArray | None,
    *,
    unit: str | None,
    name: str,
    threshold: float | None,
    dpi: int,
) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    origin = "upper" if section.y_dim == "sample" else "lower"
    ref = prob if prob is not None else amp
    assert ref is not None
    extent = _extent(ref, section)
    imshow = dict(extent=extent, origin=origin, aspect="auto", interpolation="nearest")

    if amp is not None:
        a = np.nan_to_num(np.asarray(amp.values, dtype=np.float32))
        clip = float(np.percentile(np.abs(a), 99)) if a.size else 0.0
        clip = clip if clip > 0 else 1.0
        shown = ax.imshow(a, cmap="gray", vmin=-clip, vmax=clip, **imshow)
        if prob is None:
            fig.colorbar(shown, ax=ax, label="amplitude", fraction=0.04, pad=0.02)

    if prob is not None:
        p = np.nan_to_num(np.asarray(prob.values, dtype=np.float32))
        cmap = colormaps[_CMAP]
        if threshold is not None:
            mask = p > threshold
            rgba = np.zeros((*p.shape, 4), dtype=np.float32)
            rgba[..., :3] = _MASK_COLOUR
            rgba[..., 3] = np.where(mask, _MASK_ALPHA if amp is not None else 1.0, 0.0)
            ax.imshow(rgba, **imshow)
            if mask.any() and not mask.all():
                x = np.asarray(prob[section.x_dim].values, dtype=np.float64)
                y = np.asarray(prob[section.y_dim].values, dtype=np.float64)
                ax.contour(x, y, p, levels=[threshold], colors=[_MASK_COLOUR], linewidths=1.0)
            ax.plot([], [], color=_MASK_COLOUR, linewidth=6, alpha=0.6, label=f"salt (p > {threshold:g})")
            ax.legend(loc="upper right", framealpha=0.8)
        else:
            rgba = cmap(np.clip(p, 0.0, 1.0))
            if amp is not None:
                rgba[..., 3] = _MAX_ALPHA * np.clip(p, 0.0, 1.0)
            ax.imshow(rgba, **imshow)
            mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
            fig.colorbar(mappable, ax=ax, label="salt probability", fraction=0.04, pad=0.02)

    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(_axis_label(section.x_dim, unit))
    ax.set_ylabel(_axis_label(section.y_dim, unit))
    ax.set_title(_title(section, unit, name))
    ax.ticklabel_format(useOffset=False, style="plain")
    fig.tight_layout()

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
