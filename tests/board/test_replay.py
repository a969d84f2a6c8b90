from __future__ import annotations

import time

import pandas as pd
import pytest

from dyndnn.board.errors import BoardError
from dyndnn.board.replay import ReplayMeter


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "profile.csv"
    pd.DataFrame({
        "groups": [1, 1, 4, 4], "cores": ["4-7"] * 4, "power_w": [2.0, 4.0, 6.0, 6.0],
        "meter": ["ina231"] * 4, "meter_period_s": [0.2638] * 4, "modelled": [False] * 4,
    }).to_csv(path, index=False)  # fmt: skip
    return path


def test_replays_recorded_power(profile):
    meter = ReplayMeter(profile, groups=1, cores="4-7")
    assert meter.name == "replay:ina231" and meter.update_period_s == 0.2638
    meter.start()
    time.sleep(0.02)
    m = meter.stop()
    assert m.power_w == pytest.approx(3.0)
    assert m.provenance == "simulated" and m.meter == "replay:ina231"
    assert ReplayMeter(profile, groups=4).power_w == 6.0


def test_replay_selection_errors(profile):
    with pytest.raises(BoardError, match="no recorded row"):
        ReplayMeter(profile, groups=3)
    with pytest.raises(BoardError, match="no column"):
        ReplayMeter(profile, freq=1)
