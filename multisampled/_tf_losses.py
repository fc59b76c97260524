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
    check_non_negative_int,
    check_nonzero,
    check_nonzero_scalar,
    check_positive_int,
    check_rank,
)
from ._context import Ctx, context
from ._guard import public
from ._math import cast, compute_dtype, logsumexp, nce, sampled_logit_parts
from . import _sharded as sharded
from ._partition import STRATEGIES, embedding_lookup
from ._tf_args import Prepared, check_argument_forms, prepare
from ._types import Array, ClassTable, SampledValues, Seed


def _gather_rows(ctx: Ctx, p: Prepared, candidates: Any):
    """``((true_w [B*T, D], true_b [B*T], sampled_w [S, D], sampled_b [S]), owned)`` in one
    lookup each; ``owned`` is None, or with a sharded table ``(owned_true [B, T], owned_sampled
    [S])``: which of the columns' rows this rank holds."""
    xp = ctx.xp
    ids = xp.concat([xp.reshape(p.labels, (-1,)), candidates])
    owned = None
    if p.shard is None:
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


def _prepared(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
              sampled_values, remove_accidental_hits, partition_strategy, seed, backend,
              shard_group, subtract_log_q=True) -> tuple:
    """``(ctx, Prepared, subtract_log_q)`` for the TF losses, checked in TF's order."""
    check_argument_forms(labels, inputs, sampled_values)
    ctx = context(weights, biases, labels, inputs, sampled_values, backend=backend)
    subtract_log_q = check_bool("subtract_log_q", subtract_log_q)
    p = prepare(ctx, weights=weights, biases=biases, labels=labels, inputs=inputs,
                num_sampled=num_sampled, num_classes=num_classes, num_true=num_true,
                sampled_values=sampled_values, remove_accidental_hits=remove_accidental_hits,
                partition_strategy=partition_strategy, seed=seed, backend=backend,
                counts_used=subtract_log_q, shard_group=shard_group)
    return ctx, p, subtract_log_q


@public
def compute_sampled_logits(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    subtract_log_q: bool = True, remove_accidental_hits: bool = False,
    partition_strategy: str = "div", name: Optional[str] = None, seed: Optional[Seed] = None,
    *, backend: Optional[str] = None, shard_group: Any = None,
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
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout. With ``shard_group``: this rank's shard of the table
            (one array).
        biases: ``[C]`` floating class biases, or shards laid out as ``weights`` (with
            ``shard_group``: this rank's shard).
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of classes the default sampler draws (>= 1); with
            ``sampled_values`` and ``remove_accidental_hits`` it must equal their number of
            candidates.
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``.
        subtract_log_q: Whether to subtract ``ln Q`` (the log of the expected counts) from the
            logits; with False the counts' values and shapes are not read.
        remove_accidental_hits: Whether to mask (``- FLT_MAX``) the sampled columns equal to one of
            the row's labels.
        partition_strategy: ``"div"`` or ``"mod"``: the layout of a sharded ``weights`` and
            ``biases`` (read with more than one shard or with ``shard_group``).
        name: Accepted and ignored (TF's op name).
        seed: The default sampler's seed, read only when ``sampled_values`` is None: None (fresh
            randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), a
            :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or
            a JAX key), which ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``
            need.
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.
        shard_group: A ``torch.distributed`` process group or a JAX mesh axis name, over which the
            ``num_classes``-row class table is sharded (``weights`` and ``biases`` are this rank's
            shard, and every rank gets the whole result); None: one table.

    Returns:
        ``(logits, labels)``: two arrays ``[B, T+S]`` of the inputs' dtype and backend: the
        logits of the true columns then the sampled ones, and the soft labels (``1/T`` on the
        true columns, 0 on the sampled ones; no gradient).

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; with ``shard_group``, ``weights`` or ``biases`` given as a
            list; ``biases`` None; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; with ``shard_group``: ``seed=None`` without
            ``sampled_values``, a shard that is not this rank's size, or fewer classes than ranks;
            ``num_sampled > num_classes`` for the default sampler; an int seed outside ``[0,
            2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also, where the
            backend reads values on the host (NumPy, CPU tensors): ids outside ``[0, num_classes)``
            and expected counts not finite and > 0; elsewhere the framework reports those checks
            its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up; a torch ``shard_group`` before
            ``torch.distributed.init_process_group``.
    """
    del name
    ctx, p, subtract_log_q = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group, subtract_log_q)
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
def sampled_softmax_loss(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = True, seed: Optional[Seed] = None,
    name: Optional[str] = "sampled_softmax_loss", *, partition_strategy: str = "div",
    backend: Optional[str] = None, shard_group: Any = None,
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
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout. With ``shard_group``: this rank's shard of the table
            (one array).
        biases: ``[C]`` floating class biases, or shards laid out as ``weights`` (with
            ``shard_group``: this rank's shard).
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of classes the default sampler draws (>= 1); with
            ``sampled_values`` and ``remove_accidental_hits`` it must equal their number of
            candidates.
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``.
        remove_accidental_hits: Whether to mask the sampled classes equal to one of the row's
            labels (TF's default, True).
        seed: The default sampler's seed, read only when ``sampled_values`` is None: None (fresh
            randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), a
            :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or
            a JAX key), which ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``
            need.
        name: Accepted and ignored (TF's op name).
        partition_strategy: Keyword only: ``"div"`` (TF 2.x's layout) or ``"mod"``, the layout of a
            sharded ``weights`` and ``biases`` (read with more than one shard or with
            ``shard_group``).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.
        shard_group: A ``torch.distributed`` process group or a JAX mesh axis name, over which the
            ``num_classes``-row class table is sharded (``weights`` and ``biases`` are this rank's
            shard, and every rank gets the whole result); None: one table.

    Returns:
        The loss of each example, ``[B]``, in the inputs' dtype and backend.

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; with ``shard_group``, ``weights`` or ``biases`` given as a
            list; ``biases`` None; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; with ``shard_group``: ``seed=None`` without
            ``sampled_values``, a shard that is not this rank's size, or fewer classes than ranks;
            ``num_sampled > num_classes`` for the default sampler; an int seed outside ``[0,
            2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also, where the
            backend reads values on the host (NumPy, CPU tensors): ids outside ``[0, num_classes)``
            and expected counts not finite and > 0; elsewhere the framework reports those checks
            its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up; a torch ``shard_group`` before
            ``torch.distributed.init_process_group``.
    """
    del name
    ctx, p, _ = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group)
    return _softmax_loss(ctx, p, p.sampled_values, bool(remove_accidental_hits))


@public
def nce_loss(
    weights: ClassTable, biases: ClassTable, labels: Array, inputs: Array, num_sampled: int,
    num_classes: int, num_true: int = 1, sampled_values: Optional[SampledValues] = None,
    remove_accidental_hits: bool = False, name: Optional[str] = "nce_loss", *,
    seed: Optional[Seed] = None, partition_strategy: str = "div", backend: Optional[str] = None,
    shard_group: Any = None,
) -> Array:
    """``tf.nn.nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
    sampled_values=None, remove_accidental_hits=False, name="nce_loss")`` (TF 2.x order),
    ``[B]`` in the inputs' dtype.

    Sigmoid cross entropy ``max(z,0) - z*y + log1p(exp(-|z|))`` summed over the ``T+S`` logits
    of :func:`compute_sampled_logits` (log-Q subtracted), targets ``1/T`` on the true columns
    (TF's choice, not 1). ``seed`` (for the default sampler) and ``partition_strategy`` ("div",
    as TF 2.x) are keyword-only extensions.

    Args:
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout. With ``shard_group``: this rank's shard of the table
            (one array).
        biases: ``[C]`` floating class biases, or shards laid out as ``weights`` (with
            ``shard_group``: this rank's shard).
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of classes the default sampler draws (>= 1); with
            ``sampled_values`` and ``remove_accidental_hits`` it must equal their number of
            candidates.
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``.
        remove_accidental_hits: Whether to mask the sampled classes equal to one of the row's
            labels (TF's default for NCE, False).
        name: Accepted and ignored (TF's op name).
        seed: Keyword only. The default sampler's seed, read only when ``sampled_values`` is None:
            None (fresh randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), a
            :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or
            a JAX key), which ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``
            need.
        partition_strategy: Keyword only: ``"div"`` (TF 2.x's layout) or ``"mod"``, the layout of a
            sharded ``weights`` and ``biases`` (read with more than one shard or with
            ``shard_group``).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.
        shard_group: A ``torch.distributed`` process group or a JAX mesh axis name, over which the
            ``num_classes``-row class table is sharded (``weights`` and ``biases`` are this rank's
            shard, and every rank gets the whole result); None: one table.

    Returns:
        The loss of each example, ``[B]``, in the inputs' dtype and backend.

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; with ``shard_group``, ``weights`` or ``biases`` given as a
            list; ``biases`` None; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; with ``shard_group``: ``seed=None`` without
            ``sampled_values``, a shard that is not this rank's size, or fewer classes than ranks;
            ``num_sampled > num_classes`` for the default sampler; an int seed outside ``[0,
            2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also, where the
            backend reads values on the host (NumPy, CPU tensors): ids outside ``[0, num_classes)``
            and expected counts not finite and > 0; elsewhere the framework reports those checks
            its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up; a torch ``shard_group`` before
            ``torch.distributed.init_process_group``.
    """
    del name
    ctx, p, _ = _prepared(
        weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, partition_strategy, seed, backend, shard_group)
    true_logits, sampled_logits, owned = _logit_parts(
        ctx, p, p.sampled_values, True, bool(remove_accidental_hits))
    if owned is None:
        loss = nce(ctx.xp, true_logits, sampled_logits)
    else:
        loss = sharded.nce_loss(p.shard, true_logits, sampled_logits, *owned)
    return cast(ctx.xp, loss, p.inputs.dtype)


@public
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
        weights: ``[C, D]`` floating class embeddings, or a list of shards of it in the
            ``partition_strategy`` layout.
        biases: ``[C]`` floating class biases, or shards laid out as ``weights``.
        labels: ``[B, T]`` integer true classes, in ``[0, num_classes)``.
        inputs: ``[B, D]`` floating input activations; the result has their dtype.
        num_sampled: The number of first-phase candidates (>= 1, at most ``num_classes``, more than
            ``num_resampled``).
        num_resampled: How many of the best-scoring candidates are kept (>= 0).
        num_classes: The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.
        num_true: The number of true classes per example, ``T = labels.shape[1]`` (>= 1).
        sampled_values: A ``(sampled_candidates [S], true_expected_count [B, T],
            sampled_expected_count [S])`` triple (a tuple or list, such as the
            :class:`~multisampled.CandidateSamples` of a sampler), or None to draw with
            ``learned_unigram_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
            seed=seed)``; an empty ``()``, ``[]`` or ``{}`` also draws it. Given, it needs at least
            ``num_resampled`` candidates.
        resampling_temperature: The temperature ``tau`` of the scores: a real number or a floating
            0-d array, other than 0 and NaN.
        remove_accidental_hits: Whether to mask the kept classes equal to one of the row's labels.
        partition_strategy: ``"div"`` or ``"mod"`` (checked even for one shard, as TF): the layout
            of a sharded ``weights`` and ``biases``.
        name: Accepted and ignored (TF's op name).
        seed: An extension (TF's contrib function has none): the default sampler's seed, read only
            when ``sampled_values`` is None: None (fresh randomness), an int in ``[0, 2**64)``
            (that seed's process-wide stream), a :class:`~multisampled.Generator`, or a key (a 1-D
            integer array of two 32-bit words, or a JAX key), which ``jax.jit``, ``tf.function``
            and ``torch.compile(fullgraph=True)`` need.
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        The loss of each example, ``[B]``, in the inputs' dtype and backend.

    Raises:
        TypeError: An int argument that is not an int (a float, a bool) or a bool argument that is
            not a bool; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, ``biases``
            or the expected counts not floating (floating ``labels`` with integer ``inputs``: named
            as TF 0.x's swapped order); ragged or sparse ``labels``, ``inputs`` or
            ``sampled_values`` members; ``resampling_temperature`` neither a real number nor a
            floating 0-d array; ``biases`` None; arrays of two frameworks, of a type no backend
            knows, or of another framework than ``backend``; ``backend`` not a str; a seed of
            another type, or a seed that is not a key while a compiler traces the call.
        ValueError: ``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not
            fit (``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows not
            of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, an unknown
            ``partition_strategy`` with more than one shard); ``sampled_values`` not a triple (a
            ``ValueError`` that is also a ``TypeError``), with no candidates, or with counts that
            do not broadcast to ``[B, T]`` and ``[S]``; ``resampling_temperature`` 0 or NaN (an
            array: where values are read, as below) or an array that is not 0-d; ``num_sampled >
            num_classes``, ``num_sampled <= num_resampled``, ``num_resampled`` below 0, an unknown
            ``partition_strategy``, fewer than ``num_resampled`` given candidates; an int seed
            outside ``[0, 2**64)`` or a key not of two 32-bit words; an unknown ``backend``. Also,
            where the backend reads values on the host (NumPy, CPU tensors): ids outside ``[0,
            num_classes)`` and expected counts not finite and > 0; elsewhere the framework reports
            those checks its way (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value
            checks on, a call that needs a value check; a :class:`~multisampled.Generator` seed
            whose ``2**32`` calls are used up.
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
