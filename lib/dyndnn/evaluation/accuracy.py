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

``accuracy``, ``loss`` and ``confidence`` are the test split's (read once, for the final
table); ``val_accuracy`` is the validation split's, the one any choice is made on.
``confidence`` is the total softmax probability the configuration gives the correct class over
the test set; ``confidence_norm`` divides it by the full model's, as the paper's Fig 3 does.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from dyndnn.data import InMemoryDataset, batches
from dyndnn.models import DynamicModel

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
