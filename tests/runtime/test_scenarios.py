"""Scenarios are data: built in, or a CSV a board user writes; a bad one is refused by name."""

import pytest

from dyndnn.errors import ConfigError
from dyndnn.runtime.scenarios import builtin_scenario, read_scenario, scenario


def test_hog_takes_one_core_then_both_and_calms_down():
    hog = builtin_scenario("hog", duration_s=12.0, cores=(0, 1))
    assert [hog.load_at(t) for t in (1.0, 4.0, 7.0, 10.0)] == [
        "calm", "cpu_hog on 1", "cpu_hog on 0-1", "calm"]
    assert hog.phase_bounds() == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_second_dnn_runs_another_inference_loop_in_the_middle():
    dnn = builtin_scenario("second_dnn", duration_s=8.0, cores=(0, 1))
    assert [dnn.load_at(t) for t in (1.0, 3.0, 7.0)] == ["calm", "dnn on 0-1", "calm"]


def test_burst_is_seeded_and_alternates():
    first = builtin_scenario("burst", 20.0, (0, 1), seed=1).phases
    assert first.equals(builtin_scenario("burst", 20.0, (0, 1), seed=1).phases)
    assert not first.equals(builtin_scenario("burst", 20.0, (0, 1), seed=2).phases)
    gaps = first["start_s"].iloc[1:].to_numpy() - first["end_s"].iloc[:-1].to_numpy()
    assert len(first) >= 3 and (gaps >= 1.0).all()  # off for 1-3 s between bursts
    assert ((first["end_s"] - first["start_s"]) <= 3.0).all()


def test_a_scenario_file_plays_as_written(tmp_path):
    path = tmp_path / "board.csv"
    path.write_text("start_s,end_s,corunner,cores\n1.0,3.0,cpu_hog,0\n2.0,4.0,dnn,0-1\n")
    mine = scenario(str(path), duration_s=5.0, cores=(0, 1))
    assert mine.name == "board" and mine.load_at(2.5) == "cpu_hog on 0; dnn on 0-1"
    assert read_scenario(path).duration_s == 4.0  # to the last phase's end


@pytest.mark.parametrize(("text", "message"), [
    ("start_s,end_s,corunner\n1,2,cpu_hog\n", "missing cores"),
    ("start_s,end_s,corunner,cores\n1,2,miner,0\n", "unknown co-runner 'miner'"),
    ("start_s,end_s,corunner,cores\n3,2,cpu_hog,0\n", "ends (2 s) before it starts"),
    ("start_s,end_s,corunner,cores\n1,20,cpu_hog,0\n", "lies outside the scenario's 0-5.0 s"),
    ("start_s,end_s,corunner,cores\n1,2,cpu_hog,first\n", "is no CPU list"),
    ("start_s,end_s,corunner,cores\n1,2,cpu_hog,\n", "is no CPU list"),
    ("\x89PNG\r\n\x1a\n\x00\x00", "cannot read the scenario file"),
])
def test_a_bad_scenario_file_is_refused_with_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scenario(str(path), duration_s=5.0, cores=(0, 1))


def test_an_unknown_builtin_names_the_choices():
    with pytest.raises(ConfigError, match="built in: hog, second_dnn, burst"):
        builtin_scenario("storm", 5.0, (0,))
