"""What to sweep on this board: the default task mappings and the frequency list.

>>> import pathlib, tempfile
>>> from dyndnn.board import discover
>>> root = pathlib.Path(tempfile.mkdtemp())         # a fake two-core host without cpufreq
>>> (root / "sys/devices/system/cpu").mkdir(parents=True)
>>> _ = (root / "sys/devices/system/cpu/online").write_text("0-1")
>>> platform = discover(root, probe_cuda=False, probe_nvml=False)
>>> [m.label for m in plan_mappings(["auto", "cpu:1"], platform)]
['cpu[0]x1', 'cpu[0-1]x2', 'cpu[1]x1']
"""

from __future__ import annotations

from collections.abc import Sequence

from dyndnn.board.discovery import Platform
from dyndnn.board.mapping import Mapping


def default_mappings(platform: Platform) -> list[Mapping]:
    """One core and all cores of every cluster, all CPUs together, and every CUDA device.

    Without cpufreq (no clusters known) the CPUs form one cluster. Duplicates are dropped.
    """
    clusters = [c.cpus for c in platform.clusters] or [platform.cpus]
    mappings = []
    for cpus in clusters:
        mappings += [Mapping("cpu", cpus[:1], 1), Mapping("cpu", cpus, len(cpus))]
    mappings.append(Mapping("cpu", platform.cpus, len(platform.cpus)))
    mappings += [Mapping(gpu.name, platform.cpus[:1], 1) for gpu in platform.cuda_devices]
    unique: list[Mapping] = []
    for m in mappings:
        if m not in unique:
            unique.append(m)
    return unique


def plan_mappings(specs: Sequence[str], platform: Platform) -> list[Mapping]:
    """Mappings from config strings.

    ``auto`` expands to ``default_mappings``; others parse as ``Mapping.parse`` (e.g.
    ``cpu:4-7x4``, ``cuda:0@0``).
    """
    mappings: list[Mapping] = []
    for spec in specs:
        for m in default_mappings(platform) if spec == "auto" else [Mapping.parse(spec)]:
            m = m.resolved()  # "cpu:0" and "cpu:0x1" are the same mapping
            if m not in mappings:
                mappings.append(m)
    return mappings
