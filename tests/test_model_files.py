"""Model files: int8 weight storage loads as float32 and predicts what fp16 predicts; ensemble files are checked
before anything is built."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from saltvol._weight_storage import SCALE_SUFFIX, decode_state, encode_state
from saltvol.errors import CheckpointError
from saltvol.model import load_model, save_model
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
def test_the_bundled_networks_stored_as_int8_are_half_their_fp16_size_and_predict_the_same_masks(tmp_path):
    from saltvol.train.data import load_tgs

    bundled = load_model(device="cpu")
    half = save_model(bundled.network, bundled.meta, tmp_path / "fp16.safetensors", precision="fp16")
    path = save_model(bundled.network, bundled.meta, tmp_path / "int8.safetensors", precision="int8")
    assert path.stat().st_size < 0.6 * half.stat().st_size
    model, quantized = load_model(half, device="cpu"), load_model(path, device="cpu")
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


def _ensemble(tiny_model, tmp_path, **meta_changes):
    from saltvol.ensemble import EnsembleNetwork
    from saltvol.model import build_model

    config = tiny_model.meta.config
    network = EnsembleNetwork([tiny_model.network, build_model(config)])
    meta = replace(tiny_model.meta, members=(config, config), name="tiny-ensemble", **meta_changes)
    return save_model(network, meta, tmp_path / "ens.safetensors", precision="int8"), network, meta


def _rewrite(path, tmp_path, *, tensors=None, meta_changes=None):
    """A copy of a model file with some tensors or metadata fields replaced."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        metadata = dict(fh.metadata())
    stored = load_file(str(path))
    stored.update(tensors or {})
    fields = json.loads(metadata["saltvol"]) | (meta_changes or {})
    out = tmp_path / "rewritten.safetensors"
    save_file(stored, str(out), metadata={"saltvol": json.dumps(fields)})
    return out


def test_an_ensemble_header_is_read_without_torch(tiny_model, tmp_path):
    path, _, _ = _ensemble(tiny_model, tmp_path)
    code = (
        "import sys, json; from saltvol.model import read_model_info; info = read_model_info(sys.argv[1]); "
        "print(json.dumps([len(info.meta.members), info.name, 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == [2, "tiny-ensemble", False]


@pytest.mark.parametrize(
    "members, message",
    [
        ("resnet18", "'members' is not a list of network configs"),
        ([1, 2], "'members' is not a list of network configs"),
        ([{}] * 9, "more than the 8 an ensemble may hold"),
        ([{"encoder": "resnet18", "decoder_channels": [32, 16, 16, 16, 16]}], "at least two networks"),
        ([{"encoder": "resnet18", "decoder_channels": [32, 16, 16, 16, 16]}, {"encoder": ""}], "member 1: encoder ''"),
    ],
)
def test_malformed_ensemble_metadata_is_refused_with_one_clear_error(tiny_model, tmp_path, members, message):
    path, _, _ = _ensemble(tiny_model, tmp_path)
    bad = _rewrite(path, tmp_path, meta_changes={"members": members})
    with pytest.raises(CheckpointError, match=message):
        load_model(bad, device="cpu")


def test_an_ensemble_whose_weights_miss_a_member_is_refused(tiny_model, tmp_path):
    from saltvol.model import ModelConfig

    path, _, meta = _ensemble(tiny_model, tmp_path)
    three = [json.loads(json.dumps(c.__dict__)) for c in (*meta.members, ModelConfig())]
    bad = _rewrite(path, tmp_path, meta_changes={"members": three})
    with pytest.raises(CheckpointError, match="ensemble of 3 networks but holds weights for 2"):
        load_model(bad, device="cpu")


def test_weights_of_a_dtype_saltvol_never_writes_are_refused(tiny_model, tmp_path):
    path, _, _ = _ensemble(tiny_model, tmp_path)
    key = next(k for k in load_file(str(path)) if k.endswith(SCALE_SUFFIX))
    odd = load_file(str(path))[key].to(torch.float8_e4m3fn)
    bad = _rewrite(path, tmp_path, tensors={key: odd})
    with pytest.raises(CheckpointError, match="stored as torch.float8_e4m3fn, which saltvol never writes"):
        load_model(bad, device="cpu")


def test_an_ensemble_file_predicts_what_its_network_predicts(tiny_model, tmp_path):
    path, network, meta = _ensemble(tiny_model, tmp_path)
    from saltvol.model import SaltModel

    tiles = np.random.default_rng(3).random((2, 101, 101), dtype=np.float32)
    loaded = load_model(path, device="cpu").predict_tiles(tiles)
    in_memory = SaltModel(network, meta, device="cpu").predict_tiles(tiles)
    assert np.abs(loaded - in_memory).mean() < 0.005  # int8 storage


def test_a_failed_save_leaves_no_half_written_file(tiny_model, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # the rename onto a folder fails after the weights were written
    with pytest.raises(OSError):
        save_model(tiny_model.network, tiny_model.meta, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and not any(target.iterdir())


def test_a_saved_model_file_is_readable_by_others(tmp_path):
    """safetensors creates files 0600; a model on a cluster's shared disk must be readable by the workers' users."""
    import os
    import stat

    from saltvol.model import ModelConfig, ModelMeta, build_model, save_model

    config = ModelConfig(encoder="resnet18", decoder_channels=(16, 16, 16, 16, 16))
    previous = os.umask(0o022)
    try:
        path = save_model(build_model(config), ModelMeta(config=config), tmp_path / "m.safetensors")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
