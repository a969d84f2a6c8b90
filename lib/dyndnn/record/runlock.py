"""One writer per run folder: an exclusive lock that names its holder.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / ".lock"
>>> with hold(path, "run folder x"):
...     with hold(path, "run folder x"):   # re-entrant within a process
...         holder_pid(path) == os.getpid()
True

The lock is ``flock`` on a file in the folder, so the kernel drops it when its holder dies,
however it dies (kill -9 included): a stale lock cannot outlive its process. The holder writes
its PID into the file so a second writer can say who holds it. A process whose ancestor holds
the lock (a notebook kernel that the pipeline started) works under that ancestor's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import psutil

from dyndnn.errors import RunFolderError

_held: dict[Path, int] = {}  # lock path -> depth, for re-entry within this process


def holder_pid(path: str | os.PathLike) -> int | None:
    """The PID written in a lock file (None if none can be read)."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _ancestors() -> set[int]:
    try:
        return {p.pid for p in psutil.Process().parents()}
    except psutil.Error:
        return set()


def _describe(pid: int | None) -> str:
    if pid is None:
        return "another process"
    try:
        command = " ".join(psutil.Process(pid).cmdline())[:120]
    except psutil.Error:
        return f"process {pid}"
    return f"process {pid} ({command})" if command else f"process {pid}"


@contextlib.contextmanager
def hold(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` (a file) for ``what`` (named in the error)."""
    key = Path(path).resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = holder_pid(key)
        if pid is not None and pid in _ancestors():
            yield  # the pipeline that started this kernel holds it for us
            return
        raise RunFolderError(
            f"{what} is in use by {_describe(pid)}: two writers would mix their results. "
            "Wait for it to finish (or stop it), or choose another --out.") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = 1
        yield
    finally:
        _held.pop(key, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
