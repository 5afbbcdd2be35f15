"""The scripts in examples/ run, on small data, with a tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TGS_DIR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, timeout: int = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_segment_from_python(tiny_model_path):
    out = _run("segment_from_python.py", "--model", str(tiny_model_path), "--shape", "16", "16", "64", "--tile", "64")
    assert "3D IoU" in out


def test_export_and_plot(tiny_model_path, tmp_path):
    out = _run("export_and_plot.py", "--model", str(tiny_model_path), "--tile", "64", "--out", str(tmp_path))
    assert (tmp_path / "salt.sgy").is_file() and (tmp_path / "section.png").is_file()
    assert "traces" in out


@pytest.mark.cluster
def test_local_cluster(tiny_model_path, tmp_path):
    out = _run("local_cluster.py", "--workers", "2", "--model", str(tiny_model_path), "--tile", "64", "--out", str(tmp_path))
    assert "tiles inferred" in out


@pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")
def test_train_tiny(tmp_path):
    out = _run("train_tiny.py", "--data", str(TGS_DIR), "--limit", "24", "--epochs", "1", "--ensemble", "--out", str(tmp_path))
    assert "model:" in out
    assert "ensemble:" in out and (tmp_path / "ensemble.safetensors").is_file()  # combined, then used by segment
