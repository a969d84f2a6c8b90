"""sysfs I/O and the kernel's text formats (CPU lists, frequency windows).

Every backend reads sysfs through the helpers here, so a missing file, a file that vanishes
mid-run and a permission problem all surface as the same few errors, each naming the file.

>>> sysfs_path("/tmp/fake", "/sys/devices/system/cpu/online")
PosixPath('/tmp/fake/sys/devices/system/cpu/online')
>>> format_cpu_list(parse_cpu_list("0-2,5"))
'0-2,5'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dyndnn.board.errors import BoardError, BoardPermissionError, SensorError


def sysfs_path(root: str | os.PathLike, path: str) -> Path:
    """Return ``path`` (absolute, as on a real system) under the prefix ``root``.

    >>> sysfs_path("/tmp/fake", "/sys/class/powercap")
    PosixPath('/tmp/fake/sys/class/powercap')
    """
    return Path(root, path.lstrip("/"))


def can_read(path: str | os.PathLike) -> bool:
    """Whether this process may read ``path`` (``os.access``; root passes regardless of mode)."""
    return os.access(path, os.R_OK)


def can_write(path: str | os.PathLike) -> bool:
    """Whether this process may write ``path`` (root passes regardless of mode).

    >>> can_write("/nonexistent/scaling_setspeed")
    False
    """
    return os.access(path, os.W_OK)


def read_str(path: str | os.PathLike) -> str:
    """Read a sysfs file as stripped text; a missing or unreadable file raises a board error."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError as e:
        raise SensorError(f"sensor file {path} does not exist (or vanished mid-run)", path) from e
    except PermissionError as e:
        raise BoardPermissionError(path, "read") from e
    except OSError as e:  # sysfs answers EIO/ENODATA when a device goes away
        raise SensorError(f"cannot read {path}: {e.strerror or e}", path) from e


def _read_number(path: str | os.PathLike, kind: type, noun: str):
    text = read_str(path)
    try:
        return kind(text)
    except ValueError as e:
        raise SensorError(f"{path} holds {text!r}, not {noun}", path) from e


def read_int(path: str | os.PathLike) -> int:
    """Read a sysfs file holding one integer."""
    return _read_number(path, int, "an integer")


def read_float(path: str | os.PathLike) -> float:
    """Read a sysfs file holding one number."""
    return _read_number(path, float, "a number")


def write_str(path: str | os.PathLike, value: object) -> None:
    """Write ``value`` to a sysfs file (no truncation games: sysfs takes one write)."""
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except PermissionError as e:
        raise BoardPermissionError(path, "write") from e
    except OSError as e:  # e.g. EINVAL for a frequency outside [min, max]
        raise BoardError(f"writing {value!r} to {path} failed: {e.strerror or e}") from e


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a kernel CPU list such as ``"0-3,8"`` (``related_cpus`` uses spaces).

    >>> parse_cpu_list("0-2,5")
    (0, 1, 2, 5)
    >>> parse_cpu_list("4 5 6 7")
    (4, 5, 6, 7)
    """
    cpus: set[int] = set()
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """Format CPUs as the kernel does, with ranges.

    >>> format_cpu_list([0, 1, 2, 5])
    '0-2,5'
    """
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def bounds_write_order(
    cur_min: int, cur_max: int, new_min: int, new_max: int
) -> list[tuple[str, int]]:
    """Order the writes of a [min, max] frequency window so the kernel never sees min > max.

    Raising the window writes max first, lowering it writes min first.

    >>> bounds_write_order(800, 1400, 1600, 1600)
    [('max', 1600), ('min', 1600)]
    >>> bounds_write_order(800, 1400, 600, 600)
    [('min', 600), ('max', 600)]
    """
    if new_min > new_max:
        raise BoardError(f"frequency window min {new_min} > max {new_max}")
    if new_min > cur_max:
        return [("max", new_max), ("min", new_min)]
    return [("min", new_min), ("max", new_max)]
