"""Training augmentation: the random transforms move image and mask together, and never flip geology upside down."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saltvol.train.augment import AugmentConfig, augment_batch, place_in_frame, to_network_size

STILL = AugmentConfig(hflip=0.0, p_affine=0.0, contrast=(1.0, 1.0), brightness=0.0)


def _tiles(n: int = 6, size: int = 101) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth, asymmetric tiles (so a flip or a move shows) and the masks that threshold them."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    tiles = [np.sin(rows / (5 + k) + cols / (13 + 2 * k)) + cols / (2 * size) for k in range(n)]
    images = torch.from_numpy(np.stack(tiles)).float()[:, None]
    return images, (images > 0.3).float()


def test_no_transform_leaves_the_batch_as_it_was():
    images, masks = _tiles()
    out_images, out_masks = augment_batch(images, masks, STILL, torch.Generator().manual_seed(0))
    assert torch.allclose(out_images, images, atol=1e-5) and torch.equal(out_masks, masks)


def test_a_flip_is_horizontal_only():
    images, masks = _tiles()
    out_images, out_masks = augment_batch(images, masks, AugmentConfig(**{**STILL.__dict__, "hflip": 1.0}), torch.Generator().manual_seed(0))
    assert torch.allclose(out_images, images.flip(-1), atol=1e-5) and torch.equal(out_masks, masks.flip(-1))


def test_zoom_and_shift_move_the_mask_with_the_image():
    images, masks = _tiles(16)
    config = AugmentConfig(hflip=0.5, p_affine=1.0, zoom=(0.7, 1.4), shift=0.1, contrast=(1.0, 1.0), brightness=0.0)
    out_images, out_masks = augment_batch(images, masks, config, torch.Generator().manual_seed(3))
    assert not torch.allclose(out_images, images, atol=1e-2)  # something moved
    agreement = ((out_images > 0.3).float() == out_masks).float().mean()
    assert agreement > 0.99  # the mask still thresholds the moved image (bilinear resampling blurs a few edge pixels)


def test_without_jitter_the_frame_is_the_centred_padding():
    images, masks = _tiles()
    placed_images, placed_masks = place_in_frame(images, masks, 128, STILL, torch.Generator().manual_seed(0))
    assert torch.equal(placed_images, to_network_size(images, 128, "pad")) and torch.equal(placed_masks, to_network_size(masks, 128, "pad"))


def test_jitter_moves_each_tile_whole_by_whole_pixels_within_its_frame():
    images, masks = _tiles(12)
    config = AugmentConfig(**{**STILL.__dict__, "frame_jitter": 8})
    placed_images, placed_masks = place_in_frame(images, masks, 128, config, torch.Generator().manual_seed(1))
    assert placed_images.shape == placed_masks.shape == (12, 1, 128, 128)
    offsets = set()
    for tile, mask, placed, placed_mask in zip(images, masks, placed_images, placed_masks):
        found = [(r, c) for r in range(5, 22) for c in range(5, 22) if torch.equal(placed[..., r : r + 101, c : c + 101], tile)]
        assert len(found) == 1  # the whole tile, unresampled, 13 +- 8 px from the top and left
        (r, c), = found
        assert torch.equal(placed_mask[..., r : r + 101, c : c + 101], mask)  # its mask at the same place
        offsets.add((r, c))
    assert len(offsets) > 6  # tiles are placed independently


def test_jitter_that_would_push_the_tile_out_of_its_frame_is_refused():
    images, masks = _tiles(2)
    with pytest.raises(ValueError, match="at most 13 px fits"):
        place_in_frame(images, masks, 128, AugmentConfig(frame_jitter=14), torch.Generator())
