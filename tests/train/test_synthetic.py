"""Synthetic training tiles: cut from real ``make_volume`` output, mapped and rescaled as ``segment`` would."""

from __future__ import annotations

import numpy as np
import pytest

from saltvol.model import ModelMeta
from saltvol.normalize import estimate_period, image_stats
from saltvol.train.synthetic import synthetic_tiles

META = ModelMeta(image_center=0.47, image_spread=0.14, period_px=18.0)


@pytest.mark.parametrize("period", [8.0, 30.0])
def test_tiles_arrive_at_the_training_period_and_amplitude(period):
    images, _ = synthetic_tiles(24, meta=META, seed=3, periods=(period,))
    textured = images.std(axis=(1, 2)) > 0.01
    # A volume at 8 or 30 px is resampled by 2.25 or 0.6: its tiles show reflectors at the model's period.
    measured = estimate_period(np.swapaxes(images[textured], 1, 2))
    assert measured == pytest.approx(META.period_px, rel=0.15)
    stats = image_stats(images)
    assert stats.center == pytest.approx(META.image_center, abs=0.05)
    assert stats.spread == pytest.approx(META.image_spread, rel=0.3)


def test_tiles_have_the_asked_shape_both_classes_and_repeat_with_the_seed():
    images, masks = synthetic_tiles(30, meta=META, seed=7)
    assert images.shape == masks.shape == (30, 101, 101)
    assert images.dtype == np.float32 and masks.dtype == np.uint8
    assert 0.0 <= images.min() and images.max() <= 1.0
    has_salt = masks.reshape(30, -1).any(axis=1)
    assert 0 < has_salt.sum() < 30  # salt-free tiles are asked for about a third of the time
    again, again_masks = synthetic_tiles(30, meta=META, seed=7)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, again_masks)
    other, _ = synthetic_tiles(30, meta=META, seed=8)
    assert not np.array_equal(images, other)


def test_no_tiles_asked_gives_empty_arrays():
    images, masks = synthetic_tiles(0, meta=META)
    assert images.shape == masks.shape == (0, 101, 101)


def test_quiet_tops_are_blank_above_the_cut_and_never_cover_salt():
    from saltvol.synth import make_volume
    from saltvol.train.synthetic import _with_quiet_top

    volume = make_volume((4, 48, 160), seed=2, period=12.0)
    amplitude, salt = volume["amplitude"].values, volume["salt"].values
    rms = float(np.sqrt(np.mean(amplitude.astype(np.float64) ** 2)))
    kinds = set()
    for seed in range(6):
        out, deepest = _with_quiet_top(amplitude, salt, period=12.0, rng=np.random.default_rng(seed))
        assert out.shape == amplitude.shape and 0 < deepest < 160
        top = out[:, :, :4]  # with these seeds the cut lies below sample 4 on every trace (its base is 8-30 % down)
        kinds.add("mute" if np.all(top == 0) else "water")
        assert np.abs(top).max() < 0.5 * rms
        salt_top = np.where(salt.any(axis=-1), salt.argmax(axis=-1), 160)
        blank = np.cumprod(np.abs(out) < 0.5 * rms, axis=-1).sum(axis=-1)  # leading quiet samples per trace
        assert np.all(blank <= np.maximum(salt_top, 0))  # the quiet part ends above the salt
        np.testing.assert_array_equal(out[:, :, -20:], amplitude[:, :, -20:])  # the deep part is untouched
    assert kinds == {"mute", "water"}


def test_some_synthetic_tiles_start_with_a_quiet_top_and_no_salt_there():
    images, masks = synthetic_tiles(48, meta=META, seed=5)
    quiet = images[:, :8, :].std(axis=(1, 2)) < 0.02
    assert 3 <= quiet.sum() <= 24
    assert not masks[quiet, :8].any()


def test_some_mutes_sit_over_an_incoherent_band_that_stays_above_the_salt():
    from saltvol.synth import make_volume
    from saltvol.train.synthetic import _with_quiet_top

    period = 12.0
    volume = make_volume((4, 48, 200), seed=3, period=period)
    amplitude, salt = volume["amplitude"].values, volume["salt"].values
    salt_top = np.where(salt.any(axis=-1), salt.argmax(axis=-1), 200)
    bands = 0
    for seed in range(12):
        out, deepest = _with_quiet_top(amplitude, salt, period=period, rng=np.random.default_rng(seed))
        changed = (out != amplitude) & (out != 0)  # neither the original layering nor the mute
        if not np.all(out[:, :, :4] == 0) or not changed.any():
            continue  # a water column, or a mute without a band
        bands += 1
        first_changed = np.where(changed.any(axis=-1), changed.argmax(axis=-1), 200)
        last_changed = np.where(changed.any(axis=-1), 199 - changed[..., ::-1].argmax(axis=-1), -1)
        assert np.all(last_changed < salt_top - period + 1)  # the band ends a period above the salt
        assert last_changed.max() < 0.6 * 200  # and in the upper part of the trace
        assert deepest >= last_changed.max()  # the tiles cut from the top reach the band's base
        band_rows = [(line, t) for line in range(4) for t in range(48) if last_changed[line, t] - first_changed[line, t] > 2 * period]
        assert band_rows, "the band is a few periods thick somewhere"
        line, t = band_rows[0]
        rows = slice(first_changed[line, t], last_changed[line, t])
        left, right = out[line, t - 1 if t else t + 1, rows], out[line, t, rows]
        inside_corr = abs(np.corrcoef(left, right)[0, 1])
        original_corr = abs(np.corrcoef(amplitude[line, t - 1 if t else t + 1, rows], amplitude[line, t, rows])[0, 1])
        assert inside_corr < original_corr  # less coherent from trace to trace than the layering it replaced
    assert bands >= 2
