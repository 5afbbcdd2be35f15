"""``saltvol convert``: SEG-Y to a chunked Zarr volume."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..options import ChunkSpec, byte_location_opts, given, output_opt, overwrite_opt
from ..ui import progress_bar


@click.command("convert")
@click.argument("source", type=click.Path(path_type=Path), metavar="INPUT.sgy")
@output_opt("Zarr store to write.", metavar="OUT.zarr")
@byte_location_opts
@click.option("--chunks", type=ChunkSpec(), default=None, metavar="SPEC",
              help="Chunk sizes, e.g. iline=64,xline=64,sample=-1 (-1 = whole axis).")
@overwrite_opt
def command(
    source: Path,
    output: Path,
    iline: int | None,
    xline: int | None,
    chunks: dict[str, int] | None,
    overwrite: bool,
) -> None:
    """Convert a post-stack SEG-Y volume to chunked Zarr.

    Byte locations are autodetected among the common pairs; give --iline and
    --xline when the headers use others.

    \b
    Example:
      saltvol convert survey.sgy -o survey.zarr --iline 9 --xline 21 --chunks iline=64,xline=64
    """
    from saltvol.io.zarr import convert

    started = time.perf_counter()
    with progress_bar("convert") as progress:
        out = convert(
            source, output, overwrite=overwrite, progress=progress, **given(iline=iline, xline=xline, chunks=chunks)
        )
    click.echo(f"wrote {out} in {time.perf_counter() - started:.1f} s")
