"""The training and evaluation step of the sampled-softmax layers (:mod:`multisampled.layers`):
the positions flattened, the class table's rows gathered (or this rank's shard of them), the
sampled softmax through the backend's ``sampled_softmax``, the full softmax of evaluation,
ignored positions and the reductions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from . import _sharded
from ._context import Ctx
from ._math import compute_dtype, logsumexp
from ._sharded import Shard
from ._types import Array, SampledValues

if TYPE_CHECKING:
    from .layers import LayerSpec

__all__ = ["full_logits", "full_softmax_loss", "ignored_positions", "positions", "reduce",
           "rows", "sampled_softmax_step", "table_shard"]


def positions(ctx: Ctx, spec: LayerSpec, inputs: Array, labels: Array
              ) -> tuple[Array, Array, tuple[Optional[int], ...]]:
    """``(inputs [N, D], labels [N, T] index dtype, lead)``: a layer's ``inputs [..., D]`` and
    ``labels [..., T]`` (or ``[...]`` when ``T == 1``) flattened over the leading shape
    ``lead`` (a tuple whose unknown sizes are None, as in a symbolic batch dimension).

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[..., D]`` floating inputs.
        labels: ``[..., T]`` integer labels (``[...]`` when ``T == 1``), with the inputs'
            leading shape.

    Returns:
        The flattened inputs and labels, and the leading shape.

    Raises:
        ValueError: ``inputs`` not ``[..., D]`` with at least two dimensions, or ``labels``
            not of the inputs' leading shape and ``T`` columns.
        TypeError: ``inputs`` not floating, or ``labels`` floating, complex or bool.
    """
    xp = ctx.xp
    shape = tuple(inputs.shape)
    if len(shape) < 2 or shape[-1] != spec.embedding_dim:
        raise ValueError(
            f"inputs must have shape [batch_size, embedding_dim={spec.embedding_dim}] (or "
            f"[..., embedding_dim]), got shape {list(shape)}"
        )
    if not xp.isdtype(inputs.dtype, "real floating"):
        raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
    if xp.isdtype(labels.dtype, ("real floating", "complex floating", "bool")):
        raise TypeError(
            f"labels must have an integer dtype (class ids), got {labels.dtype}; cast "
            "explicitly if the values are whole numbers"
        )
    lead = shape[:-1]
    got = tuple(labels.shape)
    t = spec.num_true
    fits = len(got) == len(lead) + 1 and got[-1] == t
    if t == 1 and len(got) == len(lead):
        fits, labels = True, labels[..., None]
    if not fits or any(a is not None and b is not None and a != b
                       for a, b in zip(got, lead)):
        rows = ", ".join("None" if n is None else str(n) for n in lead)
        raise ValueError(
            f"labels must have shape [{rows}, num_true={t}]"
            + (f" (or [{rows}])" if t == 1 else "") + f", got shape {list(got)}"
        )
    flat_x = xp.reshape(inputs, (-1, spec.embedding_dim))
    flat_y = xp.astype(xp.reshape(labels, (-1, t)), ctx.index_dtype)
    return flat_x, flat_y, lead


def table_shard(ctx: Ctx, spec: LayerSpec, group: Any, partition_strategy: str) -> Shard:
    """This rank's shard of the layer's class table over ``group`` (a ``torch.distributed``
    process group, a mesh axis name): its ``rows`` are the layout's size for this rank.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        group: The process group or mesh axis name the table is sharded over.
        partition_strategy: ``"div"`` or ``"mod"``.

    Returns:
        The shard: this rank, the group's size and the number of rows this rank holds.

    Raises:
        ValueError: An unknown ``partition_strategy``, or fewer classes than ranks.
        TypeError: The rank is not known in Python (a traced rank).
    """
    return _sharded.shard_for(ctx, group, spec.num_classes, partition_strategy)


def sampled_softmax_step(ctx: Ctx, spec: LayerSpec, inputs: Array, labels: Array,
                         sampled_values: SampledValues,
                         gather: Callable[[Array], tuple[Array, Array]],
                         out_dtype: Any = None, shard: Optional[Shard] = None) -> Array:
    """The per-example sampled softmax loss ``[B]`` in ``out_dtype`` (default: the inputs'
    dtype), for validated ``labels [B, T]`` (index dtype) and ``sampled_values`` (candidates,
    counts); ``gather(ids) -> (weight rows, bias rows)`` gathers the table rows the front end's
    way. With ``shard`` (:func:`table_shard`) the table is this rank's shard: ``gather`` gets
    local rows, and the loss is assembled over the group.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[B, D]`` floating inputs (:func:`positions`).
        labels: ``[B, T]`` checked labels in the index dtype.
        sampled_values: ``(candidates [S], true_expected_count, sampled_expected_count)``
            from :func:`sample` or :func:`validated_samples` (no gradient flows into them).
        gather: ``gather(ids [B*T + S]) -> (weight rows [B*T + S, D], bias rows [B*T + S])``.
        out_dtype: The result's dtype (a dtype of the backend); None: the inputs' dtype.
        shard: This rank's shard of the table (:func:`table_shard`), or None.

    Returns:
        The loss of each position, ``[B]``, computed in float32 for half-precision inputs.
    """
    xp = ctx.xp
    candidates, true_q, sampled_q = (ctx.stop_gradient(v) for v in sampled_values)
    cdtype = compute_dtype(xp, inputs.dtype)
    s = candidates.shape[0]
    ids = xp.concat([xp.reshape(labels, (-1,)), candidates])
    owned = None
    if shard is not None:
        owned, ids = shard.owner(ids)
    rows_w, rows_b = gather(ids)
    hits = (ctx.backend.hit_mask(xp, labels, candidates, spec.num_classes)
            if spec.remove_accidental_hits else None)
    parts = (rows_w[:-s], rows_b[:-s], rows_w[-s:], rows_b[-s:],
             xp.log(xp.astype(true_q, cdtype)), xp.log(xp.astype(sampled_q, cdtype)), hits,
             spec.num_true)
    if shard is None:
        loss = ctx.backend.sampled_softmax(xp, inputs, *parts)
    else:
        loss = _sharded.sampled_softmax(shard, inputs, *parts,
                                        *_sharded.split_owned(xp, owned, s, spec.num_true),
                                        ctx.stop_gradient)
    return xp.astype(loss, inputs.dtype if out_dtype is None else out_dtype)


def rows(ctx: Ctx, weight: Array, bias: Optional[Array], ids: Array) -> tuple[Array, Array]:
    """``(weight rows [N, D], bias rows [N])`` of a dense class table through the backend's
    ``take_rows``: the default ``gather`` of :func:`sampled_softmax_step` (``bias`` None: zeros,
    a layer without bias).

    Args:
        ctx: The call's context (:func:`context`).
        weight: The ``[C, D]`` class table.
        bias: The ``[C]`` biases, or None.
        ids: ``[N]`` row ids in the index dtype.

    Returns:
        The gathered weight rows and bias entries.
    """
    rows_w = ctx.take_rows(weight, ids)
    if bias is None:
        return rows_w, ctx.xp.zeros_like(rows_w[:, 0])
    return rows_w, ctx.take_rows(bias, ids)


def ignored_positions(ctx: Ctx, labels: Array, ignore_index: Optional[int]
                      ) -> tuple[Optional[Array], Array]:
    """``(keep [N] bool or None, labels)``: the positions whose labels are not all
    ``ignore_index``, and the labels with the ignored ids replaced by class 0 (their losses
    are discarded by :func:`reduce`); ``(None, labels)`` when ``ignore_index`` is None.

    Args:
        ctx: The call's context (:func:`context`).
        labels: ``[N, T]`` integer labels.
        ignore_index: The label id of ignored positions, or None.

    Returns:
        The mask of kept positions (None: all) and the labels.
    """
    if ignore_index is None:
        return None, labels
    xp = ctx.xp
    ignored = labels == ignore_index
    keep = xp.logical_not(xp.all(ignored, axis=1))
    return keep, xp.where(ignored, xp.zeros_like(labels), labels)


def reduce(ctx: Ctx, loss: Array, keep: Optional[Array], reduction: str,
           lead: tuple[Optional[int], ...]) -> Array:
    """The per-position ``loss [N]`` with ignored positions (``keep`` False) set to 0, as
    ``[*lead]`` (``"none"``; unknown sizes of ``lead`` are inferred), its sum or its mean over
    the kept positions.

    Args:
        ctx: The call's context (:func:`context`).
        loss: ``[N]`` losses of the flattened positions.
        keep: ``[N]`` bool mask of the kept positions (:func:`ignored_positions`), or None.
        reduction: ``"none"``, ``"mean"`` or ``"sum"`` (checked by :func:`check_reduction`).
        lead: The leading shape the positions were flattened from (:func:`positions`).

    Returns:
        ``[*lead]`` losses for ``"none"``, else a 0-d sum or mean (the mean of no kept
        position is NaN).
    """
    xp = ctx.xp
    if keep is not None:
        loss = xp.where(keep, loss, xp.zeros_like(loss))
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean":
        count = xp.ones_like(loss) if keep is None else xp.astype(keep, loss.dtype)
        return xp.sum(loss) / xp.sum(count)
    if all(n is not None for n in lead):
        return xp.reshape(loss, lead)
    return xp.reshape(loss, tuple(-1 if n is None else n for n in lead))


def full_logits(ctx: Ctx, inputs: Array, weight: Array, bias: Optional[Array]) -> Array:
    """``inputs [N, D] @ weight.T + bias``: the logits of all classes ``[N, C]`` in the compute
    dtype (float32 for half precision); ``bias`` None: no bias.

    Args:
        ctx: The call's context (:func:`context`).
        inputs: ``[N, D]`` floating inputs.
        weight: The ``[C, D]`` class table.
        bias: The ``[C]`` biases, or None.

    Returns:
        The ``[N, C]`` logits.
    """
    xp = ctx.xp
    cdtype = compute_dtype(xp, inputs.dtype)
    logits = xp.matmul(xp.astype(inputs, cdtype), xp.matrix_transpose(xp.astype(weight, cdtype)))
    return logits if bias is None else logits + xp.astype(bias, cdtype)


def full_softmax_loss(ctx: Ctx, spec: LayerSpec, inputs: Array, weight: Array,
                      bias: Optional[Array], labels: Array,
                      shard: Optional[Shard] = None) -> Array:
    """The full softmax cross entropy ``[N]`` (compute dtype) over all classes with ``1/T``
    soft labels on the ``T`` true classes of ``labels [N, T]``: a layer's evaluation loss.
    With ``shard``, ``weight``/``bias`` are this rank's shard and the loss is assembled over
    the group.

    Args:
        ctx: The call's context (:func:`context`).
        spec: The layer's configuration.
        inputs: ``[N, D]`` floating inputs.
        weight: The ``[C, D]`` class table (with ``shard``: this rank's rows).
        bias: The ``[C]`` biases (or this rank's), or None.
        labels: ``[N, T]`` checked labels in the index dtype.
        shard: This rank's shard of the table (:func:`table_shard`), or None.

    Returns:
        The loss of each position, ``[N]``.
    """
    xp = ctx.xp
    if shard is not None:
        inputs = shard.copy_in(inputs)
    logits = full_logits(ctx, inputs, weight, bias)
    cdtype = logits.dtype
    ids = xp.reshape(labels, (-1,))
    owned = None
    if shard is not None:
        owned, ids = shard.owner(ids)
    rows = xp.reshape(xp.astype(xp.take(weight, ids, axis=0), cdtype),
                      (-1, spec.num_true, spec.embedding_dim))
    true = xp.sum(xp.astype(inputs, cdtype)[:, None, :] * rows, axis=2)
    if bias is not None:
        true = true + xp.reshape(xp.astype(xp.take(bias, ids, axis=0), cdtype),
                                 (-1, spec.num_true))
    if shard is not None:
        owned_true = xp.reshape(owned, (-1, spec.num_true))
        return _sharded.full_softmax(shard, logits, true, owned_true, ctx.stop_gradient)
    return logsumexp(xp, logits, ctx.stop_gradient) - xp.sum(true, axis=1) / spec.num_true
