"""Linux RAPL through powercap: package, core, uncore and DRAM energy counters (x86).

Zones are ``/sys/class/powercap/intel-rapl:N`` (``name`` = ``package-N``) with subzones
``intel-rapl:N:M`` (``core``, ``uncore``, ``dram``). ``energy_uj`` counts microjoules and wraps
to 0 at ``max_energy_range_uj``; the meter's thread reads often enough to see every wrap.

On a fake tree (``root``): a package and its DRAM; on an x86 host, ``RaplMeter()``:

>>> import pathlib, tempfile
>>> powercap = pathlib.Path(tempfile.mkdtemp(), "sys/class/powercap")
>>> for zone, name in {"intel-rapl:0": "package-0", "intel-rapl:0:0": "dram"}.items():
...     (powercap / zone).mkdir(parents=True)
...     for f, value in {"name": name, "energy_uj": 999_000_000,
...                      "max_energy_range_uj": 1_000_000_000}.items():
...         _ = (powercap / zone / f).write_text(str(value))
>>> meter = RaplMeter(powercap.parents[2], poll_period_s=60)  # no poll in this short window
>>> [z.label for z in meter.zones]
['package-0', 'package-0/dram']
>>> meter.start()
>>> for zone, uj in {"intel-rapl:0": 2_000_000, "intel-rapl:0:0": 999_500_000}.items():
...     _ = (powercap / zone / "energy_uj").write_text(str(uj))   # what the work costs
>>> m = meter.stop()                       # the package counter wrapped: 1 J + 2 J
>>> {zone: round(j, 6) for zone, j in m.rail_energy_j.items()}, round(m.energy_j, 6)
({'package-0': 3.0, 'package-0/dram': 0.5}, 3.5)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dyndnn.board.errors import BoardPermissionError, SensorError
from dyndnn.board.meter import CounterMeter
from dyndnn.board.sysfs import can_read, read_int, read_str, sysfs_path

POWERCAP = "/sys/class/powercap"
RAPL_UPDATE_PERIOD_S = 0.001  # the counters refresh about every 976 us
ASSUMED_MAX_POWER_W = 1000.0  # an upper bound on any zone, to size the poll period
PERMISSION_HINT = (
    "since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694, 'PLATYPUS'); "
    "run the profiler as root, or add a udev rule such as "
    'SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod o+r %S%p/energy_uj"'
)
_ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone: ``label`` is ``package-0`` or ``package-0/dram``."""

    path: Path
    label: str
    is_subzone: bool
    max_energy_range_uj: int

    @property
    def energy_file(self) -> Path:
        """The counter file."""
        return self.path / "energy_uj"

    @property
    def readable(self) -> bool:
        """Whether this user may read the counter."""
        return can_read(self.energy_file)


def find_rapl_zones(root: str | os.PathLike = "/") -> list[RaplZone]:
    """List RAPL zones (``intel-rapl:*`` only: ``intel-rapl-mmio`` duplicates the package).

    On an Intel laptop (root, see ``PERMISSION_HINT``)::

        [z.label for z in find_rapl_zones()]     # ['package-0', 'package-0/core', 'package-0/dram']
    """
    base = sysfs_path(root, POWERCAP)
    if not base.is_dir():
        return []
    zones: dict[tuple[int, int | None], tuple[Path, str]] = {}
    for entry in base.iterdir():
        m = _ZONE_RE.match(entry.name)
        if m and (entry / "energy_uj").exists():
            key = (int(m[1]), None if m[2] is None else int(m[2]))
            zones[key] = (entry, read_str(entry / "name"))
    out = []
    # parents before their subzones: a package's key (N, None) sorts as (N, -1)
    ordered = sorted(zones.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1]))
    for (pkg, sub), (path, name) in ordered:
        if sub is None:
            label = name
        else:
            parent = zones.get((pkg, None), (None, f"package-{pkg}"))[1]
            label = f"{parent}/{name}"
        out.append(RaplZone(path, label, sub is not None, read_int(path / "max_energy_range_uj")))
    return out


class RaplMeter(CounterMeter):
    """Energy from RAPL counters; total = packages + DRAM (or ``psys`` where present).

    Core and uncore are inside the package domain, DRAM is not, and ``psys`` covers the whole
    SoC, so adding them all would count some energy twice.
    """

    name = "rapl"
    update_period_s = RAPL_UPDATE_PERIOD_S

    def __init__(self, root: str | os.PathLike = "/", poll_period_s: float | None = None) -> None:
        zones = find_rapl_zones(root)
        if not zones:
            raise SensorError(f"no RAPL zones under {sysfs_path(root, POWERCAP)}")
        for zone in zones:
            if not zone.readable:
                raise BoardPermissionError(zone.energy_file, "read", PERMISSION_HINT)
        if poll_period_s is None:
            # a quarter of the shortest time to wrap at the largest plausible power, at most 1 s
            shortest_wrap_s = min(z.max_energy_range_uj for z in zones) / 1e6 / ASSUMED_MAX_POWER_W
            poll_period_s = min(1.0, shortest_wrap_s / 4)
        super().__init__(poll_period_s)
        self.zones = zones
        self.joules_per_count = 1e-6
        self.wrap_counts = {z.label: z.max_energy_range_uj for z in zones}

    def read_counters(self) -> dict[str, int]:
        """Read every zone's ``energy_uj``; a PermissionError explains the CVE-2020-8694 change."""
        out = {}
        for zone in self.zones:
            try:
                out[zone.label] = read_int(zone.energy_file)
            except BoardPermissionError as e:
                raise BoardPermissionError(zone.energy_file, "read", PERMISSION_HINT) from e
        return out

    def total_energy_j(self, zones: Mapping[str, float]) -> float:
        """Packages plus DRAM, or ``psys`` alone when the platform has it."""
        psys = [e for label, e in zones.items() if label.startswith("psys")]
        if psys:
            return float(sum(psys))
        return float(
            sum(e for label, e in zones.items() if "/" not in label or label.endswith("/dram"))
        )
