from __future__ import annotations

import pytest

from dyndnn.board.errors import BoardPermissionError
from dyndnn.board.rapl import RaplMeter, find_rapl_zones

from .fakesys import make_rapl

RANGE_UJ = 262143328850


def zones(pkg_uj=1_000_000, core_uj=500_000, dram_uj=200_000):
    return {
        "intel-rapl:0": ("package-0", pkg_uj, RANGE_UJ),
        "intel-rapl:0:0": ("core", core_uj, RANGE_UJ),
        "intel-rapl:0:1": ("dram", dram_uj, RANGE_UJ),
    }


def test_zones_and_labels(tmp_path):
    make_rapl(tmp_path, zones())
    found = find_rapl_zones(tmp_path)
    assert [z.label for z in found] == ["package-0", "package-0/core", "package-0/dram"]
    assert [z.is_subzone for z in found] == [False, True, True]
    assert found[0].max_energy_range_uj == RANGE_UJ


def test_energy_difference_total_is_package_plus_dram(tmp_path):
    files = make_rapl(tmp_path, zones())
    meter = RaplMeter(tmp_path, poll_period_s=0)  # reads only at start/stop: we drive them
    meter.start()
    files["intel-rapl:0"].write_text(str(1_000_000 + 3_000_000))
    files["intel-rapl:0:0"].write_text(str(500_000 + 2_000_000))
    files["intel-rapl:0:1"].write_text(str(200_000 + 1_000_000))
    m = meter.stop()
    assert m.rail_energy_j == pytest.approx(
        {"package-0": 3.0, "package-0/core": 2.0, "package-0/dram": 1.0}
    )
    assert m.energy_j == pytest.approx(4.0)  # core is inside the package: not added again
    assert m.meter == "rapl" and m.provenance == "measured"


def test_wrap_around(tmp_path):
    rng = 1_000_000
    files = make_rapl(tmp_path, {"intel-rapl:0": ("package-0", rng - 100_000, rng)})
    meter = RaplMeter(tmp_path, poll_period_s=0)
    meter.start()
    files["intel-rapl:0"].write_text("50000")  # wrapped once
    meter.sample()
    files["intel-rapl:0"].write_text("900000")
    meter.sample()
    files["intel-rapl:0"].write_text("10000")  # and a second time, seen by a poll
    m = meter.stop()
    assert m.energy_j == pytest.approx((100_000 + rng + 10_000) / 1e6)


def test_poll_period_sized_from_wrap_range(tmp_path):
    make_rapl(tmp_path, {"intel-rapl:0": ("package-0", 0, 4_000_000)})  # 4 J range
    # at the assumed 1000 W bound a 4 J counter wraps in 4 ms: poll 4x as often
    assert RaplMeter(tmp_path).poll_period_s == pytest.approx(0.001)
    make_rapl(tmp_path, {"intel-rapl:0": ("package-0", 0, RANGE_UJ)})
    assert RaplMeter(tmp_path).poll_period_s == 1.0


def test_permission_error_explains_cve(tmp_path, as_non_root):
    files = make_rapl(tmp_path, zones())
    files["intel-rapl:0"].chmod(0o000)
    with pytest.raises(BoardPermissionError, match="CVE-2020-8694") as info:
        RaplMeter(tmp_path)
    assert "udev" in str(info.value) and "root" in str(info.value)
    assert info.value.path == files["intel-rapl:0"]
