"""Typed errors for saltvol.

Every error the library raises on purpose derives from :class:`SaltvolError`.
Messages name the problem, then the fix, on one line, so that the CLI can
print them verbatim (``saltvol: error: <message>``) and exit with code 2.
Errors about bad input also derive from :class:`ValueError`, so callers that
do not know saltvol can still catch them the usual way.
"""

from __future__ import annotations

__all__ = [
    "ByteLocationError",
    "CheckpointError",
    "DataError",
    "DuplicateTraceError",
    "GeometryError",
    "InputError",
    "OutputExistsError",
    "OutputPathError",
    "SaltvolError",
    "SegyFormatError",
]


class SaltvolError(Exception):
    """Base class of every error saltvol raises on purpose."""


class InputError(SaltvolError, ValueError):
    """An input path is missing, unreadable or of the wrong kind."""


class SegyFormatError(InputError):
    """A file is not SEG-Y, or is damaged (truncated, unknown sample format)."""


class GeometryError(InputError):
    """The trace headers do not describe a usable grid."""


class ByteLocationError(GeometryError):
    """The inline/crossline byte locations give no valid grid."""


class DuplicateTraceError(GeometryError):
    """Two or more traces claim the same (inline, crossline) position."""


class CheckpointError(SaltvolError, ValueError):
    """A model file cannot be loaded safely or does not fit the architecture."""


class OutputExistsError(SaltvolError, FileExistsError):
    """The output exists and neither ``overwrite`` nor ``resume`` was asked for."""


class OutputPathError(SaltvolError, ValueError):
    """The output location cannot be written (wrong kind, no permission)."""


class DataError(SaltvolError, ValueError):
    """Data have a shape or content that the step cannot use."""
