"""Stop ``saltvol segment`` part way (SIGKILL, Ctrl-C), then ``--resume``: the cube equals an uninterrupted run.

The volume is big enough, and the tiles small enough, that each pass has
several blocks (40 x 40 x 96 with --tile 64: 4 inline blocks, 4 crossline
blocks and 1 fuse block on 2 cores).  The runs are real subprocesses; each is
stopped once at least one block's done-marker exists under
``.OUT.partial/.saltvol-progress`` and before the run is complete.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import _env, default_sigint, read_cube, saltvol, segment_args

pytestmark = pytest.mark.timeout(180)

SHAPE = (40, 40, 96)


def markers(partial: Path) -> list[Path]:
    progress = partial / ".saltvol-progress"
    return sorted(p for p in progress.rglob("*") if p.is_file()) if progress.is_dir() else []


def start_and_stop_part_way(args: list[object], partial: Path, out: Path, sig: int, log: Path) -> subprocess.Popen:
    """Start ``saltvol ARGS``; once a block is marked done (and the run is not complete) send ``sig``; wait."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "saltvol_cli", *map(str, args)],
            env=_env(), stdout=fh, stderr=fh, text=True, preexec_fn=default_sigint,
        )
    try:
        deadline = time.monotonic() + 120
        while not markers(partial):
            assert proc.poll() is None, "the run ended before any block was marked done:\n" + log.read_text()
            assert time.monotonic() < deadline, "no block was marked done in time"
            time.sleep(0.02)
        assert not out.exists() and proc.poll() is None, "the run was complete before it could be stopped"
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc


@pytest.fixture(scope="module")
def volume(tmp_path_factory, tiny_model_path) -> tuple[Path, np.ndarray]:
    """The synthetic SEG-Y and the cube of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("resume")
    sgy, out = folder / "volume.sgy", folder / "reference.zarr"
    made = saltvol("synth", "-o", sgy, "--shape", *SHAPE, "--seed", 3)
    assert made.returncode == 0, made.stderr
    ref = saltvol(*segment_args(sgy, out, tiny_model_path))
    assert ref.returncode == 0, ref.stderr
    return sgy, read_cube(out)


def test_sigkill_then_resume_skips_finished_blocks(volume, tiny_model_path, tmp_path):
    sgy, reference = volume
    out, partial = tmp_path / "salt.zarr", tmp_path / ".salt.zarr.partial"
    args = ["-v", *segment_args(sgy, out, tiny_model_path)]

    killed = start_and_stop_part_way(args, partial, out, signal.SIGKILL, tmp_path / "killed.log")
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists() and partial.is_dir()
    finished = len(markers(partial))
    assert finished >= 1

    resumed = saltvol(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    match = re.search(r"resuming .*: (\d+) of (\d+) blocks already written are skipped", resumed.stderr)
    assert match, resumed.stderr
    skipped, total = map(int, match.groups())
    assert skipped == finished and skipped < total
    assert f"wrote {out}" in resumed.stdout
    assert not partial.exists()
    cube = read_cube(out)
    assert not np.isnan(cube).any()
    assert float(np.abs(cube - reference).max()) <= 1e-6


def test_ctrl_c_keeps_the_partial_run_and_resume_finishes_it(volume, tiny_model_path, tmp_path):
    sgy, reference = volume
    out, partial = tmp_path / "salt.zarr", tmp_path / ".salt.zarr.partial"
    args = segment_args(sgy, out, tiny_model_path)

    log = tmp_path / "interrupted.log"
    interrupted = start_and_stop_part_way(args, partial, out, signal.SIGINT, log)
    assert interrupted.returncode == 130, log.read_text()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines == ["saltvol: interrupted; rerun with --resume to continue"], lines
    assert not out.exists() and partial.is_dir() and markers(partial)

    again = saltvol(*args)  # neither --resume nor --overwrite: refused, partial run untouched
    assert again.returncode == 2
    error = again.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("saltvol: error:"), again.stderr
    assert "--resume" in error[0] and "--overwrite" in error[0]
    assert partial.is_dir() and not out.exists()

    resumed = saltvol(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not partial.exists()
    assert float(np.abs(read_cube(out) - reference).max()) <= 1e-6
