"""Atomic file writes: a reader sees the old file or the new one, never half of either.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
>>> with atomic_write(path) as f:
...     _ = f.write("a,b")
>>> path.read_text()
'a,b'

Each write goes to its own temporary file in the target's folder (a unique name, so two
writers never share one) and is renamed over the target; a write that fails or is interrupted
removes its temporary file and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a unique temporary file beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def write_csv(frame: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to ``path`` as CSV (no index) atomically."""
    with atomic_write(path, newline="") as f:
        frame.to_csv(f, index=False)
    return Path(path)
