"""Prepare the workers of a Dask cluster for saltvol tasks."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

from ._allocator import tune_allocator

if TYPE_CHECKING:
    from .inference import ModelRef

PLUGIN_NAME = "saltvol-allocator"


class AllocatorPlugin(WorkerPlugin):
    """Tune glibc malloc on each worker as it starts, before its task threads allocate (see :mod:`saltvol._allocator`)."""

    name = PLUGIN_NAME

    def setup(self, worker: Any) -> None:
        tune_allocator()


def worker_infos(client: Any) -> dict[str, dict[str, Any]]:
    """Every worker of ``client``'s cluster by address (some distributed versions list only 5 unless asked for all)."""
    if "n_workers" in client.scheduler_info.__code__.co_varnames:
        info = client.scheduler_info(n_workers=-1)
    else:
        info = client.scheduler_info()
    return dict(info.get("workers", {}))


def prepare_workers(client: Any) -> None:
    """Register :class:`AllocatorPlugin` on ``client``'s cluster: present workers run it now, later ones as they join."""
    client.register_plugin(AllocatorPlugin(), name=PLUGIN_NAME)


def _load_on_worker(ref: ModelRef) -> float:
    started = time.perf_counter()
    ref.get()  # imports torch and fills this process's model cache
    return time.perf_counter() - started


def warm_workers(client: Any, ref: ModelRef) -> list[Any]:
    """Start loading the model on every worker now, without waiting.

    A worker's first block otherwise also pays for importing torch and
    loading the model (measured: 31 s against 14-15 s for later blocks on
    two single-threaded workers); started here, that work overlaps the
    client's own start (reading statistics).  Returns the futures: gather
    them before writing anything, so a model the workers cannot load fails
    the run cleanly (the client itself only read the model's metadata).
    """
    run = uuid.uuid4().hex[:8]
    return [
        client.submit(_load_on_worker, ref, workers=[address], allow_other_workers=False, pure=False, key=f"saltvol-warm-{run}-{i}")
        for i, address in enumerate(worker_infos(client))
    ]
