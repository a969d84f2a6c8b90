"""RCT's training speed: fp32, QAT and RCT (bit-packed, and in int8/int16 containers).

Each variant trains the same network (the image task's AlexNet path at width 0.25 on 1x28x28,
the text task's transformer on 32 token ids) on one fixed batch; rounds are interleaved so
drifts in machine load hit every variant alike, and the median round is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dyndnn.bench.training import interleaved_rates
from dyndnn.config import TrainSection
from dyndnn.models.text import text_network
from dyndnn.rct.compare import reference_network
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.layers import RctLayer, convert
from dyndnn.training.trainer import make_optimizer

# variant -> (method, packed)
VARIANTS = {"fp32": ("fp32", True), "qat": ("qat", True), "rct_packed": ("rct", True),
            "rct_containers": ("rct", False)}
TEXT_VOCAB = 6246  # the mini text set's training vocabulary


def _network(task: str) -> nn.Module:
    torch.manual_seed(0)
    if task == "image":
        return reference_network(0.25, 1, 28, 10, 0, "alexnet")
    return text_network("transformer", TEXT_VOCAB, 26, 32)


def _batch(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    if task == "image":
        return torch.randn(128, 1, 28, 28, generator=generator), torch.randint(0, 10, (128,))
    return torch.randint(1, TEXT_VOCAB, (64, 32), generator=generator), \
        torch.randint(0, 26, (64,))


def _step_fn(task: str, method: str, packed: bool) -> Callable[[], None]:
    cfg = TrainSection()
    net = convert(_network(task), method, RctSettings(packed=packed)).train()
    for layer in net.modules():
        if isinstance(layer, RctLayer):
            layer.hyper = {"lr": 0.01, "momentum": cfg.momentum,
                           "weight_decay": cfg.weight_decay}
    optimizer = make_optimizer([p for p in net.parameters() if p.requires_grad], cfg)
    x, y = _batch(task)

    def step() -> None:
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # RCT layers update their integers here
        optimizer.step()
    return step


def bench_rct(steps: int = 3, rounds: int = 3) -> dict:
    """Samples/s of fp32, QAT, RCT packed and RCT in containers, per task; and their ratios.

    ``rct_time_vs_fp32``: RCT's time per sample over fp32's (the target: at most 2).
    """
    out = {}
    with torch.inference_mode(False), torch.enable_grad():
        for task in ("image", "text"):
            fns = {name: _step_fn(task, *variant) for name, variant in VARIANTS.items()}
            for fn in fns.values():
                fn()  # warm-up
            batch = len(_batch(task)[1])
            rates = dict(zip(fns, interleaved_rates(list(fns.values()), batch, steps, rounds),
                             strict=True))
            out[task] = {**{f"{n}_samples_per_s": r for n, r in rates.items()},
                         "packed_vs_containers": rates["rct_packed"] / rates["rct_containers"],
                         "packed_vs_fp32": rates["rct_packed"] / rates["fp32"],
                         "qat_time_vs_fp32": rates["fp32"] / rates["qat"],
                         "rct_time_vs_fp32": rates["fp32"] / rates["rct_packed"]}
    return out
