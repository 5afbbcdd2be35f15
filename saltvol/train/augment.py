"""Batch augmentation of TGS tiles on the training device.

One affine resampling per batch (``torch.nn.functional.grid_sample``) applies
a random horizontal flip, zoom and shift to image and mask together, with
reflection at the borders; then contrast and brightness are jittered.  No
vertical flips: geology has an up.  The zoom range (log-uniform) also covers
the scale changes between TGS tiles and real volumes (issue: scale matching).
Before that, :func:`place_in_frame` pads each tile into the network's frame,
moved off centre by whole pixels when ``AugmentConfig.frame_jitter`` asks for it
(:func:`augment_batch` itself ignores that field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["AugmentConfig", "augment_batch", "frame_jitter_fits", "max_frame_jitter", "place_in_frame", "to_network_size"]


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms; ``p_affine`` is the share of tiles zoomed/shifted."""

    hflip: float = 0.5
    p_affine: float = 0.6
    zoom: tuple[float, float] = (0.6, 1.6)
    shift: float = 0.1
    contrast: tuple[float, float] = (0.85, 1.15)
    brightness: float = 0.05
    #: Pixels by which a tile's place in its reflect-padded frame may move each way (pad mode only; 0: always
    #: centred), applied by :func:`place_in_frame`.  Prediction always centres the tile; the jitter shows the network
    #: the tile on ``2 * frame_jitter + 1`` of the 32 phases of its encoder's stride grid instead of one, as
    #: section tiles in ``segment`` meet it at any phase.
    frame_jitter: int = 0


def to_network_size(x: torch.Tensor, size: int, mode: str, scale: float = 1.0) -> torch.Tensor:
    """Bring (N, C, h, w) tiles to (N, C, size, size): zoom by ``scale`` and reflect-pad, or bilinear resize.

    ``scale`` applies to ``mode="pad"`` only: a network trained at 2x sees
    101 px tiles upsampled to 202 and padded to ``size`` (256 keeps the
    padding's share of a 128 px input at 1x).
    """
    if mode == "resize":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if scale != 1.0:
        x = F.interpolate(x, size=_zoomed(x.shape[-2:], scale), mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    pad_h, pad_w = size - h, size - w
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="reflect")


def from_network_size(x: torch.Tensor, size: tuple[int, int], mode: str, scale: float = 1.0) -> torch.Tensor:
    """Undo :func:`to_network_size`: crop the centre (and zoom back), or resize back to ``size``."""
    if mode == "resize":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    h, w = _zoomed(size, scale)
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    x = x[..., top : top + h, left : left + w]
    return x if scale == 1.0 else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def max_frame_jitter(tile_px: int, size: int) -> int:
    """The largest frame jitter that keeps a ``tile_px`` tile whole inside its ``size`` px frame: the smaller padding."""
    return (size - tile_px) // 2


def frame_jitter_fits(jitter: object, tile_px: int, size: int) -> bool:
    """Whether ``jitter`` is whole pixels (not a bool) from 0 to :func:`max_frame_jitter`."""
    return isinstance(jitter, int) and not isinstance(jitter, bool) and 0 <= jitter <= max_frame_jitter(tile_px, size)


def place_in_frame(
    images: torch.Tensor, masks: torch.Tensor, size: int, *, jitter: int, generator: torch.Generator, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflect-pad (N, 1, h, w) tiles and (N, C, h, w) masks to ``size``, each placed off centre by up to ``jitter`` px.

    The tiles are padded to ``size + 2 * jitter`` and each is cropped back to
    ``size`` at its own random offset, so with no jitter (or an offset of
    ``jitter`` both ways) a tile sits exactly where :func:`to_network_size`
    puts it.  The move is by whole pixels: only a ``scale`` other than 1
    resamples the tile.  No jitter draws no random numbers, so runs without
    it replay as they did before the option existed.
    """
    tile_px = max(_zoomed(images.shape[-2:], scale))
    if not frame_jitter_fits(jitter, tile_px, size):
        raise InputError(f"frame jitter {jitter!r} does not keep {tile_px} px tiles in their {size} px frame; "
                         f"pass whole pixels from 0 to {max_frame_jitter(tile_px, size)}")
    if jitter == 0:
        return to_network_size(images, size, "pad", scale), to_network_size(masks, size, "pad", scale)
    wide = size + 2 * jitter
    images, masks = to_network_size(images, wide, "pad", scale), to_network_size(masks, wide, "pad", scale)
    offsets = torch.randint(0, 2 * jitter + 1, (images.shape[0], 2), generator=generator).tolist()
    placed = [(x[..., r : r + size, c : c + size], y[..., r : r + size, c : c + size]) for x, y, (r, c) in zip(images, masks, offsets)]
    return torch.stack([x for x, _ in placed]), torch.stack([y for _, y in placed])


def _zoomed(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    return round(shape[0] * scale), round(shape[1] * scale)


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly transform a batch of (N, 1, H, W) images and (N, C, H, W) masks the same way.

    The first mask channel is the salt mask: resampled bilinearly and
    re-thresholded at 0.5, which keeps thin salt edges better than
    nearest-neighbour sampling.  Further channels are soft targets (a
    teacher's probabilities, for distillation): moved with the mask and left
    unthresholded.  The batch is
    transformed on its own device; the random draws come from ``generator``
    on the CPU, so a run draws the same augmentation on any device.
    """
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    flip = torch.where(torch.rand(n, generator=generator) < config.hflip, -1.0, 1.0)
    affine = torch.rand(n, generator=generator) < config.p_affine
    log_zoom = uniform(math.log(config.zoom[0]), math.log(config.zoom[1]))
    zoom = torch.where(affine, torch.exp(log_zoom), torch.ones(n))
    tx = torch.where(affine, uniform(-config.shift, config.shift), torch.zeros(n))
    ty = torch.where(affine, uniform(-config.shift, config.shift), torch.zeros(n))

    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    masks = torch.cat([(masks[:, :1] > 0.5).to(images.dtype), masks[:, 1:]], dim=1)

    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(*config.contrast).view(n, 1, 1, 1).to(images.device)
    brightness = uniform(-config.brightness, config.brightness).view(n, 1, 1, 1).to(images.device)
    images = (images - mean) * contrast + mean + brightness
    return images, masks
