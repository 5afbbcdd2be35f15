"""``saltvol segment`` on real Dask clusters: a scheduler and workers started as processes on 127.0.0.1.

Every test compares the cube a cluster writes with the cube of a plain local
run (local Dask threads) of the same command: the result must not depend on
where it ran, on the number of workers, or on a worker dying part way.

The cluster is started with distributed's own command-line programs
(``python -m distributed.cli.dask_scheduler`` / ``dask_worker``, what the
``dask scheduler`` and ``dask worker`` commands run), each in its own process
group so that a worker can be killed with its nanny, and everything is shut
down in the fixture's teardown (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.helpers import _env, default_sigint, read_cube, saltvol, segment_args

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

HOST = "127.0.0.1"
SMALL = (12, 14, 64)  # 2 tiles per section at --tile 64
BIGGER = (40, 40, 96)  # 4 + 4 section blocks and a fuse block on 2 cores


# --------------------------------------------------------------------------- helpers
def max_diff(a: Path | np.ndarray, b: Path | np.ndarray) -> float:
    a = read_cube(a) if isinstance(a, Path) else a
    b = read_cube(b) if isinstance(b, Path) else b
    assert a.shape == b.shape
    assert not np.isnan(a).any() and not np.isnan(b).any()
    return float(np.abs(a - b).max())


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (it leads its own session), SIGKILL it after ``grace`` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group may outlive its leader (a nanny's worker process)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class Cluster:
    """A dask scheduler and single-threaded workers, each a process group of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.address = ""

    def _spawn(self, name: str, module: str, *args: str) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
            )

    def start(self, n_workers: int, timeout: float = 90) -> None:
        self.scheduler = self._spawn(
            "scheduler", "distributed.cli.dask_scheduler",
            "--host", HOST, "--port", "0", "--scheduler-file", str(self.scheduler_file), "--no-dashboard",
        )
        deadline = time.monotonic() + timeout
        while not self._address():
            assert self.scheduler.poll() is None, self.log("scheduler")
            assert time.monotonic() < deadline, "the scheduler did not write its file in time"
            time.sleep(0.1)
        self.address = self._address()
        for _ in range(n_workers):
            self.add_worker()
        self.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))

    def _address(self) -> str:
        try:
            return json.loads(self.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return ""

    def add_worker(self) -> subprocess.Popen:
        worker = self._spawn(
            f"worker{len(self.workers)}", "distributed.cli.dask_worker",
            "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--memory-limit", "2GB",
            "--death-timeout", "60", "--scheduler-file", str(self.scheduler_file),
        )
        self.workers.append(worker)
        return worker

    def alive_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def wait_for_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(n, timeout=timeout)

    def ensure_workers(self, n: int) -> None:
        """Replace killed workers so later tests get ``n`` again."""
        while len(self.alive_workers()) < n:
            self.add_worker()
        self.wait_for_workers(n)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        for worker in self.workers:
            stop(worker)
        if self.scheduler is not None:
            stop(self.scheduler)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start(n_workers=2)
        yield c
    finally:
        c.close()


def _synth_and_local_run(folder: Path, shape: tuple[int, int, int], seed: int, model: Path) -> tuple[Path, Path]:
    sgy, out = folder / "volume.sgy", folder / "local.zarr"
    made = saltvol("synth", "-o", sgy, "--shape", *shape, "--seed", seed)
    assert made.returncode == 0, made.stderr
    local = saltvol(*segment_args(sgy, out, model))
    assert local.returncode == 0, local.stderr
    return sgy, out


@pytest.fixture(scope="module")
def small(tmp_path_factory, tiny_model_path) -> tuple[Path, Path]:
    """A small synthetic SEG-Y and its cube from a plain local run (local Dask threads)."""
    return _synth_and_local_run(tmp_path_factory.mktemp("small"), SMALL, 5, tiny_model_path)


@pytest.fixture(scope="module")
def bigger(tmp_path_factory, tiny_model_path) -> tuple[Path, Path]:
    """A volume of several blocks per pass, and its local cube."""
    return _synth_and_local_run(tmp_path_factory.mktemp("bigger"), BIGGER, 7, tiny_model_path)


def wait_for_markers(work: Path, proc: subprocess.Popen, *, at_least: int = 1, timeout: float = 120) -> list[Path]:
    """Poll the done-markers (``.saltvol-progress/STAGE/I-J-K``) of a running segment until ``at_least`` exist.

    Fails if the run ends first.
    """
    progress = work / ".saltvol-progress"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        markers = [p for p in progress.rglob("*") if p.is_file()] if progress.is_dir() else []
        if len(markers) >= at_least:
            return markers
        assert proc.poll() is None, "the run ended before any block was marked done"
        time.sleep(0.02)
    raise AssertionError(f"no done-marker under {progress} within {timeout} s")


def popen_segment(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "saltvol_cli", *map(str, args)], env=_env(), preexec_fn=default_sigint, **kwargs)


# --------------------------------------------------------------------------- local clusters (--workers N)
# These come first, so the module's scheduler and workers do not use memory while they run.
def test_worker_count_does_not_change_the_cube(small, tiny_model_path, tmp_path):
    """--workers 1 and --workers 2 (LocalCluster processes, other block sizes) give the local threads' cube."""
    sgy, local = small
    for n in (1, 2):
        out = tmp_path / f"workers{n}.zarr"
        result = saltvol("-v", *segment_args(sgy, out, tiny_model_path), "--workers", n)
        assert result.returncode == 0, result.stderr
        assert f"starting a local Dask cluster of {n} worker processes" in result.stderr
        assert "Scheduler at" not in result.stderr, "distributed's own info lines are only for -vvv"
        assert max_diff(out, local) <= 1e-6


def test_resume_with_another_worker_count(bigger, tiny_model_path, tmp_path):
    """A run killed on a 1-worker cluster (2 blocks per pass) resumes on local threads (4 blocks per pass).

    The resumed run must keep the interrupted run's blocks: its done-markers name blocks by index.
    """
    sgy, local = bigger
    out = tmp_path / "salt.zarr"
    run = popen_segment(
        *segment_args(sgy, out, tiny_model_path), "--workers", 1,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_markers(tmp_path / ".salt.zarr.partial", run)
        os.killpg(run.pid, signal.SIGKILL)  # the command and its local cluster's processes
        run.wait(10)
    finally:
        stop(run)
    assert not out.exists(), "the run finished before it could be killed"
    resumed = saltvol("-v", *segment_args(sgy, out, tiny_model_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "already written are skipped" in resumed.stderr
    assert max_diff(out, local) <= 1e-6


def test_ctrl_c_stops_the_run_and_keeps_its_work_for_resume(bigger, tiny_model_path, tmp_path):
    """SIGINT midway: exit 130 with one line, no output, the .partial kept; --resume then gives the whole cube."""
    sgy, local = bigger
    out = tmp_path / "salt.zarr"
    run = popen_segment(*segment_args(sgy, out, tiny_model_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_markers(tmp_path / ".salt.zarr.partial", run)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        stop(run)
    assert run.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and (tmp_path / ".salt.zarr.partial").is_dir()
    resumed = saltvol("-v", *segment_args(sgy, out, tiny_model_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "already written are skipped" in resumed.stderr
    assert max_diff(out, local) <= 1e-6


# --------------------------------------------------------------------------- a cluster of separate processes
def test_scheduler_run_equals_local_run(cluster, small, tiny_model_path, tmp_path):
    sgy, local = small
    out = tmp_path / "cluster.zarr"
    # --device auto: each worker picks its own device (the client's machine may have no GPU while the workers do).
    result = saltvol("-v", *segment_args(sgy, out, tiny_model_path), "--device", "auto", "--scheduler", cluster.address)
    assert result.returncode == 0, result.stderr + cluster.log("scheduler")
    assert f"connecting to the Dask scheduler at {cluster.address}" in result.stderr
    assert max_diff(out, local) <= 1e-6
    attrs = zarr.open_group(out, mode="r").attrs
    assert attrs["device"] == "auto (chosen by each worker)" and attrs["batch_size"] == "auto (chosen by each worker)"
    assert not (tmp_path / ".cluster.zarr.partial").exists()
    from distributed import Client

    from saltvol._workers import PLUGIN_NAME

    with Client(cluster.address, timeout=30) as client:  # every worker got the allocator plugin
        assert set(client.run(lambda dask_worker: PLUGIN_NAME in dask_worker.plugins).values()) == {True}


def test_two_runs_at_once_on_one_cluster_do_not_mix(cluster, small, tiny_model_path, tmp_path):
    """Two clients running the same job into two outputs at once: each output gets its own writes."""
    sgy, local = small
    outs = [tmp_path / "a.zarr", tmp_path / "b.zarr"]
    procs = [
        popen_segment(*segment_args(sgy, out, tiny_model_path), "--scheduler", cluster.address,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for out in outs
    ]
    try:
        results = [p.communicate(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    for out in outs:
        assert max_diff(out, local) <= 1e-6


def test_damaged_input_chunk_on_a_cluster_fails_cleanly(cluster, tiny_model_path, tmp_path):
    """A Zarr input chunk that only a block reads is damaged: one-line error, exit 2, no output, no .partial.

    The workers are still writing other blocks when the first one fails; the run waits for them
    before removing its work store, so no late write brings a piece of it back.
    """
    from saltvol.synth import make_volume

    store = tmp_path / "survey.zarr"
    make_volume((64, 24, 32), seed=3).to_zarr(store, zarr_format=3, consolidated=False, encoding={"amplitude": {"chunks": (4, 24, 32)}})
    chunk = store / "amplitude" / "c" / "4" / "0" / "0"  # inlines 16-19: outside the statistics' sample windows
    chunk.write_bytes(np.random.default_rng(0).bytes(chunk.stat().st_size))
    out = tmp_path / "salt.zarr"
    result = saltvol(*segment_args(store, out, tiny_model_path), "--scheduler", cluster.address)
    assert result.returncode == 2, result.stderr
    assert "damaged" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    time.sleep(1)  # a write landing after the command returned would show up here
    assert not out.exists() and not (tmp_path / ".salt.zarr.partial").exists()


def test_run_survives_a_killed_worker(cluster, bigger, tiny_model_path, tmp_path):
    sgy, local = bigger
    out = tmp_path / "cluster.zarr"
    cluster.ensure_workers(2)
    with open(tmp_path / "run.log", "w+") as log:
        run = popen_segment("-v", *segment_args(sgy, out, tiny_model_path), "--scheduler", cluster.address,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            # Kill once the cluster has finished a block, so that the job is certainly under way.
            wait_for_markers(tmp_path / ".cluster.zarr.partial", run)
            victim = cluster.alive_workers()[0]
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its nanny, without warning
            victim.wait(10)
            assert run.poll() is None, "the run had already finished when the worker was killed"
            code = run.wait(150)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        log.seek(0)
        text = log.read()
    assert code == 0, text + cluster.log("scheduler")
    assert len(cluster.alive_workers()) == 1
    assert "Remove worker" in cluster.log("scheduler")  # the scheduler saw it go and moved its work
    assert max_diff(out, local) <= 1e-6
