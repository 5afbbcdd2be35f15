"""``saltvol train``: train the salt U-Net on TGS tiles, with checkpoints and resume."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import click

from ..options import batch_size_opt, given, output_opt, resume_opt
from ..ui import progress_bar

log = logging.getLogger(__name__)


@click.command("train")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="TGS data in Kaggle's layout (train/images, train/masks or train.csv).")
@output_opt("Run folder: config, log, checkpoints and the final model.safetensors.", metavar="RUN_DIR")
@click.option("--architecture", type=click.Choice(["unet", "unetplusplus", "manet"]), default=None,
              help="smp's Unet, UnetPlusPlus (nested skips between encoder stages; about 30 % more time per step in bf16) "
              "or MAnet (attention-weighted skips; about the U-Net's time per step). "
              "With --init, a new decoder on the model's trained encoder.  [default: unet]")
@click.option("--encoder", default=None, metavar="NAME", help="smp encoder, e.g. efficientnet-b0, resnet18, resnet34.  [default: efficientnet-b0]")
@click.option("--attention", type=click.Choice(["scse", "none"]), default=None,
              help="Decoder attention: scse (spatial and channel squeeze-excitation, about 1.5x slower on CPU) or none.  [default: none]")
@click.option("--decoder-channels", default=None, metavar="W,W,W,W,W", callback=lambda ctx, param, value: _decoder_widths(value),
              help="Widths of the five decoder stages, deepest first: wider decoders learn more per epoch and cost "
              "time per step.  [default: 128,64,32,16,16]")
@click.option("--full-resolution-width", type=click.IntRange(min=0), default=None, metavar="W",
              help="Add a W-channel branch on the input that joins the decoder at full resolution (smp's U-Net has no "
              "skip finer than half resolution); about 15-40 % more time per step. With --init it grows the branch on "
              "the model, which starts silent.  [default: 0, none]")
@click.option("--epochs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Epochs in total (with --resume: raise it to train longer, or lower it to end the learning-rate cycle "
              "sooner; the epochs already trained end the run there and export it).")
@click.option("--fold", type=click.IntRange(min=0), default=None, metavar="K", help="Validation fold.  [default: 0]")
@click.option("--folds", "k_folds", type=click.IntRange(min=2), default=None, metavar="K",
              help="Number of coverage-stratified folds.  [default: 8]")
@batch_size_opt
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, metavar="F", help="Peak learning rate.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None, metavar="F",
              help="AdamW's decoupled weight decay on convolution and linear weights (norms and biases are not "
              "decayed): 0.01-0.05 regularises a network that fits its training folds.  [default: 1e-4]")
@click.option("--input-mode", type=click.Choice(["pad", "resize"]), default=None,
              help="Bring 101-pixel tiles to the network size by reflect-padding or resizing.  [default: pad]")
@click.option("--input-scale", type=click.FloatRange(0.5, 4), default=None, metavar="F",
              help="Zoom tiles by F before padding (2: 101 -> 202 px, padded to 256): finer feature maps, about 3-4x "
              "slower per epoch, and 'segment' then upsamples sections by F as well.  [default: 1]")
@click.option("--input-size", type=click.IntRange(min=32), default=None, metavar="N",
              help="Network input in pixels, a multiple of 32.  [default: 128 times --input-scale, rounded up to 32]")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Use only the first N tiles (quick runs).")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N", help="CPU threads for torch.")
@click.option("--init", "init_from", type=click.Path(path_type=Path), default=None, metavar="MODEL",
              help="Start from this model's weights (a model.safetensors or a run's best.pt; an ensemble with "
              "--init-member): a warm restart with a new learning-rate cycle. The architecture comes from the model, unless --architecture, --attention or "
              "--decoder-channels ask for a new decoder: then only the encoder is taken and the decoder (those flags, "
              "defaults for the rest) starts from scratch.")
@click.option("--init-member", type=click.IntRange(min=0), default=None, metavar="K",
              help="With an ensemble as --init: start from its network K, counted from 0 (in the bundled model "
              "0 is the U-Net and 1 the U-Net++; a wrong K lists them).")
@click.option("--lovasz-from", type=click.FloatRange(0, 1), default=None, metavar="F",
              help="Share of the epochs trained with BCE+Dice before switching to the Lovasz hinge (0: Lovasz throughout).  [default: 0.5]")
@click.option("--synthetic-tiles", type=click.IntRange(min=0), default=None, metavar="N",
              help="Add N tiles cut from 'saltvol synth' volumes at reflector periods of 8-30 px, mapped and rescaled as "
              "'segment' maps real sections (validation stays on TGS tiles).  [default: 0]")
@click.option("--symmetric-lovasz", is_flag=True, default=None,
              help="Average the Lovasz hinge on salt with the hinge on sediment, so every false salt pixel on an "
              "empty tile counts (the plain hinge counts only the worst one).")
@click.option("--lovasz-elu", is_flag=True, default=None,
              help="Lovasz hinge with elu(error)+1 instead of relu(error): pixels past the margin keep a gradient "
              "(the logged loss reads about 1 higher).")
@click.option("--drop-vertical-masks", is_flag=True, default=None,
              help="Leave out of training the tiles whose masks are TGS's vertical annotation artifacts (every column "
              "all salt or all sediment); validation keeps them.")
@click.option("--ema", "ema_decay", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="DECAY",
              help="Keep a moving average of the weights with this decay per step (e.g. 0.998: about 4 epochs of "
              "memory) and validate, keep and export the average instead of the last weights (0: off).  [default: 0]")
@click.option("--precision", type=click.Choice(["fp16", "int8", "fp32"]), default=None,
              help="Weight storage of the exported model: int8 (one scale per output channel) is half of fp16 and "
              "scored the same, so encoders up to about 30 M parameters fit in 30 MB.  [default: fp16]")
@click.option("--zoom-range", default=None, metavar="LOW,HIGH", callback=lambda ctx, param, value: _zoom_range(value),
              help="Random zoom of the augmented tiles (log-uniform): narrow it to stay near TGS's own scale, widen it "
              "for transfer to other reflector spacings.  [default: 0.6,1.6]")
@click.option("--affine-share", type=click.FloatRange(0, 1), default=None, metavar="P",
              help="Share of the tiles given a random zoom and shift.  [default: 0.6]")
@click.option("--frame-jitter", type=click.IntRange(min=0), default=None, metavar="PX",
              help="Move each padded tile in its frame by up to PX whole pixels each way, so the network does not learn "
              "one placement on its encoder's stride grid; at most half the padding (13 for 101 px tiles in 128, 27 at "
              "--input-scale 2).  [default: 0]")
@click.option("--teacher", type=click.Path(path_type=Path), default=None, metavar="MODEL",
              help="Also train towards this model's probabilities on every training tile (distillation): an "
              "ensemble's knowledge in one network. It must be trained on the same split; its predictions on about "
              "4,000 tiles take a few minutes when the run starts or resumes.")
@click.option("--distill-weight", type=click.FloatRange(min=0, min_open=True), default=None, metavar="W",
              help="Weight of the cross-entropy to the --teacher's probabilities beside the segmentation loss.  [default: 1]")
@resume_opt
def command(
    data_dir: Path,
    output: Path,
    architecture: str | None,
    encoder: str | None,
    attention: str | None,
    decoder_channels: tuple[int, ...] | None,
    full_resolution_width: int | None,
    epochs: int | None,
    fold: int | None,
    k_folds: int | None,
    batch_size: int | None,
    lr: float | None,
    weight_decay: float | None,
    input_mode: str | None,
    input_scale: float | None,
    input_size: int | None,
    limit: int | None,
    threads: int | None,
    init_from: Path | None,
    init_member: int | None,
    lovasz_from: float | None,
    synthetic_tiles: int | None,
    symmetric_lovasz: bool | None,
    lovasz_elu: bool | None,
    drop_vertical_masks: bool | None,
    ema_decay: float | None,
    precision: str | None,
    zoom_range: tuple[float, float] | None,
    affine_share: float | None,
    frame_jitter: int | None,
    teacher: Path | None,
    distill_weight: float | None,
    resume: bool,
) -> None:
    """Train a salt model on TGS tiles.

    Prints one line per epoch and, at the end, the exported model file.

    A checkpoint is written after every epoch; --resume continues an
    interrupted run exactly (raise --epochs to train longer, lower it to end sooner).

    \b
    Examples:
      saltvol train --data /data/tgs -o runs/b0 --epochs 25
      saltvol train --data /data/tgs -o runs/b0 --resume --epochs 40
      saltvol train --data /data/tgs -o runs/b0b --init runs/b0/best.pt --lr 1e-3 --lovasz-from 0 --synthetic-tiles 800
      saltvol train --data /data/tgs -o runs/r18 --encoder resnet18 --attention scse
      saltvol train --data /data/tgs -o runs/pp --init runs/b0/best.pt --architecture unetplusplus --lovasz-from 0.25
      saltvol train --data /data/tgs -o runs/kd --init runs/b0/best.pt --teacher ensemble.safetensors --lovasz-from 0
    """
    from saltvol.model import ModelConfig
    from saltvol.train.augment import AugmentConfig
    from saltvol.train.loop import TrainConfig, default_input_size, train

    settings = given(fold=fold, k_folds=k_folds, batch_size=batch_size, lr=lr, weight_decay=weight_decay, input_mode=input_mode, input_scale=input_scale,
                     input_size=input_size or (default_input_size(input_scale) if input_scale else None), limit=limit, threads=threads,
                     lovasz_from=lovasz_from, init_from=str(init_from) if init_from else None, init_member=init_member, synthetic_tiles=synthetic_tiles,
                     symmetric_lovasz=symmetric_lovasz, lovasz_elu=lovasz_elu, drop_vertical_masks=drop_vertical_masks,
                     ema_decay=ema_decay, precision=precision, teacher=str(teacher) if teacher else None,
                     distill_weight=distill_weight)
    augment = given(zoom=zoom_range, p_affine=affine_share, frame_jitter=frame_jitter)
    if augment:
        settings["augment"] = AugmentConfig(**augment)
    if resume:
        architecture_flags = (("architecture", architecture), ("encoder", encoder), ("attention", attention),
                              ("decoder-channels", decoder_channels), ("full-resolution-width", full_resolution_width))
        augment_flags = (("zoom-range", zoom_range), ("affine-share", affine_share), ("frame-jitter", frame_jitter))
        ignored = [f"--{_FLAG_OF.get(k, k).replace('_', '-')}" for k in settings if k != "augment"]
        ignored += [f"--{name}" for name, value in architecture_flags + augment_flags if value is not None]
        if ignored:
            log.warning("%s ignored with --resume: a resumed run keeps its saved settings", ", ".join(ignored))
        config = TrainConfig(epochs=epochs) if epochs else None
    else:
        if distill_weight is not None and not teacher:
            raise click.UsageError("--distill-weight weighs the --teacher's targets, and no --teacher was given; pass --teacher MODEL or drop it")
        if init_from and encoder:
            raise click.UsageError("--encoder comes with the --init model; drop it (or drop --init to train a new encoder)")
        if architecture in ("unetplusplus", "manet") and full_resolution_width:
            raise click.UsageError("--full-resolution-width needs --architecture unet; drop one of them")
        if architecture == "manet" and attention == "scse":
            raise click.UsageError("--attention scse needs --architecture unet or unetplusplus (manet has its own attention); drop one of them")
        # With --init, a decoder flag asks for a new decoder on the model's encoder (the other decoder settings
        # are then the defaults, not the model's).
        new_decoder = bool(init_from and (architecture or attention or decoder_channels))
        network = given(arch=architecture, encoder=encoder, decoder_channels=decoder_channels,
                        full_resolution_width=full_resolution_width)
        if attention:
            network["decoder_attention"] = None if attention == "none" else attention
        model = ModelConfig(**network)
        config = TrainConfig(model=model, init_encoder_only=new_decoder, **given(epochs=epochs), **settings)

    with progress_bar() as progress:
        done: dict[str, int | None] = {"epoch": None if resume else 0}  # a resumed run's start is known after its first epoch

        def on_step(step: int, steps: int, loss: float) -> None:
            progress(step, steps, "epoch" if done["epoch"] is None else f"epoch {done['epoch'] + 1}")

        def on_epoch(report) -> None:  # saltvol.train.loop.EpochReport
            done["epoch"] = report.epoch
            total = f"/{config.epochs}" if config else ""
            click.echo(
                f"epoch {report.epoch}{total}  {report.loss_name} loss {report.train_loss:.4f}  "
                f"val {report.val_score:.4f}  lr {report.lr:.2e}  {report.seconds:.1f} s" + ("  best" if report.best else "")
            )

        path = train(data_dir, output, config, resume=resume, on_step=on_step, on_epoch=on_epoch)
    click.echo(f"model: {path}")


#: TrainConfig fields whose command-line flag is not the field's name.
_FLAG_OF = {"init_from": "init", "k_folds": "folds", "ema_decay": "ema"}


def _decoder_widths(value: str | None) -> tuple[int, ...] | None:
    """Parse ``--decoder-channels``: five positive integers, because smp's U-Net has one decoder stage per encoder stage."""
    if value is None:
        return None
    try:
        widths = tuple(int(part) for part in value.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 5 or min(widths) < 1:
        raise click.BadParameter(f"{value!r} is not five positive widths; give e.g. 256,128,64,32,16")
    return widths


def _zoom_range(value: str | None) -> tuple[float, float] | None:
    """Parse ``--zoom-range``: two positive zooms, low first (1 means no zoom)."""
    if value is None:
        return None
    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError:
        low = high = 0.0
    if not 0 < low <= high < math.inf:
        raise click.BadParameter(f"{value!r} is not LOW,HIGH with 0 < LOW <= HIGH; give e.g. 0.8,1.25")
    return low, high
