"""The train stage: families side by side train to what they train one after the other."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import dyndnn.stages.train as train_stage
from dyndnn.__main__ import main
from dyndnn.record.checkpoint import load_final_model
from dyndnn.record.layout import RunLayout
from dyndnn.stages.side_by_side import usable_cores

TINY = ["groups=2", "models=[group, tann, slimmable]", "train_limit=384", "test_limit=64",
        "epochs_per_stage=1", "width=0.0625", "threads=1"]  # one thread: the same either way


def trained(run) -> RunLayout:
    args = sum((["-p", p] for p in TINY), [])
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress", *args]) == 0
    return RunLayout(run)


@pytest.mark.skipif(usable_cores() < 2, reason="one core: the families train in turn")
def test_families_side_by_side_train_the_same_weights_as_in_turn(tmp_path, monkeypatch):
    monkeypatch.setattr(train_stage, "SIDE_BY_SIDE_MIN_S", 0.0)  # a tiny run: force it
    side_by_side = trained(tmp_path / "side-by-side")
    monkeypatch.setattr(train_stage, "processes_for", lambda *_: 1)
    in_turn = trained(tmp_path / "in-turn")
    for family in ("group", "tann", "slimmable"):
        a = load_final_model(side_by_side, family, 2).state_dict()
        b = load_final_model(in_turn, family, 2).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), family
    rows = [pd.read_csv(layout.train_csv).drop(columns=["time_s", "images_per_s"])
            for layout in (side_by_side, in_turn)]
    pd.testing.assert_frame_equal(*rows)  # every family's rows, in the config's order
    assert list(dict.fromkeys(rows[0]["model"])) == ["group", "tann", "slimmable"]
    assert set(rows[0]["threads"]) == {1}  # what images_per_s was measured on


def test_a_few_seconds_of_training_are_not_worth_the_processes(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(train_stage, "run_side_by_side", lambda *a: started.append(a))
    trained(tmp_path / "tiny")  # estimated below SIDE_BY_SIDE_MIN_S: in turn, here
    assert started == []
