"""Fixtures for the CLI tests: a subprocess runner, a tiny model file and a few real TGS tiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TGS_DIR as TGS


def _run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m saltvol_cli ARGS`` (the installed package) and capture its output."""
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run(
        [sys.executable, "-m", "saltvol_cli", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return _run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised small U-Net saved with save_model (a few MB, fast on CPU)."""
    import torch

    from saltvol.model import ModelConfig, ModelMeta, build_model, save_model

    torch.manual_seed(0)
    config = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(build_model(config), ModelMeta(config=config, tta=False), path)


@pytest.fixture
def tgs_images(tmp_path) -> Path:
    """Four real TGS tiles in a fresh folder."""
    if not (TGS / "train" / "images").is_dir():
        pytest.skip("TGS data not available")
    folder = tmp_path / "images"
    folder.mkdir()
    for src in sorted((TGS / "train" / "images").glob("*.png"))[:4]:
        shutil.copy(src, folder / src.name)
    return folder
