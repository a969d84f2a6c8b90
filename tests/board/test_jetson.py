from __future__ import annotations

import time

import pytest

from dyndnn.board.dvfs import DvfsController
from dyndnn.board.errors import BoardError
from dyndnn.board.jetson import (
    HwmonVoltCurrentReader,
    IioPowerReader,
    Ina3221Meter,
    JetsonClocks,
    find_ina3221_rails,
    nvpmodel_query,
    nvpmodel_set,
    parse_tegrastats,
)

from .fakesys import fake_exe, make_ina3221_hwmon, make_ina3221_iio

NANO_OLD = (
    "RAM 1489/3956MB (lfb 93x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [11%@1479,4%@1479,off,3%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 PLL@24C "
    "CPU@26C PMIC@100C GPU@25C AO@33C thermal@25.5C POM_5V_IN 2070/2190 POM_5V_GPU 0/12 "
    "POM_5V_CPU 248/301"
)
ORIN_NEW = (
    "08-16-2023 10:48:02 RAM 2469/30593MB (lfb 6548x4MB) SWAP 0/15296MB (cached 0MB) "
    "CPU [1%@729,0%@729,2%@1190,0%@729,off,off,off,off] EMC_FREQ 0%@2133 "
    "GR3D_FREQ 7%@[305,306] VIC_FREQ 729 APE 174 CV0@-256C CPU@46.375C Tboard@34C "
    "tj@46.375C VDD_GPU_SOC 2390mW/2390mW VDD_CPU_CV 398mW/412mW VIN_SYS_5V0 2524mW/2524mW "
    "NC 0mW/0mW VDDQ_VDD2_1V8AO 303mW/303mW NC 0mW/0mW"
)


def test_tegrastats_old_format():
    s = parse_tegrastats(NANO_OLD)
    assert (s["ram_used_mb"], s["ram_total_mb"], s["swap_total_mb"]) == (1489, 3956, 1978)
    assert [c["online"] for c in s["cpu"]] == [True, True, False, True]
    assert s["cpu"][0] == {"online": True, "load_pct": 11, "freq_mhz": 1479}
    assert s["cpu"][2]["freq_mhz"] is None
    assert (s["emc_load_pct"], s["emc_freq_mhz"]) == (3, 1600)
    assert (s["gr3d_load_pct"], s["gr3d_freq_mhz"]) == (0, 921)
    assert s["temp_c"]["thermal"] == 25.5 and s["temp_c"]["PMIC"] == 100.0
    assert s["rail_power_mw"] == {
        "POM_5V_IN": {"cur_mw": 2070.0, "avg_mw": 2190.0},
        "POM_5V_GPU": {"cur_mw": 0.0, "avg_mw": 12.0},
        "POM_5V_CPU": {"cur_mw": 248.0, "avg_mw": 301.0},
    }  # RAM/SWAP/IRAM "x/y" pairs are not rails


def test_tegrastats_new_format():
    s = parse_tegrastats(ORIN_NEW)
    assert s["ram_used_mb"] == 2469
    assert len(s["cpu"]) == 8 and sum(c["online"] for c in s["cpu"]) == 4
    assert s["cpu"][2]["freq_mhz"] == 1190
    assert (s["gr3d_load_pct"], s["gr3d_freq_mhz"]) == (7, 306)
    assert s["temp_c"]["CV0"] == -256.0 and s["temp_c"]["CPU"] == 46.375
    assert set(s["rail_power_mw"]) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0",
                                       "VDDQ_VDD2_1V8AO"}  # fmt: skip
    assert s["rail_power_mw"]["VDD_CPU_CV"] == {"cur_mw": 398.0, "avg_mw": 412.0}


def test_nano_iio_layout_total_is_input_rail(tmp_path):
    rails = {"POM_5V_IN": 4000, "POM_5V_GPU": 1000, "POM_5V_CPU": 2000}  # mW
    make_ina3221_iio(tmp_path, "6-0040", rails)
    layout, readers = find_ina3221_rails(tmp_path)
    assert layout == "iio"
    assert all(isinstance(r, IioPowerReader) for r in readers)
    assert [round(r.power_w(), 3) for r in readers] == [4.0, 1.0, 2.0]
    meter = Ina3221Meter(tmp_path, poll_period_s=0.005)
    assert meter.name == "ina3221-iio" and meter.total_rail == "POM_5V_IN"
    meter.start()
    time.sleep(0.02)
    m = meter.stop()
    assert m.energy_j == pytest.approx(4.0 * m.duration_s, rel=1e-6)  # not 7 W: no double count
    assert m.rail_energy_j["POM_5V_GPU"] == pytest.approx(1.0 * m.duration_s, rel=1e-6)


def test_orin_hwmon_layout_v_times_i_skips_nc_and_in7(tmp_path):
    make_ina3221_hwmon(tmp_path, "1-0040", "hwmon3", {
        1: ("VDD_GPU_SOC", 5000, 400), 2: ("VDD_CPU_CV", 5000, 100), 3: ("VIN_SYS_5V0", 5000, 500)
    })  # fmt: skip
    make_ina3221_hwmon(tmp_path, "1-0041", "hwmon4", {
        1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 5000, 60), 3: ("NC", 0, 0)
    })  # fmt: skip
    layout, readers = find_ina3221_rails(tmp_path)
    assert layout == "hwmon"
    assert all(isinstance(r, HwmonVoltCurrentReader) for r in readers)
    assert [r.rail for r in readers] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0",
                                         "VDDQ_VDD2_1V8AO"]  # fmt: skip
    assert readers[0].power_w() == pytest.approx(2.0)  # 5000 mV x 400 mA = 2 W
    meter = Ina3221Meter(tmp_path, poll_period_s=0.005)
    assert meter.total_rail is None
    assert meter.update_period_s == pytest.approx(0.010)  # update_interval is in ms
    meter.start()
    time.sleep(0.02)
    m = meter.stop()
    assert m.energy_j == pytest.approx((2.0 + 0.5 + 2.5 + 0.3) * m.duration_s, rel=1e-6)


def test_xavier_nx_total_is_vdd_in(tmp_path):
    make_ina3221_hwmon(tmp_path, "7-0040", "hwmon0", {
        1: ("VDD_IN", 5000, 1000), 2: ("VDD_CPU_GPU_CV", 5000, 300), 3: ("VDD_SOC", 5000, 200)
    })  # fmt: skip
    meter = Ina3221Meter(tmp_path)
    assert meter.total_rail == "VDD_IN"
    assert meter.total_power_w(meter.read_power_w()) == pytest.approx(5.0)


def test_rail_file_vanishing_is_named(tmp_path):
    make_ina3221_iio(tmp_path, "6-0040", {"POM_5V_IN": 4000, "POM_5V_GPU": 1000})
    meter = Ina3221Meter(tmp_path, poll_period_s=0.002)
    meter.start()
    gone = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power1_input"
    gone.unlink()
    with pytest.raises(BoardError, match="in_power1_input"):
        meter.stop()


NVPMODEL = """
state="$(dirname "$0")/mode"
[ -f "$state" ] || echo 0 > "$state"
case "$1" in
  -q) echo "NV Fan Mode:quiet"; echo "NV Power Mode: MODE_$(cat "$state")"; cat "$state";;
  -m) echo "$2" > "$state";;
  *) exit 2;;
esac
"""
JETSON_CLOCKS = """
log="$(dirname "$0")/calls"
echo "$*" >> "$log"
case "$1" in
  --store) echo "saved clocks" > "$2";;
  --restore) [ -f "$2" ] || exit 1;;
esac
"""


@pytest.fixture
def l4t_tools(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    fake_exe(bindir, "nvpmodel", NVPMODEL)
    fake_exe(bindir, "jetson_clocks", JETSON_CLOCKS)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return bindir


def test_nvpmodel(l4t_tools):
    assert nvpmodel_query() == (0, "MODE_0")
    nvpmodel_set(2)
    assert nvpmodel_query() == (2, "MODE_2")


def test_jetson_clocks_store_and_restore(l4t_tools, tmp_path):
    jc = JetsonClocks(tmp_path / "clocks.conf")
    jc.store()
    assert (tmp_path / "clocks.conf").exists()
    jc.maximise()
    jc.restore()
    calls = (l4t_tools / "calls").read_text().splitlines()
    assert calls == [f"--store {tmp_path}/clocks.conf", "", f"--restore {tmp_path}/clocks.conf"]
    with pytest.raises(BoardError, match="missing"):
        JetsonClocks(tmp_path / "nothing.conf").restore()


def test_missing_tool_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BoardError, match="nvpmodel not found on PATH"):
        nvpmodel_query()


def test_failing_tool_reports_its_output(tmp_path, monkeypatch):
    fake_exe(tmp_path / "bin", "nvpmodel", 'echo "NVPM ERROR: needs root" >&2; exit 1\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(BoardError, match="needs root"):
        nvpmodel_set(1)


def test_controller_stores_and_restores_jetson_state(l4t_tools, tmp_path):
    rec = tmp_path / "rec.json"
    with DvfsController(tmp_path, rec, jetson_clocks=True) as dvfs:
        dvfs.set_power_mode(3)
        assert nvpmodel_query()[0] == 3
        assert '"nvpmodel_mode": 0' in rec.read_text()  # saved before the switch
    assert nvpmodel_query()[0] == 0
    calls = (l4t_tools / "calls").read_text().splitlines()
    assert calls[0].startswith("--store") and calls[-1].startswith("--restore")
    assert not rec.exists()
