"""Hardening: bad and odd inputs through ``saltvol segment``, end to end.

The corpus (``tests/hardening_corpus.py``) is built once per session from the
shared real SEG-Y files: damaged and non-SEG-Y files, folders, byte locations
that give no grid, duplicate traces, outputs that must not be touched, and
hostile or broken model files (pickles that would run ``touch MARKER``).
Every case lives in a folder of its own, hashed before and after its run.

Bad cases must exit 2 with at most three stderr lines, the first
``saltvol: error: ...``, no traceback, and leave their folder byte-identical
(no output, no ``.OUT.partial``, inputs and earlier outputs untouched).
Odd-but-valid cases must exit 0 with a finite probability cube in [0, 1].

How the cases run. Importing torch and smp costs 5-15 s per process on a busy
2-core machine, more than all the cases' own work, so the corpus runs in one
helper process that imports everything once and forks a fresh child per case;
the child calls the same entry point as ``python -m saltvol_cli`` with its
own stdout/stderr and working directory. A few cases
(:data:`REAL_SUBPROCESS_CASES`, the allocation tests) also run as plain
``python -m saltvol_cli segment ...`` subprocesses, and
``SALTVOL_HARDENING_SUBPROCESS=1`` runs every case that way (slower).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from . import hardening_corpus as hc

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hc.SMALL.is_file(), reason="shared real SEG-Y files not available"),
]

TILE = 64
#: Cases also run as plain `python -m saltvol_cli` subprocesses (the others run forked from a warm parent).
REAL_SUBPROCESS_CASES = ["cut_mid_trace", "model_pickle_pt", "model_pickle_as_safetensors", "nan_inf_samples"]
#: Address-space limit of the allocation tests: far below what a damaged header could ask for.
ADDRESS_SPACE = 4 << 30


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float
    before: dict[str, str]
    after: dict[str, str]


def _cli(args: list[str], cwd: Path, *, limit_memory: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m saltvol_cli ARGS``: the real command in a process of its own."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = dict(os.environ, COLUMNS="100", PYTHONWARNINGS="default")
    return subprocess.run(
        [sys.executable, "-m", "saltvol_cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False, preexec_fn=limit if limit_memory else None,
    )


@pytest.fixture(scope="session")
def fast_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random U-Net of tests/conftest.py, without test-time flips (half the inference)."""
    import torch

    from saltvol.model import ModelConfig, ModelMeta, build_model, save_model

    torch.manual_seed(0)
    config = ModelConfig(encoder="resnet18", decoder_channels=(32, 16, 16, 16, 16))
    path = tmp_path_factory.mktemp("hardening-model") / "tiny.safetensors"
    return save_model(build_model(config), ModelMeta(config=config, name="tiny-test", tta=False), path)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, fast_model: Path) -> dict[str, hc.Case]:
    return hc.build_corpus(tmp_path_factory.mktemp("hardening"), fast_model, tile=TILE)


@pytest.fixture(scope="session")
def results(corpus: dict[str, hc.Case], fast_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Run every case once; hash each case's folder (and the model) before and after."""
    names = hc.BAD_CASES + hc.MODEL_CASES + list(hc.XFAIL_CASES) + hc.ODD_CASES
    before = {name: hc.snapshot(corpus[name].root) for name in names}
    model_before = hc.snapshot(fast_model.parent)
    logs = tmp_path_factory.mktemp("hardening-logs")
    if os.environ.get("SALTVOL_HARDENING_SUBPROCESS"):
        raw = {}
        for name in names:
            started = time.monotonic()
            proc = _cli(["segment", *corpus[name].args], corpus[name].root)
            raw[name] = {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                         "seconds": time.monotonic() - started}
    else:
        spec = logs / "spec.json"
        spec.write_text(json.dumps({n: {"args": ["segment", *corpus[n].args], "cwd": str(corpus[n].root)} for n in names}))
        out = logs / "results.json"
        env = dict(os.environ, COLUMNS="100")
        proc = subprocess.run([sys.executable, str(Path(hc.__file__)), str(spec), str(out)], env=env,
                              capture_output=True, text=True, timeout=1200, check=False)
        assert proc.returncode == 0 and out.is_file(), f"the case runner failed:\n{proc.stdout}\n{proc.stderr}"
        raw = json.loads(out.read_text())
    assert hc.snapshot(fast_model.parent) == model_before, "a run changed the model file"
    timings = sorted(((r["seconds"], n) for n, r in raw.items()), reverse=True)
    print("slowest hardening cases:", ", ".join(f"{n} {s:.1f}s" for s, n in timings[:5]))
    return {
        name: Result(r["code"], r["stdout"], r["stderr"], r["seconds"], before[name], hc.snapshot(corpus[name].root))
        for name, r in raw.items()
    }


def _assert_clean_failure(case: hc.Case, code: int, stdout: str, stderr: str) -> None:
    """Exit 2, at most 3 stderr lines starting with the error line, no traceback, the expected message."""
    lines = stderr.splitlines()
    assert code == 2, f"exit {code}, stderr:\n{stderr}"
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert 1 <= len(lines) <= 3, f"{len(lines)} stderr lines:\n{stderr}"
    assert lines[0].startswith("saltvol: error: "), stderr
    assert re.search(case.message, lines[0], flags=re.IGNORECASE), f"{case.message!r} not in {lines[0]!r}"


def _assert_nothing_written(case: hc.Case, before: dict[str, str], after: dict[str, str]) -> None:
    """The case's folder is byte-identical; the output and its hidden work store do not exist (unless they did)."""
    created = sorted(set(after) - set(before))
    deleted = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (created or deleted or changed), f"created {created}, deleted {deleted}, changed {changed}"
    existed = case.out.is_relative_to(case.root) and str(case.out.relative_to(case.root)) in before
    if not existed:
        assert not case.out.exists(), f"{case.out} was created"
    partial = case.out.parent / f".{case.out.name}.partial"
    if not (partial.is_relative_to(case.root) and str(partial.relative_to(case.root)) in before):
        assert not partial.exists(), f"{partial} was left behind"
    if case.marker is not None:
        assert not case.marker.exists(), "a hostile pickle ran code"


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #


_BAD_PARAMS = hc.BAD_CASES + hc.MODEL_CASES + [
    pytest.param(name, marks=pytest.mark.xfail(reason=why, strict=False)) for name, why in hc.XFAIL_CASES.items()
]


@pytest.mark.parametrize("name", _BAD_PARAMS)
def test_bad_case_fails_cleanly_and_writes_nothing(name: str, corpus: dict[str, hc.Case], results: dict[str, Result]) -> None:
    case, result = corpus[name], results[name]
    if name == "output_in_proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here: no unwritable location to test with")
    _assert_clean_failure(case, result.code, result.stdout, result.stderr)
    _assert_nothing_written(case, result.before, result.after)


def test_hostile_pickles_would_run_code_and_never_do(corpus: dict[str, hc.Case], results: dict[str, Result], tmp_path: Path) -> None:
    """The pickles are real attacks (plain unpickling runs them), and no saltvol run ran one."""
    hostile = [name for name in hc.MODEL_CASES if corpus[name].marker is not None]
    assert len(hostile) >= 4
    for name in hostile:
        assert results[name].code == 2 and not corpus[name].marker.exists(), name
    # the same construction, loaded the unsafe way, does create its marker
    import torch

    marker = tmp_path / "PROOF"
    evil = tmp_path / "evil.pt"
    torch.save({"model": hc._Evil(marker), "meta": "{}"}, str(evil))
    code = f"import torch; torch.load({str(evil)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert marker.exists(), "the hostile pickle is not hostile: this test would prove nothing"


def test_model_loader_refuses_every_bad_model_file(corpus: dict[str, hc.Case]) -> None:
    """The library itself (not only the CLI) raises CheckpointError for every bad model file."""
    from saltvol.errors import CheckpointError
    from saltvol.model import load_model

    for name in hc.MODEL_CASES:
        path = Path(corpus[name].args[corpus[name].args.index("--model") + 1])
        with pytest.raises(CheckpointError) as info:
            load_model(path, device="cpu")
        assert "\n" not in str(info.value), name
        if corpus[name].marker is not None:
            assert not corpus[name].marker.exists(), name


@pytest.mark.parametrize("name", ["huge_sample_count", "huge_extended_headers", "model_huge_header"])
def test_damaged_sizes_fail_fast_without_allocating(name: str, corpus: dict[str, hc.Case]) -> None:
    """Sizes read from damaged headers are checked before anything is allocated (4 GB address-space cap)."""
    case = corpus[name]
    started = time.monotonic()
    proc = _cli(["segment", *case.args], case.root, limit_memory=True, timeout=120)
    seconds = time.monotonic() - started
    _assert_clean_failure(case, proc.returncode, proc.stdout, proc.stderr)
    assert "MemoryError" not in proc.stderr
    # imports dominate: a few seconds on an idle machine, more on a loaded 2-core one
    assert seconds < (60 if name.startswith("model") else 30), f"took {seconds:.1f} s"


@pytest.mark.parametrize("name", REAL_SUBPROCESS_CASES)
def test_real_subprocess_agrees(name: str, corpus: dict[str, hc.Case], results: dict[str, Result]) -> None:
    """A plain `python -m saltvol_cli segment ...` gives what the forked run gave."""
    case = corpus[name]
    args = list(case.args)
    if name in hc.ODD_CASES:
        args[args.index("-o") + 1] = str(case.root / "again.zarr")
    before = hc.snapshot(case.root)
    proc = _cli(["segment", *args], case.root)
    assert proc.returncode == results[name].code, proc.stderr
    if name in hc.ODD_CASES:
        assert "Traceback" not in proc.stderr
        _assert_cube_ok(case.root / "again.zarr", case)
        if case.warn:
            assert re.search(case.warn, proc.stderr), proc.stderr
    else:
        _assert_clean_failure(case, proc.returncode, proc.stdout, proc.stderr)
        _assert_nothing_written(case, before, hc.snapshot(case.root))


# --------------------------------------------------------------------------- #
# odd but valid inputs
# --------------------------------------------------------------------------- #


def _assert_cube_ok(path: Path, case: hc.Case) -> None:
    import segyio
    import xarray as xr

    assert path.is_dir(), f"{path} was not written"
    assert not (path.parent / f".{path.name}.partial").exists()
    with xr.open_zarr(path, consolidated=None) as ds:
        prob = ds["salt_probability"].values
    assert prob.size > 0
    assert np.isfinite(prob).all(), "non-finite probabilities"
    assert prob.min() >= 0 and prob.max() <= 1, (prob.min(), prob.max())
    source = Path(case.args[0])
    with segyio.open(str(source), ignore_geometry=True) as f:
        assert prob.shape[-1] == len(f.samples)


@pytest.mark.parametrize("name", hc.ODD_CASES)
def test_odd_input_succeeds_with_finite_probabilities(name: str, corpus: dict[str, hc.Case], results: dict[str, Result]) -> None:
    case, result = corpus[name], results[name]
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    _assert_cube_ok(case.out, case)
    if case.warn:
        warnings = [line for line in result.stderr.splitlines() if line.startswith("saltvol: warning:")]
        assert any(re.search(case.warn, line) for line in warnings), result.stderr
    # the input was only read, and nothing but the output appeared
    created = set(result.after) - set(result.before)
    out_rel = str(case.out.relative_to(case.root))
    assert all(p == out_rel or p.startswith(out_rel + os.sep) for p in created), sorted(created)
    assert all(result.after.get(k) == v for k, v in result.before.items())


def test_short_2d_line_is_read_as_a_line(corpus: dict[str, hc.Case], results: dict[str, Result]) -> None:
    """A 2D line too short for the sparsity check is not mistaken for a diagonal 3D grid."""
    import xarray as xr

    assert results["short_2d_line"].code == 0
    with xr.open_zarr(corpus["short_2d_line"].out, consolidated=None) as ds:
        assert ds["salt_probability"].dims == ("cdp", "sample")


def test_nan_warning_is_one_line(results: dict[str, Result]) -> None:
    warnings = [line for line in results["nan_inf_samples"].stderr.splitlines() if "NaN" in line]
    assert len(warnings) == 1, results["nan_inf_samples"].stderr
