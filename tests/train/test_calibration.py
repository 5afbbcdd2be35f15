"""Platt calibration: fitted on validation pixels, stored with the model, applied wherever probabilities come out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saltvol.errors import CheckpointError
from saltvol.model import ModelMeta, build_model, calibrate, load_model, save_model
from saltvol.train.evaluate import fit_calibration, postprocess


def test_fit_recovers_a_known_platt_scaling():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, size=400_000)
    truth = rng.random(z.size) < 1 / (1 + np.exp(-(3.0 * z - 0.5)))
    raw = (1 / (1 + np.exp(-z))).astype(np.float32)  # an overcautious network: right ranking, too soft
    a, b = fit_calibration(raw.reshape(40, 100, 100), truth.reshape(40, 100, 100))
    assert a == pytest.approx(3.0, rel=0.05) and b == pytest.approx(-0.5, abs=0.05)


def test_calibration_is_monotonic_keeps_masks_and_agrees_between_numpy_and_torch():
    raw = np.random.default_rng(1).random((3, 20, 20)).astype(np.float32)
    cal = (2.5, -0.3)
    out = calibrate(raw, cal)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    order = np.argsort(raw, axis=None)
    assert np.all(np.diff(out.reshape(-1)[order]) >= 0)
    t = float(calibrate(np.array([0.5], np.float32), cal)[0])
    np.testing.assert_array_equal(postprocess(raw, 0.5, 0), postprocess(out, t, 0))
    np.testing.assert_allclose(calibrate(torch.from_numpy(raw), cal).numpy(), out, atol=1e-6)
    assert calibrate(raw, (1.0, 0.0)) is raw


def test_calibration_travels_with_the_model_file_and_is_applied(tmp_path):
    torch.manual_seed(0)
    meta = ModelMeta(name="cal-test")
    network = build_model(meta.config)
    plain = load_model(save_model(network, meta, tmp_path / "plain.safetensors", precision="fp32"), device="cpu")
    scaled = load_model(save_model(network, ModelMeta(name="cal-test", calibration=(3.0, 0.5)), tmp_path / "cal.safetensors", precision="fp32"), device="cpu")
    assert scaled.meta.calibration == (3.0, 0.5)
    tiles = np.random.default_rng(2).random((2, 64, 64), dtype=np.float32)
    np.testing.assert_allclose(scaled.predict_tiles(tiles), calibrate(plain.predict_tiles(tiles), (3.0, 0.5)), atol=1e-5)


def test_a_bad_calibration_in_a_model_file_is_refused(tmp_path):
    path = save_model(build_model(ModelMeta().config), ModelMeta(calibration=(-1.0, 0.0)), tmp_path / "bad.safetensors", precision="fp32")
    with pytest.raises(CheckpointError, match="calibration"):
        load_model(path, device="cpu")
