"""TensorFlow's sampled losses: ``compute_sampled_logits`` (TF's ``_compute_sampled_logits``),
``sampled_softmax_loss``, ``nce_loss`` and TF 1.x contrib's ``rank_sampled_softmax_loss``
(TAPAS), on any Array API backend (SEMANTICS 2, 3, 7, 9).

Each public function validates (:mod:`multisampled._tf_args`), gathers the rows of the labels
and of the sampled candidates in one lookup (:mod:`multisampled._partition`), and computes the
math of :mod:`multisampled._math` on them. The hot path has no host synchronisation and no
data-dependent shapes (accidental hits are a dense ``[B, S]`` mask).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from ._checks import (
    check_bool,
    check_floating,
    check_integer_ids,
    check_non_negative_int,
    check_nonzero,
    check_nonzero_scalar,
    check_positive_int,
    check_rank,
    named_array,
)
from ._context import Ctx, context
from ._docs import fill
from ._guard import public
from ._math import cast, compute_dtype, logsumexp, nce, sampled_logit_parts
from . import _sharded as sharded
from ._partition import STRATEGIES, embedding_lookup
from ._tf_args import SAMPLED_VALUE_NAMES, Prepared, check_argument_forms, prepare
from ._types import Array, ClassTable, SampledValues, Seed


def _gather_rows(ctx: Ctx, p: Prepared, candidates: Any):
    """``((true_w [B*T, D], true_b [B*T], sampled_w [S, D], sampled_b [S]), owned)`` in one
    lookup each; ``owned`` is None, or with a sharded table ``(owned_true [B, T], owned_sampled
    [S])``: which of the columns' rows this rank holds."""
    xp = ctx.xp
    ids = xp.concat([xp.reshape(p.labels, (-1,)), candidates])
    owned = None
    if p.gathered:  # the caller gathered them: their gradients are the rows' gradients
        all_w, all_b = p.weight_shards[0], p.bias_shards[0]
    elif p.shard is None:
        all_w = embedding_lookup(ctx, p.weight_shards, p.weight_rows, ids, p.partition_strategy)
        all_b = embedding_lookup(ctx, p.bias_shards, p.bias_rows, ids, p.partition_strategy)
    else:
        owned, local = p.shard.owner(ids)
        all_w = ctx.take_rows(p.weight_shards[0], local)
        all_b = ctx.take_rows(p.bias_shards[0], local)
    s = int(candidates.shape[0])  # static, where the batch size may not be
    if s == 0:  # num_resampled=0: no sampled rows
        return (all_w, all_b, all_w[:0, ...], all_b[:0]), None
    rows = (all_w[:-s, ...], all_b[:-s], all_w[-s:, ...], all_b[-s:])
    if owned is not None:
        owned = sharded.split_owned(xp, owned, s, p.num_true)
    return rows, owned


def _parts(ctx: Ctx, p: Prepared, sampled_values: tuple, subtract_log_q: bool, remove: bool):
    """The rows, the logs of the counts and the hit mask, as
    :func:`multisampled.kernels.sampled_logit_parts` takes them, and ``owned``."""
    xp = ctx.xp
    candidates, true_count, sampled_count = sampled_values
    rows, owned = _gather_rows(ctx, p, candidates)
    log_q = (None, None)
    if subtract_log_q:
        log_q = (xp.log(true_count), xp.log(sampled_count))
    hits = ctx.backend.hit_mask(xp, p.labels, candidates, p.num_classes) if remove else None
    return rows, log_q, hits, owned


def _logit_parts(ctx: Ctx, p: Prepared, sampled_values: tuple, subtract_log_q: bool,
                 remove: bool) -> tuple:
    """``(true_logits [B, T], sampled_logits [B, S], owned)`` (``owned`` of
    :func:`_gather_rows`); with a sharded table only this rank's columns are meaningful."""
    rows, log_q, hits, owned = _parts(ctx, p, sampled_values, subtract_log_q, remove)
    inputs = p.inputs if p.shard is None else p.shard.copy_in(p.inputs)
    true_logits, sampled_logits = sampled_logit_parts(
        ctx.xp, inputs, *rows, *log_q, hits, p.num_true, ctx.stop_gradient)
    return true_logits, sampled_logits, owned


def _softmax_loss(ctx: Ctx, p: Prepared, sampled_values: tuple, remove: bool) -> Any:
    """TF's sampled softmax loss ``[B]``: through the backend's one delegation point, or from
    this rank's columns of a sharded table."""
    xp = ctx.xp
    rows, log_q, hits, owned = _parts(ctx, p, sampled_values, True, remove)
    if p.shard is None:
        loss = ctx.backend.sampled_softmax(xp, p.inputs, *rows, *log_q, hits, p.num_true)
    else:
        loss = sharded.sampled_softmax(p.shard, p.inputs, *rows, *log_q, hits, p.num_true,
                                       *owned, ctx.stop_gradient)
    return cast(xp, loss, p.inputs.dtype)


@fill
def row_ids(labels: Array, sampled_values: SampledValues, *,
            backend: Optional[str] = None) -> Array:
    """The class ids of the rows a loss with ``gathered=True`` takes:
    ``concat([reshape(labels, [-1]), sampled_values[0]])``, ``[B*T + S]`` in the index dtype.

    TF differentiates its gather of the table into ``tf.IndexedSlices``: the gradients of the
    gathered rows, with no dense ``[C, D]`` array. Frameworks whose gather gradient is dense
    (JAX; torch's functional API and ``torch.compile``) get the same by gathering the rows
    themselves and differentiating with respect to them::

        ids = ms.row_ids(labels, sampled)
        loss = ms.sampled_softmax_loss(weights[ids], biases[ids], labels, inputs, S, C,
                                       sampled_values=sampled, gathered=True)

    The gradient of ``weights[ids]`` is then the ``values`` of TF's ``IndexedSlices`` with
    ``indices=ids``; a repeated id has one row per occurrence, whose gradients add up
    (``weights.at[ids].add(g)`` in JAX, ``index_add_`` in torch). The loss equals the call
    with the whole table.

    Args:
        labels: {labels}
        sampled_values: {sampled_triple}
        backend: {backend}

    Returns:
        ``[B*T + S]`` class ids, in the index dtype of the labels' backend.

    Raises:
        TypeError: ``labels`` or the candidates not integer arrays; ``sampled_values`` not a
            triple of arrays; arrays of two frameworks.
        ValueError: ``labels`` not rank 2 or the candidates not rank 1; an unknown backend.
        ImportError: {import_error}
    """
    check_argument_forms(labels, labels, sampled_values)
    if sampled_values is None:
        raise TypeError("sampled_values must be a tuple (sampled_candidates, "
                        "true_expected_count, sampled_expected_count), got None")
    ctx = context(labels, sampled_values, backend=backend)
    xp = ctx.xp
    ids = []
    for name, value, rank, form in (("labels", labels, 2, "[batch_size, num_true]"),
                                    (SAMPLED_VALUE_NAMES[0], sampled_values[0], 1,
                                     "[num_sampled]")):
        arr = named_array(ctx, name, value)
        check_integer_ids(ctx, name, arr)
        check_rank(name, arr, rank, form)
        ids.append(xp.reshape(cast(xp, arr, ctx.index_dtype), (-1,)))
    return xp.concat(ids)


def _prepared(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
              sampled_values, remove_accidental_hits, partition_strategy, seed, backend,
              shard_group, subtract_log_q=True, gathered=False) -> tuple:
    """``(ctx, Prepared, subtract_log_q)`` for the TF losses, checked in TF's order."""
    check_argument_forms(labels, inputs, sampled_values)
    ctx = context(weights, biases, labels, inputs, sampled_values, backend=backend)
    subtract_log_q = check_bool("subtract_log_q", subtract_log_q)
    p = prepare(ctx, weights=weights, biases=biases, labels=labels, inputs=inputs,
                num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
                sampled_values=sampled_values, remove_accidental_hits=remove_accidental_hits,
                partition_strategy=partition_strategy, seed=seed, backend=backend,
                counts_used=subtract_log_q, shard_group=shard_group, gathered=gathered)
    return ctx, p, subtract_log_q


@public
@fill
def compute_sampled_logits(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    subtract_log_q: bool = True, remove_accidental_hits: bool = False,
    partition_strategy: str = "div", name: Optional[str] = None, seed: Optional[Seed] = None,
    *, backend: Optional[str] = None, shard_group: Any = None, gathered: bool = False,
) -> tuple[Array, Array]:
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
    and sampled ids must lie in ``[0, num_classes)``; expected counts must be finite and > 0
    (when log Q is subtracted); shard sizes must follow the layout. Expected counts are cast to
    the compute dtype (TF fails for non-float32 inputs with its float32 default sampler).

    Args:
        weights: {weights}
        biases: {biases}
        labels: {labels}
        inputs: {inputs}
        num_sampled: {loss_num_sampled}
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_values}
        subtract_log_q: Whether to subtract ``ln Q`` (the log of the expected counts) from the
            logits; with False the counts' values and shapes are not read.
        remove_accidental_hits: Whether to mask (``- FLT_MAX``) the sampled columns equal to one of
            the row's labels.
        partition_strategy: ``"div"`` or ``"mod"``: {layout}.
        name: {op_name}
        seed: {loss_seed}
        backend: {backend}
        shard_group: {shard_group}
        gathered: {gathered}

    Returns:
        ``(logits, labels)``: two arrays ``[B, T+S]`` of the inputs' dtype and backend: the
        logits of the true columns then the sampled ones, and the soft labels (``1/T`` on the
        true columns, 0 on the sampled ones; no gradient).

    Raises:
        TypeError: {loss_types}
        ValueError: {loss_values}
        ImportError: {import_error}
        RuntimeError: {loss_runtime}
    """
    del name
    ctx, p, subtract_log_q = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group, subtract_log_q,
        gathered)
    xp = ctx.xp
    true_logits, sampled_logits, owned = _logit_parts(
        ctx, p, p.sampled_values, subtract_log_q, bool(remove_accidental_hits))
    if owned is None:
        logits = xp.concat([true_logits, sampled_logits], axis=1)
    else:
        logits = sharded.logits(p.shard, true_logits, sampled_logits, *owned)
    out_labels = xp.concat(
        [xp.full_like(true_logits, 1.0 / p.num_true), xp.zeros_like(sampled_logits)], axis=1)
    dtype = p.inputs.dtype
    return cast(xp, logits, dtype), cast(xp, ctx.stop_gradient(out_labels), dtype)


@public
@fill
def sampled_softmax_loss(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = True, seed: Optional[Seed] = None,
    name: Optional[str] = "sampled_softmax_loss", *, partition_strategy: str = "div",
    backend: Optional[str] = None, shard_group: Any = None, gathered: bool = False,
) -> Array:
    """``tf.nn.sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes,
    num_true=1, sampled_values=None, remove_accidental_hits=True, seed=None,
    name="sampled_softmax_loss")`` (TF 2.x order), ``[B]`` in the inputs' dtype.

    ``weights [C, D]`` (or a list of shards), ``biases [C]`` (or shards), ``labels [B, T]``
    integer, ``inputs [B, D]``. With ``sampled_values=None`` the default sampler is
    ``log_uniform_candidate_sampler(labels, num_true, num_sampled, unique=True,
    range_max=num_classes, seed=seed)``; ``seed`` may be a key (see the samplers), which
    ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)`` need. The loss is the
    soft-label cross entropy ``lse(z) - mean_t z[:, t]`` over the logits of
    :func:`compute_sampled_logits`.

    ``partition_strategy`` (keyword only; TF 2.x always uses "div") selects the shard layout;
    ``multisampled.v1.sampled_softmax_loss`` has TF 1.x's order and "mod" default. Half-precision
    inputs are computed in float32, so a row with an accidental hit stays finite (TF gives NaN).

    Args:
        weights: {weights}
        biases: {biases}
        labels: {labels}
        inputs: {inputs}
        num_sampled: {loss_num_sampled}
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_values}
        remove_accidental_hits: {softmax_hits}
        seed: {loss_seed}
        name: {op_name}
        partition_strategy: {div_layout}
        backend: {backend}
        shard_group: {shard_group}
        gathered: {gathered}

    Returns:
        {loss_returns}

    Raises:
        TypeError: {loss_types}
        ValueError: {loss_values}
        ImportError: {import_error}
        RuntimeError: {loss_runtime}
    """
    del name
    ctx, p, _ = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group,
        gathered=gathered)
    return _softmax_loss(ctx, p, p.sampled_values, bool(remove_accidental_hits))


@public
@fill
def nce_loss(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = False, name: Optional[str] = "nce_loss", *,
    seed: Optional[Seed] = None, partition_strategy: str = "div", backend: Optional[str] = None,
    shard_group: Any = None, gathered: bool = False,
) -> Array:
    """``tf.nn.nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
    sampled_values=None, remove_accidental_hits=False, name="nce_loss")`` (TF 2.x order),
    ``[B]`` in the inputs' dtype.

    Sigmoid cross entropy ``max(z,0) - z*y + log1p(exp(-|z|))`` summed over the ``T+S`` logits
    of :func:`compute_sampled_logits` (log-Q subtracted), targets ``1/T`` on the true columns
    (TF's choice, not 1). ``seed`` (for the default sampler) and ``partition_strategy`` ("div",
    as TF 2.x) are keyword-only extensions.

    Args:
        weights: {weights}
        biases: {biases}
        labels: {labels}
        inputs: {inputs}
        num_sampled: {loss_num_sampled}
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_values}
        remove_accidental_hits: {nce_hits}
        name: {op_name}
        seed: Keyword only. {loss_seed}
        partition_strategy: {div_layout}
        backend: {backend}
        shard_group: {shard_group}
        gathered: {gathered}

    Returns:
        {loss_returns}

    Raises:
        TypeError: {loss_types}
        ValueError: {loss_values}
        ImportError: {import_error}
        RuntimeError: {loss_runtime}
    """
    del name
    ctx, p, _ = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group,
        gathered=gathered)
    true_logits, sampled_logits, owned = _logit_parts(
        ctx, p, p.sampled_values, True, bool(remove_accidental_hits))
    if owned is None:
        loss = nce(ctx.xp, true_logits, sampled_logits)
    else:
        loss = sharded.nce_loss(p.shard, true_logits, sampled_logits, *owned)
    return cast(ctx.xp, loss, p.inputs.dtype)


@public
@fill
def rank_sampled_softmax_loss(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_resampled: int, num_classes: int, num_true: int = 1,
    sampled_values: Optional[SampledValues] = None,
    resampling_temperature: Union[float, Array] = 1.0, remove_accidental_hits: bool = True,
    partition_strategy: str = "div", name: Optional[str] = None, seed: Optional[Seed] = None,
    *, backend: Optional[str] = None,
) -> Array:
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
    them (``num_sampled = num_resampled``). ``resampling_temperature`` is a number or a 0-d
    array other than 0 and NaN (a negative one ranks the candidates in reverse, as in TF; 0 and
    NaN make every score NaN, whose ranking TF leaves to its sort). ``num_resampled=0`` keeps no
    candidate (the loss over the true columns alone, as TF). An empty ``sampled_values`` (``()``,
    ``[]``, ``{}``) draws the default sampler, as TF's ``if not sampled_values``. ``seed`` is an
    extension (TF's contrib function has none).

    Args:
        weights: {weights_unsharded}
        biases: {biases_unsharded}
        labels: {labels}
        inputs: {inputs}
        num_sampled: The number of first-phase candidates (>= 1, at most ``num_classes``, more than
            ``num_resampled``).
        num_resampled: How many of the best-scoring candidates are kept (>= 0).
        num_classes: {num_classes}
        num_true: {loss_num_true}
        sampled_values: {sampled_triple}, or None to draw with
            ``learned_unigram_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``; an empty ``()``, ``[]`` or ``{}`` also draws it. Given, it needs at least
            ``num_resampled`` candidates.
        resampling_temperature: The temperature ``tau`` of the scores: a real number or a floating
            0-d array, other than 0 and NaN.
        remove_accidental_hits: Whether to mask the kept classes equal to one of the row's labels.
        partition_strategy: ``"div"`` or ``"mod"`` (checked even for one shard, as TF): the layout
            of a sharded ``weights`` and ``biases``.
        name: {op_name}
        seed: An extension (TF's contrib function has none). {loss_seed}
        backend: {backend}

    Returns:
        {loss_returns}

    Raises:
        TypeError: {loss_arg_types}; ``resampling_temperature`` neither a real number nor a
            floating 0-d array; ``biases`` None; {foreign_arrays}; {bad_seed}.
        ValueError: {loss_shapes}; ``resampling_temperature`` 0 or NaN (an array: where values are
            read, as below) or an array that is not 0-d; ``num_sampled > num_classes``,
            ``num_sampled <= num_resampled``, ``num_resampled`` below 0, an unknown
            ``partition_strategy``, fewer than ``num_resampled`` given candidates; {seed_values}.
            {ids_on_host}
        ImportError: {import_error}
        RuntimeError: {runtime_errors}.
    """
    del name
    if isinstance(sampled_values, (tuple, list, dict)) and len(sampled_values) == 0:
        sampled_values = None
    check_argument_forms(labels, inputs, sampled_values)
    ctx = context(
        weights, biases, labels, inputs, sampled_values, resampling_temperature, backend=backend
    )
    xp = ctx.xp
    num_sampled = check_positive_int("num_sampled", num_sampled)
    num_resampled = check_non_negative_int("num_resampled", num_resampled)
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
    p = prepare(ctx, weights=weights, biases=biases, labels=labels, inputs=inputs,
                num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
                sampled_values=sampled_values, remove_accidental_hits=remove_accidental_hits,
                partition_strategy=partition_strategy, seed=seed,
                default_sampler="learned_unigram", backend=backend, check_length=False,
                min_len=num_resampled)
    cdtype = compute_dtype(xp, p.inputs.dtype)
    tau = _temperature(ctx, resampling_temperature, cdtype)
    candidates, true_count, sampled_count = p.sampled_values
    num = int(candidates.shape[0])

    # _rank_resample: scores carry no gradient, only the selected indices are used.
    sg = ctx.stop_gradient
    sampled_w = sg(embedding_lookup(ctx, p.weight_shards, p.weight_rows, candidates,
                                    p.partition_strategy))
    sampled_b = sg(embedding_lookup(ctx, p.bias_shards, p.bias_rows, candidates,
                                    p.partition_strategy))
    x = sg(cast(xp, p.inputs, cdtype)) / tau
    per_row = xp.matmul(cast(xp, sampled_w, cdtype), xp.matrix_transpose(x))  # [S, B]
    if per_row.shape[1] == 0:  # an empty batch: every candidate scores alike (TF's top_k)
        scores = cast(xp, sampled_b, cdtype) / tau
    else:
        scores = logsumexp(xp, per_row, sg) + cast(xp, sampled_b, cdtype) / tau
    keep = xp.argsort(scores, descending=True, stable=True)[:num_resampled]
    resampled_values = (
        xp.take(candidates, keep),
        true_count,
        xp.take(xp.broadcast_to(sampled_count, (num,)), keep),
    )
    if num_resampled == 0:  # no sampled column: TF's loss over the true columns alone
        true_logits, _, _ = _logit_parts(ctx, p, resampled_values, True, False)
        loss = logsumexp(xp, true_logits, sg) - xp.sum(true_logits, axis=1) / p.num_true
        return cast(xp, loss, p.inputs.dtype)
    return _softmax_loss(ctx, p, resampled_values, remove_accidental_hits)


def _temperature(ctx: Ctx, value: Any, cdtype: Any) -> Any:
    if ctx.is_backend_array(value) or (
        not isinstance(value, (int, float)) and hasattr(value, "shape")
    ):
        tau = ctx.asarray(value)
        check_floating(ctx, "resampling_temperature", tau)
        check_rank("resampling_temperature", tau, 0, "(a scalar)")
        check_nonzero(ctx, "resampling_temperature", tau)
        return cast(ctx.xp, ctx.stop_gradient(tau), cdtype)
    return check_nonzero_scalar("resampling_temperature", value)
