"""The explorer: pure view functions, the widgets driven by setting values, a batch render."""

import json

import matplotlib
import pandas as pd
import papermill as pm
import pytest

matplotlib.use("Agg")

from dyndnn.analysis import write_summary  # noqa: E402
from dyndnn.board.profiler import COLUMNS  # noqa: E402
from dyndnn.evaluation import EVAL_COLUMNS  # noqa: E402
from dyndnn.resources import resource_dir  # noqa: E402
from dyndnn.views import explorer as explorer_module  # noqa: E402
from dyndnn.views.explorer import (  # noqa: E402
    ALL,
    ALL_BACKENDS,
    Explorer,
    draw,
    explore,
    render_html,
    render_text,
)


def point(groups, latency_s, accuracy, energy_j, mapping="cpu[0]x1", board="vm", batch=1,
          power_w=2.0, modelled=True, backend="eager"):
    return {"board": board, "model": "m", "groups": groups, "mapping": mapping, "backend": backend,
            "freq_label": "clocks as set", "batch": batch, "latency_s": latency_s,
            "latency_s_min": latency_s * 0.9, "latency_s_max": latency_s * 1.1,
            "energy_j": energy_j, "power_w": power_w, "accuracy": accuracy,
            "modelled": modelled, "meter": "modelled-cpu"}


ACC = {1: 0.70, 2: 0.80, 3: 0.90}
POINTS = pd.DataFrame(
    [point(k, k * 1e-3, ACC[k], k * 3e-3) for k in ACC]  # one core: slow, frugal
    + [point(k, k * 0.6e-3, ACC[k], k * 5e-3, mapping="cpu[0-1]x2", power_w=5.0) for k in ACC]
    + [point(k, k * 10e-3, ACC[k], k * 20e-3, batch=16) for k in ACC]
    + [point(k, k * 2e-3, ACC[k], k * 1e-3, mapping="cuda:0[0]x1", board="nano",
             modelled=False) for k in ACC])
# the same board with the deployment engine beside eager: one core, 0.3 ms per k
ONNX = "onnxruntime"
BOTH = pd.concat([POINTS, pd.DataFrame([point(k, k * 0.3e-3, ACC[k], k * 1e-3, backend=ONNX)
                                        for k in ACC])], ignore_index=True)


# --- pure functions ---------------------------------------------------------------------------

def test_explore_filters_board_batch_mapping_and_chooses_within_budget():
    view = explore(POINTS, "vm", 1, ALL, latency_s=1.3e-3)
    assert len(view.points) == 6
    # fits: k=1 on either mapping, k=2 only on two cores (1.2 ms): the most accurate is that
    assert (view.choice.point["groups"], view.choice.point["mapping"]) == (2, "cpu[0-1]x2")
    one_core = explore(POINTS, "vm", 1, "cpu[0]x1", latency_s=1.3e-3)
    assert len(one_core.points) == 3 and one_core.choice.point["groups"] == 1
    # the energy budget prefers the frugal mapping at equal accuracy
    frugal = explore(POINTS, "vm", 1, None, energy_j=7e-3)
    assert (frugal.choice.point["groups"], frugal.choice.point["mapping"]) == (2, "cpu[0]x1")
    assert explore(POINTS, "vm", 16, ALL).choice.point["latency_s"] == pytest.approx(30e-3)


def test_render_html_shows_configuration_mapping_frequency_and_modelled_energy():
    html = render_html(explore(POINTS, "vm", 1, ALL, latency_s=1.3e-3))
    for text in ("k = 2 active groups", "cpu[0-1]x2", "clocks as set", "0.8000",
                 "1.2 ms", "10 mJ", "MODELLED", "energy MODELLED"):
        assert text in html, text
    measured = render_html(explore(POINTS, "nano", 1, ALL))
    assert "MODELLED" not in measured and "measured" in measured


def test_impossible_budget_shows_the_closest_point_not_an_error():
    view = explore(POINTS, "vm", 1, ALL, latency_s=0.3e-3, min_accuracy=0.75)
    assert not view.choice.met
    html = render_html(view)
    assert "No operating point meets" in html and "Closest" in html and "k=1" in html
    assert "(100%) over the 0.3 ms budget" in html  # k=1 on two cores: 0.6 ms
    assert render_text(view).startswith("No operating point meets")
    fig = draw(view)  # a plot with the closest point ringed, not an empty plot
    ring = [c for c in fig.axes[0].collections if c.get_gid() == "highlight-ring"]
    assert fig.axes[0].get_legend_handles_labels()[1][-1].startswith("closest")
    assert ring and tuple(ring[0].get_offsets()[0]) == pytest.approx((0.6e-3, 0.7))


def test_draw_rings_the_chosen_point_on_both_panels():
    view = explore(POINTS, "vm", 1, ALL, latency_s=1.3e-3)
    fig = draw(view)
    for ax, x in zip(fig.axes[:2], (1.2e-3, 10e-3), strict=True):
        ring = [c for c in ax.collections if c.get_gid() == "highlight-ring"]
        assert tuple(ring[0].get_offsets()[0]) == pytest.approx((x, 0.8))
    assert "energy MODELLED" in fig._suptitle.get_text()


def scatter_colours(ax):
    """(x, y) -> face colour of every seaborn-drawn point (the highlight left out)."""
    from matplotlib.colors import to_hex

    out = {}
    for collection in ax.collections:
        if collection.get_gid() or not len(collection.get_offsets()):
            continue
        colours = collection.get_facecolors()
        for i, (x, y) in enumerate(collection.get_offsets()):
            out[(round(float(x), 9), round(float(y), 6))] = to_hex(colours[i % len(colours)],
                                                                   keep_alpha=False)
    return out


def test_a_colour_keeps_its_meaning_from_view_to_view():
    """cpu[0]x1 onnxruntime was red in one view and orange in the next."""
    every = draw(explore(BOTH, "vm", 1, ALL, ALL_BACKENDS))
    onnx_only = draw(explore(BOTH, "vm", 1, ALL, ONNX))
    one_core = draw(explore(BOTH, "vm", 1, "cpu[0]x1", ALL_BACKENDS))
    onnx_points = [(round(k * 0.3e-3, 9), ACC[k]) for k in ACC]
    colours = [{scatter_colours(fig.axes[0])[p] for p in onnx_points}
               for fig in (every, onnx_only, one_core)]
    assert all(len(c) == 1 for c in colours) and colours[0] == colours[1] == colours[2]


def test_the_chosen_point_is_drawn_on_top_inside_its_ring():
    """Where markers overlap, the ring circled another point's marker."""
    crowded = pd.concat([BOTH, pd.DataFrame([point(2, 0.6e-3, 0.799, 2e-3, mapping="cpu[1]x1")])],
                        ignore_index=True)
    view = explore(crowded, "vm", 1, ALL, ALL_BACKENDS, latency_s=0.65e-3, min_accuracy=0.8)
    assert (view.choice.point["groups"], view.choice.point["backend"]) == (2, ONNX)
    ax = draw(view).axes[0]
    marker = next(c for c in ax.collections if c.get_gid() == "highlight-marker")
    ring = next(c for c in ax.collections if c.get_gid() == "highlight-ring")
    others = [c for c in ax.collections if not c.get_gid()]
    assert marker.get_zorder() > max(c.get_zorder() for c in [ring, *others])
    assert tuple(marker.get_offsets()[0]) == pytest.approx((0.6e-3, 0.8))
    from matplotlib.colors import to_hex

    own = scatter_colours(ax)[(round(0.6e-3, 9), 0.8)]
    assert to_hex(marker.get_facecolors()[0], keep_alpha=False) == own


def test_the_legend_ring_is_a_marker_not_the_plot_ring():
    """The legend's ring was drawn at the plot ring's size and covered its neighbour."""
    ax = draw(explore(BOTH, "vm", 1, ALL, ALL_BACKENDS, latency_s=1.3e-3)).axes[1]
    legend = ax.get_legend()
    handle = next(h for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True)
                  if t.get_text() == "chosen")
    assert handle.get_markersize() <= 10 and handle.get_markerfacecolor() == "none"


def test_explore_filters_by_backend_and_the_view_names_it():
    every = explore(BOTH, "vm", 1, ALL, ALL_BACKENDS, latency_s=1.3e-3)
    assert len(every.points) == 9 and every.backend is None
    # onnxruntime runs k=3 in 0.9 ms: within 1.3 ms, where eager fits k=2 at best
    assert (every.choice.point["groups"], every.choice.point["backend"]) == (3, ONNX)
    eager = explore(BOTH, "vm", 1, ALL, "eager", latency_s=1.3e-3)
    assert len(eager.points) == 6 and eager.backend == "eager"
    assert (eager.choice.point["groups"], eager.choice.point["mapping"]) == (2, "cpu[0-1]x2")
    html = render_html(every)
    assert "<td style='text-align:left'>backend</td><td style='text-align:left'>onnxruntime" in html
    assert "m k=3 on cpu[0]x1 (onnxruntime)" in html and "(onnxruntime)" in render_text(every)
    fig = draw(every)
    assert "all mappings, all backends" in fig._suptitle.get_text()
    legend = {t.get_text() for t in fig.axes[1].get_legend().get_texts()}
    assert {"cpu[0]x1 eager", "cpu[0]x1 onnxruntime"} <= legend  # a colour per engine too
    assert "eager" in draw(eager)._suptitle.get_text()


# --- the widgets, driven as a user would ------------------------------------------------------

def test_sliders_and_pickers_drive_the_view():
    ex = Explorer(POINTS)
    assert ex.board.value == "nano"  # the first board, sorted
    ex.board.value = "vm"
    assert ex.last_error is None and ex.view.choice.point["groups"] == 3  # no budget yet
    assert ex.view.choice.point["mapping"] == "cpu[0]x1"  # equal accuracy: less energy
    assert ex.budgets() == {"latency_s": None, "energy_j": None, "power_w": None,
                            "min_accuracy": None}
    ex.latency.value = 1.3e-3
    assert ex.last_error is None
    assert ex.budgets()["latency_s"] == pytest.approx(1.3e-3)
    assert (ex.view.choice.point["groups"], ex.view.choice.point["mapping"]) == (2, "cpu[0-1]x2")
    assert "k = 2 active groups" in ex.status.value
    ex.mapping.value = "cpu[0]x1"
    assert ex.view.choice.point["groups"] == 1 and "cpu[0]x1" in ex.status.value
    ex.power.value = 1.0  # below every point's 2 W
    assert not ex.view.choice.met and "No operating point meets" in ex.status.value
    ex.power.value = 10 ** ex.power.max  # back to the right end: no power budget
    ex.min_accuracy.value = 0.75
    assert ex.budgets()["min_accuracy"] == 0.75
    assert not ex.view.choice.met  # k=2 on one core is 2 ms > 1.3 ms
    ex.batch.value = 16
    ex.latency.value = 10 ** ex.latency.max
    assert ex.view.batch == 16 and ex.view.choice.point["groups"] == 3
    assert ex.figure is not None and ex.last_error is None
    assert bytes(ex.image.value).startswith(b"\x89PNG")  # the plot the user sees


def test_backend_picker_beside_the_mapping_picker():
    ex = Explorer(BOTH, plot=False)
    ex.board.value = "vm"
    assert ex.backend in ex.widget.children[0].children  # in the row of pickers
    assert list(ex.backend.options) == [ALL_BACKENDS, "eager", ONNX]
    assert ex.backend.value == ALL_BACKENDS
    ex.latency.value = 1.3e-3
    assert ex.view.choice.point["backend"] == ONNX and "onnxruntime" in ex.status.value
    ex.backend.value = "eager"
    assert ex.last_error is None and ex.view.backend == "eager"
    assert (ex.view.choice.point["groups"], ex.view.choice.point["mapping"]) == (2, "cpu[0-1]x2")
    ex.backend.value = ONNX
    ex.mapping.value = "cpu[0-1]x2"  # onnxruntime was measured on one core only
    assert ex.view.choice.point is None and "empty" in ex.status.value
    ex.board.value = "nano"  # eager only there: the picker offers what the board has
    assert list(ex.backend.options) == [ALL_BACKENDS, "eager"]
    assert ex.backend.value == ALL_BACKENDS and ex.view.choice.point["backend"] == "eager"


def test_changing_board_offers_that_boards_mappings_and_batches():
    ex = Explorer(POINTS)
    ex.board.value = "vm"
    assert list(ex.mapping.options) == [ALL, "cpu[0-1]x2", "cpu[0]x1"]
    assert list(ex.batch.options) == [1, 16]
    ex.mapping.value = "cpu[0-1]x2"
    ex.batch.value = 16  # vm has no batch 16 on two cores: nothing to show, and it says so
    assert ex.view.choice.point is None and "empty" in ex.status.value
    ex.board.value = "nano"
    assert list(ex.mapping.options) == [ALL, "cuda:0[0]x1"] and ex.mapping.value == ALL
    assert list(ex.batch.options) == [1]
    assert ex.view.board == "nano" and ex.view.choice.point["mapping"] == "cuda:0[0]x1"
    assert "measured" in ex.status.value and ex.last_error is None


def test_a_failing_callback_is_recorded_and_shown_not_swallowed(monkeypatch):
    ex = Explorer(POINTS, plot=False)

    def broken(*args, **kwargs):
        raise RuntimeError("purpose-made failure")

    monkeypatch.setattr(explorer_module, "explore", broken)
    ex.latency.value = 2e-3  # the observer runs the update: ipywidgets would only log this
    assert isinstance(ex.last_error, RuntimeError)
    assert "purpose-made failure" in ex.status.value
    monkeypatch.undo()
    ex.latency.value = 3e-3
    assert ex.last_error is None and ex.view.choice.met


def test_slider_ranges_follow_the_batch_and_mapping():
    ex = Explorer(POINTS, plot=False)
    ex.board.value = "vm"

    def spans(slider):
        return 10 ** slider.min, 10 ** slider.max

    def close_around(slider, column, part):
        low, high = spans(slider)
        assert part[column].min() / 1.25 < low <= part[column].min(), (column, low)
        assert part[column].max() < high < part[column].max() * 1.25, (column, high)

    one = POINTS[(POINTS["board"] == "vm") & (POINTS["batch"] == 1)]
    sixteen = POINTS[(POINTS["board"] == "vm") & (POINTS["batch"] == 16)]
    assert ex.batch.value == 1
    for slider, column in ((ex.latency, "latency_s"), (ex.energy, "energy_j")):
        close_around(slider, column, one)
    ex.batch.value = 16  # a picker's change rescales every slider to that batch's points
    for slider, column in ((ex.latency, "latency_s"), (ex.energy, "energy_j")):
        close_around(slider, column, sixteen)
    assert spans(ex.latency)[0] > one["latency_s"].max()  # the batch-1 span is gone
    ex.batch.value = 1
    ex.mapping.value = "cpu[0-1]x2"
    close_around(ex.latency, "latency_s", one[one["mapping"] == "cpu[0-1]x2"])
    assert 0.65 < ex.min_accuracy.min < 0.70 and ex.min_accuracy.max == pytest.approx(0.9)
    assert ex.last_error is None


def test_a_slider_at_its_end_is_no_budget_and_reads_none():
    ex = Explorer(POINTS, plot=False)
    ex.board.value = "vm"
    assert {n: r.value for n, r in ex.readouts.items()} == dict.fromkeys(ex.readouts, "none")
    ex.latency.value = 1.3e-3
    assert ex.readouts["latency_s"].value == "1.3 ms per batch of 1 (1.3 ms per image)"
    assert ex.budgets()["latency_s"] == pytest.approx(1.3e-3)
    ex.latency.value = 10 ** ex.latency.max  # dragged to the right end
    assert ex.budgets()["latency_s"] is None and ex.readouts["latency_s"].value == "none"
    assert ex.view.choice.budget.latency_s is None
    ex.min_accuracy.value = 0.8
    assert ex.readouts["min_accuracy"].value == "0.800"
    ex.min_accuracy.value = ex.min_accuracy.min  # the left end, for a lower bound
    assert ex.budgets()["min_accuracy"] is None and ex.readouts["min_accuracy"].value == "none"
    # a budget per batch of 1 means nothing at batch 16: it goes back to none, and says so
    ex.energy.value = 5e-3
    ex.batch.value = 16
    assert ex.budgets()["energy_j"] is None and ex.readouts["energy_j"].value == "none"
    ex.energy.value = 40e-3  # inside batch 16's span: a budget, per batch and per image
    assert ex.readouts["energy_j"].value == "40 mJ per batch of 16 (2.5 mJ per image)"


def test_the_live_text_follows_the_widget():
    ex = Explorer(POINTS)
    ex.board.value = "vm"
    assert ex.status in ex.widget.children  # the text is part of the widget, not a print
    assert "k = 3 active groups" in ex.status.value
    before = bytes(ex.image.value)
    ex.latency.value = 1.3e-3
    assert "k = 2 active groups" in ex.status.value and "k = 3 active" not in ex.status.value
    assert render_text(ex.view).startswith("chosen: vm: m k=2")
    assert bytes(ex.image.value) != before  # and the plot, ringed on the new choice
    ex.batch.value = 16
    assert "batch of 16" in ex.status.value and "k = 3 active groups" in ex.status.value


def test_latency_and_energy_are_per_batch_with_the_per_image_value_beside():
    view = explore(POINTS, "vm", 16, ALL)  # k=3: 30 ms and 60 mJ for a batch of 16
    html = render_html(view)
    assert "latency per batch of 16</td><td style='text-align:left'>30 ms" in html
    assert "latency per image</td><td style='text-align:left'>1.88 ms" in html
    assert "energy per image</td><td style='text-align:left'>3.75 mJ" in html
    assert "per inference" not in html
    fig = draw(view)
    assert fig.axes[0].get_xlabel() == "latency per batch of 16 [ms]; measured (clock)"
    assert fig.axes[1].get_xlabel().startswith("energy per batch of 16 [mJ]; MODELLED")
    assert render_text(view).endswith("latency 1.88 ms per image")


def with_provenance_columns(kind, source, note=""):
    table = POINTS.drop(columns="modelled").assign(energy_provenance=kind,
                                                   energy_source=source, energy_note=note)
    if kind == "none":
        table = table.assign(energy_j=float("nan"), power_w=float("nan"))
    return table


def test_the_text_names_the_provenance_of_every_quantity():
    measured = render_html(explore(with_provenance_columns("measured", "rapl"), "vm", 1))
    assert "measured (meter: rapl)" in measured and "MODELLED" not in measured
    modelled = render_html(explore(with_provenance_columns(
        "modelled", "CPU power model: idle + busy cores x f V^2"), "vm", 1))
    assert modelled.count("<b>MODELLED</b> (model: CPU power model)") == 2  # energy and power
    assert "measured (clock)" in modelled and "(test split)" in modelled
    legacy = render_html(explore(POINTS, "vm", 1))  # only the old boolean: still MODELLED
    assert "<b>MODELLED</b> (model: modelled-cpu)" in legacy
    table = with_provenance_columns("none", "none", "no GPU power sensor for cuda:0")
    assert "not recorded (no GPU power sensor for cuda:0)" in render_html(explore(table, "vm", 1))
    ex = Explorer(table, plot=False)
    ex.board.value = "vm"
    assert ex.energy.disabled and ex.readouts["energy_j"].value == "not recorded"
    assert ex.budgets()["energy_j"] is None and ex.last_error is None


# --- the notebook in a batch run --------------------------------------------------------------

def test_05_explore_renders_its_widgets_under_papermill(tmp_path):
    from dyndnn.models import GroupNet
    from dyndnn.record.checkpoint import save_checkpoint
    from dyndnn.record.layout import RunLayout

    run = tmp_path / "run"
    layout = RunLayout(run)
    with layout.lock():  # an empty folder becomes a run folder
        pass
    save_checkpoint(layout.final_checkpoint("group", 3),
                    GroupNet(groups=3, width=0.25, in_channels=1, image_size=28), stage=3)
    pd.DataFrame({c: [0] * 3 for c in EVAL_COLUMNS} | {
        "model": "group", "groups": [1, 2, 3], "accuracy": [0.7, 0.8, 0.9],
        "macs": [1, 2, 3], "param_bytes": [4, 8, 12], "serving_bytes": [12] * 3}
    )[EVAL_COLUMNS].to_csv(run / "eval.csv", index=False)
    rows = [{c: "" for c in COLUMNS} | {
        "board": "vm", "device": "cpu", "cores": cores, "threads": threads,
        "model": "group", "groups": k, "batch": 1, "repeat": 0, "latency_s": k * scale,
        "energy_j": k * scale, "power_w": 3.0, "meter": "modelled-cpu", "modelled": True}
        for cores, threads, scale in (("0", 1, 1e-3), ("0-1", 2, 0.6e-3)) for k in (1, 2, 3)]
    pd.DataFrame(rows)[COLUMNS].to_csv(run / "profile.csv", index=False)
    write_summary(run)
    out = tmp_path / "05_explore.ipynb"
    pm.execute_notebook(str(resource_dir("notebooks") / "05_explore.ipynb"), str(out),
                        parameters={"run_dir": str(run), "live_demo_s": 0.0},
                        kernel_name="python3", progress_bar=False, cwd=str(run))
    book = json.loads(out.read_text())
    views = [o for c in book["cells"] for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the explorer's widgets are not in the executed notebook"
    state = book["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert views[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] in state
    kinds = {m["model_name"] for m in state.values()}
    assert {"FloatLogSliderModel", "DropdownModel", "HTMLModel", "ImageModel"} <= kinds
    images = [m for m in state.values() if m["model_name"] == "ImageModel"]
    assert images[0]["buffers"][0]["data"].startswith("iVBOR")  # the plot: a base64 PNG
    html = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any("k = 3 active groups" in h for h in html)  # the status the explorer showed
    text = "".join("".join(o.get("text", "")) for c in book["cells"]
                   for o in c.get("outputs", []))
    assert "No operating point meets" in text and "explorer error" not in text
    assert "chosen:" not in text  # no print of the first view, which the widget outlives
    assert any(h == "none" for h in html)  # the sliders' readouts: no budget yet
    assert "cpu[0-1]x2 (eager)" in text  # the manager runs at the fastest point's backend
    assert (run / "figures" / "runtime_simulation.png").is_file()
