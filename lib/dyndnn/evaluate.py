"""Accuracy and correct-class confidence of every configuration 1..G (the paper's Figs 2, 3).

>>> table = evaluate_configurations(model, dataset, model_name="group-alexnet")
>>> table[["groups", "accuracy", "confidence_norm", "macs", "param_bytes"]]

``confidence`` is the total softmax probability the configuration gives the correct class over
the test set; ``confidence_norm`` divides it by the full model's, as the paper's Fig 3 does.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from dyndnn.data import InMemoryDataset, batches
from dyndnn.models import GroupAlexNet

EVAL_COLUMNS = ["model", "groups", "accuracy", "confidence", "confidence_norm", "loss",
                "params", "param_bytes", "macs", "macs_fraction", "test_images"]


@torch.inference_mode()
def score(model: GroupAlexNet, dataset: InMemoryDataset, k: int,
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
def evaluate_configurations(model: GroupAlexNet, dataset: InMemoryDataset,
                            model_name: str = "group-alexnet",
                            batch_size: int = 500) -> pd.DataFrame:
    """One row per configuration k = 1..G, with the columns of ``EVAL_COLUMNS``."""
    model.eval()
    rows = []
    for k in range(1, model.groups + 1):
        rows.append({"model": model_name, "groups": k, **score(model, dataset, k, batch_size),
                     "params": model.param_count(k), "param_bytes": model.param_bytes(k),
                     "macs": model.macs(k)})
    table = pd.DataFrame(rows)
    table["confidence_norm"] = table["confidence"] / table["confidence"].iloc[-1]
    table["macs_fraction"] = table["macs"] / table["macs"].iloc[-1]
    return table[EVAL_COLUMNS]
