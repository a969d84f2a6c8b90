"""The policies decide as specified: static points stay, managers react with hysteresis."""

import pandas as pd
import pytest

from dyndnn.runtime.policies import (
    POLICIES,
    MappingManagerPolicy,
    make_policy,
    static_best,
)

# two configurations on three mappings: one core each (slow), both cores (fast)
TABLE = pd.DataFrame({
    "groups": [1, 2] * 3, "mapping": ["c0"] * 2 + ["c1"] * 2 + ["both"] * 2,
    "latency_s": [1.0e-3, 2.0e-3, 1.0e-3, 2.0e-3, 0.6e-3, 1.2e-3],
    "accuracy": [0.80, 0.90] * 3})
BUDGET = 1.15 * 1.2e-3  # 1.15 x k=2 on both cores


def test_static_policies_never_move():
    for name, k in (("static_full", 2), ("static_min", 1)):
        policy = make_policy(name, TABLE, BUDGET, "both")
        for latency in (1e-3, 9e-3, 1e-4):
            policy.observe(*policy.decide(), latency)
        assert policy.decide() == (k, "both") and policy.name == name


def test_static_best_keeps_the_managers_head_room():
    # k=2 on both cores (1.2 ms) does not fit 0.85 x 1.38 ms = 1.17 ms: k=1 is the best static
    assert static_best(TABLE, BUDGET, "both") == 1
    assert static_best(TABLE, 2 * BUDGET, "both") == 2


def test_the_manager_steps_down_at_once_and_up_after_patience():
    policy = make_policy("manager", TABLE, BUDGET, "both")
    assert policy.decide() == (2, "both")
    policy.observe(2, "both", 2.4e-3)  # slowed 2x: k=2 misses
    assert policy.decide() == (1, "both")
    decisions = []
    for _ in range(3):  # calm (faster than calibrated): k=2 fits with room, after 3 windows
        policy.observe(*policy.decide(), 0.5e-3)
        decisions.append(policy.decide())
    assert decisions == [(1, "both"), (1, "both"), (2, "both")]
    # at the calibrated speed k=2 (1.2 ms) never fits 85 % of the budget: it stays down
    policy = make_policy("manager", TABLE, BUDGET, "both")
    policy.observe(2, "both", 2.4e-3)
    for _ in range(5):
        policy.observe(*policy.decide(), 0.6e-3)
    assert policy.decide() == (1, "both")


def test_the_mapping_manager_moves_to_the_free_core():
    """A hog on core 1 slows 'both' and 'c1': k=2 fits nowhere, but k=1 on c0 does."""
    policy = MappingManagerPolicy(TABLE, budget_s=BUDGET, default_mapping="both", patience=2,
                                  probe_every=0)
    assert policy.decide() == (2, "both")
    policy.observe(2, "both", 3.0e-3)  # both cores: 2.5x slower
    assert policy.decide() == (1, "c0")  # unmeasured single cores: taken as calibrated
    policy.observe(1, "c0", 1.0e-3)  # core 0 is free: it stays there
    assert policy.decide() == (1, "c0")
    policy = MappingManagerPolicy(TABLE, budget_s=BUDGET, default_mapping="both",
                                  probe_every=0)
    policy.observe(2, "both", 3.0e-3)
    policy.observe(1, "c0", 2.5e-3)  # the hog moved to core 0: c0 is slow now, c1 is not
    assert policy.decide() == (1, "c1")


def test_the_mapping_manager_probes_the_mapping_it_measured_longest_ago():
    policy = MappingManagerPolicy(TABLE, budget_s=BUDGET, default_mapping="both",
                                  probe_every=3)
    seen = []
    for _ in range(7):
        k, mapping = policy.decide()
        seen.append((mapping, policy.probe))
        policy.observe(k, mapping, float(TABLE[(TABLE.groups == k) &
                                               (TABLE.mapping == mapping)].latency_s.iloc[0]))
    probes = [m for m, probe in seen if probe]
    assert len(probes) == 2 and set(probes) <= {"c0", "c1"} and probes[0] != probes[1]


def test_every_named_policy_exists_and_a_wrong_name_is_refused():
    assert {make_policy(n, TABLE, BUDGET, "both").name for n in POLICIES} == set(POLICIES)
    with pytest.raises(ValueError, match="unknown policy 'greedy'"):
        make_policy("greedy", TABLE, BUDGET, "both")
