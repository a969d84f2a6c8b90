"""Incremental training's images/s against plain PyTorch training of the same network."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from dyndnn.bench.common import TARGETS
from dyndnn.config import TrainSection
from dyndnn.models import GroupNet
from dyndnn.training.trainer import make_optimizer


def _train_step_fn(module, optimizer, x, y):
    def step():
        loss = F.cross_entropy(module(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def bench_training(model: GroupNet, batch: int, steps: int, rounds: int) -> dict:
    """Images/s of each incremental stage vs plain PyTorch training of the same architecture.

    The plain side trains ``model.export(k)`` (Conv2d(groups=k), BatchNorm2d, ...: the same
    layers, all trainable) with the same optimiser; stage k trains group k with 1..k-1 frozen.
    """
    spec, cfg = model.spec, TrainSection()
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)
    y = torch.randint(0, spec.num_classes, (batch,))
    out = {}
    for k in range(1, model.groups + 1):
        model.train()
        model.set_active_groups(k)
        for p in model.parameters():
            p.requires_grad_(False)
            p.grad = None
        params = model.group_parameters(k - 1)
        for p in params:
            p.requires_grad_(True)
        stage = _train_step_fn(model, make_optimizer(params, cfg), x, y)
        plain_model = model.export(k).train()
        plain = _train_step_fn(plain_model, make_optimizer(list(plain_model.parameters()), cfg),
                               x, y)
        stage(), plain()  # warm-up
        frozen_grads = sum(p.grad is not None for g in range(k - 1)
                           for p in model.group_parameters(g))
        times = {"stage": [], "plain": []}
        for _ in range(rounds):  # interleaved, so drifts in machine load hit both
            for name, fn in (("stage", stage), ("plain", plain)):
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name].append(batch * steps / (time.perf_counter() - start))
        stage_ips, plain_ips = (sorted(v)[len(v) // 2] for v in times.values())
        out[k] = {"stage_images_per_s": stage_ips, "plain_images_per_s": plain_ips,
                  "ratio": stage_ips / plain_ips, "frozen_params_with_grad": frozen_grads,
                  "met": stage_ips / plain_ips >= TARGETS["train_ratio"] and frozen_grads == 0}
    model.eval()
    model.set_active_groups(model.groups)
    return out
