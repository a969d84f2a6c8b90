"""What changing configuration costs, measured per backend (``eval.csv``'s switch columns).

Slow (``rounds`` of timings), so its example is not run here::

    switch_costs(model, folder="outputs/run/switch")
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from dyndnn.config import BACKENDS
from dyndnn.models import DynamicModel, IndependentModels
from dyndnn.record.atomic import write_bytes


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
    from dyndnn.serve.export import example_input
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
        table["server_weight_bytes"] = server.weight_bytes()  # the bundle's, each tensor once
    for backend in ("openvino", "executorch", "litert"):  # engines with their own build
        if backend in backends:
            from dyndnn.serve.engines import engine

            served = measure(engine(model, backend), x.numpy(), rounds)
            table[f"switch_{backend}_s"] = [r["switch_s"] for r in served]
    table["load_s"] = float("nan")
    if isinstance(model, IndependentModels) and folder is not None:
        table["load_s"] = [_load_time(model, k, Path(folder), max(5, rounds // 5))
                           for k in table["groups"]]
    return table


def _load_time(model: IndependentModels, k: int, folder: Path, repeats: int) -> float:
    """Median seconds to rebuild network k from a file (``switch_costs``' ``load_s``)."""
    path = folder / f"{model.family}-k{k}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # serialised in memory: torch's file writer aborts on a full disk
    torch.save(model.nets[k - 1].state_dict(), buffer)
    write_bytes(path, buffer.getvalue())

    def load() -> None:
        with torch.device("meta"):  # no initialisation: the file holds every weight
            fresh = model.new_network(k)
        fresh.load_state_dict(torch.load(path, weights_only=True), assign=True)
    return _median_time(load, repeats)
