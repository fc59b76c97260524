"""Accidental hits: sampled candidates that equal one of a row's own true labels (TF semantics).

TF builds a map from candidate VALUE to POSITION by overwriting positions 0..S-1 in order, so a
value sampled several times is reported only at its LAST position. Hits are per row: candidate
``j`` is a hit of row ``i`` when ``is_last[j]`` and it equals any of row ``i``'s labels.
"""

from __future__ import annotations

from typing import Any, Optional

from ._checks import check_integer_ids, check_positive_int, check_rank, check_shape
from ._context import context
from ._guard import public
from ._math import FLT_MAX
from ._types import Array


def last_occurrence(xp: Any, candidates: Array) -> Array:
    """Bool ``[S]``: position ``j`` holds the last occurrence of its value in ``candidates``.

    A stable sort keeps equal values in position order, so the last of each run of equal sorted
    values is the last occurrence; the inverse permutation (argsort of the permutation) maps the
    flags back to positions without a scatter.

    Args:
        xp: The Array API namespace of ``candidates``.
        candidates: ``[S]`` integer candidates.

    Returns:
        A bool ``[S]`` array: True at the last position of each value.
    """
    n = candidates.shape[0]
    if n == 0:
        return xp.zeros_like(candidates, dtype=xp.bool)
    order = xp.argsort(candidates, stable=True)
    ordered = xp.take(candidates, order)
    last_in_run = xp.concat(
        [ordered[:-1] != ordered[1:], xp.ones_like(ordered[:1], dtype=xp.bool)]
    )
    inverse = xp.argsort(order, stable=True)
    return xp.take(last_in_run, inverse)


def equal_any(xp: Any, labels: Any, candidates: Any) -> Any:
    """Bool ``[B, S]``: candidate column ``j`` (shared ``[S]``, or per row ``[B, S]``) equals
    one of row ``i``'s labels ``[B, T]``."""
    cand = candidates[None, :] if len(candidates.shape) == 1 else candidates
    if labels.shape[1] == 1:
        return labels == cand  # [B, S]
    return xp.any(labels[:, :, None] == cand[:, None, :], axis=1)  # via [B, T, S]


def hit_mask(xp: Any, labels: Array, candidates: Array) -> Array:
    """Bool ``[B, S]``: ``(i, j)`` is an accidental hit as TF's ``compute_accidental_hits``
    reports it (candidate ``j`` is the last copy of its value and equals one of row ``i``'s
    labels). ``labels`` is ``[B, T]``, ``candidates`` ``[S]``, same integer dtype.

    Args:
        xp: The Array API namespace of both arrays.
        labels: ``[B, T]`` integer labels.
        candidates: ``[S]`` integer candidates, of the dtype of ``labels``.

    Returns:
        A bool ``[B, S]`` array: True at the accidental hits.
    """
    return equal_any(xp, labels, candidates) & last_occurrence(xp, candidates)[None, :]


@public
def compute_accidental_hits(
    true_classes: Array,
    sampled_candidates: Array,
    num_true: int,
    seed: Optional[int] = None,
    name: Optional[str] = None,
    *,
    backend: Optional[str] = None,
) -> tuple[Array, Array, Array]:
    """``tf.nn.compute_accidental_hits(true_classes, sampled_candidates, num_true, seed=None,
    name=None)``.

    Returns ``(indices, ids, weights)``: for each row ``i`` in order and each label column ``t``
    in order whose label occurs among ``sampled_candidates``, one entry ``(i, position of the
    LAST occurrence of that value, -FLT_MAX)``. A label repeated within a row is reported once
    per repetition. ``indices`` is int32, ``ids`` the backend's index dtype (int64, int32 on JAX
    without x64), ``weights`` float32. ``seed`` and ``name`` are accepted and unused (as in TF).

    The number of hits depends on the data, so this function produces a data-dependent shape;
    the losses use the dense ``[B, S]`` mask instead and stay free of it. TF accepts only int64
    ``true_classes``; any integer dtype is accepted here.

    Args:
        true_classes: ``[B, num_true]`` integer labels.
        sampled_candidates: ``[S]`` integer candidates (a sampler's ``sampled_candidates``).
        num_true: The labels per example (``true_classes.shape[1]``, >= 1).
        seed: Accepted and unused (as in TF).
        name: Accepted and ignored (TF's op name).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``(indices [H], ids [H], weights [H])`` for the ``H`` hits: the rows (int32), the
        positions of the last occurrences (the index dtype) and ``-FLT_MAX`` (float32), arrays
        of the inputs' backend.

    Raises:
        TypeError: ``num_true`` not an int (or a bool); ``true_classes`` or ``sampled_candidates``
            not of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str.
        ValueError: ``num_true`` below 1; ``true_classes`` not ``[B, num_true]``;
            ``sampled_candidates`` not 1-D; an unknown ``backend``.
        ImportError: ``backend`` names a registered backend whose framework is not installed.
    """
    del seed, name
    ctx = context(true_classes, sampled_candidates, backend=backend)
    xp = ctx.xp
    num_true = check_positive_int("num_true", num_true)
    true_classes = ctx.asarray(true_classes)
    sampled_candidates = ctx.asarray(sampled_candidates)
    check_integer_ids(ctx, "true_classes", true_classes)
    check_integer_ids(ctx, "sampled_candidates", sampled_candidates)
    check_rank("true_classes", true_classes, 2, "[batch_size, num_true]")
    check_shape(
        "true_classes", true_classes, (None, num_true), f"[batch_size, num_true={num_true}]"
    )
    check_rank("sampled_candidates", sampled_candidates, 1, "[num_sampled]")

    index = ctx.index_dtype
    labels = xp.astype(true_classes, index)
    candidates = xp.astype(sampled_candidates, index)
    # [B, T, S]: at most one True per (i, t) because only last copies count, so row-major
    # nonzero order is TF's (row, then label column) order.
    equal = (labels[:, :, None] == candidates[None, None, :]) & last_occurrence(xp, candidates)[
        None, None, :
    ]
    rows, _, positions = xp.nonzero(equal)
    indices = xp.astype(rows, xp.int32)
    ids = xp.astype(positions, index)
    weights = xp.full(indices.shape, -FLT_MAX, dtype=xp.float32, device=ctx.device)
    return indices, ids, weights
