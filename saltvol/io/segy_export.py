"""Export a salt-probability cube to SEG-Y with the headers of its source file.

:func:`export_segy` writes one trace per trace of the source ("like") file,
in the same order, and copies every header byte for byte: the 3200-byte
textual header, the 400-byte binary header, any extended textual headers and
each 240-byte trace header. Only the samples change: they become the cube's
value at the trace's (inline, crossline), or CDP, as 4-byte IEEE floats, so
the binary header's sample format code (bytes 3225-3226) is set to 5. That is
the one header field that may differ from the source. A source with other
sample sizes (2-byte integers, format 3, for example) gives an output with a
different trace length but still the same headers.

How it writes. The source trace headers are read raw through a
:class:`numpy.memmap` with the source's trace stride, and the output is a
memory-mapped file of ``(240 + 4 * n_samples)``-byte records: headers are
copied in blocks of traces, and the samples are written one block of inlines
(or CDPs) of the cube at a time, scattered to the traces' positions through
the survey's trace grid, so any trace sorting works and only one block of the
cube is in memory. Everything goes to a hidden ``.NAME.RANDOM.partial`` file
next to the output that is renamed into place once complete.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from saltvol.errors import DataError, OutputExistsError, OutputPathError
from saltvol.geometry import Geometry
from saltvol.io.cube import cube_variable
from saltvol.io.segy import _check_path, _read_layout, scan_segy

__all__ = ["export_segy"]

logger = logging.getLogger(__name__)

_TRACE_HEADER_SIZE = 240
#: Offset of the binary header's sample format code (bytes 3225-3226, 1-based).
_FORMAT_OFFSET = 3224
_IEEE_FLOAT = 5
#: Cube values computed and written at once, in bytes (at least one inline or CDP).
_BLOCK_BYTES = 64 * 2**20
#: Trace headers copied at once.
_HEADER_BLOCK = 1 << 16


def export_segy(
    cube: xr.Dataset | xr.DataArray | str | os.PathLike[str],
    like: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    variable: str = "salt_probability",
    iline: int | None = None,
    xline: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a cube as a SEG-Y file with exactly the headers of its source SEG-Y.

    The source ``like`` is scanned (:func:`~saltvol.io.segy.scan_segy`) to map
    each of its traces to a cell of the cube; the output holds the same
    traces in the same order, with the source's textual, binary, extended and
    trace headers copied raw and the cube's values as big-endian IEEE float32
    samples (format 5). Dead cells of an irregular survey have no trace in the
    source, so none in the output either.

    Parameters
    ----------
    cube : xr.Dataset, xr.DataArray or path
        The cube: a Dataset holding ``variable``, that DataArray itself, or
        the path of a Zarr store (written by
        :func:`~saltvol.pipeline.segment_to_zarr`). Dims ``(iline, xline,
        sample)`` for a 3D survey or ``(cdp, sample)`` for a 2D line, in any
        order, with coordinates equal to the source's line and CDP numbers
        and as many samples as its traces.
    like : str or os.PathLike
        The SEG-Y file the cube was computed from; its headers are copied.
    output : str or os.PathLike
        The SEG-Y file to write; its folder must exist.
    threshold : float, optional
        If given, write 1.0 where the value is above ``threshold`` and 0.0
        elsewhere (NaN gives 0.0) instead of the values themselves.
    variable : str, default "salt_probability"
        Variable of a Dataset ``cube`` to write.
    iline, xline : int, optional
        Inline/crossline byte locations of ``like``. Default None: the
        ``iline_byte``/``xline_byte`` attributes of a 3D cube if it has them,
        else autodetection.
    overwrite : bool, default False
        Replace an existing file at ``output``.
    progress : callable, optional
        ``progress(traces_done, traces_total)``, called after each block.

    Returns
    -------
    pathlib.Path
        The absolute path of the written file.

    Raises
    ------
    InputError
        ``cube`` has no ``variable`` or is not a Zarr store; ``like`` is
        missing or not SEG-Y (and the errors of
        :func:`~saltvol.io.segy.scan_segy`).
    DataError
        The cube's dims, line numbers, CDP numbers or samples differ from the
        source's, or ``threshold`` is not a finite number.
    OutputExistsError
        ``output`` exists and ``overwrite`` is False.
    OutputPathError
        ``output`` is a folder, is the source file itself, or its folder is
        missing or not writable.

    See Also
    --------
    saltvol.io.segy_write.write_segy : write a volume with new headers.
    saltvol.pipeline.segment_to_zarr : compute the cube.

    Examples
    --------
    >>> from saltvol.synth import make_volume
    >>> from saltvol.io.segy_write import write_segy
    >>> ds = make_volume((8, 6, 32), seed=0, period=8.0)
    >>> src = write_segy(ds, tmp_path / "synth.sgy")  # doctest: +SKIP
    >>> cube = ds["salt"].astype("float32").rename("salt_probability")
    >>> export_segy(cube, src, tmp_path / "salt.sgy", threshold=0.5)  # doctest: +SKIP
    PosixPath('.../salt.sgy')
    """
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not np.isfinite(threshold):
            raise DataError(f"threshold must be a finite number, got {threshold!r}; pass e.g. threshold=0.5")
        threshold = float(threshold)
    prob = cube_variable(cube, variable)
    source = _check_path(like)
    layout = _read_layout(source)
    if iline is None and xline is None and prob.ndim == 3:
        iline, xline = _int_attr(prob, "iline_byte"), _int_attr(prob, "xline_byte")
        if iline is None or xline is None:
            iline = xline = None
    geometry = scan_segy(source, iline=iline, xline=xline)
    grid = _match(prob, geometry)
    target = _check_output(output, source, overwrite=overwrite)

    n_samples = geometry.n_samples
    src_type = np.dtype([("header", f"V{_TRACE_HEADER_SIZE}"), ("data", f"V{n_samples * layout.bytes_per_sample}")])
    out_type = np.dtype([("header", f"V{_TRACE_HEADER_SIZE}"), ("data", ">f4", (n_samples,))])
    n_traces = layout.n_traces
    with source.open("rb") as fh:
        head = bytearray(fh.read(layout.trace0))
    head[_FORMAT_OFFSET : _FORMAT_OFFSET + 2] = _IEEE_FLOAT.to_bytes(2, "big", signed=True)

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with tmp.open("wb") as fh:
            fh.write(head)
            fh.truncate(layout.trace0 + n_traces * out_type.itemsize)
        src = np.memmap(source, dtype=src_type, mode="r", offset=layout.trace0, shape=(n_traces,))
        out = np.memmap(tmp, dtype=out_type, mode="r+", offset=layout.trace0, shape=(n_traces,))
        for start in range(0, n_traces, _HEADER_BLOCK):
            stop = min(start + _HEADER_BLOCK, n_traces)
            out["header"][start:stop] = src["header"][start:stop]
        del src
        _write_samples(out["data"], prob, grid, threshold=threshold, progress=progress)
        out.flush()
        del out
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote %d traces of %d samples to %s", n_traces, n_samples, target)
    return target


# --------------------------------------------------------------------------- #
# checks
# --------------------------------------------------------------------------- #


def _int_attr(prob: xr.DataArray, name: str) -> int | None:
    value = prob.attrs.get(name)
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0 else None


def _match(prob: xr.DataArray, geometry: Geometry) -> np.ndarray:
    """The trace grid matching the cube's grid dims; DataError if the cube does not fit the source."""
    name = os.path.basename(geometry.path)
    if (prob.ndim == 2) != (geometry.kind == "2d"):
        cube_kind = "a 2D line (cdp, sample)" if prob.ndim == 2 else "a 3D cube (iline, xline, sample)"
        raise DataError(
            f"the cube is {cube_kind} but {name!r} is a {geometry.kind.upper()} survey; "
            "pass the SEG-Y file the cube was computed from"
        )
    pairs = [("cdp", geometry.xlines)] if geometry.kind == "2d" else [("iline", geometry.ilines), ("xline", geometry.xlines)]
    for dim, expected in pairs:
        if dim not in prob.coords:
            raise DataError(f"the cube has no {dim!r} coordinate; keep the coordinates segment_to_zarr writes")
        got = np.asarray(prob[dim].values)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise DataError(
                f"the cube's {dim} numbers ({_describe(got)}) differ from those of {name!r} "
                f"({_describe(expected)}); pass the SEG-Y file the cube was computed from"
            )
    ns = prob.sizes["sample"]
    if ns != geometry.n_samples:
        raise DataError(
            f"the cube has {ns} samples per trace but {name!r} has {geometry.n_samples}; "
            "pass the SEG-Y file the cube was computed from"
        )
    if "sample" in prob.coords:
        got = np.asarray(prob["sample"].values, dtype=np.float64)
        if not np.allclose(got, geometry.samples, rtol=1e-6, atol=1e-6):
            raise DataError(
                f"the cube's samples ({_describe(got)}) differ from those of {name!r} "
                f"({_describe(geometry.samples)}); pass the SEG-Y file the cube was computed from"
            )
    return geometry.trace_index[0] if geometry.kind == "2d" else geometry.trace_index


def _describe(values: np.ndarray) -> str:
    if values.size == 0:
        return "none"
    return f"{values.size} from {values.min():g} to {values.max():g}"


def _check_output(output: str | os.PathLike[str], source: Path, *, overwrite: bool) -> Path:
    """Absolute output path; raise unless it can be written (or replaced, with ``overwrite``)."""
    if not isinstance(output, (str, os.PathLike)):
        raise OutputPathError(f"output must be a path, got {type(output).__name__}; pass e.g. 'salt.sgy'")
    p = Path(os.fspath(output)).absolute()
    if p.is_dir():
        raise OutputPathError(f"output {str(p)!r} is a folder; pass a file name such as {str(p / 'salt.sgy')!r}")
    if p.exists():
        if os.path.samefile(p, source):
            raise OutputPathError(f"output {str(p)!r} is the source SEG-Y file itself; choose another output path")
        if not overwrite:
            raise OutputExistsError(f"output {str(p)!r} exists; pass --overwrite (overwrite=True) to replace it")
    if not p.parent.is_dir():
        raise OutputPathError(f"folder {str(p.parent)!r} of the output does not exist; create it first")
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"folder {str(p.parent)!r} is not writable; choose another output folder")
    return p


# --------------------------------------------------------------------------- #
# samples
# --------------------------------------------------------------------------- #


def _write_samples(
    out: np.ndarray,
    prob: xr.DataArray,
    grid: np.ndarray,
    *,
    threshold: float | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Write the cube into ``out[trace]`` block by block along the first grid axis."""
    n_rows = grid.shape[0]
    row_bytes = 4 * prob.sizes["sample"] * int(np.prod(grid.shape[1:], dtype=np.int64))
    rows = max(1, _BLOCK_BYTES // max(1, row_bytes))
    chunks = getattr(prob.data, "chunks", None)
    if chunks:  # whole Dask chunks per block, so each chunk is computed once
        step = int(chunks[0][0])
        rows = max(step, rows // step * step)
    total = int(np.count_nonzero(grid >= 0))
    done = 0
    for start in range(0, n_rows, rows):
        stop = min(start + rows, n_rows)
        cells = grid[start:stop]
        live = cells >= 0
        if not live.any():
            continue
        values = np.asarray(prob[start:stop].values)
        values = (values > threshold).astype(np.float32) if threshold is not None else values.astype(np.float32, copy=False)
        out[cells[live]] = values[live]
        done += int(np.count_nonzero(live))
        if progress is not None:
            progress(done, total)
