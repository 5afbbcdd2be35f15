"""Training at a zoom (--input-scale): tiles upsampled before padding, recorded so inference zooms sections alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from saltvol.errors import InputError
from saltvol.model import ModelConfig, load_model
from saltvol.train.augment import AugmentConfig, from_network_size, to_network_size
from saltvol.train.data import load_tgs
from saltvol.train.evaluate import predict_probabilities
from saltvol.train.loop import TrainConfig, _check_input, _network_zoom, default_input_size, train
from tests.conftest import TGS_DIR

TINY = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))


def _smooth_tiles(n: int = 3) -> torch.Tensor:
    rows, cols = np.meshgrid(np.arange(101), np.arange(101), indexing="ij")
    tiles = [np.sin(rows / (6 + k)) * np.cos(cols / (9 + k)) for k in range(n)]
    return torch.from_numpy(np.stack(tiles)).float()[:, None]


def test_a_zoomed_tile_is_upsampled_then_padded_and_comes_back():
    x = _smooth_tiles()
    y = to_network_size(x, 256, "pad", 2.0)
    assert y.shape == (3, 1, 256, 256)
    centre = y[..., 27 : 27 + 202, 27 : 27 + 202]
    assert torch.equal(centre, F.interpolate(x, size=(202, 202), mode="bilinear", align_corners=False))
    back = from_network_size(y, (101, 101), "pad", 2.0)
    assert back.shape == x.shape
    error = (back - x).abs()  # bilinear up then down: close on smooth data, not exact
    assert float(error[..., 2:-2, 2:-2].max()) < 0.01 and float(error.max()) < 0.03


def test_no_zoom_is_an_exact_crop():
    x = torch.rand(2, 1, 101, 101)
    assert torch.equal(from_network_size(to_network_size(x, 128, "pad"), (101, 101), "pad"), x)


def test_the_recorded_zoom_is_what_the_network_saw():
    assert _network_zoom(TrainConfig(input_scale=2.0, input_size=256), tile_size=101) == 2.0
    assert _network_zoom(TrainConfig(input_mode="resize"), tile_size=101) == pytest.approx(128 / 101)  # resize zooms too


def test_default_input_size_keeps_the_padding_share():
    assert [default_input_size(s) for s in (1.0, 1.5, 2.0)] == [128, 192, 256]


@pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(input_mode="resize", input_scale=2.0), "--input-size instead"),
        (dict(input_scale=2.0), "--input-size between 202 and 403"),
        (dict(input_scale=2.0, input_size=250), "--input-size 256"),
        (dict(input_scale=8.0, input_size=1024), "between 0.5 and 4"),
        (dict(augment=AugmentConfig(frame_jitter=14)), "--frame-jitter between 0 and 13"),
    ],
)
def test_impossible_zoom_settings_are_refused_before_a_run_starts(tmp_path, changes, message):
    config = TrainConfig(model=TINY, epochs=1, limit=12, k_folds=4, batch_size=4, threads=1, **changes)
    with pytest.raises(InputError, match=message):
        train(TGS_DIR, tmp_path / "run", config)
    assert not (tmp_path / "run").exists()  # nothing half-made


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(augment=AugmentConfig(frame_jitter=14)), "--frame-jitter between 0 and 13"),
        (dict(augment=AugmentConfig(frame_jitter=-1)), "--frame-jitter between 0 and 13"),
        (dict(augment=AugmentConfig(frame_jitter=2.5)), "--frame-jitter between 0 and 13"),
        (dict(input_scale=2.0, input_size=256, augment=AugmentConfig(frame_jitter=28)), "--frame-jitter between 0 and 27"),
        (dict(input_mode="resize", augment=AugmentConfig(frame_jitter=4)), "drop --frame-jitter or train with --input-mode pad"),
        (dict(input_mode="Pad"), "--input-mode pad or --input-mode resize"),
    ],
)
def test_frame_jitter_and_input_mode_are_checked_without_data(changes, message):
    with pytest.raises(InputError, match=message):
        _check_input(TrainConfig(**changes), tile_size=101)


@pytest.mark.parametrize("changes", [dict(augment=AugmentConfig(frame_jitter=13)),
                                     dict(input_scale=2.0, input_size=256, augment=AugmentConfig(frame_jitter=27))])
def test_the_largest_frame_jitter_that_fits_is_accepted(changes):
    _check_input(TrainConfig(**changes), tile_size=101)


@pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")
def test_a_zoomed_run_records_its_zoom_and_predicts_at_tile_size(tmp_path):
    config = TrainConfig(model=TINY, epochs=1, limit=16, k_folds=4, batch_size=6, threads=1, input_scale=2.0, input_size=256,
                         augment=AugmentConfig(frame_jitter=20))  # the zoomed tile moves in its frame too
    model = load_model(train(TGS_DIR, tmp_path / "run", config), device="cpu")
    assert (model.meta.input_scale, model.meta.train_size) == (2.0, 256)
    assert model.network_period_px == pytest.approx(2 * model.period_px)
    images = load_tgs(TGS_DIR, limit=4).images
    probs = predict_probabilities(model.network, images, model.meta)
    assert probs.shape == images.shape and 0 <= probs.min() and probs.max() <= 1
