"""What the explorer shows, as pure functions: the choice, its text, its plot, slider ranges.

``dyndnn.views.explorer`` wires these to widgets; here they are tested without a browser. Latency
and energy are per batch (one forward pass of ``batch`` images, as the profiler measures
them), with the per-image value beside them; every quantity says where it comes from.

>>> import pandas as pd
>>> points = pd.DataFrame({"board": "vm", "model": "m", "batch": [1, 1, 64, 64],
...                        "backend": "eager", "mapping": "cpu[0]x1",
...                        "freq_label": "clocks as set", "groups": [1, 2, 1, 2],
...                        "latency_s": [0.001, 0.002, 0.010, 0.020],
...                        "energy_j": [0.003, 0.006, 0.03, 0.06], "power_w": 3.0,
...                        "accuracy": [0.85, 0.87] * 2, "energy_provenance": "modelled",
...                        "energy_source": "CPU power model: f V^2 (assumed)"})
>>> view = explore(points, batch=64, latency_s=0.015)
>>> view.choice.point["groups"], render_text(view).split("; ")[-1]
(1, 'latency 156 µs per image')
>>> [round(x, 4) for x in slider_ranges(view.points)["latency_s"]]
[0.01, 0.02]
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import energy_note, point_label, select
from dyndnn.runtime import UPPER, Choice, choose, describe_point
from dyndnn.views.axes import CLOCK, eng_scale, short_source
from dyndnn.views.tradeoff import mapping_colours, plot_tradeoff

ALL = "all mappings"
ALL_BACKENDS = "all backends"
SLIDER_COLUMNS = ("latency_s", "energy_j", "power_w", "accuracy")
ACCURACY_SOURCE = "test split"


@dataclass(frozen=True)
class ExplorerView:
    """What the explorer shows for one set of picker and slider values."""

    points: pd.DataFrame  # the points on the plot (board, batch, mapping and backend applied)
    choice: Choice
    board: str
    batch: int
    mapping: str | None  # None: all mappings
    note: str  # where the energy comes from (modelled or measured)
    backend: str | None = None  # None: all backends
    # one colour per (mapping, backend) of every point, so a colour keeps its meaning
    colours: dict[str, Any] | None = None


def shown_points(points: pd.DataFrame, board: str | None = None, batch: int | None = None,
                 mapping: str | None = None, backend: str | None = None
                 ) -> tuple[pd.DataFrame, str, int, str | None, str | None]:
    """The points of a board and batch, one mapping or all, one backend or all.

    ``board``/``batch`` None take the first one; ``"all mappings"``/``"all backends"`` are
    None. Returns the points and the board, batch, mapping and backend they are of.
    """
    board = board if board is not None else sorted(points["board"].unique())[0]
    on_board = select(points, board=board)
    batch = int(batch if batch is not None else sorted(on_board["batch"].unique())[0])
    mapping = None if mapping in (None, ALL) else mapping
    backend = None if backend in (None, ALL_BACKENDS) else backend
    return select(on_board, batch=batch, mapping=mapping, backend=backend), board, batch, \
        mapping, backend


def explore(points: pd.DataFrame, board: str | None = None, batch: int | None = None,
            mapping: str | None = None, backend: str | None = None,
            latency_s: float | None = None, energy_j: float | None = None,
            power_w: float | None = None, min_accuracy: float | None = None) -> ExplorerView:
    """Choose the best point of a board and batch (one mapping or all, one backend or all).

    ``board``/``batch`` None take the first one; ``mapping`` None or ``"all mappings"`` lets
    the choice range over every mapping, ``backend`` None or ``"all backends"`` over every
    engine. Nothing meeting the budgets is a valid answer: the view's ``choice`` then names
    the closest point (see ``runtime.choose``). Budgets are per batch, as the points are.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"board": "vm", "model": "m", "batch": 1, "backend": "eager",
    ...                        "freq_label": "clocks as set", "groups": [1, 2, 1, 2],
    ...                        "mapping": ["cpu[0]x1", "cpu[0]x1", "cpu[0-1]x2", "cpu[0-1]x2"],
    ...                        "latency_s": [0.002, 0.004, 0.0012, 0.0022],
    ...                        "energy_j": [0.006, 0.012, 0.005, 0.009],
    ...                        "accuracy": [0.80, 0.88] * 2})
    >>> view = explore(points, batch=1, latency_s=0.003)        # over every mapping
    >>> view.choice.met, view.choice.point["mapping"], view.choice.point["groups"]
    (True, 'cpu[0-1]x2', 2)
    >>> explore(points, mapping="cpu[0]x1", latency_s=0.003).choice.point["groups"]
    1
    """
    shown, board, batch, mapping, backend = shown_points(points, board, batch, mapping, backend)
    choice = choose(shown, latency_s, energy_j, power_w, min_accuracy)
    note = energy_note(shown) if len(shown) else ""
    return ExplorerView(shown, choice, board, batch, mapping, note, backend,
                        mapping_colours(points))


def slider_ranges(points: pd.DataFrame) -> dict[str, tuple[float, float] | None]:
    """The smallest and largest value of each slider's column over ``points`` (None: none).

    Only positive, finite values count: a NaN energy (no sensor) gives None, and the energy
    slider has nothing to range over.

    >>> slider_ranges(pd.DataFrame({"latency_s": [0.002, 0.001], "energy_j": float("nan"),
    ...                             "power_w": 3.0, "accuracy": [0.85, 0.87]}))
    {'latency_s': (0.001, 0.002), 'energy_j': None, 'power_w': (3.0, 3.0), 'accuracy': (0.85, 0.87)}
    """
    out: dict[str, tuple[float, float] | None] = {}
    for column in SLIDER_COLUMNS:
        values = pd.to_numeric(points[column], errors="coerce") if column in points else \
            pd.Series(dtype=float)
        values = values[values.notna() & (values > 0) & (values < math.inf)]
        out[column] = (float(values.min()), float(values.max())) if len(values) else None
    return out


def energy_provenance_of(point: dict[str, Any]) -> tuple[str, str]:
    """``(provenance, source)`` of a point's energy and power.

    From the old ``modelled`` bool (and ``meter``) where the table predates the columns.

    >>> energy_provenance_of({"modelled": True, "meter": "modelled-cpu"})
    ('modelled', 'modelled-cpu')
    >>> energy_provenance_of({"energy_provenance": "measured", "energy_source": "rapl"})
    ('measured', 'rapl')
    """
    kind = point.get("energy_provenance")
    if not isinstance(kind, str) or not kind:
        modelled = point.get("modelled")
        kind = "modelled" if modelled is True or str(modelled).lower() == "true" else "measured"
    source = point.get("energy_source")
    if not isinstance(source, str) or not source:
        source = str(point.get("meter") or "unknown")
    return kind, short_source(source)


def provenance_text(kind: str, source: str) -> str:
    """``measured (meter: rapl)``, ``<b>MODELLED</b> (model: CPU power model)``, HTML."""
    if kind == "measured":
        return f"measured (meter: {html.escape(source)})"
    word = "model" if kind == "modelled" else "source"
    return f"<b>{html.escape(kind.upper())}</b> ({word}: {html.escape(source)})"


def eng(value: float | None, unit: str) -> str:
    """A value in engineering units: ``eng(0.0012, "s")`` is ``'1.2 ms'``; NaN is ``n/a``."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    scale, shown = eng_scale([value], unit)
    return f"{float(value) * scale:.3g} {shown}"


def _fmt(point: dict[str, Any], name: str) -> str:
    label, scale, unit = UPPER[name]
    value = point.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    low, high = point.get(f"{name}_min"), point.get(f"{name}_max")
    spread = ""
    if low is not None and high is not None and high > low:
        spread = f" (repeats {low * scale:.3g} to {high * scale:.3g})"
    return f"{value * scale:.3g} {unit}{spread}"


def render_html(view: ExplorerView) -> str:
    """The status text: the chosen point's configuration, mapping, backend, clock, predictions.

    Latency and energy per batch, with the per-image value beside; every quantity names its
    provenance (energy *MODELLED* where it is, and by which model); an impossible budget
    gives the closest point and how much it misses by, in red.

    >>> import pandas as pd
    >>> from dyndnn.analysis import join_tables, operating_points
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
    ...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
    ...                         "power_w": 3.0, "meter": "modelled-cpu",
    ...                         "energy_provenance": "modelled",
    ...                         "energy_source": "CPU power model"})
    >>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88]})
    >>> points = operating_points(join_tables(evaluation, profile))
    >>> text = render_html(explore(points, latency_s=0.003))
    >>> "k = 1 active groups (m)" in text, "<b>MODELLED</b> (model: CPU power model)" in text
    (True, True)
    """
    choice = view.choice
    if choice.point is None:
        return f"<p style='color:#b00'><b>{html.escape(choice.message)}</b></p>"
    p = choice.point
    batch = int(p["batch"])
    kind, source = energy_provenance_of(p)
    if kind == "none":
        energy = power = f"not recorded ({html.escape(str(p.get('energy_note', '')))})"
        energy_image = "n/a"
    else:
        energy = f"{_fmt(p, 'energy_j')}; {provenance_text(kind, source)}"
        power = f"{_fmt(p, 'power_w')}; {provenance_text(kind, source)}"
        energy_image = f"{eng(p.get('energy_j', math.nan) / batch, 'J')}; {kind}"
    rows = [("configuration", f"k = {int(p['groups'])} active groups ({p['model']})"),
            ("mapping", html.escape(str(p["mapping"]))),
            ("backend", html.escape(str(p.get("backend", "n/a")))),
            ("frequency", html.escape(str(p["freq_label"]))),
            ("batch", str(batch)),
            ("predicted accuracy", f"{p['accuracy']:.4f} ({ACCURACY_SOURCE})"),
            (f"latency per batch of {batch}", f"{_fmt(p, 'latency_s')}; {CLOCK}"),
            ("latency per image", f"{eng(p['latency_s'] / batch, 's')} (per batch / {batch})"),
            (f"energy per batch of {batch}", energy),
            ("energy per image", energy_image),
            ("average power", power)]
    table = "".join(f"<tr><td style='text-align:left'>{k}</td>"
                    f"<td style='text-align:left'>{v}</td></tr>" for k, v in rows)
    if choice.met and not choice.budget.limits():
        head = (f"<p><b>Chosen:</b> {html.escape(point_label(p))} (no budget set: the most "
                f"accurate of {choice.total} points)</p>")
    elif choice.met:
        head = (f"<p><b>Chosen:</b> {html.escape(point_label(p))} "
                f"({choice.feasible} of {choice.total} points meet "
                f"{html.escape(choice.budget.describe())}; the most accurate of them)</p>")
    else:
        misses = "; ".join(m.describe() for m in choice.misses)
        head = (f"<p style='color:#b00'><b>No operating point meets "
                f"{html.escape(choice.budget.describe())}.</b> Closest: "
                f"{html.escape(point_label(p))}: {html.escape(misses)}.</p>")
    # the widget's own line height (a control's, 28 px) would spread the table out
    return (f"<div style='line-height:1.4'>{head}<table>{table}</table>"
            f"<p><i>{html.escape(view.note)}</i></p></div>")


def render_text(view: ExplorerView) -> str:
    """The same as ``render_html`` in one plain line (for logs and batch runs)."""
    choice = view.choice
    if choice.point is None or not choice.met:
        return choice.message
    p = choice.point
    return (f"chosen: {describe_point(p)}; latency {eng(p['latency_s'] / int(p['batch']), 's')}"
            " per image")


def draw(view: ExplorerView) -> plt.Figure:
    r"""Accuracy against latency and energy per batch, the chosen (or closest) point ringed.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"board": "vm", "model": "m", "batch": 1, "backend": "eager",
    ...                        "freq_label": "clocks as set", "groups": [1, 2, 1, 2],
    ...                        "mapping": ["cpu[0]x1", "cpu[0]x1", "cpu[0-1]x2", "cpu[0-1]x2"],
    ...                        "latency_s": [0.002, 0.004, 0.0012, 0.0022],
    ...                        "energy_j": [0.006, 0.012, 0.005, 0.009],
    ...                        "accuracy": [0.80, 0.88] * 2, "modelled": True})
    >>> fig = draw(explore(points, latency_s=0.003))
    >>> fig.get_suptitle().split("\n")  # doctest: +NORMALIZE_WHITESPACE
    ['vm, batch 1, all mappings, all backends',
     'latency measured by a clock; energy MODELLED by unknown']
    >>> [ax.get_xlabel() for ax in fig.axes]  # doctest: +NORMALIZE_WHITESPACE
    ['latency per batch of 1 [ms]; measured (clock)',
     'energy per batch of 1 [mJ]; MODELLED (model: unknown)']
    """
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))  # about a notebook's width at 100 dpi
    choice = view.choice
    label = "chosen" if choice.met else "closest (misses the budget)"
    budget = choice.budget
    for ax, metric in zip(axes, ("latency_s", "energy_j"), strict=True):
        if view.points.empty:
            ax.text(0.5, 0.5, choice.message, ha="center", va="center", wrap=True,
                    transform=ax.transAxes)
            continue
        plot_tradeoff(ax, view.points, metric, highlight=choice.point, highlight_label=label,
                      legend=metric == "energy_j", budget=getattr(budget, metric),
                      min_accuracy=budget.min_accuracy, colours=view.colours)
        ax.xaxis.label.set_fontsize(9)
        if metric == "energy_j" and ax.get_legend() is not None:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    where = f"{view.mapping or ALL}, {view.backend or ALL_BACKENDS}"
    fig.suptitle(f"{view.board}, batch {view.batch}, {where}\nlatency measured by a clock; "
                 f"{view.note}", fontsize=10)
    fig.tight_layout()
    return fig
