"""Write post-stack volumes and 2D lines to SEG-Y.

The writer streams: it walks the inlines (or CDPs) in blocks aligned with the
Dask chunks, computes one block at a time and writes its traces and headers
with segyio, so a cube larger than memory can be exported. The file is
written under a temporary name next to the target and renamed into place
only when complete, so a failed or interrupted export never leaves a
half-written file at ``path``.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import segyio
import xarray as xr

from ..errors import ByteLocationError, DataError, OutputExistsError, OutputPathError

__all__ = ["write_segy"]

logger = logging.getLogger(__name__)

#: Trace-header bytes this writer fills itself; inline/crossline may not use them.
_RESERVED_BYTES = {
    int(segyio.TraceField.SourceGroupScalar): "SourceGroupScalar",
    int(segyio.TraceField.CoordinateUnits): "CoordinateUnits",
    int(segyio.TraceField.DelayRecordingTime): "DelayRecordingTime",
    int(segyio.TraceField.TRACE_SAMPLE_COUNT): "TRACE_SAMPLE_COUNT",
    int(segyio.TraceField.TRACE_SAMPLE_INTERVAL): "TRACE_SAMPLE_INTERVAL",
    int(segyio.TraceField.CDP_X): "CDP_X",
    int(segyio.TraceField.CDP_Y): "CDP_Y",
}
_FORMAT_NAMES = {1: "4-byte IBM float", 3: "2-byte integer", 5: "4-byte IEEE float"}
#: Largest block of traces computed at once, in bytes (never less than one inline).
_BLOCK_BYTES = 64 * 2**20
#: Coordinate scalars tried in order (SEG-Y: negative = divide): centimetres, decimetres, metres.
_COORD_SCALARS = (-100, -10, 1)


def _field_widths() -> dict[int, int]:
    """Byte width (2 or 4) of every standard trace-header field, from the field offsets."""
    starts = sorted({int(v) for v in segyio.tracefield.keys.values()})
    widths = {a: b - a for a, b in zip(starts, starts[1:])}
    widths[starts[-1]] = 4
    return widths


_FIELD_WIDTHS = _field_widths()


def write_segy(
    data: xr.Dataset | xr.DataArray,
    path: str | os.PathLike[str],
    *,
    iline: int = 189,
    xline: int = 193,
    sample_format: Literal[1, 3, 5] = 5,
    overwrite: bool = False,
) -> Path:
    """Write a post-stack 3D volume or a 2D line to a SEG-Y file.

    The traces are written inline-sorted, one block of inlines at a time
    (aligned with the Dask chunks, so a lazy cube is computed piecewise),
    into a temporary file next to ``path`` that is renamed into place when
    complete.

    Parameters
    ----------
    data : xr.Dataset or xr.DataArray
        A Dataset with an ``amplitude`` variable, or the DataArray itself,
        with dims ``(iline, xline, sample)`` (3D) or ``(cdp, sample)`` (2D) in
        any order and integer ``iline``/``xline`` or ``cdp`` coordinates. The
        ``sample`` coordinate (ms, or m for depth) must be regular; its first
        value becomes the delay recording time. Optional ``cdp_x``/``cdp_y``
        coordinates (metres) go to bytes 181/185 in centimetres (scalar -100
        at byte 71; coarser if they would overflow).
    path : str or os.PathLike
        The SEG-Y file to write; its folder must exist.
    iline, xline : int, default 189, 193
        Trace-header bytes for the inline and crossline numbers (3D), as in
        :func:`segyio.open`. A 2D line gets its CDP numbers at byte 21 and
        zeros at these bytes.
    sample_format : {1, 3, 5}, default 5
        1 = IBM float, 5 = IEEE float, 3 = 16-bit integer; integers are scaled
        so that the largest magnitude becomes 32767, and the scale is written
        to the textual header.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        If the dims, coordinates, sample axis or format are not usable.
    ByteLocationError
        If ``iline``/``xline`` are not header fields, coincide, or collide
        with a field the writer fills.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    OutputPathError
        If ``path`` is a folder or its folder is missing or not writable.

    See Also
    --------
    saltvol.synth.make_volume : a synthetic volume to write.

    Examples
    --------
    >>> from saltvol.synth import make_volume
    >>> ds = make_volume((4, 5, 32))
    >>> write_segy(ds, tmp_path / "synth.sgy")  # doctest: +SKIP
    PosixPath('.../synth.sgy')
    """
    amp = _amplitude(data)
    is_3d = "iline" in amp.dims
    amp = amp.transpose(*(("iline", "xline", "sample") if is_3d else ("cdp", "sample")))
    if sample_format not in _FORMAT_NAMES:
        raise DataError(
            f"sample_format {sample_format!r} is not supported; pass 1 (IBM float), "
            "5 (IEEE float) or 3 (16-bit integer)"
        )
    _check_bytes(iline, xline, is_3d=is_3d)
    samples, interval_us, delay = _sample_axis(amp)
    target = _check_target(Path(path), overwrite=overwrite)

    if is_3d:
        lines = _integer_coord(amp, "iline")
        cross = _integer_coord(amp, "xline")
        _check_fits(lines, iline, "iline")
        _check_fits(cross, xline, "xline")
    else:
        lines = _integer_coord(amp, "cdp")
        cross = np.zeros(0, dtype=np.int64)
    coords, scalar = _scaled_coordinates(amp, is_3d=is_3d)
    scale = _int16_scale(amp) if sample_format == 3 else 1.0

    n_traces = int(np.prod(amp.shape[:-1]))
    spec = segyio.spec()
    spec.iline = iline
    spec.xline = xline
    spec.format = int(sample_format)
    spec.samples = samples
    spec.tracecount = n_traces

    text = {
        1: "SALTVOL SEG-Y EXPORT",
        2: "POST-STACK " + ("3D VOLUME, INLINE SORTED" if is_3d else "2D LINE"),
        3: (
            f"INLINE BYTE {iline}  CROSSLINE BYTE {xline}"
            if is_3d
            else f"CDP BYTE 21  (INLINE BYTE {iline} / CROSSLINE BYTE {xline} = 0)"
        ),
        4: f"CDP X/Y BYTES 181/185  SCALAR {scalar} (BYTE 71)" if coords else "NO CDP X/Y",
        5: f"SAMPLE FORMAT {sample_format} ({_FORMAT_NAMES[sample_format].upper()})",
        6: f"SAMPLES {len(samples)}  INTERVAL {interval_us} US  FIRST SAMPLE {delay}",
        40: "END TEXTUAL HEADER",
    }
    if sample_format == 3:
        text[7] = f"AMPLITUDE = INTEGER SAMPLE / {scale:.9g}"[:76]

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with segyio.create(str(tmp), spec) as f:
            f.text[0] = segyio.tools.create_text_header(text)
            f.bin.update(
                {
                    segyio.BinField.Interval: interval_us,
                    segyio.BinField.IntervalOriginal: interval_us,
                    segyio.BinField.Samples: len(samples),
                    segyio.BinField.SamplesOriginal: len(samples),
                    segyio.BinField.Format: int(sample_format),
                    segyio.BinField.SortingCode: 2 if is_3d else 1,
                    segyio.BinField.MeasurementSystem: 1,
                    segyio.BinField.SEGYRevision: 1,
                    segyio.BinField.TraceFlag: 1,
                }
            )
            base = {
                int(segyio.TraceField.TraceIdentificationCode): 1,
                int(segyio.TraceField.SourceGroupScalar): scalar,
                int(segyio.TraceField.CoordinateUnits): 1 if coords else 0,
                int(segyio.TraceField.DelayRecordingTime): delay,
                int(segyio.TraceField.TRACE_SAMPLE_COUNT): len(samples),
                int(segyio.TraceField.TRACE_SAMPLE_INTERVAL): interval_us,
            }
            _write_traces(
                f,
                amp,
                base=base,
                lines=lines,
                cross=cross,
                coords=coords,
                iline=iline,
                xline=xline,
                sample_format=sample_format,
                scale=scale,
            )
        os.replace(tmp, target)
    except PermissionError as e:
        raise OutputPathError(
            f"cannot write {str(target)!r} ({e.strerror}); choose a writable folder"
        ) from e
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info(
        "wrote %d traces x %d samples (format %d) to %s",
        n_traces,
        len(samples),
        sample_format,
        target,
    )
    return target


# ----------------------------------------------------------------------------
# checks


def _amplitude(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    if isinstance(data, xr.Dataset):
        if "amplitude" not in data.data_vars:
            raise DataError(
                f"dataset has no 'amplitude' variable (has {sorted(map(str, data.data_vars))!r}); "
                "pass the DataArray to write"
            )
        amp = data["amplitude"]
        # CDP x/y stored as data variables (not coordinates) still travel
        extra = {
            name: data[name]
            for name in ("cdp_x", "cdp_y")
            if name in data.data_vars and name not in amp.coords
        }
        data = amp.assign_coords(extra) if extra else amp
    if not isinstance(data, xr.DataArray):
        raise DataError(
            f"cannot write a {type(data).__name__!r}; pass an xarray Dataset or DataArray"
        )
    dims = set(map(str, data.dims))
    if dims not in ({"iline", "xline", "sample"}, {"cdp", "sample"}):
        raise DataError(
            f"dims {tuple(data.dims)!r} are not a post-stack layout; pass dims "
            "('iline', 'xline', 'sample') or ('cdp', 'sample')"
        )
    if data.size == 0:
        raise DataError(
            f"array of shape {data.shape!r} is empty; pass at least one trace and sample"
        )
    return data


def _check_bytes(iline: int, xline: int, *, is_3d: bool) -> None:
    for name, byte in (("iline", iline), ("xline", xline)):
        if byte not in _FIELD_WIDTHS:
            raise ByteLocationError(
                f"{name} byte {byte!r} is not the start of a SEG-Y trace-header field; "
                "pass a field offset such as 189/193 (standard) or 9/21"
            )
        if byte in _RESERVED_BYTES:
            raise ByteLocationError(
                f"{name} byte {byte!r} is where the writer puts {_RESERVED_BYTES[byte]}; "
                "pass another byte, e.g. 189/193"
            )
        if not is_3d and byte == int(segyio.TraceField.CDP):
            raise ByteLocationError(
                f"{name} byte {byte!r} holds the CDP number of a 2D line; pass another byte"
            )
    if iline == xline:
        raise ByteLocationError(
            f"iline and xline bytes are both {iline!r}; pass two different bytes, e.g. 189/193"
        )


def _check_fits(values: np.ndarray, byte: int, name: str) -> None:
    bits = 8 * _FIELD_WIDTHS[byte] - 1
    if len(values) and (values.min() < -(2**bits) or values.max() >= 2**bits):
        raise ByteLocationError(
            f"{name} numbers {int(values.min())}..{int(values.max())} do not fit the "
            f"{_FIELD_WIDTHS[byte]}-byte field at byte {byte}; pass a 4-byte field such as 189/193"
        )


def _integer_coord(amp: xr.DataArray, dim: str) -> np.ndarray:
    if dim not in amp.coords:
        raise DataError(
            f"no {dim!r} coordinate; assign the {dim} numbers with .assign_coords({dim}=...)"
        )
    values = np.asarray(amp[dim].values)
    if values.dtype.kind not in "iu":
        as_float = values.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or not np.array_equal(as_float, np.round(as_float)):
            raise DataError(
                f"{dim} coordinate {values[:5]!r}... is not integral; pass integer {dim} numbers"
            )
    values = values.astype(np.int64)
    if np.abs(values).max() >= 2**31:
        raise DataError(
            f"{dim} numbers up to {int(np.abs(values).max())} do not fit SEG-Y's 32-bit "
            "fields; renumber them"
        )
    return values


def _sample_axis(amp: xr.DataArray) -> tuple[np.ndarray, int, int]:
    """Samples, interval in microseconds (or mm) and the whole-unit delay of the first sample."""
    ns = amp.sizes["sample"]
    if "sample" not in amp.coords:
        raise DataError(
            "no 'sample' coordinate; assign the sample times in ms with .assign_coords(sample=...)"
        )
    samples = np.asarray(amp["sample"].values, dtype=np.float64)
    if ns == 1:
        raise DataError("a single sample has no interval; pass traces of at least two samples")
    if ns > 65535:
        raise DataError(f"{ns} samples per trace exceed SEG-Y's 65535; cut the sample axis")
    steps = np.diff(samples)
    dt = float(steps.mean())
    regular = np.allclose(steps, dt, rtol=1e-6, atol=1e-9)
    if not np.all(np.isfinite(samples)) or dt <= 0 or not regular:
        raise DataError(
            f"sample coordinate {samples[:4]!r}... is not regular and increasing; "
            "resample it to a fixed interval"
        )
    interval_us = int(round(dt * 1000.0))
    if not 1 <= interval_us <= 65535 or abs(interval_us - dt * 1000.0) > 1e-3 * dt * 1000.0:
        raise DataError(
            f"sample interval {dt!r} (x1000 = {dt * 1000.0!r}) does not fit SEG-Y's 16-bit "
            "interval in microseconds; pass the sample axis in ms between 0.001 and 65.535"
        )
    delay = int(round(samples[0]))
    if abs(delay - samples[0]) > 1e-6 * max(1.0, abs(samples[0])):
        logger.warning(
            "first sample %r is not a whole number; writing a delay of %d "
            "(SEG-Y stores whole units)",
            samples[0],
            delay,
        )
    if not -(2**15) <= delay < 2**15:
        raise DataError(
            f"first sample {samples[0]!r} does not fit SEG-Y's 16-bit delay; shift the sample axis"
        )
    return delay + np.arange(ns) * interval_us / 1000.0, interval_us, delay


def _check_target(path: Path, *, overwrite: bool) -> Path:
    if path.is_dir():
        raise OutputPathError(
            f"output {str(path)!r} is a folder; pass a file name such as "
            f"{str(path / 'out.sgy')!r}"
        )
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output {str(path)!r} exists; pass --overwrite (overwrite=True) to replace it"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(
            f"folder {str(parent)!r} of the output does not exist; create it first"
        )
    if not os.access(parent, os.W_OK):
        raise OutputPathError(
            f"folder {str(parent)!r} is not writable; choose another output folder"
        )
    return path


# ----------------------------------------------------------------------------
# values


def _scaled_coordinates(
    amp: xr.DataArray, *, is_3d: bool
) -> tuple[tuple[np.ndarray, np.ndarray] | None, int]:
    """CDP x/y as integers with the finest SEG-Y scalar that fits 32 bits, or None."""
    if "cdp_x" not in amp.coords or "cdp_y" not in amp.coords:
        return None, 1
    trace_dims = ("iline", "xline") if is_3d else ("cdp",)
    xy = []
    for name in ("cdp_x", "cdp_y"):
        c = amp.coords[name]
        if set(c.dims) != set(trace_dims):
            raise DataError(f"{name} has dims {c.dims!r}; pass it over {trace_dims!r}")
        xy.append(np.asarray(c.transpose(*trace_dims).values, dtype=np.float64).reshape(-1))
    biggest = max(float(np.nanmax(np.abs(v))) if v.size else 0.0 for v in xy)
    for scalar in _COORD_SCALARS:
        factor = -scalar if scalar < 0 else 1.0 / scalar
        if biggest * factor < 2**31 - 1:
            out = tuple(np.rint(np.nan_to_num(v) * factor).astype(np.int64) for v in xy)
            if scalar != _COORD_SCALARS[0]:
                logger.info("CDP coordinates too large for centimetres; using scalar %d", scalar)
            return out, scalar  # type: ignore[return-value]
    raise DataError(
        f"CDP coordinates up to {biggest!r} do not fit SEG-Y's 32-bit fields; shift their origin"
    )


def _int16_scale(amp: xr.DataArray) -> float:
    """Factor mapping the largest |amplitude| to 32767 (one streaming pass over the data)."""
    peak = float(np.abs(amp).max(skipna=True).values)
    if not np.isfinite(peak) or peak == 0.0:
        return 1.0
    return 32767.0 / peak


def _blocks(amp: xr.DataArray) -> list[slice]:
    """Slices along the first dim: Dask chunks, split further to bound memory."""
    n = amp.shape[0]
    per_line = max(1, int(np.prod(amp.shape[1:])) * 4)
    limit = max(1, _BLOCK_BYTES // per_line)
    bounds = [0]
    chunks = amp.chunks[0] if amp.chunks else (n,)
    for size in chunks:
        start = bounds[-1]
        # split a chunk evenly into pieces of at most `limit` lines
        pieces = -(-size // limit)
        bounds.extend(start + round(size * (p + 1) / pieces) for p in range(pieces))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _write_traces(
    f: segyio.SegyFile,
    amp: xr.DataArray,
    *,
    base: dict[int, int],
    lines: np.ndarray,
    cross: np.ndarray,
    coords: tuple[np.ndarray, np.ndarray] | None,
    iline: int,
    xline: int,
    sample_format: int,
    scale: float,
) -> None:
    is_3d = amp.ndim == 3
    per_line = amp.shape[1] if is_3d else 1
    cdp_field = int(segyio.TraceField.CDP)
    seq_line = int(segyio.TraceField.TRACE_SEQUENCE_LINE)
    seq_file = int(segyio.TraceField.TRACE_SEQUENCE_FILE)
    x_field, y_field = int(segyio.TraceField.CDP_X), int(segyio.TraceField.CDP_Y)
    n_bad = 0
    blocks = _blocks(amp)
    for number, sl in enumerate(blocks, start=1):
        logger.debug("writing lines %d:%d (block %d of %d)", sl.start, sl.stop, number, len(blocks))
        block = np.asarray(amp[sl].values)
        traces = block.reshape(-1, block.shape[-1])
        bad = ~np.isfinite(traces)
        if bad.any():
            n_bad += int(bad.sum())
            traces = np.where(bad, 0.0, traces)
        # always a private copy: segyio converts (IBM, byte order) in place,
        # which would otherwise change the caller's array
        if sample_format == 3:
            traces = np.clip(np.rint(traces * scale), -32767, 32767).astype(np.int16)
        else:
            traces = np.array(traces, dtype=np.float32, order="C", copy=True)
        t0 = sl.start * per_line
        for n, trace in enumerate(traces):
            t = t0 + n
            header = dict(base)
            header[seq_line] = t + 1
            header[seq_file] = t + 1
            if coords is not None:
                header[x_field] = int(coords[0][t])
                header[y_field] = int(coords[1][t])
            if is_3d:
                header[cdp_field] = t + 1
                header[iline] = int(lines[t // per_line])
                header[xline] = int(cross[t % per_line])
            else:
                header[cdp_field] = int(lines[t])
                header[iline] = 0
                header[xline] = 0
            f.header[t] = header
            f.trace[t] = trace
    if n_bad:
        logger.warning("%d NaN/inf samples written as 0", n_bad)
