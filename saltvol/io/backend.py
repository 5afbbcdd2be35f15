"""xarray backend: ``xr.open_dataset(path, engine="segy")``.

A thin adapter over :mod:`saltvol.io.segy`: the headers are scanned with
:func:`~saltvol.io.segy.scan_segy` and ``amplitude`` is wrapped in an
xarray ``BackendArray`` that reads only the traces an index selects, so
``chunks=None`` stays lazy and ``chunks={}`` gives the same chunks as
:func:`~saltvol.io.segy.open_segy` (via ``encoding["preferred_chunks"]``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from saltvol.io.segy import _build_dataset, _default_chunks, _TraceReader, scan_segy

__all__ = ["SegyBackendEntrypoint"]

_SUFFIXES = (".sgy", ".segy")


class _SegyBackendArray(BackendArray):
    """Lazily indexed amplitude array; basic indexing is delegated to a picklable _TraceReader."""

    def __init__(self, reader: _TraceReader) -> None:
        self.reader = reader
        self.shape = reader.shape
        self.dtype = reader.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self.reader.read)


class SegyBackendEntrypoint(BackendEntrypoint):
    """Open post-stack SEG-Y files with ``xr.open_dataset(path, engine="segy")``.

    The file's headers are scanned once (byte locations autodetected unless
    ``iline``/``xline`` are given); samples are read on access, trace ranges
    at a time.

    Examples
    --------
    >>> ds = xr.open_dataset("survey.sgy", engine="segy", chunks={})  # doctest: +SKIP
    >>> ds = xr.open_dataset("odd.sgy", engine="segy", iline=9, xline=21)  # doctest: +SKIP
    """

    description = "Open post-stack SEG-Y files (3D or 2D) lazily with saltvol and segyio"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "iline", "xline")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: str | list[str] | tuple[str, ...] | None = None,
        iline: int | None = None,
        xline: int | None = None,
    ) -> xr.Dataset:
        """Scan the headers and return a lazily indexed Dataset (see ``saltvol.io.segy.open_segy``)."""
        geometry = scan_segy(filename_or_obj, iline=iline, xline=xline)
        reader = _TraceReader.from_geometry(geometry)
        amplitude = indexing.LazilyIndexedArray(_SegyBackendArray(reader))
        ds = _build_dataset(geometry, amplitude, reader.trace_index >= 0)
        ds["amplitude"].encoding["preferred_chunks"] = _default_chunks(geometry)
        if drop_variables is not None:
            ds = ds.drop_vars(drop_variables, errors="ignore")
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for paths ending in .sgy or .segy (any case)."""
        try:
            name = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        return name.lower().endswith(_SUFFIXES)
