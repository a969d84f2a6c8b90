"""Incremental training's images/s against plain PyTorch training of the same network."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from dyndnn.bench.common import TARGETS
from dyndnn.config import TrainSection
from dyndnn.models import GroupNet
from dyndnn.training.trainer import make_optimizer


def interleaved_rates(fns, batch: int, steps: int, rounds: int) -> list[float]:
    """Median images/s of each step function, timed in interleaved rounds.

    Interleaved, so a drift in the machine's load hits every function alike.
    """
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, rates, strict=True):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            out.append(batch * steps / (time.perf_counter() - start))
    return [sorted(r)[len(r) // 2] for r in rates]


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
        stage_ips, plain_ips = interleaved_rates((stage, plain), batch, steps, rounds)
        out[k] = {"stage_images_per_s": stage_ips, "plain_images_per_s": plain_ips,
                  "ratio": stage_ips / plain_ips, "frozen_params_with_grad": frozen_grads,
                  "met": stage_ips / plain_ips >= TARGETS["train_ratio"] and frozen_grads == 0}
    model.eval()
    model.set_active_groups(model.groups)
    return out


def _family_step_fn(model, stage: int, x, y, cfg: TrainSection):
    """One step of ``stage`` as the trainer runs it (its step function, frozen groups exact)."""
    from dyndnn.training.trainer import joint_step, staged_step

    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    params = model.stage_parameters(stage)
    for p in params:
        p.requires_grad_(True)
    optimizer = make_optimizer(params, cfg)
    step_of = joint_step if model.joint_training else staged_step

    def step():
        optimizer.zero_grad(set_to_none=True)
        step_of(model, x, y, stage, cfg)
        optimizer.step()
    return step


def bench_families(groups: int, width: float, in_channels: int, image_size: int,
                   architecture: str = "alexnet", batch: int = 64, steps: int = 3,
                   rounds: int = 3) -> dict:
    """Images/s of every family's training stages against plain PyTorch training.

    Each family is built as the workbook builds it (``model.models``: the same architecture
    and compression rate); its stage k runs the trainer's own step and is timed against plain
    PyTorch training of ``export(k)`` (that configuration as ordinary layers, all trainable),
    interleaved round by round. A slimmable network's one joint stage trains every width per
    step, so its plain reference is the sum of one plain step of every width.
    """
    from dyndnn.models import FAMILIES, GROUP_MODEL, BaselineSpec, GroupNet

    cfg = TrainSection()
    torch.manual_seed(0)
    x = torch.randn(batch, in_channels, image_size, image_size)
    out: dict = {}
    for family in FAMILIES:
        torch.manual_seed(0)
        shape = {"groups": groups, "width": width, "in_channels": in_channels,
                 "image_size": image_size, "architecture": architecture}
        model = (GroupNet(**shape) if family == GROUP_MODEL
                 else FAMILIES[family](BaselineSpec(family=family, **shape)))
        y = torch.randint(0, model.spec.num_classes, (batch,))
        rows = {}
        for k in range(1, model.training_stages + 1):
            model.train()
            stage = _family_step_fn(model, k, x, y, cfg)
            widths = range(1, model.groups + 1) if model.joint_training else [k]
            plains = [_train_step_fn(m, make_optimizer(list(m.parameters()), cfg), x, y)
                      for m in (model.export(j).train() for j in widths)]

            def plain(plains=plains):
                for fn in plains:
                    fn()
            stage(), plain()  # warm-up
            stage_ips, plain_ips = interleaved_rates((stage, plain), batch, steps, rounds)
            rows[k] = {"stage_images_per_s": stage_ips, "plain_images_per_s": plain_ips,
                       "ratio": stage_ips / plain_ips,
                       "met": stage_ips / plain_ips >= TARGETS["train_ratio"]}
        out[family] = rows
    return out


def print_families(section: dict) -> None:
    """One line a family: the images/s ratio of each stage against plain PyTorch."""
    from dyndnn.bench.common import mark

    for family, rows in section.items():
        ratios = "  ".join(f"k={k}: {r['ratio']:.2f}x" for k, r in rows.items())
        worst = min(r["ratio"] for r in rows.values())
        print(f"training {family:<11} vs plain PyTorch: {ratios} (target >= 0.9) "
              f"{mark(worst >= TARGETS['train_ratio'])}")
