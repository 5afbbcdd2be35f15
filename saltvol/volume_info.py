"""Describe the geometry and health of a SEG-Y file or a Zarr volume or cube.

:func:`info` reads headers and metadata only (never the samples, except the
``live`` grid of a Zarr store) and returns a dict of plain JSON types: line
ranges and steps, the sample axis, the sample format, the byte locations, dead
traces, the coordinate extent, the size on disk, a suggested chunking and, for
a salt cube, its provenance. :func:`format_info` lays that dict out as text.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from saltvol.errors import InputError
from saltvol.geometry import Geometry

__all__ = ["format_info", "info"]

_MiB = 1 << 20
#: Traces per side of a suggested chunk, and its size cap (the rule of ``saltvol convert``).
_CHUNK_SIDE = 64
_CHUNK_TRACES_2D = 4096
_MAX_CHUNK_BYTES = 32 * _MiB

_FORMAT_NAMES = {
    1: "4-byte IBM float",
    2: "4-byte signed integer",
    3: "2-byte signed integer",
    5: "4-byte IEEE float",
    6: "8-byte IEEE float",
    8: "1-byte signed integer",
    9: "8-byte signed integer",
    10: "4-byte unsigned integer",
    11: "2-byte unsigned integer",
    12: "8-byte unsigned integer",
    16: "1-byte unsigned integer",
}
#: Attributes that are data (or too long) rather than provenance.
_NOT_PROVENANCE = frozenset({"text_header"})
_ZARR_MARKERS = ("zarr.json", ".zgroup")


def info(path: str | os.PathLike[str], *, iline: int | None = None, xline: int | None = None) -> dict[str, Any]:
    """Report the geometry and health of a SEG-Y file or a Zarr store.

    A SEG-Y file is scanned with :func:`~saltvol.io.segy.scan_segy` (headers
    only); a Zarr store (a folder with ``zarr.json``) is opened lazily with
    :func:`xarray.open_zarr` and described from its coordinates, its ``live``
    grid and its attributes. Every value is a plain JSON type (``int``,
    ``float``, ``str``, ``bool``, ``None``, lists and dicts), so the result
    can go straight to :func:`json.dumps`.

    Parameters
    ----------
    path : str or os.PathLike
        A SEG-Y file, or a Zarr store written by ``saltvol convert``
        (``amplitude``) or ``saltvol segment`` (``salt_probability``).
    iline, xline : int, optional
        Inline/crossline byte locations of a SEG-Y file; default None:
        autodetect. Ignored for Zarr stores.

    Returns
    -------
    dict
        ``path``, ``format`` ("segy" or "zarr"), ``content`` ("seismic" or
        "salt_probability"), ``kind`` ("3d" or "2d"), ``traces`` (grid cells),
        ``live_traces``, ``dead_traces``, ``duplicate_traces`` (always 0:
        duplicates make the scan fail), one range dict per grid dimension
        (``iline`` and ``xline``, or ``cdp`` and ``line`` for a 2D line) with
        ``min``, ``max``, ``count``, ``step`` and ``missing`` (numbers
        absent between ``min`` and ``max`` at that step), ``samples``
        (``count``, ``interval``, ``first``, ``last``, ``unit``),
        ``sample_format`` (``code``, ``name``; for Zarr the code is None and
        the name the dtype), ``byte_locations`` (``iline``, ``xline``,
        ``autodetected``; None values if unknown), ``sorting``,
        ``coordinates`` (``cdp_x``/``cdp_y`` ``min``/``max``, or None),
        ``file_size`` (bytes on disk), ``chunks`` (suggested, dim -> size),
        and for Zarr ``store_chunks`` (the stored chunks) and ``provenance``
        (the store's attributes except the text header).

    Raises
    ------
    InputError
        The path is missing, or a folder that is not a Zarr store, or a store
        without ``amplitude`` or ``salt_probability``.
    SegyFormatError, ByteLocationError, DuplicateTraceError
        As for :func:`~saltvol.io.segy.scan_segy`; duplicated traces are an
        error, not a count.

    See Also
    --------
    format_info : the same report as text.

    Examples
    --------
    >>> d = info("survey.sgy")  # doctest: +SKIP
    >>> d["kind"], d["iline"]["count"], d["samples"]["count"]  # doctest: +SKIP
    ('3d', 23, 75)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a str or os.PathLike, got {type(path).__name__}; pass a SEG-Y file or a Zarr store")
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist; check the path (a SEG-Y file or a .zarr store)")
    if p.is_dir():
        if not any((p / m).is_file() for m in _ZARR_MARKERS):
            raise InputError(f"{str(p)!r} is a folder without zarr.json, so not a Zarr store; pass a SEG-Y file or a store")
        return _jsonable(_zarr_info(p))
    from saltvol.io.segy import scan_segy

    return _jsonable(_segy_info(scan_segy(p, iline=iline, xline=xline)))


def format_info(d: Mapping[str, Any]) -> str:
    """Lay out the dict of :func:`info` as human-readable text, one fact per line.

    Parameters
    ----------
    d : Mapping
        The output of :func:`info`.

    Returns
    -------
    str
        Aligned ``label: value`` lines, without a trailing newline.

    Examples
    --------
    >>> print(format_info(info("survey.sgy")))  # doctest: +SKIP
    file            survey.sgy (SEG-Y, 165.1 kB)
    ...
    """
    lines: list[tuple[str, str]] = []
    fmt = "SEG-Y" if d.get("format") == "segy" else "Zarr"
    lines.append(("file", f"{d.get('path')} ({fmt}, {_size(d.get('file_size'))})"))
    content = d.get("content", "seismic")
    lines.append(("kind", f"{str(d.get('kind', '?')).upper()} {'salt-probability cube' if content == 'salt_probability' else 'seismic'}"))
    if d.get("kind") == "2d":
        if d.get("line") is not None:
            lines.append(("line", str(d["line"])))
        lines.append(("cdp", _range_text(d.get("cdp"), "traces")))
    else:
        lines.append(("inlines", _range_text(d.get("iline"))))
        lines.append(("crosslines", _range_text(d.get("xline"))))
    s = d.get("samples") or {}
    unit = s.get("unit") or ""
    lines.append(
        ("samples", f"{s.get('count')} x {_num(s.get('interval'))} {unit}, {_num(s.get('first'))} to {_num(s.get('last'))} {unit}")
    )
    sf = d.get("sample_format") or {}
    code = sf.get("code")
    lines.append(("sample format", f"{code} ({sf.get('name')})" if code is not None else str(sf.get("name"))))
    b = d.get("byte_locations") or {}
    if b.get("iline") is not None:
        how = "autodetected" if b.get("autodetected") else "given"
        lines.append(("byte locations", f"iline {b.get('iline')}, xline {b.get('xline')} ({how})"))
    lines.append(
        (
            "traces",
            f"{d.get('live_traces')} live, {d.get('dead_traces')} dead of {d.get('traces')} cells; "
            f"{d.get('duplicate_traces', 0)} duplicated",
        )
    )
    if d.get("sorting"):
        lines.append(("sorting", str(d["sorting"])))
    c = d.get("coordinates")
    if c:
        for axis in ("cdp_x", "cdp_y"):
            lines.append((axis, f"{c[axis]['min']:.2f} to {c[axis]['max']:.2f}"))
    else:
        lines.append(("coordinates", "none"))
    if d.get("store_chunks"):
        lines.append(("stored chunks", _chunks_text(d["store_chunks"])))
    lines.append(("suggested chunks", _chunks_text(d.get("chunks") or {})))
    provenance = d.get("provenance") or {}
    if provenance:
        lines.append(("provenance", ""))
    for key, value in provenance.items():
        lines.append((f"  {key}", _num(value) if isinstance(value, float) else str(value)))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in lines)


# --------------------------------------------------------------------------- #
# SEG-Y
# --------------------------------------------------------------------------- #


def _segy_info(g: Geometry) -> dict[str, Any]:
    n_live = int(np.count_nonzero(g.trace_index >= 0))
    out: dict[str, Any] = {
        "path": g.path,
        "format": "segy",
        "content": "seismic",
        "kind": g.kind,
        "traces": int(g.trace_index.size),
        "live_traces": n_live,
        "dead_traces": int(g.trace_index.size - n_live),
        "duplicate_traces": 0,
        "n_traces_in_file": int(g.n_traces),
    }
    if g.kind == "2d":
        out["line"] = int(g.ilines[0])
        out["cdp"] = _line_range(g.xlines)
    else:
        out["iline"] = _line_range(g.ilines)
        out["xline"] = _line_range(g.xlines)
    out["samples"] = _sample_axis(g.samples, g.sample_unit)
    out["sample_format"] = {"code": int(g.sample_format), "name": _FORMAT_NAMES.get(int(g.sample_format), "unknown")}
    out["byte_locations"] = {
        "iline": int(g.iline_byte),
        "xline": int(g.xline_byte),
        "autodetected": bool(g.byte_locations_autodetected),
    }
    out["sorting"] = g.sorting
    out["coordinates"] = _extent(g.cdp_x, g.cdp_y)
    out["file_size"] = int(g.file_size or os.path.getsize(g.path))
    grid_shape = (g.shape[1],) if g.kind == "2d" else g.shape
    out["chunks"] = _suggest_chunks(g.kind, grid_shape, g.n_samples)
    return out


# --------------------------------------------------------------------------- #
# Zarr
# --------------------------------------------------------------------------- #


def _zarr_info(p: Path) -> dict[str, Any]:
    import xarray as xr

    try:
        with warnings.catch_warnings():  # a store without consolidated metadata is fine here
            warnings.simplefilter("ignore", RuntimeWarning)
            ds = xr.open_zarr(p, chunks={})
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot open Zarr store {str(p)!r} ({type(e).__name__}: {e}); check the path") from e
    name = next((v for v in ("salt_probability", "amplitude") if v in ds.data_vars), None)
    if name is None:
        raise InputError(
            f"Zarr store {str(p)!r} has neither 'amplitude' nor 'salt_probability' "
            f"(has {sorted(map(str, ds.data_vars))!r}); give a store written by saltvol"
        )
    var = ds[name]
    dims = tuple(map(str, var.dims))
    if dims not in (("iline", "xline", "sample"), ("cdp", "sample")):
        raise InputError(
            f"Zarr store {str(p)!r}: {name} has dims {dims!r}, not (iline, xline, sample) or (cdp, sample); "
            "give a store written by saltvol"
        )
    kind = "2d" if dims[0] == "cdp" else "3d"
    grid_dims = dims[:-1]
    grid_shape = tuple(int(var.sizes[d]) for d in grid_dims)
    n_cells = int(np.prod(grid_shape))
    if "live" in ds.variables and tuple(ds["live"].dims) == grid_dims:
        n_live = int(np.count_nonzero(ds["live"].values))
    else:
        n_live = n_cells
    out: dict[str, Any] = {
        "path": str(p.absolute()),
        "format": "zarr",
        "content": "salt_probability" if name == "salt_probability" else "seismic",
        "variable": name,
        "kind": kind,
        "traces": n_cells,
        "live_traces": n_live,
        "dead_traces": n_cells - n_live,
        "duplicate_traces": 0,
    }
    if kind == "2d":
        line = ds.attrs.get("line")
        out["line"] = int(line) if isinstance(line, (int, np.integer)) else None
    for d in grid_dims:
        out[d] = _line_range(np.asarray(ds[d].values)) if d in ds.coords else None
    unit = ds["sample"].attrs.get("units") if "sample" in ds.coords else None
    unit = unit or ds.attrs.get("sample_unit") or "ms"
    samples = np.asarray(ds["sample"].values, dtype=np.float64) if "sample" in ds.coords else np.arange(var.sizes["sample"], dtype=np.float64)
    out["samples"] = _sample_axis(samples, str(unit))
    fmt = ds.attrs.get("sample_format")
    out["sample_format"] = {"code": None, "name": str(var.dtype)}
    if isinstance(fmt, (int, np.integer)):
        out["source_sample_format"] = {"code": int(fmt), "name": _FORMAT_NAMES.get(int(fmt), "unknown")}
    ib, xb = ds.attrs.get("iline_byte"), ds.attrs.get("xline_byte")
    auto = ds.attrs.get("byte_locations_autodetected")
    out["byte_locations"] = {
        "iline": int(ib) if isinstance(ib, (int, np.integer)) else None,
        "xline": int(xb) if isinstance(xb, (int, np.integer)) else None,
        "autodetected": bool(auto) if auto is not None else None,
    }
    out["sorting"] = ds.attrs.get("sorting")
    if "cdp_x" in ds.coords and "cdp_y" in ds.coords:
        out["coordinates"] = _extent(np.asarray(ds["cdp_x"].values, dtype=np.float64), np.asarray(ds["cdp_y"].values, dtype=np.float64))
    else:
        out["coordinates"] = None
    out["file_size"] = _folder_size(p)
    out["chunks"] = _suggest_chunks(kind, grid_shape, int(var.sizes["sample"]))
    stored = var.encoding.get("chunks") or var.encoding.get("preferred_chunks")
    if isinstance(stored, Mapping):
        out["store_chunks"] = {d: int(stored[d]) for d in dims if d in stored}
    elif stored:
        out["store_chunks"] = {d: int(c) for d, c in zip(dims, stored)}
    else:
        out["store_chunks"] = None
    out["provenance"] = {k: v for k, v in ds.attrs.items() if k not in _NOT_PROVENANCE}
    return out


def _folder_size(p: Path) -> int:
    total = 0
    for root, _, files in os.walk(p):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------- #
# shared pieces
# --------------------------------------------------------------------------- #


def _line_range(values: np.ndarray) -> dict[str, Any]:
    """min, max, count, step (gcd of the gaps) and missing numbers of a sorted line axis."""
    v = np.unique(np.asarray(values).astype(np.int64))
    if v.size == 0:
        return {"min": None, "max": None, "count": 0, "step": None, "missing": 0}
    step = int(np.gcd.reduce(np.diff(v))) if v.size > 1 else 1
    span = (int(v[-1]) - int(v[0])) // step + 1 if step else v.size
    return {"min": int(v[0]), "max": int(v[-1]), "count": int(v.size), "step": step, "missing": int(span - v.size)}


def _sample_axis(samples: np.ndarray, unit: str) -> dict[str, Any]:
    s = np.asarray(samples, dtype=np.float64)
    interval = float(np.median(np.diff(s))) if s.size > 1 else None
    return {
        "count": int(s.size),
        "interval": interval,
        "first": float(s[0]) if s.size else None,
        "last": float(s[-1]) if s.size else None,
        "unit": unit,
    }


def _extent(x: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """Min/max of the CDP coordinates, or None when there are none (all NaN or all zero)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any() or (not np.any(x[ok]) and not np.any(y[ok])):
        return None
    return {
        "cdp_x": {"min": float(x[ok].min()), "max": float(x[ok].max())},
        "cdp_y": {"min": float(y[ok].min()), "max": float(y[ok].max())},
    }


def _suggest_chunks(kind: str, grid_shape: tuple[int, ...], n_samples: int) -> dict[str, int]:
    """64 x 64 traces (4096 for a 2D line) x all samples, shrunk so that a float32 chunk stays <= 32 MiB."""
    trace_bytes = 4 * max(1, n_samples)
    if kind == "2d":
        traces = max(1, min(_CHUNK_TRACES_2D, _MAX_CHUNK_BYTES // trace_bytes, grid_shape[0]))
        return {"cdp": int(traces), "sample": int(n_samples)}
    side = _CHUNK_SIDE
    if side * side * trace_bytes > _MAX_CHUNK_BYTES:
        side = max(1, math.isqrt(_MAX_CHUNK_BYTES // trace_bytes))
    return {"iline": int(min(side, grid_shape[0])), "xline": int(min(side, grid_shape[1])), "sample": int(n_samples)}


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, arrays and tuples to lists, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "size unknown"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def _num(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:.6g}" if not v.is_integer() or abs(v) >= 1e15 else str(int(v))
    return str(v)


def _range_text(r: Mapping[str, Any] | None, noun: str = "lines") -> str:
    if not r or not r.get("count"):
        return "none"
    text = f"{r['min']} to {r['max']} step {r['step']} ({r['count']} {noun}"
    if r.get("missing"):
        text += f", {r['missing']} missing"
    return text + ")"


def _chunks_text(chunks: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in chunks.items()) or "none"
