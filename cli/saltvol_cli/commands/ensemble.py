"""``saltvol ensemble``: one model file that averages several trained networks."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..options import output_opt, overwrite_opt
from .evaluate import BINS, format_score


@click.command("ensemble")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="MODEL...")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="The TGS data the models were trained on: the ensemble is tuned on their validation fold.")
@output_opt("Ensemble model file to write (.safetensors).", metavar="OUT.safetensors")
@click.option("--precision", type=click.Choice(["int8", "fp16", "fp32"]), default="int8", show_default=True,
              help="Weight storage: int8 (one scale per output channel) is half of fp16 and scored the same.")
@click.option("--name", default="saltvol-unet-ensemble", show_default=True, help="Model name stored in the file.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Read only the first N tiles (as the models were trained with --limit).")
@overwrite_opt
def command(
    models: tuple[Path, ...], data_dir: Path, output: Path, precision: str, name: str, limit: int | None, overwrite: bool
) -> None:
    """Combine two or more trained models into one ensemble model.

    The members' probabilities are averaged; calibration, threshold and
    minimum salt area are fitted to the mean on the validation fold they
    share.  Every command that takes --model takes the result.  An
    ensemble file given as a MODEL contributes its networks.

    \b
    Example:
      saltvol ensemble runs/b0/model.safetensors runs/r18/model.safetensors \\
          --data /data/tgs -o ensemble.safetensors
      saltvol ensemble ensemble.safetensors runs/manet/model.safetensors \\
          --data /data/tgs -o grown.safetensors
    """
    from saltvol.train.ensemble import combine_models

    started = time.perf_counter()
    out, report = combine_models(
        list(models), data_dir, output, precision=precision, name=name, overwrite=overwrite,  # type: ignore[arg-type]
        limit=limit,
    )
    scores = "  ".join(f"{b} {format_score(report[b])}" for b in BINS)
    click.echo(f"validation fold, tuned: {scores}")
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
