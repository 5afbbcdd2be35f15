"""Tests for saltvol.train.predict: submission CSV, mask PNGs, evaluation, and the RLE format on real TGS masks."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from saltvol.errors import InputError, OutputExistsError, OutputPathError
from saltvol.train.data import read_image
from saltvol.train.rle import rle_decode, rle_encode
from tests.conftest import TGS_DIR as TGS

needs_tgs = pytest.mark.skipif(not (TGS / "train" / "images").is_dir(), reason="TGS data not available")


def _tiny_model(path: Path, **meta_changes) -> Path:
    """A randomly initialised, small U-Net saved as a model file."""
    import torch

    from saltvol.model import ModelConfig, ModelMeta, build_model, save_model

    torch.manual_seed(0)
    config = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
    return save_model(build_model(config), ModelMeta(config=config, **meta_changes), path)


def _read_mask_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    # threshold 0.5 on an untrained network gives masks with some salt and some not
    return _tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", tta=True)


@pytest.fixture
def images_dir(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for src in sorted((TGS / "train" / "images").glob("*.png"))[:8]:
        shutil.copy(src, folder / src.name)
    return folder


@needs_tgs
def test_submission_rows_match_masks(tiny_model, images_dir, tmp_path):
    from saltvol.train.predict import predict_images

    calls = []
    out = predict_images(
        images_dir, tmp_path / "sub.csv", model=tiny_model, masks_dir=tmp_path / "masks",
        batch_size=3, device="cpu", progress=lambda *a: calls.append(a),
    )
    assert out == tmp_path / "sub.csv"
    with open(out, newline="") as fh:
        assert fh.readline() == "id,rle_mask\n"
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    ids = sorted(p.stem for p in images_dir.glob("*.png"))
    assert [r["id"] for r in rows] == ids
    for row in rows:
        png = _read_mask_png(tmp_path / "masks" / f"{row['id']}.png")
        assert png.dtype == np.uint8 and png.shape == (101, 101)
        assert set(np.unique(png)) <= {0, 255}
        decoded = rle_decode(row["rle_mask"], (101, 101))
        np.testing.assert_array_equal(decoded, png > 0)
    assert calls == [(3, 8, "predict"), (6, 8, "predict"), (8, 8, "predict")]
    assert not list(tmp_path.glob(".*tmp"))


@needs_tgs
def test_refuses_existing_outputs(tiny_model, images_dir, tmp_path):
    from saltvol.train.predict import predict_images

    out = tmp_path / "sub.csv"
    out.write_text("keep me\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        predict_images(images_dir, out, model=tiny_model, device="cpu")
    assert out.read_text() == "keep me\n"
    with pytest.raises(OutputPathError, match="is a folder"):
        predict_images(images_dir, tmp_path, model=tiny_model, device="cpu")
    with pytest.raises(InputError, match="no PNG tiles"):
        predict_images(tmp_path, tmp_path / "x.csv", model=tiny_model)
    predict_images(images_dir, out, model=tiny_model, device="cpu", overwrite=True)
    assert out.read_text().startswith("id,rle_mask\n")


def test_missing_image_folder(tmp_path):
    from saltvol.train.predict import predict_images

    with pytest.raises(InputError, match="does not exist"):
        predict_images(tmp_path / "nope", tmp_path / "x.csv")


@needs_tgs
def test_evaluate_reports_both_settings(tiny_model, tmp_path):
    from saltvol.train.predict import evaluate

    model = _tiny_model(tmp_path / "m.safetensors", threshold=0.6, min_area=20, k_folds=4, fold=1, tta=False)
    report = evaluate(TGS, model=model, device="cpu", limit=24)
    assert report["subset"] == "validation fold 1 of 4"
    assert report["tiles"] == report["counts"]["overall"] == 6
    assert sum(report["counts"][k] for k in ("empty", "<10%", "10-50%", ">50%")) == 6
    assert (report["threshold"], report["min_area"]) == (0.6, 20)
    for key in ("at_0.5", "tuned"):
        assert set(report[key]) == {"overall", "empty", "<10%", "10-50%", ">50%"}
        assert 0.0 <= report[key]["overall"] <= 1.0
    everything = evaluate(TGS, model=model, device="cpu", limit=24, all_tiles=True)
    assert everything["tiles"] == 24 and everything["subset"] == "all tiles"


@needs_tgs
def test_rle_round_trip_on_real_masks():
    with open(TGS / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if r["rle_mask"]][:40] + [r for r in rows if not r["rle_mask"]][:10]
    assert len(rows) == 50
    for row in rows:
        mask = _read_mask_png(TGS / "train" / "masks" / f"{row['id']}.png")
        mask = (mask[..., 0] if mask.ndim == 3 else mask) > 0
        np.testing.assert_array_equal(rle_decode(row["rle_mask"], (101, 101)), mask)
        assert rle_encode(mask) == row["rle_mask"]
    assert read_image(TGS / "train" / "images" / f"{rows[0]['id']}.png").shape == (101, 101)
