"""Ensembles: two networks trained on real TGS tiles combined into one model file that every command loads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from saltvol.errors import InputError, OutputExistsError, OutputPathError
from saltvol.model import ModelConfig, calibrate, load_model
from saltvol.train.ensemble import combine_models
from saltvol.train.loop import TrainConfig, train
from tests.conftest import TGS_DIR

pytestmark = pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")

LIMIT = 24
TINY = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
OTHER = ModelConfig(encoder="resnet18", decoder_channels=(16, 16, 16, 16, 16))


def _train(run_dir: Path, model: ModelConfig, **changes) -> Path:
    base = dict(model=model, epochs=1, limit=LIMIT, k_folds=4, batch_size=6, lr=1e-3, threads=1)
    config = TrainConfig(**(base | changes))
    return train(TGS_DIR, run_dir, config)


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("members")
    return [_train(root / "a", TINY), _train(root / "b", OTHER)]


def test_an_ensemble_predicts_the_calibrated_mean_of_its_members(members, tmp_path):
    from saltvol.train.data import load_tgs

    out, report = combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", precision="fp32", limit=LIMIT)
    ensemble = load_model(out, device="cpu")
    assert ensemble.meta.members == (TINY, OTHER) and ensemble.meta.config == TINY
    assert "resnet18 + resnet18" in repr(ensemble)
    tiles = load_tgs(TGS_DIR, limit=8).images
    raw = [load_model(m, device="cpu").with_meta(calibration=(1.0, 0.0)).predict_tiles(tiles) for m in members]
    expected = calibrate(np.mean(raw, axis=0), ensemble.meta.calibration)
    np.testing.assert_allclose(ensemble.predict_tiles(tiles), expected, atol=1e-4)
    assert ensemble.meta.val_score == pytest.approx(report["overall"], abs=1e-4)


def test_the_stored_score_is_what_evaluate_measures(members, tmp_path):
    from saltvol.train.predict import evaluate

    out, report = combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT)
    measured = evaluate(TGS_DIR, model=out, limit=LIMIT, device="cpu")
    assert measured["tuned"]["overall"] == pytest.approx(report["overall"], abs=1e-4)  # tuned on the int8 weights it holds


def test_int8_ensemble_is_a_quarter_of_fp32(members, tmp_path):
    int8, _ = combine_models(members, TGS_DIR, tmp_path / "int8.safetensors", limit=LIMIT)
    fp32, _ = combine_models(members, TGS_DIR, tmp_path / "fp32.safetensors", precision="fp32", limit=LIMIT)
    assert int8.stat().st_size < 0.3 * fp32.stat().st_size


def test_models_of_different_splits_are_refused(members, tmp_path):
    other_split = _train(tmp_path / "c", TINY, k_folds=3)
    with pytest.raises(InputError, match="k_folds=3.*share data, split and normalisation"):
        combine_models([members[0], other_split], TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT)
    assert not (tmp_path / "ens.safetensors").exists()


def test_an_ensemble_grows_by_a_network_and_keeps_its_int8_members(members, tmp_path):
    import torch

    ens, _ = combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT)
    third_config = ModelConfig(encoder="resnet18", decoder_channels=(24, 16, 16, 16, 16))
    third = _train(tmp_path / "c", third_config)
    grown, _ = combine_models([ens, third], TGS_DIR, tmp_path / "grown.safetensors", limit=LIMIT)
    model = load_model(grown, device="cpu")
    assert model.meta.members == (TINY, OTHER, third_config)
    before = load_model(ens, device="cpu").network.state_dict()
    after = model.network.state_dict()
    for key, value in before.items():  # int8 weights stored again as int8: the same values
        torch.testing.assert_close(after[key], value, rtol=0, atol=1e-6)
    tiles = np.random.default_rng(1).random((2, 101, 101), dtype=np.float32)
    assert model.predict_tiles(tiles).shape == (2, 101, 101)


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_a_stored_copy_is_the_same_network_and_one_nudged_channel_is_not(precision):
    """The duplicate check allows storage rounding, per output channel, and nothing more."""
    import copy

    import torch

    from saltvol._weight_storage import as_stored
    from saltvol.model import build_model
    from saltvol.train.ensemble import _same_weights

    torch.manual_seed(0)
    network = build_model(TINY)
    assert _same_weights(network, as_stored(copy.deepcopy(network), precision))
    nudged = copy.deepcopy(network)
    weight = nudged.state_dict()["encoder.conv1.weight"]
    quiet = int(weight.flatten(1).abs().amax(1).argmin())  # the channel with the smallest weights
    weight[quiet].mul_(1.05)  # 5 %: more than one int8 step of that channel, far less than of the loudest
    assert not _same_weights(network, nudged)


def test_one_model_a_network_given_twice_too_many_or_an_existing_output_are_refused(members, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="at least two models"):
        combine_models(members[:1], TGS_DIR, tmp_path / "one.safetensors", limit=LIMIT)
    ens, _ = combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT)
    with pytest.raises(InputError, match=r"\(member 0\) is the same network as .*; pass each network once"):
        combine_models([members[0], ens], TGS_DIR, tmp_path / "nested.safetensors", limit=LIMIT)
    monkeypatch.setattr("saltvol.train.ensemble.MAX_MEMBERS", 2)
    with pytest.raises(InputError, match="hold 3 networks, more than an ensemble may \\(2\\); pass fewer"):
        combine_models([members[0], ens], TGS_DIR, tmp_path / "nested.safetensors", limit=LIMIT)
    assert not (tmp_path / "nested.safetensors").exists()
    before = ens.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        combine_models(members, TGS_DIR, ens, limit=LIMIT)
    assert ens.read_bytes() == before
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        combine_models(members, TGS_DIR, folder, overwrite=True, limit=LIMIT)
    assert list(tmp_path.glob("*.tmp")) == [] and not any(folder.iterdir())


def test_training_starts_from_one_network_of_an_ensemble_only_when_told_which(members, tmp_path):
    import torch

    ens, _ = combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT)  # int8, as shipped
    with pytest.raises(InputError, match=r"is an ensemble \(0: unet on resnet18, 1: unet on resnet18\); pass --init-member"):
        _train(tmp_path / "run", TINY, init_from=str(ens))
    with pytest.raises(InputError, match="--init-member 2 is not a network of"):
        _train(tmp_path / "run", TINY, init_from=str(ens), init_member=2)
    with pytest.raises(InputError, match="is one network, not an ensemble; drop --init-member"):
        _train(tmp_path / "run", TINY, init_from=str(members[0]), init_member=0)
    with pytest.raises(InputError, match="none was given; pass --init"):
        _train(tmp_path / "run", TINY, init_member=0)
    assert not (tmp_path / "run").exists()

    _train(tmp_path / "run", TINY, init_from=str(ens), init_member=1, lr=1e-12)
    saved = TrainConfig.from_json((tmp_path / "run" / "config.json").read_text())
    assert saved.model == OTHER and saved.init_member == 1  # the second network's architecture, not the first's
    started = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    member = load_model(ens, device="cpu").network.members[1].state_dict()  # as stored: int8 values
    for key in ("encoder.conv1.weight", "decoder.blocks.0.conv1.0.weight", "segmentation_head.0.weight"):
        torch.testing.assert_close(started[key], member[key], rtol=0, atol=1e-6)  # lr 1e-12: its weights, kept


def test_tuning_on_other_tiles_than_the_training_data_is_refused(members, tmp_path):
    with pytest.raises(InputError, match="fingerprint differs"):
        combine_models(members, TGS_DIR, tmp_path / "ens.safetensors", limit=LIMIT + 8)
