"""The class table sharded across the ranks of a group: ``shard_group=`` of the TF losses.

Each rank holds one shard of the ``[num_classes, D]`` table, laid out as TF's
``PartitionedVariable`` (:mod:`multisampled._partition`): "div" gives rank ``p`` a contiguous
range (the first ``num_classes mod P`` ranks one row more), "mod" gives it the classes
``c = p (mod P)``. Every rank holds the same inputs, labels and candidates (the same key draws
the same candidates on every rank, with no communication), gathers the rows of the ids it owns
and computes those columns' logits; the other columns are masked out. The loss comes from two
all-reduces per step: the row maxima (no gradient), then the sums of exponentials and of the
true logits together, so every rank holds the single-device ``[B]`` loss.

Gradients (Megatron's column-parallel pair of operators, from the backend's collectives):

* the all-reduce of a sum passes the output's gradient unchanged to each rank's own term (each
  rank holds the same loss and back-propagates it);
* the inputs enter through :meth:`~multisampled.plugin.Backend.copy_to_group`, whose backward
  sums their gradient over the group.

Every rank then holds the single-device gradient of the inputs and its shard's rows of the
single-device table gradient.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from ._checks import check_floating, dtype_name
from ._context import Ctx
from ._math import sampled_logit_parts, sigmoid_terms
from ._partition import STRATEGIES, layout_sizes, shard_and_row


@dataclasses.dataclass(frozen=True)
class Shard:
    """This rank's place in the sharded table."""

    ctx: Ctx
    group: Any
    rank: Any  # an int, or a 0-d integer array (a traced mesh axis index)
    world: int
    num_classes: int
    strategy: str
    rows: int  # rows of this rank's shard

    def all_reduce(self, x: Any, op: str) -> Any:
        return self.ctx.backend.all_reduce(x, op, self.group)

    def copy_in(self, x: Any) -> Any:
        """``x`` (the same on every rank) as this rank's operand: its gradient is summed over
        the group."""
        return self.ctx.backend.copy_to_group(x, self.group)

    def owner(self, ids: Any) -> tuple:
        """``(owned [N] bool, local row [N])`` for class ids in ``[0, num_classes)``; the rows
        of the ids held elsewhere are clipped into the shard (read, then masked out)."""
        xp = self.ctx.xp
        shard, row = shard_and_row(self.ctx, ids, self.num_classes, self.world, self.strategy)
        return shard == self.rank, xp.clip(row, 0, self.rows - 1)


def shard_for(ctx: Ctx, group: Any, num_classes: int, partition_strategy: Any,
              rows: Optional[int] = None) -> Shard:
    """This rank's :class:`Shard` of a ``num_classes``-row table over ``group``; ``rows`` None:
    the layout's size for this rank (a front end creating its shard)."""
    if partition_strategy not in STRATEGIES:
        raise ValueError(
            f"partition_strategy must be one of {list(STRATEGIES)} with shard_group, got "
            f"{partition_strategy!r}"
        )
    rank, world = ctx.backend.group_info(group)
    if num_classes < world:
        raise ValueError(
            f"num_classes={num_classes} is smaller than the {world} ranks of shard_group: every "
            "rank's shard needs at least one class"
        )
    if rows is None:
        if not isinstance(rank, int):
            raise TypeError("shard_group: this rank's shard size needs a rank known in Python")
        rows = layout_sizes(num_classes, world)[rank]
    return Shard(ctx, group, rank, world, num_classes, partition_strategy, rows)


def check_shard(ctx: Ctx, group: Any, weights: Any, biases: Any, num_classes: int,
                partition_strategy: Any, dim: int) -> tuple:
    """``(Shard, weights, biases)`` for this rank's shard of a ``num_classes``-row table.

    The shard has the layout's size for this rank, or the largest shard's size
    (``ceil(num_classes / P)``: padding rows, never read, for frameworks whose shards must all
    have one shape, such as ``jax.shard_map``'s)."""
    weights = _local_table(ctx, "weights", weights, 2)
    biases = _local_table(ctx, "biases", biases, 1)
    rows = int(weights.shape[0])
    shard = shard_for(ctx, group, num_classes, partition_strategy, rows)
    if int(weights.shape[1]) != dim:
        raise ValueError(
            f"weights must have shape [rows of this rank's shard, dim] with dim = "
            f"inputs.shape[1] = {dim}, got shape {list(weights.shape)}"
        )
    if int(biases.shape[0]) != rows:
        raise ValueError(
            f"biases must have one entry per row of this rank's weights shard ({rows}), got "
            f"shape {list(biases.shape)}"
        )
    world, rank = shard.world, shard.rank
    padded = math.ceil(num_classes / world)
    if isinstance(rank, int):
        allowed = sorted({layout_sizes(num_classes, world)[rank], padded})
        where = f"rank {rank}'s shard"
    else:  # a traced rank (a mesh axis index): every shard has the largest shard's size
        allowed = [padded]
        where = "every rank's shard (padded to the largest shard, as shards of one shape)"
    if rows not in allowed:
        sizes = " or ".join(str(n) for n in allowed)
        raise ValueError(
            f"weights: with shard_group over {world} ranks, {where} of the {num_classes}-row "
            f"table has {sizes} rows in the {partition_strategy!r} layout, got {rows}"
        )
    return shard, weights, biases


def split_owned(xp: Any, owned: Any, num_sampled: int, num_true: int) -> tuple:
    """``(owned_true [B, T], owned_sampled [S])`` from ``owned`` of the ids
    ``concat([labels.ravel(), candidates])``."""
    s = num_sampled
    return xp.reshape(owned[:-s], (-1, num_true)), owned[-s:]


def _local_table(ctx: Ctx, name: str, value: Any, rank: int) -> Any:
    if value is None or isinstance(value, (list, tuple)):
        got = "None" if value is None else f"a {type(value).__name__} of {len(value)} shards"
        raise TypeError(
            f"{name} must be this rank's shard (one array) with shard_group, got {got}"
        )
    arr = ctx.asarray(value)
    check_floating(ctx, name, arr)
    if len(arr.shape) != rank:
        what = "[rows, dim]" if rank == 2 else "[rows]"
        raise ValueError(
            f"{name} must be a rank-{rank} array {what} (this rank's shard), got shape "
            f"{list(arr.shape)} of {dtype_name(arr.dtype)}"
        )
    return arr


def masked(xp: Any, owned: Any, z: Any, fill: float) -> Any:
    """``z`` where this rank owns the column, ``fill`` elsewhere (``owned`` broadcasts)."""
    return xp.where(owned, z, xp.full_like(z, fill))


def sampled_softmax(shard: Shard, x: Any, true_w: Any, true_b: Any, sampled_w: Any,
                    sampled_b: Any, log_q_true: Any, log_q_sampled: Any, hits: Any,
                    num_true: int, owned_true: Any, owned_sampled: Any,
                    stop_gradient: Any) -> Any:
    """TF's sampled softmax loss ``[B]`` (compute dtype) from this rank's rows, as
    :func:`multisampled.kernels.sampled_softmax` on one device; ``owned_*`` say which rows
    (columns) this rank holds."""
    xp = shard.ctx.xp
    true_logits, sampled_logits = sampled_logit_parts(
        xp, shard.copy_in(x), true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled,
        hits, num_true, stop_gradient)
    return _cross_entropy(shard, [(true_logits, owned_true),
                                  (sampled_logits, owned_sampled[None, :])],
                          true_logits, owned_true, stop_gradient)


def full_softmax(shard: Shard, local_logits: Any, true_logits: Any, owned_true: Any,
                 stop_gradient: Any) -> Any:
    """The full softmax cross entropy ``[B]`` over all classes: ``local_logits [B, rows]`` of
    this rank's classes, ``true_logits [B, T]`` valid where ``owned_true``."""
    return _cross_entropy(shard, [(local_logits, None)], true_logits, owned_true, stop_gradient)


def _cross_entropy(shard: Shard, parts: list, true_logits: Any, owned_true: Any,
                   stop_gradient: Any) -> Any:
    """``lse(columns) - mean_t z_t`` over the columns of ``parts`` (``(z, owned or None)``
    pairs) held across the group: the row max, then the sums of exponentials and of the true
    logits, all-reduced."""
    xp = shard.ctx.xp
    num_true = true_logits.shape[1]
    parts = [(z if owned is None else masked(xp, owned, z, -math.inf)) for z, owned in parts]
    local_max = xp.max(parts[0], axis=1)
    for z in parts[1:]:
        local_max = xp.maximum(local_max, xp.max(z, axis=1))
    m = shard.all_reduce(stop_gradient(local_max), "max")[:, None]
    sum_exp = sum(xp.sum(xp.exp(z - m), axis=1) for z in parts)
    true_sum = xp.sum(masked(xp, owned_true, true_logits, 0.0), axis=1)
    totals = shard.all_reduce(xp.stack([sum_exp, true_sum], axis=1), "sum")
    return xp.log(totals[:, 0]) + m[:, 0] - totals[:, 1] / num_true


def nce_loss(shard: Shard, true_logits: Any, sampled_logits: Any, owned_true: Any,
             owned_sampled: Any) -> Any:
    """TF's ``nce_loss`` ``[B]``: this rank's columns' sigmoid terms, all-reduced."""
    xp = shard.ctx.xp
    num_true = true_logits.shape[1]
    local = (sigmoid_terms(xp, true_logits, 1.0 / num_true, owned_true)
             + sigmoid_terms(xp, sampled_logits, 0.0, owned_sampled[None, :]))
    return shard.all_reduce(local, "sum")


def logits(shard: Shard, true_logits: Any, sampled_logits: Any, owned_true: Any,
           owned_sampled: Any) -> Any:
    """All ``[B, T+S]`` logits on every rank: each column from the rank that owns it."""
    xp = shard.ctx.xp
    local = xp.concat([masked(xp, owned_true, true_logits, 0.0),
                       masked(xp, owned_sampled[None, :], sampled_logits, 0.0)], axis=1)
    return shard.all_reduce(local, "sum")
