"""``saltvol preview``: one section of a volume or a salt cube as a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from ..options import given, output_opt, overwrite_opt


@click.command("preview")
@click.argument("source", type=click.Path(path_type=Path), metavar="INPUT")
@output_opt("PNG file to write.", metavar="FILE.png")
@click.option("--inline", "iline", type=int, default=None, metavar="N", help="Draw inline number N.")
@click.option("--xline", type=int, default=None, metavar="N", help="Draw crossline number N.")
@click.option("--sample", type=float, default=None, metavar="VALUE",
              help="Draw the time or depth slice nearest to VALUE (ms or m).")
@click.option("--seismic", type=click.Path(path_type=Path), default=None, metavar="SOURCE",
              help="SEG-Y file or Zarr volume to draw under a cube (the one it was computed from).")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="Draw the salt mask (probability above T) instead of the graded probability.")
@click.option("--dpi", type=click.IntRange(10, 1000), default=None, metavar="N",
              help="Resolution; the PNG is 10N x 6N pixels.  [default: 110]")
@overwrite_opt
def command(
    source: Path,
    output: Path,
    iline: int | None,
    xline: int | None,
    sample: float | None,
    seismic: Path | None,
    threshold: float | None,
    dpi: int | None,
    overwrite: bool,
) -> None:
    """Draw one section of a cube or a volume into a PNG.

    Give at most one of --inline, --xline and --sample; by default the middle
    inline (or the whole of a 2D line) is drawn.

    \b
    Example:
      saltvol preview salt.zarr --seismic survey.sgy --inline 120 -o inline120.png
    """
    sections = {"--inline": iline, "--xline": xline, "--sample": sample}
    chosen = {name: value for name, value in sections.items() if value is not None}
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other: draw one section per run")
    from saltvol.plotting import preview

    out = preview(
        source, output, overwrite=overwrite,
        **given(iline=iline, xline=xline, sample=sample, seismic=seismic, threshold=threshold, dpi=dpi),
    )
    drawn = "".join(f" ({name[2:]} {value:g})" for name, value in chosen.items())
    click.echo(f"wrote {out}{drawn}")
