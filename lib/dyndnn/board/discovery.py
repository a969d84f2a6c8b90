r"""Platform discovery: what this board has, and what this user may read and write.

One call gathers CPUs and their clusters (cpufreq ``related_cpus``, never hard-coded), core
types (``/proc/cpuinfo``, best effort), frequencies and governors per cluster, the Jetson GPU
devfreq, CUDA devices, power sensors (RAPL, INA231, INA3221 old and new, NVML) and L4T tools.
``discover()`` reads this host; under a ``root`` it reads a fake tree instead:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())       # two cores, no cpufreq, no sensor
>>> for path, text in {"proc/device-tree/model": "Hardkernel Odroid XU3",
...                    "proc/cpuinfo": "processor\t: 0\nCPU part\t: 0xc07\n\n"
...                                    "processor\t: 1\nCPU part\t: 0xc0f\n",
...                    "sys/devices/system/cpu/online": "0-1"}.items():
...     (root / path).parent.mkdir(parents=True, exist_ok=True)
...     _ = (root / path).write_text(text)
>>> platform = discover(root, probe_cuda=False, probe_nvml=False)
>>> platform.board, platform.cpus, platform.core_types
('Hardkernel Odroid XU3', (0, 1), {0: 'Cortex-A7', 1: 'Cortex-A15'})
>>> summary = platform.summary().set_index("kind")   # a DataFrame for the notebook
>>> summary.loc["sensor", "detail"]
'no power sensor found: energy will be modelled'
"""

from __future__ import annotations

import os
import platform as _platform
import re
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dyndnn.board.cpufreq import list_policies
from dyndnn.board.devfreq import find_gpu_devfreq
from dyndnn.board.errors import BoardError, SensorError
from dyndnn.board.ina231 import find_ina231_rails
from dyndnn.board.jetson import find_ina3221_rails
from dyndnn.board.nvml import load_pynvml
from dyndnn.board.rapl import find_rapl_zones
from dyndnn.board.sysfs import (
    can_read,
    can_write,
    format_cpu_list,
    parse_cpu_list,
    read_str,
    sysfs_path,
)

if TYPE_CHECKING:
    import pandas as pd

# /proc/cpuinfo "CPU part" of ARM Ltd. (implementer 0x41) cores found on our kinds of boards
ARM_PARTS = {
    0xC07: "Cortex-A7",
    0xC0F: "Cortex-A15",
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE",
}
NVIDIA_PARTS = {0x003: "Denver", 0x004: "Carmel"}  # implementer 0x4e
TOOLS = ("nvpmodel", "jetson_clocks", "tegrastats")


@dataclass(frozen=True)
class ClusterInfo:
    """One cpufreq policy: its CPUs, core type and clock settings (frequencies in kHz)."""

    policy: str
    cpus: tuple[int, ...]
    core_type: str
    governor: str
    available_governors: tuple[str, ...]
    available_frequencies_khz: tuple[int, ...]
    min_freq_khz: int
    max_freq_khz: int
    cur_freq_khz: int | None
    method: str  # how a frequency is set: "userspace" or "minmax"
    readable: bool
    writable: bool


@dataclass(frozen=True)
class SensorInfo:
    """A power sensor (or one of its rails/zones) and this user's access to it."""

    kind: str  # rapl | ina231 | ina3221-iio | ina3221-hwmon | nvml
    name: str
    path: str
    readable: bool
    writable: bool  # INA231: may enable it; elsewhere: may write the sensor file (rarely useful)


@dataclass(frozen=True)
class GpuInfo:
    """A GPU: a CUDA device, an NVML device or a Jetson devfreq clock."""

    kind: str  # cuda | devfreq
    name: str
    detail: str
    readable: bool = True
    writable: bool = False


@dataclass(frozen=True)
class Platform:
    """What ``discover`` found. ``summary()`` gives one row per item for a notebook."""

    root: str
    board: str
    cpus: tuple[int, ...]
    core_types: dict[int, str]
    clusters: tuple[ClusterInfo, ...]
    gpus: tuple[GpuInfo, ...]
    sensors: tuple[SensorInfo, ...]
    tools: dict[str, str | None] = field(default_factory=dict)

    @property
    def cuda_devices(self) -> tuple[GpuInfo, ...]:
        """The CUDA devices torch sees."""
        return tuple(g for g in self.gpus if g.kind == "cuda")

    @property
    def can_set_cpu_freq(self) -> bool:
        """Whether every cluster's clock files are writable (and there is at least one)."""
        return bool(self.clusters) and all(c.writable for c in self.clusters)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per item (kind, name, detail, readable, writable); 'none found' rows too."""
        rows: list[dict[str, Any]] = []

        def add(kind: str, name: str, detail: str, readable: Any = "", writable: Any = "") -> None:
            rows.append(
                dict(kind=kind, name=name, detail=detail, readable=readable, writable=writable)
            )

        types = sorted(set(self.core_types.values()))
        add("board", self.board, f"root {self.root}")
        add("cpus", format_cpu_list(self.cpus), ", ".join(types) or "core type unknown")
        for c in self.clusters:
            freqs = c.available_frequencies_khz
            span = (
                f"{freqs[0]}-{freqs[-1]} kHz ({len(freqs)} steps)"
                if freqs
                else (f"{c.min_freq_khz}-{c.max_freq_khz} kHz (continuous)")
            )
            add(
                "cluster",
                c.policy,
                f"cpus {format_cpu_list(c.cpus)} {c.core_type}; {c.governor} "
                f"[{' '.join(c.available_governors)}]; {span}; now {c.cur_freq_khz} kHz; "
                f"set by {c.method}",
                c.readable,
                c.writable,
            )
        if not self.clusters:
            add("cluster", "-", "no cpufreq: clocks can be neither read nor set", False, False)
        for g in self.gpus:
            add(f"gpu-{g.kind}", g.name, g.detail, g.readable, g.writable)
        if not self.gpus:
            add("gpu", "-", "none found")
        for s in self.sensors:
            add(f"sensor-{s.kind}", s.name, s.path, s.readable, s.writable)
        if not self.sensors:
            add("sensor", "-", "no power sensor found: energy will be modelled", False, False)
        for tool, path in self.tools.items():
            add("tool", tool, path or "not on PATH")
        return rows

    def summary(self) -> pd.DataFrame:
        """A pandas DataFrame of ``rows()``.

        >>> import tempfile
        >>> platform = discover(tempfile.mkdtemp(), probe_cuda=False, probe_nvml=False)
        >>> platform.summary().columns.tolist()
        ['kind', 'name', 'detail', 'readable', 'writable']
        """
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["kind", "name", "detail", "readable", "writable"])

    def __str__(self) -> str:
        return "\n".join(
            f"{r['kind']:<16} {r['name']:<18} {r['detail']}"
            + (f"  [r={r['readable']} w={r['writable']}]" if r["readable"] != "" else "")
            for r in self.rows()
        )


def board_name(root: str | os.PathLike = "/") -> str:
    """The board's name: device-tree model (ARM boards), DMI product name, else the host name.

    >>> import platform, tempfile
    >>> board_name(tempfile.mkdtemp()) == platform.node()   # neither file: the host name
    True
    """
    for path in ("/proc/device-tree/model", "/sys/class/dmi/id/product_name"):
        f = sysfs_path(root, path)
        try:
            name = f.read_bytes().decode(errors="replace").strip("\x00 \n")
        except OSError:
            continue
        if name:
            return name
    return _platform.node() or "unknown"


def core_types(root: str | os.PathLike = "/") -> dict[int, str]:
    r"""Core type per CPU from ``/proc/cpuinfo``: ARM "CPU part" names, x86 "model name".

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "proc").mkdir()
    >>> _ = (root / "proc/cpuinfo").write_text("processor\t: 0\nCPU part\t: 0xc07\n\n"
    ...                                        "processor\t: 4\nCPU part\t: 0xc0f\n")
    >>> core_types(root)                               # an Odroid's LITTLE and big cores
    {0: 'Cortex-A7', 4: 'Cortex-A15'}
    """
    try:
        text = sysfs_path(root, "/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict[int, str] = {}
    for block in re.split(r"\n\s*\n", text):
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in block.splitlines())
            if _
        )
        if "processor" not in fields or not fields["processor"].isdigit():
            continue
        cpu = int(fields["processor"])
        if "cpu part" in fields:
            part = int(fields["cpu part"], 16)
            implementer = int(fields.get("cpu implementer", "0x41"), 16)
            table = NVIDIA_PARTS if implementer == 0x4E else ARM_PARTS
            out[cpu] = table.get(part, f"ARM part {fields['cpu part']}")
        elif "model name" in fields:
            out[cpu] = fields["model name"]
    return out


def _online_cpus(root: str | os.PathLike, clusters: tuple[ClusterInfo, ...]) -> tuple[int, ...]:
    f = sysfs_path(root, "/sys/devices/system/cpu/online")
    if f.exists():
        return parse_cpu_list(read_str(f))
    if clusters:
        return tuple(sorted({c for cl in clusters for c in cl.cpus}))
    return tuple(range(os.cpu_count() or 1))


def _clusters(root: str | os.PathLike, types: dict[int, str]) -> tuple[ClusterInfo, ...]:
    out = []
    for p in list_policies(root):
        try:
            cur: int | None = p.cur_freq_khz
        except BoardError:
            cur = None
        names = sorted({types[c] for c in p.cpus if c in types})
        out.append(
            ClusterInfo(
                policy=p.name,
                cpus=p.cpus,
                core_type="/".join(names) or "unknown",
                governor=p.governor,
                available_governors=p.available_governors,
                available_frequencies_khz=p.available_frequencies_khz,
                min_freq_khz=p.min_freq_khz,
                max_freq_khz=p.max_freq_khz,
                cur_freq_khz=cur,
                method="userspace" if p.uses_userspace else "minmax",
                readable=can_read(p.path / "scaling_cur_freq"),
                writable=not p.unwritable(),
            )
        )
    return tuple(out)


def _sensors(root: str | os.PathLike, nvml: Any) -> list[SensorInfo]:
    out = [
        SensorInfo("rapl", z.label, str(z.energy_file), z.readable, can_write(z.energy_file))
        for z in find_rapl_zones(root)
    ]
    out += [
        SensorInfo(
            "ina231",
            r.rail,
            str(r.power_file),
            can_read(r.power_file),
            can_write(r.path / "enable"),
        )
        for r in find_ina231_rails(root)
    ]
    layout, readers = find_ina3221_rails(root)
    for r in readers:
        files = r.files()
        out.append(
            SensorInfo(
                f"ina3221-{layout}",
                r.rail,
                str(files[0]),
                all(can_read(f) for f in files),
                can_write(files[0]),
            )
        )
    if nvml is not None:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                how = "energy counter"
            except nvml.NVMLError:
                how = "power only"
            out.append(SensorInfo("nvml", f"gpu{i}", how, True, False))
    return out


def _gpus(root: str | os.PathLike, probe_cuda: bool, nvml: Any) -> list[GpuInfo]:
    out: list[GpuInfo] = []
    if probe_cuda:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                out.append(
                    GpuInfo(
                        "cuda",
                        f"cuda:{i}",
                        f"{p.name}, sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB",
                    )
                )
    dev = find_gpu_devfreq(root)
    if dev is not None:
        freqs = dev.available_frequencies_hz
        out.append(
            GpuInfo(
                "devfreq",
                dev.name,
                f"{dev.governor}; {freqs[0]}-{freqs[-1]} Hz ({len(freqs)} steps); "
                f"now {dev.cur_freq_hz} Hz",
                can_read(dev.path / "cur_freq"),
                not dev.unwritable(),
            )
        )
    return out


def discover(
    root: str | os.PathLike = "/",
    probe_cuda: bool = True,
    probe_nvml: bool = True,
    pynvml_module: Any = None,
) -> Platform:
    """Discover the platform under ``root`` (a fake sysfs tree in tests).

    ``probe_cuda`` imports torch to list CUDA devices; ``probe_nvml`` asks NVML (through
    ``pynvml_module`` when given). Missing pieces are reported, never raised.
    """
    nvml = None
    if probe_nvml:
        try:
            nvml = load_pynvml(pynvml_module)
        except SensorError:
            nvml = None
    try:
        types = core_types(root)
        clusters = _clusters(root, types)
        return Platform(
            root=str(root),
            board=board_name(root),
            cpus=_online_cpus(root, clusters),
            core_types=types,
            clusters=clusters,
            gpus=tuple(_gpus(root, probe_cuda, nvml)),
            sensors=tuple(_sensors(root, nvml)),
            tools={t: shutil.which(t) for t in TOOLS},
        )
    finally:
        if nvml is not None:
            nvml.nvmlShutdown()
