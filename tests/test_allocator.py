"""glibc allocator tuning: applied once per process on Linux/glibc, and switched off by SALTVOL_MALLOC_TUNING=0."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")

CODE = "from saltvol._allocator import tune_allocator; print(tune_allocator(), tune_allocator())"


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SALTVOL_MALLOC_TUNING"}
    if env_value is not None:
        env["SALTVOL_MALLOC_TUNING"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True, timeout=60).stdout.strip()


def _page_faults(code: str, tuning: str) -> int:
    """What ``code`` prints (a page-fault count), run in a fresh interpreter with SALTVOL_MALLOC_TUNING=``tuning``."""
    env = {**os.environ, "SALTVOL_MALLOC_TUNING": tuning}
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60).stdout)


def test_tuning_applies_once_and_can_be_switched_off():
    assert _run(None) == "True True"
    assert _run("0") == "False False"


def test_freed_large_blocks_are_reused_after_tuning():
    # Untuned, glibc munmaps a freed 64 MB block and the next one faults its pages in again;
    # tuned, the freed block is reused.
    code = (
        "import resource, numpy as np; from saltvol._allocator import tune_allocator; tune_allocator(); "
        "a = np.ones(2**24, np.float32); del a; "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; "
        "b = np.ones(2**24, np.float32); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)"
    )

    untuned, tuned = _page_faults(code, "0"), _page_faults(code, "1")
    assert untuned > 100 and tuned < untuned / 10


def test_task_threads_reuse_freed_large_blocks_after_tuning():
    # A thread started after tuning shares the tuned main heap; untuned, a new thread gets its own
    # arena, whose 64 MB heaps cannot hold a 128 MB block, so every such block is mmapped afresh.
    code = (
        "import resource, threading, numpy as np; from saltvol._allocator import tune_allocator; tune_allocator(); "
        "out = []\n"
        "def work():\n"
        "    a = np.ones(2**25, np.float32); del a\n"
        "    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt\n"
        "    for _ in range(5):\n"
        "        b = np.ones(2**25, np.float32); del b\n"
        "    out.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)\n"
        "t = threading.Thread(target=work); t.start(); t.join(); print(out[0])"
    )

    untuned, tuned = _page_faults(code, "0"), _page_faults(code, "1")
    assert untuned > 50 and tuned < untuned / 10  # pages may be 2 MB (transparent huge pages)
