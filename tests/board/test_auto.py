from __future__ import annotations

import logging

import pytest

from dyndnn.board.auto import auto_meter, make_meter
from dyndnn.board.errors import BoardError

from .fakesys import make_ina231, make_ina3221_iio, make_rapl


def test_falls_back_to_modelled_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="dyndnn.board.auto"):
        meter = auto_meter(tmp_path)
    assert meter.name == "modelled-cpu" and meter.provenance == "modelled"
    assert "no INA231" in caplog.text and "energy will be modelled" in caplog.text


def test_order_rapl_then_boards(tmp_path):
    make_ina231(tmp_path, {"3-0040": 1.0})
    assert auto_meter(tmp_path).name == "ina231"
    make_rapl(tmp_path, {"intel-rapl:0": ("package-0", 0, 10**9)})
    assert auto_meter(tmp_path).name == "rapl"


def test_unreadable_rapl_is_skipped(tmp_path, as_non_root, caplog):
    files = make_rapl(tmp_path, {"intel-rapl:0": ("package-0", 0, 10**9)})
    files["intel-rapl:0"].chmod(0o000)
    make_ina3221_iio(tmp_path, "6-0040", {"POM_5V_IN": 1000})
    with caplog.at_level(logging.INFO, logger="dyndnn.board.auto"):
        assert auto_meter(tmp_path).name == "ina3221-iio"
    assert "CVE-2020-8694" in caplog.text


def test_make_meter_by_name(tmp_path):
    assert make_meter("modelled", tmp_path).provenance == "modelled"
    # the CPU power model says nothing of a GPU: asked for one, it records no energy, and why
    gpu = make_meter("modelled", tmp_path, device="cuda:0")
    assert gpu.provenance == "none" and "models CPUs only" in gpu.reason
    with pytest.raises(BoardError, match="no RAPL"):
        make_meter("rapl", tmp_path)
    with pytest.raises(BoardError, match="unknown meter"):
        make_meter("thermometer", tmp_path)
