"""Analysis on small hand-built tables whose right answers are worked out by hand."""

import json
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dyndnn.analysis import (
    OP_COLUMNS,
    AnalysisError,
    compare_models,
    comparison_headline,
    dynamic_range_table,
    dynamic_ranges,
    freq_label,
    join_tables,
    load_run,
    mark_pareto,
    memory_footprint,
    operating_points,
    pareto_front,
    pareto_mask,
    point_label,
    read_operating_points,
    select,
    summarise,
    tidy_profile,
    write_summary,
)
from dyndnn.board.profiler import COLUMNS
from dyndnn.evaluation import EVAL_COLUMNS


def profile_row(**values):
    """One profile.csv row with harmless defaults for the columns a test does not care about."""
    row = {c: "" for c in COLUMNS}
    row.update(board="vm", device="cpu", cores="0", threads=1, freq_khz="", model="m", groups=1,
               batch=1, repeat=0, latency_s=1.0, energy_j=1.0, power_w=1.0, meter="modelled-cpu",
               energy_provenance="modelled", energy_source="CPU power model")
    row.update(values)
    return row


def eval_table(accuracy=(0.5, 0.7, 0.8), param_bytes=(10, 20, 30), model="m"):
    rows = [{c: 0 for c in EVAL_COLUMNS} | {"model": model, "groups": k + 1, "accuracy": a,
                                              "param_bytes": b, "macs": 100 * (k + 1),
                                              "serving_bytes": max(param_bytes)}
            for k, (a, b) in enumerate(zip(accuracy, param_bytes, strict=True))]
    return pd.DataFrame(rows)[EVAL_COLUMNS]


def grid(latency, energy=None, **fixed):
    """One row per k of ``latency`` (and ``energy``, default = latency), one repeat each."""
    energy = energy or latency
    return [profile_row(groups=k + 1, latency_s=t, energy_j=e, **fixed)
            for k, (t, e) in enumerate(zip(latency, energy, strict=True))]


def points_of(rows, evaluation=None):
    return operating_points(join_tables(
        evaluation if evaluation is not None else eval_table(), pd.DataFrame(rows)))


# --- tidy input and operating points ----------------------------------------------------------

def test_tidy_profile_reads_back_a_csv_with_empty_freq_and_numeric_cores(tmp_path):
    path = tmp_path / "profile.csv"
    pd.DataFrame([profile_row(cores="0", freq_khz=""),
                  profile_row(cores="0", freq_khz=1400000)]).to_csv(path, index=False)
    tidy = tidy_profile(pd.read_csv(path))  # pandas reads cores as int, freq as float
    assert tidy["cores"].tolist() == ["0", "0"]
    assert math.isnan(tidy["freq_khz"].iloc[0]) and tidy["freq_khz"].iloc[1] == 1400000
    assert tidy["freq_label"].tolist() == ["clocks as set", "1400 MHz"]
    assert tidy["mapping"].tolist() == ["cpu[0]x1", "cpu[0]x1"]
    assert tidy["energy_provenance"].tolist() == ["modelled", "modelled"]
    assert tidy["energy_note"].tolist() == ["", ""]  # an empty cell read back is no reason


def test_a_profile_from_before_provenance_reads_its_modelled_flag(tmp_path):
    rows = [profile_row(modelled=m) for m in (True, False, "True")]
    for row in rows:
        del row["energy_provenance"], row["energy_source"], row["energy_note"]
    path = tmp_path / "profile.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    tidy = tidy_profile(pd.read_csv(path))
    assert tidy["energy_provenance"].tolist() == ["modelled", "measured", "modelled"]
    assert tidy["energy_source"].tolist() == ["modelled-cpu"] * 3  # the meter named it
    assert "modelled" not in tidy


def test_freq_label():
    assert freq_label(None) == freq_label(float("nan")) == "clocks as set"
    assert freq_label(918000.0) == "918 MHz"


def test_operating_points_take_median_spread_and_join_accuracy():
    rows = [profile_row(groups=2, repeat=r, latency_s=t, energy_j=10 * t, power_w=p,
                        energy_provenance=m)
            for r, (t, p, m) in enumerate([(1.0, 5.0, "modelled"), (3.0, 7.0, "measured"),
                                           (2.0, 6.0, "modelled"), (10.0, 6.0, "modelled")])]
    rows.append(profile_row(groups=2, freq_khz=1000000, latency_s=4.0))
    points = points_of(rows)
    assert list(points.columns) == OP_COLUMNS
    assert len(points) == 2  # the clock makes a point of its own; NaN freq is not dropped
    as_set = points[points["freq_khz"].isna()].iloc[0]
    assert as_set["repeats"] == 4
    assert as_set["latency_s"] == 2.5  # median of 1, 2, 3, 10
    assert (as_set["latency_s_min"], as_set["latency_s_max"]) == (1.0, 10.0)
    # IQR by linear interpolation: q75 = 3 + 0.25 * 7 = 4.75, q25 = 1 + 0.75 * 1 = 1.75
    assert as_set["latency_s_iqr"] == pytest.approx(3.0)
    assert as_set["energy_j"] == pytest.approx(25.0) and as_set["power_w"] == 6.0
    assert as_set["accuracy"] == 0.7 and as_set["param_bytes"] == 20
    # repeats that mix provenances say so: such a point is neither measured nor modelled
    assert as_set["energy_provenance"] == "measured+modelled"
    assert as_set["latency_per_image_s"] == 2.5  # batch 1
    clocked = points[points["freq_khz"] == 1000000].iloc[0]
    assert clocked["freq_label"] == "1000 MHz" and clocked["latency_s"] == 4.0


def test_join_keeps_unevaluated_configurations_and_refuses_foreign_models():
    rows = grid([1.0, 2.0, 3.0, 4.0])  # k=4 was never evaluated
    joined = join_tables(eval_table(), pd.DataFrame(rows))
    assert joined["accuracy"].isna().tolist() == [False, False, False, True]
    with pytest.raises(AnalysisError, match="eval models"):
        join_tables(eval_table(model="other"), pd.DataFrame(rows))


def test_profile_without_required_columns_is_refused():
    with pytest.raises(AnalysisError, match="latency_s"):
        tidy_profile(pd.DataFrame([profile_row()]).drop(columns="latency_s"))


# --- Pareto fronts ----------------------------------------------------------------------------

def test_pareto_mask_by_hand():
    cost = [1.0, 2.0, 3.0, 2.0, 1.0, 0.5]
    gain = [0.5, 0.7, 0.6, 0.4, 0.5, float("nan")]
    # 3 is dominated by 2 (cheaper and better), 4 by 1; 1 and 5 are equal: both stay; NaN never
    assert pareto_mask(cost, gain).tolist() == [True, True, False, False, True, False]


def test_pareto_mask_single_and_all_equal():
    assert pareto_mask([1.0], [0.1]).tolist() == [True]
    assert pareto_mask([2.0, 2.0], [0.3, 0.3]).tolist() == [True, True]


def test_pareto_fronts_are_taken_per_board_and_batch():
    accuracy = (0.5, 0.7, 0.8)
    rows = (grid([1.0, 2.0, 3.0], board="a") + grid([1.0, 5.0, 4.0], board="a", cores="1")
            + grid([9.0, 9.5, 10.0], board="b") + grid([0.1, 0.2, 0.3], board="a", batch=64))
    points = points_of(rows, eval_table(accuracy))
    front = pareto_front(points, x="latency_s")
    on_a = front[(front["board"] == "a") & (front["batch"] == 1)]
    # board a: k=1 at 1.0 (both mappings), k=2 at 2.0, k=3 at 3.0; cores 1's k=3 at 4.0 is worse
    assert sorted(zip(on_a["groups"], on_a["latency_s"], strict=True)) == [
        (1, 1.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    # board b's slow points are not dominated by board a's, nor batch 64's by batch 1's
    assert len(front[front["board"] == "b"]) == 3
    assert len(front[(front["board"] == "a") & (front["batch"] == 64)]) == 3
    flagged = mark_pareto(points)
    assert flagged["pareto_latency_s"].sum() == len(front)


# --- dynamic ranges ---------------------------------------------------------------------------

def range_rows():
    # latency per k: mapping A (1, 2, 4), mapping B (0.5, 1, 2) at the clocks as set;
    # mapping A at 1000 MHz (2, 4, 8); energy differs so that the two metrics disagree
    return (grid([1.0, 2.0, 4.0], [3.0, 4.0, 6.0], cores="0")
            + grid([0.5, 1.0, 2.0], [4.0, 5.0, 8.0], cores="0-1", threads=2)
            + grid([2.0, 4.0, 8.0], [1.0, 2.0, 3.0], cores="0", freq_khz=1000000)
            + grid([5.0, 10.0, 50.0], [5.0, 10.0, 50.0], batch=64))


def test_dynamic_range_levels_by_hand():
    best = dynamic_ranges(points_of(range_rows()))
    b1 = best[best["batch"] == 1].set_index(["level", "metric"])["range"]
    assert b1["pruning", "latency_s"] == pytest.approx(4.0)  # every fixed mapping spans 4x
    assert b1["pruning+mapping", "latency_s"] == pytest.approx(8.0)  # 4 / 0.5 at clocks as set
    assert b1["pruning+mapping+dvfs", "latency_s"] == pytest.approx(16.0)  # 8 / 0.5
    assert b1["pruning", "energy_j"] == pytest.approx(3.0)  # 3/1 at 1000 MHz beats 2 and 2
    # at the clocks as set: 8/3 over both mappings; at 1000 MHz (mapping A alone) 3/1 is wider
    assert b1["pruning+mapping", "energy_j"] == pytest.approx(3.0)
    assert b1["pruning+mapping+dvfs", "energy_j"] == pytest.approx(8.0)  # 8 / 1
    # batches are never mixed: batch 64 has its own 10x, not 50 / 0.5
    b64 = best[best["batch"] == 64].set_index(["level", "metric"])["range"]
    assert b64.eq(10.0).all()


def test_dynamic_range_table_names_both_ends_and_the_context():
    table = dynamic_range_table(points_of(range_rows()))
    row = table[(table["level"] == "pruning+mapping+dvfs") & (table["metric"] == "latency_s")
                & (table["batch"] == 1)].iloc[0]
    assert row["largest"] == "m k=3 on cpu[0]x1 (eager), 1000 MHz, batch 1"
    assert row["smallest"] == "m k=1 on cpu[0-1]x2 (eager), clocks as set, batch 1"
    assert row["backend"] == "eager"
    assert row["points"] == 9 and row["max"] == 8.0 and row["min"] == 0.5
    pruning = table[(table["level"] == "pruning") & (table["batch"] == 1)
                    & (table["metric"] == "latency_s")]
    assert sorted(pruning["context"]) == ["cpu[0-1]x2, clocks as set", "cpu[0]x1, 1000 MHz",
                                          "cpu[0]x1, clocks as set"]
    # latency is measured (a clock) even where energy is modelled, and each says its source
    latency = table[table["metric"] == "latency_s"]
    assert set(latency["provenance"]) == {"measured"} and latency["source"].str.contains(
        "clock").all()
    energy = table[table["metric"] == "energy_j"]
    assert set(energy["provenance"]) == {"modelled"}
    assert set(energy["source"]) == {"CPU power model"}


# --- memory -----------------------------------------------------------------------------------

def test_memory_footprint_dynamic_vs_separate():
    table = memory_footprint(pd.concat([eval_table(param_bytes=(10, 20, 30, 40),
                                                   accuracy=(0.1, 0.2, 0.3, 0.4)),
                                        eval_table(param_bytes=(7, 14), accuracy=(0.1, 0.2),
                                                   model="n")]))
    m = table.set_index("model")
    assert m.loc["m", "dynamic_bytes"] == 40 and m.loc["m", "separate_bytes"] == 100
    assert m.loc["m", "saving"] == pytest.approx(2.5) and m.loc["m", "configurations"] == 4
    assert m.loc["n", "saving"] == pytest.approx(21 / 14)


# --- the run folder ---------------------------------------------------------------------------

def write_run(folder, rows, evaluation=None):
    folder.mkdir(parents=True, exist_ok=True)
    (evaluation if evaluation is not None else eval_table()).to_csv(folder / "eval.csv",
                                                                    index=False)
    pd.DataFrame(rows).to_csv(folder / "profile.csv", index=False)
    return folder


def test_write_summary_writes_both_files_and_reads_back(tmp_path):
    run = write_run(tmp_path / "run", range_rows())
    summary = write_summary(run)
    on_disk = json.loads((run / "summary.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["points"] == 12 and on_disk["batches"] == [1, 64]
    assert on_disk["energy_provenance"] == ["modelled"]
    assert on_disk["energy"] == "energy MODELLED by CPU power model"
    assert on_disk["memory"][0]["saving"] == pytest.approx(2.0)  # (10+20+30)/30
    assert on_disk["accuracy"]["m"]["range_points"] == pytest.approx(30.0)
    dvfs = [r for r in on_disk["dynamic_range"] if r["level"] == "pruning+mapping+dvfs"
            and r["metric"] == "latency_s" and r["batch"] == 1]
    assert dvfs[0]["range"] == pytest.approx(16.0)
    assert on_disk["backends"] == ["eager"]
    assert on_disk["pareto"]["vm/eager/batch 1"]["latency_s"][0].startswith("m k=1 on cpu[0-1]x2")
    points = read_operating_points(run / "operating_points.csv")
    expected = load_run(run)[1]
    assert list(points.columns) == OP_COLUMNS
    assert points["freq_khz"].isna().sum() == expected["freq_khz"].isna().sum() == 9
    assert points["pareto_energy_j"].dtype == bool
    assert points["pareto_energy_j"].tolist() == expected["pareto_energy_j"].tolist()
    assert np.allclose(points["latency_s"], expected["latency_s"])


def test_missing_profile_names_the_notebook_to_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    eval_table().to_csv(run / "eval.csv", index=False)
    with pytest.raises(AnalysisError, match="03_profile"):
        write_summary(run)


# --- the comparison with the baselines ---------------------------------------------------------


def two_models(reference_latency, baseline_latency, baseline_bytes=75, extra=()):
    """Batch 1 as given; at batch 64 the baseline's range is 1.5x (2, 2.5, 3)."""
    evaluation = pd.concat([eval_table(model="group"), eval_table(model="tann")],
                           ignore_index=True)
    evaluation.loc[evaluation["model"] == "tann", "serving_bytes"] = baseline_bytes
    rows = (grid(reference_latency, model="group")
            + grid(baseline_latency, model="tann")
            + grid([2.0, 2.5, 3.0], model="tann", batch=64)
            + grid(reference_latency, model="group", batch=64) + list(extra))
    return evaluation, points_of(rows, evaluation)


def test_comparison_is_computed_from_the_measured_rows():
    evaluation, points = two_models([1.0, 2.0, 4.0], [2.0, 3.0, 4.0])
    comparison = compare_models(evaluation, points)
    tann = comparison[(comparison["model"] == "tann") & (comparison["batch"] == 1)].iloc[0]
    assert tann["time_range"] == pytest.approx(2.0)
    assert tann["time_range_vs_reference"] == pytest.approx(4.0 / 2.0)
    assert tann["memory_vs_reference"] == pytest.approx(75 / 30)
    assert tann["compression_rate"] == pytest.approx(1 / 3)
    assert tann["energy_provenance"] == "modelled"
    assert tann["latency_min_vs_reference"] == pytest.approx(2.0)  # 2.0 s against 1.0 s
    assert tann["latency_max_vs_reference"] == pytest.approx(1.0)
    # another measurement gives another answer: nothing here is a constant
    evaluation, points = two_models([1.0, 2.0, 8.0], [2.0, 3.0, 4.0], baseline_bytes=60)
    headline = comparison_headline(compare_models(evaluation, points))
    assert list(headline["model"]) == ["tann"]
    row = headline.iloc[0]
    # batch 1: 8 / 2 = 4x; batch 64: 8 / 1.5 = 5.33x: the median leads, the spread beside
    # it, the widest ("up to") after them with its context
    assert row["time_x_median"] == pytest.approx((4.0 + 8 / 1.5) / 2)
    assert (row["time_x_min"], row["contexts"]) == (pytest.approx(4.0), 2)
    assert row["time_x_q25"] < row["time_x_median"] < row["time_x_q75"]
    assert row["time_x_max"] == pytest.approx(8 / 1.5) and row["memory_x"] == pytest.approx(2.0)
    assert row["time_x_max_at"] == "vm, batch 64, cpu[0]x1, clocks as set"
    assert row["energy_x_max"] == pytest.approx(8 / 1.5)  # energy = latency in these rows
    columns = list(headline.columns)
    assert columns.index("time_x_median") < columns.index("time_x_max")
    assert row["same_compression_rate"]  # both eval tables: MACs 100, 200, 300
    assert row["slowest_vs_reference_median"] == pytest.approx((4 / 8 + 3 / 8) / 2)


def test_comparison_needs_the_reference_model():
    evaluation, points = two_models([1.0, 2.0, 4.0], [2.0, 3.0, 4.0])
    with pytest.raises(AnalysisError, match="reference model 'group'"):
        compare_models(evaluation, points[points["model"] != "group"])


def test_summary_stands_when_no_comparison_can_be_made(tmp_path):
    """One configuration per model measured: no range to compare, the rest of the summary stays."""
    evaluation, _ = two_models([1.0, 2.0, 4.0], [2.0, 3.0, 4.0])
    rows = [profile_row(model=m, groups=1) for m in ("group", "tann")]
    evaluation.to_csv(tmp_path / "eval.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "profile.csv", index=False)
    summary = write_summary(tmp_path)
    assert "comparison" not in summary and "two or more" in summary["comparison_note"]
    assert summary["points"] == 2


# --- backends: eager PyTorch and the deployed engine side by side ------------------------------

ONNX = "onnxruntime"


def onnx_rows():
    # onnxruntime, batch 1, clocks as set: one core (0.2, 0.5, 1.0), two cores (0.1, 0.3, 0.6)
    return (grid([0.2, 0.5, 1.0], cores="0", backend=ONNX)
            + grid([0.1, 0.3, 0.6], cores="0-1", threads=2, backend=ONNX))


def test_two_backends_give_separate_operating_points():
    points = points_of(range_rows() + onnx_rows())
    assert list(points.columns[:4]) == ["board", "model", "device", "backend"]
    assert len(points) == 12 + 6  # the same mapping, clock and k on two engines: two points
    same = points[(points["mapping"] == "cpu[0]x1") & points["freq_khz"].isna()
                  & (points["groups"] == 1) & (points["batch"] == 1)]
    assert sorted(zip(same["backend"], same["latency_s"], strict=True)) == [
        ("eager", 1.0), (ONNX, 0.2)]
    assert len(select(points, backend=ONNX)) == 6
    assert len(select(points, backend="eager", mapping="cpu[0-1]x2")) == 3
    assert point_label(same[same["backend"] == ONNX].iloc[0]) == (
        "vm: m k=1 on cpu[0]x1 (onnxruntime), clocks as set, batch 1")
    # Pareto fronts per engine: the faster engine does not push eager's points off theirs
    front = points[points["pareto_latency_s"] & (points["batch"] == 1)]
    assert sorted(zip(front["backend"], front["latency_s"], strict=True)) == [
        ("eager", 0.5), ("eager", 1.0), ("eager", 2.0), (ONNX, 0.1), (ONNX, 0.3), (ONNX, 0.6)]


def test_dynamic_ranges_are_per_backend_at_every_level():
    best = dynamic_ranges(points_of(range_rows() + onnx_rows()))
    b1 = best[(best["batch"] == 1) & (best["metric"] == "latency_s")]
    ranges = b1.set_index(["backend", "level"])["range"]
    # eager as in test_dynamic_range_levels_by_hand: 4x, 8x, 16x
    assert ranges["eager", "pruning"] == pytest.approx(4.0)
    assert ranges["eager", "pruning+mapping"] == pytest.approx(8.0)
    assert ranges["eager", "pruning+mapping+dvfs"] == pytest.approx(16.0)
    # onnxruntime: 0.6 / 0.1 on two cores, 1.0 / 0.1 over mappings; never 8 / 0.1 across engines
    assert ranges[ONNX, "pruning"] == pytest.approx(6.0)
    assert ranges[ONNX, "pruning+mapping"] == pytest.approx(10.0)
    assert ranges[ONNX, "pruning+mapping+dvfs"] == pytest.approx(10.0)
    assert b1["backend"].tolist() == ["eager", ONNX] * 3  # each level's engines side by side
    assert b1.loc[b1["backend"] == ONNX, "smallest"].str.contains("(onnxruntime)",
                                                                  regex=False).all()
    assert set(best.loc[best["batch"] == 64, "backend"]) == {"eager"}  # only eager measured


def test_old_profile_without_backend_reads_as_eager(tmp_path):
    old = pd.DataFrame(range_rows()).drop(columns="backend", errors="ignore")
    run = write_run(tmp_path / "old", old.to_dict(orient="records"))
    summary = write_summary(run)
    assert summary["backends"] == ["eager"]
    assert {r["backend"] for r in summary["dynamic_range"]} == {"eager"}
    points = read_operating_points(run / "operating_points.csv")
    assert list(points.columns) == OP_COLUMNS and points["backend"].eq("eager").all()
    # an operating_points.csv written before the column reads back as eager too
    points.drop(columns="backend").to_csv(tmp_path / "old_points.csv", index=False)
    again = read_operating_points(tmp_path / "old_points.csv")
    assert list(again.columns) == OP_COLUMNS and again["backend"].eq("eager").all()
    # rows left empty (a file merged from old and new sweeps) are eager as well
    mixed = tidy_profile(pd.DataFrame([profile_row(backend=""), profile_row(backend=ONNX)]))
    assert mixed["backend"].tolist() == ["eager", ONNX]


def test_comparison_and_headline_are_per_backend():
    # onnxruntime at batch 1: the reference spans 8x (0.1 .. 0.8), the baseline 2x (0.3 .. 0.6)
    onnx = (grid([0.1, 0.2, 0.8], model="group", backend=ONNX)
            + grid([0.3, 0.45, 0.6], model="tann", backend=ONNX))
    evaluation, points = two_models([1.0, 2.0, 4.0], [2.0, 3.0, 4.0], extra=onnx)
    comparison = compare_models(evaluation, points)
    tann = comparison[(comparison["model"] == "tann") & (comparison["batch"] == 1)]
    tann = tann.set_index("backend")
    assert sorted(tann.index) == ["eager", ONNX]
    assert tann.loc["eager", "time_range_vs_reference"] == pytest.approx(4.0 / 2.0)
    assert tann.loc[ONNX, "time_range_vs_reference"] == pytest.approx(8.0 / 2.0)
    assert tann.loc[ONNX, "latency_min_vs_reference"] == pytest.approx(0.3 / 0.1)
    headline = comparison_headline(comparison)
    assert headline[["model", "backend"]].values.tolist() == [["tann", "eager"], ["tann", ONNX]]
    rows = headline.set_index("backend")
    assert rows.loc["eager", "time_x_max"] == pytest.approx(4 / 1.5)  # batch 64's, the widest
    assert rows.loc[ONNX, "time_x_max"] == pytest.approx(4.0)
    assert rows.loc[ONNX, "time_x_max_at"] == "vm, batch 1, cpu[0]x1, clocks as set"
    assert rows["memory_x"].tolist() == pytest.approx([2.5, 2.5])  # bytes know no engine
    summary = summarise(evaluation, points)
    assert summary["backends"] == ["eager", ONNX]
    assert [(r["model"], r["backend"]) for r in summary["comparison"]] == [
        ("tann", "eager"), ("tann", ONNX)]
    assert {r["backend"] for r in summary["comparison_contexts"]} == {"eager", ONNX}
    assert set(summary["pareto"]) == {"vm/eager/batch 1", "vm/eager/batch 64",
                                      "vm/onnxruntime/batch 1"}


def test_figures_split_by_backend():
    matplotlib.use("Agg")
    from dyndnn.views.plots import (
        plot_comparison,
        plot_dynamic_ranges,
        plot_latency,
        plot_operating_points,
    )

    rows = range_rows() + onnx_rows()
    points = points_of(rows)
    want = {"vm, eager, batch 1", "vm, onnxruntime, batch 1", "vm, eager, batch 64"}
    for fig in (plot_dynamic_ranges(dynamic_ranges(points)), plot_operating_points(points)):
        assert {ax.get_title() for ax in fig.axes} >= want
    fig = plot_latency(pd.DataFrame(rows))  # one line style per backend
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"backend", "eager", ONNX} <= labels
    onnx = grid([0.1, 0.2, 0.8], model="group", backend=ONNX) + grid(
        [0.3, 0.45, 0.6], model="tann", backend=ONNX)
    evaluation, points = two_models([1.0, 2.0, 4.0], [2.0, 3.0, 4.0], extra=onnx)
    fig = plot_comparison(compare_models(evaluation, points), evaluation)
    labels = {t.get_text() for t in fig.axes[1].get_legend().get_texts()}
    assert labels == {"eager, batch 1", "eager, batch 64", "onnxruntime, batch 1"}
    plt.close("all")


@pytest.mark.parametrize("damage, says", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "profile.csv cannot be read as a table"),
    (b"", "profile.csv cannot be read as a table (EmptyDataError"),
    (b"a,b,c\n1,2,3\n", "profile.csv lacks the column(s) ['board', 'model'"),
    (b"board,model,device,cores,threads,freq_khz,batch,groups,latency_s,energy_j,power_w\n"
     b"vm,m,cpu,0,one,,1,1,0.002,0.006,3.0\n", "hold a value that cannot be analysed"),
])
def test_a_damaged_table_names_its_file_and_overwrites_no_output(tmp_path, damage, says):
    from dyndnn.analysis.errors import AnalysisError
    from dyndnn.analysis.summary import write_summary
    from dyndnn.record.layout import RunLayout

    run = RunLayout(tmp_path)
    pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0", "threads": 1,
                  "freq_khz": None, "batch": 1, "groups": [1, 2], "latency_s": [0.002, 0.004],
                  "energy_j": [0.006, 0.012], "power_w": 3.0}).to_csv(run.profile_csv,
                                                                       index=False)
    pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
                  "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
                  "macs": [100, 200], "param_bytes": [40, 80]}).to_csv(run.eval_csv, index=False)
    write_summary(run)
    before = {p: p.read_bytes() for p in (run.summary_json, run.operating_points_csv)}
    run.profile_csv.write_bytes(damage)
    with pytest.raises(AnalysisError, match="rerun notebook|run notebook") as info:
        write_summary(run)
    assert says in str(info.value) and str(run.root) in str(info.value)
    assert {p: p.read_bytes() for p in before} == before  # the analysis that was, kept


def test_no_dvfs_level_where_no_clock_was_swept_and_range_columns_say_x():
    """"+dvfs" equal to "+mapping" when one clock was measured claimed a DVFS range."""
    from dyndnn.stages.analyse import _range_column

    profile = pd.DataFrame({"board": "vm", "model": "group", "device": "cpu", "freq_khz": None,
                            "batch": 1, "cores": ["0", "0", "0-1", "0-1"],
                            "threads": [1, 1, 2, 2], "groups": [1, 2, 1, 2],
                            "latency_s": [0.002, 0.004, 0.0012, 0.0022],
                            "energy_j": [0.006, 0.012, 0.005, 0.009], "power_w": 3.0})
    ranges = dynamic_ranges(operating_points(profile))
    assert set(ranges["level"]) == {"pruning", "pruning+mapping"}
    swept = pd.concat([profile, profile.assign(freq_khz=1_000_000.0,
                                               latency_s=profile["latency_s"] * 2)])
    swept = swept.assign(freq_khz=swept["freq_khz"].fillna(2_000_000.0))
    assert "pruning+mapping+dvfs" in set(dynamic_ranges(operating_points(swept))["level"])
    assert _range_column("latency_s", "measured") == "latency range (x, measured)"
