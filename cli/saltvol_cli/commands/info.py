"""``saltvol info``: geometry and health of a SEG-Y file or a Zarr volume or cube."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..options import byte_location_opts, given


@click.command("info")
@click.argument("source", type=click.Path(path_type=Path), metavar="INPUT")
@byte_location_opts
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the report as JSON.")
def command(source: Path, iline: int | None, xline: int | None, as_json: bool) -> None:
    """Describe a SEG-Y file, a Zarr volume or a salt cube.

    Line ranges, samples, sample format, byte locations, dead traces,
    coordinates, size and a suggested chunking, read from headers and
    metadata only.

    \b
    Example:
      saltvol info survey.sgy --json
    """
    from saltvol.volume_info import format_info, info

    report = info(source, **given(iline=iline, xline=xline))
    if as_json:
        click.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    click.echo(format_info(report))
