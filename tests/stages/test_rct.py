"""The RCT stage: its two tasks side by side give what they give in turn, and say how they ran."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import dyndnn.stages.rct as rct_stage
from dyndnn.__main__ import main
from dyndnn.stages.side_by_side import usable_cores

TINY_RCT = ["rct_epochs=1", "rct_train_limit=128", "rct_width=0.125", "text_epochs=1"]


def rct_table(run) -> pd.DataFrame:
    args = sum((["-p", p] for p in TINY_RCT), [])
    assert main(["rct", "--out", str(run), "--no-progress", *args]) == 0
    return pd.read_csv(run / "rct.csv")


@pytest.mark.skipif(usable_cores() < 2, reason="one core: the tasks train in turn")
def test_the_tasks_side_by_side_measure_what_they_measure_in_turn(analysed_run, tmp_path,
                                                                  monkeypatch):
    runs = [shutil.copytree(analysed_run, tmp_path / name) for name in ("apart", "in-turn")]
    monkeypatch.setattr(rct_stage, "SIDE_BY_SIDE_MIN_STEPS", 0)  # a tiny run: force it
    apart = rct_table(runs[0])
    monkeypatch.setattr(rct_stage, "SIDE_BY_SIDE_MIN_STEPS", 10 ** 9)
    in_turn = rct_table(runs[1])
    assert (apart["tasks_side_by_side"] == 2).all() and (in_turn["tasks_side_by_side"] == 1).all()
    assert list(zip(apart["task"], apart["method"], strict=True)) == [
        (task, method) for task in ("image", "text") for method in ("fp32", "qat", "rct")]
    # the analysed run sets run.threads=1: one thread either way, so trained alike, and
    # everything but the clocks and the process's memory is equal
    assert set(apart["threads"]) == set(in_turn["threads"]) == {1}
    same = ["accuracy", "val_accuracy", "param_bytes", "state_bytes", "gemm_energy_j",
            "mean_bits"]
    pd.testing.assert_frame_equal(apart[same], in_turn[same])
    assert pd.read_csv(runs[0] / "rct_group.csv")["earlier_groups_unchanged"].all()
