"""The U-Net with a full-resolution branch: grows silently on a trained network, learns, saves and loads."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from saltvol.errors import CheckpointError
from saltvol.model import ModelConfig, ModelMeta, SaltModel, build_model, load_model, save_model
from saltvol.unet import FullResolutionUnet

PLAIN = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
BRANCHED = replace(PLAIN, full_resolution_width=8)


def _trained_plain() -> torch.nn.Module:
    """A plain U-Net whose weights are not at their initial values (batch norms included)."""
    torch.manual_seed(1)
    network = build_model(PLAIN)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.05)
    x = torch.randn(4, 1, 64, 64)
    target = (x > 0.5).float()
    for _ in range(3):
        optimizer.zero_grad()
        masks, _ = network(x)
        torch.nn.functional.binary_cross_entropy_with_logits(masks, target).backward()
        optimizer.step()
    return network.eval()


def test_a_grown_branch_leaves_the_output_unchanged_and_then_learns():
    plain = _trained_plain()
    grown = build_model(BRANCHED)
    assert isinstance(grown, FullResolutionUnet)
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(("full_resolution.", "fuse.")) for k in missing)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grown.eval()(x)[0], plain(x)[0], rtol=0, atol=0)

    grown.train()
    optimizer = torch.optim.Adam(grown.parameters(), lr=1e-2)
    target = torch.zeros(2, 1, 64, 64)
    target[..., 20:40, 30:34] = 1  # a thin body: detail the half-resolution decoder draws coarsely
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(grown(x)[0], target).backward()
        optimizer.step()
    assert float(grown.fuse[1].weight.detach().abs().max()) > 0  # the branch now speaks
    assert float(grown.full_resolution[0].weight.grad.abs().max()) > 0  # and its convolutions receive gradient
    with torch.no_grad():
        assert float((grown.eval()(x)[0] - plain(x)[0]).abs().max()) > 1e-3


def test_a_model_with_the_branch_saves_and_loads_with_its_predictions(tmp_path):
    torch.manual_seed(0)
    network = build_model(BRANCHED)
    torch.nn.init.normal_(network.fuse[1].weight)  # not silent, so the branch's weights matter to the output
    path = save_model(network, ModelMeta(config=BRANCHED, tta=False), tmp_path / "m.safetensors", precision="fp32")
    model = load_model(path, device="cpu")
    assert model.meta.config.full_resolution_width == 8
    tiles = np.random.default_rng(0).random((2, 101, 101), dtype=np.float32)
    reloaded = model.predict_tiles(tiles)
    direct = SaltModel(network.eval(), ModelMeta(config=BRANCHED, tta=False), device="cpu").predict_tiles(tiles)
    np.testing.assert_allclose(reloaded, direct, rtol=0, atol=1e-6)
    # Silence the branch and the predictions move: its weights really are stored and used.
    with torch.no_grad():
        network.fuse[1].weight.zero_()
    silent = SaltModel(network, ModelMeta(config=BRANCHED, tta=False), device="cpu").predict_tiles(tiles)
    assert float(np.abs(silent - reloaded).max()) > 1e-4


def _with_metadata(path, tmp_path, **config_changes):
    """A copy of the safetensors file at ``path`` whose stored model config has ``config_changes``."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["saltvol"])
    meta["config"].update(config_changes)
    header["__metadata__"]["saltvol"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    out = tmp_path / "edited.safetensors"
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])
    return out


@pytest.mark.parametrize("width", [-1, "16", True])
def test_a_bad_branch_width_in_a_model_file_is_one_line(tmp_path, width):
    path = save_model(build_model(PLAIN), ModelMeta(config=PLAIN), tmp_path / "m.safetensors", precision="fp32")
    with pytest.raises(CheckpointError, match="full_resolution_width") as caught:
        load_model(_with_metadata(path, tmp_path, full_resolution_width=width), device="cpu")
    assert "\n" not in str(caught.value)


def test_a_plain_model_file_does_not_fit_a_branched_architecture(tmp_path):
    path = save_model(build_model(PLAIN), ModelMeta(config=PLAIN), tmp_path / "m.safetensors", precision="fp32")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(_with_metadata(path, tmp_path, full_resolution_width=8), device="cpu")


def test_building_with_a_negative_branch_width_names_the_width():
    with pytest.raises(CheckpointError, match=r"full_resolution_width -1 is not a width >= 0"):
        build_model(replace(PLAIN, full_resolution_width=-1))
