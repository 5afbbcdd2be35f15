"""Shared fixtures: a tiny randomly initialised model saved the way 'saltvol train' saves one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Exact-equality tests (chunk invariance, resume, lazy against streamed) compare two batchings of the same
# sections. In fp32 they agree to the last bit; under bf16 autocast on AMX processors oneDNN picks kernels by
# batch shape, so two batchings differ by bf16 rounding, which a random test network can amplify. The suite
# runs in fp32 (also in the `saltvol` processes the CLI tests start, which inherit it); test_model.py checks
# the bf16 path on its own.
os.environ.setdefault("SALTVOL_PRECISION", "fp32")

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
    return save_model(build_model(config), ModelMeta(config=config, name="tiny-test"), path, precision="fp32")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    from saltvol.model import load_model

    return load_model(tiny_model_path, device="cpu")
