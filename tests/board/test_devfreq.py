from __future__ import annotations

import pytest

from dyndnn.board.devfreq import find_gpu_devfreq
from dyndnn.errors import ConfigError

from .fakesys import make_devfreq

ORIN_JP6 = "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
XAVIER = "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b"
HZ = (114750000, 306000000, 612000000, 1300500000)


@pytest.mark.parametrize("device_dir", [ORIN_JP6, XAVIER])
def test_gpu_found_by_scanning_class_devfreq(tmp_path, device_dir):
    # memory-bus devfreq devices sit beside the GPU and must be passed over
    make_devfreq(tmp_path, "/sys/devices/platform/10c20000.bus/devfreq/10c20000.bus", HZ, "s")
    make_devfreq(tmp_path, device_dir, HZ, "nvhost_podgov")
    gpu = find_gpu_devfreq(tmp_path)
    assert gpu is not None
    assert gpu.path == tmp_path / device_dir.lstrip("/")
    assert gpu.available_frequencies_hz == HZ
    assert gpu.governor == "nvhost_podgov"


def test_no_gpu(tmp_path):
    assert find_gpu_devfreq(tmp_path) is None
    make_devfreq(tmp_path, "/sys/devices/platform/10c20000.bus/devfreq/10c20000.bus", HZ, "s")
    assert find_gpu_devfreq(tmp_path) is None


def test_pin_and_apply(tmp_path):
    make_devfreq(tmp_path, XAVIER, HZ, "nvhost_podgov")
    gpu = find_gpu_devfreq(tmp_path)
    saved = gpu.state()
    gpu.set_frequency(306000000)
    assert (gpu.min_freq_hz, gpu.max_freq_hz) == (306000000, 306000000)
    with pytest.raises(ConfigError, match="available"):
        gpu.set_frequency(1)
    gpu.apply(saved)
    assert gpu.state() == saved
