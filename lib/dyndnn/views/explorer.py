"""The interactive explorer: budgets on sliders, the chosen operating point on the trade-off plot.

The widgets only collect values; ``explore`` (pure, in ``dyndnn.views.explorer_view``) picks the
point and ``render_html`` / ``draw`` show it, so what the explorer shows is tested without a
browser. Everything the widget shows follows it live: the status text (the choice, latency
and energy per batch and per image, each with its provenance), the plot, and each slider's
own readout ("none" at the end that means no budget). The sliders span the points of the
chosen board, batch, mapping and backend, and are rescaled whenever a picker changes.

>>> import pandas as pd
>>> from dyndnn.analysis import join_tables, operating_points
>>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
...                         "power_w": 3.0, "meter": "modelled-cpu", "modelled": True})
>>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88]})
>>> points = operating_points(join_tables(evaluation, profile))
>>> explorer = Explorer(points)          # in JupyterLab, explorer.widget shows it
>>> explorer.view.choice.point["groups"], explorer.readouts["latency_s"].value
(2, 'none')
>>> explorer.latency.value = 0.003       # what a user's drag does; the view follows
>>> explorer.view.choice.point["groups"], explorer.last_error
(1, None)
>>> explorer.readouts["latency_s"].value
'3 ms per batch of 1 (3 ms per image)'

ipywidgets swallows exceptions raised in callbacks (it only logs them), so ``Explorer.update``
catches them itself: the error is kept in ``last_error`` and shown in the status text.
"""

from __future__ import annotations

import html
import io
import math
import traceback
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import select
from dyndnn.runtime.budgets import accuracy_text
from dyndnn.views.explorer_view import (
    ALL,
    ALL_BACKENDS,
    ExplorerView,
    draw,
    eng,
    explore,
    render_html,
    render_text,
    shown_points,
    slider_ranges,
)

__all__ = ["ALL", "ALL_BACKENDS", "Explorer", "ExplorerView", "draw", "explore", "render_html",
           "render_text", "slider_ranges"]

NONE = "none"  # what a slider at its no-budget end reads
# log sliders: decades of room beyond the points (at least), and steps over the track
_PAD_DECADES, _STEPS = 0.04, 200
_UNITS = {"latency_s": "s", "energy_j": "J", "power_w": "W"}


class Explorer:
    """ipywidgets front end: pickers for board, batch, mapping, backend; budget sliders.

    A budget slider at its no-budget end (right for latency, energy, power; left for the
    minimum accuracy) means "no budget" and its readout says "none". Every change calls
    ``update``, which runs ``explore``, fills ``status`` (HTML) and redraws the plot into
    ``image`` (PNG); a picker's change first rescales the sliders to the points now shown.
    The last view is ``view``, the last figure ``figure``, and an exception ``last_error``.

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
    >>> explorer.min_accuracy.value = 0.88; explorer.view.choice.point["groups"]
    2
    >>> explorer.min_accuracy.value = explorer.min_accuracy.min; explorer.budgets()
    {'latency_s': None, 'energy_j': None, 'power_w': None, 'min_accuracy': None}
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
        # four pickers on one row of a notebook cell (about 850 px beside the prompt)
        picker = {"style": {"description_width": "60px"}, "layout": w.Layout(width="205px")}
        self.board = w.Dropdown(options=boards, value=boards[0], description="board", **picker)
        self.batch = w.Dropdown(description="batch", **picker)
        self.mapping = w.Dropdown(description="mapping", **picker)
        self.backend = w.Dropdown(description="backend", **picker)
        # the labels whole, a track long enough to aim with, the readout on one line beside
        style = {"description_width": "180px"}
        layout = w.Layout(width="480px")
        self.latency, self.energy, self.power = (
            w.FloatLogSlider(min=-3, max=0, value=1.0, base=10, description=text,
                             readout=False, continuous_update=False, style=style,
                             layout=layout)
            for text in ("latency budget per batch", "energy budget per batch",
                         "power budget"))  # fmt: skip
        self.min_accuracy = w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.001,
                                          readout=False, continuous_update=False,
                                          description="minimum accuracy", style=style,
                                          layout=layout)
        self.readouts = {name: w.HTML(layout=w.Layout(width="360px"))
                         for name in ("latency_s", "energy_j", "power_w", "min_accuracy")}
        self.status = w.HTML()
        # The plot is a PNG set from the kernel, not an Output widget: an Output widget relies on
        # the frontend capturing display messages, which nbclient (papermill) does with a race
        # that can hang a batch run (jupyter/nbconvert#2029, jupyter/nbclient#312).
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="1100px"))
        self._sync_pickers()
        for widget in self.controls:
            widget.observe(self._on_change, names="value")
        rows = [w.HBox([slider, self.readouts[name]]) for name, slider in self.sliders.items()]
        self.widget = w.VBox([
            w.HBox([self.board, self.batch, self.mapping, self.backend],
                   layout=w.Layout(flex_flow="row wrap")),
            *rows,
            w.HTML("<div style='line-height:1.4'><small>Budgets are per batch, as the points "
                   "are. Each slider spans the points of the chosen board, batch, mapping and "
                   "backend; at its end (right; left for accuracy) it reads <i>none</i>: no "
                   "budget.</small></div>"),
            self.status, self.image])  # fmt: skip
        self.update()

    @property
    def sliders(self) -> dict[str, Any]:
        """The budget sliders by the budget they set."""
        return {"latency_s": self.latency, "energy_j": self.energy, "power_w": self.power,
                "min_accuracy": self.min_accuracy}

    @property
    def controls(self) -> list[Any]:
        """Every widget whose value changes the view."""
        return [self.board, self.batch, self.mapping, self.backend, *self.sliders.values()]

    def _sync_pickers(self) -> None:
        """Batch, mapping and backend options of the current board (kept if still offered).

        Then the sliders are rescaled to the points those pickers show.
        """
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
            self._rescale()
        finally:
            self._syncing = False

    def _rescale(self) -> None:
        """Every slider spans the shown points; a budget outside the new span becomes none.

        A budget kept across a change of batch would be another quantity (per batch of 1 is
        not per batch of 64), so only a budget still inside the new span is kept.
        """
        shown = shown_points(self.points, self.board.value, self.batch.value,
                             self.mapping.value, self.backend.value)[0]
        if shown.empty:  # nothing to span: the status says so, the sliders stay as they were
            return
        ranges = slider_ranges(shown)
        for name, slider in self.sliders.items():
            span = ranges["accuracy" if name == "min_accuracy" else name]
            kept = self.budgets().get(name)
            slider.disabled = span is None
            if span is None:
                continue
            with slider.hold_trait_notifications():
                if name == "min_accuracy":
                    low, high = span
                    pad = max((high - low) * 0.05, 0.001)
                    slider.min, slider.max = max(0.0, low - pad), min(1.0, high)
                    slider.step = max((slider.max - slider.min) / _STEPS, 1e-5)
                    inside = kept is not None and slider.min < kept <= slider.max
                    slider.value = kept if inside else slider.min
                else:
                    lo, hi = (math.log10(v) for v in span)
                    pad = max((hi - lo) * 0.05, _PAD_DECADES)
                    slider.min, slider.max = lo - pad, hi + pad
                    slider.step = (slider.max - slider.min) / _STEPS
                    inside = kept is not None and 10**slider.min <= kept < 10**slider.max
                    slider.value = kept if inside else 10**slider.max

    def budgets(self) -> dict[str, float | None]:
        """Slider values as ``choose`` keywords; a slider at its no-budget end is None."""
        out: dict[str, float | None] = {}
        for name in ("latency_s", "energy_j", "power_w"):
            slider = self.sliders[name]
            at_end = slider.disabled or slider.value >= slider.base ** slider.max * (1 - 1e-9)
            out[name] = None if at_end else float(slider.value)
        at_start = (self.min_accuracy.disabled
                    or self.min_accuracy.value <= self.min_accuracy.min + 1e-12)
        out["min_accuracy"] = None if at_start else float(self.min_accuracy.value)
        return out

    def _readout(self, name: str, value: float | None, batch: int) -> str:
        """A slider's value in engineering units per batch and per image, or "none"."""
        if self.sliders[name].disabled:
            return "not recorded"
        if value is None:
            return NONE
        if name == "min_accuracy":
            return accuracy_text(value)  # the digits the budget text uses: they agree
        if name == "power_w":
            return eng(value, "W")
        return f"{eng(value, _UNITS[name])} per batch of {batch} " \
               f"({eng(value / batch, _UNITS[name])} per image)"

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if change.get("owner") in (self.board, self.batch, self.mapping, self.backend):
            self._sync_pickers()
        self.update()

    def update(self) -> ExplorerView | None:
        """Recompute and redraw from the current widget values; errors are kept, not lost."""
        try:
            budgets = self.budgets()
            view = explore(self.points, self.board.value, self.batch.value, self.mapping.value,
                           self.backend.value, **budgets)
            for name, value in budgets.items():
                self.readouts[name].value = self._readout(name, value, view.batch)
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
