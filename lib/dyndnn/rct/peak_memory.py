"""The process's measured peak memory over a block of work, beside what the code accounts.

Linux keeps the peak resident set size (``VmHWM`` in ``/proc/self/status``) and lets a
process reset it (writing ``5`` to ``/proc/self/clear_refs``), so the peak of one block can be
read in-process: ``peak_growth_bytes`` is that peak minus the resident size when the block
began. PyTorch's CPU tensors come from ``malloc``, which ``tracemalloc`` does not see; the
resident size does. It includes everything the block touched (activations, allocator slack,
libraries loaded lazily), so it is an upper bound on the training state, never equal to it.
Where ``/proc`` is absent or the reset is refused, the numbers are NaN and ``reason`` says why.

>>> import mmap
>>> with PeakMemory() as peak:           # fresh pages: malloc could reuse resident ones
...     block = mmap.mmap(-1, 32_000_000)
...     _ = block.write(b"x" * 32_000_000)  # 32 MB, touched
...     block.close()
>>> peak.available, peak.peak_growth_bytes > 30e6
(True, True)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import TracebackType

PROC_SELF = Path("/proc/self")


def _status_bytes(field: str, proc: Path = PROC_SELF) -> int:
    text = (proc / "status").read_text()
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.M)
    if match is None:
        raise OSError(f"{proc / 'status'} has no {field} line")
    return int(match.group(1)) * 1024


class PeakMemory:
    """Context manager: the peak resident memory growth of the process over the block."""

    def __init__(self, proc: Path = PROC_SELF) -> None:
        self.proc = proc
        self.start_rss_bytes = math.nan
        self.peak_rss_bytes = math.nan
        self.reason = ""

    @property
    def available(self) -> bool:
        """Whether the peak was measured (else ``reason`` says why not)."""
        return not self.reason and math.isfinite(self.peak_rss_bytes)

    @property
    def peak_growth_bytes(self) -> float:
        """Peak resident bytes during the block minus the resident bytes at its start."""
        return self.peak_rss_bytes - self.start_rss_bytes

    def __enter__(self) -> PeakMemory:
        try:
            (self.proc / "clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.start_rss_bytes = _status_bytes("VmRSS", self.proc)
        except OSError as exc:
            self.reason = f"peak RSS not measurable here ({exc})"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.reason:
            try:
                # the peak over the block is at least its resident size at the start; the
                # kernel's high-water mark can miss it (it is raised lazily, when pages are
                # unmapped, not when malloc gives them back with madvise): a make test run read
                # a mark below the start, a negative growth
                self.peak_rss_bytes = max(_status_bytes("VmHWM", self.proc),
                                          self.start_rss_bytes)
            except OSError as error:
                self.reason = f"peak RSS not measurable here ({error})"
