"""Shared fixtures: a tiny randomly initialised model saved the way 'saltvol train' saves one."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TGS_DIR = SHARED / "tgs"
SEGY_DIR = SHARED / "segy"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from saltvol.model import ModelConfig, ModelMeta, build_model, save_model

    torch.manual_seed(0)
    config = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    return save_model(build_model(config), ModelMeta(config=config, name="tiny-test"), path, half=False)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    from saltvol.model import load_model

    return load_model(tiny_model_path, device="cpu")
