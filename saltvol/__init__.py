"""saltvol: find salt bodies in 3D seismic volumes.

Lazy SEG-Y or Zarr in (``open_segy``, ``open_volume``), a U-Net trained on
the TGS Salt Identification data over every inline and crossline section,
and a seam-free 3D salt-probability cube out (``segment`` lazily, or
``segment_to_zarr`` streamed to disk, locally or on a Dask cluster).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bodies",
    "convert",
    "export_segy",
    "info",
    "load_model",
    "open_segy",
    "open_volume",
    "preview",
    "read_model_info",
    "scan_segy",
    "segment",
    "segment_to_zarr",
    "surfaces",
]

_LAZY = {
    "open_segy": ("saltvol.io.segy", "open_segy"),
    "scan_segy": ("saltvol.io.segy", "scan_segy"),
    "open_volume": ("saltvol.io.zarr", "open_volume"),
    "convert": ("saltvol.io.zarr", "convert"),
    "load_model": ("saltvol.model", "load_model"),
    "read_model_info": ("saltvol.model", "read_model_info"),
    "segment": ("saltvol.inference", "segment"),
    "segment_to_zarr": ("saltvol.pipeline", "segment_to_zarr"),
    "export_segy": ("saltvol.io.segy_export", "export_segy"),
    "info": ("saltvol.volume_info", "info"),
    "preview": ("saltvol.plotting", "preview"),
    "bodies": ("saltvol.salt_bodies", "bodies"),
    "surfaces": ("saltvol.salt_surfaces", "surfaces"),
}


def __getattr__(name: str):  # imported on first use: `import saltvol` stays fast and torch-free
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'saltvol' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
