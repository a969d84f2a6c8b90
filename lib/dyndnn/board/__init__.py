r"""Board measurement: discovery, task mapping, DVFS, power/energy meters and the profiler.

Zeus-style: ``errors`` holds the errors, ``sysfs`` the sysfs I/O every backend reads through,
``meter`` the measurement record and the meter bases; one module per backend. Nothing here
imports torch at import time, so a mapped worker can clear the OpenMP affinity variables and
pin itself before torch loads.

>>> import subprocess, sys
>>> code = "import sys, dyndnn.board; print('torch' in sys.modules)"
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
'False\n'

On a board, ``print(discover())`` lists what it has: one line per CPU cluster, GPU, power
sensor and L4T tool, with whether this user may read and write it.
"""

from dyndnn.board.auto import METERS, auto_meter, make_meter
from dyndnn.board.cpufreq import CpufreqPolicy, PolicyState, cur_freq_khz, list_policies
from dyndnn.board.devfreq import Devfreq, DevfreqState, find_gpu_devfreq
from dyndnn.board.discovery import Platform, board_name, core_types, discover
from dyndnn.board.dvfs import DvfsController, recover
from dyndnn.board.errors import BoardError, BoardPermissionError, ReadOnlyWarning, SensorError
from dyndnn.board.ina231 import Ina231Meter
from dyndnn.board.jetson import (
    Ina3221Meter,
    JetsonClocks,
    find_ina3221_rails,
    nvpmodel_query,
    nvpmodel_set,
    parse_tegrastats,
)
from dyndnn.board.mapping import MappedResult, MappedWorker, Mapping, run_mapped
from dyndnn.board.meter import CounterMeter, Measurement, Meter, PollingMeter, SamplingMeter
from dyndnn.board.modelled import CpuPowerModel, ModelledCpuMeter
from dyndnn.board.nvml import NvmlEnergyMeter, NvmlPowerMeter, nvml_meter
from dyndnn.board.plan import default_mappings, plan_mappings
from dyndnn.board.profiler import COLUMNS, profile_sweep
from dyndnn.board.rapl import RaplMeter, find_rapl_zones
from dyndnn.board.replay import ReplayMeter
from dyndnn.board.window import WindowResult, measure

__all__ = [
    "COLUMNS", "METERS", "BoardError", "BoardPermissionError", "CounterMeter", "CpuPowerModel",
    "CpufreqPolicy", "Devfreq", "DevfreqState", "DvfsController", "Ina231Meter", "Ina3221Meter",
    "JetsonClocks", "MappedResult", "MappedWorker", "Mapping", "Measurement", "Meter",
    "ModelledCpuMeter", "NvmlEnergyMeter", "NvmlPowerMeter", "Platform", "PolicyState",
    "PollingMeter", "RaplMeter", "ReadOnlyWarning", "ReplayMeter", "SamplingMeter",
    "SensorError", "WindowResult", "auto_meter", "board_name", "core_types", "cur_freq_khz",
    "default_mappings", "discover", "find_gpu_devfreq", "find_ina3221_rails", "find_rapl_zones",
    "list_policies", "make_meter", "measure", "nvml_meter", "nvpmodel_query", "nvpmodel_set",
    "parse_tegrastats", "plan_mappings", "profile_sweep", "recover", "run_mapped",
]  # fmt: skip
