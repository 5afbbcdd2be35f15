"""``saltvol predict-images``: a Kaggle submission CSV from a folder of TGS tiles."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..options import (
    batch_size_opt,
    device_opt,
    given,
    model_opt,
    output_opt,
    overwrite_opt,
)
from ..ui import progress_bar


@click.command("predict-images")
@click.argument("images_dir", type=click.Path(path_type=Path), metavar="IMAGES_DIR")
@output_opt("Submission CSV to write (id,rle_mask).", metavar="FILE.csv")
@model_opt
@click.option("--masks-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Also write each mask as a PNG (0/255) into this folder.")
@batch_size_opt
@device_opt
@overwrite_opt
def command(
    images_dir: Path,
    output: Path,
    model: Path | None,
    masks_dir: Path | None,
    batch_size: int | None,
    device: str | None,
    overwrite: bool,
) -> None:
    """Predict salt masks for TGS tiles into a Kaggle CSV.

    Reads every 101x101 PNG in IMAGES_DIR and writes id,rle_mask rows.

    Uses the model's flip TTA, tuned threshold and minimum salt area.

    \b
    Example:
      saltvol predict-images tgs/test/images -o submission.csv --model runs/r18/model.safetensors
    """
    from saltvol.train.predict import predict_images

    started = time.perf_counter()
    with progress_bar("predict-images") as progress:
        out = predict_images(
            images_dir, output, overwrite=overwrite, progress=progress,
            **given(model=model, masks_dir=masks_dir, batch_size=batch_size, device=device),
        )
    masks = f" and masks in {masks_dir}" if masks_dir is not None else ""
    click.echo(f"wrote {out}{masks} in {time.perf_counter() - started:.1f} s")
