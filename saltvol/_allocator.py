"""Keep glibc from handing memory back to the OS between batches of tiles.

Each batch of tiles allocates and frees the network's activations (tens of MB
per layer).  By default glibc serves blocks that large with ``mmap`` and
returns them with ``munmap`` on free, so every batch page-faults its
activations in again: on the 2-core development machine that was 8 s of
system time in a 19 s ``saltvol segment`` run.  Turning ``mmap`` off for
``malloc`` and raising the trim threshold makes freed blocks reusable: the
same run took 16 s with 2 s of system time, for about 0.5 GB more peak RSS
(docs/benchmarks.md).  Dask's nanny goes the other way for its workers
(``MALLOC_TRIM_THRESHOLD_=65536``), which made the model 1.6x slower there.

Tasks run in worker threads, and glibc gives each new thread its own arena.
Those arenas live in 64 MB heaps, so a bigger block (one batch's activations)
is always served by ``mmap`` there, whatever the settings above: a Dask task
ran 1.4-2x slower than the same work on the main thread, and on a 128 x 128
x 256 volume the first task of each of two worker processes took 48 s
instead of 12 s.  So the tuning also limits the process to one arena:
threads that first allocate afterwards share an existing arena (the tuned
main heap if no other thread has one yet), which is why ``segment`` tunes
before Dask starts its threads.  Worker processes already have threads when
:func:`saltvol._workers.prepare_workers` reaches them with a worker plugin;
for them ``MALLOC_ARENA_MAX=1`` at start-up is the reliable setting
(docs/cluster.md).

This is done with ``mallopt`` at run time (no environment variables, no
re-exec), once per process, before the first model is loaded.  Set
``SALTVOL_MALLOC_TUNING=0`` to leave the allocator alone.  Other C libraries
(macOS, musl, Windows) are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


@functools.cache
def tune_allocator() -> bool:
    """Ask glibc to keep freed memory for reuse (once per process); True if the settings were applied."""
    if os.environ.get("SALTVOL_MALLOC_TUNING", "1") == "0" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(
            libc.mallopt(option, value) == 1
            for option, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 256 * 2**20), (_M_ARENA_MAX, 1))
        )
    except (OSError, AttributeError):
        return False
    log.debug("glibc malloc tuned for reuse: %s", ok)
    return ok
