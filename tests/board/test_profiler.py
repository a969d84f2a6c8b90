from __future__ import annotations

import csv
import functools
import itertools
import os
import time

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dyndnn.board import profiler
from dyndnn.board.errors import BoardError
from dyndnn.board.mapping import Mapping
from dyndnn.board.meter import NoEnergyMeter
from dyndnn.board.profiler import COLUMNS, completed_repeats, profile_sweep

from .fakesys import get, make_policy

pytestmark = pytest.mark.skipif(
    not {0, 1} <= os.sched_getaffinity(0), reason="the sweep maps onto cores 0 and 1"
)


class TinyGroupNet(nn.Module):
    """A conv net whose active groups are a channel slice: k groups use k x width channels."""

    def __init__(self, groups: int, width: int) -> None:
        super().__init__()
        self.width, self.active = width, groups
        self.conv = nn.Conv2d(3, groups * width, 3, padding=1)
        self.head = nn.Linear(groups * width, 10)

    def set_active_groups(self, k: int) -> None:
        self.active = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.active * self.width
        y = F.conv2d(x, self.conv.weight[:c], self.conv.bias[:c], padding=1).relu()
        return F.linear(y.mean((2, 3)), self.head.weight[:, :c], self.head.bias)


def tiny_net(groups: int = 2, width: int = 8) -> TinyGroupNet:
    torch.manual_seed(0)
    return TinyGroupNet(groups, width)


class SleepyNet(TinyGroupNet):
    """A TinyGroupNet whose every inference takes at least 50 ms (a sleep, not work)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.05)
        return super().forward(x)


def sleepy_net() -> SleepyNet:
    torch.manual_seed(0)
    return SleepyNet(2, 2)


SWEEP = dict(
    model_factory=functools.partial(tiny_net, groups=2, width=8),
    input_shape=(3, 16, 16),
    groups_list=[1, 2],
    mappings=[Mapping("cpu", (0,), 1), Mapping("cpu", (0, 1), 2)],
    frequencies=[None],
    batch_sizes=[2],
    warmup=1,
    repeats=2,
    meter="modelled",
    board="test-host",
    min_window_s=0.02,
    progress=False,
)


def test_real_sweep_records_mapping_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "run" / "profile.csv"
    df = profile_sweep(out_csv=out, **SWEEP)
    assert list(df.columns) == COLUMNS
    assert len(df) == 2 * 2 * 2  # mappings x groups x repeats
    assert (df["latency_s"] > 0).all() and (df["energy_j"] > 0).all()
    # the asked 0.02 s: the modelled meter reads exact thread clocks (a 0.001 s period)
    assert (df["calls"] >= 1).all() and (df["window_s"] >= 0.02).all()
    assert set(df["energy_provenance"]) == {"modelled"} and set(df["meter"]) == {"modelled-cpu"}
    assert df["energy_source"].str.contains("CPU power model").all()
    assert (df["meter_period_s"] == 0.001).all()
    assert (df["cores_read"] == df["cores"]).all()  # read back in the worker
    assert (df["threads_read"] == df["threads"]).all()
    assert set(df["cores"]) == {"0", "0-1"} and set(df["threads"]) == {1, 2}
    assert df["freq_khz"].isna().all() and df["cur_freq_khz"].isna().all()  # no cpufreq here
    assert set(df["dvfs"]) == {"unchanged"} and set(df["board"]) == {"test-host"}
    assert df["model"].iloc[0] == "tiny_net"
    assert ((df["power_w"] - df["energy_j"] / df["latency_s"]).abs() < 1e-6 * df["power_w"]).all()

    # a complete CSV: a rerun starts no worker at all
    def no_worker(*a, **k):
        raise AssertionError("a worker was started for points already done")

    monkeypatch.setattr(profiler, "MappedWorker", no_worker)
    assert len(profile_sweep(out_csv=out, **SWEEP)) == 8
    monkeypatch.undo()

    # killed while writing row 6: the rerun measures exactly the 3 missing ones
    rows = list(csv.DictReader(out.open()))
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows[:5])
        f.write("test-host,cpu,0-1,2,0-1")  # a partial line, no newline
    df2 = profile_sweep(out_csv=out, **SWEEP)
    assert len(df2) == 8
    key = ["cores", "groups", "repeat"]
    assert not df2.duplicated(key).any()
    pd.testing.assert_frame_equal(df2.iloc[:5], df.iloc[:5])  # kept as they were
    assert len(completed_repeats(out)) == 8


def test_a_device_with_no_energy_source_records_nan_and_the_reason(tmp_path):
    # what auto_meter gives a cuda:N mapping with no GPU sensor, here on a CPU mapping
    meter = functools.partial(NoEnergyMeter, "no GPU power sensor for cuda:0 (test)")
    df = profile_sweep(out_csv=tmp_path / "profile.csv", **(SWEEP | dict(
        meter=meter, groups_list=[1], mappings=[Mapping("cpu", (0,), 1)], repeats=1)))
    assert len(df) == 1 and (df["latency_s"] > 0).all()  # the clock still measured latency
    assert df["energy_j"].isna().all() and df["power_w"].isna().all()
    assert list(df["energy_provenance"]) == ["none"]
    assert list(df["energy_note"]) == ["no GPU power sensor for cuda:0 (test)"]


def test_sweep_with_frequencies_reads_back_and_restores(tmp_path):
    # one fake cluster holds this host's cores: the sweep writes the fake tree, never the host
    policy = make_policy(tmp_path, 0, (0, 1), (800000, 1200000, 1600000), cur_khz=1000000)
    sweep = SWEEP | dict(
        mappings=["cpu:0-1x2"], groups_list=[2], frequencies=[800000, 1600000],
        repeats=1, root=tmp_path, recovery_file=tmp_path / "rec.json",
    )  # fmt: skip
    df = profile_sweep(out_csv=tmp_path / "p.csv", **sweep)
    assert list(df["freq_khz"]) == [800000, 1600000]
    assert list(df["cur_freq_khz"]) == [1000000, 1000000]  # what the (fake) clock reports
    assert set(df["governor"]) == {"userspace"} and set(df["dvfs"]) == {"applied"}
    assert get(tmp_path, "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor") == "ondemand"
    assert not (tmp_path / "rec.json").exists()
    assert (policy / "scaling_setspeed").exists()


def test_foreign_csv_is_refused(tmp_path):
    out = tmp_path / "profile.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(BoardError, match="new out_csv"):
        profile_sweep(out_csv=out, **SWEEP)


def tiny_group_model():
    from dyndnn.models import GroupNet

    torch.manual_seed(0)
    return GroupNet(groups=2, width=0.0625, in_channels=3, image_size=16).eval()


def test_sweep_measures_each_backend_alike(tmp_path):
    sweep = SWEEP | dict(model_factory=tiny_group_model, mappings=["cpu:0x1"], repeats=1,
                         backends=("eager", "onnxruntime"))
    df = profile_sweep(out_csv=tmp_path / "p.csv", **sweep)
    assert list(df.columns) == COLUMNS
    # every configuration on both engines, one row each; the engines alternate point by point
    assert list(zip(df["groups"], df["backend"], strict=True)) == [
        (1, "eager"), (1, "onnxruntime"), (2, "eager"), (2, "onnxruntime")]
    assert (df["latency_s"] > 0).all() and (df["threads_read"] == 1).all()
    # a rerun with one more engine measures nothing again; an unknown engine is refused
    assert len(profile_sweep(out_csv=tmp_path / "p.csv", **sweep)) == 4
    with pytest.raises(BoardError, match="backends must be among eager, onnxruntime"):
        profile_sweep(out_csv=tmp_path / "p.csv", **(sweep | dict(backends=("tvm",))))


def test_several_models_share_one_worker_per_mapping_and_resume(tmp_path, monkeypatch):
    """A worker's start (a process, torch's import) costs seconds: one serves every model."""
    started = []
    real_start = profiler.MappedWorker.start

    def counting_start(self):
        started.append(self.mapping.label)
        return real_start(self)

    monkeypatch.setattr(profiler.MappedWorker, "start", counting_start)
    # "slow" sleeps 50 ms an inference: at least that whatever else runs on the machine
    models = {"fast": functools.partial(tiny_net, groups=2, width=2), "slow": sleepy_net}
    out = tmp_path / "p.csv"
    df = profile_sweep(out_csv=out, **(SWEEP | dict(model_factory=models)))
    assert len(started) == len(SWEEP["mappings"])  # not one per model and mapping
    # every model at every point, each model's rows together, in the order given
    runs = [model for model, _ in itertools.groupby(df["model"])]
    assert runs == ["fast", "slow"] * len(SWEEP["mappings"])
    assert df.groupby(["model", "cores", "groups"]).size().eq(SWEEP["repeats"]).all()
    # each model was measured as itself: only the slow one's inferences take 50 ms
    latency = df.groupby("model")["latency_s"]
    assert latency.min()["slow"] >= 0.05 and latency.median()["fast"] < 0.05
    # a rerun measures nothing and starts no worker
    started.clear()
    assert len(profile_sweep(out_csv=out, **(SWEEP | dict(model_factory=models)))) == len(df)
    assert started == []
    # a mapping names its own rows: a model_name beside it is refused, not silently dropped
    with pytest.raises(BoardError, match="model_name names a single factory"):
        profile_sweep(out_csv=out, **(SWEEP | dict(model_factory=models, model_name="x")))
