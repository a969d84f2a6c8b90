"""BatchNorm whose batch statistics span every process of a torchrun world, on CPUs and GPUs.

Every BN layer of the model families calls ``batch_norm``: plain ``F.batch_norm`` unless a
trainer turned synchronisation on for its forward pass with ``synchronised(group)``. Written
here because ``torch.nn.SyncBatchNorm`` runs on GPUs only (its statistics kernels have no CPU
version) and could not stand in for the group model's BN anyway, which slices its statistics
per group.

The two statistics (the mean, then the variance around it: two passes, as stable as one
process's) are summed over the processes with differentiable all-reduces, so autograd reduces
their gradients too: each process's input gradient is that of the global batch's loss, as
``torch.nn.SyncBatchNorm`` computes it. Only layers that train use batch statistics: frozen
groups run in eval mode and never communicate.

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

import torch
import torch.nn.functional as F
from torch import Tensor

_GROUP: ContextVar = ContextVar("dyndnn_sync_bn_group", default=None)


@contextlib.contextmanager
def synchronised(group: object) -> Iterator[None]:
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
                       group: object) -> Tensor:
    from torch.distributed import _functional_collectives as collectives  # differentiable

    dims = [d for d in range(x.dim()) if d != 1]
    shape = [1, -1] + [1] * (x.dim() - 2)
    local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])
    total = collectives.all_reduce(local, "sum", group)
    count = total[-1]
    mean = total[:-1] / count
    centred = x - mean.view(shape)
    var = collectives.all_reduce(centred.square().sum(dims), "sum", group) / count
    out = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        out = out * weight.view(shape) + bias.view(shape)
    if running_mean is not None:
        with torch.no_grad():  # as F.batch_norm: the running variance is the unbiased one
            running_mean.lerp_(mean, momentum)
            running_var.lerp_(var * count / (count - 1), momentum)
    return out
