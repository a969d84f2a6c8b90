from __future__ import annotations

from pathlib import Path

from dyndnn.board.discovery import core_types, discover

from .fakesys import make_devfreq, make_ina3221_iio, make_odroid_xu3, make_policy, put


def test_odroid_clusters_core_types_and_sensors(tmp_path):
    make_odroid_xu3(tmp_path)
    p = discover(tmp_path, probe_cuda=False, probe_nvml=False)
    assert p.board == "Hardkernel Odroid XU3"
    assert p.cpus == tuple(range(8))
    assert [(c.policy, c.cpus, c.core_type) for c in p.clusters] == [
        ("policy0", (0, 1, 2, 3), "Cortex-A7"),
        ("policy4", (4, 5, 6, 7), "Cortex-A15"),
    ]
    a15 = p.clusters[1]
    assert a15.available_frequencies_khz[-1] == 2000000
    assert a15.method == "userspace"
    assert "userspace" in a15.available_governors
    assert {s.name for s in p.sensors if s.kind == "ina231"} == {"A15", "A7", "mem", "GPU"}
    assert p.can_set_cpu_freq  # files are writable in tmp_path


def test_permissions_reported(tmp_path, as_non_root):
    make_odroid_xu3(tmp_path)
    Path(tmp_path, "sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq").chmod(0o444)
    Path(tmp_path, "sys/bus/i2c/drivers/INA231/3-0045/sensor_W").chmod(0o000)
    p = discover(tmp_path, probe_cuda=False, probe_nvml=False)
    assert [c.writable for c in p.clusters] == [True, False]
    assert not p.can_set_cpu_freq
    a7 = next(s for s in p.sensors if s.name == "A7")
    assert not a7.readable
    assert all(s.readable for s in p.sensors if s.name != "A7")


def test_jetson_nano_like(tmp_path):
    make_policy(tmp_path, 0, (0, 1, 2, 3), (102000, 1479000), governor="schedutil")
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd07\n")
    make_devfreq(tmp_path, "/sys/devices/57000000.gpu/devfreq/57000000.gpu", (76800000,), "x")
    make_ina3221_iio(tmp_path, "6-0040", {"POM_5V_IN": 2000, "POM_5V_GPU": 100, "POM_5V_CPU": 300})
    p = discover(tmp_path, probe_cuda=False, probe_nvml=False)
    assert p.clusters[0].core_type == "Cortex-A57"  # only cpu0 listed: best effort
    assert [g.name for g in p.gpus if g.kind == "devfreq"] == ["57000000.gpu"]
    assert [s.name for s in p.sensors] == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert {s.kind for s in p.sensors} == {"ina3221-iio"}
    df = p.summary()
    assert list(df.columns) == ["kind", "name", "detail", "readable", "writable"]
    assert (df["kind"] == "gpu-devfreq").sum() == 1
    assert "Cortex-A57" in str(p)


def test_x86_model_name_and_nothing_found(tmp_path):
    put(tmp_path, "/proc/cpuinfo", "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R)\n")  # fmt: skip
    assert core_types(tmp_path) == {0: "Intel(R) Xeon(R)", 1: "Intel(R) Xeon(R)"}
    p = discover(tmp_path, probe_cuda=False, probe_nvml=False)
    assert p.clusters == () and p.sensors == () and p.gpus == ()
    details = " ".join(p.summary()["detail"])
    assert "no cpufreq" in details and "no power sensor" in details


def test_this_machine():
    """Whatever this host has, discovery reports it without raising."""
    p = discover()
    policies = list(Path("/sys/devices/system/cpu/cpufreq").glob("policy*"))
    assert len(p.clusters) == len(policies)
    assert len(p.cpus) >= 1
    assert len(p.summary()) >= 4
