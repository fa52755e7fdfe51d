"""Training across processes with ``torchrun``: which rank this is, its shard, and the gathers.

``torchrun --nproc_per_node N main.py ...`` starts N copies of the command with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set. :func:`init_from_env` joins them into one process group
(gloo on the CPU, NCCL on CUDA) and returns a :class:`World`; a plain ``python main.py`` gets
``None`` and runs exactly as before. Every rank trains DistributedDataParallel on its shard of the
oversampled rows; evaluation is split into contiguous slices and gathered, so every source is
scored exactly once; rank 0 alone writes the run folder.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def requested_world_size() -> int:
    """The number of processes torchrun started (1 for a plain run)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def contiguous_slice(n: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s share of ``n`` rows in order: the first ``n % size`` ranks take one more,
    so the slices cover every row exactly once (no padding, no duplicates)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard_order(order, rank: int, size: int):
    """Rank ``rank``'s rows of one epoch's ``order`` (a 1-D tensor shared by all ranks).

    As torch's DistributedSampler: the order is padded from its start to a multiple of ``size``
    and dealt out round-robin, so every rank runs the same number of batches (DDP needs that).
    """
    import torch

    n = len(order)
    total = math.ceil(n / size) * size
    if total > n:
        order = order[torch.arange(total, device=order.device) % n]
    return order[rank:total:size]


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one torchrun job."""

    rank: int
    size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def per_rank_batch(self, batch_size: int) -> int:
        """Each rank's batch: ``--batch_size`` stays the global batch, so a step averages the
        gradient of as many rows as a single-process step does."""
        return max(math.ceil(batch_size / self.size), 1)

    def wrap(self, model):
        """``model`` under DistributedDataParallel (gradients averaged across ranks)."""
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def sync_buffers(self, model) -> None:
        """Give every rank rank 0's buffers (batch-norm running statistics), so evaluation on any
        rank uses the same model: each rank's last training batch updated its own."""
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    def gather_rows(self, local: np.ndarray) -> np.ndarray:
        """The ranks' contiguous slices of one array joined in rank order (every rank gets it)."""
        import torch.distributed as dist

        parts: list = [None] * self.size
        dist.all_gather_object(parts, np.ascontiguousarray(local))
        return np.concatenate(parts, axis=0)

    def gather_objects(self, value) -> list:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        import torch.distributed as dist

        parts: list = [None] * self.size
        dist.all_gather_object(parts, value)
        return parts

    def sum(self, *values: float) -> tuple[float, ...]:
        """Each value summed over the ranks."""
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tuple(float(v) for v in tensor.cpu())

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"


def init_from_env(device: str) -> World | None:
    """Join the torchrun job this process belongs to; None outside torchrun (or with one rank).

    ``device`` is the resolved ``cpu``/``cuda``: CUDA ranks use NCCL and GPU ``LOCAL_RANK``.
    """
    if requested_world_size() < 2:
        return None
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    world = World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank, backend=backend)
    if not world.is_main:
        logging.getLogger("latentlapse").setLevel(logging.WARNING)  # one copy of each progress line
    log.info("torchrun: %d processes (%s)", world.size, backend)
    return world


# How long a rank gives gloo's worker threads after leaving the group (see shutdown).
EXIT_GRACE_SECONDS = 0.2


def shutdown(world: World | None) -> None:
    """Leave the process group, then give gloo's worker threads the GIL for a moment (a no-op
    for a plain run).

    A gloo worker drops its last reference to a collective's buffers just after the collective
    returns, and that drop takes the GIL. If the interpreter is already finalizing by then,
    CPython 3.11 ends the thread from inside C++ and the process aborts (SIGABRT; torchrun then
    stops every rank). Rank 1 used to exit a few milliseconds after its last collective and hit
    this in about one job in ten (``bench/torchrun_exit.py`` measures it).
    """
    if world is None:
        return
    import time

    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    time.sleep(EXIT_GRACE_SECONDS)


def epoch_seed(base: int, rank: int, epoch: int) -> int:
    """A 63-bit seed for one rank's stream in one epoch, derived from the stream's own seed."""
    state = np.random.SeedSequence([int(base), int(rank), int(epoch)]).generate_state(2, dtype=np.uint32)
    return int(state.view(np.uint64)[0] >> 1)
