"""The board errors and warnings: what is missing, misconfigured or not ours to change.

Every one is a ``DyndnnError`` (``ReadOnlyWarning`` apart, a warning) and names the file or
interface it is about.

>>> str(BoardPermissionError("/sys/x", "write", "run as root"))
'cannot write /sys/x: permission denied; run as root'
"""

from __future__ import annotations

import os
from pathlib import Path

from dyndnn.errors import DyndnnError


class BoardError(DyndnnError):
    """A board interface is missing, misconfigured or misbehaving; the message says which."""


class SensorError(BoardError):
    """A sensor file is missing, vanished mid-run or returned garbage.

    ``path`` names the file so the user can look at it.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class BoardPermissionError(BoardError, PermissionError):
    """A sysfs file cannot be read or written by this user; ``hint`` says how to get access."""

    def __init__(self, path: str | os.PathLike, action: str = "read", hint: str = "") -> None:
        self.path = Path(path)
        self.action = action
        self.hint = hint or "run as root, or grant access with a udev rule"
        super().__init__(f"cannot {action} {self.path}: permission denied; {self.hint}")


class ReadOnlyWarning(UserWarning):
    """Clocks are not writable: a DVFS controller runs read-only and applies nothing."""
