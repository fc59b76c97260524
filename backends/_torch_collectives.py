"""``torch.distributed`` collectives with the gradients a sharded class table needs.

* :func:`all_reduce` ``"sum"``: ``all_reduce`` forward; the backward hands each rank's own term
  the output's gradient unchanged (every rank holds the same loss and back-propagates it).
  ``"max"``: no gradient.
* :func:`copy_to_group`: the identity forward; the backward sums the gradient over the group.

On NCCL the collectives are enqueued on the current stream: no host synchronisation.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


class _SumOverGroup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _CopyToGroup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def group_info(group) -> tuple:
    """``(rank, world_size)`` in a ``torch.distributed`` process group."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "shard_group: torch.distributed is not initialised; call "
            "torch.distributed.init_process_group first"
        )
    if not isinstance(group, dist.ProcessGroup):
        raise TypeError(
            "shard_group must be a torch.distributed process group (torch.distributed.group.WORLD "
            f"or one from torch.distributed.new_group), got {type(group).__name__}"
        )
    rank = dist.get_rank(group)
    if rank < 0:
        raise ValueError("shard_group: this process is not a member of the process group")
    return rank, dist.get_world_size(group)


def all_reduce(x, op: str, group):
    if op == "sum":
        return _SumOverGroup.apply(x, group)
    if op == "max":
        out = x.detach().contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.MAX, group=group)
        return out
    raise ValueError(f"all_reduce: op must be 'sum' or 'max', got {op!r}")


def copy_to_group(x, group):
    return _CopyToGroup.apply(x, group)
