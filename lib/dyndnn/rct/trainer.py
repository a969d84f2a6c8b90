"""One training loop for fp32, QAT and RCT, with memory and *modelled* energy accounting.

Usage (it trains: ``rct.layers`` shows the conversion alone)::

    net = convert(model.group_path(0), "rct", RctSettings())
    trainer = RctTrainer(net, "rct", dataset, TrainSection(epochs_per_stage=3))
    history = trainer.fit()            # per epoch: loss, accuracy, mean bits, memory
    trainer.summary()                  # the rct.csv row of this method

Memory is *accounted* on the tensors that exist: between steps, the bytes of every parameter
and integer weight store (``measure_param_bytes``); within a step, the transient weight copies
(dequantised or fake-quantised) are followed by ``TransientTracker`` from creation to release,
and their peak is added. Optimiser state (torch's momentum and RCT's own momentum buffers) and
the gradients' peak are counted apart; ``state_bytes`` is the whole training state, their sum.
Beside it, the process's peak resident memory growth over training is *measured*
(``dyndnn.rct.peak_memory``): an upper bound that also holds activations and allocator slack.
Per-epoch curves read the validation split; the test split is read once, after training.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from dyndnn.config import TrainSection
from dyndnn.data import InMemoryDataset, batches
from dyndnn.models import GroupNet
from dyndnn.models.macs import static_macs
from dyndnn.rct.controller import BitwidthController, RctSettings
from dyndnn.rct.energy import MODEL as ENERGY_MODEL
from dyndnn.rct.energy import gemm_energy_pj, movement_energy_pj
from dyndnn.rct.layers import RctLayer, convert, quantised_layers, to_plain
from dyndnn.rct.peak_memory import PeakMemory
from dyndnn.rct.qat import Tracked
from dyndnn.training.trainer import learning_rate, make_optimizer, stage_seed, time_left


class TransientTracker:
    """Follows tensors from creation until they are freed; keeps the peak of their bytes."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.count = 0

    def track(self, t: Tensor) -> None:
        """Count ``t`` until it is garbage-collected."""
        size = t.numel() * t.element_size()
        self.live += size
        self.count += 1
        self.peak = max(self.peak, self.live)
        weakref.finalize(t, self._release, size)

    def _release(self, size: int) -> None:
        self.live -= size

    def reset_peak(self) -> None:
        """Start a new peak from what is live now."""
        self.peak = self.live


def _unique_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), t.numel())
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def measure_param_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and integer weight store of ``module`` (what exists)."""
    return _unique_bytes(module.parameters()) + sum(
        m.store.nbytes for m in module.modules() if isinstance(m, RctLayer))


def fp32_weight_tensors(module: nn.Module) -> list[Tensor]:
    """Persistent fp32 tensors shaped like a conv/linear weight (a master copy, if any)."""
    out = []
    for m in module.modules():
        for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
            if t.dtype == torch.float32 and t.dim() >= 2:
                out.append(t)
    return out


class RctTrainer:
    """Trains a converted module with one method; ``extra_logits`` adds frozen groups' logits."""

    def __init__(self, module: nn.Module, method: str, dataset: InMemoryDataset,
                 cfg: TrainSection, settings: RctSettings | None = None, batch_size: int = 128,
                 seed: int = 0, augment: bool = True,
                 extra_logits: Callable[[Tensor], Tensor] | None = None,
                 progress: bool = False, label: str = "") -> None:
        self.module, self.method, self.ds, self.cfg = module, method, dataset, cfg
        self.settings = settings or RctSettings()
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.extra_logits = extra_logits
        self.progress = progress  # one line an epoch: what trains, how far, how long is left
        self.label = label or f"{method} on {dataset.spec.name}"
        self.layers = quantised_layers(module)
        self.rct_layers = {n: m for n, m in self.layers.items() if isinstance(m, RctLayer)}
        self.controller = BitwidthController(self.settings)
        self.tracker = TransientTracker()  # fp32 weight copies (dequantised / fake-quantised)
        self.grad_tracker = TransientTracker()  # RCT's weight-gradient tiles
        for layer in self.layers.values():
            layer.tracker = self.tracker
            layer.grad_tracker = self.grad_tracker
        for layer in self.rct_layers.values():  # unpacked integer tiles are transient too
            layer.store.tiles.tracker = self.tracker
        # the torch optimiser holds what is not an integer store: all of fp32/QAT, and RCT's
        # biases and BN parameters
        self.optimizer = make_optimizer([p for p in module.parameters() if p.requires_grad], cfg)
        self.rows: list[dict] = []
        self.step = 0
        self.gemm_pj = 0.0
        self.movement_pj = 0.0
        self.persistent_bytes_max = 0
        self.transient_peak = 0
        self.optimizer_bytes_max = 0
        self.grad_bytes_max = 0
        self._macs_cache: int | None = None  # MACs of one image through the plain module
        self.peak = PeakMemory()
        self.test_accuracy = math.nan  # read once, by ``summary``

    def _logits(self, x: Tensor) -> Tensor:
        logits = self.module(x)
        if self.extra_logits is not None:
            with torch.no_grad():
                frozen = self.extra_logits(x)
            logits = logits + frozen
        return logits

    def optimizer_bytes(self) -> int:
        """Bytes of optimiser state: torch's (momentum) and RCT's fused momentum buffers."""
        tensors = [t for state in self.optimizer.state.values() for t in state.values()
                   if isinstance(t, Tensor)]
        return _unique_bytes(tensors) + sum(m.optimizer_state_bytes()
                                            for m in self.rct_layers.values())

    def _account_step(self) -> None:
        """Modelled energy of this step's GEMMs and parameter traffic."""
        for layer in self.layers.values():
            macs = layer.last_macs
            params = math.prod(layer.store.shape) if isinstance(layer, RctLayer) else \
                layer.weight.numel()
            if isinstance(layer, RctLayer):
                s, b = layer.settings, layer.bits
                self.gemm_pj += (gemm_energy_pj(macs, s.act_bits, b)  # forward
                                 + gemm_energy_pj(macs, s.err_bits, b)  # input gradient
                                 + gemm_energy_pj(macs, s.err_bits, s.act_bits))  # weight grad
                bits = 4 * b  # read for forward and backward, read+write for the update
            elif isinstance(layer, Tracked):  # QAT
                self.gemm_pj += (gemm_energy_pj(macs, 8, 8)  # forward: fake-quantised
                                 + 2 * gemm_energy_pj(macs, 32, 32, fp=True))  # fp32 backward
                bits = 32 + 8 + 2 * 8 + 64  # quantise master, use the copy twice, update master
            else:
                continue
            self.movement_pj += movement_energy_pj(bits * params)

    def _account_fp32(self, macs_per_step: int, weights: int) -> None:
        self.gemm_pj += 3 * gemm_energy_pj(macs_per_step, 32, 32, fp=True)
        self.movement_pj += movement_energy_pj(128 * weights)  # 2 reads, update read + write

    def fit(self, epochs: int | None = None) -> pd.DataFrame:
        """Train for ``epochs`` (default: the config's epochs_per_stage); returns the history."""
        epochs = self.cfg.epochs_per_stage if epochs is None else epochs
        steps_per_epoch = math.ceil(len(self.ds.train_y) / self.batch_size)
        total = steps_per_epoch * epochs
        fp32_weights = sum(m.weight.numel() for m in self.module.modules()
                           if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear | nn.Embedding))
        for layer in self.rct_layers.values():
            layer.generator = torch.Generator().manual_seed(self.seed)
        with self.peak:
            self._epochs(epochs, steps_per_epoch, total, fp32_weights)
        return pd.DataFrame(self.rows)

    def _epochs(self, epochs: int, steps_per_epoch: int, total: int, fp32_weights: int) -> None:
        for epoch in range(epochs):
            seed = stage_seed(self.seed, 0, epoch)
            torch.manual_seed(seed)
            self.module.train()
            loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
            for x, y in batches(self.ds, "train", self.batch_size, augment=self.augment,
                                seed=seed):
                lr = learning_rate(self.cfg, self.step, total)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                for layer in self.rct_layers.values():
                    layer.hyper = {"lr": lr, "momentum": self.cfg.momentum,
                                   "weight_decay": self.cfg.weight_decay}
                self.tracker.reset_peak()
                self.grad_tracker.reset_peak()
                logits = self._logits(x)
                loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # RCT layers update their integers here
                grads = _unique_bytes(p.grad for p in self.module.parameters()
                                      if p.grad is not None)
                self.grad_bytes_max = max(self.grad_bytes_max, grads + self.grad_tracker.peak)
                self.optimizer.step()
                self.transient_peak = max(self.transient_peak, self.tracker.peak)
                if self.method == "fp32":
                    self._account_fp32(self._fp32_macs(x), fp32_weights)
                else:
                    self._account_step()
                self.step += 1
                if self.rct_layers and self.step % self.settings.interval == 0:
                    self.controller.check(self.step, self.rct_layers)
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
            self.persistent_bytes_max = max(self.persistent_bytes_max,
                                            measure_param_bytes(self.module))
            self.optimizer_bytes_max = max(self.optimizer_bytes_max, self.optimizer_bytes())
            bits = [m.bits for m in self.rct_layers.values()]
            self.rows.append({
                "method": self.method, "epoch": epoch + 1, "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen, "val_accuracy": self.accuracy("val"),
                "mean_bits": sum(bits) / len(bits) if bits else (8 if self.method == "qat"
                                                                 else 32),
                "time_s": time.perf_counter() - start,
            })
            if self.progress:
                row, done = self.rows[-1], [r["time_s"] for r in self.rows]
                tqdm.write(f"{self.label} epoch {epoch + 1}/{epochs}: train loss "
                           f"{row['train_loss']:.4f} acc {row['train_accuracy']:.4f} | val acc "
                           f"{row['val_accuracy']:.4f} | {row['mean_bits']:.1f} bits | "
                           f"{time_left(epochs - epoch - 1, done)} left for {self.method}")

    def _fp32_macs(self, x: Tensor) -> int:
        """MACs of one forward of the plain module on a batch like ``x`` (counted once)."""
        if self._macs_cache is None:
            self._macs_cache = static_macs(self.module, x[:1])
        return self._macs_cache * x.shape[0]

    @torch.no_grad()
    def accuracy(self, split: str = "val") -> float:
        """Accuracy on ``split`` (with the frozen groups' logits when training a group)."""
        self.module.eval()
        correct, n = 0, 0
        for x, y in batches(self.ds, split, 500):
            correct += (self._logits(x).argmax(1) == y).sum().item()
            n += len(y)
        self.module.train()
        return correct / n

    def summary(self) -> dict:
        """The ``rct.csv`` row of this method (the test split is read here, once).

        Test accuracy, accounted bytes, measured peak memory, *modelled* energies (joules).
        """
        if math.isnan(self.test_accuracy):
            self.test_accuracy = self.accuracy("test")
        param_bytes = self.persistent_bytes_max + self.transient_peak
        return {
            "method": self.method, "accuracy": self.test_accuracy,
            "val_accuracy": self.rows[-1]["val_accuracy"],
            "param_bytes": param_bytes,
            "optimizer_bytes": self.optimizer_bytes_max,
            "grad_bytes": self.grad_bytes_max,
            "state_bytes": param_bytes + self.optimizer_bytes_max + self.grad_bytes_max,
            "bytes_provenance": "accounted (tensor sizes)",
            "peak_rss_growth_bytes": self.peak.peak_growth_bytes,
            "peak_rss_provenance": ("measured (VmHWM, whole process)" if self.peak.available
                                    else f"none: {self.peak.reason}"),
            "gemm_energy_j": self.gemm_pj * 1e-12, "movement_energy_j": self.movement_pj * 1e-12,
            "energy_provenance": f"modelled ({ENERGY_MODEL})",
            "param_bytes_persistent": self.persistent_bytes_max,
            "param_bytes_transient_peak": self.transient_peak,
            "fp32_weight_copies_bytes": _unique_bytes(fp32_weight_tensors(self.module)),
            "mean_bits": self.rows[-1]["mean_bits"], "steps": self.step,
        }

    def bit_trajectory(self) -> pd.DataFrame:
        """One row per (check step, layer): Gavg, bits after the check, the change."""
        return pd.DataFrame(self.controller.trajectory)


def train_group_rct(model: GroupNet, k: int, dataset: InMemoryDataset, cfg: TrainSection,
                    settings: RctSettings | None = None, batch_size: int = 128, seed: int = 0,
                    augment: bool = True, progress: bool = False) -> RctTrainer:
    """Training stage k of a ``GroupNet`` under RCT, on the device, while 1..k-1 serve.

    Group k is taken out as a plain path and converted to RCT layers: during training it exists
    only as integers (the model's own slot for group k is not touched); with ``combine="sum"``
    groups 1..k-1 run frozen through the serving path and their logits are added. At the end
    the integers are dequantised into group k's slot, and ``model.set_active_groups(k)``
    serves the new group.

    Usage (it trains)::

        trainer = train_group_rct(model, 2, dataset, TrainSection(epochs_per_stage=2))
        trainer.summary()["param_bytes"]     # what training group 2 held, accounted
    """
    if not 1 <= k <= model.groups:
        raise ValueError(f"k must be between 1 and {model.groups}; got {k}")
    model.eval()
    path = convert(model.group_path(k - 1), "rct", settings)

    def frozen_logits(x: Tensor) -> Tensor:
        return model.forward_groups(x, 0, k - 1)

    trainer = RctTrainer(path, "rct", dataset, cfg, settings, batch_size, seed, augment,
                         extra_logits=frozen_logits if k > 1 and model.spec.combine == "sum"
                         else None, progress=progress, label=f"group {k} under rct")
    trainer.fit()
    model.load_group_path(k - 1, to_plain(path))
    return trainer
