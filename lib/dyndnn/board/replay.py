"""Replay a recorded ``profile.csv`` through the meter interface (no hardware needed).

``ReplayMeter`` charges each window the mean power that the board recorded for one
configuration, so code downstream of a meter (windows, profiler, notebooks) runs on a laptop
with a board's figures. The energy is recorded power x this host's window: a replayed trace,
so its provenance is ``simulated`` and its meter ``replay:<the recorded meter>``.

Usage: ``ReplayMeter("outputs/odroid/profile.csv", groups=2, cores="4-7")``, then
``meter.start(); work(); meter.stop().power_w``. The rows may also be a DataFrame:

>>> import pandas as pd
>>> recorded = pd.DataFrame({"groups": [2, 2, 4], "cores": "4-7", "power_w": [3.0, 3.2, 5.0],
...                          "meter": "ina231", "meter_period_s": 0.2638})
>>> meter = ReplayMeter(recorded, groups=2, cores="4-7")
>>> meter.name, meter.power_w, meter.provenance
('replay:ina231', 3.1, 'simulated')
>>> meter.start(); m = meter.stop()
>>> round(m.power_w, 6), m.meter                     # the recorded mean, over this window
(3.1, 'replay:ina231')
"""

from __future__ import annotations

import os
from typing import Any

from dyndnn.board.errors import BoardError
from dyndnn.board.meter import Measurement, WallClockMeter


class ReplayMeter(WallClockMeter):
    """A meter that returns a recorded configuration's power over each window.

    ``select`` filters the rows (column = value, compared as text); they must agree on one
    meter. ``rows`` may be a DataFrame already loaded instead of a path.
    """

    provenance = "simulated"

    def __init__(self, profile: str | os.PathLike | Any, **select: Any) -> None:
        import pandas as pd

        df = profile if isinstance(profile, pd.DataFrame) else pd.read_csv(profile, dtype=str)
        df = df.astype(str)
        for column, value in select.items():
            if column not in df.columns:
                raise BoardError(f"replay: profile has no column {column!r}")
            df = df[df[column] == str(value)]
        if df.empty:
            raise BoardError(f"replay: no recorded row matches {select}")
        meters = sorted(set(df["meter"]))
        if len(meters) != 1:
            raise BoardError(f"replay: rows matching {select} mix meters {meters}; select one")
        self.power_w = float(df["power_w"].astype(float).mean())
        self.update_period_s = float(df["meter_period_s"].astype(float).iloc[0])
        self.name = f"replay:{meters[0]}"

    def stop(self) -> Measurement:
        """Recorded power x this window's duration."""
        duration_s = self._window_s()
        energy_j = self.power_w * duration_s
        return self._measurement(energy_j, duration_s, {"total": energy_j})
