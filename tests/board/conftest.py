from __future__ import annotations

import os
import stat

import pytest


@pytest.fixture
def as_non_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer ``os.access`` from the owner's mode bits, as a non-root owner would get.

    Root reads and writes a chmod-000 file regardless, so permission tests would prove
    nothing there; the library asks ``os.access`` first, and this makes it honour chmod.
    """
    if os.geteuid() != 0:
        return
    real_stat = os.stat

    def access(path: os.PathLike | str, mode: int, *args: object, **kwargs: object) -> bool:
        try:
            st = real_stat(path)
        except OSError:
            return False
        need = [(os.R_OK, stat.S_IRUSR), (os.W_OK, stat.S_IWUSR), (os.X_OK, stat.S_IXUSR)]
        return all(st.st_mode & bit for flag, bit in need if mode & flag)

    monkeypatch.setattr(os, "access", access)
