"""Axis labels and ticks a reader can quote: per batch, in engineering units, with provenance.

Every axis of a figure says what its number is per (a batch of ``b`` images, not one image),
its unit scaled to the data (ms, mJ), and where the number comes from: latency is *measured*
by a clock; energy and power are *measured* by a meter or *MODELLED* by a model of the
hardware, as the table's ``energy_provenance`` and ``energy_source`` say (tables older than
those columns say it with a boolean ``modelled``).

>>> import pandas as pd
>>> points = pd.DataFrame({"batch": 64, "latency_s": [0.012, 0.019],
...                        "energy_j": [0.036, 0.058], "energy_provenance": "modelled",
...                        "energy_source": "CPU power model: f V^2 (assumed)"})
>>> eng_scale(points["latency_s"], "s")
(1000.0, 'ms')
>>> metric_label("latency_s", points, "ms")
'latency per batch of 64 [ms]; measured (clock)'
>>> metric_label("energy_j", points, "mJ")
'energy per batch of 64 [mJ]; MODELLED (model: CPU power model)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axis import Axis

from dyndnn.analysis.tidy import distinct_joined, with_provenance

# (what one unit of the value is worth in the shown unit, the prefix); largest first
_PREFIXES = ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n"))
UNITS = {"latency_s": "s", "energy_j": "J", "power_w": "W", "latency_per_image_s": "s"}
QUANTITY = {"latency_s": "latency", "energy_j": "energy", "power_w": "average power",
            "latency_per_image_s": "latency"}
CLOCK = "measured (clock)"


def eng_scale(values: Iterable[float], unit: str) -> tuple[float, str]:
    """The factor and unit that put the largest value between 1 and 1000 (s -> ms, us, ns).

    Power stays in watts (a board draws watts, never kilowatts here).

    >>> eng_scale([2.5e-4, 3.1e-4], "s"), eng_scale([3.0, 4.9], "W"), eng_scale([], "J")
    ((1000000.0, 'µs'), (1.0, 'W'), (1.0, 'J'))
    >>> eng_scale([4e-4, 1.4e-3], "J")
    (1000.0, 'mJ')
    """
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))
              and float(v) != 0]
    if not finite or unit == "W":
        return 1.0, unit
    # the largest value decides: ticks then stay under 1000 of the unit (no "1e+03")
    largest = max(finite)
    for scale, prefix in _PREFIXES:
        if largest * scale >= 1:
            return scale, prefix + unit
    scale, prefix = _PREFIXES[-1]
    return scale, prefix + unit


def plain(number: float) -> str:
    """Three significant digits, never in exponent form (a tick label, not a table cell).

    >>> plain(1000.0), plain(0.25), plain(12.5), plain(0.0004)
    ('1000', '0.25', '12.5', '0.0004')
    """
    text = f"{number:.3g}"
    if "e" in text:
        text = f"{number:.0f}" if abs(number) >= 1 else f"{number:.6f}".rstrip("0")
    return text


class FewLogTicks(ticker.Locator):
    """At most ``max_ticks`` ticks on a log axis, at 1, 2, 5 (or 1..9) x 10^n where they fit.

    matplotlib's ``LogLocator`` falls back to dense linear ticks on a range under a decade
    (0.000175, 0.0002, 0.000225, ...: labels on top of each other); this takes the sparsest
    of the 1 / 1-2-5 / 1..9 families with three ticks in view (a denser one only while it
    keeps to ``max_ticks``), and nice linear ticks where none has two.

    >>> FewLogTicks().tick_values(1.2e-3, 2.1e-3).tolist()
    [0.0012, 0.0014, 0.0016, 0.0018, 0.002]
    >>> FewLogTicks().tick_values(1e-4, 5e-2).tolist()
    [0.0001, 0.001, 0.01]
    >>> FewLogTicks().tick_values(7.5e-4, 1.95e-3).tolist()   # not only 0.8, 0.9, 1 (x 1e-3)
    [0.00075, 0.001, 0.00125, 0.0015, 0.00175]
    """

    def __init__(self, max_ticks: int = 6) -> None:
        self.max_ticks = max_ticks

    def __call__(self) -> list[float]:
        """The ticks of the axis' current view."""
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high).tolist()

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        """Ticks between ``vmin`` and ``vmax`` (positive; a log axis has nothing else)."""
        low, high = sorted((float(vmin), float(vmax)))
        if not (high > 0 and math.isfinite(high)):
            return np.array([])
        low = low if low > 0 else high / 10
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        best: list[float] = []
        # the sparsest family with three ticks in view; a denser one only while it stays few
        for subs in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            inside = [t for t in (float(f"{s}e{d}") for d in decades for s in subs)
                      if low <= t <= high]
            if len(inside) > self.max_ticks:
                break
            best = inside
            if len(inside) >= 3:
                break
        if len(best) >= 3 and _coverage(best, low, high) >= 0.5:
            return np.array(best)
        # under a decade, or ticks bunched at one end (0.8, 0.9, 1 for points to 2): nice
        # linear ticks read better
        linear = ticker.MaxNLocator(nbins=self.max_ticks - 1,
                                      steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
        linear = np.array([float(f"{t:.6g}") for t in linear if low <= t <= high])
        better = len(linear) >= 2 and (len(best) < 2 or
                                       _coverage(linear, low, high) > _coverage(best, low, high))
        return linear if better else np.array(best)


def _coverage(ticks: Iterable[float], low: float, high: float) -> float:
    """The share of a log view's span that lies between its outer ticks (0 to 1).

    >>> round(_coverage([0.8, 0.9, 1.0], 0.75, 1.95), 2)   # labels bunched at the low end
    0.23
    """
    ticks = [t for t in ticks if t > 0]
    if len(ticks) < 2 or high <= low:
        return 0.0
    return math.log(max(ticks) / min(ticks)) / math.log(high / low)

def set_unit_axis(axis: Axis, values: Iterable[float], unit: str, log: bool = True) -> str:
    """Ticks in the unit ``eng_scale`` picks for ``values``; returns that unit (e.g. ``ms``).

    On a log axis: ``FewLogTicks`` and no minor labels (they are what overlapped).
    """
    scale, shown = eng_scale(values, unit)
    if log:
        axis.set_major_locator(FewLogTicks())
        axis.set_minor_locator(ticker.NullLocator())
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: plain(v * scale)))
    axis.set_minor_formatter(ticker.NullFormatter())
    return shown


def short_source(source: str) -> str:
    """A sensor's or model's name without its explanation (before the first colon).

    >>> short_source("CPU power model: idle + busy cores x f V^2 (assumed parameters)")
    'CPU power model'
    """
    return str(source).split(":", 1)[0].strip()


def energy_provenance(table: pd.DataFrame) -> tuple[str, str]:
    """``(provenance, sources)`` of the energy (and power) of ``table``'s rows that have one.

    ``provenance`` joins the kinds with ``+`` where they mix ("measured+modelled"); rows with
    ``energy_provenance == "none"`` are left out (their energy is NaN), and only those give
    ``("none", "")``. A table with only the old ``modelled`` column says it through it.

    >>> energy_provenance(pd.DataFrame({"modelled": [True], "meter": ["modelled-cpu"]}))
    ('modelled', 'modelled-cpu')
    """
    if table.empty:
        return "none", ""
    frame = with_provenance(table.copy())
    shown = frame[frame["energy_provenance"] != "none"]
    if shown.empty:
        return "none", ""
    kinds = distinct_joined(shown["energy_provenance"])
    sources = ", ".join(sorted({short_source(s) for s in shown["energy_source"]}))
    return kinds, sources


def provenance_phrase(metric: str, table: pd.DataFrame) -> str:
    """Where ``metric``'s numbers come from, in the words of the axis.

    >>> provenance_phrase("energy_j", pd.DataFrame({"energy_provenance": ["measured"],
    ...                                               "energy_source": ["rapl"]}))
    'measured (meter: rapl)'
    """
    if metric in ("latency_s", "latency_per_image_s"):
        return CLOCK
    kinds, sources = energy_provenance(table)
    if kinds == "measured":
        return f"measured (meter: {sources})"
    if kinds == "none":
        return "NOT RECORDED (no sensor)"
    word = "model" if kinds == "modelled" else "source"
    return f"{kinds.upper()} ({word}: {sources})"


def per_batch(table: pd.DataFrame) -> str:
    """``per batch of 64`` where ``table`` holds one batch size, else ``per batch``."""
    batches = sorted(set(table["batch"])) if "batch" in table else []
    return f"per batch of {int(batches[0])}" if len(batches) == 1 else "per batch"


def metric_label(metric: str, table: pd.DataFrame, unit: str | None = None) -> str:
    """An axis label: quantity, per what, unit and provenance (see the module's example)."""
    unit = unit or UNITS.get(metric, "")
    name = QUANTITY.get(metric, metric)
    if metric == "latency_per_image_s":
        what = f"{name} per image"
    elif metric == "power_w":
        what = name
    else:
        what = f"{name} {per_batch(table)}"
    return f"{what} [{unit}]; {provenance_phrase(metric, table)}"


def label_metric_axis(axis: Axis, metric: str, table: pd.DataFrame, log: bool = True) -> None:
    """Ticks in engineering units and the ``metric_label`` of ``table``'s ``metric``.

    On a y axis the provenance goes on a second line: one line would run past the panel.
    """
    values = table[metric].dropna() if metric in table else []
    unit = set_unit_axis(axis, values, UNITS.get(metric, ""), log=log)
    label = metric_label(metric, table, unit)
    axis.set_label_text(label.replace("; ", "\n") if axis.axis_name == "y" else label)
