"""Running the library's docstring examples (``--doctest-modules``, see pyproject.toml).

Every module of ``lib/dyndnn`` is imported at collection: none has import-time side effects
(``__main__.py``, the command line, is left out by pytest itself), so nothing is ignored here.
The examples build what they need (tiny models, tables, run folders and sysfs trees in
temporary folders); this file only keeps them independent of one another and of the host.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # figures are drawn, never shown

collect_ignore: list[str] = []


@pytest.fixture(autouse=True)
def _doctest_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Seed torch, one torch thread, ``tempfile`` under pytest's folder; close figures after.

    The examples make their folders with ``tempfile.mkdtemp()``, as a reader would; here those
    land in the example's ``tmp_path``, which pytest clears, instead of piling up in /tmp.
    Their models are tiny: a second torch thread only waits for the first, and on a busy
    machine its spin-waiting made an example fifty times slower, so they run on one.
    """
    import matplotlib.pyplot as plt
    import torch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        plt.close("all")
