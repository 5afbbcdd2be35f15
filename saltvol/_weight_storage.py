"""How weights are stored in a model file: fp32, fp16, or int8 with one scale per output channel.

int8 halves an fp16 file at no measurable cost to the score (docs/model.md,
session 13: the shipped model scored 0.8011 either way, paired difference
+0.0000, SE 0.0004), which is what lets two networks fit in the package's
30 MB.  Only weight tensors of two or more dimensions (convolutions, linear
layers) are quantized; biases and normalisation statistics stay fp16.

A quantized tensor ``name`` is stored as int8 values under ``name`` and its
float32 scales under ``name`` + :data:`SCALE_SUFFIX`; :func:`decode_state`
turns them back into float32.  Written here rather than with
``torch.ao.quantization``, whose quantized tensors safetensors cannot store
and whose loading runs through pickled observers.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["PRECISIONS", "SCALE_SUFFIX", "Precision", "as_stored", "decode_state", "encode_state"]

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
SCALE_SUFFIX = ".int8_scale"


def _quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 values and float32 scales, one scale per output channel (dim 0)."""
    flat = weight.float().reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
    values = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return values.reshape(weight.shape), scale


def encode_state(state: dict[str, torch.Tensor], precision: Precision = "fp16") -> dict[str, torch.Tensor]:
    """Tensors to write for ``state`` at ``precision`` (integer buffers are kept as they are)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        value = value.detach().cpu().contiguous()
        if key.endswith(SCALE_SUFFIX):
            raise ValueError(f"state entry {key!r} ends with the reserved suffix {SCALE_SUFFIX!r}")
        if value.dtype == torch.int8:  # int8 in a file means "quantized": a plain int8 buffer would not read back
            raise ValueError(f"state entry {key!r} is an int8 buffer, which model files cannot tell from int8 weights")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"state entry {key!r} holds NaN or Inf; a model file must hold finite weights")
        if not value.is_floating_point():
            out[key] = value
        elif precision == "int8" and value.dim() >= 2 and value.numel() > 0:
            out[key], out[key + SCALE_SUFFIX] = _quantize(value)
        else:
            out[key] = value.to(torch.float32 if precision == "fp32" else torch.float16)
    return out


def decode_state(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict that ``stored`` encodes: int8 tensors multiplied back by their scales.

    Raises ValueError when an int8 tensor has no scales of the right shape, or scales have no tensor.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in stored.items():
        if key.endswith(SCALE_SUFFIX):
            owner = key[: -len(SCALE_SUFFIX)]
            if owner not in stored or stored[owner].dtype != torch.int8:
                raise ValueError(f"{key!r} scales no int8 tensor")
            continue
        if value.dtype != torch.int8:
            state[key] = value
            continue
        scale = stored.get(key + SCALE_SUFFIX)
        if value.dim() == 0 or scale is None or not scale.is_floating_point() or scale.shape != (value.shape[0],):
            raise ValueError(f"int8 tensor {key!r} has no float scale per output channel under {key + SCALE_SUFFIX!r}")
        shape = (-1,) + (1,) * (value.dim() - 1)
        state[key] = value.float() * scale.float().reshape(shape)
    return state


def as_stored(network: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """Give ``network`` the weights it will have once written at ``precision`` and read back.

    Calibration, threshold and minimum area are tuned after this, so the
    score stored in a file is the score of the weights the file holds.
    """
    network.load_state_dict(decode_state(encode_state(network.state_dict(), precision)))
    return network
