"""Worker processes forked from a server that imported torch once, instead of spawned afresh.

A spawned process imports torch again: 1.8-2.3 s of CPU on a 2-core host, for every profiler
and runtime worker and every side-by-side part. multiprocessing's fork server is a clean
process (started by exec: no threads, nothing run) that imports the preloads once and forks
each worker from there: 0.02 s a worker after the first (docs/processes.md).

A forked worker gets the server's environment, path and affinity, not its parent's at that
moment, so the server is started again whenever the parent's have changed since it started
(or, while a worker it forked still runs, that worker is spawned instead).
It is started without the OpenMP affinity variables (``AFFINITY_ENV_VARS``): torch's OpenMP
runtime reads them once, when the server imports torch, and would pin every worker's threads
to the cores they name; each worker then pins itself to its own mapping. torch is preloaded
only where the parent has imported it (a board profiling a bundle without torch has not).

>>> ctx = worker_context()
>>> ctx.get_start_method()
'forkserver'
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.forkserver
import os
import sys
import threading
from typing import Any, NamedTuple

AFFINITY_ENV_VARS = ("GOMP_CPU_AFFINITY", "OMP_PROC_BIND", "KMP_AFFINITY")
# set by pytest to the test running: it names the test, no worker reads it
IGNORED_ENV_VARS = ("PYTEST_CURRENT_TEST",)
# what workers import anyway: the mapped worker's entry point and the side-by-side child's
PRELOAD = ("dyndnn.board.mapping", "dyndnn.stages.side_by_side")


class _Conditions(NamedTuple):
    """What a forked worker inherits from the server, as the parent has it now."""

    env: tuple[tuple[str, str], ...]
    path: tuple[str, ...]
    affinity: tuple[int, ...]
    torch_imported: bool


def _conditions() -> _Conditions:
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV_VARS}
    return _Conditions(tuple(sorted(env.items())), tuple(sys.path),
                       tuple(sorted(os.sched_getaffinity(0))), "torch" in sys.modules)


_lock = threading.Lock()
_started_for: _Conditions | None = None  # the conditions the running server was started in


def worker_context() -> Any:
    """The multiprocessing context workers start from, its server started for this process.

    Call it in the parent before each worker starts (cheap when nothing changed). Where the
    parent's conditions changed while a worker forked by the server still runs, the server
    cannot restart (its workers' exit codes reach us through it): that worker is spawned.
    """
    global _started_for
    ctx = mp.get_context("forkserver")
    with _lock:
        now = _conditions()
        if now == _started_for:
            return ctx
        if _started_for is not None and _forked_worker_alive():
            return mp.get_context("spawn")
        server = multiprocessing.forkserver._forkserver
        server._stop()  # a server started under other conditions (none: nothing to stop)
        ctx.set_forkserver_preload([*(["torch"] if now.torch_imported else []), *PRELOAD])
        saved = {k: os.environ.pop(k) for k in AFFINITY_ENV_VARS if k in os.environ}
        try:
            server.ensure_running()
        finally:
            os.environ.update(saved)
        _started_for = now
    return ctx


def _forked_worker_alive() -> bool:
    """Whether a process this one started from the fork server is still running."""
    from multiprocessing.popen_forkserver import Popen

    return any(isinstance(getattr(child, "_popen", None), Popen)
               for child in mp.active_children())
