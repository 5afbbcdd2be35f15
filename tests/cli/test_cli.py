"""Tests for the saltvol command line: help, exit codes, one-line errors, and each command end to end (small)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import segyio
from click.testing import CliRunner
from saltvol_cli.main import cli
from saltvol_cli.options import ChunkSpec

from .conftest import TGS

COMMANDS = sorted(cli.commands)


def _has(module: str, name: str) -> bool:
    import importlib

    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


def _one_error_line(stderr: str, prefix: str = "saltvol: error:") -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------- help, version
@pytest.mark.parametrize("name", COMMANDS)
def test_help_for_every_command(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: saltvol {name}" in result.output
    assert "Example" in result.output


def test_commands_registered():
    assert set(COMMANDS) >= {"synth", "convert", "segment", "train", "evaluate", "predict-images"}


def test_help_and_version_are_fast_and_import_no_torch(run_cli):
    code = (
        "import sys; from saltvol_cli.main import cli; "
        "assert cli.main(['--help'], standalone_mode=False) == 0; "
        "heavy = [m for m in ('torch', 'dask', 'xarray', 'distributed', 'segyio') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    started = time.perf_counter()
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("saltvol ")
    assert time.perf_counter() - started < 10


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "saltvol"
    assert script.is_file()
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Commands:" in done.stdout


def test_no_arguments_shows_help():
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0 and "Commands:" in result.output


# ---------------------------------------------------------------- error contract
@pytest.mark.parametrize(
    "args",
    [
        ["synth", "-o", "x.sgy", "--shape", "4", "4"],
        ["synth", "--bogus"],
        ["convert", "in.sgy", "-o", "out.zarr", "--chunks", "depth=3"],
        ["segment", "in.sgy", "-o", "o.zarr", "--overlap", "1.5"],
        ["train", "--data", "tgs", "-o", "run", "--init", "m.safetensors", "--encoder", "resnet34"],
        ["train", "--data", "tgs", "-o", "run", "--architecture", "unetplusplus", "--full-resolution-width", "8"],
        ["train", "--data", "tgs", "-o", "run", "--decoder-channels", "64,32,16"],
        ["train", "--data", "tgs", "-o", "run", "--decoder-channels", "64,32,16,16,wide"],
        ["train", "--data", "tgs", "-o", "run", "--zoom-range", "1.25,0.8"],
        ["train", "--data", "tgs", "-o", "run", "--zoom-range", "0.8"],
        ["train", "--data", "tgs", "-o", "run", "--zoom-range", "0.5,inf"],
        ["train", "--data", "tgs", "-o", "run", "--affine-share", "1.5"],
        ["nonsense"],
    ],
)
def test_usage_errors_are_one_line_exit_2(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert _one_error_line(result.stderr).endswith("--help')")
    assert "Usage:" not in result.stderr


def test_scheduler_and_workers_exclude_each_other():
    result = CliRunner().invoke(cli, ["segment", "in.sgy", "-o", "o.zarr", "--workers", "2", "--scheduler", "tcp://h:1"])
    assert result.exit_code == 2
    assert "exclude each other" in _one_error_line(result.stderr)


def test_internal_error_contract(monkeypatch, tmp_path):
    import saltvol.synth

    def boom(*args, **kwargs):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(saltvol.synth, "make_volume", boom)
    result = CliRunner().invoke(cli, ["synth", "-o", str(tmp_path / "a.sgy")])
    assert result.exit_code == 1
    line = _one_error_line(result.stderr, "saltvol: internal error: RuntimeError: kaput second line")
    assert line.endswith("(run with -v for the traceback)")
    verbose = CliRunner().invoke(cli, ["-v", "synth", "-o", str(tmp_path / "a.sgy")])
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == "saltvol: internal error: RuntimeError: kaput second line"


def test_saltvol_error_contract(monkeypatch, tmp_path):
    import saltvol.synth
    from saltvol.errors import DataError

    def bad(*args, **kwargs):
        raise DataError("shape (1, 1, 1) is too small; pass at least 3 samples")

    monkeypatch.setattr(saltvol.synth, "make_volume", bad)
    result = CliRunner().invoke(cli, ["synth", "-o", str(tmp_path / "a.sgy")])
    assert result.exit_code == 2
    assert _one_error_line(result.stderr) == "saltvol: error: shape (1, 1, 1) is too small; pass at least 3 samples"


@pytest.mark.parametrize(("command", "resumable"), [("synth", False), ("train", True)])
def test_keyboard_interrupt(monkeypatch, tmp_path, command, resumable):
    import saltvol.synth
    import saltvol.train.loop

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(saltvol.synth, "make_volume", interrupt)
    monkeypatch.setattr(saltvol.train.loop, "train", interrupt)
    args = {"synth": ["synth", "-o", str(tmp_path / "a.sgy")], "train": ["train", "--data", str(tmp_path), "-o", str(tmp_path / "r")]}
    result = CliRunner().invoke(cli, args[command])
    assert result.exit_code == 130
    expected = "saltvol: interrupted; rerun with --resume to continue" if resumable else "saltvol: interrupted"
    assert result.stderr.strip() == expected


def test_train_flags_reach_the_config_and_are_reported_ignored_on_resume(monkeypatch, tmp_path, caplog):
    import saltvol.train.loop

    seen = {}

    def record(data_dir, run_dir, config, *, resume=False, **hooks):
        seen.update(config=config, resume=resume)
        return Path(run_dir) / "model.safetensors"

    monkeypatch.setattr(saltvol.train.loop, "train", record)
    flags = ["--lovasz-elu", "--zoom-range", "0.8,1.25", "--affine-share", "0", "--lr", "3e-4", "--weight-decay", "0.05", "--drop-vertical-masks",
             "--full-resolution-width", "16", "--frame-jitter", "4"]
    fresh = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "r"), *flags])
    assert fresh.exit_code == 0, fresh.output
    config = seen["config"]
    assert config.lovasz_elu and config.lr == 3e-4 and config.weight_decay == 0.05 and config.drop_vertical_masks
    assert config.model.full_resolution_width == 16
    assert config.augment.zoom == (0.8, 1.25) and config.augment.p_affine == 0.0 and config.augment.hflip == 0.5
    assert config.augment.frame_jitter == 4
    resumed = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "r"), "--resume", *flags])
    assert resumed.exit_code == 0, resumed.output
    assert seen["resume"] and seen["config"] is None  # the saved settings rule
    assert ("--lr, --weight-decay, --lovasz-elu, --drop-vertical-masks, --full-resolution-width, --zoom-range, "
            "--affine-share, --frame-jitter ignored with --resume") in caplog.text
    # With --init the branch is the one architecture flag allowed: it grows the branch on the model.
    grown = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "g"), "--init",
                                     str(tmp_path / "m.safetensors"), "--full-resolution-width", "16"])
    assert grown.exit_code == 0, grown.output
    assert seen["config"].model.full_resolution_width == 16 and seen["config"].init_from == str(tmp_path / "m.safetensors")
    assert not seen["config"].init_encoder_only and seen["config"].init_member is None
    member = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "k"), "--init",
                                      str(tmp_path / "m.safetensors"), "--init-member", "1"])
    assert member.exit_code == 0, member.output
    assert seen["config"].init_member == 1
    again = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "k"), "--resume", "--init",
                                     str(tmp_path / "m.safetensors"), "--init-member", "1", "--folds", "4", "--ema", "0.99"])
    assert again.exit_code == 0, again.output
    assert "--folds, --init, --init-member, --ema ignored with --resume" in caplog.text  # the flags' own names
    taught = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "t"), "--teacher",
                                      str(tmp_path / "e.safetensors"), "--distill-weight", "2"])
    assert taught.exit_code == 0, taught.output
    assert seen["config"].teacher == str(tmp_path / "e.safetensors") and seen["config"].distill_weight == 2.0
    untaught = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "u"), "--distill-weight", "2"])
    assert untaught.exit_code == 2 and "no --teacher was given" in untaught.output
    # A decoder flag with --init asks for a new decoder on the model's encoder; without --init it is just the decoder.
    for flags, arch in ((["--architecture", "unetplusplus"], "unetplusplus"), (["--attention", "scse"], "unet"),
                        (["--architecture", "manet"], "manet")):
        nested = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "n"), "--init",
                                          str(tmp_path / "m.safetensors"), *flags])
        assert nested.exit_code == 0, nested.output
        assert seen["config"].init_encoder_only and seen["config"].model.arch == arch
    plain = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "p"), "--architecture", "unetplusplus"])
    assert plain.exit_code == 0 and seen["config"].model.arch == "unetplusplus" and not seen["config"].init_encoder_only
    refusals = (
        (["--init", "m.safetensors", "--encoder", "resnet18"], "--encoder comes with the --init model; drop it"),
        (["--architecture", "unetplusplus", "--full-resolution-width", "8"], "needs --architecture unet; drop one"),
        (["--architecture", "manet", "--attention", "scse"], "manet has its own attention); drop one"),
    )
    for flags, message in refusals:
        result = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "x"), *flags])
        assert result.exit_code == 2 and message in result.output, flags
    caplog.clear()
    resumed = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "-o", str(tmp_path / "r"), "--resume",
                                       "--architecture", "unetplusplus", "--full-resolution-width", "8"])
    assert resumed.exit_code == 0, resumed.output  # nothing refused: the saved settings rule
    assert "--architecture, --full-resolution-width ignored with --resume" in caplog.text


def test_sigterm_is_an_interrupt(tmp_path):
    script = (
        "import time\n"
        "import click\n"
        "from saltvol_cli.main import cli, main\n"
        "@cli.command('wait')\n"
        "@click.option('--resume', is_flag=True)\n"
        "def wait(resume):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert stderr.strip() == "saltvol: interrupted; rerun with --resume to continue"


# ---------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iline=64,xline=64", {"iline": 64, "xline": 64}),
        ("iline=8, xline=16, sample=-1", {"iline": 8, "xline": 16, "sample": -1}),
        ("cdp=4096", {"cdp": 4096}),
    ],
)
def test_chunk_spec(text, expected):
    assert ChunkSpec().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["iline", "depth=4", "iline=0", "sample=auto", "iline=x", "iline=4,iline=8", ""])
def test_chunk_spec_rejects(text):
    import click

    with pytest.raises(click.BadParameter):
        ChunkSpec().convert(text, None, None)


# ---------------------------------------------------------------- synth
@pytest.mark.parametrize(("fmt", "code"), [("ibm", 1), ("ieee", 5)])
def test_synth_writes_segy_and_truth(run_cli, tmp_path, fmt, code):
    import xarray as xr

    out, truth = tmp_path / "s.sgy", tmp_path / "truth.zarr"
    result = run_cli("synth", "-o", out, "--truth", truth, "--shape", 12, 10, 48, "--seed", 3, "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with segyio.open(out, iline=189, xline=193) as f:
        assert (len(f.ilines), len(f.xlines), len(f.samples)) == (12, 10, 48)
        assert int(f.format) == code
    with xr.open_zarr(truth) as ds:
        assert ds["salt"].shape == (12, 10, 48) and ds["salt"].dtype == np.uint8
        assert set(np.unique(ds["salt"].values)) <= {0, 1}
        assert {"iline", "xline", "sample"} <= set(ds.coords)
    assert not list(tmp_path.glob(".*tmp*"))


def test_synth_refuses_to_overwrite(run_cli, tmp_path):
    out = tmp_path / "s.sgy"
    out.write_bytes(b"precious")
    result = run_cli("synth", "-o", out, "--shape", 6, 5, 32)
    assert result.returncode == 2
    assert "--overwrite" in _one_error_line(result.stderr)
    assert out.read_bytes() == b"precious"
    again = run_cli("synth", "-o", out, "--shape", 6, 5, 32, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert out.stat().st_size > 3600


def test_synth_refuses_existing_truth_before_writing(run_cli, tmp_path):
    (tmp_path / "t.zarr").mkdir()
    result = run_cli("synth", "-o", tmp_path / "s.sgy", "--truth", tmp_path / "t.zarr", "--shape", 6, 5, 32)
    assert result.returncode == 2
    _one_error_line(result.stderr)
    assert not (tmp_path / "s.sgy").exists()


def test_synth_byte_locations(run_cli, tmp_path):
    out = tmp_path / "s.sgy"
    result = run_cli("synth", "-o", out, "--shape", 5, 4, 32, "--iline", 9, "--xline", 21)
    assert result.returncode == 0, result.stderr
    with segyio.open(out, iline=9, xline=21) as f:
        assert (len(f.ilines), len(f.xlines)) == (5, 4)


# ---------------------------------------------------------------- convert
needs_convert = pytest.mark.skipif(not _has("saltvol.io.zarr", "convert"), reason="saltvol.io.zarr.convert not written yet")


@needs_convert
@pytest.mark.parametrize("kind", ["missing", "random", "folder", "empty"])
def test_convert_bad_inputs(run_cli, tmp_path, kind):
    source = tmp_path / "in.sgy"
    if kind == "random":
        source.write_bytes(np.random.default_rng(0).bytes(10_000))
    elif kind == "folder":
        source.mkdir()
    elif kind == "empty":
        source.write_bytes(b"")
    result = run_cli("convert", source, "-o", tmp_path / "out.zarr")
    assert result.returncode == 2, result.stderr
    _one_error_line(result.stderr)
    assert not (tmp_path / "out.zarr").exists()


@needs_convert
def test_convert_synthetic(run_cli, tmp_path):
    import xarray as xr

    sgy, out = tmp_path / "s.sgy", tmp_path / "s.zarr"
    assert run_cli("synth", "-o", sgy, "--shape", 8, 6, 40).returncode == 0
    result = run_cli("convert", sgy, "-o", out, "--chunks", "iline=4,xline=4")
    assert result.returncode == 0, result.stderr
    with xr.open_zarr(out) as ds:
        assert ds["amplitude"].shape == (8, 6, 40)
    again = run_cli("convert", sgy, "-o", out)
    assert again.returncode == 2
    _one_error_line(again.stderr)


# ---------------------------------------------------------------- segment
@pytest.mark.skipif(not _has("saltvol", "segment_to_zarr"), reason="saltvol.segment_to_zarr not written yet")
def test_segment_synthetic(run_cli, tmp_path, tiny_model):
    sgy, out = tmp_path / "s.sgy", tmp_path / "salt.zarr"
    assert run_cli("synth", "-o", sgy, "--shape", 10, 8, 64).returncode == 0
    result = run_cli("segment", sgy, "-o", out, "--model", tiny_model, "--device", "cpu", "--tile", 64)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert out.exists()


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.skipif(not _has("saltvol", "segment_to_zarr"), reason="saltvol.segment_to_zarr not written yet")
def test_segment_on_local_cluster_and_refuses_rerun(run_cli, tmp_path, tiny_model):
    sgy, out = tmp_path / "s.sgy", tmp_path / "salt.zarr"
    assert run_cli("synth", "-o", sgy, "--shape", 8, 8, 64).returncode == 0
    args = ("segment", sgy, "-o", out, "--model", tiny_model, "--device", "cpu", "--tile", 64, "--orientations", "iline")
    result = run_cli(*args, "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    again = run_cli(*args)
    assert again.returncode == 2
    assert "--overwrite" in _one_error_line(again.stderr)


# ---------------------------------------------------------------- TGS commands
def test_predict_images(run_cli, tmp_path, tgs_images, tiny_model):
    from saltvol.train.rle import rle_decode

    out = tmp_path / "submission.csv"
    result = run_cli("predict-images", tgs_images, "-o", out, "--model", tiny_model, "--masks-dir", tmp_path / "masks", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "rle_mask"]
    assert [r[0] for r in rows[1:]] == sorted(p.stem for p in tgs_images.glob("*.png"))
    for row in rows[1:]:
        assert rle_decode(row[1], (101, 101)).shape == (101, 101)
    assert len(list((tmp_path / "masks").glob("*.png"))) == 4
    again = run_cli("predict-images", tgs_images, "-o", out, "--model", tiny_model)
    assert again.returncode == 2
    _one_error_line(again.stderr)


def test_predict_images_bad_model(run_cli, tmp_path, tgs_images):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    result = run_cli("predict-images", tgs_images, "-o", tmp_path / "s.csv", "--model", bad)
    assert result.returncode == 2
    _one_error_line(result.stderr)
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_json(run_cli, tiny_model):
    if not (TGS / "train" / "images").is_dir():
        pytest.skip("TGS data not available")
    result = run_cli("evaluate", "--data", TGS, "--model", tiny_model, "--limit", 16, "--all", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tiles"] == 16 and report["subset"] == "all tiles"
    table = run_cli("evaluate", "--data", TGS, "--model", tiny_model, "--limit", 16, "--all", "--device", "cpu")
    assert table.returncode == 0 and "10-50%" in table.stdout and "tuned" in table.stdout


def test_ensemble_combines_two_models_that_evaluate_then_loads(run_cli, tmp_path, tiny_model):
    if not (TGS / "train" / "images").is_dir():
        pytest.skip("TGS data not available")
    import torch

    from saltvol.model import ModelMeta, build_model, read_model_info, save_model

    config = read_model_info(tiny_model).meta.config
    torch.manual_seed(1)  # a second network: same shape, other weights
    other = save_model(build_model(config), ModelMeta(config=config, tta=False), tmp_path / "other.safetensors")
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(tiny_model.read_bytes())
    out = tmp_path / "ens.safetensors"
    twice = run_cli("ensemble", tiny_model, copy, "--data", TGS, "--limit", 16, "-o", out)
    assert twice.returncode == 2 and "same network" in _one_error_line(twice.stderr)
    assert not out.exists()
    result = run_cli("ensemble", tiny_model, other, "--data", TGS, "--limit", 16, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "validation fold, tuned: overall" in result.stdout and f"wrote {out}" in result.stdout
    assert len(read_model_info(out).meta.members) == 2
    assert out.stat().st_size < 0.6 * tiny_model.stat().st_size * 2  # int8: about half of two fp16 files
    scored = run_cli("evaluate", "--data", TGS, "--model", out, "--limit", 16, "--json", "--device", "cpu")
    assert scored.returncode == 0, scored.stderr
    # the members were saved without flip TTA: the ensemble is tuned, and evaluated, the way it predicts
    assert json.loads(scored.stdout)["tuned"]["overall"] == pytest.approx(read_model_info(out).meta.val_score, abs=1e-4)

    again = run_cli("ensemble", tiny_model, "--data", TGS, "--limit", 16, "-o", tmp_path / "one.safetensors")
    assert again.returncode == 2 and "at least two models" in _one_error_line(again.stderr)
    assert not (tmp_path / "one.safetensors").exists()


@pytest.mark.slow
def test_train_and_resume(run_cli, tmp_path):
    if not (TGS / "train" / "images").is_dir():
        pytest.skip("TGS data not available")
    run = tmp_path / "run"
    common = ["--data", TGS, "-o", run, "--limit", 24, "--batch-size", 8, "--threads", 1]
    first = run_cli("train", *common, "--attention", "none", "--decoder-channels", "64,32,16,16,8", "--epochs", 1)
    assert first.returncode == 0, first.stderr
    assert (run / "model.safetensors").is_file()
    assert json.loads((run / "config.json").read_text())["model"]["decoder_attention"] is None
    assert json.loads((run / "config.json").read_text())["model"]["decoder_channels"] == [64, 32, 16, 16, 8]
    assert first.stdout.splitlines()[0].startswith("epoch 1/1 ")
    assert first.stdout.strip().splitlines()[-1] == f"model: {run / 'model.safetensors'}"
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    again = run_cli("train", *common, "--epochs", 1)
    assert again.returncode == 2 and "--resume" in _one_error_line(again.stderr)
    resumed = run_cli("train", "--data", TGS, "-o", run, "--resume", "--epochs", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0].startswith("epoch 2/2 ")
    assert len((run / "log.jsonl").read_text().splitlines()) == 2
    warm = run_cli("train", *common[:2], "-o", tmp_path / "warm", *common[4:], "--init", run / "best.pt", "--lovasz-from", 0, "--epochs", 1,
                   "--symmetric-lovasz", "--lovasz-elu", "--input-scale", 1.5, "--zoom-range", "0.8,1.25", "--affine-share", 0.5)
    assert warm.returncode == 0, warm.stderr
    assert json.loads((tmp_path / "warm" / "log.jsonl").read_text())["loss_name"] == "lovasz"
    warm_config = json.loads((tmp_path / "warm" / "config.json").read_text())
    assert warm_config["symmetric_lovasz"] is True and warm_config["lovasz_elu"] is True
    assert warm_config["augment"]["zoom"] == [0.8, 1.25] and warm_config["augment"]["p_affine"] == 0.5
    assert warm_config["augment"]["hflip"] == 0.5  # the augmentation not given keeps its default
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["input_size"] == 192  # from --input-scale
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["model"]["decoder_attention"] is None  # from the --init model
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["model"]["decoder_channels"] == [64, 32, 16, 16, 8]
