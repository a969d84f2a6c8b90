"""The summary counts what was served: misses per inference, accuracy weighted, the oracle."""

import math

import pandas as pd
import pytest

from dyndnn.runtime.outcomes import ORACLE, summarise


def windows(policy, ks, latencies, over, n=100, mapping="m"):
    return pd.DataFrame({
        "scenario": "hog", "backend": "eager", "round": 1, "policy": policy,
        "t_s": [float(i) for i in range(len(ks))], "k": ks, "mapping": mapping,
        "probe": False, "switched": [False] + [a != b for a, b in zip(ks, ks[1:], strict=False)],
        "first_latency_s": [x * 1.5 for x in latencies], "latency_s": latencies,
        "p99_s": [x * 2 for x in latencies], "inferences": n, "over_budget": over,
        "budget_s": 2e-3, "load": ["calm", "cpu_hog on 1", "cpu_hog on 0-1", "calm"]})


RUN = pd.concat([
    windows("static_full", [2, 2, 2, 2], [1e-3, 3e-3, 4e-3, 1e-3], [0, 100, 100, 0]),
    windows("manager", [2, 1, 1, 2], [1e-3, 1.5e-3, 1.8e-3, 1e-3], [0, 0, 10, 0])],
    ignore_index=True)
ACCURACY = {1: 0.80, 2: 0.90}
BOUNDS = {("hog", 1): [0.0, 1.0, 2.0, 3.0, 4.0]}


def test_miss_rate_counts_inferences_and_accuracy_is_what_was_served():
    table = summarise(RUN, ACCURACY, BOUNDS).set_index("policy")
    assert table.loc["static_full", "miss_rate"] == pytest.approx(0.5)
    assert table.loc["manager", "miss_rate"] == pytest.approx(10 / 400)
    assert table.loc["manager", "accuracy_served"] == pytest.approx(0.85)
    assert table.loc["manager", "switches"] == 2
    # the first inference after a switch against the window's median: 0.5 x the median
    assert table.loc["manager", "switch_first_minus_median_s"] == pytest.approx(0.625e-3)
    assert math.isnan(table.loc["static_full", "switch_first_minus_median_s"])
    assert table.loc["static_full", "energy_provenance"] == "none"


def test_the_oracle_takes_per_phase_the_best_point_that_met_the_budget():
    table = summarise(RUN, ACCURACY, BOUNDS).set_index("policy")
    oracle = table.loc[ORACLE]
    # calm phases: k=2 (met by both); loaded: k=1 met once (0 %), missed 10 % once (k=2 100 %)
    # phase 3 has no point within 5 %: the one that missed least (k=1, 10 %) is taken
    assert oracle["accuracy_served"] == pytest.approx((0.9 + 0.8 + 0.8 + 0.9) / 4)
    assert oracle["miss_rate"] == pytest.approx(0.1 / 4)
    assert oracle["switches"] == 2


def test_modelled_energy_is_latency_times_the_profiled_power_and_says_so():
    power = {("eager", "m", 1): 2.0, ("eager", "m", 2): 3.0}
    table = summarise(RUN, ACCURACY, BOUNDS, power).set_index("policy")
    assert table.loc["static_full", "energy_per_inference_j"] == pytest.approx(
        3.0 * (1e-3 + 3e-3 + 4e-3 + 1e-3) / 4)
    assert table.loc["static_full", "energy_provenance"] == "modelled"


def test_a_point_without_a_profiled_power_leaves_the_energy_unknown_not_zero():
    """The oracle served only cpu[1]x1, which the profile had no row of: energy read 0."""
    run = pd.concat([windows("manager", [2, 1, 1, 2], [1e-3, 1.5e-3, 1.8e-3, 1e-3], [0, 0, 10, 0],
                             mapping="cpu[1]x1")], ignore_index=True)
    exact_only = {("eager", "cpu[0]x1", 1): 2.0, ("eager", "cpu[0]x1", 2): 3.0}
    table = summarise(run, ACCURACY, BOUNDS, exact_only).set_index("policy")
    assert table["energy_per_inference_j"].isna().all()
    modelled = {**exact_only, ("eager", "cpu[*]x1", 1): 2.0, ("eager", "cpu[*]x1", 2): 3.0}
    table = summarise(run, ACCURACY, BOUNDS, modelled).set_index("policy")
    assert table.loc["manager", "energy_per_inference_j"] == pytest.approx(
        (3.0 * 1e-3 + 2.0 * 1.5e-3 + 2.0 * 1.8e-3 + 3.0 * 1e-3) / 4)
