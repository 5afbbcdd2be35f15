"""Prepare the workers of a Dask cluster for saltvol tasks."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ._allocator import tune_allocator

PLUGIN_NAME = "saltvol-allocator"


class AllocatorPlugin(WorkerPlugin):
    """Tune glibc malloc on each worker as it starts, before its task threads allocate (see :mod:`saltvol._allocator`)."""

    name = PLUGIN_NAME

    def setup(self, worker: Any) -> None:
        tune_allocator()


def prepare_workers(client: Any) -> None:
    """Register :class:`AllocatorPlugin` on ``client``'s cluster: present workers run it now, later ones as they join."""
    client.register_plugin(AllocatorPlugin(), name=PLUGIN_NAME)
