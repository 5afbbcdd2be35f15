"""The bundled default model: it loads safely, carries its metadata, and predicts with the right shapes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from saltvol.errors import CheckpointError
from saltvol.model import DEFAULT_MODEL_PATH, SaltModel, load_model, read_model_info


def test_bundled_model_is_small_and_carries_its_metadata():
    assert DEFAULT_MODEL_PATH.is_file()
    assert DEFAULT_MODEL_PATH.stat().st_size < 30 * 2**20
    model = load_model(device="cpu")
    meta = model.meta
    assert meta.val_score is not None and 0 < meta.val_score <= 1
    assert set(meta.val_scores_by_bin) == {"empty", "<10%", "10-50%", ">50%"}
    assert 0 < meta.threshold < 1 and meta.min_area >= 0
    assert meta.period_px > 0 and meta.image_std > 0 and meta.data_fingerprint
    assert len(model.sha256) == 64


@pytest.mark.parametrize("shape", [(3, 101, 101), (1, 128, 128), (2, 40, 300)])
def test_bundled_model_predicts_probabilities_of_the_input_shape(shape):
    model = load_model(device="cpu")
    tiles = np.random.default_rng(0).random(shape, dtype=np.float32)
    probs = model.predict_tiles(tiles, batch_size=2)
    assert probs.shape == shape and probs.dtype == np.float32
    assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1


def test_model_is_loaded_once_per_process():
    assert load_model(device="cpu") is load_model(device="cpu")


def test_predict_tiles_rejects_bad_shapes():
    model = load_model(device="cpu")
    with pytest.raises(ValueError, match="shape"):
        model.predict_tiles(np.zeros((10, 10), np.float32))


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors.* does not exist; check the path"):
        load_model(tmp_path / "nope.safetensors")


def test_model_info_reads_the_metadata_without_torch(tmp_path):
    # A fresh interpreter: the client of a cluster run plans from this without importing torch.
    code = (
        "import sys, json; from saltvol.model import read_model_info; info = read_model_info(); "
        "print(json.dumps([info.name, info.period_px, info.sha256, info.meta.val_score, 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    name, period, sha256, score, torch_imported = json.loads(done.stdout)
    model = load_model(device="cpu")
    assert (name, period, sha256, score) == (model.name, model.period_px, model.sha256, model.meta.val_score)
    assert not torch_imported


def test_model_info_refuses_a_file_that_is_not_a_model(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_model_info(junk)
    no_meta = tmp_path / "plain.safetensors"
    header = b'{"__metadata__": {"format": "pt"}}'
    no_meta.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="no saltvol metadata"):
        read_model_info(no_meta)
    listed = tmp_path / "listed.safetensors"
    header = b'{"__metadata__": ["saltvol"]}'
    listed.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_model_info(listed)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_model_info(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(("device", "expected"), [("cpu", 4), ("cuda", 16), ("cuda:1", 16)])
def test_default_batch_size_is_small_on_cpus(device, expected):
    from saltvol.inference import default_batch_size

    assert default_batch_size(device) == expected


def _tiny_tta_model() -> SaltModel:
    from saltvol.model import ModelConfig, ModelMeta, build_model

    config = ModelConfig(encoder="resnet18", decoder_channels=(16, 16, 16, 16, 16))
    return SaltModel(build_model(config).eval(), ModelMeta(config=config, tta=True), device="cpu")


def test_flip_averaging_is_the_mean_of_the_tile_and_its_mirror():
    model = _tiny_tta_model()
    tiles = np.random.default_rng(1).random((2, 128, 160), dtype=np.float32)  # no padding: the mirror is exact
    plain = model.predict_tiles(tiles, tta=False)
    mirrored = model.predict_tiles(np.ascontiguousarray(tiles[..., ::-1]), tta=False)[..., ::-1]
    assert float(np.abs(plain - mirrored).max()) > 1e-4  # the network is not symmetric: the flip matters
    np.testing.assert_allclose(model.predict_tiles(tiles, tta=True), 0.5 * (plain + mirrored), atol=1e-6)


def test_large_batches_run_the_mirror_as_a_second_pass_with_the_same_result(monkeypatch):
    import saltvol.model

    model = _tiny_tta_model()
    tiles = np.random.default_rng(2).random((3, 101, 230), dtype=np.float32)
    monkeypatch.setattr(saltvol.model, "_TTA_ONE_PASS_PIXELS", 10**9)
    together = model.predict_tiles(tiles, tta=True)
    monkeypatch.setattr(saltvol.model, "_TTA_ONE_PASS_PIXELS", 0)
    apart = model.predict_tiles(tiles, tta=True)
    np.testing.assert_allclose(apart, together, atol=1e-6)


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [({"avx512_bf16": True, "amx_bf16": False}, "bfloat16"), ({"avx512_bf16": False, "amx_bf16": True}, "bfloat16"),
     ({"avx512_bf16": False, "amx_bf16": False, "avx512_bw": True}, None)],
)
def test_cpu_autocast_is_bf16_only_where_bf16_is_native(monkeypatch, capabilities, expected):
    """Plain AVX-512 runs bf16 by conversion, slower than fp32: it keeps fp32."""
    import torch

    from saltvol.model import autocast_dtype

    monkeypatch.delenv("SALTVOL_PRECISION", raising=False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert autocast_dtype("cpu") == (getattr(torch, expected) if expected else None)
    monkeypatch.setenv("SALTVOL_PRECISION", "fp32")
    assert autocast_dtype("cpu") is None


def test_a_torch_without_the_capability_table_asks_its_older_probes(monkeypatch):
    import torch

    from saltvol.model import autocast_dtype

    monkeypatch.delenv("SALTVOL_PRECISION", raising=False)
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert autocast_dtype("cpu") is None


def test_bf16_autocast_agrees_with_fp32_on_real_tgs_tiles(monkeypatch):
    """The suite runs in fp32 (conftest.py); the bf16 path that CPUs with native bf16 take is checked here.

    oneDNN runs bf16 on any AVX-512 CPU (by conversion where it is not native), so this runs on more
    machines than take that path by default.
    """
    import torch

    from saltvol.train.data import load_tgs
    from tests.conftest import TGS_DIR

    from saltvol.model import onednn_runs_bf16

    if not onednn_runs_bf16():
        pytest.skip("this CPU cannot run bf16 in oneDNN: fp32 is the only CPU path")
    dtype = torch.bfloat16
    if not TGS_DIR.is_dir():
        pytest.skip("needs the shared TGS data")
    model = load_model(device="cpu")
    tiles = load_tgs(TGS_DIR, limit=24).images
    fp32 = model.predict_tiles(tiles, batch_size=8)
    monkeypatch.setattr(model, "amp_dtype", dtype)
    reduced = model.predict_tiles(tiles, batch_size=8)
    assert np.abs(reduced - fp32).mean() < 0.01
    assert ((reduced > 0.5) == (fp32 > 0.5)).mean() > 0.99
