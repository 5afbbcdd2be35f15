"""int8 weight storage: a model written as int8 loads as float32 and predicts what the fp16 model predicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from saltvol._weight_storage import SCALE_SUFFIX, decode_state, encode_state
from saltvol.errors import CheckpointError
from saltvol.model import DEFAULT_MODEL_PATH, load_model, save_model
from tests.conftest import TGS_DIR


def test_int8_keeps_every_weight_within_half_a_step_of_its_channel_scale():
    weight = torch.randn(8, 4, 3, 3) * torch.logspace(-3, 1, 8)[:, None, None, None]  # channels of very different size
    stored = encode_state({"conv.weight": weight, "conv.bias": torch.randn(8), "bn.num_batches_tracked": torch.tensor(7)}, "int8")
    assert stored["conv.weight"].dtype == torch.int8 and stored["conv.weight" + SCALE_SUFFIX].shape == (8,)
    assert stored["conv.bias"].dtype == torch.float16 and stored["bn.num_batches_tracked"].dtype == torch.int64
    restored = decode_state(stored)
    assert set(restored) == {"conv.weight", "conv.bias", "bn.num_batches_tracked"}
    step = stored["conv.weight" + SCALE_SUFFIX][:, None, None, None]
    assert bool(((restored["conv.weight"] - weight).abs() <= 0.5 * step + 1e-9).all())


@pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")
def test_the_bundled_model_stored_as_int8_is_half_the_size_and_predicts_the_same_masks(tmp_path):
    from saltvol.train.data import load_tgs

    model = load_model(device="cpu")
    path = save_model(model.network, model.meta, tmp_path / "int8.safetensors", precision="int8")
    assert path.stat().st_size < 0.6 * DEFAULT_MODEL_PATH.stat().st_size
    quantized = load_model(path, device="cpu")
    assert all(v.dtype == torch.float32 for v in quantized.network.state_dict().values() if v.is_floating_point())
    tiles = load_tgs(TGS_DIR, limit=32).images
    fp16, int8 = model.predict_tiles(tiles), quantized.predict_tiles(tiles)
    assert np.abs(fp16 - int8).mean() < 0.002 and np.abs(fp16 - int8).max() < 0.1  # the max sits on salt edges
    assert ((fp16 > model.meta.threshold) == (int8 > model.meta.threshold)).mean() > 0.999


def test_int8_weights_without_their_scales_are_refused(tiny_model, tmp_path):
    path = save_model(tiny_model.network, tiny_model.meta, tmp_path / "int8.safetensors", precision="int8")
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        metadata = fh.metadata()
    scale_key = next(k for k in tensors if k.endswith(SCALE_SUFFIX))
    del tensors[scale_key]
    save_file(tensors, str(tmp_path / "damaged.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="damaged int8 weights.*" + scale_key.replace(".", r"\.")):
        load_model(tmp_path / "damaged.safetensors", device="cpu")


def test_an_unknown_precision_is_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="precision must be one of"):
        save_model(tiny_model.network, tiny_model.meta, tmp_path / "m.safetensors", precision="int4")  # type: ignore[arg-type]
    assert not (tmp_path / "m.safetensors").exists()
