"""``saltvol surfaces``: top- and base-of-salt surfaces of a cube, to Zarr and horizon files."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import click

from ..options import given, output_opt, overwrite_opt


@click.command("surfaces")
@click.argument("cube", type=click.Path(path_type=Path), metavar="CUBE.zarr")
@output_opt("Zarr store for top_of_salt and base_of_salt.", metavar="OUT.zarr")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="A sample is salt when its probability is above T.  [default: 0.5]")
@click.option("--horizons-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Also write each surface as an 'iline xline value' text file (Petrel, OpendTect) here.")
@overwrite_opt
def command(cube: Path, output: Path, threshold: float | None, horizons_dir: Path | None, overwrite: bool) -> None:
    """Map the top and base of salt of every trace of a cube.

    The first and last sample above the threshold, in ms or m; NaN where a
    trace has no salt.

    \b
    Example:
      saltvol surfaces salt.zarr -o surfaces.zarr --horizons-dir horizons/
    """
    from saltvol.errors import OutputExistsError
    from saltvol.io.cube import move_into_place, open_cube
    from saltvol.salt_surfaces import surfaces, write_horizons

    target = _check_output(output, cube, overwrite=overwrite)
    result = surfaces(open_cube(cube), **given(threshold=threshold))
    if horizons_dir is not None and not overwrite:  # refuse before computing (write_horizons checks again)
        existing = [str(p) for p in (horizons_dir.absolute() / f"{name}.txt" for name in result.data_vars) if p.exists()]
        if existing:
            raise OutputExistsError(f"horizon file(s) {existing!r} exist; pass --overwrite to replace them")
    result = result.load()  # 2D surfaces, small: computed once for both writers
    for var in result.variables.values():
        var.encoding = {}  # chunks and codecs of the cube's store do not fit the surfaces
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        result.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
        files = write_horizons(result, horizons_dir, overwrite=overwrite) if horizons_dir is not None else []
        move_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    top = result["top_of_salt"]
    horizons = f"; horizons {', '.join(p.name for p in files)} in {horizons_dir}" if files else ""
    click.echo(f"wrote {target}: salt in {int(top.notnull().sum())} of {top.size} traces{horizons}")


def _check_output(path: Path, cube: Path, *, overwrite: bool) -> Path:
    from saltvol.errors import OutputExistsError, OutputPathError

    p = path.absolute()
    if p.exists() and cube.exists() and os.path.samefile(p, cube):
        raise OutputPathError(f"output {str(p)!r} is the input cube itself; choose another -o")
    if p.exists() or p.is_symlink():
        is_store = p.is_dir() and any((p / m).is_file() for m in ("zarr.json", ".zgroup"))
        if p.is_dir() and not is_store and any(p.iterdir()):
            raise OutputPathError(f"output {str(p)!r} is a folder that is not a Zarr store; refusing to replace it; choose another -o")
        if not overwrite:
            raise OutputExistsError(f"output {str(p)!r} exists; pass --overwrite to replace it")
    if not p.parent.is_dir():
        raise OutputPathError(f"folder {str(p.parent)!r} of the output does not exist; create it first")
    return p
