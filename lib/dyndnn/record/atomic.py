"""Atomic file writes: a reader sees the old file or the new one, never half of either.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
>>> with atomic_write(path) as f:
...     _ = f.write("a,b")
>>> path.read_text()
'a,b'

Each write goes to its own temporary file in the target's folder (a unique name, so two
writers never share one) and is renamed over the target; a write that fails or is interrupted
removes its temporary file and leaves the target as it was. The file gets the mode any file
the user makes gets (0666 less the umask), not the temporary file's private 0600: a run folder
shared with a group stays readable by it. A write that fails for want of space raises
``DiskFullError`` naming the file, however the writer reported it.

>>> oct(path.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
True
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dyndnn.errors import DiskFullError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# torch's zip writer reports a failed write without its errno ("unexpected pos"): taken as a
# full disk when this little is left where it wrote
LOW_SPACE_BYTES = 64 * 2**20
UNTOLD_WRITE_FAILURES = ("unexpected pos", "file write failed")


def current_umask() -> int:
    """The umask of the process (read, not changed: ``os.umask`` can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)  # no /proc: set and restore at once
    os.umask(mask)
    return mask


def out_of_space(exc: BaseException, folder: Path) -> bool:
    """True if ``exc`` (or what caused it) is a write refused for want of space in ``folder``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and cause.errno in NO_SPACE:
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in UNTOLD_WRITE_FAILURES):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
    return False


def disk_full(path: Path, exc: BaseException) -> DiskFullError:
    """The error said for ``path``: what was being written, the space left, what to do."""
    try:
        free = f"{shutil.disk_usage(path.parent).free:,} bytes free there"
    except OSError:
        free = "its file system did not say how much is free"
    return DiskFullError(f"no space left on device while writing {path} ({free}; "
                         f"{type(exc).__name__}: {str(exc)[:200]}). Nothing was written over "
                         "it and no temporary file is left: free some space, or use a run "
                         "folder on another disk, and run the same command again.")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a unique temporary file beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with open(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if not isinstance(exc, DiskFullError) and out_of_space(exc, path.parent):
            raise disk_full(path, exc) from exc
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    For what torch serialises (``torch.save``, ``torch.jit.save`` into a ``BytesIO``): torch's
    own file writer aborts the process when the disk fills (a C++ exception in a destructor),
    so it never writes to a file itself.
    """
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_csv(frame: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to ``path`` as CSV (no index) atomically."""
    with atomic_write(path, newline="") as f:
        frame.to_csv(f, index=False)
    return Path(path)
