"""Training on real TGS tiles: the loss falls, checkpoints resume exactly, and nothing unsafe loads."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from saltvol.errors import CheckpointError, InputError
from saltvol.model import ModelConfig, build_model, load_model, read_model_info, save_model
from saltvol.train.augment import AugmentConfig
from saltvol.train.loop import TrainConfig, train
from tests.conftest import TGS_DIR

pytestmark = pytest.mark.skipif(not TGS_DIR.is_dir(), reason="needs the shared TGS data")

TINY = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
NO_AUGMENT = AugmentConfig(hflip=0.0, p_affine=0.0, contrast=(1.0, 1.0), brightness=0.0)


def _config(**changes) -> TrainConfig:
    base = dict(model=TINY, epochs=2, limit=24, k_folds=4, batch_size=6, lr=1e-3, threads=1)
    return TrainConfig(**(base | changes))


def test_a_few_steps_lower_the_loss_and_write_a_model(tmp_path):
    reports = []
    config = _config(epochs=4, lovasz_from=1.0, augment=NO_AUGMENT, warmup_epochs=0.0)
    model_path = train(TGS_DIR, tmp_path / "run", config, on_epoch=reports.append)
    losses = [r.train_loss for r in reports]
    assert losses[-1] < losses[0]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    model = load_model(model_path, device="cpu")
    assert model.meta.data_fingerprint and 0.0 <= model.meta.threshold <= 1.0
    assert model.meta.calibration[0] > 0  # Platt scaling fitted on the validation fold at export
    probs = model.predict_tiles(np.random.default_rng(0).random((2, 101, 101), dtype=np.float32))
    assert probs.shape == (2, 101, 101) and 0 <= probs.min() and probs.max() <= 1


def test_weight_decay_shrinks_layer_weights_and_spares_norms(tmp_path):
    """A strong decay (5 % per step here) pulls convolution weights in; batch-norm scales move only by Adam's steps."""
    settings = dict(epochs=1, augment=NO_AUGMENT, warmup_epochs=0.0, lovasz_from=1.0)
    weights = {}
    for decay in (0.0, 50.0):
        run = tmp_path / f"wd{decay}"
        train(TGS_DIR, run, _config(weight_decay=decay, **settings))
        weights[decay] = torch.load(run / "last.pt", weights_only=True)["model"]
        assert json.loads((run / "config.json").read_text())["weight_decay"] == decay
    free, decayed = weights[0.0], weights[50.0]
    conv = "encoder.layer1.0.conv1.weight"
    assert decayed[conv].norm() < 0.92 * free[conv].norm()  # three steps of 5 % decay: about 14 % smaller
    for name in ("encoder.bn1.weight", "encoder.layer1.0.bn1.weight", "decoder.blocks.0.conv1.1.weight"):
        # Adam moves each value by about lr = 1e-3 per step; decayed, a scale of 1 would lose about 0.14
        assert (decayed[name] - free[name]).abs().max() < 0.02, name


class Interrupt(Exception):
    pass


def test_resume_continues_exactly(tmp_path):
    synthetic = 12  # synthetic tiles are regenerated from the seed on resume: covered here too
    straight = tmp_path / "straight"
    steps = set()
    train(TGS_DIR, straight, _config(synthetic_tiles=synthetic), on_step=lambda step, total, loss: steps.add(total))
    n_train = 24 - 24 // 4  # --limit 24, fold 0 of 4 held out
    assert steps == {(n_train + synthetic) // 6}  # synthetic tiles join the TGS training tiles

    def stop(report):
        raise Interrupt

    broken = tmp_path / "broken"
    with pytest.raises(Interrupt):
        train(TGS_DIR, broken, _config(synthetic_tiles=synthetic), on_epoch=stop)
    with pytest.raises(InputError, match="--resume"):
        train(TGS_DIR, broken, _config(synthetic_tiles=synthetic))
    train(TGS_DIR, broken, None, resume=True)

    a = torch.load(straight / "last.pt", weights_only=True)["model"]
    b = torch.load(broken / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert (broken / "log.jsonl").read_text().count("\n") == 2


def test_a_resumed_run_can_be_shortened_or_ended_where_it_stopped(tmp_path):
    def stop(report):
        raise Interrupt

    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(TGS_DIR, run, _config(epochs=5, lovasz_from=0.0), on_epoch=stop)
    with pytest.raises(Interrupt):
        train(TGS_DIR, run, _config(epochs=3), resume=True, on_epoch=stop)  # shortened from 5 to 3, stopped after 2
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3  # a later --resume keeps the new length
    straight = []

    def record_two_epochs(report):
        straight.append(report)
        if report.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(TGS_DIR, tmp_path / "straight", _config(epochs=3, lovasz_from=0.0), on_epoch=record_two_epochs)
    assert log[-1]["lr"] == straight[-1].lr  # on the schedule of a 3-epoch run

    with pytest.raises(InputError, match="already trained 2 epochs"):
        train(TGS_DIR, run, _config(epochs=1), resume=True)
    assert not (run / "model.safetensors").exists()
    model_path = train(TGS_DIR, run, _config(epochs=2), resume=True)  # ends the run here: export only
    assert (run / "log.jsonl").read_text().count("\n") == 2
    best_epoch = torch.load(run / "best.pt", weights_only=True)["epoch"]
    assert load_model(model_path, device="cpu").meta.epochs == best_epoch  # the best of the two epochs, exported


def test_a_run_saved_with_one_optimizer_group_resumes_as_it_was_trained(tmp_path):
    """Runs written before norms and biases left the decay kept one AdamW group; --resume continues them that way."""
    def stop(report):
        raise Interrupt

    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(TGS_DIR, run, _config(), on_epoch=stop)
    state = torch.load(run / "last.pt", weights_only=True)
    network = build_model(TINY)
    network.load_state_dict(state["model"])
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=1e-4)  # the old single group
    network(torch.zeros(1, 1, 64, 64))[0].mean().backward()  # (mask logits, has-salt logit)
    optimizer.step()
    torch.save(state | {"optimizer": optimizer.state_dict()}, run / "last.pt")
    model_path = train(TGS_DIR, run, None, resume=True)
    assert model_path.exists() and (run / "log.jsonl").read_text().count("\n") == 2
    groups = torch.load(run / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-4]  # still the one group that decays everything


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch notes the protocol before refusing
def test_resume_refuses_a_hostile_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(_config().to_json())
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"model": Evil()}, run / "last.pt", pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError):
        train(TGS_DIR, run, None, resume=True)
    with pytest.raises(CheckpointError):
        load_model(run / "last.pt")
    assert not marker.exists()


def test_a_run_can_start_from_an_earlier_model(tmp_path):
    train(TGS_DIR, tmp_path / "first", _config(epochs=1, lr=1e-2))
    first = tmp_path / "first" / "best.pt"
    # The architecture comes with the weights: the default (larger) model config asked for here is replaced.
    train(TGS_DIR, tmp_path / "second", _config(model=ModelConfig(), epochs=1, lr=1e-12, init_from=str(first)))
    key = "encoder.conv1.weight"  # a convolution: untouched at lr 1e-12 (batch-norm statistics still move)
    start = torch.load(first, weights_only=True)["model"][key]
    after = torch.load(tmp_path / "second" / "last.pt", weights_only=True)["model"][key]
    torch.testing.assert_close(after, start, rtol=0, atol=1e-6)
    torch.manual_seed(42)
    fresh = build_model(TINY).state_dict()[key]  # what the run would hold had it ignored --init
    assert float((fresh - start).abs().max()) > 1e-3
    saved = TrainConfig.from_json((tmp_path / "second" / "config.json").read_text())
    assert saved.init_from == str(first.resolve()) and saved.model == TINY
    assert load_model(tmp_path / "second" / "model.safetensors", device="cpu").meta.config == TINY


def test_a_warm_restart_can_grow_the_full_resolution_branch(tmp_path):
    train(TGS_DIR, tmp_path / "first", _config(epochs=1, lr=1e-2))
    first = tmp_path / "first" / "best.pt"
    grown = ModelConfig(full_resolution_width=8)  # only the branch is taken from here: the rest comes with --init
    train(TGS_DIR, tmp_path / "second", _config(model=grown, epochs=1, lr=1e-12, init_from=str(first)))
    saved = TrainConfig.from_json((tmp_path / "second" / "config.json").read_text())
    assert saved.model == replace(TINY, full_resolution_width=8)
    key = "encoder.conv1.weight"
    start = torch.load(first, weights_only=True)["model"][key]
    after = torch.load(tmp_path / "second" / "last.pt", weights_only=True)["model"]
    torch.testing.assert_close(after[key], start, rtol=0, atol=1e-6)  # the trained weights were kept
    assert "fuse.1.weight" in after
    assert load_model(tmp_path / "second" / "model.safetensors", device="cpu").meta.config.full_resolution_width == 8
    # A model that has a branch keeps it: another width is refused before a run folder is made.
    with pytest.raises(InputError, match="already has a full-resolution branch of width 8"):
        train(TGS_DIR, tmp_path / "third", _config(model=ModelConfig(full_resolution_width=16), epochs=1,
                                                   init_from=str(tmp_path / "second" / "best.pt")))
    assert not (tmp_path / "third").exists()


def test_a_warm_restart_can_put_a_new_decoder_on_the_trained_encoder(tmp_path):
    train(TGS_DIR, tmp_path / "first", _config(epochs=1, lr=1e-2))
    first = tmp_path / "first" / "best.pt"
    start = torch.load(first, weights_only=True)["model"]
    nested = ModelConfig(arch="unetplusplus", encoder="efficientnet-b0", decoder_channels=(32, 16, 16, 16, 16))
    attended = replace(TINY, decoder_attention="scse")  # the same decoder weight names as the init model's
    attentive = replace(nested, arch="manet")
    for name, asked in (("nested", nested), ("attended", attended), ("attentive", attentive)):
        train(TGS_DIR, tmp_path / name, _config(model=asked, epochs=1, lr=1e-12, init_from=str(first), init_encoder_only=True))
        saved = TrainConfig.from_json((tmp_path / name / "config.json").read_text())
        assert saved.model == replace(asked, encoder=TINY.encoder)  # the decoder asked for, on --init's encoder
        after = torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]
        for key in ("encoder.conv1.weight", "encoder.layer4.1.conv2.weight", "classification_head.3.weight"):
            torch.testing.assert_close(after[key], start[key], rtol=0, atol=1e-6)  # kept: lr 1e-12 barely moves them
    key = "decoder.blocks.0.conv1.0.weight"
    after = torch.load(tmp_path / "attended" / "last.pt", weights_only=True)["model"]
    assert float((after[key] - start[key]).abs().max()) > 1e-3  # same name, new weights: the decoder started afresh
    assert "decoder.blocks.x_0_0.conv1.0.weight" in torch.load(tmp_path / "nested" / "last.pt", weights_only=True)["model"]
    assert "decoder.center.top_conv.weight" in torch.load(tmp_path / "attentive" / "last.pt", weights_only=True)["model"]
    for name, arch in (("nested", "unetplusplus"), ("attentive", "manet")):
        model = load_model(tmp_path / name / "model.safetensors", device="cpu")
        assert model.meta.config.arch == arch and arch in repr(model)
        probs = model.predict_tiles(np.random.default_rng(0).random((2, 101, 101), dtype=np.float32))
        assert probs.shape == (2, 101, 101) and 0 <= probs.min() and probs.max() <= 1
    # The init model's own decoder again would throw its training away: refused before a run folder is made.
    with pytest.raises(InputError, match="own: drop --architecture"):
        train(TGS_DIR, tmp_path / "same", _config(model=TINY, init_from=str(first), init_encoder_only=True))
    with pytest.raises(InputError, match="pass init_from"):
        train(TGS_DIR, tmp_path / "none", _config(model=nested, init_encoder_only=True))
    with pytest.raises(CheckpointError, match="needs arch 'unet'"):
        train(TGS_DIR, tmp_path / "branch", _config(model=replace(nested, full_resolution_width=8)))
    assert not any((tmp_path / name).exists() for name in ("same", "none", "branch"))


def test_a_run_config_from_before_init_encoder_only_and_init_member_still_loads():
    raw = json.loads(TrainConfig(init_encoder_only=True, init_member=1).to_json())
    del raw["init_encoder_only"], raw["init_member"]
    loaded = TrainConfig.from_json(json.dumps(raw))
    assert loaded.init_encoder_only is False and loaded.init_member is None


def test_starting_from_a_missing_model_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        train(TGS_DIR, tmp_path / "run", _config(init_from=str(tmp_path / "nope.safetensors")))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_starting_from_a_model_of_another_split_is_refused(tmp_path):
    earlier = train(TGS_DIR, tmp_path / "first", _config(epochs=1))
    # Another fold count puts some of the earlier model's training tiles into this run's validation fold.
    with pytest.raises(InputError, match="another split"):
        train(TGS_DIR, tmp_path / "second", _config(k_folds=3, init_from=str(earlier)))
    assert not (tmp_path / "second").exists()


def test_a_run_config_from_before_drop_vertical_masks_still_loads():
    """Run folders written before the option existed resume with the artifacts kept, as they were trained."""
    raw = json.loads(TrainConfig(drop_vertical_masks=True).to_json())
    del raw["drop_vertical_masks"]
    assert TrainConfig.from_json(json.dumps(raw)).drop_vertical_masks is False


def test_a_weight_average_is_validated_exported_and_resumed_exactly(tmp_path):
    config = _config(ema_decay=0.9)
    straight = tmp_path / "straight"
    train(TGS_DIR, straight, config)
    last = torch.load(straight / "last.pt", weights_only=True)
    key = "encoder.conv1.weight"
    # The checkpoint keeps both: the average (validated, exported) and the trained weights (to continue from).
    assert float((last["model"][key] - last["train_model"][key]).abs().max()) > 1e-4
    assert int(last["n_averaged"]) == 2 * ((24 - 24 // 4) // 6)  # one update per step, two epochs
    best = torch.load(straight / "best.pt", weights_only=True)
    assert "train_model" not in best
    exported = load_model(straight / "model.safetensors", device="cpu").network.state_dict()[key]
    torch.testing.assert_close(exported, best["model"][key].to(exported.dtype), rtol=0, atol=2e-3)  # fp16 storage

    def stop(report):
        raise Interrupt

    broken = tmp_path / "broken"
    with pytest.raises(Interrupt):
        train(TGS_DIR, broken, config, on_epoch=stop)
    train(TGS_DIR, broken, None, resume=True)
    resumed = torch.load(broken / "last.pt", weights_only=True)
    for part in ("model", "train_model"):
        for name, value in last[part].items():
            torch.testing.assert_close(resumed[part][name], value, rtol=0, atol=0)


def test_the_weight_average_follows_the_network_early_and_settles_at_its_decay():
    from torch.optim.swa_utils import AveragedModel

    from saltvol.train.loop import _ema_decay_at, _ema_update

    assert _ema_decay_at(0.999, 1) == pytest.approx(2 / 11)  # the second update keeps under a fifth of the first
    assert _ema_decay_at(0.999, 100_000) == 0.999
    network = torch.nn.Linear(3, 1, bias=False)
    averaged = AveragedModel(network, multi_avg_fn=_ema_update(0.999))
    start = network.weight.detach().clone()
    for _ in range(50):  # the network moves by 1 each step
        with torch.no_grad():
            network.weight += 1.0
        averaged.update_parameters(network)
    lag = float((network.weight - averaged.module.weight).detach().abs().max())
    # A fixed 0.999 would still sit near the start (lag about 48); warmed up, it trails by about (1 + n) / 9 steps.
    assert 3.0 < lag < 8.0, lag
    assert float((averaged.module.weight.detach() - start).min()) > 35.0


def test_a_run_config_from_before_the_weight_average_still_loads():
    raw = json.loads(TrainConfig(ema_decay=0.99).to_json())
    del raw["ema_decay"]
    assert TrainConfig.from_json(json.dumps(raw)).ema_decay == 0.0


def test_an_int8_export_is_tuned_on_the_weights_it_stores(tmp_path):
    from safetensors import safe_open

    from saltvol.train.predict import evaluate

    model_path = train(TGS_DIR, tmp_path / "run", _config(epochs=1, precision="int8"))
    with safe_open(str(model_path), "pt") as fh:
        dtypes = {fh.get_tensor(key).dtype for key in fh.keys()}
    assert torch.int8 in dtypes  # convolution weights quantized (their scales are float32)
    stored = load_model(model_path, device="cpu").meta.val_score
    measured = evaluate(TGS_DIR, model=model_path, limit=24, device="cpu")["tuned"]["overall"]
    assert measured == pytest.approx(stored, abs=1e-4)


@pytest.mark.parametrize("changes, message", [({"precision": "int4"}, "precision"), ({"ema_decay": 1.0}, "decay")])
def test_bad_export_or_average_settings_are_refused_before_a_run_folder_is_made(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        train(TGS_DIR, tmp_path / "run", _config(**changes))
    assert not (tmp_path / "run").exists()


def test_a_run_config_from_before_the_frame_jitter_still_loads():
    raw = json.loads(TrainConfig(augment=AugmentConfig(frame_jitter=8)).to_json())
    del raw["augment"]["frame_jitter"]
    assert TrainConfig.from_json(json.dumps(raw)).augment.frame_jitter == 0


def _mean_probability(run_dir, images: np.ndarray) -> float:
    """Mean raw sigmoid of a run's last weights on (N, 101, 101) tiles in image units (no calibration, no tuning)."""
    state = torch.load(run_dir / "last.pt", weights_only=True)
    meta = load_model(run_dir / "model.safetensors", device="cpu").meta
    network = build_model(TINY)
    network.load_state_dict(state["model"])
    network.eval()
    x = torch.nn.functional.pad(torch.from_numpy((images - meta.image_mean) / meta.image_std).float()[:, None], (13, 14, 13, 14), mode="reflect")
    with torch.inference_mode():
        logits = network(x)
    return float(torch.sigmoid(logits[0] if isinstance(logits, tuple) else logits).mean())


def test_a_teacher_pulls_the_network_towards_its_probabilities(tmp_path):
    """A teacher that calls every pixel salt (p = 0.9975) raises the trained network's salt probability."""
    train(TGS_DIR, tmp_path / "first", _config(epochs=1))
    first = load_model(tmp_path / "first" / "model.safetensors", device="cpu")
    teacher = save_model(first.network, replace(first.meta, calibration=(1e-6, 6.0)), tmp_path / "salty.safetensors")
    settings = dict(epochs=1, augment=NO_AUGMENT, warmup_epochs=0.0, lovasz_from=1.0, init_from=str(tmp_path / "first" / "best.pt"))
    train(TGS_DIR, tmp_path / "plain", _config(**settings))
    train(TGS_DIR, tmp_path / "taught", _config(teacher=str(teacher), distill_weight=20.0, **settings))
    saved = TrainConfig.from_json((tmp_path / "taught" / "config.json").read_text())
    assert saved.teacher == str(teacher.resolve()) and saved.distill_weight == 20.0
    from saltvol.train.data import load_tgs

    images = load_tgs(TGS_DIR, limit=24).images
    plain, taught = _mean_probability(tmp_path / "plain", images), _mean_probability(tmp_path / "taught", images)
    assert taught > plain + 0.05, (plain, taught)


def test_a_missing_teacher_of_another_split_or_a_bad_distillation_weight_is_refused(tmp_path):
    train(TGS_DIR, tmp_path / "first", _config(epochs=1))
    teacher = str(tmp_path / "first" / "model.safetensors")
    with pytest.raises(CheckpointError, match="nope.safetensors' does not exist; check the path"):
        train(TGS_DIR, tmp_path / "second", _config(teacher=str(tmp_path / "nope.safetensors")))
    with pytest.raises(InputError, match="--teacher .* another split"):
        train(TGS_DIR, tmp_path / "second", _config(k_folds=3, teacher=teacher))
    with pytest.raises(InputError, match="distillation weight"):
        train(TGS_DIR, tmp_path / "second", _config(teacher=teacher, distill_weight=0.0))
    assert not (tmp_path / "second").exists()


def test_a_resume_refuses_a_teacher_file_that_changed(tmp_path):
    """The targets are recomputed from the teacher's file on resume: a different file would change what is learnt."""
    train(TGS_DIR, tmp_path / "first", _config(epochs=1))
    first = load_model(tmp_path / "first" / "model.safetensors", device="cpu")
    teacher = save_model(first.network, first.meta, tmp_path / "teacher.safetensors")

    def stop(report):
        raise Interrupt

    with pytest.raises(Interrupt):
        train(TGS_DIR, tmp_path / "run", _config(teacher=str(teacher)), on_epoch=stop)
    saved = TrainConfig.from_json((tmp_path / "run" / "config.json").read_text())
    assert saved.teacher_sha256 == read_model_info(teacher).sha256
    save_model(first.network, replace(first.meta, calibration=(2.0, 0.0)), teacher)  # same path, other targets
    with pytest.raises(InputError, match="has changed since the run started"):
        train(TGS_DIR, tmp_path / "run", resume=True)
    save_model(first.network, first.meta, teacher)  # restored: the run goes on
    train(TGS_DIR, tmp_path / "run", resume=True)
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 2


def test_a_run_config_from_before_the_teacher_still_loads():
    raw = json.loads(TrainConfig(teacher="t.safetensors").to_json())
    del raw["teacher"], raw["teacher_sha256"], raw["distill_weight"]
    loaded = TrainConfig.from_json(json.dumps(raw))
    assert loaded.teacher is None and loaded.teacher_sha256 is None and loaded.distill_weight == 1.0
