"""Accuracy and correct-class confidence of every configuration 1..G (the paper's Figs 2, 3).

>>> from dyndnn.data import load_dataset
>>> from dyndnn.models import GroupNet
>>> dataset = load_dataset("fashion-mnist-mini", train_limit=500, test_limit=100)
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28)  # untrained
>>> table = evaluate_configurations(model, dataset, model_name="group")
>>> table[["groups", "macs_fraction", "confidence_norm", "test_images", "val_images"]]
   groups  macs_fraction  confidence_norm  test_images  val_images
0       1            0.5              ...          100          48
1       2            1.0         1.000000          100          48

What a switch costs, per backend, and a run folder's ``eval.csv`` (every trained model from
its final checkpoint, scored, with its switch costs; ``rounds`` of timings take a while)::

    switch_costs(model, folder="outputs/run/switch")
    evaluate_run("outputs/run", ["group", "tann"], dataset, groups=4)

``accuracy``, ``loss`` and ``confidence`` are the test split's (read once, for the final
table); ``val_accuracy`` is the validation split's, the one any choice is made on.
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

from dyndnn.atomic import write_csv
from dyndnn.checkpoint import load_final_model
from dyndnn.config import BACKENDS
from dyndnn.data import InMemoryDataset, batches
from dyndnn.layout import RunLayout
from dyndnn.models import DynamicModel, IndependentModels

# accuracy, confidence and loss are the test split's; val_accuracy is there to choose with
EVAL_COLUMNS = ["model", "groups", "accuracy", "confidence", "confidence_norm", "loss",
                "params", "param_bytes", "serving_bytes", "macs", "macs_fraction",
                "test_images", "val_accuracy", "val_images"]


@torch.inference_mode()
def score(model: DynamicModel, dataset: InMemoryDataset, k: int, batch_size: int = 500,
          split: str = "test") -> dict[str, float]:
    """One pass over ``split`` at configuration k (the model must be in eval mode).

    Returns accuracy, mean loss, total correct-class confidence and the number of images
    (``<split>_images``).
    """
    correct, confidence, loss, n = 0, 0.0, 0.0, 0
    device = next(model.parameters()).device  # a model trained on a GPU is scored there
    with model.active_groups(k):
        for x, y in batches(dataset, split, batch_size):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            correct += (logits.argmax(1) == y).sum().item()
            confidence += logits.softmax(1).gather(1, y[:, None]).sum().item()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            n += len(y)
    return {"accuracy": correct / n, "loss": loss / n, "confidence": confidence,
            f"{split}_images": n}


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
        val = (score(model, dataset, k, batch_size, "val") if len(dataset.val_y)
               else {"accuracy": float("nan"), "val_images": 0})
        rows.append({"model": model_name or model.family, "groups": k,
                     **score(model, dataset, k, batch_size), "params": model.param_count(k),
                     "val_accuracy": val["accuracy"], "val_images": val["val_images"],
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


def switch_costs(model: DynamicModel, folder: str | Path | None = None, rounds: int = 50,
                 backends: tuple[str, ...] = BACKENDS, batch: int = 1) -> pd.DataFrame:
    """What changing to each configuration k costs, measured here, one column per backend.

    ``switch_<backend>_s``: the first inference at k after leaving another configuration
    minus a steady inference at k (medians over ``rounds`` interleaved rounds, batch
    ``batch``; ``dyndnn.serve.timing``). ``assign_s``: the ``set_active_groups(k)`` call alone
    in eager PyTorch, an assignment. With onnxruntime, ``server_weight_bytes`` is what its
    ``Server`` holds for all configurations. ``load_s`` (independent models only, needs ``folder``):
    network k loaded from a file written to ``folder`` -- the module built without
    initialisation, ``torch.load`` with ``weights_only=True``, the tensors assigned -- the cost
    of switching when only one network is resident. The file is read from the page cache; a
    cold flash read on a board costs more.
    """
    from dyndnn.export import example_input
    from dyndnn.serve.timing import switch_costs as measure

    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; known: {', '.join(BACKENDS)}")
    model.eval()
    x = example_input(model, batch)
    table = pd.DataFrame({"model": model.family, "groups": range(1, model.groups + 1)})
    if "eager" in backends:
        with torch.inference_mode():
            eager = measure(model, x, rounds)
        table["assign_s"] = [r["assign_s"] for r in eager]
        table["switch_eager_s"] = [r["switch_s"] for r in eager]
    if "onnxruntime" in backends:
        from dyndnn.serve import Server

        server = Server(model)
        served = measure(server, x.numpy(), rounds)
        table["switch_onnxruntime_s"] = [r["switch_s"] for r in served]
        table["server_weight_bytes"] = server.weight_bytes()  # all G sessions, each tensor once
    table["load_s"] = float("nan")
    if isinstance(model, IndependentModels) and folder is not None:
        table["load_s"] = [_load_time(model, k, Path(folder), max(5, rounds // 5))
                           for k in table["groups"]]
    return table


def _load_time(model: IndependentModels, k: int, folder: Path, repeats: int) -> float:
    """Median seconds to rebuild network k from a file (``switch_costs``' ``load_s``)."""
    path = folder / f"{model.family}-k{k}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.nets[k - 1].state_dict(), path)

    def load() -> None:
        with torch.device("meta"):  # no initialisation: the file holds every weight
            fresh = model.new_network(k)
        fresh.load_state_dict(torch.load(path, weights_only=True), assign=True)
    return _median_time(load, repeats)


def evaluate_run(run_dir: str | Path | RunLayout, models: list[str], dataset: InMemoryDataset,
                 groups: int,
                 batch_size: int = 500, backends: tuple[str, ...] = BACKENDS) -> pd.DataFrame:
    """Evaluate every trained model of a run; writes and returns ``eval.csv``.

    Each model's final checkpoint is loaded (``load_final_model``: checked against ``groups``
    and the family), every configuration scored
    (``evaluate_configurations``) and its switch costs measured (``switch_costs``: columns
    ``assign_s``, ``switch_<backend>_s``, ``load_s``; with onnxruntime also
    ``server_weight_bytes``, the weights its server holds for all configurations).
    """
    layout = RunLayout.of(run_dir)
    tables = []
    for name in models:
        model = load_final_model(layout, name, groups)
        table = evaluate_configurations(model, dataset, name, batch_size)
        costs = switch_costs(model, layout.switch_dir, backends=tuple(backends))
        tables.append(table.merge(costs.drop(columns="model"), on="groups"))
    table = pd.concat(tables, ignore_index=True)
    write_csv(table, layout.eval_csv)
    return table
