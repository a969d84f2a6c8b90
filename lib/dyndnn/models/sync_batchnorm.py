"""BatchNorm whose batch statistics span every process of a torchrun world, on CPUs and GPUs.

Every BN layer of the model families calls ``batch_norm``: plain ``F.batch_norm`` unless a
trainer turned synchronisation on for its forward pass with ``synchronised(group)``. Written
here because ``torch.nn.SyncBatchNorm`` runs on GPUs only (its statistics kernels have no CPU
version) and could not stand in for the group model's BN anyway, which slices its statistics
per group.

Each process's mean and sum of squared deviations (two passes, stable) are combined over the
processes, in float64, in one differentiable all-reduce a layer (the backward pass makes one
more), so autograd reduces their gradients too: each process's input gradient is that of the
global batch's loss, as ``torch.nn.SyncBatchNorm`` computes it. Only layers that train use
batch statistics: frozen groups run in eval mode and never communicate.

>>> x = torch.randn(8, 3, 4, 4)
>>> mean, var = torch.zeros(3), torch.ones(3)
>>> y = batch_norm(x, mean, var, None, None, True, 0.1, 1e-5)   # not synchronised: F.batch_norm
>>> bool(torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-6))
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:  # torch.distributed is imported when a world is joined, not with the models
    from torch.distributed import ProcessGroup

_GROUP: ContextVar[ProcessGroup | None] = ContextVar("dyndnn_sync_bn_group", default=None)


@contextlib.contextmanager
def synchronised(group: ProcessGroup | None) -> Iterator[None]:
    """BN layers that train inside this block take their statistics over ``group``'s batch.

    ``group`` is a ``torch.distributed`` process group; ``None`` leaves BN as it is.
    """
    token = _GROUP.set(group)
    try:
        yield
    finally:
        _GROUP.reset(token)


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
               eps: float) -> Tensor:
    """``F.batch_norm``, or its synchronised form inside ``synchronised(group)`` when training."""
    group = _GROUP.get()
    if group is None or not training:
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    return _global_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, group)


def _global_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                       weight: Tensor | None, bias: Tensor | None, momentum: float, eps: float,
                       group: ProcessGroup) -> Tensor:
    """Batch norm in training mode with the statistics of every process's batch."""
    dims = x.dim()
    shape = [1, -1] + [1] * (dims - 2)
    channels = x.shape[1]
    # (images x pixels, channels): a view of channels-last activations, whose column sums are
    # fast (torch.var_mean over dims 0, 2, 3 of the same tensor is 10x slower on CPU)
    flat = x.movedim(1, -1).reshape(-1, channels)
    count = x.new_tensor([flat.shape[0]])
    local_mean = flat.sum(0) / count
    local_m2 = (flat - local_mean).square().sum(0)  # two passes: the within-part spread, stable
    # one all-reduce of (n m, M2 + n m^2, n) per process, formed and combined in float64: the
    # global M2 = sum(M2 + n m^2) - N mean^2 (Chan et al.'s pairwise update, summed) cancels
    # only in the spread between the parts' means, where float64 keeps ~9 more digits
    n_local, m, m2 = count.double(), local_mean.double(), local_m2.double()
    total = _all_reduce(torch.cat([m * n_local, m2 + n_local * m.square(), n_local]), group)
    n = total[-1]
    mean64 = total[:channels] / n
    var = (total[channels:2 * channels] / n - mean64.square()).clamp_min(0).to(x.dtype)
    mean = mean64.to(x.dtype)
    # normalise as one multiply-add per element: x * scale + shift, per-channel vectors
    scale = torch.rsqrt(var + eps) * (weight if weight is not None else 1)
    shift = (bias if bias is not None else 0) - mean * scale
    out = torch.addcmul(shift.view(shape), x, scale.view(shape))
    if running_mean is not None:
        with torch.no_grad():  # as F.batch_norm: the running variance is the unbiased one
            running_mean.lerp_(mean, momentum)
            running_var.lerp_(var * (n / (n - 1)).to(x.dtype), momentum)
    return out


def _all_reduce(tensor: Tensor, group: ProcessGroup) -> Tensor:
    """Sum over ``group``, differentiable (its backward sums the gradients the same way).

    torch's functional collective ops, waited on at once: the wrapper tensor that
    ``_functional_collectives.all_reduce`` returns costs more than the sum at this size.
    """
    from torch.distributed import _functional_collectives  # noqa: F401  registers the autograd

    ops = torch.ops._c10d_functional
    return ops.wait_tensor(ops.all_reduce(tensor, "sum", group.group_name))
