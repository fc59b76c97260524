"""Embedding lookup over sharded parameters with TF's "mod" and "div" partition strategies.

``params`` is one array (a single shard) or a list/tuple of shards whose rows together hold the
ids ``[0, N)``, ``N`` = the sum of the shards' first dimensions (TF's ``embedding_lookup``):

- "mod": id ``i`` lives in shard ``i mod P`` at local row ``i div P``.
- "div": with ``q = N div P`` and ``r = N mod P`` the first ``r`` shards own ``q + 1``
  consecutive ids and the rest own ``q``; id ``i`` lives in shard
  ``p = max(i div (q+1), (i - r) div q)`` at local row ``i mod (q+1)`` if ``p < r`` else
  ``(i - r) mod q``.

With one shard the strategy is ignored (even an unknown string, as in TF). Both layouts give
shard ``p`` exactly ``ceil((N - p) / P)`` rows; TF never checks that, and mismatched sizes read
wrong rows or fail inside a gather, so here the sizes are checked up front (they are static).

The lookup is vectorised with no data-dependent shapes: shard index and local row are computed
for every id, every shard is gathered at the clipped local rows, and ``where`` picks the right
shard per id.
"""

from __future__ import annotations

from typing import Any, Sequence

from ._checks import check_floating, dtype_name

STRATEGIES = ("mod", "div")


def as_shards(params: Any) -> list:
    """``params`` as a list of shards (a list/tuple is taken as shards; anything else is one)."""
    if isinstance(params, (list, tuple)):
        return list(params)
    return [params]


def check_shards(
    ctx: Any, name: str, params: Any, partition_strategy: Any, rank: int
) -> tuple[list, int]:
    """Validate ``params`` (``rank`` 2 for weights, 1 for biases) and return (shards, N).

    Errors: empty shard list, non-floating shards, wrong rank, mismatched trailing dims or
    dtypes, unknown strategy (only with > 1 shard, as in TF), sizes off the layout, and "div"
    with fewer ids than shards.
    """
    if params is None:
        hint = (" (TF's losses have no no-bias mode: pass zeros of shape [num_classes] for no "
                "bias)") if rank == 1 else ""
        raise TypeError(f"{name} must be an array or a list of shards, got None{hint}")
    shards = as_shards(params)
    if not shards:
        raise ValueError(f"{name} must be an array or a non-empty list of shards, got []")
    shards = [ctx.asarray(s) for s in shards]
    what = "[rows, dim]" if rank == 2 else "[rows]"
    for k, s in enumerate(shards):
        label = name if len(shards) == 1 else f"{name}[{k}]"
        check_floating(ctx, label, s)
        if len(s.shape) != rank:
            raise ValueError(
                f"{label} must be a rank-{rank} array {what}, got shape {list(s.shape)}"
            )
    if len(shards) > 1:
        first = shards[0]
        for k, s in enumerate(shards[1:], start=1):
            if tuple(s.shape[1:]) != tuple(first.shape[1:]):
                raise ValueError(
                    f"{name}: every shard must have the same trailing shape; {name}[0] has "
                    f"shape {list(first.shape)} but {name}[{k}] has {list(s.shape)}"
                )
            if s.dtype != first.dtype:
                raise TypeError(
                    f"{name}: every shard must have the same dtype; {name}[0] is "
                    f"{dtype_name(first.dtype)} but {name}[{k}] is {dtype_name(s.dtype)}"
                )
    sizes = [int(s.shape[0]) for s in shards]
    total = sum(sizes)
    num_shards = len(shards)
    if num_shards > 1:
        if partition_strategy not in STRATEGIES:
            raise ValueError(
                f"partition_strategy must be one of {list(STRATEGIES)} when {name} has more "
                f"than one shard, got {partition_strategy!r}"
            )
        if partition_strategy == "div" and total < num_shards:
            raise ValueError(
                f"{name}: the 'div' partition strategy needs at least one row per shard; got "
                f"{total} rows over {num_shards} shards (sizes {sizes})"
            )
        expected = layout_sizes(total, num_shards)
        if sizes != expected:
            raise ValueError(
                f"{name}: shard sizes {sizes} do not follow the {partition_strategy!r} layout of "
                f"{total} rows over {num_shards} shards; expected sizes {expected}"
            )
    return shards, total


def layout_sizes(total: int, num_shards: int) -> list:
    """Rows of each shard under either strategy: the first ``total mod P`` shards get one more."""
    q, r = divmod(total, num_shards)
    return [q + 1 if p < r else q for p in range(num_shards)]


def shard_and_row(ctx: Any, ids: Any, total: int, num_shards: int, partition_strategy: str):
    """(shard index, local row) arrays for integer ``ids`` in ``[0, total)``."""
    if partition_strategy == "mod":
        return ids % num_shards, ids // num_shards
    xp = ctx.xp
    q, r = divmod(total, num_shards)
    shard_hi = ids // (q + 1)  # right for the first r shards (q + 1 rows each)
    shard_lo = (ids - r) // q  # right for the rest (q rows each)
    shard = xp.maximum(shard_hi, shard_lo)
    row = xp.where(shard < r, ids % (q + 1), (ids - r) % q)
    return shard, row


def embedding_lookup(
    ctx: Any, shards: Sequence[Any], total: int, ids: Any, partition_strategy: str
) -> Any:
    """Rows ``ids`` (1-D integer array, values in ``[0, total)``) of the sharded parameters.

    ``shards``/``total`` come from :func:`check_shards`. Gradients reach only the selected rows
    of each shard (``take`` + ``where``; the backend's ``take_rows`` where it has one).
    """
    xp = ctx.xp
    if len(shards) == 1:
        return ctx.take_rows(shards[0], ids)
    shard, row = shard_and_row(ctx, ids, total, len(shards), partition_strategy)
    out = None
    for p, params in enumerate(shards):
        size = int(params.shape[0])
        if size == 0:  # "mod" with fewer ids than shards: no id lives here
            continue
        rows = ctx.take_rows(params, xp.clip(row, 0, size - 1))
        if out is None:
            out = rows
            continue
        pick = shard == p
        if len(rows.shape) > 1:
            pick = xp.reshape(pick, (pick.shape[0],) + (1,) * (len(rows.shape) - 1))
        out = xp.where(pick, rows, out)
    return out
