"""What every model family shares: configurations 1..G and how to switch between them.

Every family (the group model and the three baselines) is a ``DynamicModel``:

>>> import torch
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28).eval()
>>> model.set_active_groups(2)                     # configuration 2 of 1..G
>>> with model.active_groups(4):                   # temporarily configuration 4
...     model.num_active_groups
4
>>> model.num_active_groups, model.macs(1) / model.macs(model.groups)  # the compression rate
(2, 0.25)
>>> model.param_bytes(2), model.serving_bytes()    # one configuration / all of them
(173040, 346080)
>>> static = model.export(2).eval()                # configuration 2 alone, a static module
>>> x = torch.randn(3, 1, 28, 28)
>>> torch.allclose(static(x), model(x), atol=1e-5)
True

Training contract (``dyndnn.training.trainer``): ``training_stages`` stages;
``stage_parameters(s)`` are what stage s updates; in ``train()`` mode the forward pass at
configuration s is stage s's training step. ``joint_training`` families (slimmable) train
every configuration in each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dyndnn.models.architecture import Architecture, architecture
from dyndnn.models.layers import Sequence, Window, tensor_bytes
from dyndnn.models.switching import Switchable

__all__ = ["DynamicModel", "module_bytes", "tensor_bytes"]


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's Parameters and BN running statistics (not the batch counters)."""
    return tensor_bytes([*module.parameters(), *(b for n, b in module.named_buffers()
                                                 if not n.endswith("num_batches_tracked"))])


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """What every family's spec holds: the network, its size, its data; in every checkpoint.

    ``architecture``: a built-in name (``dyndnn.models.architecture.BUILTIN``) or a spec's JSON.
    Keyword-only, so a family's own fields (a baseline's ``family``) can come first.
    """

    groups: int = 4
    width: float = 0.25
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    dropout: float = 0.0
    architecture: str = "alexnet"


class DynamicModel(Switchable, nn.Module):
    """Base of the model families: G configurations, one of them active (``Switchable``)."""

    family: str = ""  # the name used in configs, tables and checkpoints
    joint_training = False  # True: one stage trains every configuration (slimmable)

    def __init__(self, groups: int) -> None:
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be >= 1; got {groups}")
        self.groups = groups
        self._active = groups

    def _k(self, k: int | None) -> int:
        k = self._active if k is None else k
        if not 1 <= k <= self.groups:
            raise ValueError(f"configuration must be between 1 and {self.groups}; got {k}")
        return k

    # --- training contract ------------------------------------------------------------------
    @property
    def training_stages(self) -> int:
        """Stages the trainer runs: G (one per configuration), or 1 for joint training."""
        return 1 if self.joint_training else self.groups

    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        """The Parameters training stage ``stage`` (1-based) updates."""
        if self.joint_training:
            return list(self.parameters())
        return self.group_parameters(stage - 1)

    # --- the network: ``body``, a Sequence of dynamic layers (``dyndnn.models.layers``) -------
    body: Sequence

    @property
    def architecture(self) -> Architecture:
        """The network this model was built from (``dyndnn.models.architecture``)."""
        return architecture(self.spec.architecture)

    def window(self) -> Window:
        """The active configuration as the layers' window (in train mode: its stage)."""
        return Window(0, self._active, self.training)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the active configuration (in train mode: its training step)."""
        # channels-last activations: oneDNN's fast layout for conv, BN and pooling on CPU
        return self.body(x.contiguous(memory_format=torch.channels_last), self.window())

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Parameters added by configuration ``group + 1`` (0-based group)."""
        return self.body.group_parameters(group)

    # --- accounting -------------------------------------------------------------------------
    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (the sum of its layers')."""
        return self.body.macs(self._k(k))

    def param_count(self, k: int | None = None) -> int:
        """Parameters configuration k uses."""
        return sum(t.numel() for t in self.body.tensors(self._k(k), statistics=False))

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes of weights and BN statistics configuration k reads."""
        return self.body.param_bytes(self._k(k))

    def serving_bytes(self) -> int:
        """Bytes held to serve every configuration 1..G (the memory-footprint figure)."""
        return self.param_bytes(self.groups)

    def compression_rate(self) -> float:
        """The smallest configuration's MACs as a fraction of the full configuration's."""
        return self.macs(1) / self.macs(self.groups)

    def export(self, k: int | None = None) -> nn.Module:
        """Configuration k alone, in eval mode: plain torch layers with copied tensors.

        Ready for tracing or export (``dyndnn.serve.export``); not a model of the family (it has no
        configurations to switch and is not checkpointed with ``save_checkpoint``).
        """
        return self.body.to_static(self._k(k)).eval()
