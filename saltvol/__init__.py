"""saltvol: find salt bodies in 3D seismic volumes."""

from __future__ import annotations

__version__ = "0.1.0"
