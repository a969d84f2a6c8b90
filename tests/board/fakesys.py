"""Fake sysfs/procfs trees built from the documented layouts (BOARDS.md), as real files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

ODROID_A7_KHZ = (200000, 400000, 600000, 800000, 1000000, 1200000, 1400000)
ODROID_A15_KHZ = (200000, 600000, 1000000, 1400000, 1800000, 2000000)


def put(root: Path, path: str, value: object) -> Path:
    """Write one sysfs-like file (value + newline, as the kernel prints)."""
    p = Path(root, path.lstrip("/"))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{value}\n")
    return p


def swap(path: Path, value: object) -> None:
    """Change a file under a polling reader: a kernel read is atomic, a truncate+write is not."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def get(root: Path, path: str) -> str:
    return Path(root, path.lstrip("/")).read_text().strip()


def make_policy(
    root: Path,
    n: int,
    cpus: tuple[int, ...],
    freqs_khz: tuple[int, ...] | None,
    governors: str = "conservative ondemand userspace powersave performance schedutil",
    governor: str = "ondemand",
    cur_khz: int | None = None,
) -> Path:
    """One cpufreq policy; ``freqs_khz=None`` mimics intel_pstate (no list, no setspeed)."""
    base = f"/sys/devices/system/cpu/cpufreq/policy{n}"
    lo, hi = (min(freqs_khz), max(freqs_khz)) if freqs_khz else (800000, 3500000)
    put(root, f"{base}/related_cpus", " ".join(map(str, cpus)))
    put(root, f"{base}/affected_cpus", " ".join(map(str, cpus)))
    put(root, f"{base}/scaling_available_governors", governors)
    put(root, f"{base}/scaling_governor", governor)
    put(root, f"{base}/cpuinfo_min_freq", lo)
    put(root, f"{base}/cpuinfo_max_freq", hi)
    put(root, f"{base}/scaling_min_freq", lo)
    put(root, f"{base}/scaling_max_freq", hi)
    put(root, f"{base}/scaling_cur_freq", cur_khz or hi)
    if freqs_khz:
        put(root, f"{base}/scaling_available_frequencies", " ".join(map(str, freqs_khz)))
        put(root, f"{base}/scaling_setspeed", "<unsupported>")
    return Path(root, base.lstrip("/"))


def make_odroid_xu3(root: Path) -> None:
    """Odroid XU3: policy0 = cpu0-3 Cortex-A7, policy4 = cpu4-7 Cortex-A15, INA231 rails."""
    make_policy(root, 0, (0, 1, 2, 3), ODROID_A7_KHZ, cur_khz=1400000)
    make_policy(root, 4, (4, 5, 6, 7), ODROID_A15_KHZ, cur_khz=2000000)
    put(root, "/sys/devices/system/cpu/online", "0-7")
    blocks = []
    for cpu in range(8):
        part = "0xc07" if cpu < 4 else "0xc0f"
        blocks.append(
            f"processor\t: {cpu}\nmodel name\t: ARMv7 Processor rev 3 (v7l)\n"
            f"CPU implementer\t: 0x41\nCPU architecture: 7\nCPU part\t: {part}\n"
        )
    put(root, "/proc/cpuinfo", "\n".join(blocks) + "\nHardware\t: ODROID-XU3\n")
    put(root, "/proc/device-tree/model", "Hardkernel Odroid XU3\x00")
    make_ina231(root, {"3-0040": 2.5, "3-0041": 0.25, "3-0044": 0.125, "3-0045": 0.5})


def make_ina231(root: Path, watts: dict[str, float], enabled: str = "0") -> None:
    for dev, w in watts.items():
        base = f"/sys/bus/i2c/drivers/INA231/{dev}"
        put(root, f"{base}/enable", enabled)
        put(root, f"{base}/sensor_W", w)
        put(root, f"{base}/sensor_V", 1.0)
        put(root, f"{base}/sensor_A", w)
        put(root, f"{base}/update_period", 263808)


def make_rapl(root: Path, zones: dict[str, tuple[str, int, int]]) -> dict[str, Path]:
    """``{"intel-rapl:0": ("package-0", energy_uj, max_energy_range_uj)}`` -> energy files."""
    out = {}
    for zone, (name, energy, rng) in zones.items():
        base = f"/sys/class/powercap/{zone}"
        put(root, f"{base}/name", name)
        put(root, f"{base}/max_energy_range_uj", rng)
        out[zone] = put(root, f"{base}/energy_uj", energy)
    return out


def make_ina3221_iio(root: Path, dev: str, rails_mw: dict[str, float]) -> Path:
    """Old NVIDIA IIO layout (Nano: 6-0040, POM_5V_IN/GPU/CPU)."""
    base = f"/sys/bus/i2c/drivers/ina3221x/{dev}/iio:device0"
    for k, (rail, mw) in enumerate(rails_mw.items()):
        put(root, f"{base}/rail_name_{k}", rail)
        put(root, f"{base}/in_power{k}_input", mw)
        put(root, f"{base}/in_voltage{k}_input", 5000)
        put(root, f"{base}/in_current{k}_input", mw / 5)
    return Path(root, base.lstrip("/"))


def make_ina3221_hwmon(
    root: Path, dev: str, hwmon: str, channels: dict[int, tuple[str, float, float]]
) -> Path:
    """Mainline hwmon layout: ``{K: (label, mV, mA)}`` plus an in7 shunt-sum channel."""
    base = f"/sys/bus/i2c/drivers/ina3221/{dev}/hwmon/{hwmon}"
    for k, (label, mv, ma) in channels.items():
        put(root, f"{base}/in{k}_label", label)
        put(root, f"{base}/in{k}_input", mv)
        put(root, f"{base}/curr{k}_input", ma)
    put(root, f"{base}/in7_label", "sum of shunt voltages")
    put(root, f"{base}/in7_input", 40)
    put(root, f"{base}/update_interval", 10)
    return Path(root, base.lstrip("/"))


def make_devfreq(root: Path, device_dir: str, freqs_hz: tuple[int, ...], governor: str) -> Path:
    """A devfreq device under /sys/devices plus its relative /sys/class/devfreq symlink."""
    dev = Path(root, device_dir.lstrip("/"))
    name = dev.name
    put(root, f"{device_dir}/available_frequencies", " ".join(map(str, freqs_hz)))
    put(root, f"{device_dir}/governor", governor)
    put(root, f"{device_dir}/min_freq", min(freqs_hz))
    put(root, f"{device_dir}/max_freq", max(freqs_hz))
    put(root, f"{device_dir}/cur_freq", min(freqs_hz))
    link_dir = Path(root, "sys/class/devfreq")
    link_dir.mkdir(parents=True, exist_ok=True)
    (link_dir / name).symlink_to(os.path.relpath(dev, link_dir))
    return dev


def fake_exe(bindir: Path, name: str, body: str) -> Path:
    """A shell script on a fake PATH (the hardware boundary for L4T tools)."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe
