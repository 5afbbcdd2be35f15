"""The training losses: what the symmetric Lovasz hinge adds on tiles without salt."""

from __future__ import annotations

import torch

from saltvol.train.loop import _Losses


def _empty_tile_with_false_salt(n_false: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits confidently sediment everywhere but ``n_false`` pixels called salt; the truth has no salt."""
    logits = torch.full((1, 1, 16, 16), -5.0)
    logits.view(-1)[:n_false] = 1.0
    return logits, torch.zeros_like(logits)


def test_plain_lovasz_counts_only_the_worst_false_pixel_on_an_empty_tile():
    plain = _Losses()
    one, many = (plain("lovasz", *_empty_tile_with_false_salt(n)) for n in (1, 20))
    assert one.item() > 0
    assert torch.isclose(one, many)


def test_symmetric_lovasz_makes_every_false_pixel_count():
    symmetric = _Losses(symmetric_lovasz=True)
    one, many = (symmetric("lovasz", *_empty_tile_with_false_salt(n)).item() for n in (1, 20))
    assert many > one > 0


def test_symmetric_lovasz_is_zero_for_a_confident_correct_prediction():
    masks = torch.zeros(2, 1, 16, 16)
    masks[0, :, 8:] = 1.0
    logits = torch.where(masks > 0, 4.0, -4.0)
    assert _Losses(symmetric_lovasz=True)("lovasz", logits, masks).item() == 0.0
    assert _Losses(symmetric_lovasz=True)("lovasz", -logits, masks).item() > 1.0
