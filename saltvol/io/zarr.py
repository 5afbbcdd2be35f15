"""Convert SEG-Y to Zarr v3 volumes and open either kind as the same Dataset.

:func:`convert` streams a post-stack SEG-Y file into a Zarr v3 store, one
block of chunk rows at a time, and :func:`open_volume` opens a Zarr store or a
SEG-Y file as the Dataset :func:`~saltvol.io.segy.open_segy` gives:
``amplitude`` (float32), ``live`` (bool), the ``iline``/``xline`` (or ``cdp``),
``sample``, ``cdp_x``/``cdp_y`` coordinates and the header attributes.

How :func:`convert` writes. xarray writes the coordinates, ``live`` and the
attributes; zarr creates the empty ``amplitude`` array and consolidates the
metadata into the root ``zarr.json``. The amplitude chunks are then written
block by block: for an inline-sorted file (the common case), a block of whole
inlines (one chunk row, 64 inlines by default) is read with one ``segyio``
call on the file, memory-mapped for that block only; other sortings read the
same blocks through the Dask graph of :func:`~saltvol.io.segy.open_segy`.
A small thread pool compresses each block's chunks with numcodecs and writes
them as the files zarr's chunk-key encoding names, while the main thread
reads the next block, so memory holds about two blocks (at most 256 MiB
each), whatever the size of the volume. Writing the chunk files directly
skips zarr's per-write async machinery, which costs more than the
compression itself at this size; the bytes are those zarr writes for the
same codecs (edge chunks padded with the fill value 0, all-zero chunks left
out, as zarr does by default). Everything goes to a hidden sibling
``.{name}.{random}.partial`` that is renamed into place only when complete.

Default chunks. ``(64, 64, all samples)``: an inline or crossline section
then crosses one row of chunks of 64 traces, a 64 x 64 trace patch (a map
view or a model tile) few chunks, and a chunk of 500 samples holds 8 MiB.
For long traces the 64 x 64 patch shrinks (square) so that a chunk stays at
or below 32 MiB (16 MiB at 1000 samples, 32 MiB at 2000); 2D lines get
4096 traces per chunk under the same cap.

Compression. Blosc with LZ4, level 5 and byte shuffle (zarr v2's default
codec, in zarr v3's core codec set): on the 200 MB synthetic of
``benchmarks/`` it encodes about 3x faster than Zstd level 0 (zarr v3's
default) and gives smaller chunks (85 % of the raw size against 92 %), since
the shuffle lines up the exponent bytes of the floats.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask.array as da
import numcodecs
import numpy as np
import segyio
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from saltvol import __version__
from saltvol.errors import (
    InputError,
    OutputExistsError,
    OutputPathError,
    SaltvolError,
    SegyFormatError,
)
from saltvol.geometry import Geometry
from saltvol.io.cube import move_into_place
from saltvol.io.segy import _dataset_from_geometry, open_segy, scan_segy

__all__ = ["convert", "open_volume"]

logger = logging.getLogger(__name__)

_MiB = 1 << 20
#: Traces per side of a default chunk (all samples in one chunk).
_CHUNK_SIDE = 64
#: Traces per default chunk of a 2D line.
_CHUNK_TRACES_2D = 4096
#: A default chunk holds at most this many bytes (the trace patch shrinks for long traces).
_MAX_CHUNK_BYTES = 32 * _MiB
#: A block read in one go holds at most this many bytes (but always at least one chunk).
_BLOCK_BYTES = 256 * _MiB
#: Blocks read ahead of the chunk encoders; memory is about (1 + this) blocks.
_READ_AHEAD = 1
#: Compression of the amplitude chunks: "blosc-lz4" (default) or "zstd" (zarr v3's default).
_COMPRESSION = "blosc-lz4"

_ALL_DIMS = ("iline", "xline", "cdp", "sample")
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")
_SEGY_SUFFIXES = (".sgy", ".segy")
_SEGYIO_ERRORS = (RuntimeError, OSError, ValueError, IndexError, KeyError, TypeError)


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #


def convert(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    iline: int | None = None,
    xline: int | None = None,
    chunks: Mapping[str, int | None] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Convert a post-stack SEG-Y file into a Zarr v3 store, streaming.

    The headers are scanned once; xarray writes the store's metadata,
    coordinates and ``live`` mask, then the amplitude is read in blocks of
    whole chunk rows (one ``segyio`` call per block for inline-sorted files,
    the Dask graph of :func:`~saltvol.io.segy.open_segy` otherwise) whose
    chunks are compressed by a thread pool and written while the next block
    is read. The store is built in a hidden sibling and renamed into place
    when complete, so an error or interruption leaves no output behind, and an
    existing output is replaced only once the new one is complete.

    Parameters
    ----------
    source : str or os.PathLike
        The SEG-Y file (3D post-stack volume or 2D line).
    output : str or os.PathLike
        Local path of the Zarr store to create (a directory, conventionally
        ending in ``.zarr``); its parent folder must exist.
    iline, xline : int, optional
        Inline/crossline byte locations; default None: autodetect (see
        :func:`~saltvol.io.segy.scan_segy`).
    chunks : dict, optional
        Chunk size per dimension (``"iline"``, ``"xline"``, ``"sample"``, or
        ``"cdp"``, ``"sample"`` for a 2D line; sizes for dimensions the file
        does not have are ignored); ``-1`` means the whole dimension. None or
        a missing key: 64 x 64 traces (4096 for a 2D line) and all samples,
        with fewer traces if a chunk would exceed 32 MiB.
    overwrite : bool, default False
        Replace an existing output (a Zarr store, an empty folder or a file).
    progress : callable, optional
        Called as ``progress(done, total)`` with the number of traces (grid
        cells, dead ones included) written so far and in all, once with
        ``done=0`` before the first block and after every block.

    Returns
    -------
    pathlib.Path
        Absolute path of the store. ``xr.open_zarr(path)`` gives the Dataset
        of :func:`~saltvol.io.segy.open_segy` (``amplitude`` float32 with dims
        ``(iline, xline, sample)`` or ``(cdp, sample)``, ``live`` bool, the
        same coordinates and attributes) plus the attribute
        ``saltvol_version``.

    Raises
    ------
    InputError
        Bad source path or ``chunks``; SegyFormatError, ByteLocationError,
        DuplicateTraceError as for :func:`~saltvol.io.segy.scan_segy`.
    OutputExistsError
        ``output`` exists and ``overwrite`` is False.
    OutputPathError
        ``output`` is a URL, the source itself, a regular file (unless
        ``overwrite``), a folder that is not a Zarr store, or its parent
        folder is missing or not writable.

    See Also
    --------
    open_volume : open the store (or the SEG-Y file) again.
    saltvol.io.segy.open_segy : the lazy SEG-Y Dataset the store reproduces.

    Examples
    --------
    >>> convert("survey.sgy", "survey.zarr")  # doctest: +SKIP
    PosixPath('/data/survey.zarr')
    >>> xr.open_zarr("survey.zarr").amplitude.dims  # doctest: +SKIP
    ('iline', 'xline', 'sample')
    """
    target = _check_output(output, overwrite=overwrite)
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"source must be a path to a SEG-Y file, got {type(source).__name__}; pass the file's path")
    src = Path(os.fspath(source))
    if src.exists() and _same_file(src, target):
        raise OutputPathError(
            f"output {str(target)!r} is the source file itself; choose another output path such as "
            f"{str(target.with_suffix('.zarr'))!r}"
        )
    geometry = scan_segy(src, iline=iline, xline=xline)
    sizes = _resolve_chunks(_dims(geometry), _shape(geometry), chunks, _default_chunks(geometry))
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    start = time.perf_counter()
    logger.info(
        "converting %s (%s, %s-sorted, format %d, shape %s) to %s in chunks %s",
        geometry.path,
        geometry.kind,
        geometry.sorting,
        geometry.sample_format,
        _shape(geometry),
        target,
        sizes,
    )
    try:
        try:
            ds = _write_template(geometry, sizes, tmp)
            _write_amplitude(geometry, ds, sizes, tmp, progress=progress)
        except PermissionError as e:
            raise OutputPathError(
                f"cannot write {str(target)!r} ({e.strerror}); choose a writable folder"
            ) from e
        except OSError as e:
            if isinstance(e, SaltvolError):
                raise
            raise OutputPathError(f"writing {str(target)!r} failed ({e}); check the free space and the folder") from e
        move_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    mb = geometry.file_size / 1e6
    logger.info("wrote %s: %.1f MB of SEG-Y in %.2f s (%.0f MB/s)", target, mb, seconds, mb / max(seconds, 1e-9))
    return target


def open_volume(
    path: str | os.PathLike[str],
    *,
    iline: int | None = None,
    xline: int | None = None,
    chunks: Mapping[str, int | None] | None = None,
) -> xr.Dataset:
    """Open a Zarr store or a SEG-Y file as a lazy, Dask-backed Dataset.

    A local folder holding ``zarr.json`` (or zarr v2 ``.zgroup``) and any
    fsspec URL (``file://``, ``s3://``, ...) are opened with
    :func:`xarray.open_zarr` in the store's own chunks (rechunked afterwards
    if ``chunks`` asks for others, so each stored chunk is decoded once);
    any other file goes to :func:`~saltvol.io.segy.open_segy`, which checks
    by its headers that it is SEG-Y.

    Parameters
    ----------
    path : str or os.PathLike
        A Zarr store written by :func:`convert` (local path or fsspec URL),
        or a SEG-Y file.
    iline, xline : int, optional
        Inline/crossline byte locations of a SEG-Y file; default None:
        autodetect. Ignored for Zarr stores, which hold the grid already.
    chunks : dict, optional
        Chunk size per dimension, as for :func:`~saltvol.io.segy.open_segy`
        (``-1`` for the whole dimension; sizes for dimensions the data do
        not have are ignored). None or a missing key: the store's chunks for
        Zarr, the SEG-Y reader's default for SEG-Y.

    Returns
    -------
    xarray.Dataset
        ``amplitude`` (float32, dims ``(iline, xline, sample)`` or ``(cdp,
        sample)``) and ``live`` (bool), with the coordinates and attributes
        described in :func:`~saltvol.io.segy.open_segy`.

    Raises
    ------
    InputError
        The path is missing, a folder that is not a Zarr store, a store
        without an ``amplitude`` volume, or ``chunks`` is malformed; for
        SEG-Y files also the errors of :func:`~saltvol.io.segy.scan_segy`.

    See Also
    --------
    convert : write the Zarr store from a SEG-Y file.

    Examples
    --------
    >>> ds = open_volume("survey.zarr")  # doctest: +SKIP
    >>> ds = open_volume("s3://bucket/survey.zarr", chunks={"iline": 128})  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(
            f"path must be a str or os.PathLike, got {type(path).__name__}; pass a .zarr store or a SEG-Y file"
        )
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    _check_chunk_arg(chunks)
    zarr_note = "iline/xline are ignored for Zarr stores, which hold the trace grid already"
    if "://" in name:
        if iline is not None or xline is not None:
            logger.debug(zarr_note)
        return _open_zarr(name, chunks)
    p = Path(name)
    if not p.exists():
        raise InputError(f"{name!r} does not exist; check the path (a .zarr store or a SEG-Y file)")
    if p.is_dir():
        if not _is_zarr_store(p):
            raise InputError(
                f"{name!r} is a folder without zarr.json, so not a Zarr store; give a store written by "
                "`saltvol convert`, or a SEG-Y file"
            )
        if iline is not None or xline is not None:
            logger.debug(zarr_note)
        return _open_zarr(name, chunks)
    if p.suffix.lower() == ".zarr":
        raise InputError(
            f"{name!r} is a file, but a Zarr store is a folder; give the store's folder or convert the SEG-Y again"
        )
    return open_segy(p, iline=iline, xline=xline, chunks=chunks)


# --------------------------------------------------------------------------- #
# output checks and the final move
# --------------------------------------------------------------------------- #


def _is_zarr_store(p: Path) -> bool:
    """True if ``p`` is a folder with Zarr metadata at its root (v3 or v2)."""
    return p.is_dir() and any((p / marker).is_file() for marker in _ZARR_MARKERS)


def _check_output(output: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Absolute output path; raise unless it can be created (or replaced, with ``overwrite``)."""
    if not isinstance(output, (str, os.PathLike)):
        raise OutputPathError(f"output must be a path, got {type(output).__name__}; pass e.g. 'survey.zarr'")
    name = os.fspath(output)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    if "://" in name:
        raise OutputPathError(
            f"output {name!r} is a URL; convert writes local stores only: write locally, then copy the store"
        )
    p = Path(name).absolute()
    if p.is_symlink() or p.exists():
        if p.is_dir() and not p.is_symlink():
            if not _is_zarr_store(p) and any(p.iterdir()):
                raise OutputPathError(
                    f"output {name!r} is a folder that is not a Zarr store; refusing to replace it; "
                    "choose another output path"
                )
            if not overwrite:
                raise OutputExistsError(f"output {name!r} exists; pass --overwrite (overwrite=True) to replace it")
        elif not overwrite:
            raise OutputPathError(
                f"output {name!r} is an existing file, not a Zarr store; choose another output path "
                "(a folder such as 'survey.zarr'), or pass --overwrite (overwrite=True) to replace the file"
            )
    parent = p.parent
    if not parent.is_dir():
        raise OutputPathError(f"folder {str(parent)!r} of the output does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"folder {str(parent)!r} is not writable; choose another output folder")
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


# --------------------------------------------------------------------------- #
# chunks
# --------------------------------------------------------------------------- #


def _dims(geometry: Geometry) -> tuple[str, ...]:
    return ("cdp", "sample") if geometry.kind == "2d" else ("iline", "xline", "sample")


def _grid(geometry: Geometry) -> np.ndarray:
    """Trace grid over the output's trace dims: (n_il, n_xl), or (n_cdp,) for a 2D line."""
    return geometry.trace_index[0] if geometry.kind == "2d" else geometry.trace_index


def _shape(geometry: Geometry) -> tuple[int, ...]:
    return (*_grid(geometry).shape, geometry.n_samples)


def _default_chunks(geometry: Geometry) -> tuple[int, ...]:
    """64 x 64 traces (4096 for 2D) and all samples, fewer traces if a chunk would pass 32 MiB."""
    n_samples = geometry.n_samples
    max_traces = max(1, _MAX_CHUNK_BYTES // (4 * n_samples))
    grid = _grid(geometry).shape
    if geometry.kind == "2d":
        return (max(1, min(_CHUNK_TRACES_2D, max_traces, grid[0])), n_samples)
    side = max(1, min(_CHUNK_SIDE, math.isqrt(max_traces)))
    return (min(side, grid[0]), min(side, grid[1]), n_samples)


def _check_chunk_arg(chunks: Mapping[str, int | None] | None) -> None:
    if chunks is None:
        return
    if not isinstance(chunks, Mapping):
        raise InputError(f"chunks must be a dict such as {{'iline': 64, 'xline': 64}}, got {chunks!r}")
    unknown = sorted(set(map(str, chunks)) - set(_ALL_DIMS))
    if unknown:
        raise InputError(f"chunks names unknown dimension(s) {unknown!r}; use some of {list(_ALL_DIMS)!r}")
    for dim, value in chunks.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value == 0 or value < -1:
            raise InputError(f"chunks[{dim!r}] = {value!r} is not a chunk size; give a positive int or -1 (whole)")


def _resolve_chunks(
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    chunks: Mapping[str, int | None] | None,
    default: tuple[int, ...],
) -> tuple[int, ...]:
    """Chunk size per dim: the caller's (``-1`` = whole) where given, else ``default``; within the shape."""
    _check_chunk_arg(chunks)
    chunks = {} if chunks is None else chunks
    out = []
    for dim, size, fallback in zip(dims, shape, default):
        value = chunks.get(dim)
        value = fallback if value is None else (size if value == -1 else int(value))
        out.append(max(1, min(int(value), size)))
    return tuple(out)


def _regions(grid_shape: tuple[int, ...], grid_chunks: tuple[int, ...], trace_bytes: int) -> list[tuple[slice, ...]]:
    """Chunk-aligned blocks of the trace grid, in file order for inline-sorted files.

    A block is one chunk row along the first grid dim (whole inlines) and as
    much of the last dim as fits in ``_BLOCK_BYTES``, at least one chunk.
    """
    rows = grid_chunks[0] if len(grid_shape) > 1 else 1
    inner_chunk = grid_chunks[-1]
    per_chunk = rows * inner_chunk * trace_bytes
    step = inner_chunk * max(1, _BLOCK_BYTES // max(1, per_chunk))
    inner = [slice(j, min(j + step, grid_shape[-1])) for j in range(0, grid_shape[-1], step)]
    if len(grid_shape) == 1:
        return [(s,) for s in inner]
    return [(slice(i, min(i + rows, grid_shape[0])), s) for i in range(0, grid_shape[0], rows) for s in inner]


# --------------------------------------------------------------------------- #
# writing
# --------------------------------------------------------------------------- #


def _codecs() -> tuple[Any, Any]:
    """The zarr codec recorded in the metadata and the numcodecs codec that makes the same bytes."""
    if _COMPRESSION == "blosc-lz4":
        return (
            BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4, blocksize=0),
            numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=0, typesize=4),
        )
    if _COMPRESSION == "zstd":
        return ZstdCodec(level=0, checksum=False), numcodecs.Zstd(level=0, checksum=False)
    raise ValueError(f"unknown _COMPRESSION {_COMPRESSION!r}; use 'blosc-lz4' or 'zstd'")


def _write_template(geometry: Geometry, sizes: tuple[int, ...], tmp: Path) -> xr.Dataset:
    """Write the store's metadata, coordinates and ``live``; return the lazy Dataset (amplitude unwritten).

    xarray writes everything but ``amplitude`` (all numpy, so no Dask graph
    is built or computed); the empty ``amplitude`` array is created with zarr,
    with the dimension names and attributes xarray would give it, and the
    metadata is consolidated into the root ``zarr.json``.
    """
    dims = _dims(geometry)
    ds = _dataset_from_geometry(geometry, chunks=dict(zip(dims, sizes)))
    ds["live"] = ds["live"].copy(data=_grid(geometry) >= 0)  # numpy: written now, no Dask compute
    ds.attrs["saltvol_version"] = __version__
    grid_chunks = sizes[:-1]
    encoding = {name: {"chunks": grid_chunks} for name in ("live", "cdp_x", "cdp_y")}
    ds.drop_vars("amplitude").to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, encoding=encoding)
    amplitude = ds["amplitude"]
    extra_coords = " ".join(str(c) for c in amplitude.coords if c not in amplitude.dims)
    zarr.open_group(str(tmp), mode="r+", zarr_format=3).create_array(
        "amplitude",
        shape=amplitude.shape,
        chunks=sizes,
        dtype="float32",
        compressors=[_codecs()[0]],
        fill_value=0.0,
        dimension_names=dims,
        attributes={**amplitude.attrs, "coordinates": extra_coords},
    )
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray and zarr-python read it
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(tmp), zarr_format=3)
    return ds


class _ChunkWriter:
    """Encode chunks with numcodecs and write them where zarr's local store expects them."""

    def __init__(self, root: Path, codec: Any) -> None:
        array = zarr.open_array(str(root), path="amplitude", mode="r")
        self.root = root / "amplitude"
        self.codec = codec
        self.chunks = tuple(int(c) for c in array.chunks)
        self.shape = tuple(int(s) for s in array.shape)
        self.metadata = array.metadata
        self._made: set[Path] = set()

    def chunk_slices(self, region: tuple[slice, ...]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
        """Chunk indices inside a chunk-aligned block, with their slices relative to the block."""
        full = (*region, slice(0, self.shape[-1]))
        ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(full, self.chunks)]
        for index in np.ndindex(*(len(r) for r in ranges)):
            idx = tuple(r[k] for r, k in zip(ranges, index))
            local = tuple(
                slice(i * c - s.start, min((i + 1) * c, n) - s.start)
                for i, c, s, n in zip(idx, self.chunks, full, self.shape)
            )
            yield idx, local

    def put(self, idx: tuple[int, ...], data: np.ndarray) -> None:
        """Write one chunk (padded to the chunk shape with 0); all-zero chunks are left to the fill value."""
        if not data.any():
            return
        if data.shape == self.chunks:
            buf = np.ascontiguousarray(data, dtype="<f4")
        else:
            buf = np.zeros(self.chunks, dtype="<f4")
            buf[tuple(slice(0, n) for n in data.shape)] = data
        encoded = self.codec.encode(buf)
        path = self.root / self.metadata.encode_chunk_key(idx)
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        with open(path, "wb") as fh:
            fh.write(encoded)


def _write_amplitude(
    geometry: Geometry,
    ds: xr.Dataset,
    sizes: tuple[int, ...],
    tmp: Path,
    *,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Read the volume block by block and write its chunks with a thread pool, one block read ahead."""
    writer = _ChunkWriter(tmp, _codecs()[1])
    grid = _grid(geometry)
    regions = _regions(grid.shape, sizes[:-1], 4 * geometry.n_samples)
    total = int(grid.size)
    done = 0
    if progress is not None:
        progress(0, total)
    workers = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    pending: deque[tuple[list[Future[None]], int]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="saltvol-zarr")
    blocks = _blocks(geometry, ds, regions)
    try:
        for region, block in zip(regions, blocks):
            futures = [pool.submit(writer.put, idx, block[local]) for idx, local in writer.chunk_slices(region)]
            pending.append((futures, int(np.prod([s.stop - s.start for s in region]))))
            while len(pending) > _READ_AHEAD:
                done += _finish(pending.popleft())
                if progress is not None:
                    progress(done, total)
        while pending:
            done += _finish(pending.popleft())
            if progress is not None:
                progress(done, total)
    finally:
        blocks.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _finish(item: tuple[list[Future[None]], int]) -> int:
    futures, n_traces = item
    for future in futures:
        future.result()
    return n_traces


def _blocks(geometry: Geometry, ds: xr.Dataset, regions: list[tuple[slice, ...]]) -> Iterator[np.ndarray]:
    """The amplitude of each region, ``(*region, sample)`` float32: segyio for inline-sorted files, else Dask."""
    grid = _grid(geometry)
    if geometry.sorting == "iline":
        for region in regions:
            yield _read_traces(geometry.path, grid[region], geometry.n_samples, geometry.file_size)
    else:
        logger.info("%s is %s-sorted: reading blocks through the Dask graph", geometry.path, geometry.sorting)
        amplitude = ds["amplitude"].data
        for region in regions:
            yield _compute_block(amplitude, region)


def _read_traces(path: str, traces: np.ndarray, n_samples: int, file_size: int) -> np.ndarray:
    """Read the traces of an inline-sorted block (-1 = dead, zeros) with one segyio call per run.

    The file is opened and memory-mapped for this block only: mapped pages
    count as resident memory, so unmapping after each block keeps the peak RSS
    to one block's worth of the file instead of the whole file.
    """
    size = os.stat(path).st_size if os.path.exists(path) else -1
    if size != file_size:
        raise SegyFormatError(
            f"SEG-Y file {path!r} changed or vanished since it was scanned ({file_size} bytes then, "
            f"{size} now); convert it again"
        )
    flat = traces.reshape(-1)
    live = flat >= 0
    numbers = flat[live]
    shape = (*traces.shape, n_samples)
    if numbers.size == 0:
        return np.zeros(shape, dtype=np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = segyio.open(path, "r", ignore_geometry=True)
        with f:
            f.mmap()
            if numbers.size == flat.size and numbers[-1] - numbers[0] == numbers.size - 1:
                # the common case: whole inlines, no dead traces, one contiguous run
                return np.asarray(f.trace.raw[int(numbers[0]) : int(numbers[-1]) + 1], dtype=np.float32).reshape(shape)
            out = np.zeros((flat.size, n_samples), dtype=np.float32)
            pos = np.flatnonzero(live)
            breaks = np.flatnonzero(np.diff(numbers) != 1) + 1
            for run in np.split(np.arange(numbers.size), breaks):
                start, stop = int(numbers[run[0]]), int(numbers[run[-1]]) + 1
                out[pos[run]] = f.trace.raw[start:stop]
            return out.reshape(shape)
    except _SEGYIO_ERRORS as e:
        raise SegyFormatError(
            f"reading traces from {path!r} failed ({type(e).__name__}: {e}); check that the file is intact"
        ) from e


def _compute_block(amplitude: Any, region: tuple[slice, ...]) -> np.ndarray:
    """Compute one block of the lazy amplitude with local threads (the data are written here)."""
    return np.asarray(amplitude[region].compute(scheduler="threads"), dtype=np.float32)


# --------------------------------------------------------------------------- #
# opening Zarr
# --------------------------------------------------------------------------- #


def _open_zarr(name: str, chunks: Mapping[str, int | None] | None) -> xr.Dataset:
    """xr.open_zarr in the store's chunks, a layout check, then the caller's chunks if any."""
    try:
        with warnings.catch_warnings():
            # a store without consolidated metadata (written by another tool) opens fine, just a little slower
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated metadata", category=RuntimeWarning)
            ds = xr.open_zarr(name, chunks={}, from_array_kwargs={"getitem": functools.partial(_read_chunk, store=name)})
    except (FileNotFoundError, KeyError) as e:
        raise InputError(f"no Zarr store at {name!r} ({type(e).__name__}: {e}); check the path or URL") from e
    except (OSError, ValueError, zarr.errors.BaseZarrError) as e:
        raise InputError(
            f"cannot open Zarr store {name!r} ({type(e).__name__}: {e}); check the path, or convert the SEG-Y again"
        ) from e
    if "amplitude" not in ds.data_vars:
        raise InputError(
            f"Zarr store {name!r} has no 'amplitude' variable (has {sorted(map(str, ds.data_vars))!r}); "
            "give a store written by `saltvol convert`"
        )
    dims = tuple(map(str, ds["amplitude"].dims))
    if dims not in (("iline", "xline", "sample"), ("cdp", "sample")):
        raise InputError(
            f"Zarr store {name!r} holds amplitude with dims {dims!r}, not ('iline', 'xline', 'sample') "
            "or ('cdp', 'sample'); give a store written by `saltvol convert`"
        )
    # other chunks than the store's: rechunk the store-chunked arrays, so that each stored chunk
    # is still read and decoded once per compute (xr.open_zarr(chunks=...) would re-read it per piece)
    wanted = {str(k): v for k, v in (chunks or {}).items() if k in ds.dims and v is not None}
    return ds.chunk(wanted) if wanted else ds


def _read_chunk(array: Any, key: Any, asarray: bool = True, lock: Any = None, *, store: str) -> Any:
    """Dask's chunk getter, with a damaged or vanished chunk reported as bad input.

    zarr's codecs raise plain ``RuntimeError``/``ValueError`` on bytes they
    cannot decode, deep inside a Dask task; without this a damaged store ends
    a run in an internal error instead of a message naming the store.
    """
    try:
        return da.core.getter(array, key, asarray=asarray, lock=lock)
    except (RuntimeError, ValueError, OSError, zarr.errors.BaseZarrError) as e:
        raise InputError(
            f"cannot read a chunk of the Zarr store {store!r} ({type(e).__name__}: {e}); "
            "the store is damaged: convert the SEG-Y again"
        ) from e
