"""What every section of ``make bench`` shares: the targets, the model, the timer.

>>> model = seeded_model(2, 0.25, 1, 28)
>>> model.groups, mark(True), mark(False)
(2, 'met', 'MISSED')
"""

from __future__ import annotations

import torch
from torch.utils.benchmark import Timer

from dyndnn.models import GroupNet

TARGETS = {"range_vs_macs": 0.85, "switch_us": 50.0, "train_ratio": 0.9, "matmul_fraction": 0.5}


def seeded_model(groups: int, width: float, in_channels: int, image_size: int,
                 architecture: str = "alexnet") -> GroupNet:
    """The benchmarked model, the same in every process that builds it (seed 0)."""
    torch.manual_seed(0)
    return GroupNet(groups, width, in_channels, image_size, architecture=architecture).eval()


def median_s(stmt: str, min_run_time: float, **env) -> float:
    """Median seconds of ``stmt`` (torch.utils.benchmark's blocked autorange)."""
    # Timer defaults to one thread; measure with the threads the workbook itself uses
    timer = Timer(stmt, globals=env, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


@torch.inference_mode()
def latency(model: GroupNet, batch: int, k: int, min_run_time: float) -> float:
    """Median seconds of one inference of configuration k on a batch."""
    spec = model.spec
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)
    model.set_active_groups(k)
    model(x)  # warm-up: oneDNN builds its kernels on first use
    return median_s("model(x)", min_run_time, model=model, x=x)


def mark(met: bool) -> str:
    """How a section reports a target: met or MISSED."""
    return "met" if met else "MISSED"
