"""Train the salt U-Net on TGS tiles, with checkpoints every epoch and exact resume.

One run lives in one folder: ``config.json`` (the settings), ``log.jsonl``
(one line per epoch: losses, validation score, learning rate, seconds),
``last.pt`` (everything needed to continue: weights, optimizer, epoch, best
score), ``best.pt`` (the best epoch so far) and, at the end, ``model.safetensors``
(the best weights in fp16 with tuned threshold and minimum area).

A run can also start from the weights of an earlier model (``init_from``):
a warm restart with a fresh learning-rate cycle, which is how a finished run
is trained further without replaying its schedule.  With ``init_encoder_only``
only its encoder is taken and a new decoder (another architecture, say) is
trained on it from scratch: the encoder's epochs are not paid again.

With ``ema_decay`` set, an exponential moving average of the weights (and of
the batch-norm statistics) is kept beside the trained network
(``torch.optim.swa_utils.AveragedModel``): the average is what is validated,
kept as ``best.pt`` and exported, because the validation score of the raw
weights swings by about 0.01 from epoch to epoch and picking the best epoch
of a swinging curve is itself a fit to the validation fold.

With a ``teacher`` (a trained model, typically an ensemble, on the same
split), the network is also trained towards the teacher's probabilities on
every training tile (knowledge distillation, Hinton et al. 2015): a binary
cross-entropy to those soft targets is added to the loss, weighted by
``distill_weight``.  The soft targets say where the teacher is unsure, which
hard masks cannot; the aim is one network that does what the ensemble does
at a single network's cost in ``segment``.

Resume is exact: the order of tiles and the random augmentation of an epoch
come from generators seeded with ``(seed, epoch)``, and the learning rate is
a function of the step, so continuing from ``last.pt`` replays the same run.
Checkpoints are loaded with ``torch.load(weights_only=True)``: they cannot run
code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from .._allocator import tune_allocator
from .._weight_storage import PRECISIONS, Precision, as_stored
from ..errors import CheckpointError, InputError
from ..model import ModelConfig, ModelMeta, build_model, ensemble_member, read_model_file, save_model
from ..normalize import estimate_period, image_stats
from .augment import AugmentConfig, augment_batch, frame_jitter_fits, max_frame_jitter, place_in_frame, to_network_size
from .data import TGSData, load_tgs, stratified_folds, vertical_mask_artifacts
from .synthetic import synthetic_tiles
from .evaluate import predict_probabilities, score_report, tune_on_validation

__all__ = ["EpochReport", "TrainConfig", "default_input_size", "export_best", "train", "training_tiles"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (all saved in ``config.json``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 60
    fold: int = 0
    k_folds: int = 8
    seed: int = 42
    batch_size: int = 32
    lr: float = 2e-3
    lr_min: float = 2e-5
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    lovasz_from: float = 0.5
    aux_weight: float = 0.1
    input_size: int = 128
    input_mode: Literal["pad", "resize"] = "pad"
    input_scale: float = 1.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    limit: int | None = None
    threads: int | None = None
    init_from: str | None = None
    #: Take only the encoder (and its empty-tile head) from ``init_from`` and build ``model``'s decoder on it from
    #: scratch: a new decoder architecture on an encoder already trained on these tiles.
    init_encoder_only: bool = False
    #: With an ensemble as ``init_from``: the index of the network to start from.
    init_member: int | None = None
    synthetic_tiles: int = 0
    symmetric_lovasz: bool = False
    lovasz_elu: bool = False
    drop_vertical_masks: bool = False
    ema_decay: float = 0.0
    precision: Precision = "fp16"
    #: A model on the same split whose probabilities on the training tiles are soft targets (distillation).
    teacher: str | None = None
    #: The teacher file's sha256 when the run started: a resume refuses a changed file, whose targets would differ.
    teacher_sha256: str | None = None
    #: Weight of the cross-entropy to the teacher's probabilities beside the segmentation loss.
    distill_weight: float = 1.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        model = raw.pop("model")
        model["decoder_channels"] = tuple(model["decoder_channels"])
        augment = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.pop("augment").items()}
        return cls(model=ModelConfig(**model), augment=AugmentConfig(**augment), **raw)


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did; also one line of ``log.jsonl``."""

    epoch: int
    loss_name: str
    train_loss: float
    val_score: float
    lr: float
    seconds: float
    best: bool


def _lr_at(step: int, total: int, warmup: int, config: TrainConfig) -> float:
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * min(progress, 1.0)))


def _optimizer(network: torch.nn.Module, config: TrainConfig, *, saved: dict | None = None) -> torch.optim.AdamW:
    """AdamW that decays the weights of convolutions and linear layers, not norm scales, shifts or biases.

    Decoupled decay shrinks every tensor it touches by ``lr * weight_decay``
    per step.  On a batch-norm scale that is no regulariser (the next layer
    undoes it) but a slow pull of the whole channel toward zero, so
    ``--weight-decay`` at the strengths that regularise (0.01-0.05) leaves
    one-dimensional tensors alone, as timm and most vision recipes do.

    ``saved`` is a resumed run's optimizer state: runs written before that
    split kept one group that decays everything, and they continue as they
    were trained.
    """
    if isinstance(saved, dict) and len(saved.get("param_groups", ())) == 1:
        return torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    decayed = [p for p in network.parameters() if p.ndim > 1]
    kept = [p for p in network.parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": config.weight_decay}, {"params": kept, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


class _Losses:
    """BCE + soft Dice while the network finds salt, then the Lovasz hinge to sharpen IoU.

    ``lovasz_elu`` swaps the hinge's ``relu(error)`` for ``elu(error) + 1``
    (the variant several TGS entries trained with): pixels with a non-zero
    Lovasz weight keep a gradient past the margin, so the loss does not go
    flat once a tile is right.  Pixels ranked below every salt pixel keep
    weight 0 either way (on an empty tile all but the worst one), which is
    what the symmetric hinge addresses.

    The symmetric Lovasz hinge averages the hinge on salt with the hinge on
    sediment (negated logits, inverted masks).  On a tile without salt the
    plain per-image hinge only penalises the single worst pixel (the IoU of
    an empty class has one non-zero gradient entry), so a scatter of false
    salt costs no more than one false pixel; the sediment term makes every
    false pixel count.
    """

    def __init__(self, *, symmetric_lovasz: bool = False, lovasz_elu: bool = False) -> None:
        import segmentation_models_pytorch as smp

        if lovasz_elu:
            _smp_lovasz_grad()  # smp's private helper: fail when the run starts, not when its Lovasz phase does
        self.symmetric_lovasz = symmetric_lovasz
        self.dice = smp.losses.DiceLoss(mode="binary", from_logits=True)
        self.lovasz = lovasz_elu_hinge if lovasz_elu else smp.losses.LovaszLoss(mode="binary", per_image=True)

    def __call__(self, name: str, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if name == "lovasz":
            if self.symmetric_lovasz:
                return 0.5 * (self.lovasz(logits, masks) + self.lovasz(-logits, 1.0 - masks))
            return self.lovasz(logits, masks)
        return F.binary_cross_entropy_with_logits(logits, masks) + self.dice(logits, masks)


def lovasz_elu_hinge(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The per-image binary Lovasz hinge with ``elu(error) + 1`` in place of ``relu(error)``.

    smp's ``LovaszLoss`` fixes the relu; this reuses its Lovasz-extension
    gradient (``_lovasz_grad``, Berman et al. 2018, Alg. 1) and changes only
    the activation of the sorted errors.
    """
    lovasz_grad = _smp_lovasz_grad()
    per_image = []
    for logit, mask in zip(logits.flatten(1), masks.flatten(1)):
        errors = 1.0 - logit * (2.0 * mask - 1.0)
        errors_sorted, order = torch.sort(errors, descending=True)
        per_image.append(torch.dot(F.elu(errors_sorted) + 1.0, lovasz_grad(mask[order])))
    return torch.stack(per_image).mean()


def _smp_lovasz_grad() -> Callable[[torch.Tensor], torch.Tensor]:
    """smp's Lovasz-extension gradient, which smp keeps private (checked against smp 0.4-0.6)."""
    try:
        from segmentation_models_pytorch.losses.lovasz import _lovasz_grad
    except ImportError as e:
        raise InputError(
            "--lovasz-elu needs segmentation-models-pytorch's Lovasz gradient, which this version no longer has; "
            "train without --lovasz-elu or install segmentation-models-pytorch 0.6"
        ) from e
    return _lovasz_grad


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"cannot resume from {path} ({str(e).splitlines()[0][:160]}); start a new run without --resume"
        ) from e


def default_input_size(input_scale: float) -> int:
    """The network input for tiles zoomed by ``input_scale``: 128 px at 1x, scaled, rounded up to a multiple of 32.

    Keeps the reflect padding's share of the input (27 px of 128) at every zoom.
    """
    return 32 * math.ceil(128 * input_scale / 32)


def _network_zoom(config: TrainConfig, *, tile_size: int) -> float:
    """How much larger the network sees a tile than its pixels: the scale matching target's factor."""
    return config.input_size / tile_size if config.input_mode == "resize" else config.input_scale


def _check_input(config: TrainConfig, *, tile_size: int) -> None:
    """Refuse input settings the network cannot take, before a run folder is made."""
    if config.input_mode not in ("pad", "resize"):
        raise InputError(f"input mode {config.input_mode!r} is not 'pad' or 'resize'; pass --input-mode pad or --input-mode resize")
    if config.input_mode == "resize" and config.input_scale != 1.0:
        raise InputError("--input-scale zooms padded tiles; with --input-mode resize set --input-size instead")
    if not 0.5 <= config.input_scale <= 4:
        raise InputError(f"input scale {config.input_scale:g} is out of range; pass a zoom between 0.5 and 4")
    zoomed = round(tile_size * config.input_scale)
    if config.input_mode == "pad" and not zoomed <= config.input_size < 2 * zoomed:
        raise InputError(
            f"tiles zoomed to {zoomed} px do not reflect-pad to {config.input_size} px; "
            f"pass --input-size between {zoomed} and {2 * zoomed - 1} (a multiple of 32)"
        )
    jitter = config.augment.frame_jitter
    if not frame_jitter_fits(jitter, zoomed, config.input_size):
        raise InputError(f"a frame jitter of {jitter!r} px does not keep {zoomed} px tiles whole in their {config.input_size} px "
                         f"frame; pass --frame-jitter between 0 and {max_frame_jitter(zoomed, config.input_size)}")
    if jitter and config.input_mode == "resize":
        raise InputError("--frame-jitter moves a padded tile in its frame and --input-mode resize fills the frame; "
                         "drop --frame-jitter or train with --input-mode pad")
    if config.input_size % 32:
        raise InputError(f"input size {config.input_size} is not a multiple of 32; pass --input-size {32 * math.ceil(config.input_size / 32)}")
    if not 0 <= config.ema_decay < 1:
        raise InputError(f"weight-average decay {config.ema_decay:g} is out of range; pass a decay in [0, 1), e.g. 0.998 (0: off)")
    if config.precision not in PRECISIONS:
        raise InputError(f"precision {config.precision!r} is not one of {', '.join(PRECISIONS)}; choose one of them")
    if not (math.isfinite(config.distill_weight) and config.distill_weight > 0):
        raise InputError(f"distillation weight {config.distill_weight:g} is not a positive number; pass e.g. --distill-weight 1")


def _meta_for(config: TrainConfig, data: TGSData, train_index: np.ndarray) -> ModelMeta:
    images = data.images[train_index]
    stats = image_stats(images)
    textured = images.std(axis=(1, 2)) > 0.01
    period = estimate_period(np.swapaxes(images[textured], 1, 2)) if textured.any() else 25.0
    return ModelMeta(
        config=config.model,
        train_size=config.input_size,
        input_mode=config.input_mode,
        input_scale=_network_zoom(config, tile_size=images.shape[-1]),
        image_mean=float(images.mean()),
        image_std=float(images.std()),
        image_center=stats.center,
        image_spread=stats.spread,
        period_px=period,
        data_fingerprint=data.fingerprint,
        fold=config.fold,
        k_folds=config.k_folds,
        split_seed=config.seed,
        saltvol_version=__version__,
    )


#: State-dict prefixes of the full-resolution branch (:class:`saltvol.unet.FullResolutionUnet`), the weights a
#: warm restart may add to its ``--init`` model.
_BRANCH_KEYS = ("full_resolution.", "fuse.")
#: State-dict prefixes of what ``init_encoder_only`` carries over: the encoder and the empty-tile head on its deepest
#: features (smp names them alike in every architecture).
_ENCODER_KEYS = ("encoder.", "classification_head.")


def _warm_start_model(initial: ModelConfig, config: TrainConfig) -> ModelConfig:
    """The network a warm restart from ``initial`` trains.

    By default the ``--init`` model's own architecture, with the full-resolution
    branch ``config`` asks for grown on it: the branch starts silent (the
    output is unchanged), so training goes on from where the model was.  With
    ``init_encoder_only``, ``config``'s decoder on ``initial``'s encoder.
    """
    if config.init_encoder_only:
        model = replace(config.model, encoder=initial.encoder, in_channels=initial.in_channels, aux_head=initial.aux_head)
        if replace(model, full_resolution_width=initial.full_resolution_width) == initial:
            raise InputError(
                f"the decoder asked for is {_init_name(config)}'s own: drop --architecture, --attention and "
                "--decoder-channels to keep its trained decoder"
            )
        return model
    width = config.model.full_resolution_width
    if not width or width == initial.full_resolution_width:
        return initial
    if initial.full_resolution_width:
        raise InputError(
            f"{_init_name(config)} already has a full-resolution branch of width "
            f"{initial.full_resolution_width}; drop --full-resolution-width"
        )
    if initial.arch != "unet":
        raise InputError(f"{_init_name(config)} is a {initial.arch}; a full-resolution branch grows on a unet only: drop --full-resolution-width")
    return replace(initial, full_resolution_width=width)


def _starts_fresh(key: str, config: TrainConfig, init_meta: ModelMeta) -> bool:
    """Whether a warm restart builds weight ``key`` anew rather than taking it from ``--init``: a new decoder or a grown branch."""
    if config.init_encoder_only:
        return not key.startswith(_ENCODER_KEYS)
    grown = config.model.full_resolution_width != init_meta.config.full_resolution_width
    return grown and key.startswith(_BRANCH_KEYS)


def _load_initial_weights(network: torch.nn.Module, weights: dict[str, torch.Tensor], config: TrainConfig, init_meta: ModelMeta) -> None:
    """Load the ``--init`` weights into ``network``; only what the warm restart builds anew may be missing."""
    kept = {k: v.float() for k, v in weights.items() if not _starts_fresh(k, config, init_meta)}
    try:
        missing, unexpected = network.load_state_dict(kept, strict=False)
        missing = [key for key in missing if not _starts_fresh(key, config, init_meta)]
        if missing or unexpected:
            raise RuntimeError(f"missing weights {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}")
    except RuntimeError as e:
        raise CheckpointError(
            f"{_init_name(config)} does not fit its own architecture ({str(e).splitlines()[0][:160]}); "
            "pass a model written by 'saltvol train'"
        ) from e


def _init_name(config: TrainConfig) -> str:
    """How messages name the network a warm restart starts from: ``--init FILE``, or a network of that ensemble."""
    if config.init_member is None:
        return f"--init {config.init_from}"
    return f"network {config.init_member} of --init {config.init_from}"


def _init_network(
    weights: dict[str, torch.Tensor], meta: ModelMeta, config: TrainConfig
) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """The one network of ``--init`` to start from: the model itself, or member ``init_member`` of an ensemble."""
    if not meta.members:
        if config.init_member is not None:
            raise InputError(f"--init {config.init_from} is one network, not an ensemble; drop --init-member")
        return weights, meta
    choices = ", ".join(f"{i}: {m.arch} on {m.encoder}" for i, m in enumerate(meta.members))
    if config.init_member is None:
        raise InputError(f"--init {config.init_from} is an ensemble ({choices}); pass --init-member to start from one of its networks")
    try:
        return ensemble_member(weights, meta, config.init_member)
    except ValueError as e:  # an index outside the ensemble
        raise InputError(f"--init-member {config.init_member} is not a network of {config.init_from} ({choices}); choose one of those") from e


def _check_same_split(other: ModelMeta, config: TrainConfig, data: TGSData, *, name: str) -> None:
    """Refuse a model (``name``: a warm start or a teacher) that trained on this run's validation fold: its score would flatter it."""
    theirs = (other.data_fingerprint, other.fold, other.k_folds, other.split_seed)
    ours = (data.fingerprint, config.fold, config.k_folds, config.seed)
    if theirs != ours:
        raise InputError(
            f"{name} was trained on another split (data {theirs[0]}, fold {theirs[1]} of {theirs[2]}, "
            f"seed {theirs[3]}; this run: data {ours[0]}, fold {ours[1]} of {ours[2]}, seed {ours[3]}): its training tiles "
            "would be validated on; use the same --data, --fold, --folds and no --limit"
        )


def training_tiles(folds: np.ndarray, fold: int, masks: np.ndarray, *, drop_vertical_masks: bool = False) -> np.ndarray:
    """Indices of the tiles a run trains on: every fold but the validation one, less the vertical artifacts if asked.

    The validation fold keeps its artifacts either way, so scores stay comparable between runs.
    """
    training = folds != fold
    if drop_vertical_masks:
        training &= ~vertical_mask_artifacts(masks)
    return np.flatnonzero(training)


def _standardize(images: np.ndarray, meta: ModelMeta) -> torch.Tensor:
    return torch.from_numpy((images - meta.image_mean) / meta.image_std).float()[:, None]


def train(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> Path:
    """Train (or continue training) a salt model and export the best epoch.

    Parameters
    ----------
    data_dir : path
        A TGS folder in Kaggle's layout.
    run_dir : path
        Where checkpoints, the log and the final model go.
    config : TrainConfig, optional
        Ignored with ``resume=True``: a resumed run keeps its saved settings
        except ``epochs``, which may be raised to train longer or lowered to
        end sooner (the cosine schedule is stretched or shortened from there;
        lowered to the epochs already trained, the run just exports).
    resume : bool, default False
        Continue from ``run_dir/last.pt``.
    on_step, on_epoch : callable, optional
        Progress hooks: ``on_step(step_in_epoch, steps_per_epoch, loss)`` and
        ``on_epoch(EpochReport)``.

    Returns
    -------
    Path
        The exported ``model.safetensors``.
    """
    tune_allocator()  # every step frees and reallocates its activations: keep them instead of mmap/munmap
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    state: dict[str, Any] | None = None
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise InputError(f"nothing to resume in {str(run_dir)!r} (no last.pt); run without --resume")
        saved = TrainConfig.from_json(config_path.read_text())
        state = _load_checkpoint(run_dir / "last.pt")
        config = _resumed_config(saved, config.epochs if config else None, trained=int(state["epoch"]))
    else:
        config = config or TrainConfig()
        if (run_dir / "last.pt").exists():
            raise InputError(f"{str(run_dir)!r} already holds a run; pass --resume to continue it or choose another -o")
        if config.init_encoder_only and not config.init_from:
            raise InputError("init_encoder_only takes the encoder of the --init model, and none was given; pass init_from")
        if config.init_member is not None and not config.init_from:
            raise InputError("--init-member picks a network of the --init ensemble, and none was given; pass --init")
    initial_weights, init_meta = None, None
    if config.init_from and state is None:
        initial_weights, init_meta = read_model_file(config.init_from)
        initial_weights, init_meta = _init_network(initial_weights, init_meta, config)
        # The architecture comes with the weights; the path is kept absolute in config.json for provenance.
        config = replace(config, model=_warm_start_model(init_meta.config, config), init_from=str(Path(config.init_from).resolve()))
    teacher = _read_teacher(config) if config.teacher else None
    if teacher is not None and state is None:  # the path absolute and the file's hash in config.json, for provenance and resume
        config = replace(config, teacher=str(Path(config.teacher).resolve()), teacher_sha256=teacher.sha256)

    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_tgs(data_dir, limit=config.limit)
    if data.masks is None:
        raise InputError(f"{str(data_dir)!r} has no masks (train/masks or train.csv); training needs them")
    folds = stratified_folds(data.coverage, k=config.k_folds, seed=config.seed)
    if not 0 <= config.fold < config.k_folds:
        raise InputError(f"fold {config.fold} does not exist; choose 0..{config.k_folds - 1}")
    _check_input(config, tile_size=data.images.shape[-1])
    if init_meta is not None:
        _check_same_split(init_meta, config, data, name=_init_name(config))
    if teacher is not None:
        _check_same_split(teacher.meta, config, data, name=f"--teacher {config.teacher}")
    torch.manual_seed(config.seed)  # the same initial weights for the same settings
    network = build_model(config.model).to(memory_format=torch.channels_last)
    if initial_weights is not None:
        _load_initial_weights(network, initial_weights, config, init_meta)
        log.info("starting from the weights of %s", _init_name(config))
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the settings and the network are known to be usable
    config_path.write_text(config.to_json())
    # Normalisation from every training-fold tile, so dropping labels never shifts a warm start's input scaling.
    meta = _meta_for(config, data, np.flatnonzero(folds != config.fold))
    train_index = training_tiles(folds, config.fold, data.masks, drop_vertical_masks=config.drop_vertical_masks)
    val_index = np.flatnonzero(folds == config.fold)
    log.info("training on %d tiles, validating on %d (fold %d of %d)", len(train_index), len(val_index), config.fold, config.k_folds)

    optimizer = _optimizer(network, config, saved=state["optimizer"] if state is not None else None)
    start_epoch, best_score = 0, -1.0
    if state is not None:
        network.load_state_dict(state["train_model"] if "train_model" in state else state["model"])
        try:
            optimizer.load_state_dict(state["optimizer"])
        except ValueError as e:  # groups that do not match the network's parameters
            raise CheckpointError(
                f"{run_dir / 'last.pt'} holds an optimizer state that does not fit this network ({e}); "
                "start a new run from its best epoch with --init"
            ) from e
        start_epoch, best_score = int(state["epoch"]), float(state["best_score"])
        log.info("resuming after epoch %d (best validation score %.4f)", start_epoch, best_score)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    network.to(device)
    _move_optimizer(optimizer, device)
    averaged = _weight_average(network, config.ema_decay, state)
    from ..model import autocast_dtype

    amp = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")
    losses = _Losses(symmetric_lovasz=config.symmetric_lovasz, lovasz_elu=config.lovasz_elu)
    synth_images, synth_masks = synthetic_tiles(config.synthetic_tiles, meta=meta, seed=config.seed)
    images_t = _standardize(np.concatenate([data.images[train_index], synth_images]), meta)
    masks_t = torch.from_numpy(np.concatenate([data.masks[train_index], synth_masks.astype(bool)])).float()[:, None]
    if teacher is not None:  # the soft targets ride along as a second mask channel, moved by the same augmentation
        tiles = np.concatenate([data.images[train_index], synth_images])
        masks_t = torch.cat([masks_t, _teacher_probabilities(teacher, tiles, device)], dim=1)
        teacher = None  # the teacher's weights are not needed again (on a GPU: memory back for training)
        if device == "cuda":
            torch.cuda.empty_cache()
    # The training set is small (3,950 tiles and masks as float32: about 320 MB, 480 MB with a teacher's targets): on a
    # GPU it stays there, and a step copies only its batch index and augmentation parameters from the host.
    images_t, masks_t = images_t.to(device), masks_t.to(device)
    n_train = len(images_t)
    steps_per_epoch = max(1, n_train // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)

    for epoch in range(start_epoch, config.epochs):
        started = time.time()
        loss_name = "lovasz" if epoch >= config.lovasz_from * config.epochs else "bce_dice"
        epoch_seed = config.seed * 100_003 + epoch
        generator = torch.Generator().manual_seed(epoch_seed)
        torch.manual_seed(epoch_seed)  # dropout in the aux head draws from the global generator
        order = torch.randperm(n_train, generator=generator)
        network.train()
        running = []
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(global_step, total_steps, warmup, config)
            batch = order[step * config.batch_size : (step + 1) * config.batch_size].to(device)
            if config.input_mode == "resize":
                x = to_network_size(images_t[batch], config.input_size, "resize")
                y = to_network_size(masks_t[batch], config.input_size, "resize")
            else:
                x, y = place_in_frame(images_t[batch], masks_t[batch], config.input_size, jitter=config.augment.frame_jitter,
                                      generator=generator, scale=config.input_scale)
            x, y = augment_batch(x, y, _scaled_augment(config.augment, meta), generator)
            x = x.contiguous(memory_format=torch.channels_last)
            y, soft = y[:, :1], y[:, 1:]
            has_salt = (y.flatten(1).amax(dim=1) > 0).float()[:, None]
            with torch.autocast(device_type=device, dtype=amp or torch.float32, enabled=amp is not None):
                outputs = network(x)
            logits, label = outputs if isinstance(outputs, tuple) else (outputs, None)
            loss = losses(loss_name, logits.float(), y)
            if soft.shape[1]:
                loss = loss + config.distill_weight * F.binary_cross_entropy_with_logits(logits.float(), soft)
            if label is not None and config.aux_weight:
                loss = loss + config.aux_weight * F.binary_cross_entropy_with_logits(label.float(), has_salt)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if averaged is not None:
                averaged.update_parameters(network)
            running.append(float(loss.detach()))
            if on_step:
                on_step(step + 1, steps_per_epoch, float(np.mean(running)))

        judged = network if averaged is None else averaged.module
        probs = predict_probabilities(judged, data.images[val_index], meta, device=device)
        val_score = score_report(probs > 0.5, data.masks[val_index])["overall"]
        is_best = val_score > best_score
        best_score = max(best_score, val_score)
        report = EpochReport(
            epoch=epoch + 1,
            loss_name=loss_name,
            train_loss=float(np.mean(running)),
            val_score=float(val_score),
            lr=float(optimizer.param_groups[0]["lr"]),
            seconds=round(time.time() - started, 1),
            best=is_best,
        )
        payload = {
            "model": judged.state_dict(),  # what was validated: best.pt and the export hold these weights
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "best_score": best_score,
            "meta": meta.to_json(),
        }
        if averaged is not None:
            payload |= {"train_model": network.state_dict(), "n_averaged": averaged.n_averaged.clone().cpu()}
        if is_best:
            _atomic_save({k: v for k, v in payload.items() if k != "train_model"} | {"optimizer": {}}, run_dir / "best.pt")
        _atomic_save(payload, run_dir / "last.pt")
        with open(run_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(asdict(report)) + "\n")
        if on_epoch:
            on_epoch(report)

    return export_best(run_dir, data=data, val_index=val_index)


@dataclass(frozen=True)
class _Teacher:
    """A distillation teacher as read from its file: network, metadata and the file's hash."""

    network: torch.nn.Module
    meta: ModelMeta
    sha256: str


def _read_teacher(config: TrainConfig) -> _Teacher:
    """The ``--teacher`` model, read in full before a run folder is made; a resume checks it is the file it started with."""
    from ..model import network_from_state, read_model_info

    path = Path(config.teacher)
    weights, meta = read_model_file(path)  # a missing, empty or foreign file: one line naming it
    network = network_from_state(path, weights, meta)
    sha256 = read_model_info(path).sha256
    if config.teacher_sha256 and sha256 != config.teacher_sha256:
        raise InputError(
            f"--teacher {config.teacher} has changed since the run started (sha256 {config.teacher_sha256[:12]}..., now "
            f"{sha256[:12]}...), so its targets would too; restore that file, or start a new run from this one's best.pt with --init"
        )
    return _Teacher(network, meta, sha256)


def _teacher_probabilities(teacher: _Teacher, tiles: np.ndarray, device: str) -> torch.Tensor:
    """The teacher's probabilities on (N, H, W) tiles in image units, as (N, 1, H, W) soft targets on the CPU.

    Computed at each start of the run (about three minutes for 3,950 tiles
    and a two-network ensemble on 2 CPU cores) the way ``evaluate`` and
    ``predict-images`` run the teacher on TGS tiles: its own normalisation,
    input zoom or resize, flip averaging if it uses it, and calibration, so
    the targets are the probabilities it would report.  The calibration's two
    numbers were fitted on the validation fold; no tile or mask of that fold
    is trained on.  The teacher file is checked unchanged on resume, so a
    resumed run trains towards the same targets (on the same kind of device).
    """
    started = time.time()
    network = teacher.network.to(device)
    probs = predict_probabilities(network, tiles, teacher.meta, device=device, batch_size=64, tta=teacher.meta.tta)
    log.info("teacher: soft targets for %d tiles in %.0f s", len(tiles), time.time() - started)
    return torch.from_numpy(probs)[:, None]


def _resumed_config(saved: TrainConfig, epochs: int | None, *, trained: int) -> TrainConfig:
    """The saved settings with the new total of epochs, if one is given.

    Lowering the total is allowed (a session running out of time can still
    finish the learning-rate cycle); lowering it to the epochs already
    trained ends the run where it stopped and exports its best epoch; below
    that there is no such run.
    """
    if epochs is None or epochs == saved.epochs:
        return saved
    if epochs < trained:
        raise InputError(
            f"the run has already trained {trained} epochs; pass --epochs {trained} to end it there "
            "and export its best epoch, or more to go on"
        )
    log.info("changing the run's length from %d to %d epochs", saved.epochs, epochs)
    return replace(saved, epochs=epochs)


def _scaled_augment(augment: AugmentConfig, meta: ModelMeta) -> AugmentConfig:
    # Contrast/brightness are defined in image units; the network sees standardized values.
    return replace(augment, brightness=augment.brightness / meta.image_std)


def _weight_average(
    network: torch.nn.Module, decay: float, state: dict[str, Any] | None
) -> torch.optim.swa_utils.AveragedModel | None:
    """The moving average of ``network``'s weights and buffers, or None when ``decay`` is 0.

    On resume the average continues from the checkpoint (``model`` holds it,
    ``n_averaged`` its count), so a resumed run validates the same weights as
    an uninterrupted one.
    """
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    averaged = AveragedModel(network, multi_avg_fn=_ema_update(decay), use_buffers=True)
    if state is not None and "n_averaged" in state:
        averaged.module.load_state_dict(state["model"])
        averaged.n_averaged.fill_(int(state["n_averaged"]))
    return averaged


def _ema_decay_at(decay: float, n_averaged: int) -> float:
    """The decay for the update after ``n_averaged`` others: ``decay``, warmed up as ``(1 + n) / (10 + n)``.

    A fixed decay of 0.999 from scratch keeps a third of the random initial
    weights in the average after 1,100 steps (nine epochs here), and such an
    average predicts nothing (measured: validation stuck at the empty-tile
    share, 0.396, for epochs 4-10 of a resnet34 run).  The warm-up, as in
    TensorFlow's ``ExponentialMovingAverage(num_updates=...)``, lets the
    average follow the network while it moves fast and reach the full decay
    after about ``10 / (1 - decay)`` steps.
    """
    return min(decay, (1.0 + n_averaged) / (10.0 + n_averaged))


def _ema_update(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """An ``AveragedModel`` ``multi_avg_fn``: exponential moving average with the warm-up of :func:`_ema_decay_at`."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # int() waits for the device, but the step already does (its loss is read back every step).
        weight = 1.0 - _ema_decay_at(decay, int(n_averaged))
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (batch norm's num_batches_tracked)
            for a, c in zip(averaged, current, strict=True):
                a.copy_(torch.round(a * (1.0 - weight) + c * weight).to(a.dtype))

    return update


def _move_optimizer(optimizer: torch.optim.Optimizer, device: str) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def export_best(run_dir: str | os.PathLike, *, data: TGSData, val_index: np.ndarray) -> Path:
    """Tune threshold and minimum area on the validation fold and write ``model.safetensors``.

    The weights are stored at the run's ``precision`` (fp16 by default; int8
    lets a network of up to about 30 M parameters fit the package's 30 MB).
    """
    run_dir = Path(run_dir)
    state = _load_checkpoint(run_dir / "best.pt")
    meta = ModelMeta.from_dict(json.loads(state["meta"]))
    network = build_model(meta.config)
    network.load_state_dict(state["model"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = TrainConfig.from_json((run_dir / "config.json").read_text()).precision
    as_stored(network, precision)  # tune the weights the file will hold
    network.to(device).to(memory_format=torch.channels_last)
    meta, report = tune_on_validation(network, meta, data.images[val_index], data.masks[val_index], device=device)
    log.info("calibration a=%.3f b=%.3f; threshold %.4f, min area %d: %.4f", *meta.calibration, meta.threshold, meta.min_area, report["overall"])
    meta = replace(meta, epochs=int(state["epoch"]))
    return save_model(network.cpu(), meta, run_dir / "model.safetensors", precision=precision)
