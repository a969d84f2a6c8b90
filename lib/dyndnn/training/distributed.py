"""Training in several processes on PyTorch's own engine: torchrun, DDP, gloo or NCCL.

``torchrun --nproc-per-node N`` starts N copies of a command and tells each its rank in
environment variables; ``join_world`` reads them and joins the process group. A ``World`` is
what the trainer asks: which part of a global batch is this process's, whether it writes the
run folder (rank 0 alone does), how to wrap the model in ``DistributedDataParallel``, how to
sum a count over the processes. Without torchrun it is one process, and every call is a no-op.

>>> world = World()                                  # no torchrun: one process, rank 0
>>> x, y = torch.arange(10).view(5, 2), torch.arange(5)
>>> world.shard(x, y)[1], world.writer
(tensor([0, 1, 2, 3, 4]), True)
>>> _, y1, weight = World(rank=1, size=2).shard(x, y)  # rank 1 of 2: the second part
>>> y1, weight                                       # its loss weighs 2 of 5 images x 2
(tensor([3, 4]), 0.8)

A shard's loss is weighted by its share of the global batch (``weight``), so the gradient DDP
averages is that of the global batch's mean loss even when the batch does not split evenly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import Tensor, nn

from dyndnn.errors import ConfigError
from dyndnn.models.sync_batchnorm import synchronised

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")  # what torchrun sets in each process
# the oldest torch this runs on: DDP's ``forward_sync_buffers`` and the autograd rule of the
# functional all-reduce (synchronised BN's gradient) are this recent
MINIMUM_TORCH = (2, 13)
# rank 0 validates while the others wait at their next collective: NCCL's default 10 minutes
# could end a run with a large validation split
COLLECTIVE_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class World:
    """A process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""  # "" when no process group was joined
    device: str = "cpu"

    @property
    def writer(self) -> bool:
        """Rank 0 alone writes checkpoints, CSVs, figures and the manifest."""
        return self.rank == 0

    @property
    def joined(self) -> bool:
        """True in a process group (torchrun), even a group of one."""
        return bool(self.backend)

    def shard(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, float]:
        """The contiguous part of a global batch that is this rank's, and its loss weight.

        The parts differ in size by one image at most; every rank draws the same global batch
        (the same seeded order and augmentation), so N processes see the images one would.
        """
        if self.size == 1:
            return x, y, 1.0
        part = torch.tensor_split(torch.arange(len(y)), self.size)[self.rank]
        return x[part], y[part], len(part) * self.size / len(y)

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DDP (the parameters that require grad now are those it reduces).

        Built per training stage after freezing, so DDP reduces the trainable group's
        gradients only. DDP does not broadcast the buffers before each forward: rank 0's BN
        running statistics (the ones it writes) come from its own parts of the batches either
        way, and the others get them at each epoch's end (``broadcast_buffers``); with
        synchronised BN they are the same everywhere anyway. That saves a collective a step.
        """
        if not self.joined:
            return module
        from torch.nn.parallel import DistributedDataParallel

        devices = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(module, device_ids=devices, forward_sync_buffers=False)

    def batchnorm(self, sync_bn: bool) -> AbstractContextManager[None]:
        """A context in which training BN layers take statistics over every process's part."""
        if not (self.joined and sync_bn and self.size > 1):
            return nullcontext()
        import torch.distributed as dist

        return synchronised(dist.group.WORLD)

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the processes (float64; one all-reduce)."""
        if not self.joined:
            return list(values)
        import torch.distributed as dist

        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` in every process (a picklable object); a barrier too."""
        if not self.joined:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Rank 0's buffers (BN running statistics) in every process."""
        if not self.joined:
            return
        import torch.distributed as dist

        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def launched_by_torchrun() -> bool:
    """True in a process that torchrun (or another launcher setting its variables) started."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def join_world(backend: str = "gloo", device: str = "cpu") -> World:
    """The calling process's ``World``: the process group torchrun describes, or one process.

    Joins the group (``init_process_group``) on first call; a CUDA process takes the GPU of
    its local rank (one GPU holds one NCCL rank).
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but torch sees no GPU "
                          "(torch.cuda.is_available() is False): use train.device=cpu")
    if not launched_by_torchrun():
        return World(device="cuda:0" if device == "cuda" else "cpu")
    import torch.distributed as dist

    version = tuple(int(part) for part in torch.__version__.split(".")[:2])
    if version < MINIMUM_TORCH:
        raise ConfigError(f"training in several processes needs torch >= "
                          f"{'.'.join(map(str, MINIMUM_TORCH))}; this is {torch.__version__} "
                          "(make setup installs the pinned one, requirements-torch.txt)")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    size = int(os.environ["WORLD_SIZE"])
    where = f"cuda:{local_rank}" if device == "cuda" else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        _end_with_launcher()
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT,
                                device_id=torch.device(where) if device == "cuda" else None)
    return World(rank, size, local_rank, dist.get_backend(), where)


def _end_with_launcher(poll_s: float = 0.2) -> None:
    """End this process soon after torchrun, its parent, is gone (killed outright, kill -9).

    torchrun starts each process in a session of its own, so killing torchrun's process group
    leaves them running, and their collectives go to each other, not through it: rank 0 went
    on writing the run folder (and holding its lock) while a resumed run started. Polled:
    nothing tells a process that its parent died; it is handed to another parent.
    """
    import threading
    import time

    launcher = os.getppid()

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="dyndnn-launcher-watch").start()


def leave_world() -> None:
    """Destroy the process group, if this process joined one (an orderly exit)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def world_of(backend: str, device: str) -> Iterator[World]:
    """``join_world`` for a block; a group it joined is left at its end however it ends.

    Nested blocks share the outer block's group (only the block that joined it leaves it).
    """
    import torch.distributed as dist

    joined_before = dist.is_available() and dist.is_initialized()
    world = join_world(backend, device)
    try:
        yield world
    finally:
        if world.joined and not joined_before:
            leave_world()
