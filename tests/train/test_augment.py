"""Training augmentation: the random transforms move image and mask together, and never flip geology upside down."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from saltvol.errors import InputError
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
    out_images, out_masks = augment_batch(images, masks, replace(STILL, hflip=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out_images, images.flip(-1), atol=1e-5) and torch.equal(out_masks, masks.flip(-1))


def test_zoom_and_shift_move_the_mask_with_the_image():
    images, masks = _tiles(16)
    config = AugmentConfig(hflip=0.5, p_affine=1.0, zoom=(0.7, 1.4), shift=0.1, contrast=(1.0, 1.0), brightness=0.0)
    out_images, out_masks = augment_batch(images, masks, config, torch.Generator().manual_seed(3))
    assert not torch.allclose(out_images, images, atol=1e-2)  # something moved
    agreement = ((out_images > 0.3).float() == out_masks).float().mean()
    assert agreement > 0.99  # the mask still thresholds the moved image (bilinear resampling blurs a few edge pixels)


def test_soft_target_channels_move_with_the_mask_and_stay_soft():
    """A teacher's probabilities ride as extra mask channels: moved like the mask, never thresholded."""
    images, masks = _tiles(16)
    soft = torch.sigmoid(4 * images)  # smooth probabilities between 0 and 1
    config = AugmentConfig(hflip=0.5, p_affine=1.0, zoom=(0.7, 1.4), shift=0.1, contrast=(1.0, 1.0), brightness=0.0)
    out_images, out_masks = augment_batch(images, torch.cat([masks, soft], dim=1), config, torch.Generator().manual_seed(3))
    alone_images, alone_masks = augment_batch(images, masks, config, torch.Generator().manual_seed(3))
    assert torch.equal(out_images, alone_images) and torch.equal(out_masks[:, :1], alone_masks)  # the same draws
    moved = out_masks[:, 1:]
    assert ((moved > 0.05) & (moved < 0.95)).float().mean() > 0.05  # still soft
    assert float((moved - torch.sigmoid(4 * out_images)).abs().mean()) < 0.01  # and where the moved image puts it


def test_a_jittered_frame_moves_soft_target_channels_with_the_mask():
    images, masks = _tiles()
    soft = torch.sigmoid(4 * images)
    placed_images, placed = place_in_frame(images, torch.cat([masks, soft], dim=1), 128, jitter=6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(placed[:, :1], (placed_images > 0.3).float())  # the mask still thresholds its tile
    assert torch.allclose(placed[:, 1:], torch.sigmoid(4 * placed_images))  # and the soft channel sits on it too


@pytest.mark.parametrize(("size", "scale"), [(128, 1.0), (256, 2.0)])
def test_without_jitter_the_frame_is_the_centred_padding_and_no_random_number_is_drawn(size, scale):
    images, masks = _tiles()
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    placed_images, placed_masks = place_in_frame(images, masks, size, jitter=0, generator=generator, scale=scale)
    assert torch.equal(placed_images, to_network_size(images, size, "pad", scale))
    assert torch.equal(placed_masks, to_network_size(masks, size, "pad", scale))
    assert torch.equal(generator.get_state(), before)  # runs without jitter replay their augmentation exactly


def _placements(images: torch.Tensor, placed: torch.Tensor, jitter: int) -> list[tuple[int, int]]:
    """Where each whole, unresampled 101 px tile sits in its frame (13 px from the top and left when centred)."""
    found = []
    for tile, frame in zip(images, placed):
        spots = [(r, c) for r in range(13 - jitter, 14 + jitter) for c in range(13 - jitter, 14 + jitter)
                 if torch.equal(frame[..., r : r + 101, c : c + 101], tile)]
        assert len(spots) == 1
        found.extend(spots)
    return found


def test_jitter_moves_each_tile_and_its_mask_whole_to_every_allowed_place():
    images, masks = _tiles(300)
    placed_images, placed_masks = place_in_frame(images, masks, 128, jitter=2, generator=torch.Generator().manual_seed(1))
    assert placed_images.shape == placed_masks.shape == (300, 1, 128, 128)
    spots = _placements(images, placed_images, 2)
    assert {r for r, _ in spots} == {c for _, c in spots} == {11, 12, 13, 14, 15}  # both ends of the range, each axis on its own
    assert any(r != c for r, c in spots)
    wide_images, wide_masks = to_network_size(images, 132, "pad"), to_network_size(masks, 132, "pad")
    for i, (r, c) in enumerate(spots):  # the whole frame, reflected padding included, is a window of the wider padding
        top, left = 15 - r, 15 - c
        assert torch.equal(placed_images[i], wide_images[i, :, top : top + 128, left : left + 128])
        assert torch.equal(placed_masks[i], wide_masks[i, :, top : top + 128, left : left + 128])


def test_the_largest_jitter_reaches_the_frame_edges():
    images, masks = _tiles(200)
    placed, _ = place_in_frame(images, masks, 128, jitter=13, generator=torch.Generator().manual_seed(2))
    rows = {r for r, _ in _placements(images, placed, 13)}
    assert {0, 26} <= rows  # against the top and against the bottom of the frame


@pytest.mark.parametrize("jitter", [14, -1, 2.5, True])
def test_a_jitter_that_is_not_whole_pixels_inside_the_frame_is_refused(jitter):
    images, masks = _tiles(2)
    with pytest.raises(InputError, match="pass whole pixels from 0 to 13"):
        place_in_frame(images, masks, 128, jitter=jitter, generator=torch.Generator())
