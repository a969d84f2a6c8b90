"""Accuracy and correct-class confidence of every configuration 1..G (the paper's Figs 2, 3).

>>> table = evaluate_configurations(model, dataset, model_name="group-alexnet")
>>> table[["groups", "accuracy", "confidence_norm", "macs", "param_bytes"]]
>>> switch_costs(model, folder="outputs/run/switch")   # seconds to change configuration
>>> evaluate_run("outputs/run", ["group-alexnet", "tann"], dataset, groups=4)  # eval.csv

``confidence`` is the total softmax probability the configuration gives the correct class over
the test set; ``confidence_norm`` divides it by the full model's, as the paper's Fig 3 does.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from dyndnn.checkpoint import final_checkpoint, load_checkpoint
from dyndnn.data import InMemoryDataset, batches
from dyndnn.models import DynamicModel, IndependentModels, PlainAlexNet

EVAL_COLUMNS = ["model", "groups", "accuracy", "confidence", "confidence_norm", "loss",
                "params", "param_bytes", "serving_bytes", "macs", "macs_fraction",
                "test_images"]


@torch.inference_mode()
def score(model: DynamicModel, dataset: InMemoryDataset, k: int,
          batch_size: int = 500) -> dict[str, float]:
    """One pass over the test split at configuration k (the model must be in eval mode).

    Returns accuracy, mean loss, total correct-class confidence and the number of images.
    """
    correct, confidence, loss, n = 0, 0.0, 0.0, 0
    with model.active_groups(k):
        for x, y in batches(dataset, "test", batch_size):
            logits = model(x)
            correct += (logits.argmax(1) == y).sum().item()
            confidence += logits.softmax(1).gather(1, y[:, None]).sum().item()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            n += len(y)
    return {"accuracy": correct / n, "loss": loss / n, "confidence": confidence,
            "test_images": n}


@torch.inference_mode()
def evaluate_configurations(model: DynamicModel, dataset: InMemoryDataset,
                            model_name: str | None = None,
                            batch_size: int = 500) -> pd.DataFrame:
    """One row per configuration k = 1..G, with the columns of ``EVAL_COLUMNS``.

    ``model_name`` defaults to the model's family; ``serving_bytes`` (the same on every row) is
    what serving all G configurations holds.
    """
    model.eval()
    rows = []
    for k in range(1, model.groups + 1):
        rows.append({"model": model_name or model.family, "groups": k,
                     **score(model, dataset, k, batch_size), "params": model.param_count(k),
                     "param_bytes": model.param_bytes(k),
                     "serving_bytes": model.serving_bytes(), "macs": model.macs(k)})
    table = pd.DataFrame(rows)
    table["confidence_norm"] = table["confidence"] / table["confidence"].iloc[-1]
    table["macs_fraction"] = table["macs"] / table["macs"].iloc[-1]
    return table[EVAL_COLUMNS]


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def switch_costs(model: DynamicModel, folder: str | Path | None = None,
                 repeats: int = 200) -> pd.DataFrame:
    """Seconds to change to each configuration k, measured here (median of ``repeats``).

    ``switch_s``: ``set_active_groups(k)`` from the full configuration, every model held in
    memory. ``load_s`` (independent models only, needs ``folder``): network k loaded from a
    file written to ``folder`` -- the module built without initialisation, ``torch.load`` with
    ``weights_only=True``, the tensors assigned -- the cost of switching when only one network
    is resident. The file
    is read from the page cache; a cold flash read on a board costs more.
    """
    rows = []
    loads = repeats if isinstance(model, IndependentModels) and folder is not None else 0
    for k in range(1, model.groups + 1):
        def switch(k: int = k) -> None:
            model.set_active_groups(model.groups)
            model.set_active_groups(k)
        row = {"model": model.family, "groups": k, "switch_s": _median_time(switch, repeats),
               "load_s": float("nan")}
        if loads:
            path = Path(folder) / f"{model.family}-k{k}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            net = model.nets[k - 1]
            torch.save(net.state_dict(), path)
            shape = net.widths
            spec = model.spec

            def load(path: Path = path, shape=shape, spec=spec) -> None:
                with torch.device("meta"):  # no initialisation: the file holds every weight
                    fresh = PlainAlexNet(*shape, spec.in_channels, spec.image_size,
                                         spec.num_classes, spec.dropout)
                fresh.load_state_dict(torch.load(path, weights_only=True), assign=True)
            row["load_s"] = _median_time(load, max(5, loads // 20))
        rows.append(row)
    model.set_active_groups(model.groups)
    return pd.DataFrame(rows)


def evaluate_run(run_dir: str | Path, models: list[str], dataset: InMemoryDataset, groups: int,
                 batch_size: int = 500) -> pd.DataFrame:
    """Evaluate every trained model of a run; writes and returns ``eval.csv``.

    Each model's final checkpoint is loaded (``final_checkpoint``), every configuration scored
    (``evaluate_configurations``) and its switch costs measured (``switch_costs``: columns
    ``switch_s`` and ``load_s``).
    """
    run = Path(run_dir)
    tables = []
    for name in models:
        model, _ = load_checkpoint(final_checkpoint(run, name, groups))
        table = evaluate_configurations(model, dataset, name, batch_size)
        costs = switch_costs(model, run / "switch")
        tables.append(table.merge(costs.drop(columns="model"), on="groups"))
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(run / "eval.csv", index=False)
    return table
