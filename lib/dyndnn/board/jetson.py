"""NVIDIA Jetson: INA3221 power rails (old IIO and new hwmon layouts), tegrastats, nvpmodel.

Each rail gets one small reader object, decided once at discovery: the old ``ina3221x`` IIO
driver gives power directly (``in_powerK_input``, mW); the mainline hwmon driver gives only
voltage and current, so power is V [mV] x I [mA] / 1000 [mW].

On a fake tree (``root``) in the hwmon layout; on a Jetson, ``Ina3221Meter()``:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> chip = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
>>> chip.mkdir(parents=True)
>>> for name, value in {"in1_label": "VDD_IN", "in1_input": 5000, "curr1_input": 960,
...                     "in2_label": "VDD_CPU_GPU_CV", "in2_input": 5000, "curr2_input": 300,
...                     "update_interval": 10}.items():
...     _ = (chip / name).write_text(str(value))
>>> meter = Ina3221Meter(root)
>>> meter.name, [r.rail for r in meter.readers], meter.total_rail
('ina3221-hwmon', ['VDD_IN', 'VDD_CPU_GPU_CV'], 'VDD_IN')
>>> meter.start(); m = meter.stop()
>>> round(m.power_w, 6)                      # the input rail: 5000 mV x 960 mA
4.8
>>> parse_tegrastats("RAM 1489/3956MB CPU [11%@1479,off] POM_5V_IN 2070/2070")["ram_used_mb"]
1489
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dyndnn.board.errors import BoardError, BoardPermissionError, SensorError
from dyndnn.board.meter import SamplingMeter
from dyndnn.board.sysfs import can_read, read_float, read_int, read_str, sysfs_path

IIO_DRIVER = "/sys/bus/i2c/drivers/ina3221x"
HWMON_DRIVER = "/sys/bus/i2c/drivers/ina3221"
TOTAL_RAILS = ("POM_5V_IN", "VDD_IN")  # the board's input rail, where it has one
# The IIO driver exposes no refresh period; 100 ms is an assumption (conservative for the
# 10x-window rule), not a documented figure.
ASSUMED_IIO_UPDATE_PERIOD_S = 0.1


class RailReader(Protocol):
    """Reads one rail's power."""

    rail: str

    def power_w(self) -> float:
        """The rail's power now, in watts."""
        ...

    def files(self) -> tuple[Path, ...]:
        """The files it reads (for permission checks and error messages)."""
        ...


@dataclass(frozen=True)
class IioPowerReader:
    """Old layout: ``in_powerK_input`` in milliwatts."""

    rail: str
    power_file: Path

    def power_w(self) -> float:
        """Read the rail's power."""
        return read_float(self.power_file) / 1e3

    def files(self) -> tuple[Path, ...]:
        """The one file read."""
        return (self.power_file,)


@dataclass(frozen=True)
class HwmonVoltCurrentReader:
    """New layout: ``inK_input`` (mV) x ``currK_input`` (mA); the driver has no power file."""

    rail: str
    voltage_file: Path
    current_file: Path

    def power_w(self) -> float:
        """Read voltage and current; mV x mA = uW."""
        return read_float(self.voltage_file) * read_float(self.current_file) / 1e6

    def files(self) -> tuple[Path, ...]:
        """Both files read."""
        return (self.voltage_file, self.current_file)


def _iio_readers(root: str | os.PathLike) -> list[RailReader]:
    out: list[RailReader] = []
    for name_file in sorted(sysfs_path(root, IIO_DRIVER).glob("*/iio:device*/rail_name_*")):
        k = name_file.name.rsplit("_", 1)[1]
        out.append(IioPowerReader(read_str(name_file), name_file.parent / f"in_power{k}_input"))
    return out


def _hwmon_readers(root: str | os.PathLike) -> list[RailReader]:
    out: list[RailReader] = []
    for label_file in sorted(sysfs_path(root, HWMON_DRIVER).glob("*/hwmon/hwmon*/in*_label")):
        k = int(re.fullmatch(r"in(\d+)_label", label_file.name)[1])
        label = read_str(label_file)
        if k not in (1, 2, 3) or label == "NC":  # in7 is the sum of shunt voltages
            continue
        d = label_file.parent
        out.append(HwmonVoltCurrentReader(label, d / f"in{k}_input", d / f"curr{k}_input"))
    return out


def find_ina3221_rails(root: str | os.PathLike = "/") -> tuple[str, list[RailReader]]:
    """Find the INA3221 rails and the layout: ``("iio" | "hwmon" | "", readers)``.

    On a Jetson Orin Nano (JetPack 6)::

        layout, readers = find_ina3221_rails()
        layout, [r.rail for r in readers]
        # ('hwmon', ['VDD_GPU_SOC', 'VDD_CPU_CV', 'VIN_SYS_5V0', 'VDDQ_VDD2_1V8AO'])
    """
    for layout, find in (("iio", _iio_readers), ("hwmon", _hwmon_readers)):
        readers = find(root)
        if readers:
            return layout, _unique_names(readers)
    return "", []


def _unique_names(readers: list[RailReader]) -> list[RailReader]:
    """Keep rail names unique (two chips may both carry a rail of the same name)."""
    seen: dict[str, int] = {}
    out = []
    for r in readers:
        n = seen.get(r.rail, 0)
        seen[r.rail] = n + 1
        if n:
            r = dataclasses.replace(r, rail=f"{r.rail}#{n + 1}")
        out.append(r)
    return out


class Ina3221Meter(SamplingMeter):
    """Integrates every Jetson INA3221 rail; total = ``POM_5V_IN``/``VDD_IN`` else their sum."""

    name = "ina3221"

    def __init__(self, root: str | os.PathLike = "/", poll_period_s: float | None = None) -> None:
        layout, readers = find_ina3221_rails(root)
        if not readers:
            raise SensorError(
                f"no INA3221 rails under {sysfs_path(root, IIO_DRIVER)} "
                f"or {sysfs_path(root, HWMON_DRIVER)}"
            )
        for reader in readers:
            for f in reader.files():
                if not can_read(f):
                    raise BoardPermissionError(f, "read")
        self.layout = layout
        self.readers = readers
        self.name = f"ina3221-{layout}"
        self.update_period_s = ASSUMED_IIO_UPDATE_PERIOD_S
        if layout == "hwmon":
            intervals = [
                read_int(f) / 1e3
                for f in {r.voltage_file.parent / "update_interval" for r in readers}
                if f.exists()
            ]
            self.update_period_s = max(intervals, default=ASSUMED_IIO_UPDATE_PERIOD_S)
        self.total_rail = next((t for t in TOTAL_RAILS if t in {r.rail for r in readers}), None)
        super().__init__(poll_period_s or max(self.update_period_s / 4, 0.005))

    def read_power_w(self) -> dict[str, float]:
        """Read every rail once."""
        return {r.rail: r.power_w() for r in self.readers}

    def total_power_w(self, rails: Mapping[str, float]) -> float:
        """The input rail where the board has one; the sum of the rails otherwise."""
        if self.total_rail is not None:
            return rails[self.total_rail]
        return float(sum(rails.values()))


# ----------------------------------------------------------------------------------------------
# tegrastats

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b(\w+)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Za-z]\w*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


def parse_tegrastats(line: str) -> dict[str, Any]:
    """Parse one tegrastats line (old bare-mW and JetPack 5+ ``mW``-suffixed formats).

    Keys (present when the line has them): ``ram_used_mb``, ``ram_total_mb``, ``swap_used_mb``,
    ``swap_total_mb``, ``cpu`` (one dict per core: ``online``, ``load_pct``, ``freq_mhz``),
    ``emc_load_pct``, ``emc_freq_mhz``, ``gr3d_load_pct``, ``gr3d_freq_mhz``, ``temp_c``
    ({sensor: degrees}) and ``rail_power_mw`` ({rail: {"cur_mw", "avg_mw"}}, ``NC`` skipped).

    >>> s = parse_tegrastats("CPU [2%@102,off] VDD_IN 4795mW/4811mW")
    >>> s["cpu"][1]["online"], s["rail_power_mw"]["VDD_IN"]["avg_mw"]
    (False, 4811.0)
    """
    out: dict[str, Any] = {}
    if m := _RAM.search(line):
        out["ram_used_mb"], out["ram_total_mb"] = int(m[1]), int(m[2])
    if m := _SWAP.search(line):
        out["swap_used_mb"], out["swap_total_mb"] = int(m[1]), int(m[2])
    if m := _CPU.search(line):
        cores = []
        for item in m[1].split(","):
            item = item.strip()
            if item == "off" or not item:
                cores.append({"online": False, "load_pct": None, "freq_mhz": None})
                continue
            load, _, freq = item.partition("@")
            cores.append(
                {
                    "online": True,
                    "load_pct": int(load.rstrip("%")),
                    "freq_mhz": int(freq) if freq else None,
                }
            )
        out["cpu"] = cores
    if m := _EMC.search(line):
        out["emc_load_pct"] = int(m[1])
        out["emc_freq_mhz"] = int(m[2]) if m[2] else None
    if m := _GR3D.search(line):
        out["gr3d_load_pct"] = int(m[1])
        # Orin prints one frequency per GPC ("@[305,305]"); they move together, keep the top
        out["gr3d_freq_mhz"] = max(int(f) for f in m[2].split(",")) if m[2] else None
    out["temp_c"] = {name: float(t) for name, t in _TEMP.findall(line)}
    out["rail_power_mw"] = {
        name: {"cur_mw": float(cur), "avg_mw": float(avg)}
        for name, cur, avg in _RAIL.findall(line)
        if name != "NC"
    }
    return out


# ----------------------------------------------------------------------------------------------
# nvpmodel and jetson_clocks


def _run(exe: str, *args: str) -> str:
    path = shutil.which(exe)
    if path is None:
        raise BoardError(f"{exe} not found on PATH (is this a Jetson with L4T installed?)")
    try:
        done = subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise BoardError(f"{exe} {' '.join(args)} did not finish in 120 s") from e
    if done.returncode != 0:
        raise BoardError(
            f"{exe} {' '.join(args)} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip() or 'no output'}; it needs root"
        )
    return done.stdout


def nvpmodel_query(exe: str = "nvpmodel") -> tuple[int, str]:
    r"""The current power mode ``(id, name)`` from ``nvpmodel -q``.

    Here with a stand-in that prints what L4T's ``nvpmodel -q`` prints:

    >>> import pathlib, tempfile
    >>> exe = pathlib.Path(tempfile.mkdtemp(), "nvpmodel")
    >>> _ = exe.write_text("#!/bin/sh\necho 'NV Power Mode: MAXN'\necho 0\n")
    >>> exe.chmod(0o755)
    >>> nvpmodel_query(str(exe))
    (0, 'MAXN')
    """
    text = _run(exe, "-q")
    name = re.search(r"NV Power Mode:\s*(.+)", text)
    ids = [line.strip() for line in text.splitlines() if line.strip().isdigit()]
    if not ids:
        raise BoardError(f"cannot read the power mode id from `{exe} -q`: {text!r}")
    return int(ids[-1]), name[1].strip() if name else ""


def nvpmodel_set(mode_id: int, exe: str = "nvpmodel") -> None:
    """Switch the power mode (``nvpmodel -m ID``; root)."""
    _run(exe, "-m", str(int(mode_id)))


@dataclass(frozen=True)
class JetsonClocks:
    """``jetson_clocks`` with a state file: ``store()`` before changing clocks, ``restore()`` after.

    On a Jetson (root)::

        jc = JetsonClocks("/tmp/clocks.conf")
        jc.store(); jc.maximise()
        ...                          # the measurements, at maximum clocks
        jc.restore()
    """

    store_file: Path
    exe: str = "jetson_clocks"

    def store(self) -> None:
        """Save the current clocks to ``store_file``."""
        _run(self.exe, "--store", str(self.store_file))

    def restore(self) -> None:
        """Put back the clocks saved in ``store_file``."""
        if not Path(self.store_file).exists():
            raise BoardError(f"jetson_clocks state file {self.store_file} is missing")
        _run(self.exe, "--restore", str(self.store_file))

    def maximise(self) -> None:
        """Pin every clock at its maximum (``jetson_clocks`` with no argument)."""
        _run(self.exe)
