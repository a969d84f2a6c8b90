"""Figures as a researcher reads them: per batch, readable units, every axis's provenance."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dyndnn.views.axes import FewLogTicks, eng_scale  # noqa: E402
from dyndnn.views.plots import (  # noqa: E402
    plot_comparison,
    plot_dynamic_ranges,
    plot_latency,
    plot_manager_trace,
    plot_operating_points,
)

MODEL = "CPU power model: idle + busy cores x f V^2 (assumed parameters)"


def points_table(batch=64, provenance="modelled", source=MODEL, scale=1.0):
    rows = []
    for mapping, slow in (("cpu[0]x1", 1.0), ("cpu[0-1]x2", 0.6)):
        for k, accuracy in ((1, 0.848), (2, 0.864), (3, 0.867), (4, 0.869)):
            latency = scale * slow * k * 1e-4
            rows.append({"board": "vm", "model": "group", "backend": "eager",
                         "batch": batch, "mapping": mapping, "freq_label": "clocks as set",
                         "groups": k, "latency_s": latency, "energy_j": latency * 3.0,
                         "power_w": 3.0, "accuracy": accuracy,
                         "energy_provenance": provenance, "energy_source": source})
    return pd.DataFrame(rows)


def tick_labels(axis):
    """Every label drawn in view, major and minor (minor ones were what overlapped)."""
    axis.figure.canvas.draw()
    low, high = sorted(axis.get_view_interval())
    return [tick.label1.get_text() for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if tick.label1.get_visible() and tick.label1.get_text()
            and low <= tick.get_loc() <= high]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_operating_points_axes_say_per_batch_unit_and_provenance():
    fig = plot_operating_points(points_table(scale=10))  # 0.6 to 4 ms
    latency, energy, power = (ax.get_xlabel().replace("\n", "; ") for ax in fig.axes[:3])
    assert latency == "latency per batch of 64 [ms]; measured (clock)"
    assert energy == "energy per batch of 64 [mJ]; MODELLED (model: CPU power model)"
    assert power == "average power [W]; MODELLED (model: CPU power model)"
    measured = plot_operating_points(points_table(provenance="measured", source="rapl",
                                                  scale=10))
    assert measured.axes[1].get_xlabel() == "energy per batch of 64 [mJ]\nmeasured (meter: rapl)"
    legacy = points_table().drop(columns=["energy_provenance", "energy_source"]).assign(
        modelled=True, meter="modelled-cpu")  # a table from before the provenance columns
    assert "MODELLED (model: modelled-cpu)" in plot_operating_points(legacy).axes[1].get_xlabel()


def test_log_axis_ticks_are_few_short_and_in_engineering_units():
    # under a decade, where matplotlib's own ticks overlapped (0.000175, 0.0002, 0.000225, ...)
    table = points_table(batch=1).assign(latency_s=[1.7e-4 + 0.27e-4 * i for i in range(8)],
                                         energy_j=[5.5e-4 + 1.1e-4 * i for i in range(8)])
    fig = plot_operating_points(table)
    for ax in fig.axes[:2]:
        labels = tick_labels(ax.xaxis)
        assert 2 <= len(labels) <= 6, labels
        assert all(len(text) <= 4 and "e" not in text for text in labels), labels
    assert "[µs]" in fig.axes[0].get_xlabel()
    assert eng_scale([1.2e-3, 2.1e-3], "J") == (1e3, "mJ")
    assert FewLogTicks().tick_values(1e-4, 5e-2).tolist() == [1e-4, 1e-3, 1e-2]


def manager_log(column):
    steps = range(6)
    return pd.DataFrame({"t_s": [0.5 * t for t in steps], column: [2e-3, 2.1e-3, 6e-3, 1e-3,
                                                                   1e-3, 2e-3],
                         "budget_latency_s": 3e-3, "groups": [2, 2, 2, 1, 1, 2],
                         "switched": [False, False, False, True, False, True],
                         "load": [False, False, True, True, False, False]})


def test_manager_trace_names_simulated_and_measured_latency():
    simulated = plot_manager_trace(manager_log("simulated_latency_s"))
    assert simulated.axes[0].get_ylabel() == "latency per batch [ms]\nSIMULATED (synthetic trace)"
    labels = simulated.axes[0].get_legend_handles_labels()[1]
    assert "simulated latency" in labels and "measured latency" not in labels
    assert "background load (simulated)" in labels
    live = plot_manager_trace(manager_log("measured_latency_s"))
    assert live.axes[0].get_ylabel() == "latency per batch [ms]\nmeasured (clock)"
    assert "measured latency" in live.axes[0].get_legend_handles_labels()[1]
    with pytest.raises(ValueError, match="simulated_latency_s"):
        plot_manager_trace(manager_log("latency_s"))


def ranges_table(energy_provenance):
    rows = []
    for batch in (1, 64):
        for level, time, energy in (("pruning", 1.7, 1.6), ("pruning+mapping", 2.0, 3.3)):
            rows.append({"board": "vm", "model": "group", "backend": "eager",
                         "batch": batch, "level": level, "metric": "latency_s", "range": time,
                         "provenance": "measured", "source": "clock (time.perf_counter)"})
            rows.append({"board": "vm", "model": "group", "backend": "eager",
                         "batch": batch, "level": level, "metric": "energy_j",
                         "range": energy if energy_provenance != "none" else float("nan"),
                         "provenance": energy_provenance, "source": MODEL})
    return pd.DataFrame(rows)


def bar_heights(subfig):
    return sorted(round(p.get_height(), 2) for ax in subfig.axes for p in ax.patches
                  if p.get_height() > 0)


def test_modelled_energy_ranges_are_drawn_apart_from_measured_ones():
    fig = plot_dynamic_ranges(ranges_table("modelled"))
    measured, modelled = fig.subfigs
    assert measured.get_suptitle().startswith("MEASURED")
    assert modelled.get_suptitle().startswith("NOT MEASURED")
    # time bars only among the measured, energy bars only in the block that says it is not
    assert bar_heights(measured) == [1.7, 1.7, 2.0, 2.0]
    assert bar_heights(modelled) == [1.6, 1.6, 3.3, 3.3]
    legend = [t.get_text() for t in modelled.legends[0].get_texts()]
    assert legend == ["energy, MODELLED (CPU power model)"]
    # the old table's boolean says the same
    old = ranges_table("modelled").drop(columns=["provenance", "source"]).assign(
        modelled=lambda f: f["metric"] == "energy_j", meter="modelled-cpu")
    assert [s.get_suptitle().split(":")[0] for s in plot_dynamic_ranges(old).subfigs] == [
        "MEASURED", "NOT MEASURED"]


def test_ranges_with_no_energy_recorded_are_left_out_with_a_note():
    fig = plot_dynamic_ranges(ranges_table("none"))
    assert len(fig.subfigs) == 1 and bar_heights(fig.subfigs[0]) == [1.7, 1.7, 2.0, 2.0]
    assert "left out: energy not recorded (no sensor) at vm, eager, batch 1; vm, eager, " \
           "batch 64" in fig.get_suptitle()


def comparison_inputs():
    models = ["group", "independent", "tann", "slimmable"]
    evaluation = pd.DataFrame({"model": [m for m in models for _ in range(4)],
                               "macs_fraction": [0.25, 0.5, 0.75, 1.0] * 4,
                               "accuracy": [0.85, 0.86, 0.87, 0.87, 0.82, 0.86, 0.86, 0.87,
                                            0.84, 0.86, 0.86, 0.87, 0.81, 0.80, 0.81, 0.81]})
    comparison = pd.DataFrame([
        {"model": m, "backend": b, "batch": n, "time_range": 1.5 + i, "energy_range": 1.4 + i,
         "energy_provenance": "modelled", "serving_bytes": 350_000 * (1 + i),
         "compression_rate": 0.25}
        for i, m in enumerate(models) for b in ("eager", "onnxruntime") for n in (1, 64)])
    return comparison, evaluation


def test_comparison_fits_a_notebook_and_its_legends_hide_no_line():
    comparison, evaluation = comparison_inputs()
    fig = plot_comparison(comparison, evaluation)
    assert fig.get_figwidth() <= 10.5  # a notebook cell's width, not 18 inches
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    accuracy = fig.axes[0]
    legend = accuracy.get_legend().get_window_extent(renderer)
    assert legend.y1 <= accuracy.get_window_extent(renderer).y0  # below the lines, not on them
    assert {t.get_text() for t in fig.axes[1].get_legend().get_texts()} == {
        "eager, batch 1", "eager, batch 64", "onnxruntime, batch 1", "onnxruntime, batch 64"}
    assert fig.axes[1].get_title().splitlines()[0] == "time dynamic range, measured (clock)"
    assert fig.axes[2].get_title().startswith("energy dynamic range: MODELLED, not measured")
    assert "accounted" in fig.axes[3].get_ylabel()


def test_latency_figure_is_per_batch_with_provenance():
    rows = [{"board": "vm", "model": "group", "device": "cpu", "backend": "eager",
             "cores": "0", "threads": 1, "freq_khz": None, "batch": batch, "groups": k,
             "latency_s": k * batch * 1e-4, "energy_j": k * batch * 3e-4, "power_w": 3.0,
             "meter": "rapl", "energy_provenance": "measured", "energy_source": "rapl"}
            for batch in (1, 64) for k in (1, 2)]
    fig = plot_latency(pd.DataFrame(rows))
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert ylabels == ["latency per batch of 1 [µs]\nmeasured (clock)",
                       "latency per batch of 64 [ms]\nmeasured (clock)",
                       "energy per batch of 1 [µJ]\nmeasured (meter: rapl)",
                       "energy per batch of 64 [mJ]\nmeasured (meter: rapl)"]


def test_the_operating_points_figure_fits_a_notebook_cell_and_names_its_model(tmp_path):
    """Four contexts side by side were 1980 px wide, shown at 968 px: unreadable."""
    contexts = pd.concat([points_table(batch=b).assign(backend=e) for b in (1, 64)
                          for e in ("eager", "onnxruntime")], ignore_index=True)
    fig = plot_operating_points(contexts)
    width_in, height_in = fig.get_size_inches()
    assert width_in <= 10.0 and height_in > width_in  # contexts stack in rows
    assert len(fig.axes) >= 12 and "Operating points of group" in fig._suptitle.get_text()


def test_comparison_labels_sit_above_the_whiskers_and_say_what_bar_and_whisker_are():
    """Whiskers ran through the value labels; the bar (a median) read 2.12x where the
    dynamic-range figure (the widest context) said 2.62x, with no note why."""
    comparison, evaluation = comparison_inputs()
    spread = pd.concat([comparison.assign(time_range=comparison["time_range"] * f,
                                          mapping=m)
                        for f, m in ((0.8, "cpu[0]x1"), (1.0, "cpu[1]x1"), (1.24, "cpu[0-1]x2"))],
                       ignore_index=True)
    fig = plot_comparison(spread, evaluation)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    time_axes = fig.axes[1]
    assert "bar: median over the contexts" in time_axes.get_title()
    assert "whisker: narrowest to widest context" in time_axes.get_title()
    assert "widest context" in fig.get_suptitle()
    labels = [t for t in time_axes.texts if t.get_text().endswith(")")]
    assert len(labels) == 16  # 4 models x 4 (backend, batch), each median (widest)
    group = [t.get_text() for t in labels if abs(t.xy[0] - (-0.3)) < 1e-6]
    assert group == ["1.50x\n(1.86x)"]  # eager batch 1: median 1.5, widest 1.5 x 1.24
    whisker_tops = {}
    for collection in time_axes.collections:  # errorbar lines: one segment per bar
        for segment in collection.get_segments():
            whisker_tops[round(float(segment[0][0]), 6)] = float(max(segment[:, 1]))
    for text in labels:
        x, y = text.xy
        assert y == pytest.approx(whisker_tops[round(x, 6)])  # anchored at the whisker top
        box = text.get_window_extent(renderer)
        top_px = time_axes.transData.transform((x, whisker_tops[round(x, 6)]))[1]
        assert box.y0 >= top_px - 0.5  # drawn above it: no whisker through the number
        assert box.y1 <= time_axes.get_window_extent(renderer).y1  # inside the panel


def test_comparison_with_one_context_labels_the_median_alone():
    comparison, evaluation = comparison_inputs()
    fig = plot_comparison(comparison, evaluation)
    texts = {t.get_text() for t in fig.axes[1].texts}
    assert "1.50x" in texts and not any("(" in t for t in texts)


def test_a_log_axis_labels_the_span_of_its_points_not_one_end():
    """Points from 0.8 to 2 mJ were labelled only 0.8, 0.9, 1."""
    fig, ax = plt.subplots()
    table = points_table(scale=1.0).assign(energy_j=lambda f: f["groups"].map(
        {1: 0.8e-3, 2: 1.2e-3, 3: 1.6e-3, 4: 1.9e-3}))
    from dyndnn.views.tradeoff import plot_tradeoff

    plot_tradeoff(ax, table, "energy_j")
    labels = [float(t) for t in tick_labels(ax.xaxis)]
    assert max(labels) >= 1.5 and min(labels) <= 1.0  # mJ: both halves of the span labelled
