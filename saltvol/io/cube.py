"""Write a probability cube to Zarr v3 block by block, safely and resumably; open it again.

A run writes into a hidden sibling, ``.NAME.partial``, and renames it to
``NAME`` only when every block is written, so a crash never leaves a
half-written cube under the real name and an existing output is replaced
only by a complete one.  Each block is written to its own region (regions
are unions of whole Zarr chunks, so concurrent writers never share a chunk)
and then marked done with an empty file under ``.saltvol-progress/``; a
resumed run skips marked blocks.  A block that was being written when the
process died has no marker and is simply written again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from ..errors import DataError, InputError, OutputExistsError, OutputPathError

__all__ = [
    "abandon",
    "CubeTarget",
    "check_file_output",
    "create_store",
    "cube_variable",
    "finalize",
    "move_into_place",
    "open_cube",
    "prepare_target",
    "read_region",
    "stored_settings",
    "write_region",
]

log = logging.getLogger(__name__)

_PROGRESS_DIR = ".saltvol-progress"
_RUN_ATTR = "saltvol_run"


@dataclass(frozen=True)
class CubeTarget:
    """Where a run writes (``work``) and where the finished cube goes (``output``)."""

    output: Path
    work: Path
    resuming: bool
    complete: bool = False
    discard_work: bool = False  # an old .partial to remove, but only once the new run really starts

    def marker(self, stage: str, block: tuple[int, ...]) -> Path:
        return self.work / _PROGRESS_DIR / stage / "-".join(map(str, block))

    def is_done(self, stage: str, block: tuple[int, ...]) -> bool:
        return self.marker(stage, block).exists()


def _is_zarr_store(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def prepare_target(output: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> CubeTarget:
    """Check the output location and decide whether this run starts, resumes or is already done.

    Raises
    ------
    OutputExistsError
        ``output`` exists and neither ``overwrite`` nor ``resume`` was given.
    OutputPathError
        ``output`` is a regular file, or its folder does not exist or cannot be written.
    """
    output = Path(output).expanduser().absolute()
    parent = output.parent
    if output.exists() and not output.is_dir():
        raise OutputPathError(f"output {str(output)!r} is a regular file, not a Zarr folder; choose a path such as salt.zarr")
    if not parent.is_dir():
        raise OutputPathError(f"the folder of output {str(output)!r} does not exist; create it or choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in {str(parent)!r} (permission denied); choose another -o")
    try:  # some locations (read-only mounts, /proc) pass the access check but refuse writes
        os.rmdir(tempfile.mkdtemp(prefix=".saltvol-probe-", dir=parent))
    except OSError as e:
        raise OutputPathError(f"cannot write in {str(parent)!r} ({e.strerror or e}); choose another -o") from e
    work = parent / f".{output.name}.partial"
    if output.exists():
        if not _is_zarr_store(output) and any(output.iterdir()):
            raise OutputPathError(f"output {str(output)!r} is a folder that is not a Zarr store; choose another -o")
        if resume and not overwrite and not work.exists():
            return CubeTarget(output, work, resuming=True, complete=True)
        if not overwrite and not resume:
            raise OutputExistsError(f"output {str(output)!r} exists; pass --overwrite to replace it or --resume to finish it")
    if work.exists():
        if resume:
            return CubeTarget(output, work, resuming=True)
        if not overwrite:
            raise OutputExistsError(
                f"an interrupted run left {str(work)!r}; pass --resume to continue it or --overwrite to start over"
            )
        return CubeTarget(output, work, resuming=False, discard_work=True)
    return CubeTarget(output, work, resuming=False)


def stored_settings(target: CubeTarget) -> dict[str, Any] | None:
    """The run settings that the interrupted run being resumed stored (None if there are none to read)."""
    if not target.resuming or target.complete:
        return None
    try:
        stored = zarr.open_group(str(target.work), mode="r").attrs.get(_RUN_ATTR)
    except Exception:  # noqa: BLE001 - an unreadable store: create_store says so in one line
        return None
    return dict(stored) if isinstance(stored, Mapping) else None


def create_store(
    target: CubeTarget,
    template: xr.Dataset,
    *,
    run_settings: Mapping[str, Any],
    extra_arrays: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]] = {},
) -> None:
    """Create (or, when resuming, check) the work store: metadata and coordinates, no data.

    ``template`` holds lazy (Dask) data variables with the output chunks;
    ``extra_arrays`` maps names of scratch arrays to (shape, chunks).
    ``run_settings`` are stored and compared on resume, so a run is never
    continued with other settings.
    """
    if target.resuming:
        try:
            stored = zarr.open_group(str(target.work), mode="r").attrs.get(_RUN_ATTR)
        except Exception as e:
            raise InputError(f"{str(target.work)!r} is not a resumable run; pass --overwrite to start over") from e
        if stored != json.loads(json.dumps(dict(run_settings))):
            changed = sorted(k for k in set(stored or {}) | set(run_settings) if (stored or {}).get(k) != run_settings.get(k))
            raise InputError(
                f"the interrupted run used other settings ({', '.join(changed)} differ); "
                "rerun with the same options, or pass --overwrite to start over"
            )
        return
    if target.discard_work:
        shutil.rmtree(target.work)
    template = template.copy()
    template.attrs[_RUN_ATTR] = json.loads(json.dumps(dict(run_settings)))
    template.to_zarr(str(target.work), mode="w", compute=False, zarr_format=3, consolidated=False)
    group = zarr.open_group(str(target.work), mode="r+")
    for name, (shape, chunks) in extra_arrays.items():
        group.create_array(name, shape=shape, chunks=chunks, dtype="float32", fill_value=np.nan, overwrite=True)
    (target.work / _PROGRESS_DIR).mkdir(exist_ok=True)


def write_region(
    work: str, name: str, region: tuple[slice, ...], values: np.ndarray, marker: str | None = None
) -> int:
    """Write ``values`` into ``name[region]`` of the store at ``work``, then drop the done-marker.

    Runs inside tasks (so it takes plain strings and opens the store itself).
    Returns the number of bytes written, a small value for the scheduler to
    carry back.
    """
    array = zarr.open_array(store=work, path=name, mode="r+")
    array[region] = values
    if marker is not None:
        path = Path(marker)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return int(values.nbytes)


def read_region(work: str, name: str, region: tuple[slice, ...]) -> np.ndarray:
    """Read ``name[region]`` from the store at ``work`` (inside tasks)."""
    return zarr.open_array(store=work, path=name, mode="r")[region]


def finalize(target: CubeTarget, *, attrs: Mapping[str, Any], drop: tuple[str, ...] = ()) -> Path:
    """Drop scratch arrays, record final attrs, and move the finished store into place.

    When an old output is being replaced, it is moved aside first and removed
    only after the new one is in place.
    """
    group = zarr.open_group(str(target.work), mode="r+")
    for name in drop:
        if name in group:
            del group[name]
    group.attrs.update(json.loads(json.dumps(dict(attrs), default=_jsonable)))
    group.attrs.pop(_RUN_ATTR, None)
    with warnings.catch_warnings():  # zarr notes that consolidation is an extension to the v3 spec
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(target.work))
    shutil.rmtree(target.work / _PROGRESS_DIR, ignore_errors=True)
    move_into_place(target.work, target.output)
    return target.output


def abandon(target: CubeTarget) -> None:
    """Remove the work store of a run that failed on bad input, unless it continues an earlier run.

    A resume could not get past the same input, and an interrupted run's
    ``.partial`` (the ``--resume`` case) is never thrown away here.
    """
    if not target.resuming:
        shutil.rmtree(target.work, ignore_errors=True)


def move_into_place(tmp: Path, target: Path) -> None:
    """Rename a finished file or store to ``target``; an old output is set aside first and deleted only after."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.old")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in Zarr attrs")


# ------------------------------------------------------------------ reading
def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a Zarr store lazily in its own chunks, with a one-line error when it is not one."""
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist; pass a .zarr store written by 'saltvol segment'")
    if not _is_zarr_store(p):
        raise InputError(f"{str(p)!r} is not a Zarr store (no zarr.json); pass a .zarr store written by 'saltvol segment'")
    try:
        with warnings.catch_warnings():  # a store without consolidated metadata is fine here
            warnings.simplefilter("ignore", RuntimeWarning)
            return xr.open_zarr(p, chunks={})
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot open Zarr store {str(p)!r} ({type(e).__name__}: {e}); check the path") from e


def cube_variable(cube: xr.Dataset | xr.DataArray | str | os.PathLike, variable: str = "salt_probability") -> xr.DataArray:
    """The cube's ``variable`` with dims (iline, xline, sample) or (cdp, sample), the store's attrs merged in.

    Accepts a Dataset, a DataArray or the path of a Zarr store.
    """
    if isinstance(cube, (str, os.PathLike)):
        cube = open_cube(cube)
    if isinstance(cube, xr.Dataset):
        if variable not in cube.data_vars:
            raise InputError(
                f"the cube has no variable {variable!r} (has {sorted(map(str, cube.data_vars))!r}); "
                "pass variable=... or a store written by 'saltvol segment'"
            )
        prob = cube[variable].copy(deep=False)  # own attrs: do not touch the caller's Dataset
        prob.attrs = {**cube.attrs, **prob.attrs}
    elif isinstance(cube, xr.DataArray):
        prob = cube
    else:
        raise InputError(
            f"cube must be an xarray Dataset, DataArray or a Zarr store path, got {type(cube).__name__}; "
            "pass the output of segment_to_zarr"
        )
    dims = set(map(str, prob.dims))
    for wanted in (("iline", "xline", "sample"), ("cdp", "sample")):
        if dims == set(wanted):
            return prob.transpose(*wanted)
    raise DataError(f"the cube has dims {tuple(prob.dims)!r}; it needs ('iline', 'xline', 'sample') or ('cdp', 'sample')")


def check_file_output(output: str | os.PathLike, *, overwrite: bool, example: str) -> Path:
    """Check an output *file* path (a PNG, a JSON): not a folder, not existing unless ``overwrite``, folder present."""
    if not isinstance(output, (str, os.PathLike)):
        raise OutputPathError(f"output must be a path, got {type(output).__name__}; pass e.g. {example!r}")
    p = Path(os.fspath(output)).absolute()
    if p.is_dir():
        raise OutputPathError(f"output {str(p)!r} is a folder; pass a file name such as {str(p / example)!r}")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"output {str(p)!r} exists; pass --overwrite to replace it")
    if not p.parent.is_dir():
        raise OutputPathError(f"folder {str(p.parent)!r} of the output does not exist; create it first")
    return p
