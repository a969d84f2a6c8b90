"""fp32 vs QAT vs RCT on the same model, data, optimiser, schedule and epochs.

Usage (it trains each method; ``rct.figures`` draws the result)::

    result = compare_methods(dataset, TrainSection(epochs_per_stage=4), RctSettings())
    result.table         # the rct.csv rows: test accuracy, accounted bytes, modelled energy
    result.history       # per method and epoch: loss, validation accuracy, mean bits
    result.trajectory    # per RCT bitwidth check and layer: Gavg, bits
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from dyndnn.config import TrainSection
from dyndnn.data import InMemoryDataset, batches
from dyndnn.data.text import TextDataset
from dyndnn.errors import ConfigError
from dyndnn.evaluation import evaluate_configurations
from dyndnn.models import GroupNet
from dyndnn.models.text import text_network
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.layers import METHODS, convert
from dyndnn.rct.trainer import RctTrainer, train_group_rct
from dyndnn.record.atomic import write_csv
from dyndnn.record.checkpoint import load_checkpoint, load_final_model
from dyndnn.record.layout import GROUP_MODEL, RunLayout

# accuracy: the test split's, read once after training; bytes accounted, energies modelled
RCT_COLUMNS = ["task", "method", "accuracy", "param_bytes", "optimizer_bytes", "gemm_energy_j",
               "movement_energy_j", "grad_bytes", "state_bytes", "peak_rss_growth_bytes"]


@dataclass
class Comparison:
    """What ``compare_methods`` measured."""

    table: pd.DataFrame
    history: pd.DataFrame
    trajectory: pd.DataFrame

    @property
    def tasks(self) -> list[str]:
        """The tasks compared, in the table's order."""
        return list(dict.fromkeys(self.table["task"]))

    def ratios(self, task: str | None = None) -> dict[str, float]:
        """RCT's figures against fp32 and QAT on ``task`` (default: the first one).

        The memory headline is the whole training state (parameters, optimiser state,
        gradients' peak); the parameters alone follow it.
        """
        task = task or self.tasks[0]
        t = self.table[self.table["task"] == task].set_index("method")
        return {
            "state_bytes_vs_fp32": t.loc["rct", "state_bytes"] / t.loc["fp32", "state_bytes"],
            "state_bytes_vs_qat": t.loc["rct", "state_bytes"] / t.loc["qat", "state_bytes"],
            "param_bytes_vs_fp32": t.loc["rct", "param_bytes"] / t.loc["fp32", "param_bytes"],
            "param_bytes_vs_qat": t.loc["rct", "param_bytes"] / t.loc["qat", "param_bytes"],
            "gemm_energy_vs_fp32": t.loc["rct", "gemm_energy_j"] / t.loc["fp32", "gemm_energy_j"],
            "movement_energy_vs_qat": (t.loc["rct", "movement_energy_j"]
                                       / t.loc["qat", "movement_energy_j"]),
            "accuracy_minus_fp32": t.loc["rct", "accuracy"] - t.loc["fp32", "accuracy"],
            "epoch_time_vs_fp32": t.loc["rct", "epoch_time_s"] / t.loc["fp32", "epoch_time_s"],
        }

    def part(self, task: str) -> Comparison:
        """The rows of one task."""
        return Comparison(*(frame[frame["task"] == task] if "task" in frame else frame
                            for frame in (self.table, self.history, self.trajectory)))

    @classmethod
    def concat(cls, parts: list[Comparison]) -> Comparison:
        """One comparison of several tasks' (``task`` tells their rows apart)."""
        return cls(*(pd.concat(frames, ignore_index=True) for frames in
                     zip(*((p.table, p.history, p.trajectory) for p in parts), strict=True)))

    def write(self, run_dir: str | Path | RunLayout) -> None:
        """``rct.csv`` (the contract's columns first), ``rct_history.csv``, ``rct_bits.csv``."""
        layout = RunLayout.of(run_dir)
        extra = [c for c in self.table.columns if c not in RCT_COLUMNS]
        write_csv(self.table[RCT_COLUMNS + extra], layout.rct_csv)
        write_csv(self.history, layout.rct_history_csv)
        write_csv(self.trajectory, layout.rct_bits_csv)



def reference_network(width: float, in_channels: int, image_size: int, num_classes: int,
                      seed: int, architecture: str = "alexnet") -> torch.nn.Module:
    """The single-path network all three methods start from (same seed, same weights)."""
    torch.manual_seed(seed)
    return GroupNet(1, width, in_channels, image_size, num_classes,
                    architecture=architecture).group_path(0)


def text_reference_network(dataset: TextDataset, kind: str, seed: int) -> torch.nn.Module:
    """The text model all three methods start from (same seed, same weights)."""
    torch.manual_seed(seed)
    return text_network(kind, len(dataset.vocab), len(dataset.spec.classes),
                        dataset.spec.seq_len)


def task_of(dataset: InMemoryDataset | TextDataset) -> str:
    """``text`` for a text data set, ``image`` otherwise."""
    return "text" if getattr(dataset.spec, "kind", "image") == "text" else "image"


def task_network(dataset: InMemoryDataset | TextDataset, width: float, seed: int,
                 architecture: str = "alexnet", text_model: str = "transformer"
                 ) -> torch.nn.Module:
    """The network a task's methods start from: the image architecture or the text model."""
    if task_of(dataset) == "text":
        return text_reference_network(dataset, text_model, seed)
    spec = dataset.spec
    return reference_network(width, spec.channels, spec.image_size, len(spec.classes), seed,
                             architecture)


def compare_methods(dataset: InMemoryDataset | TextDataset, cfg: TrainSection,
                    settings: RctSettings, width: float = 0.25, batch_size: int = 128,
                    seed: int = 0, augment: bool = True, methods: tuple[str, ...] = METHODS,
                    architecture: str = "alexnet", text_model: str = "transformer",
                    progress: bool = False) -> Comparison:
    """Train the same network with each method; energies in the table are *modelled*.

    Images: the run's ``architecture`` (a built-in name or a spec's JSON) at ``width``. Text:
    the ``text_model`` (``dyndnn.models.text``). Every row says its ``task``.
    """
    task = task_of(dataset)
    rows, histories, trajectory = [], [], pd.DataFrame()
    for method in methods:
        net = task_network(dataset, width, seed, architecture, text_model)
        trainer = RctTrainer(convert(net, method, settings), method, dataset, cfg, settings,
                             batch_size, seed, augment, progress=progress,
                             label=f"{task}: {method}")
        history = trainer.fit()
        histories.append(history)
        rows.append({"task": task, **trainer.summary(),
                     "epoch_time_s": history["time_s"].mean(),
                     "threads": torch.get_num_threads()})  # what epoch_time_s ran on
        if method == "rct":
            trajectory = trainer.bit_trajectory()
    history = pd.concat(histories, ignore_index=True)
    history.insert(0, "task", task)
    trajectory.insert(0, "task", task)
    return Comparison(pd.DataFrame(rows), history, trajectory)


def add_group_under_rct(run_dir: str | Path | RunLayout, groups: int, dataset: InMemoryDataset,
                        cfg: TrainSection, settings: RctSettings, batch_size: int = 128,
                        seed: int = 0, augment: bool = True,
                        progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Re-train the last group of a run's dynamic model under RCT; ``rct_group.csv``.

    Group G is reset to its initial weights (as stored before it ever trained, in the stage-1
    checkpoint) and trained under RCT while groups 1..G-1 serve. Returns, per configuration,
    the accuracy with the RCT-trained group next to the fp32 run's (``eval.csv``), and whether
    the smaller configurations' outputs stayed bit-for-bit the same; plus the RCT summary.
    """
    layout = RunLayout.of(run_dir)
    if groups < 2:
        raise ConfigError("adding a group under RCT needs groups >= 2: with one group there is "
                          "no earlier configuration to keep serving")
    model = load_final_model(layout, GROUP_MODEL, groups)
    initial, _ = load_checkpoint(layout.stage_checkpoint(GROUP_MODEL, 1))
    with torch.no_grad():
        for mine, start in zip(model.group_state(groups - 1), initial.group_state(groups - 1),
                               strict=True):
            mine.copy_(start)
    x, _ = next(batches(dataset, "val", 200))  # a probe of the invariance, not a score
    with torch.no_grad(), model.active_groups(groups - 1):
        served_before = model(x)
    trainer = train_group_rct(model, groups, dataset, cfg, settings, batch_size, seed, augment,
                              progress)
    with torch.no_grad(), model.active_groups(groups - 1):
        unchanged = bool(torch.equal(model(x), served_before))
    table = evaluate_configurations(model, dataset, "group+rct-last-group")
    fp32 = pd.read_csv(layout.eval_csv)
    summary = trainer.summary()
    out = pd.DataFrame({
        "groups": table["groups"], "accuracy_rct_last_group": table["accuracy"],
        "accuracy_fp32": fp32.loc[fp32["model"] == "group", "accuracy"].to_numpy(),
        "earlier_groups_unchanged": unchanged,
        "stage_param_bytes": summary["param_bytes"], "stage_mean_bits": summary["mean_bits"],
    })
    write_csv(out, layout.rct_group_csv)
    return out, summary


def sweep_settings(dataset: InMemoryDataset | TextDataset, cfg: TrainSection,
                   base: RctSettings, variants: list[dict], width: float = 0.25,
                   batch_size: int = 128, seed: int = 0, text_model: str = "transformer"
                   ) -> pd.DataFrame:
    """Train RCT once per settings variant (e.g. ``[{"t_min": 0.01}, {"t_min": 0.2}]``).

    One row per variant: the changed settings, validation accuracy, mean and final bits,
    accounted parameter bytes and whole state. The test split is not read: settings are
    chosen on validation (this is how the defaults of ``RctSettings`` were chosen).
    """
    rows = []
    for change in variants:
        settings = replace(base, **change)
        net = convert(task_network(dataset, width, seed, text_model=text_model), "rct",
                      settings)
        trainer = RctTrainer(net, "rct", dataset, cfg, settings, batch_size, seed)
        history = trainer.fit()
        bits = trainer.bit_trajectory()
        param_bytes = trainer.persistent_bytes_max + trainer.transient_peak
        rows.append({**change, "task": task_of(dataset),
                     "val_accuracy": history["val_accuracy"].iloc[-1],
                     "mean_bits_over_training": bits["bits"].mean() if not bits.empty
                     else settings.bits_init,
                     "final_mean_bits": history["mean_bits"].iloc[-1],
                     "bit_changes": int((bits["change"] != 0).sum()) if not bits.empty else 0,
                     "param_bytes": param_bytes,
                     "state_bytes": param_bytes + trainer.optimizer_bytes_max
                     + trainer.grad_bytes_max,
                     "epoch_time_s": history["time_s"].mean()})
    return pd.DataFrame(rows)
