from __future__ import annotations

import pytest

from dyndnn.board import cpufreq
from dyndnn.board.cpufreq import PolicyState, cur_freq_khz, list_policies, policies_for_cpus
from dyndnn.errors import ConfigError

from .fakesys import ODROID_A7_KHZ, ODROID_A15_KHZ, get, make_odroid_xu3, make_policy

P0 = "/sys/devices/system/cpu/cpufreq/policy0"
P4 = "/sys/devices/system/cpu/cpufreq/policy4"


def test_clusters_come_from_related_cpus(tmp_path):
    make_odroid_xu3(tmp_path)
    policies = list_policies(tmp_path)
    assert [(p.name, p.cpus) for p in policies] == [
        ("policy0", (0, 1, 2, 3)), ("policy4", (4, 5, 6, 7))
    ]  # fmt: skip
    assert policies[1].available_frequencies_khz == ODROID_A15_KHZ
    assert [p.name for p in policies_for_cpus([5], tmp_path)] == ["policy4"]
    assert [p.name for p in policies_for_cpus([3, 4], tmp_path)] == ["policy0", "policy4"]
    assert cur_freq_khz([0], tmp_path) == 1400000
    assert cur_freq_khz([0, 4], tmp_path) == (1400000 + 2000000) / 2


def test_no_cpufreq_is_empty_not_an_error(tmp_path):
    assert list_policies(tmp_path) == []
    assert cur_freq_khz([0], tmp_path) is None


def test_userspace_path_sets_governor_and_setspeed(tmp_path):
    make_odroid_xu3(tmp_path)
    p = list_policies(tmp_path)[0]
    assert p.uses_userspace
    assert p.state() == PolicyState("ondemand", 200000, 1400000, None)
    assert p.set_frequency(800000) == "userspace"
    assert get(tmp_path, f"{P0}/scaling_governor") == "userspace"
    assert get(tmp_path, f"{P0}/scaling_setspeed") == "800000"
    assert p.state().setspeed_khz == 800000


def test_userspace_opens_a_narrow_window_first(tmp_path):
    make_odroid_xu3(tmp_path)
    p = list_policies(tmp_path)[0]
    p._write_bounds(1000000, 1000000)
    p.set_frequency(400000)  # below min: the kernel would clamp setspeed
    assert (p.min_freq_khz, p.max_freq_khz) == (min(ODROID_A7_KHZ), max(ODROID_A7_KHZ))
    assert get(tmp_path, f"{P0}/scaling_setspeed") == "400000"


def test_intel_pstate_pins_min_and_max_in_safe_order(tmp_path, monkeypatch):
    make_policy(tmp_path, 0, (0,), None, "performance powersave", "powersave")
    p = list_policies(tmp_path)[0]
    assert not p.uses_userspace
    writes = []
    real = cpufreq.write_str
    monkeypatch.setattr(cpufreq, "write_str", lambda f, v: (writes.append(f.name), real(f, v)))
    p._write_bounds(1000000, 1500000)
    writes.clear()
    assert p.set_frequency(2000000) == "minmax"  # raising: max first
    assert writes == ["scaling_max_freq", "scaling_min_freq"]
    writes.clear()
    p.set_frequency(900000)  # lowering: min first
    assert writes == ["scaling_min_freq", "scaling_max_freq"]
    assert (p.min_freq_khz, p.max_freq_khz) == (900000, 900000)
    assert p.governor == "powersave"  # pinning leaves the governor alone


def test_unavailable_frequency_rejected_before_any_write(tmp_path):
    make_odroid_xu3(tmp_path)
    p = list_policies(tmp_path)[0]
    with pytest.raises(ConfigError, match="available: 200000"):
        p.set_frequency(1500000)
    assert get(tmp_path, f"{P0}/scaling_governor") == "ondemand"
    make_policy(tmp_path, 8, (8,), None, "performance powersave", "powersave")
    with pytest.raises(ConfigError, match="outside"):
        list_policies(tmp_path)[-1].set_frequency(100)


def test_apply_restores_saved_state(tmp_path):
    make_odroid_xu3(tmp_path)
    p = list_policies(tmp_path)[1]
    saved = p.state()
    p.set_frequency(600000)
    p._write_bounds(600000, 600000)
    p.apply(saved)
    now = p.state()
    assert (now.governor, now.min_freq_khz, now.max_freq_khz) == (
        saved.governor,
        saved.min_freq_khz,
        saved.max_freq_khz,
    )  # setspeed means nothing outside userspace (the kernel shows "<unsupported>")
    assert get(tmp_path, f"{P4}/scaling_governor") == "ondemand"


def test_apply_restores_userspace_setspeed(tmp_path):
    make_odroid_xu3(tmp_path)
    p = list_policies(tmp_path)[0]
    p.set_frequency(1000000)
    saved = p.state()
    assert saved == PolicyState("userspace", 200000, 1400000, 1000000)
    p.set_frequency(200000)
    p.apply(saved)
    assert p.state() == saved
