"""torchrun / DistributedDataParallel glue: who am I, which device, which slice of a batch, sums over ranks,
and how a slice's loss stands for the whole batch's.

``torchrun --nproc_per_node N -m snnlab run preset.yaml`` starts N processes with ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` set. :func:`setup` reads them and joins the process group (NCCL on CUDA, gloo on CPU)
only when there is more than one process, so a plain run never touches ``torch.distributed``.

Every rank iterates the same global batches (the shuffle depends only on (seed, epoch)) and takes its
contiguous slice of each, so N processes see exactly the batches one process would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # None: let the config choose (a single process)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Context()


def from_env(cpu: bool = False) -> Context:
    """The rank and world size torchrun gave this process, without joining anything.

    The device is ``cuda:LOCAL_RANK`` when CUDA is available (and ``cpu`` is not asked for), else the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and not cpu:
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def setup(cpu: bool = False) -> Context:
    """Join the process group when started by torchrun with more than one process: NCCL when each
    rank has a GPU, gloo on the CPU (``cpu``: the config asks for the CPU although CUDA is there)."""
    ctx = from_env(cpu)
    if ctx.distributed and not dist.is_initialized():
        if ctx.device is not None and ctx.device.type == "cuda":
            torch.cuda.set_device(ctx.device)
            dist.init_process_group("nccl", device_id=ctx.device)
        else:
            dist.init_process_group("gloo")
    return ctx


def teardown(together: bool = True) -> None:
    """Leave the process group. ``together`` (all ranks finished the same loop): wait for each other
    first, as a gloo rank that leaves while another still talks aborts. After a failure on this rank
    alone, leave at once: the launcher then ends the others instead of them waiting forever."""
    if dist.is_available() and dist.is_initialized():
        try:
            if together:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(n: int, ctx: Context) -> slice:
    """This rank's contiguous part of ``n`` items; sizes differ by at most one (as ``tensor_split``)."""
    base, extra = divmod(n, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return slice(start, start + base + (1 if ctx.rank < extra else 0))


def all_reduce_sum(values: list[float], device: torch.device | None = None) -> list[float]:
    """Element-wise sums over all ranks (the values themselves with one process)."""
    if not _active():
        return list(values)
    if device is None or (dist.get_backend() == "nccl" and device.type != "cuda"):
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    buffer = torch.tensor(values, dtype=torch.float64, device=device or "cpu")
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.tolist()


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank when ``flag`` is true on any: all ranks then stop at the same batch."""
    if not _active():
        return flag
    return all_reduce_sum([1.0 if flag else 0.0], device)[0] > 0


def whole_batch(
    loss: torch.Tensor, correct: int, size: int, batch_size: int, ctx: Context, device: torch.device | None = None
) -> tuple[torch.Tensor, float, int]:
    """Turn one rank's share of a global batch into the whole batch's: what to call ``backward`` on, and the
    summed loss and number of correct samples over all ``batch_size`` samples (the same on every rank).

    ``loss`` is the mean over this rank's ``size`` samples (its :func:`shard`), ``correct`` how many of them
    it classified right. A rank with no samples (a last batch smaller than the world) passes a zero loss
    that still reaches every parameter: DDP waits for every rank's gradients.

    Why the weighting: DDP averages gradients over the W ranks, (1/W) sum_r grad L_r. When every slice holds
    B/W samples that is the gradient of the whole batch's mean; when the slices differ by one, the samples
    of a smaller slice would count more. Scaling L_r by its share n_r * W / B makes the average
    (1/B) sum_r n_r grad L_r, the gradient of the mean over the whole batch, for any sizes. With one process
    (or equal slices) the share is 1 and ``loss`` is returned as it is.
    """
    loss_sum, correct_sum = all_reduce_sum([loss.item() * size if size else 0.0, correct], device)
    share = size * ctx.world_size / batch_size
    return (loss * share if size and share != 1 else loss), loss_sum, int(correct_sum)
