"""``saltvol export``: a salt cube back to SEG-Y with the headers of its source file."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..options import byte_location_opts, given, output_opt, overwrite_opt
from ..ui import progress_bar


@click.command("export")
@click.argument("cube", type=click.Path(path_type=Path), metavar="CUBE.zarr")
@click.option("--like", required=True, type=click.Path(path_type=Path), metavar="SOURCE.sgy",
              help="The SEG-Y file the cube was computed from; its headers are copied.")
@output_opt("SEG-Y file to write.", metavar="OUT.sgy")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="Write 1 where the probability is above T and 0 elsewhere, instead of the probability.")
@click.option("--variable", default=None, metavar="NAME",
              help="Variable of the cube to write.  [default: salt_probability]")
@byte_location_opts
@overwrite_opt
def command(
    cube: Path,
    like: Path,
    output: Path,
    threshold: float | None,
    variable: str | None,
    iline: int | None,
    xline: int | None,
    overwrite: bool,
) -> None:
    """Export a salt cube to SEG-Y with its source's headers.

    One trace per trace of the source, in the same order, every header
    copied byte for byte; samples become the cube's values as IEEE floats.

    \b
    Example:
      saltvol export salt.zarr --like survey.sgy -o salt.sgy --threshold 0.5
    """
    from saltvol.io.segy_export import export_segy

    started = time.perf_counter()
    with progress_bar("export") as progress:
        out = export_segy(
            cube, like, output, overwrite=overwrite, progress=progress,
            **given(threshold=threshold, variable=variable, iline=iline, xline=xline),
        )
    click.echo(f"wrote {out} in {time.perf_counter() - started:.1f} s")
