"""Several processes (GPUs or machines) through PyTorch's own DistributedDataParallel.

Start a distributed run with ``torchrun``; it sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``,
which :func:`setup` reads::

    torchrun --nproc_per_node 4 -m refdense train --config configs/charades.yaml

Without those variables everything here degrades to one process (rank 0 of 1) and no collective
is called. The rules a distributed run follows:

- every process builds the same model from the same seed, and DDP broadcasts rank 0's weights;
- ``optim.batch_size`` is the global batch; each process takes ``batch_size / world_size`` samples
  of the same shuffled order (a :class:`~torch.utils.data.DistributedSampler`), and DDP averages
  the gradients, so a step sees the same samples as a one-process step;
- evaluation splits the videos between processes and gathers the predictions on rank 0;
- only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size``, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files and prints summaries."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, key: str = "run.device") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as named, once
    checked to exist here (errors name ``key``, the setting the name came from)."""
    from refdense.train.config import DEVICE_NAMES

    if not isinstance(name, str) or DEVICE_NAMES.fullmatch(name) is None:
        raise ValueError(f"{key}: expected 'auto', 'cpu', 'cuda' or 'cuda:N', found {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key} is {name!r} but CUDA is not available on this machine; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{key} is {name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def setup(device_name: str) -> Context:
    """Join the process group that ``torchrun`` describes (if any) and pick this process's device.

    With CUDA, process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Context(rank=0, world_size=1, device=device)
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def teardown(context: Context) -> None:
    """Leave the process group (a no-op for one process)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(context: Context, values: torch.Tensor) -> torch.Tensor:
    """Sum a float64 tensor over processes (returned unchanged for one process)."""
    if context.distributed:
        values = values.to(context.device if context.device.type == "cuda" else "cpu")
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.cpu()


def gather_to_main(context: Context, item: Any) -> list[Any] | None:
    """Collect one picklable ``item`` per process on rank 0 (a list in rank order); None elsewhere."""
    if not context.distributed:
        return [item]
    items = [None] * context.world_size if context.is_main else None
    dist.gather_object(item, items, dst=0)
    return items


def broadcast_from_main(context: Context, item: Any) -> Any:
    """Rank 0's ``item`` on every process."""
    if not context.distributed:
        return item
    box = [item]
    dist.broadcast_object_list(box, src=0)
    return box[0]
