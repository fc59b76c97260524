"""The sampled-loss family, written once against the Array API.

TensorFlow: :func:`compute_sampled_logits` (TF's ``_compute_sampled_logits``),
:func:`sampled_softmax_loss`, :func:`nce_loss`, :func:`rank_sampled_softmax_loss` (TF 1.x
contrib, TAPAS). PaddlePaddle: :func:`sampled_softmax_with_cross_entropy`.

Layout of the TF path, so that a backend can reuse the math with rows it gathered itself:

1. ``_prepare``: validation, the default sampler, conversion of ``sampled_values``.
2. ``_gather_rows``: the (possibly sharded) embedding lookup of true and sampled rows.
3. ``_sampled_logits_from_rows``: masking, log-Q, the ``[B, T+S]`` logits and soft labels.
4. ``_softmax_cross_entropy(_parts)`` / ``_sigmoid_terms``: the losses.

Numerics: the logits and the cross entropy are computed in float32 for float16/bfloat16 inputs
and in the inputs' own dtype for float32/float64; results are returned in the inputs' dtype.
The hot path has no host synchronisation and no data-dependent shapes (accidental hits are a
dense ``[B, S]`` mask; value checks run eagerly only on host backends).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from ._checks import (
    broadcasts_to,
    check_bool,
    check_floating,
    check_int_labels,
    check_non_negative,
    check_non_negative_int,
    check_positive_finite,
    check_positive_int,
    check_positive_scalar,
    check_rank,
    check_shape,
    check_value_range,
    dtype_name,
    keep_in_range,
    is_floating_dtype,
    is_integer_dtype,
)
from ._context import Ctx, context
from ._hits import FLT_MAX, hit_mask
from ._partition import STRATEGIES, check_shards, embedding_lookup
from ._public import public

PADDLE_MASK = 1e20  # Paddle subtracts this from accidental hits and clamps +-inf to +-it
PADDLE_CLIP = -64.0  # Paddle's softmax clips max-shifted logits from below at this value


# --------------------------------------------------------------------------------------------
# dtypes


def compute_dtype(ctx: Ctx, dtype: Any) -> Any:
    """float64 stays float64; every other floating dtype (float16, bfloat16, float32) computes
    in float32."""
    xp = ctx.xp
    return xp.float64 if dtype == xp.float64 else xp.float32


def _cast(ctx: Ctx, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else ctx.xp.astype(x, dtype)


# --------------------------------------------------------------------------------------------
# validation shared by the TF-named functions


@dataclasses.dataclass
class _Prepared:
    inputs: Any  # [B, D] floating, the caller's dtype
    labels: Any  # [B, T] index dtype
    weight_shards: list
    weight_rows: int
    bias_shards: list
    bias_rows: int
    partition_strategy: Any
    sampled_values: tuple  # (candidates [S] index dtype, true counts, sampled counts) compute dtype
    num_true: int
    num_sampled: int


def _check_not_swapped(ctx: Ctx, labels: Any, inputs: Any) -> None:
    """TF 0.x took ``inputs`` before ``labels``; catch that order instead of computing garbage."""
    xp = ctx.xp
    if is_integer_dtype(xp, inputs.dtype) and is_floating_dtype(xp, labels.dtype):
        raise TypeError(
            f"labels has floating dtype {dtype_name(labels.dtype)} and inputs has integer dtype "
            f"{dtype_name(inputs.dtype)}: the arguments look swapped (TF 0.x order "
            f"inputs, labels); since TF 1.0 the order is labels, inputs"
        )


def _check_inputs_and_labels(ctx: Ctx, labels: Any, inputs: Any, num_true: int):
    labels = ctx.asarray(labels)
    inputs = ctx.asarray(inputs)
    _check_not_swapped(ctx, labels, inputs)
    check_floating(ctx, "inputs", inputs)
    check_rank("inputs", inputs, 2, "[batch_size, dim]")
    check_int_labels(ctx, "labels", labels)
    check_rank("labels", labels, 2, "[batch_size, num_true]")
    batch = int(inputs.shape[0])
    if labels.shape[1] != num_true:
        raise ValueError(
            f"labels must have num_true={num_true} columns ([batch_size, num_true]), got shape "
            f"{list(labels.shape)}"
        )
    check_shape("labels", labels, (batch, num_true), "[batch_size of inputs, num_true]")
    return labels, inputs


def _check_params(ctx, weights, biases, inputs, num_classes, partition_strategy):
    weight_shards, weight_rows = check_shards(ctx, "weights", weights, partition_strategy, 2)
    bias_shards, bias_rows = check_shards(ctx, "biases", biases, partition_strategy, 1)
    dim = int(inputs.shape[1])
    if int(weight_shards[0].shape[1]) != dim:
        raise ValueError(
            f"weights must have shape [num_classes, dim] with dim = inputs.shape[1] = {dim}, got "
            f"rows of width {int(weight_shards[0].shape[1])}"
        )
    for name, rows in (("weights", weight_rows), ("biases", bias_rows)):
        if rows < num_classes:
            raise ValueError(
                f"{name} has {rows} rows in total but num_classes={num_classes}; class ids in "
                f"[0, num_classes) must all have a row"
            )
    return weight_shards, weight_rows, bias_shards, bias_rows


def _check_sampled_values(
    ctx: Ctx,
    sampled_values: Any,
    *,
    batch: int,
    num_true: int,
    num_classes: int,
    cdtype: Any,
    expected_len: Optional[int] = None,
    min_len: Optional[int] = None,
    length_reason: str = "",
    check_values: bool = True,
) -> tuple:
    """Validate a ``(sampled_candidates, true_expected_count, sampled_expected_count)`` triple
    and return it stop-gradiented, candidates in the index dtype, counts in ``cdtype``.

    ``check_values=False`` skips the value checks (ids in range, counts finite and > 0) for
    triples this library's own samplers produced; shapes and dtypes are always checked."""
    is_sequence = isinstance(sampled_values, (tuple, list))
    if not is_sequence or len(sampled_values) != 3:
        length = f" of length {len(sampled_values)}" if is_sequence else ""
        raise TypeError(
            "sampled_values must be a tuple (sampled_candidates, true_expected_count, "
            f"sampled_expected_count), got {type(sampled_values).__name__}{length}"
        )
    candidates, true_count, sampled_count = (ctx.asarray(v) for v in sampled_values)
    check_int_labels(ctx, "sampled_values[0] (sampled_candidates)", candidates)
    check_rank("sampled_values[0] (sampled_candidates)", candidates, 1, "[num_sampled]")
    num = int(candidates.shape[0])
    if num == 0:
        raise ValueError("sampled_values[0] (sampled_candidates) must not be empty, got shape [0]")
    if expected_len is not None and num != expected_len:
        raise ValueError(
            f"num_sampled={expected_len} but sampled_values[0] (sampled_candidates) has {num} "
            f"entries{length_reason}"
        )
    if min_len is not None and num < min_len:
        raise ValueError(
            f"sampled_values[0] (sampled_candidates) has {num} entries but num_resampled="
            f"{min_len} of them are to be kept"
        )
    check_floating(ctx, "sampled_values[1] (true_expected_count)", true_count)
    check_floating(ctx, "sampled_values[2] (sampled_expected_count)", sampled_count)
    if not broadcasts_to(true_count.shape, (batch, num_true)):
        raise ValueError(
            f"sampled_values[1] (true_expected_count) must broadcast to [batch_size, num_true] = "
            f"{[batch, num_true]}, got shape {list(true_count.shape)}"
        )
    if not broadcasts_to(sampled_count.shape, (num,)):
        raise ValueError(
            f"sampled_values[2] (sampled_expected_count) must broadcast to [num_sampled] = "
            f"{[num]}, got shape {list(sampled_count.shape)}"
        )
    if check_values:
        check_value_range(
            ctx, "sampled_values[0] (sampled_candidates)", candidates, 0, num_classes
        )
        check_positive_finite(ctx, "sampled_values[1] (true_expected_count)", true_count)
        check_positive_finite(ctx, "sampled_values[2] (sampled_expected_count)", sampled_count)
        candidates = keep_in_range(ctx, candidates, 0, num_classes)
    return (
        _cast(ctx, ctx.stop_gradient(candidates), ctx.index_dtype),
        _cast(ctx, ctx.stop_gradient(true_count), cdtype),
        _cast(ctx, ctx.stop_gradient(sampled_count), cdtype),
    )


def _prepare(
    ctx: Ctx,
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true,
    sampled_values,
    remove_accidental_hits,
    partition_strategy,
    seed,
    *,
    default_sampler: str = "log_uniform",
    backend: Optional[str] = None,
    check_length: bool = True,
    min_len: Optional[int] = None,
) -> _Prepared:
    num_sampled = check_positive_int("num_sampled", num_sampled)
    num_classes = check_positive_int("num_classes", num_classes)
    num_true = check_positive_int("num_true", num_true)
    remove_accidental_hits = check_bool("remove_accidental_hits", remove_accidental_hits)
    # seed is only forwarded to the default sampler, which validates it (int or Generator)
    labels, inputs = _check_inputs_and_labels(ctx, labels, inputs, num_true)
    shards = _check_params(ctx, weights, biases, inputs, num_classes, partition_strategy)
    check_value_range(ctx, "labels", labels, 0, num_classes)
    labels = keep_in_range(ctx, _cast(ctx, labels, ctx.index_dtype), 0, num_classes)
    cdtype = compute_dtype(ctx, inputs.dtype)
    from_sampler = sampled_values is None
    if from_sampler:
        sampled_values = _default_samples(
            ctx, default_sampler, labels, num_true, num_sampled, num_classes, seed, backend
        )
    expected_len = None
    if check_length and remove_accidental_hits:
        # TF scatters the hits into a [B, num_sampled] matrix and fails on a length mismatch;
        # without hit removal it never reads num_sampled once sampled_values is given.
        expected_len = num_sampled
    sampled_values = _check_sampled_values(
        ctx,
        sampled_values,
        batch=int(inputs.shape[0]),
        num_true=num_true,
        num_classes=num_classes,
        cdtype=cdtype,
        expected_len=expected_len,
        min_len=min_len,
        length_reason=" (they must agree when remove_accidental_hits=True)",
        check_values=not from_sampler,
    )
    return _Prepared(
        inputs, labels, *shards, partition_strategy, sampled_values, num_true, num_sampled
    )


def _default_samples(ctx, which, labels, num_true, num_sampled, num_classes, seed, backend):
    """The default first-phase sampler: unique draws over ``[0, num_classes)``."""
    if num_sampled > num_classes:
        raise ValueError(
            f"num_sampled={num_sampled} cannot be greater than num_classes={num_classes}: the "
            f"default sampler draws num_sampled distinct classes (unique=True)"
        )
    from . import samplers  # the samplers module may import this one; keep it lazy

    sampler = (
        samplers.learned_unigram_candidate_sampler
        if which == "learned_unigram"
        else samplers.log_uniform_candidate_sampler
    )
    return tuple(
        sampler(labels, num_true, num_sampled, True, num_classes, seed=seed, backend=backend)
    )


# --------------------------------------------------------------------------------------------
# the math (TF)


def _gather_rows(ctx: Ctx, p: _Prepared, candidates: Any):
    """(true_w [B*T, D], true_b [B*T], sampled_w [S, D], sampled_b [S]) in one lookup each."""
    xp = ctx.xp
    ids = xp.concat([xp.reshape(p.labels, (-1,)), candidates])
    all_w = embedding_lookup(ctx, p.weight_shards, p.weight_rows, ids, p.partition_strategy)
    all_b = embedding_lookup(ctx, p.bias_shards, p.bias_rows, ids, p.partition_strategy)
    n_true = int(p.labels.shape[0]) * p.num_true
    return all_w[:n_true, ...], all_b[:n_true], all_w[n_true:, ...], all_b[n_true:]


def _sampled_logits_from_rows(
    ctx: Ctx,
    true_w: Any,
    true_b: Any,
    sampled_w: Any,
    sampled_b: Any,
    inputs: Any,
    labels: Any,
    sampled_values: tuple,
    num_true: int,
    num_sampled: int,
    subtract_log_q: bool,
    remove_accidental_hits: bool,
):
    """TF's ``_compute_sampled_logits`` after the lookup (SEMANTICS 3, steps 5-10).

    ``true_w [B*T, D]``, ``true_b [B*T]`` are the rows of ``labels`` (row-major), ``sampled_w
    [S, D]``, ``sampled_b [S]`` the rows of the candidates; ``inputs [B, D]`` floating;
    ``labels [B, T]`` integer; ``sampled_values`` a validated ``(candidates [S] integer,
    true_expected_count -> [B, T], sampled_expected_count -> [S])``. Returns ``(logits, labels)``
    both ``[B, T+S]`` in the compute dtype (float32 for half inputs). Rows may come from any
    gather (a backend's sparse-gradient module, say); gradients flow into them and ``inputs``.
    """
    true_logits, sampled_logits = _sampled_logit_parts(
        ctx, true_w, true_b, sampled_w, sampled_b, inputs, labels, sampled_values, num_true,
        num_sampled, subtract_log_q, remove_accidental_hits,
    )
    xp = ctx.xp
    batch, num = int(true_logits.shape[0]), int(sampled_logits.shape[1])
    cdtype = true_logits.dtype
    logits = xp.concat([true_logits, sampled_logits], axis=1)
    out_labels = xp.concat(
        [
            xp.full((batch, num_true), 1.0 / num_true, dtype=cdtype, device=ctx.device),
            xp.zeros((batch, num), dtype=cdtype, device=ctx.device),
        ],
        axis=1,
    )
    return logits, ctx.stop_gradient(out_labels)


def _sampled_logit_parts(
    ctx: Ctx,
    true_w: Any,
    true_b: Any,
    sampled_w: Any,
    sampled_b: Any,
    inputs: Any,
    labels: Any,
    sampled_values: tuple,
    num_true: int,
    num_sampled: int,
    subtract_log_q: bool,
    remove_accidental_hits: bool,
):
    """``(true_logits [B, T], sampled_logits [B, S])`` of :func:`_sampled_logits_from_rows`,
    before concatenation (the losses combine the two parts without copying them together)."""
    xp = ctx.xp
    cdtype = compute_dtype(ctx, inputs.dtype)
    x = _cast(ctx, inputs, cdtype)
    batch, dim = int(x.shape[0]), int(x.shape[1])
    candidates, true_count, sampled_count = (ctx.stop_gradient(v) for v in sampled_values)
    num = int(candidates.shape[0])
    if remove_accidental_hits and num != num_sampled:
        raise ValueError(
            f"num_sampled={num_sampled} but the sampled candidates have {num} entries "
            f"(they must agree when remove_accidental_hits=True)"
        )
    true_w = xp.reshape(_cast(ctx, true_w, cdtype), (batch, num_true, dim))
    true_b = xp.reshape(_cast(ctx, true_b, cdtype), (batch, num_true))
    sampled_w = _cast(ctx, sampled_w, cdtype)
    sampled_b = _cast(ctx, sampled_b, cdtype)

    # row-wise dot products x_i . w_{y[i,t]} + b_{y[i,t]}: [B, T]
    true_logits = xp.sum(x[:, None, :] * true_w, axis=-1) + true_b
    if subtract_log_q:
        true_logits = true_logits - xp.log(_cast(ctx, true_count, cdtype))
        # the sampled columns' log Q is per column: fold it into the [S] bias vector, so the
        # [B, S] logits take one broadcast add (TF adds the mask first, then subtracts log Q;
        # at a masked entry both orders give -FLT_MAX, as the magnitudes differ by > 2**24)
        sampled_b = sampled_b - xp.log(_cast(ctx, sampled_count, cdtype))
    # shared negatives: x @ W_s^T + b_s: [B, S]
    sampled_logits = xp.matmul(x, xp.matrix_transpose(sampled_w)) + sampled_b

    if remove_accidental_hits:
        index = ctx.index_dtype
        hits = hit_mask(ctx, _cast(ctx, labels, index), _cast(ctx, candidates, index))
        # TF adds a dense constant matrix holding -FLT_MAX at the hits (a repeated hit is
        # assigned once); the result stays finite in float32/float64. As a constant it has no
        # backward pass of its own.
        neg = xp.full((), -FLT_MAX, dtype=cdtype, device=ctx.device)
        zero = xp.full((), 0.0, dtype=cdtype, device=ctx.device)
        sampled_logits = sampled_logits + ctx.stop_gradient(xp.where(hits, neg, zero))
    return true_logits, sampled_logits


def _logsumexp(ctx: Ctx, z: Any) -> Any:
    """log sum exp over the last axis of a 2-D array, max-shifted (the shift carries no
    gradient: its derivative cancels exactly)."""
    xp = ctx.xp
    m = ctx.stop_gradient(xp.max(z, axis=1, keepdims=True))
    return xp.log(xp.sum(xp.exp(z - m), axis=1)) + m[:, 0]


def _softmax_cross_entropy(ctx: Ctx, logits: Any, num_true: int) -> Any:
    """Soft-label cross entropy with ``1/T`` on the first ``T`` columns and 0 elsewhere:
    ``lse(z) - mean(z[:, :T])`` (= ``-sum(y * log_softmax(z))``), ``[B]``."""
    xp = ctx.xp
    return _logsumexp(ctx, logits) - xp.sum(logits[:, :num_true], axis=1) / num_true


def _softmax_cross_entropy_parts(ctx: Ctx, true_logits: Any, sampled_logits: Any) -> Any:
    """:func:`_softmax_cross_entropy` of ``concat([true_logits, sampled_logits], 1)``, without
    the concatenation: ``logaddexp`` of the two parts' row-wise log-sum-exp."""
    xp = ctx.xp
    num_true = int(true_logits.shape[1])
    lse = xp.logaddexp(_logsumexp(ctx, true_logits), _logsumexp(ctx, sampled_logits))
    return lse - xp.sum(true_logits, axis=1) / num_true


def _sigmoid_terms(ctx: Ctx, z: Any, target: float) -> Any:
    """Row sums of TF's stable ``max(z, 0) - z*y + log1p(exp(-|z|))`` for a constant target."""
    xp = ctx.xp
    terms = xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))
    if target:
        terms = terms - z * target
    return xp.sum(terms, axis=1)


def _logits_for(ctx: Ctx, p: _Prepared, sampled_values, num_sampled, subtract_log_q, remove,
                parts=False):
    true_w, true_b, sampled_w, sampled_b = _gather_rows(ctx, p, sampled_values[0])
    return (_sampled_logit_parts if parts else _sampled_logits_from_rows)(
        ctx,
        true_w,
        true_b,
        sampled_w,
        sampled_b,
        p.inputs,
        p.labels,
        sampled_values,
        p.num_true,
        num_sampled,
        subtract_log_q,
        remove,
    )


# --------------------------------------------------------------------------------------------
# public TF-named functions


@public
def compute_sampled_logits(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    subtract_log_q=True,
    remove_accidental_hits=False,
    partition_strategy="div",
    name=None,
    seed=None,
    *,
    backend=None,
):
    """TF's ``_compute_sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes,
    num_true=1, sampled_values=None, subtract_log_q=True, remove_accidental_hits=False,
    partition_strategy="div", name=None, seed=None)``.

    Returns ``(logits [B, T+S], labels [B, T+S])`` in the inputs' dtype: true columns first
    (``x.w_y + b_y - ln Qtrue``, one column per label, duplicates included), then the shared
    sampled columns (``x.w_s + b_s [- FLT_MAX at accidental hits] - ln Qs``); soft labels ``1/T``
    on the true columns. Only the LAST copy of a duplicated sampled id is masked, per row against
    that row's own labels. ``partition_strategy`` defaults to "div" (what TF 2.x uses; TF's
    private helper defaults to "mod").

    Deviations from TF, all raising where TF computes garbage: integer labels required; labels
    and sampled ids must lie in ``[0, num_classes)``; expected counts must be finite and > 0;
    shard sizes must follow the layout. Expected counts are cast to the compute dtype (TF
    fails for non-float32 inputs with its float32 default sampler).
    """
    del name
    ctx = context(weights, biases, labels, inputs, sampled_values, backend=backend)
    subtract_log_q = check_bool("subtract_log_q", subtract_log_q)
    p = _prepare(
        ctx, weights, biases, labels, inputs, num_sampled, num_classes, num_true,
        sampled_values, remove_accidental_hits, partition_strategy, seed, backend=backend,
    )
    logits, out_labels = _logits_for(
        ctx, p, p.sampled_values, p.num_sampled, subtract_log_q, bool(remove_accidental_hits)
    )
    return _cast(ctx, logits, p.inputs.dtype), _cast(ctx, out_labels, p.inputs.dtype)


@public
def sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=True,
    seed=None,
    name="sampled_softmax_loss",
    *,
    partition_strategy="div",
    backend=None,
):
    """``tf.nn.sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes,
    num_true=1, sampled_values=None, remove_accidental_hits=True, seed=None,
    name="sampled_softmax_loss")`` (TF 2.x order), ``[B]`` in the inputs' dtype.

    ``weights [C, D]`` (or a list of shards), ``biases [C]`` (or shards), ``labels [B, T]``
    integer, ``inputs [B, D]``. With ``sampled_values=None`` the default sampler is
    ``log_uniform_candidate_sampler(labels, num_true, num_sampled, unique=True,
    range_max=num_classes, seed=seed)``. The loss is the soft-label cross entropy
    ``lse(z) - mean_t z[:, t]`` over the logits of :func:`compute_sampled_logits`.

    ``partition_strategy`` (keyword only; TF 2.x always uses "div") selects the shard layout;
    ``multisampled.v1.sampled_softmax_loss`` has TF 1.x's order and "mod" default. Half-precision
    inputs are computed in float32, so a row with an accidental hit stays finite (TF gives NaN).
    """
    del name
    ctx = context(weights, biases, labels, inputs, sampled_values, backend=backend)
    p = _prepare(
        ctx, weights, biases, labels, inputs, num_sampled, num_classes, num_true,
        sampled_values, remove_accidental_hits, partition_strategy, seed, backend=backend,
    )
    true_logits, sampled_logits = _logits_for(
        ctx, p, p.sampled_values, p.num_sampled, True, bool(remove_accidental_hits), parts=True
    )
    loss = _softmax_cross_entropy_parts(ctx, true_logits, sampled_logits)
    return _cast(ctx, loss, p.inputs.dtype)


@public
def nce_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=False,
    name="nce_loss",
    *,
    seed=None,
    partition_strategy="div",
    backend=None,
):
    """``tf.nn.nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
    sampled_values=None, remove_accidental_hits=False, name="nce_loss")`` (TF 2.x order),
    ``[B]`` in the inputs' dtype.

    Sigmoid cross entropy ``max(z,0) - z*y + log1p(exp(-|z|))`` summed over the ``T+S`` logits
    of :func:`compute_sampled_logits` (log-Q subtracted), targets ``1/T`` on the true columns
    (TF's choice, not 1). ``seed`` (for the default sampler) and ``partition_strategy`` ("div",
    as TF 2.x) are keyword-only extensions.
    """
    del name
    ctx = context(weights, biases, labels, inputs, sampled_values, backend=backend)
    p = _prepare(
        ctx, weights, biases, labels, inputs, num_sampled, num_classes, num_true,
        sampled_values, remove_accidental_hits, partition_strategy, seed, backend=backend,
    )
    true_logits, sampled_logits = _logits_for(
        ctx, p, p.sampled_values, p.num_sampled, True, bool(remove_accidental_hits), parts=True
    )
    loss = _sigmoid_terms(ctx, true_logits, 1.0 / p.num_true) + _sigmoid_terms(
        ctx, sampled_logits, 0.0
    )
    return _cast(ctx, loss, p.inputs.dtype)


@public
def rank_sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_resampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    resampling_temperature=1.0,
    remove_accidental_hits=True,
    partition_strategy="div",
    name=None,
    seed=None,
    *,
    backend=None,
):
    """``tf.contrib.nn.rank_sampled_softmax_loss(weights, biases, labels, inputs, num_sampled,
    num_resampled, num_classes, num_true, sampled_values, resampling_temperature,
    remove_accidental_hits, partition_strategy, name=None)`` (TAPAS), ``[B]``.

    Checks, in TF's order (ValueError): ``num_sampled > num_classes``; ``num_sampled <=
    num_resampled``; ``partition_strategy`` not "div"/"mod" (checked even for one shard, as TF).
    Default first-phase sampler: ``learned_unigram_candidate_sampler(labels, num_true,
    num_sampled, unique=True, range_max=num_classes, seed=seed)``. Every candidate ``c`` is
    scored ``lse_j(w_c . x_j / tau) + b_c / tau`` over the batch rows ``j`` (no gradient); the
    ``num_resampled`` best are kept (ties: the earlier candidate position wins, TF ``top_k``'s
    rule) with their first-phase expected counts, and the sampled softmax loss is taken over
    them (``num_sampled = num_resampled``). ``resampling_temperature`` is a positive number or a
    0-d array. ``seed`` is an extension (TF's contrib function has none).
    """
    del name
    ctx = context(
        weights, biases, labels, inputs, sampled_values, resampling_temperature, backend=backend
    )
    xp = ctx.xp
    num_sampled = check_positive_int("num_sampled", num_sampled)
    num_resampled = check_positive_int("num_resampled", num_resampled)
    num_classes = check_positive_int("num_classes", num_classes)
    if num_sampled > num_classes:
        raise ValueError(
            f"num_sampled ({num_sampled}) cannot be greater than num_classes ({num_classes})"
        )
    if num_sampled <= num_resampled:
        raise ValueError(
            f"num_resampled ({num_resampled}) must be less than num_sampled ({num_sampled})"
        )
    if partition_strategy not in STRATEGIES:
        raise ValueError(
            f"unsupported partition_strategy ({partition_strategy!r}); expected one of "
            f"{list(STRATEGIES)}"
        )
    remove_accidental_hits = check_bool("remove_accidental_hits", remove_accidental_hits)
    p = _prepare(
        ctx, weights, biases, labels, inputs, num_sampled, num_classes, num_true,
        sampled_values, remove_accidental_hits, partition_strategy, seed,
        default_sampler="learned_unigram", backend=backend, check_length=False,
        min_len=num_resampled,
    )
    cdtype = compute_dtype(ctx, p.inputs.dtype)
    tau = _temperature(ctx, resampling_temperature, cdtype)
    candidates, true_count, sampled_count = p.sampled_values
    num = int(candidates.shape[0])

    # _rank_resample: scores carry no gradient, only the selected indices are used.
    sampled_w = ctx.stop_gradient(
        embedding_lookup(ctx, p.weight_shards, p.weight_rows, candidates, p.partition_strategy)
    )
    sampled_b = ctx.stop_gradient(
        embedding_lookup(ctx, p.bias_shards, p.bias_rows, candidates, p.partition_strategy)
    )
    x = ctx.stop_gradient(_cast(ctx, p.inputs, cdtype)) / tau
    per_row = xp.matmul(_cast(ctx, sampled_w, cdtype), xp.matrix_transpose(x))  # [S, B]
    scores = _logsumexp(ctx, per_row) + _cast(ctx, sampled_b, cdtype) / tau
    keep = xp.argsort(scores, descending=True, stable=True)[:num_resampled]
    resampled_values = (
        xp.take(candidates, keep),
        true_count,
        xp.take(xp.broadcast_to(sampled_count, (num,)), keep),
    )
    true_logits, sampled_logits = _logits_for(
        ctx, p, resampled_values, num_resampled, True, remove_accidental_hits, parts=True
    )
    loss = _softmax_cross_entropy_parts(ctx, true_logits, sampled_logits)
    return _cast(ctx, loss, p.inputs.dtype)


def _temperature(ctx: Ctx, value: Any, cdtype: Any) -> Any:
    if ctx.is_backend_array(value) or (
        not isinstance(value, (int, float)) and hasattr(value, "shape")
    ):
        tau = ctx.asarray(value)
        check_floating(ctx, "resampling_temperature", tau)
        check_rank("resampling_temperature", tau, 0, "(a scalar)")
        check_positive_finite(ctx, "resampling_temperature", tau)
        return _cast(ctx, ctx.stop_gradient(tau), cdtype)
    return check_positive_scalar("resampling_temperature", value)


# --------------------------------------------------------------------------------------------
# PaddlePaddle


@public
def sampled_softmax_with_cross_entropy(
    logits,
    label,
    num_samples,
    num_true=1,
    remove_accidental_hits=True,
    use_customized_samples=False,
    customized_samples=None,
    customized_probabilities=None,
    seed=0,
    *,
    backend=None,
):
    """``paddle.fluid.layers.sampled_softmax_with_cross_entropy(logits, label, num_samples,
    num_true=1, remove_accidental_hits=True, use_customized_samples=False,
    customized_samples=None, customized_probabilities=None, seed=0)``, ``[N, 1]``.

    ``logits [N, K]`` are the full class scores; ``label [N, T]`` integer. Samples are ``[N,
    T+S]``: the row's labels, then ``S`` log-uniform negatives drawn without repetition over
    ``[0, K)`` and shared by all rows, with probabilities ``P(k) = ln((k+2)/(k+1)) /
    float32(log1p(K))`` turned into expected counts (``S*P`` when no draw was rejected, else
    ``1 - (1-P)^num_tries``). Sampled columns equal to one of the row's first ``T`` sample
    columns get ``1e20`` subtracted (every match), then ``clamp(ln Q)`` is subtracted and +-inf
    is clamped to +-1e20. The cross entropy is Paddle's: max-shifted logits are clipped from
    below at -64 (forward), and the gradient is ``softmax - soft_label`` of the clipped values.

    ``use_customized_samples=True`` uses ``customized_samples [N, T+S]`` (integer, in ``[0,
    K)``, may differ per row) and ``customized_probabilities [N, T+S]`` as given; ``label``
    values are then unused (only its shape). Customized probabilities must be >= 0 and not NaN
    (0 and +inf go through Paddle's clamp of ``ln`` to -/+1e20, as in Paddle; a negative or NaN
    value would give Paddle a NaN loss and is refused).

    ``seed``: nonzero repeats the same negatives on every call (Paddle re-seeds its sampler each
    time); 0 draws fresh negatives each call. Negatives are drawn on the arrays' device with
    the project's counter-based generator (not Paddle's ``mt19937_64`` stream).

    ``num_true > 1``: Paddle's layer cannot run it; here every true column carries ``1/T`` and
    the loss is the mean of ``-log softmax`` over the ``T`` true columns (TF's soft-label
    formula). Paddle's final ``/ num_true`` is NOT applied on top. ``num_true`` must equal
    ``label.shape[1]`` and ``num_samples <= K``. Only ``logits`` receives gradients. Half
    precision logits are computed in float32 (Paddle has float32/float64 kernels only).
    """
    ctx = context(logits, label, customized_samples, customized_probabilities, backend=backend)
    xp = ctx.xp
    num_samples = check_positive_int("num_samples", num_samples)
    num_true = check_positive_int("num_true", num_true)
    remove_accidental_hits = check_bool("remove_accidental_hits", remove_accidental_hits)
    use_customized_samples = check_bool("use_customized_samples", use_customized_samples)
    seed = check_non_negative_int("seed", seed)
    logits = ctx.asarray(logits)
    label = ctx.asarray(label)
    check_floating(ctx, "logits", logits)
    check_rank("logits", logits, 2, "[N, K]")
    check_int_labels(ctx, "label", label)
    check_rank("label", label, 2, "[N, num_true]")
    n, k = int(logits.shape[0]), int(logits.shape[1])
    if label.shape[1] != num_true:
        raise ValueError(
            f"num_true={num_true} must equal the number of label columns; label has shape "
            f"{list(label.shape)}"
        )
    check_shape("label", label, (n, num_true), "[N of logits, num_true]")
    cdtype = compute_dtype(ctx, logits.dtype)
    index = ctx.index_dtype
    width = num_true + num_samples

    if use_customized_samples:
        if customized_samples is None or customized_probabilities is None:
            raise ValueError(
                "use_customized_samples=True needs both customized_samples and "
                f"customized_probabilities; got customized_samples="
                f"{'None' if customized_samples is None else 'an array'}, "
                f"customized_probabilities="
                f"{'None' if customized_probabilities is None else 'an array'}"
            )
        samples = ctx.asarray(customized_samples)
        probs = ctx.asarray(customized_probabilities)
        check_int_labels(ctx, "customized_samples", samples)
        check_shape("customized_samples", samples, (n, width), "[N, num_true + num_samples]")
        check_floating(ctx, "customized_probabilities", probs)
        check_shape(
            "customized_probabilities", probs, (n, width), "[N, num_true + num_samples]"
        )
        check_value_range(ctx, "customized_samples", samples, 0, k)
        # Paddle clamps ln(0) and ln(inf) to -/+1e20 and returns a finite loss: reproduced.
        # A negative or NaN probability gives Paddle a NaN loss: refused.
        check_non_negative(ctx, "customized_probabilities", probs)
        samples = keep_in_range(ctx, _cast(ctx, samples, index), 0, k)
        probs = _cast(ctx, ctx.stop_gradient(probs), cdtype)
        picked = _gather_per_row(ctx, logits, samples)
        true_samples, sampled_samples = samples[:, :num_true], samples[:, num_true:]
    else:
        if num_samples > k:
            raise ValueError(
                f"num_samples={num_samples} cannot be greater than the number of classes "
                f"K = logits.shape[1] = {k}: negatives are drawn without repetition"
            )
        check_value_range(ctx, "label", label, 0, k)
        label = keep_in_range(ctx, _cast(ctx, label, index), 0, k)
        negatives, num_tries = _paddle_negatives(ctx, k, num_samples, seed)
        negatives = _cast(ctx, negatives, index)
        neg_prob = _paddle_log_uniform_prob(ctx, negatives, k)
        true_prob = _paddle_log_uniform_prob(ctx, label, k)
        probs = xp.concat(
            [
                _paddle_adjust(ctx, true_prob, num_samples, num_tries, cdtype),
                xp.broadcast_to(
                    _paddle_adjust(ctx, neg_prob, num_samples, num_tries, cdtype)[None, :],
                    (n, num_samples),
                ),
            ],
            axis=1,
        )
        picked = xp.concat(
            [_gather_per_row(ctx, logits, label), xp.take(logits, negatives, axis=1)], axis=1
        )
        true_samples, sampled_samples = label, negatives[None, :]

    z = _cast(ctx, picked, cdtype)
    if remove_accidental_hits:
        # every sampled column equal to one of the row's first T sample columns
        hits = xp.any(sampled_samples[:, None, :] == true_samples[:, :, None], axis=1)
        hits = xp.broadcast_to(hits, (n, num_samples))
        mask = xp.concat(
            [xp.zeros((n, num_true), dtype=cdtype, device=ctx.device), xp.astype(hits, cdtype)],
            axis=1,
        )
        z = z - mask * PADDLE_MASK
    z = _clamp_inf(ctx, z - _clamp_inf(ctx, xp.log(probs)))
    loss = _paddle_soft_label_cross_entropy(ctx, z, num_true)
    return xp.reshape(_cast(ctx, loss, logits.dtype), (n, 1))


def _gather_per_row(ctx: Ctx, logits: Any, columns: Any) -> Any:
    """``logits[i, columns[i, c]]`` for ``columns [N, W]`` (a flat ``take``, no fancy indexing)."""
    xp = ctx.xp
    n, k = int(logits.shape[0]), int(logits.shape[1])
    width = int(columns.shape[1])
    rows = xp.arange(n, dtype=columns.dtype, device=ctx.device)[:, None] * k
    flat = xp.reshape(rows + columns, (-1,))
    return xp.reshape(xp.take(xp.reshape(logits, (-1,)), flat), (n, width))


def _clamp_inf(ctx: Ctx, v: Any) -> Any:
    """Paddle's clamp: +inf -> 1e20, -inf -> -1e20, everything else (NaN too) unchanged."""
    xp = ctx.xp
    big = xp.full_like(v, PADDLE_MASK)
    v = xp.where(v == math.inf, big, v)
    return xp.where(v == -math.inf, -big, v)


def _paddle_log_uniform_prob(ctx: Ctx, ids: Any, k: int) -> Any:
    """Paddle's ``LogUniformSampler::Probability``: ``ln((id+2)/(id+1))`` in double divided by
    ``ln(K+1)`` stored as float32, returned as float32."""
    xp = ctx.xp
    log_range = _paddle_log_range(k)
    if "float64" in ctx.backend.float_dtypes:
        idf = xp.astype(ids, xp.float64)
        p = xp.log((idf + 2.0) / (idf + 1.0)) / log_range
    else:  # no double on this backend: the same formula in float32 (last-bit differences)
        idf = xp.astype(ids, xp.float32)
        p = xp.log1p(1.0 / (idf + 1.0)) / log_range
    return xp.astype(p, xp.float32)


def _paddle_log_range(k: int) -> float:
    """``ln(K + 1)`` rounded to float32, as Paddle's sampler stores it."""
    import numpy as np

    return float(np.float32(math.log1p(k)))


def _paddle_adjust(ctx: Ctx, prob: Any, num_samples: int, num_tries: int, cdtype: Any) -> Any:
    """Paddle's ``adjust_prob`` in the compute dtype: ``S*P`` if no draw was rejected, else
    ``1 - (1-P)^num_tries`` as ``-expm1(num_tries * log1p(-P))``."""
    xp = ctx.xp
    p = _cast(ctx, prob, cdtype)
    if isinstance(num_tries, int):
        if num_tries == num_samples:
            return p * num_samples
        return -xp.expm1(num_tries * xp.log1p(-p))
    # a 0-d array (no host read on this device): both branches, selected on the device
    rejected = -xp.expm1(xp.astype(num_tries, cdtype) * xp.log1p(-p))
    return xp.where(num_tries == num_samples, p * num_samples, rejected)


def _paddle_negatives(ctx: Ctx, k: int, num_samples: int, seed: int):
    """``(negatives [S], num_tries)``: ``S`` distinct log-uniform classes of ``[0, K)`` in
    first-draw order, drawn on the arrays' device with the core's counter-based generator.

    Paddle builds a new sampler seeded with ``seed`` on every call, so a nonzero seed repeats
    the same negatives on every call: here, a fresh :class:`~multisampled.Generator` of that seed
    each call. ``seed=0`` draws fresh negatives each call. The stream is the project's Threefry
    generator (the same classes on every backend and device), not Paddle's ``mt19937_64``.
    ``num_tries`` is an int, or a 0-d array on backends that do not read values on the host.
    """
    from . import _rng, samplers

    dist = samplers._log_uniform(ctx, k)
    return samplers._sample(ctx, dist, num_samples, True, _rng.Generator(seed) if seed else None)


def _paddle_soft_label_cross_entropy(ctx: Ctx, z: Any, num_true: int) -> Any:
    """Paddle's ``softmax_with_cross_entropy(soft_label=True)`` with ``1/T`` on the first ``T``
    columns: shifted logits ``s = z - max(z)`` are clipped from below at -64, the loss is
    ``lse(c) - mean_t c_t`` of the clipped values ``c``, and the gradient is ``softmax(c) -
    label`` with the clip passed through as the identity (``c = sg(clip(s)) + (s - sg(s))``
    equals ``clip(s)`` exactly in the forward pass)."""
    xp = ctx.xp
    sg = ctx.stop_gradient
    s = z - sg(xp.max(z, axis=1, keepdims=True))
    clipped = sg(xp.clip(s, min=PADDLE_CLIP)) + (s - sg(s))
    lse = xp.log(xp.sum(xp.exp(clipped), axis=1))
    return lse - xp.sum(clipped[:, :num_true], axis=1) / num_true
