"""The trainer of every model family: stage k trains what configuration k adds.

Usage (it trains)::

    trainer = IncrementalTrainer(model, dataset, cfg.train, batch_size=128, seed=0,
                                 run_dir="outputs/run1")
    history = trainer.fit()          # a DataFrame, also written as train.csv

One loop, one strategy per family (``model.joint_training`` picks it):

- ``staged_step`` (group model, Tann, independent): stage k runs configuration k in train mode,
  where only the newest group / block / network trains; the optimiser holds its Parameters only.
- ``joint_step`` (slimmable): one stage; every step runs all widths, largest first, and sums
  their losses (Yu et al. 2018).

Exact freezing: the optimiser only ever holds the training group's Parameters, so
weight decay and momentum cannot move a frozen group; frozen groups run without autograd and
with BN in eval mode, so neither their weights nor their statistics change.

Several processes (``torchrun``, docs/distributed.md): every process draws the same global batch
and trains on its part (``World.shard``) under ``DistributedDataParallel``, built per stage
after freezing so it reduces the trainable group's gradients only; BN statistics are the
global batch's with ``train.sync_bn``. Rank 0 alone validates and writes; ``data.batch_size``
is the global batch: with ``sync_bn`` and no dropout, N processes compute what one does, up
to the order of float sums (per-process BN statistics and dropout masks differ from one's).

Determinism and resume: the shuffling, the augmentation and dropout of an epoch are seeded
from (seed, stage, epoch) alone, and the learning rate is a pure function of the step, so a
run resumed from its last complete epoch (``RunLayout.resume_checkpoint``) ends with the same
weights, bit for bit, as one never interrupted. The resume checkpoint records the training
settings (``training_record``); a trainer with other settings refuses to resume from it and
names the settings that differ, instead of mixing two configs in one model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from dyndnn.config import ARCHITECTURES, ModelSection, TrainSection, describe_differences
from dyndnn.data import DatasetSpec, InMemoryDataset, batches
from dyndnn.errors import CheckpointError, RunFolderError
from dyndnn.evaluation import score
from dyndnn.models import GROUP_MODEL, DynamicModel, build_model
from dyndnn.models.architecture import architecture
from dyndnn.record.atomic import write_csv
from dyndnn.record.checkpoint import read_checkpoint, save_checkpoint
from dyndnn.record.layout import RunLayout
from dyndnn.training.distributed import World

EXECUTION_KEYS = ("processes", "backend", "device")  # train keys of execution only


TRAIN_COLUMNS = ("model", "stage", "epoch", "train_loss", "train_accuracy", "val_loss",
                 "val_accuracy", "lr_end", "time_s", "images_per_s", "world_size",
                 "threads")  # threads: torch's, per process, that images_per_s was measured on


def stage_seed(seed: int, stage: int, epoch: int) -> int:
    """The seed of one epoch of one stage: independent of anything run before it."""
    return seed * 1_000_003 + stage * 1_009 + epoch


def learning_rate(cfg: TrainSection, step: int, total_steps: int) -> float:
    """Learning rate at ``step`` of a stage of ``total_steps`` steps (pure, so resumable)."""
    t = step / max(1, total_steps)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    warm = 0.15  # onecycle: linear warm-up over 15% of the stage, then cosine to zero
    if t < warm:
        return cfg.lr * (0.1 + 0.9 * t / warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainSection) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` only."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def staged_step(model: DynamicModel, x: Tensor, y: Tensor, stage: int, cfg: TrainSection,
                forward: torch.nn.Module | None = None, weight: float = 1.0
                ) -> tuple[float, Tensor]:
    """Stage ``stage``'s step: configuration ``stage`` in train mode; returns (loss, logits).

    ``forward``: the model under DDP, if several processes train; ``weight``: this process's
    share of the global batch (``World.shard``).
    """
    model.set_active_groups(stage)
    logits = (forward or model)(x)
    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    (loss * weight if weight != 1.0 else loss).backward()
    return loss.item(), logits.detach()


class JointWidths(torch.nn.Module):
    """Every width of a jointly trained model in one forward pass: the module DDP wraps.

    Under DDP one backward must carry every width's gradients. Backward passes per width with
    ``no_sync`` would leave the smaller widths' switchable BN unused in the last, reducing
    pass, and DDP does not average the gradients of parameters a pass did not use.
    """

    def __init__(self, model: DynamicModel, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The losses of configurations G..1 (stacked) and configuration G's logits."""
        losses, full = [], None
        for k in range(self.model.groups, 0, -1):
            self.model.set_active_groups(k)
            logits = self.model(x)
            losses.append(F.cross_entropy(logits, y, label_smoothing=self.label_smoothing))
            full = logits if full is None else full
        self.model.set_active_groups(self.model.groups)
        return torch.stack(losses), full


def joint_step(model: DynamicModel, x: Tensor, y: Tensor, stage: int, cfg: TrainSection,
               forward: torch.nn.Module | None = None, weight: float = 1.0
               ) -> tuple[float, Tensor]:
    """Every configuration, largest first, gradients summed.

    Returns the loss averaged over the configurations (comparable with the other families'
    losses in ``train.csv``) and the full configuration's logits. The budget, as Yu et al.
    train it: one joint stage of ``train.joint_stage_factor`` x ``epochs_per_stage`` epochs
    (by default as many as each independent network trains for), every width updated at every
    step.
    Under DDP (``forward`` wraps ``JointWidths``) one backward carries them all.
    """
    if forward is not None:
        losses, full = forward(x, y)
        (losses.sum() * weight).backward()
        return losses.mean().item(), full.detach()
    assert weight == 1.0, "a part of a global batch trains under DDP (forward)"
    total, full = 0.0, None
    for k in range(model.groups, 0, -1):
        model.set_active_groups(k)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        loss.backward()  # one width at a time: only one width's graph is alive
        total += loss.item()
        full = logits.detach() if full is None else full
    model.set_active_groups(model.groups)
    return total / model.groups, full


def evaluated_configuration(model: DynamicModel, stage: int) -> int:
    """The configuration an epoch of ``stage`` is scored at: the stage's, or G when joint."""
    return model.groups if model.joint_training else stage


def accuracy_and_loss(model: DynamicModel, ds: InMemoryDataset, k: int,
                      batch_size: int = 500, split: str = "val") -> tuple[float, float]:
    """Accuracy and mean loss of configuration k on ``split`` (model left as it was).

    Training reads the validation split only: the test split is for the final tables.
    """
    was_training = model.training
    model.eval()
    result = score(model, ds, k, batch_size, split)
    model.train(was_training)
    return result["accuracy"], result["loss"]


class IncrementalTrainer:
    """Trains any model family stage by stage; see the module docstring."""

    def __init__(self, model: DynamicModel, dataset: InMemoryDataset, cfg: TrainSection,
                 batch_size: int = 128, seed: int = 0, augment: bool = True,
                 run_dir: str | Path | RunLayout | None = None, progress: bool = True,
                 on_batch: Callable[[int, int, int], None] | None = None,
                 world: World | None = None, write_history: bool = True) -> None:
        self.world = world or World()
        self.model, self.ds, self.cfg = model.to(self.world.device), dataset, cfg
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.layout = RunLayout.of(run_dir) if run_dir is not None else None
        self.progress = progress
        self.on_batch = on_batch  # called as on_batch(stage, epoch, batch): a test hook
        self.rows: list[dict] = []
        self.step = joint_step if model.joint_training else staged_step
        self._epoch_s: list[float] = []  # this session's epochs, for the time-left estimate
        self.epochs = cfg.epochs_of(model.joint_training)  # of each stage
        # False where several families train at once: the stage writes train.csv for them all
        self.write_history = write_history

    def training_record(self) -> dict:
        """Everything besides the model spec that decides the trained weights.

        Not where it executes (processes, backend, device): a run may resume on another
        number of processes (``train.csv`` records each epoch's).
        """
        settings = {k: v for k, v in asdict(self.cfg).items() if k not in EXECUTION_KEYS
                    and (k != "joint_stage_factor" or self.model.joint_training)}
        return {**settings, "batch_size": self.batch_size, "seed": self.seed,
                "augment": self.augment, "dataset": self.ds.spec.name,
                "train_images": len(self.ds.train_y), "val_images": len(self.ds.val_y)}

    def _resume_point(self) -> tuple[int, int, dict | None]:
        """(stage, first epoch to run, optimiser state) from a resume checkpoint, if any."""
        if self.layout is None:
            return 1, 0, None
        path = self.layout.resume_checkpoint(self.model.family)
        if not path.is_file():
            return 1, 0, None
        blob = read_checkpoint(path)
        if blob["spec"] != asdict(self.model.spec):
            raise CheckpointError(
                f"{path} holds a model {blob['spec']}, not {asdict(self.model.spec)}; use a new "
                "run folder or delete the checkpoint")
        recorded, new = blob.get("training", {}), self.training_record()
        differ = {k: (recorded[k], new[k]) for k in new if k in recorded and recorded[k] != new[k]}
        if differ:
            raise RunFolderError(
                f"{path} was trained with other settings; these differ: "
                f"{describe_differences(differ)}. Resuming "
                "would mix two trainings in one model: use the same settings, or a new run "
                "folder.")
        self.model.load_state_dict(blob["model"])
        self.rows = list(blob["rows"])
        stage, epoch = int(blob["stage"]), int(blob["epoch"])
        if epoch + 1 < self.epochs:
            return stage, epoch + 1, blob["optimizer"]
        return stage + 1, 0, None

    def fit(self) -> pd.DataFrame:
        """Run (or finish) every stage; returns the per-epoch history (also ``train.csv``)."""
        stage, first_epoch, opt_state = self._resume_point()
        for k in range(stage, self.model.training_stages + 1):
            self.train_stage(k, first_epoch if k == stage else 0,
                             opt_state if k == stage else None)
        self.model.eval()
        self.model.set_active_groups(self.model.groups)
        return self.history()

    def history(self) -> pd.DataFrame:
        """One row per (stage, epoch) of this model.

        Written to ``train.csv`` in the run folder, next to the rows of other models trained
        there (the ``model`` column tells them apart).
        """
        frame = pd.DataFrame(self.rows)
        if self.layout is not None and self.world.writer and self.write_history:
            merge_history(self.layout, frame)
        return frame

    def _freeze_all_but(self, stage: int) -> list[torch.nn.Parameter]:
        for p in self.model.parameters():
            p.requires_grad_(False)
            p.grad = None  # a finished stage's gradients would only hold memory
        params = self.model.stage_parameters(stage)
        for p in params:
            p.requires_grad_(True)
        return params

    def train_stage(self, k: int, first_epoch: int = 0, opt_state: dict | None = None) -> None:
        """Run stage k (1-based) for the configured epochs: group k trains, 1..k-1 frozen."""
        model, cfg, world = self.model, self.cfg, self.world
        optimizer = make_optimizer(self._freeze_all_but(k), cfg)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        model.set_active_groups(k)
        forward = (world.wrap(JointWidths(model, cfg.label_smoothing) if model.joint_training
                              else model) if world.joined else None)
        steps_per_epoch = math.ceil(len(self.ds.train_y) / self.batch_size)
        total = steps_per_epoch * self.epochs
        for epoch in range(first_epoch, self.epochs):
            seed = stage_seed(self.seed, k, epoch)
            torch.manual_seed(seed + (world.rank << 40))  # dropout: each process its own masks
            model.train()
            loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
            bar = tqdm(batches(self.ds, "train", self.batch_size, augment=self.augment,
                               seed=seed), total=steps_per_epoch,
                       disable=not (self.progress and world.writer),
                       desc=f"{model.family} stage {k}/{model.training_stages} "
                            f"epoch {epoch + 1}/{self.epochs}", leave=False)
            for i, (x_all, y_all) in enumerate(bar):
                if len(y_all) < world.size:
                    continue  # a last batch too small to give every process an image
                if self.on_batch is not None:
                    self.on_batch(k, epoch, i)
                x, y, weight = world.shard(x_all, y_all)
                x, y = x.to(world.device), y.to(world.device)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, epoch * steps_per_epoch + i, total)
                optimizer.zero_grad(set_to_none=True)
                with world.batchnorm(cfg.sync_bn):
                    loss, logits = self.step(model, x, y, k, cfg, forward, weight)
                optimizer.step()
                loss_sum += loss * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
                if i % 10 == 0:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            elapsed = time.perf_counter() - start
            loss_sum, correct, seen = world.sum(loss_sum, correct, seen)
            self._end_epoch(k, epoch, optimizer, {
                "model": model.family, "stage": k, "epoch": epoch + 1,
                "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                "lr_end": optimizer.param_groups[0]["lr"], "time_s": elapsed,
                "images_per_s": seen / elapsed, "world_size": world.size,
                "threads": torch.get_num_threads()})
        model.eval()
        if self.layout is not None and world.writer:
            save_checkpoint(self.layout.stage_checkpoint(model.family, k), model, stage=k,
                            training=self.training_record())
        self.history()

    def _end_epoch(self, k: int, epoch: int, optimizer: torch.optim.Optimizer,
                   row: dict) -> None:
        """Validate (rank 0; the others wait at their next collective), record and save."""
        self.world.broadcast_buffers(self.model)  # rank 0's BN statistics everywhere
        if not self.world.writer:
            self.rows.append(row)
            return
        val_acc, val_loss = accuracy_and_loss(self.model, self.ds,
                                              evaluated_configuration(self.model, k))
        row = {**row, "val_loss": val_loss, "val_accuracy": val_acc}
        self.rows.append({name: row[name] for name in TRAIN_COLUMNS})
        self._epoch_s.append(row["time_s"])
        if self.progress:
            stages, epochs = self.model.training_stages, self.epochs
            left = (stages - k) * epochs + epochs - epoch - 1
            tqdm.write(f"{row['model']} stage {k}/{stages} epoch {epoch + 1}/{epochs}: train "
                       f"loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f} | val acc "
                       f"{val_acc:.4f} | {row['images_per_s']:.0f} images/s"
                       + (f" ({self.world.size} processes)" if self.world.size > 1 else "")
                       + f" | {time_left(left, self._epoch_s)} left for {row['model']}")
        if self.layout is not None:
            save_checkpoint(self.layout.resume_checkpoint(self.model.family), self.model,
                            stage=k, epoch=epoch, optimizer=optimizer.state_dict(),
                            rows=self.rows, training=self.training_record())


def merge_history(layout: RunLayout, frame: pd.DataFrame) -> None:
    """Write ``frame``'s rows to ``train.csv`` in place of its families' rows; others stay."""
    path = layout.train_csv
    others = pd.read_csv(path) if path.is_file() and path.stat().st_size else None
    if others is not None and "model" in others:
        others = others[~others["model"].isin(set(frame["model"]))]
        write_csv(pd.concat([others, frame], ignore_index=True), path)
    else:
        write_csv(frame, path)


def time_left(epochs: int, epoch_s: list[float]) -> str:
    """About how long ``epochs`` more epochs take at the mean of ``epoch_s`` (e.g. ``1m05s``).

    >>> time_left(3, [10.0, 12.0]), time_left(0, [5.0]), time_left(40, [4.5])
    ('33s', '0s', '3m00s')
    """
    seconds = round(epochs * sum(epoch_s) / max(1, len(epoch_s)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def setup_torch(seed: int, threads: int = 0) -> None:
    """Seed torch and set its intra-op threads (0 keeps torch's default)."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


def stored_architecture(name: str) -> str:
    """What a checkpoint records.

    A built-in name, or a YAML file's spec as JSON (a run then rebuilds without the file).
    """
    return name if name in ARCHITECTURES else architecture(name).to_json()


def model_from_config(model_cfg: ModelSection, data_spec: DatasetSpec,
                      family: str = GROUP_MODEL) -> DynamicModel:
    """A fresh model of ``family`` for a ``ModelSection`` and a data set's ``DatasetSpec``.

    Baselines take the group model's G, width and dropout, sized by ``baseline_budget``
    (``combine`` is the group model's alone).
    """
    spec = {"groups": model_cfg.groups, "width": model_cfg.width,
            "architecture": stored_architecture(model_cfg.architecture),
            "in_channels": data_spec.channels, "image_size": data_spec.image_size,
            "num_classes": len(data_spec.classes), "dropout": model_cfg.dropout}
    if family == GROUP_MODEL:
        return build_model({**spec, "combine": model_cfg.combine})
    return build_model({"family": family, **spec, "budget": model_cfg.baseline_budget})
