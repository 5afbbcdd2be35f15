"""The salt model: an smp U-Net plus everything needed to use it safely.

:class:`SaltModel` pairs a network with the metadata it was trained under
(encoder, input normalisation, reflector period of the training data, tuned
threshold and minimum area, validation score).  It pads tiles to what the
network accepts, runs them in batches under ``torch.inference_mode`` with the
fastest precision for the device, and returns probabilities.

A model is one U-Net or an ensemble of several (:mod:`saltvol.ensemble`)
whose mean probability stands in for one network's.  Model files never run
code: shipped weights are safetensors (fp16 or int8 storage, metadata as a
JSON string), and training checkpoints are read with
``torch.load(weights_only=True)``.  A network is loaded once per process
(:func:`load_model` caches), and so once per Dask worker.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._allocator import tune_allocator
from .errors import CheckpointError

if TYPE_CHECKING:  # torch is imported lazily: building a graph must not need it
    import torch

    from ._weight_storage import Precision

__all__ = [
    "DEFAULT_MODEL_PATH",
    "ModelConfig",
    "ModelInfo",
    "ModelMeta",
    "SaltModel",
    "build_model",
    "build_network",
    "calibrate",
    "ensemble_member",
    "load_model",
    "network_from_state",
    "read_model_info",
    "save_model",
]

log = logging.getLogger(__name__)

#: Most networks an ensemble file may hold (a header asking for more is refused before anything is built).
MAX_MEMBERS = 8
#: The architectures ``ModelConfig.arch`` may name, and the smp class each is built with.
#: "manet" is smp's MAnet: a position-attention block on the deepest features and multi-scale fusion attention
#: on every skip, about as fast per bf16 training step as the U-Net (it has no ``decoder_attention_type``).
ARCHITECTURES = {"unet": "Unet", "unetplusplus": "UnetPlusPlus", "manet": "MAnet"}
#: The trained model that ships with the package.
DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "saltvol-unet.safetensors"
#: Input pixels up to which a batch and its mirror image go through the network together (four 256 x 256 tiles,
#: a CPU batch); larger batches run the mirror as a second pass, so the flip never doubles the peak memory.
_TTA_ONE_PASS_PIXELS = 4 * 256 * 256

Device = Literal["auto", "cpu", "cuda"] | str


@dataclass(frozen=True)
class ModelConfig:
    """Constructor arguments of the network; saved with the weights so it can be rebuilt."""

    #: smp's ``Unet``, its nested-skip ``UnetPlusPlus`` (dense skip paths between the encoder stages; about
    #: 30 % more time per bf16 training step with efficientnet-b0 and the default decoder widths), or ``MAnet``
    #: (attention-weighted skips; about the U-Net's time per step).
    arch: Literal["unet", "unetplusplus", "manet"] = "unet"
    encoder: str = "efficientnet-b0"  # the shipped model's: 1.8x faster per step than resnet18 + scSE, and better (docs/model.md)
    in_channels: int = 1
    classes: int = 1
    decoder_attention: str | None = None
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    aux_head: bool = True
    #: Channels of a branch on the input joined to the decoder output at full resolution (0: smp's plain U-Net,
    #: whose finest skip is at half resolution; :mod:`saltvol.unet`).
    full_resolution_width: int = 0


@dataclass(frozen=True)
class ModelMeta:
    """What a network was trained under, and how to use it.

    ``image_mean``/``image_std`` standardise inputs given in *image units*
    (TGS pixel / 255, so seismic mid-grey is about 0.47).  ``image_center`` and
    ``image_spread`` are the robust centre (median) and spread (half the
    16-84 percentile range) of the training images in those units: the target
    that :mod:`saltvol.normalize` maps seismic amplitudes onto.  ``period_px``
    is the dominant vertical reflector period of the training tiles in pixels;
    ``input_scale`` is the zoom from tile pixels to network pixels (2.0 for a
    network trained on tiles upsampled 101 -> 202), so the target of scale
    matching is their product (:attr:`SaltModel.network_period_px`): a
    section is resampled to the period the network saw.  ``calibration`` is the Platt scaling
    ``(a, b)`` fitted on validation pixels at export: the network's
    (TTA-averaged) probability ``p`` is reported as ``sigmoid(a * logit(p) + b)``.
    A Lovasz-trained network puts nearly all pixels near 0.25 or 0.75, whatever
    its confidence; calibrated, 0.9 means "salt nine times in ten" on TGS, which
    is what an interpreter reading a probability cube expects.  ``threshold`` is
    in calibrated units.  ``members`` is empty for one network; for an
    ensemble it lists the U-Nets whose probabilities are averaged (``config``
    is then the first of them), all trained on the same split and
    normalisation, so one calibration and threshold apply to their mean.
    """

    config: ModelConfig = field(default_factory=ModelConfig)
    members: tuple[ModelConfig, ...] = ()
    train_size: int = 128
    input_mode: Literal["pad", "resize"] = "pad"
    input_scale: float = 1.0
    image_mean: float = 0.4723
    image_std: float = 0.1621
    image_center: float = 0.4706
    image_spread: float = 0.1333
    period_px: float = 25.0
    calibration: tuple[float, float] = (1.0, 0.0)
    threshold: float = 0.5
    min_area: int = 0
    tta: bool = True
    val_score: float | None = None
    val_scores_by_bin: dict[str, float] | None = None
    epochs: int | None = None
    data_fingerprint: str | None = None
    fold: int = 0
    k_folds: int = 8
    split_seed: int = 42
    saltvol_version: str | None = None
    name: str = "saltvol-unet"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMeta:
        raw = dict(raw)
        config = _config_from_dict(raw.pop("config", {}))
        members = tuple(_config_from_dict(member) for member in raw.pop("members", ()))
        if isinstance(raw.get("calibration"), list):
            raw["calibration"] = tuple(raw["calibration"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(config=config, members=members, **{k: v for k, v in raw.items() if k in known})

    @property
    def networks(self) -> tuple[ModelConfig, ...]:
        """The U-Nets this model averages: ``members``, or ``config`` alone."""
        return self.members or (self.config,)


def _config_from_dict(raw: dict[str, Any]) -> ModelConfig:
    config_raw = dict(raw)
    if "decoder_channels" in config_raw:
        config_raw["decoder_channels"] = tuple(config_raw["decoder_channels"])
    known = {f for f in ModelConfig.__dataclass_fields__}
    return ModelConfig(**{k: v for k, v in config_raw.items() if k in known})


def calibrate(probs: Any, calibration: tuple[float, float]) -> Any:
    """Platt-scale probabilities (numpy array or torch tensor): ``sigmoid(a * logit(p) + b)``.

    Monotonic, so masks at a threshold ``t`` equal calibrated masks at
    ``calibrate(t)``.  The identity ``(1, 0)`` returns ``probs`` unchanged.
    """
    a, b = calibration
    if (a, b) == (1.0, 0.0):
        return probs
    if isinstance(probs, np.ndarray):
        p = np.clip(probs, 1e-6, 1 - 1e-6)
        return (1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))).astype(probs.dtype, copy=False)
    import torch

    return torch.sigmoid(a * torch.logit(probs, eps=1e-6) + b)


def build_model(config: ModelConfig | None = None) -> torch.nn.Module:
    """Build the smp network for ``config`` with random weights.

    Encoders always start from scratch (``encoder_weights=None``): nothing is
    downloaded, ever.
    """
    import segmentation_models_pytorch as smp

    config = config or ModelConfig()
    problem = _config_problem(config)  # the same checks a model file's metadata pass
    if problem:
        raise CheckpointError(f"cannot build this network: {problem}; change the ModelConfig")
    width = config.full_resolution_width
    aux = dict(classes=1, dropout=0.2) if config.aux_head else None
    arguments = dict(
        encoder_name=config.encoder,
        encoder_weights=None,
        in_channels=config.in_channels,
        classes=config.classes,
        decoder_channels=tuple(config.decoder_channels),
        aux_params=aux,
    )
    if config.decoder_attention is not None:  # MAnet has its own attention and no such argument
        arguments["decoder_attention_type"] = config.decoder_attention
    try:
        if width:
            from .unet import FullResolutionUnet

            return FullResolutionUnet(width=width, **arguments)
        return getattr(smp, ARCHITECTURES[config.arch])(**arguments)
    except (KeyError, ValueError) as e:
        other_arch = " or arch 'unet'" if config.arch != "unet" else ""
        raise CheckpointError(
            f"cannot build a {config.arch} with encoder {config.encoder!r} ({str(e).splitlines()[0][:160]}); "
            f"choose an encoder from segmentation_models_pytorch.encoders.get_encoder_names(){other_arch}"
        ) from e


def build_network(meta: ModelMeta) -> torch.nn.Module:
    """The network ``meta`` describes, with random weights: one U-Net, or an ensemble of its ``members``."""
    if not meta.members:
        return build_model(meta.config)
    from .ensemble import EnsembleNetwork

    return EnsembleNetwork([build_model(member) for member in meta.members])


def resolve_device(device: Device = "auto") -> str:
    """``"auto"`` becomes ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} asked for but no CUDA GPU is visible; use --device cpu")
    return str(device)


def autocast_dtype(device: str) -> torch.dtype | None:
    """The reduced precision that is fast and accurate enough on ``device``.

    CUDA: float16 autocast.  CPU: bfloat16 autocast where the processor has
    native bf16 instructions (AVX512-BF16 or AMX: a training step 2-4x faster
    than fp32, see docs/benchmarks.md), else full float32.  oneDNN also runs
    bf16 on plain AVX-512, but by conversion: on an Ice Lake Xeon a training
    step took 1.7-1.9x *longer* than in fp32 (docs/model.md, "Sessions 20-21").
    ``SALTVOL_PRECISION=fp32`` turns reduced precision off (it is read here,
    when a model is loaded).
    """
    import torch

    if os.environ.get("SALTVOL_PRECISION", "").lower() in {"fp32", "float32"}:
        return None
    if device.startswith("cuda"):
        return torch.float16
    return torch.bfloat16 if _cpu_has_native_bf16() else None


def onednn_runs_bf16() -> bool:
    """Whether oneDNN accepts bf16 on this CPU at all (natively or by conversion), for benchmarks and tests."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), not by conversion.

    x86 only: other CPUs (ARM's bf16 included, which has not been measured here) run fp32.
    """
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    try:
        capabilities = torch.cpu.get_capabilities()
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    except (AttributeError, RuntimeError):  # a torch without the capability table: its older private probes
        try:
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        except (AttributeError, RuntimeError):
            return False


def _encoders(meta: ModelMeta) -> str:
    """The encoder name (with its decoder if not smp's Unet), or the members' joined by " + " for an ensemble."""
    return " + ".join(str(c.encoder) + (f" ({c.arch})" if c.arch != "unet" else "") for c in meta.networks)


class _DescribedByMeta:
    """``name`` and ``period_px`` of anything that carries a model's ``meta``."""

    meta: ModelMeta

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def period_px(self) -> float:
        return float(self.meta.period_px)

    @property
    def network_period_px(self) -> float:
        """The reflector period as the network saw it: the tiles' period times the input zoom."""
        return float(self.meta.period_px) * float(self.meta.input_scale)


class SaltModel(_DescribedByMeta):
    """A trained network with its metadata, ready to predict tiles.

    Parameters
    ----------
    network : torch.nn.Module
        An smp U-Net built by :func:`build_model`, or an ensemble of them
        (:func:`build_network`).
    meta : ModelMeta
        What it was trained under.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    source : str, optional
        Where the weights came from (for provenance).
    sha256 : str, optional
        Hash of the weights file (for provenance).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        meta: ModelMeta,
        *,
        device: Device = "auto",
        source: str | None = None,
        sha256: str | None = None,
    ) -> None:
        import torch

        self.device = resolve_device(device)
        self.meta = meta
        self.source = source
        self.sha256 = sha256
        self.amp_dtype = autocast_dtype(self.device)
        network = network.eval().to(self.device)
        self.network = network.to(memory_format=torch.channels_last)

    def __repr__(self) -> str:
        score = f", val_score={self.meta.val_score:.4f}" if self.meta.val_score else ""
        return f"SaltModel({_encoders(self.meta)!r}, device={self.device!r}{score})"

    # ------------------------------------------------------------- inference
    def predict_tiles(self, x: np.ndarray, *, batch_size: int = 16, tta: bool | None = None) -> np.ndarray:
        """Salt probability of each pixel of a stack of tiles.

        Tiles are standardised with the training statistics, reflect-padded
        to a multiple of 32 (what the U-Net's five poolings need), run in
        batches and cropped back.  With ``tta`` the horizontally flipped tile
        is predicted too and the two probabilities averaged (no vertical
        flips: geology has an up).

        Parameters
        ----------
        x : np.ndarray of float32, shape (N, H, W)
            Tiles in image units (see :mod:`saltvol.normalize`).
        batch_size : int, default 16
        tta : bool, optional
            Defaults to the model's own setting.

        Returns
        -------
        np.ndarray of float32, shape (N, H, W), values in [0, 1]
        """
        import torch

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"predict_tiles wants an array of shape (N, H, W), got shape {x.shape!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        tta = self.meta.tta if tta is None else tta
        out = np.empty(x.shape, dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
                out[start : start + batch_size] = self._predict_batch(batch, tta=tta)
        return out

    def _predict_batch(self, batch: torch.Tensor, *, tta: bool) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        n, h, w = batch.shape
        pad_h, pad_w = (-h) % 32, (-w) % 32
        inputs = (batch[:, None] - self.meta.image_mean) / self.meta.image_std
        if pad_h or pad_w:
            mode = "reflect" if (pad_h < h and pad_w < w) else "replicate"
            inputs = F.pad(inputs, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode=mode)
        if not tta:
            prob = self._forward(inputs)
        elif inputs.numel() <= _TTA_ONE_PASS_PIXELS:
            both = self._forward(torch.cat([inputs, inputs.flip(-1)]))
            prob = 0.5 * (both[:n] + both[n:].flip(-1))
        else:
            # A large batch (a whole section): two passes keep the peak activation memory at one batch's worth
            # instead of two.
            prob = 0.5 * (self._forward(inputs) + self._forward(inputs.flip(-1)).flip(-1))
        prob = calibrate(prob, self.meta.calibration)
        top, left = pad_h // 2, pad_w // 2
        return prob[:, top : top + h, left : left + w].cpu().numpy()

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the network on standardised, padded inputs (N, 1, H, W), on the model's device."""
        import torch

        if self.device != "cpu":
            inputs = inputs.pin_memory() if self.device.startswith("cuda") else inputs
            inputs = inputs.to(self.device, non_blocking=True)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device_type="cuda" if self.device.startswith("cuda") else "cpu",
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            logits = self.network(inputs)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return torch.sigmoid(logits.float())[:, 0]

    def with_meta(self, **changes: Any) -> SaltModel:
        """A copy sharing the network, with some metadata fields replaced."""
        clone = object.__new__(SaltModel)
        clone.__dict__.update(self.__dict__)
        clone.meta = replace(self.meta, **changes)
        return clone


# ---------------------------------------------------------------- file I/O
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    network: torch.nn.Module,
    meta: ModelMeta,
    path: str | os.PathLike,
    *,
    precision: Precision = "fp16",
    half: bool | None = None,
) -> Path:
    """Write weights and metadata as one safetensors file.

    ``precision`` is how the weights are stored: ``"fp16"`` (the default, half
    the size of fp32 at no cost to the score), ``"fp32"``, or ``"int8"`` with
    one scale per output channel (a quarter; see :mod:`saltvol._weight_storage`).
    Loading always returns float32 weights.  ``half`` is the older spelling
    (``True``: fp16, ``False``: fp32) and, when given, wins.  The file is
    written under a temporary name and renamed into place, so a crash never
    leaves a half-written model behind.  It is written by Python's own
    ``open``, so it gets the permissions of the user's umask (safetensors'
    ``save_file`` creates files 0600, which workers of another user on a
    cluster's shared disk could not read).
    """
    from safetensors.torch import save

    from ._weight_storage import encode_state

    if half is not None:
        precision = "fp16" if half else "fp32"
    tensors = encode_state(network.state_dict(), precision)  # before any file exists: a bad precision writes nothing
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(save(tensors, metadata={"saltvol": meta.to_json()}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failed write or rename: no stray half-file beside the target
    return path


def _parse_meta(path: Path, raw: Any) -> ModelMeta:
    """The saltvol metadata of a model file, checked field by field (CheckpointError if unusable)."""
    try:
        fields = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        if not isinstance(fields, dict) or not isinstance(fields.get("config", {}), dict):
            raise TypeError(f"expected a JSON object, got {type(fields).__name__}")
        members = fields.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise TypeError("'members' is not a list of network configs")
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"'members' lists {len(members)} networks, more than the {MAX_MEMBERS} an ensemble may hold")
        meta = ModelMeta.from_dict(fields)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise CheckpointError(
            f"{path} has unreadable saltvol metadata ({type(e).__name__}: {str(e)[:120]}); "
            "pass a model written by 'saltvol train'"
        ) from e
    problem = _meta_problem(meta)
    if problem:
        raise CheckpointError(f"{path} has invalid saltvol metadata ({problem}); pass a model written by 'saltvol train'")
    return meta


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _config_problem(c: ModelConfig) -> str | None:
    """What is wrong with one network's constructor arguments, or None."""
    checks = [
        (c.arch in ARCHITECTURES, f"arch {c.arch!r} is not one of {', '.join(ARCHITECTURES)}"),
        (isinstance(c.encoder, str) and bool(c.encoder), f"encoder {c.encoder!r} is not a name"),
        (c.in_channels == 1 and _count(c.in_channels), f"in_channels {c.in_channels!r} is not 1"),
        (_count(c.classes), f"classes {c.classes!r} is not a positive integer"),
        (c.decoder_attention is None or isinstance(c.decoder_attention, str), "decoder_attention is not a name"),
        (len(c.decoder_channels) > 0 and all(_count(v) for v in c.decoder_channels),
         f"decoder_channels {c.decoder_channels!r} are not positive integers"),
        (isinstance(c.aux_head, bool), "aux_head is not true/false"),
        (isinstance(c.full_resolution_width, int) and not isinstance(c.full_resolution_width, bool)
         and c.full_resolution_width >= 0, f"full_resolution_width {c.full_resolution_width!r} is not a width >= 0"),
        (not c.full_resolution_width or c.arch == "unet", f"a full-resolution branch needs arch 'unet', not {c.arch!r}"),
        (c.decoder_attention is None or c.arch != "manet", "decoder_attention needs arch 'unet' or 'unetplusplus' (manet has its own)"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _meta_problem(meta: ModelMeta) -> str | None:
    """What is wrong with metadata that parsed, or None."""
    for index, config in enumerate(meta.networks):
        problem = _config_problem(config)
        if problem:
            return f"ensemble member {index}: {problem}" if meta.members else problem
    checks = [
        (not meta.members or (len(meta.members) >= 2 and meta.members[0] == meta.config),
         "an ensemble's members must list at least two networks, the first being its config"),
        (_count(meta.train_size), f"train_size {meta.train_size!r} is not a positive integer"),
        (meta.input_mode in ("pad", "resize"), f"input_mode {meta.input_mode!r} is not 'pad' or 'resize'"),
        (_number(meta.image_mean) and _number(meta.image_center), "image_mean/image_center are not finite numbers"),
        (_number(meta.image_std) and meta.image_std > 0, f"image_std {meta.image_std!r} is not a positive number"),
        (_number(meta.image_spread) and meta.image_spread > 0, f"image_spread {meta.image_spread!r} is not a positive number"),
        (_number(meta.period_px) and meta.period_px > 0, f"period_px {meta.period_px!r} is not a positive number"),
        (_number(meta.input_scale) and 0.25 <= meta.input_scale <= 8, f"input_scale {meta.input_scale!r} is not a zoom between 0.25 and 8"),
        (_number(meta.threshold) and 0 <= meta.threshold <= 1, f"threshold {meta.threshold!r} is not in [0, 1]"),
        (isinstance(meta.min_area, int) and meta.min_area >= 0, f"min_area {meta.min_area!r} is not a count"),
        (isinstance(meta.tta, bool), "tta is not true/false"),
        (isinstance(meta.calibration, tuple) and len(meta.calibration) == 2 and all(_number(v) for v in meta.calibration)
         and meta.calibration[0] > 0, f"calibration {meta.calibration!r} is not (a > 0, b)"),
        (isinstance(meta.name, str), "name is not a string"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _check_state(path: Path, state: Any) -> dict[str, Any]:
    """A state dict of named tensors with finite values, or CheckpointError."""
    import torch

    stored_dtypes = (torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.int64)
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path} holds no model state (expected named tensors); pass a model written by 'saltvol train'")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: model state entry {key!r} is not a named tensor; pass a model written by 'saltvol train'"
            )
        if value.dtype not in stored_dtypes:
            raise CheckpointError(
                f"{path}: weights {key!r} are stored as {value.dtype}, which saltvol never writes; "
                "pass a model written by 'saltvol train'"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{path}: weights {key!r} hold NaN or Inf (a diverged training run?); pass another model"
            )
    return state


def _read_safetensors(path: Path, *, weights: bool = True) -> tuple[dict[str, Any], ModelMeta]:
    """Weights and metadata of a safetensors model; with ``weights=False`` only the header is read (no torch)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt" if weights else "numpy") as fh:
            metadata = fh.metadata()
            raw_meta = metadata.get("saltvol") if isinstance(metadata, dict) else None
            state = {key: fh.get_tensor(key) for key in fh.keys()} if weights else {}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors model file ({str(e).strip()[:160]}); pass a file written by 'saltvol train'"
        ) from e
    if raw_meta is None:
        raise CheckpointError(f"{path} has no saltvol metadata; pass a model written by 'saltvol train'")
    meta = _parse_meta(path, raw_meta)
    if not weights:
        return state, meta
    from ._weight_storage import decode_state

    try:
        state = decode_state(_check_state(path, state))
    except ValueError as e:
        raise CheckpointError(f"{path} has damaged int8 weights ({e}); pass a model written by 'saltvol train'") from e
    return _check_state(path, state), meta


def _read_torch_checkpoint(path: Path) -> tuple[dict[str, Any], ModelMeta]:
    import pickle

    import torch

    try:
        # a file object, not the path: torch.load would hand "*.safetensors" paths to another loader
        with open(path, "rb") as fh:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as e:
        if isinstance(e, pickle.UnpicklingError):
            first = "it holds objects other than tensors and plain data, which could run code"
        else:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"{path} is not a safe saltvol checkpoint (refused to unpickle it: {first[:160]}); "
            "pass a .safetensors model or a checkpoint written by 'saltvol train'"
        ) from e
    if not isinstance(payload, dict) or "model" not in payload or "meta" not in payload:
        raise CheckpointError(f"{path} is not a saltvol checkpoint (no 'model' and 'meta' entries); pass one written by 'saltvol train'")
    meta = _parse_meta(path, payload["meta"])
    return _check_state(path, payload["model"]), meta


def read_model_file(path: str | os.PathLike, *, weights: bool = True) -> tuple[dict[str, Any], ModelMeta]:
    """State dict and metadata of a model file, without running any code from it.

    ``weights=False`` skips a safetensors file's tensors (an empty state dict, no torch import); a ``.pt``
    checkpoint is one pickle and is always read whole.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"model path {str(path)!r} is a folder, not a model file; check the path")
    if not path.is_file():
        raise CheckpointError(f"model file {str(path)!r} does not exist; check the path")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise CheckpointError(f"model file {str(path)!r} is empty (0 bytes); pass a model written by 'saltvol train'")
    # safetensors starts with a little-endian u64 header length; torch zips start with "PK".
    if head[:2] == b"PK":
        return _read_torch_checkpoint(path)
    return _read_safetensors(path, weights=weights)


def network_from_state(path: str | os.PathLike, state: dict[str, Any], meta: ModelMeta) -> torch.nn.Module:
    """The network ``meta`` describes, holding the weights of ``state`` (as read by :func:`read_model_file`).

    Raises CheckpointError, naming ``path``, when the metadata describe no
    network that can be built here or the weights do not fit it.
    """
    if meta.members:
        prefixes = {key.split(".", 2)[1] for key in state if key.startswith("members.") and key.count(".") >= 2}
        if prefixes != {str(i) for i in range(len(meta.members))}:
            raise CheckpointError(
                f"{path} describes an ensemble of {len(meta.members)} networks but holds weights for "
                f"{len(prefixes)}; pass a model written by 'saltvol ensemble'"
            )
    try:
        network = build_network(meta)
    except CheckpointError as e:
        raise CheckpointError(
            f"{path}: its metadata ask for a U-Net with encoder {_encoders(meta)!r}, which cannot be built "
            "here; pass a model written by 'saltvol train'"
        ) from e
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: its metadata describe no buildable U-Net ({type(e).__name__}: {str(e)[:120]}); "
            "pass a model written by 'saltvol train'"
        ) from e
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(
            f"{path} does not fit a U-Net with encoder {_encoders(meta)!r} ({first}); "
            "pass a model written by 'saltvol train'"
        ) from e
    return network


def ensemble_member(state: dict[str, Any], meta: ModelMeta, index: int) -> tuple[dict[str, Any], ModelMeta]:
    """The weights and metadata of network ``index`` of an ensemble (as read by :func:`read_model_file`).

    A shipped ensemble keeps no copy of the single networks it was made from, so
    a warm restart of one of them (``saltvol train --init FILE --init-member K``)
    starts from here.  The metadata keep the ensemble's split and normalisation,
    which the member shares; its calibration and threshold are the ensemble's,
    which is why this serves training, not inference.
    """
    if not meta.members:
        raise ValueError("the model is one network, not an ensemble; use its weights as they are")
    if not 0 <= index < len(meta.members):
        raise ValueError(f"the ensemble holds networks 0..{len(meta.members) - 1}, not {index}; choose one of those")
    prefix = f"members.{index}."
    member_state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    if not member_state:
        raise CheckpointError(f"the ensemble's file holds no weights for its network {index}; pass a model written by 'saltvol ensemble'")
    return member_state, replace(meta, config=meta.members[index], members=())


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, device: str) -> SaltModel:
    state, meta = read_model_file(path)
    network = network_from_state(path, state, meta)
    return SaltModel(network, meta, device=device, source=path, sha256=_sha256(Path(path)))


def load_model(path: str | os.PathLike | None = None, *, device: Device = "auto") -> SaltModel:
    """Load a model file (None = the bundled default), once per process.

    Parameters
    ----------
    path : path, optional
        A ``.safetensors`` model or a ``.pt`` training checkpoint written by
        ``saltvol train``.  Neither format can run code when loaded.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"

    Raises
    ------
    CheckpointError
        The file is missing, not a model, unsafe, or of another architecture.

    Notes
    -----
    The first call in a process also asks glibc to keep freed memory for
    reuse (:mod:`saltvol._allocator`; ``SALTVOL_MALLOC_TUNING=0`` turns this
    off): inference ran about 20 % faster that way.
    """
    tune_allocator()
    resolved = _model_path(path)
    return _load_cached(str(resolved), resolved.stat().st_mtime_ns, resolve_device(device))


def _model_path(path: str | os.PathLike | None) -> Path:
    """The model file to read (None = the bundled default), checked to exist; resolved to an absolute path."""
    resolved = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if path is None and not resolved.is_file():
        raise CheckpointError(
            "no bundled default model is installed; train one with 'saltvol train' and pass it with --model"
        )
    if not resolved.is_file():
        if resolved.exists():
            raise CheckpointError(f"model path {str(resolved)!r} is not a regular file (a folder or a device); check the path")
        raise CheckpointError(f"model file {str(resolved)!r} does not exist; check the path")
    return resolved.resolve()


@dataclass(frozen=True)
class ModelInfo(_DescribedByMeta):
    """What a model file says about itself, read without building the network.

    A cluster's client plans a run (scale factor, provenance) from this
    while the workers load the weights: it need not import torch, which
    took 20 s of a 90 s two-worker run when the client competed with its
    workers for the cores.
    """

    meta: ModelMeta
    source: str
    sha256: str


def read_model_info(path: str | os.PathLike | None = None) -> ModelInfo:
    """Metadata, source and hash of a model file (None = the bundled default), without loading its weights.

    A ``.safetensors`` model's header is read alone (without torch); a
    ``.pt`` checkpoint needs torch.  The weights themselves are checked when
    :func:`load_model` reads them (on a cluster: by each worker).
    """
    resolved = _model_path(path)
    _, meta = read_model_file(resolved, weights=False)
    return ModelInfo(meta=meta, source=str(resolved), sha256=_sha256(resolved))
