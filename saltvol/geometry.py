"""Survey geometry of a post-stack SEG-Y file, scanned once and passed as data.

A :class:`Geometry` holds everything needed to read a volume lazily: the
line numbers, a grid mapping each (inline, crossline) cell to its trace
number in the file, the sample axis and the CDP coordinates. It is small,
frozen and picklable, so it can travel inside every Dask task.

:func:`build_grid` turns the inline and crossline numbers of all traces
into that grid. It is pure numpy: ``np.unique(..., return_inverse=True)``
gives each trace its row and column, so the cost does not depend on how the
file is sorted, and no Python loop runs per trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from saltvol.errors import DuplicateTraceError, GeometryError

__all__ = ["MAX_CELLS_PER_TRACE", "Geometry", "build_grid"]

#: A grid with more than this many cells per trace is rejected as too sparse
#: (fewer than 2 % of its cells would hold a trace). Such grids come from
#: header bytes that are not line numbers (coordinates, sequence numbers).
MAX_CELLS_PER_TRACE = 50

_SHOW_DUPLICATES = 5


@dataclass(frozen=True, eq=False)
class Geometry:
    """Geometry of a post-stack survey: line numbers, trace grid, samples.

    The trace grid ``trace_index[i, j]`` holds the number (0-based, in file
    order) of the trace at ``(ilines[i], xlines[j])``, or -1 where the survey
    has no trace. Readers use it to turn any block of the grid into the trace
    numbers to read, whatever the sorting of the file.

    Parameters
    ----------
    kind : {"3d", "2d"}
        ``"3d"``: ``trace_index`` has shape ``(n_il, n_xl)``. ``"2d"``: a
        single line, ``trace_index`` has shape ``(1, n_cdp)``; ``ilines``
        holds one value (the header at ``iline_byte`` of the first trace,
        often 0) and ``xlines`` holds the CDP numbers (see :attr:`cdps`).
    ilines, xlines : numpy.ndarray
        Sorted unique inline and crossline (or CDP) numbers, int64.
    trace_index : numpy.ndarray
        int64 grid of trace numbers, -1 where a trace is missing.
    samples : numpy.ndarray
        float64 sample positions as segyio reports them (``f.samples``): the
        delay plus ``k * dt``, in ms for time data or m for depth data.
    sample_unit : {"ms", "m"}
        Best guess of the unit of ``samples``: ``"m"`` when the text header
        or the file name says depth, ``"ms"`` otherwise.
    sample_format : int
        SEG-Y sample format code from the binary header (1 IBM, 5 IEEE, ...).
    iline_byte, xline_byte : int
        Trace-header bytes the line numbers were read from. For 2D lines
        ``xline_byte`` is the byte of the trace-axis key (21 for CDP, 1 or 5
        for trace sequence numbers) or 0 when traces are numbered by their
        position in the file.
    cdp_x, cdp_y : numpy.ndarray
        float64 grids (same shape as ``trace_index``) of CDP coordinates
        with the coordinate scalar applied; NaN where a trace is missing.
    sorting : {"iline", "xline", "unsorted"}
        ``"iline"`` if trace numbers increase along crosslines within
        inlines (C order of the grid), ``"xline"`` if they increase along
        inlines within crosslines, ``"unsorted"`` otherwise.
    n_traces : int
        Number of traces in the file.
    path : str
        Absolute path of the file.
    text_header : str
        The textual header, 40 lines of at most 80 characters.
    byte_locations_autodetected : bool
        True if ``iline_byte``/``xline_byte`` were found by trying common
        byte pairs rather than given by the caller.
    file_size : int
        Size of the file in bytes when it was scanned (0 if unknown).
    """

    kind: Literal["3d", "2d"]
    ilines: np.ndarray
    xlines: np.ndarray
    trace_index: np.ndarray
    samples: np.ndarray
    sample_unit: Literal["ms", "m"]
    sample_format: int
    iline_byte: int
    xline_byte: int
    cdp_x: np.ndarray
    cdp_y: np.ndarray
    sorting: Literal["iline", "xline", "unsorted"]
    n_traces: int
    path: str
    text_header: str
    byte_locations_autodetected: bool
    file_size: int = 0

    def __post_init__(self) -> None:
        grid_shape = (len(self.ilines), len(self.xlines))
        if self.kind not in ("3d", "2d"):
            raise GeometryError(f"kind must be '3d' or '2d', got {self.kind!r}")
        for name in ("trace_index", "cdp_x", "cdp_y"):
            shape = np.shape(getattr(self, name))
            if shape != grid_shape:
                raise GeometryError(
                    f"Geometry.{name} has shape {shape}, expected {grid_shape} "
                    "(len(ilines), len(xlines)); build it with build_grid()"
                )
        if self.kind == "2d" and grid_shape[0] != 1:
            raise GeometryError(
                f"a 2D Geometry needs exactly one inline, got {grid_shape[0]}; "
                "use kind='3d' for several lines"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(n_il, n_xl)`` of the trace grid (``(1, n_cdp)`` for 2D)."""
        return (len(self.ilines), len(self.xlines))

    @property
    def n_samples(self) -> int:
        """Number of samples per trace."""
        return len(self.samples)

    @property
    def live(self) -> np.ndarray:
        """Boolean grid, True where the survey has a trace."""
        return self.trace_index >= 0

    @property
    def n_dead(self) -> int:
        """Number of grid cells without a trace."""
        return int(self.trace_index.size - np.count_nonzero(self.trace_index >= 0))

    @property
    def cdps(self) -> np.ndarray:
        """CDP (trace-axis) numbers of a 2D line; the crosslines of a 3D survey."""
        return self.xlines


def build_grid(il: np.ndarray, xl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place traces on an (inline, crossline) grid from their line numbers.

    ``np.unique(..., return_inverse=True)`` maps each trace to a row and a
    column; the grid is filled with one fancy assignment. Duplicates are
    found by sorting the flat cell numbers, before any grid is allocated, and
    the grid size is checked against the trace count so that header bytes
    holding something else than line numbers cannot allocate a huge array.

    Parameters
    ----------
    il, xl : numpy.ndarray
        Inline and crossline number of every trace, in file order (1D
        integer arrays of equal length). Any sorting is accepted.

    Returns
    -------
    ilines : numpy.ndarray
        Sorted unique inline numbers, int64.
    xlines : numpy.ndarray
        Sorted unique crossline numbers, int64.
    trace_index : numpy.ndarray
        int64 array of shape ``(len(ilines), len(xlines))``: the position of
        the trace in ``il``/``xl``, or -1 where no trace has that cell.

    Raises
    ------
    DuplicateTraceError
        Two or more traces have the same (inline, crossline); the message
        gives the number of duplicated cells and the first few pairs. Also
        when all of several traces have the same pair (empty headers).
    GeometryError
        No traces, arrays of different lengths, or a grid with more than
        :data:`MAX_CELLS_PER_TRACE` cells per trace (fewer than 2 % live).

    See Also
    --------
    saltvol.io.segy.scan_segy : reads the headers and calls this function.

    Examples
    --------
    >>> ilines, xlines, ti = build_grid(np.array([10, 10, 11]), np.array([5, 6, 6]))
    >>> ti
    array([[ 0,  1],
           [-1,  2]])
    >>> build_grid(np.array([1, 1]), np.array([7, 7]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    saltvol.errors.DuplicateTraceError: all 2 traces have the same (inline, crossline) = (1, 7): ...
    """
    il = np.asarray(il).astype(np.int64, copy=False).ravel()
    xl = np.asarray(xl).astype(np.int64, copy=False).ravel()
    n = il.size
    if n != xl.size:
        raise GeometryError(
            f"got {n} inline numbers but {xl.size} crossline numbers; "
            "pass one inline and one crossline number per trace"
        )
    if n == 0:
        raise GeometryError("no traces to place on a grid; check that the file holds traces")

    ilines, row = np.unique(il, return_inverse=True)
    xlines, col = np.unique(xl, return_inverse=True)
    n_il, n_xl = ilines.size, xlines.size
    if n > 1 and n_il == 1 and n_xl == 1:
        raise DuplicateTraceError(
            f"all {n} traces have the same (inline, crossline) = "
            f"({ilines[0]}, {xlines[0]}): these header bytes hold no line numbers; "
            "give the inline/crossline byte locations (iline=..., xline=...)"
        )
    cell = row.astype(np.int64) * n_xl + col
    _check_duplicates(cell, il, xl)

    n_cells = n_il * n_xl
    if n_cells > MAX_CELLS_PER_TRACE * n:
        raise GeometryError(
            f"{n} traces span {n_il} inlines x {n_xl} crosslines = {n_cells} cells "
            f"({100.0 * n / n_cells:.2g} % live, below {100.0 / MAX_CELLS_PER_TRACE:.2g} %): "
            "these header bytes are probably not inline/crossline numbers; "
            "give the right byte locations (iline=..., xline=...)"
        )
    trace_index = np.full(n_cells, -1, dtype=np.int64)
    trace_index[cell] = np.arange(n, dtype=np.int64)
    return ilines, xlines, trace_index.reshape(n_il, n_xl)


def _check_duplicates(cell: np.ndarray, il: np.ndarray, xl: np.ndarray) -> None:
    """Raise DuplicateTraceError if two traces share a cell (sort, compare neighbours)."""
    order = np.argsort(cell, kind="stable")
    same = cell[order][1:] == cell[order][:-1]
    if not same.any():
        return
    # first trace of each duplicated cell (the stable sort puts it first in its run), in file order
    sorted_cells = cell[order]
    dup_cells = np.unique(sorted_cells[1:][same])
    first = order[np.searchsorted(sorted_cells, dup_cells)]
    shown = ", ".join(f"({il[t]}, {xl[t]})" for t in np.sort(first)[:_SHOW_DUPLICATES])
    more = " ..." if dup_cells.size > _SHOW_DUPLICATES else ""
    raise DuplicateTraceError(
        f"{dup_cells.size} (inline, crossline) pairs occur in more than one trace "
        f"({int(same.sum())} extra traces), e.g. {shown}{more}; "
        "check the byte locations (iline=..., xline=...), or remove the duplicated "
        "traces (a pre-stack file must be stacked first)"
    )
