"""The training losses: what the symmetric Lovasz hinge adds on tiles without salt, and what the elu hinge keeps."""

from __future__ import annotations

import torch

import segmentation_models_pytorch as smp

from saltvol.train.loop import _Losses, lovasz_elu_hinge


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


def _half_salt_tile(margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(2, 1, 16, 16)
    masks[:, :, 8:] = 1.0
    return torch.where(masks > 0, margin, -margin), masks


def test_elu_lovasz_keeps_pushing_pixels_past_the_margin():
    logits, masks = _half_salt_tile(2.0)  # every pixel correct and beyond the hinge's margin of 1
    logits = torch.where(masks > 0, logits, -1.5).requires_grad_(True)  # sediment ranked first: every pixel has a Lovasz weight
    smp.losses.LovaszLoss(mode="binary", per_image=True)(logits, masks).backward()
    assert float(logits.grad.abs().sum()) == 0.0  # relu: no gradient left
    logits.grad = None
    lovasz_elu_hinge(logits, masks).backward()
    salt, sediment = logits.grad[masks > 0], logits.grad[masks == 0]
    assert bool((salt < 0).all()) and bool((sediment > 0).all())  # descent raises salt logits, lowers sediment ones


def test_elu_lovasz_agrees_with_the_hinge_on_wrong_pixels_and_vanishes_when_confident():
    wrong, masks = _half_salt_tile(-3.0)  # every pixel wrong: all errors >= 1, where elu(e) + 1 = e + 1
    plain = smp.losses.LovaszLoss(mode="binary", per_image=True)(wrong, masks)
    assert torch.isclose(lovasz_elu_hinge(wrong, masks), plain + 1.0)  # the Lovasz weights of one image sum to 1
    assert torch.isclose(_Losses(lovasz_elu=True)("lovasz", wrong, masks), plain + 1.0)  # the flag picks the elu hinge
    confident, _ = _half_salt_tile(30.0)
    assert lovasz_elu_hinge(confident, masks).item() < 1e-6


def test_elu_lovasz_sorts_the_errors_as_the_hinge_does():
    """Errors all positive and distinct: elu(e) + 1 = relu(e) + 1, so only a wrong ranking could break the equality."""
    generator = torch.Generator().manual_seed(3)
    logits = 1.8 * torch.rand(4, 1, 12, 12, generator=generator) - 0.9
    masks = (torch.rand(4, 1, 12, 12, generator=generator) > 0.5).float()
    plain = smp.losses.LovaszLoss(mode="binary", per_image=True)(logits, masks)
    assert torch.isclose(lovasz_elu_hinge(logits, masks), plain + 1.0, atol=1e-5)
