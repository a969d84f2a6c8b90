"""The interactive explorer: budgets on sliders, the chosen operating point on the trade-off plot.

The widgets only collect values; ``explore`` (pure) picks the point and ``render_html`` /
``draw`` show it, so what the explorer shows is tested without a browser.

>>> import pandas as pd
>>> from dyndnn.analysis import join_tables, operating_points
>>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
...                         "power_w": 3.0, "meter": "modelled-cpu", "modelled": True})
>>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88]})
>>> points = operating_points(join_tables(evaluation, profile))
>>> explorer = Explorer(points)          # in JupyterLab, explorer.widget shows it
>>> explorer.view.choice.point["groups"]  # every slider at its right end: no budget
2
>>> explorer.latency.value = 0.003       # what a user's drag does; the view follows
>>> explorer.view.choice.point["groups"], explorer.last_error
(1, None)

ipywidgets swallows exceptions raised in callbacks (it only logs them), so ``Explorer.update``
catches them itself: the error is kept in ``last_error`` and shown in the status text.
"""

from __future__ import annotations

import html
import io
import math
import traceback
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import point_label, select
from dyndnn.plots import energy_note, plot_tradeoff
from dyndnn.runtime import UPPER, Choice, choose, describe_point

ALL = "all mappings"
ALL_BACKENDS = "all backends"


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


def explore(points: pd.DataFrame, board: str | None = None, batch: int | None = None,
            mapping: str | None = None, backend: str | None = None,
            latency_s: float | None = None, energy_j: float | None = None,
            power_w: float | None = None, min_accuracy: float | None = None) -> ExplorerView:
    """Choose the best point of a board and batch (one mapping or all, one backend or all).

    ``board``/``batch`` None take the first one; ``mapping`` None or ``"all mappings"`` lets
    the choice range over every mapping, ``backend`` None or ``"all backends"`` over every
    engine. Nothing meeting the budgets is a valid answer: the view's ``choice`` then names
    the closest point (see ``runtime.choose``).

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
    board = board if board is not None else sorted(points["board"].unique())[0]
    on_board = select(points, board=board)
    batch = int(batch if batch is not None else sorted(on_board["batch"].unique())[0])
    mapping = None if mapping in (None, ALL) else mapping
    backend = None if backend in (None, ALL_BACKENDS) else backend
    shown = select(on_board, batch=batch, mapping=mapping, backend=backend)
    choice = choose(shown, latency_s, energy_j, power_w, min_accuracy)
    note = energy_note(shown) if len(shown) else ""
    return ExplorerView(shown, choice, board, batch, mapping, note, backend)


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

    Energy is labelled *modelled* where it is; an impossible budget gives the closest point
    and how much it misses by, in red.

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
    >>> "k = 1 active groups (m)" in text, "6 mJ <b>MODELLED</b> (CPU power model)" in text
    (True, True)
    """
    choice = view.choice
    if choice.point is None:
        return f"<p style='color:#b00'><b>{html.escape(choice.message)}</b></p>"
    p = choice.point
    provenance = str(p.get("energy_provenance", "measured"))
    if provenance == "measured":
        energy = f"{_fmt(p, 'energy_j')} measured ({html.escape(str(p.get('energy_source')))})"
    elif provenance == "none":
        energy = f"not recorded ({html.escape(str(p.get('energy_note', '')))})"
    else:
        energy = (f"{_fmt(p, 'energy_j')} <b>{provenance.upper()}</b> "
                  f"({html.escape(str(p.get('energy_source')))})")
    batch = int(p["batch"])
    rows = [("configuration", f"k = {int(p['groups'])} active groups ({p['model']})"),
            ("mapping", html.escape(str(p["mapping"]))),
            ("backend", html.escape(str(p.get("backend", "n/a")))),
            ("frequency", html.escape(str(p["freq_label"]))),
            ("batch", str(int(p["batch"]))),
            ("predicted accuracy", f"{p['accuracy']:.4f}"),
            (f"latency per batch of {batch} (measured)", _fmt(p, "latency_s")),
            ("latency per image", f"{p['latency_s'] / batch * 1e3:.3g} ms"),
            (f"energy per batch of {batch}", energy),
            ("average power", _fmt(p, "power_w"))]
    table = "".join(f"<tr><td style='text-align:left'>{k}</td>"
                    f"<td style='text-align:left'>{v}</td></tr>" for k, v in rows)
    if choice.met:
        head = (f"<p><b>Chosen:</b> {html.escape(point_label(p))} "
                f"({choice.feasible} of {choice.total} points meet "
                f"{html.escape(choice.budget.describe())}; the most accurate of them)</p>")
    else:
        misses = "; ".join(m.describe() for m in choice.misses)
        head = (f"<p style='color:#b00'><b>No operating point meets "
                f"{html.escape(choice.budget.describe())}.</b> Closest: "
                f"{html.escape(point_label(p))}: {html.escape(misses)}.</p>")
    return f"{head}<table>{table}</table><p><i>{html.escape(view.note)}</i></p>"


def render_text(view: ExplorerView) -> str:
    """The same as ``render_html`` in one plain line (for logs and batch runs)."""
    choice = view.choice
    if choice.point is None or not choice.met:
        return choice.message
    return f"chosen: {describe_point(choice.point)}"


def draw(view: ExplorerView) -> plt.Figure:
    """Accuracy against latency and energy, the chosen (or closest) point ringed in red.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"board": "vm", "model": "m", "batch": 1, "backend": "eager",
    ...                        "freq_label": "clocks as set", "groups": [1, 2, 1, 2],
    ...                        "mapping": ["cpu[0]x1", "cpu[0]x1", "cpu[0-1]x2", "cpu[0-1]x2"],
    ...                        "latency_s": [0.002, 0.004, 0.0012, 0.0022],
    ...                        "energy_j": [0.006, 0.012, 0.005, 0.009],
    ...                        "accuracy": [0.80, 0.88] * 2})
    >>> fig = draw(explore(points, latency_s=0.003))
    >>> fig.get_suptitle()
    'vm, batch 1, all mappings, all backends; energy measured by unknown'
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['latency per inference [s]', 'energy per inference [J]']
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
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
                      min_accuracy=budget.min_accuracy)
        if metric == "energy_j":
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    where = f"{view.mapping or ALL}, {view.backend or ALL_BACKENDS}"
    fig.suptitle(f"{view.board}, batch {view.batch}, {where}; {view.note}", fontsize=10)
    fig.tight_layout()
    return fig


class Explorer:
    """ipywidgets front end: pickers for board, batch, mapping, backend; budget sliders.

    A budget slider at its right end means "no budget". Every change calls ``update``, which
    runs ``explore``, fills ``status`` (HTML) and redraws the plot into ``image`` (PNG); the
    last view is ``view``, the last figure ``figure``, and an exception ``last_error``.

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
    >>> explorer = Explorer(points, plot=False)        # plot=False: no PNG in the image
    >>> explorer.min_accuracy.value = 0.9; explorer.view.choice.met   # no point reaches it
    False
    """

    def __init__(self, points: pd.DataFrame, plot: bool = True) -> None:
        import ipywidgets as w

        if points.empty:
            raise ValueError("no operating points to explore (run 04_analyse first)")
        self.points, self.plot = points, plot
        self.view: ExplorerView | None = None
        self.figure: plt.Figure | None = None
        self.last_error: BaseException | None = None
        self._syncing = False
        boards = sorted(points["board"].unique())
        self.board = w.Dropdown(options=boards, value=boards[0], description="board")
        self.batch = w.Dropdown(description="batch")
        self.mapping = w.Dropdown(description="mapping")
        self.backend = w.Dropdown(description="backend")
        self._sync_pickers()
        style = {"description_width": "initial"}
        layout = w.Layout(width="420px")
        self.latency = self._log_slider(w, "latency_s", "latency budget [s]", style, layout)
        self.energy = self._log_slider(w, "energy_j", "energy budget [J]", style, layout)
        self.power = self._log_slider(w, "power_w", "power budget [W]", style, layout)
        accuracy = points["accuracy"].dropna()
        low = max(0.0, float(accuracy.min()) - 0.05) if len(accuracy) else 0.0
        self.min_accuracy = w.FloatSlider(value=low, min=low, max=1.0, step=0.001,
                                          readout_format=".3f", continuous_update=False,
                                          description="minimum accuracy", style=style,
                                          layout=layout)
        self.status = w.HTML()
        # The plot is a PNG set from the kernel, not an Output widget: an Output widget relies on
        # the frontend capturing display messages, which nbclient (papermill) does with a race
        # that can hang a batch run (jupyter/nbconvert#2029, jupyter/nbclient#312).
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="1100px"))
        for widget in self.controls:
            widget.observe(self._on_change, names="value")
        self.widget = w.VBox([
            w.HBox([self.board, self.batch, self.mapping, self.backend]),
            w.HBox([self.latency, self.energy]), w.HBox([self.power, self.min_accuracy]),
            w.HTML("<small>a budget slider at its right end means no budget</small>"),
            self.status, self.image])  # fmt: skip
        self.update()

    def _log_slider(self, w: Any, column: str, text: str, style: dict, layout: Any) -> Any:
        """A log slider over the column's range (decades apart over k, mappings and batches).

        It starts at its right end, which means no budget.
        """
        values = self.points[column].dropna()
        values = values[values > 0]
        low, high = (float(values.min()), float(values.max())) if len(values) else (1e-3, 1.0)
        lo_exp, hi_exp = math.log10(low) - 0.3, math.log10(high) + 0.3
        return w.FloatLogSlider(value=10**hi_exp, min=lo_exp, max=hi_exp, step=0.01, base=10,
                                description=text, continuous_update=False,
                                readout_format=".3g", style=style, layout=layout)

    @property
    def controls(self) -> list[Any]:
        """Every widget whose value changes the view."""
        return [self.board, self.batch, self.mapping, self.backend, self.latency, self.energy,
                self.power, self.min_accuracy]

    def _sync_pickers(self) -> None:
        """Batch, mapping and backend options of the current board (kept if still offered)."""
        self._syncing = True  # option changes fire callbacks; one update follows instead
        try:
            part = select(self.points, board=self.board.value)
            for picker, offered in (
                    (self.batch, sorted(int(b) for b in part["batch"].unique())),
                    (self.mapping, [ALL, *sorted(part["mapping"].unique())]),
                    (self.backend, [ALL_BACKENDS, *sorted(part["backend"].unique())])):
                keep = picker.value
                picker.options = offered
                picker.value = keep if keep in offered else offered[0]
        finally:
            self._syncing = False

    def budgets(self) -> dict[str, float | None]:
        """Slider values as ``choose`` keywords; a slider at its maximum is no budget."""
        out: dict[str, float | None] = {}
        for name, slider in (("latency_s", self.latency), ("energy_j", self.energy),
                             ("power_w", self.power)):
            at_max = slider.value >= slider.base ** slider.max * (1 - 1e-9)
            out[name] = None if at_max else float(slider.value)
        out["min_accuracy"] = (None if self.min_accuracy.value <= self.min_accuracy.min
                               else float(self.min_accuracy.value))
        return out

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if change.get("owner") is self.board:
            self._sync_pickers()
        self.update()

    def update(self) -> ExplorerView | None:
        """Recompute and redraw from the current widget values; errors are kept, not lost."""
        try:
            view = explore(self.points, self.board.value, self.batch.value, self.mapping.value,
                           self.backend.value, **self.budgets())
            self.status.value = render_html(view)
            if self.plot:
                self._redraw(view)
            self.view, self.last_error = view, None
            return view
        except Exception as exc:  # ipywidgets would only log it: keep it and show it
            self.last_error = exc
            self.status.value = (
                "<pre style='color:#b00'>explorer error:\n"
                f"{html.escape(''.join(traceback.format_exception(exc)))}</pre>")
            return None

    def _redraw(self, view: ExplorerView) -> None:
        fig = draw(view)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)  # shown in the image widget only, not again at the end of the cell
        self.image.value = buffer.getvalue()
        self.figure = fig

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
