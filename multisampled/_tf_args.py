"""Validation of the TF-named losses' arguments, and the default sampler (SEMANTICS 2.2, 12).

:func:`prepare` turns ``(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
sampled_values, remove_accidental_hits, partition_strategy, seed)`` into a :class:`Prepared`
record: checked arrays, shards, and validated sampled values.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ._arrays import static_dim, static_size
from ._checks import (
    broadcasts_to,
    check_bool,
    check_dense,
    check_floating,
    check_integer_ids,
    check_label_columns,
    check_positive_finite,
    check_positive_int,
    check_rank,
    check_value_range,
    dtype_name,
    is_floating_dtype,
    is_integer_dtype,
    keep_in_range,
    named_array,
)
from ._context import Ctx
from ._math import cast, compute_dtype
from ._partition import check_shards
from ._sharded import check_shard


class SampledValuesError(ValueError, TypeError):
    """``sampled_values`` is not a triple: TF raises ``ValueError``; a ``TypeError`` too."""


SAMPLED_VALUE_NAMES = ("sampled_values[0] (sampled_candidates)",
                       "sampled_values[1] (true_expected_count)",
                       "sampled_values[2] (sampled_expected_count)")


def check_sampled_values_form(sampled_values: Any) -> None:
    """``sampled_values`` is None or a triple of arrays (before the backend is looked up, so the
    error names the argument): ``SampledValuesError`` for anything but a 3-tuple or 3-list,
    ``TypeError`` naming the member for None, dicts, strings and ragged or sparse members."""
    if sampled_values is None:
        return
    is_sequence = isinstance(sampled_values, (tuple, list))
    if not is_sequence or len(sampled_values) != 3:
        length = f" of length {len(sampled_values)}" if is_sequence else ""
        raise SampledValuesError(
            "sampled_values must be a tuple (sampled_candidates, true_expected_count, "
            f"sampled_expected_count), got {type(sampled_values).__name__}{length}"
        )
    for name, v in zip(SAMPLED_VALUE_NAMES, sampled_values):
        if v is None or isinstance(v, (dict, str, bytes)):
            raise TypeError(f"{name} must be an array, got {type(v).__name__}")
        check_dense(name, v)


def check_argument_forms(labels: Any, inputs: Any, sampled_values: Any) -> None:
    """The checks of a TF-named loss that come before the backend is looked up: dense
    ``labels`` and ``inputs``, and the form of ``sampled_values``."""
    check_dense("labels", labels)
    check_dense("inputs", inputs)
    check_sampled_values_form(sampled_values)


@dataclasses.dataclass
class Prepared:
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
    shard: Any = None  # a multisampled._sharded.Shard with shard_group=, else None
    num_classes: int = 0  # labels and candidates lie in [0, num_classes)
    gathered: bool = False  # weights/biases are the rows of row_ids(labels, candidates)


def _check_not_swapped(ctx: Ctx, labels: Any, inputs: Any) -> None:
    """TF 0.x took ``inputs`` before ``labels``; catch that order instead of computing garbage."""
    xp = ctx.xp
    if is_integer_dtype(xp, inputs.dtype) and is_floating_dtype(xp, labels.dtype):
        raise TypeError(
            f"labels has floating dtype {dtype_name(labels.dtype)} and inputs has integer dtype "
            f"{dtype_name(inputs.dtype)}: the arguments look swapped (TF 0.x order "
            f"inputs, labels); since TF 1.0 the order is labels, inputs"
        )


def check_inputs_and_labels(ctx: Ctx, labels: Any, inputs: Any, num_true: int):
    labels = named_array(ctx, "labels", labels)
    inputs = named_array(ctx, "inputs", inputs)
    _check_not_swapped(ctx, labels, inputs)
    check_floating(ctx, "inputs", inputs)
    check_rank("inputs", inputs, 2, "[batch_size, dim]")
    check_integer_ids(ctx, "labels", labels)
    check_label_columns("labels", labels, num_true)
    batch, label_rows = static_dim(inputs, 0), static_dim(labels, 0)
    if batch is not None and label_rows is not None and batch != label_rows:
        raise ValueError(
            f"labels must have shape [batch_size of inputs, num_true] = {[batch, num_true]}, "
            f"got shape {list(labels.shape)}"
        )
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


def _check_gathered_form(ctx, weights, biases, inputs, sampled_values, shard_group):
    """``(weight_shards, rows, bias_shards, rows)`` of ``gathered=True``: one array each."""
    if shard_group is not None:
        raise ValueError("gathered=True cannot be combined with shard_group: the rows of a "
                         "sharded table are gathered on the rank that holds them")
    if sampled_values is None:
        raise ValueError(
            "gathered=True needs sampled_values: weights and biases are then the rows of "
            "row_ids(labels, sampled_values), so the candidates must be drawn before the call"
        )
    tables = []
    for name, value, rank, form in (("weights", weights, 2, "[B*T + S, dim]"),
                                    ("biases", biases, 1, "[B*T + S]")):
        if value is None or isinstance(value, (list, tuple)):
            got = "None" if value is None else f"a {type(value).__name__}"
            raise TypeError(f"{name} must be one array of gathered rows with gathered=True, "
                            f"got {got}")
        arr = named_array(ctx, name, value)
        check_floating(ctx, name, arr)
        check_rank(name, arr, rank, form + " (the rows of row_ids(labels, sampled_values))")
        tables.append(arr)
    dim = int(inputs.shape[1])
    if int(tables[0].shape[1]) != dim:
        raise ValueError(
            f"weights must have shape [B*T + S, dim] with dim = inputs.shape[1] = {dim} with "
            f"gathered=True, got shape {list(tables[0].shape)}"
        )
    return [tables[0]], static_dim(tables[0], 0), [tables[1]], static_dim(tables[1], 0)


def check_rows(shards: tuple, labels: Any, candidates: Any) -> None:
    """``gathered=True``: ``weights``/``biases`` have one row per id of ``row_ids(labels,
    candidates)``, ``B*T + S``, where those sizes are known (a traced batch size is checked by
    the framework's shapes)."""
    batch = static_dim(labels, 0)
    if batch is None:
        return
    size = batch * int(labels.shape[1])
    expected = size + int(candidates.shape[0])
    for name, rows, form in (("weights", shards[1], "[B*T + S, dim]"),
                             ("biases", shards[3], "[B*T + S]")):
        if rows is not None and rows != expected:
            raise ValueError(
                f"{name} must have {form} = {expected} rows with gathered=True (the rows of "
                f"row_ids(labels, sampled_values): {size} labels, then "
                f"{int(candidates.shape[0])} candidates), got {rows}"
            )


def check_sampled_values(
    ctx: Ctx,
    sampled_values: Any,
    *,
    batch: Optional[int],
    num_true: int,
    num_classes: int,
    cdtype: Any,
    expected_len: Optional[int] = None,
    min_len: Optional[int] = None,
    length_reason: str = "",
    check_values: bool = True,
    counts_used: bool = True,
) -> tuple:
    """Validate a ``(sampled_candidates, true_expected_count, sampled_expected_count)`` triple
    and return it stop-gradiented, candidates in the index dtype, counts in ``cdtype``.

    ``check_values=False`` skips the value checks (ids in range, counts finite and > 0) for
    triples this library's own samplers produced; shapes and dtypes are always checked.
    ``batch`` None: a batch size not known while tracing. ``counts_used=False`` (log Q not
    subtracted): the counts' values and shapes do not matter, only their dtypes."""
    check_sampled_values_form(sampled_values)
    names = SAMPLED_VALUE_NAMES
    candidates, true_count, sampled_count = (
        named_array(ctx, name, v) for name, v in zip(names, sampled_values))
    check_integer_ids(ctx, names[0], candidates)
    check_rank(names[0], candidates, 1, "[num_sampled]")
    num = int(candidates.shape[0])
    if num == 0:
        raise ValueError(f"{names[0]} must not be empty, got shape [0]")
    if expected_len is not None and num != expected_len:
        raise ValueError(
            f"num_sampled={expected_len} but {names[0]} has {num} entries{length_reason}"
        )
    if min_len is not None and num < min_len:
        raise ValueError(
            f"{names[0]} has {num} entries but num_resampled={min_len} of them are to be kept"
        )
    check_floating(ctx, names[1], true_count)
    check_floating(ctx, names[2], sampled_count)
    true_shape = tuple(1 if static_size(n) is None else static_size(n)
                       for n in true_count.shape)
    # a batch not known while tracing: any batch of the counts (the framework's shapes check
    # it against the inputs' when the function runs)
    traced_batch = true_shape[0] if len(true_shape) == 2 else 1
    target = (traced_batch if batch is None else batch, num_true)
    if counts_used and not broadcasts_to(true_shape, target):
        raise ValueError(
            f"{names[1]} must broadcast to [batch_size, num_true] = {list(target)}, got shape "
            f"{list(true_count.shape)}"
        )
    if counts_used and not broadcasts_to(sampled_count.shape, (num,)):
        raise ValueError(
            f"{names[2]} must broadcast to [num_sampled] = {[num]}, got shape "
            f"{list(sampled_count.shape)}"
        )
    if check_values:
        check_value_range(ctx, names[0], candidates, 0, num_classes)
        if counts_used:
            check_positive_finite(ctx, names[1], true_count)
            check_positive_finite(ctx, names[2], sampled_count)
        candidates = keep_in_range(ctx, cast(ctx.xp, candidates, ctx.index_dtype), 0,
                                   num_classes)
    return (
        cast(ctx.xp, ctx.stop_gradient(candidates), ctx.index_dtype),
        cast(ctx.xp, ctx.stop_gradient(true_count), cdtype),
        cast(ctx.xp, ctx.stop_gradient(sampled_count), cdtype),
    )


def prepare(
    ctx: Ctx,
    *,
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: Any,
    num_classes: Any,
    num_true: Any,
    sampled_values: Any,
    remove_accidental_hits: Any,
    partition_strategy: Any,
    seed: Any,
    default_sampler: str = "log_uniform",
    backend: Optional[str] = None,
    check_length: bool = True,
    min_len: Optional[int] = None,
    counts_used: bool = True,
    shard_group: Any = None,
    gathered: Any = False,
) -> Prepared:
    """Everything a TF-named loss checks before its math, in TF's order (SEMANTICS 12).

    With ``shard_group``, ``weights``/``biases`` are this rank's shard of a ``num_classes``-row
    table (:mod:`multisampled._sharded`), and every rank must draw the same candidates. With
    ``gathered``, they are the rows of ``row_ids(labels, sampled_values)`` (:func:`check_rows`)."""
    num_sampled = check_positive_int("num_sampled", num_sampled)
    num_classes = check_positive_int("num_classes", num_classes)
    num_true = check_positive_int("num_true", num_true)
    remove_accidental_hits = check_bool("remove_accidental_hits", remove_accidental_hits)
    # seed is only forwarded to the default sampler, which validates it
    gathered = check_bool("gathered", gathered)
    labels, inputs = check_inputs_and_labels(ctx, labels, inputs, num_true)
    shard = None
    if gathered:
        shards = _check_gathered_form(ctx, weights, biases, inputs, sampled_values, shard_group)
    elif shard_group is None:
        shards = _check_params(ctx, weights, biases, inputs, num_classes, partition_strategy)
    else:
        shard, weights, biases = check_shard(ctx, shard_group, weights, biases, num_classes,
                                             partition_strategy, int(inputs.shape[1]))
        shards = ([weights], num_classes, [biases], num_classes)
        if sampled_values is None and seed is None:
            raise ValueError(
                "seed=None with shard_group: every rank must draw the same candidates; pass "
                "seed= (a key, or the same int on every rank) or sampled_values="
            )
    check_value_range(ctx, "labels", labels, 0, num_classes)
    labels = keep_in_range(ctx, cast(ctx.xp, labels, ctx.index_dtype), 0, num_classes)
    cdtype = compute_dtype(ctx.xp, inputs.dtype)
    from_sampler = sampled_values is None
    if from_sampler:
        sampled_values = default_samples(
            ctx, default_sampler, labels, num_true, num_sampled, num_classes, seed, backend
        )
    # TF scatters the hits into a [B, num_sampled] matrix and fails on a length mismatch;
    # without hit removal it never reads num_sampled once sampled_values is given.
    expected_len = num_sampled if check_length and remove_accidental_hits else None
    sampled_values = check_sampled_values(
        ctx,
        sampled_values,
        batch=static_dim(inputs, 0),
        num_true=num_true,
        num_classes=num_classes,
        cdtype=cdtype,
        expected_len=expected_len,
        min_len=min_len,
        length_reason=" (they must agree when remove_accidental_hits=True)",
        check_values=not from_sampler,
        counts_used=counts_used,
    )
    if gathered:
        check_rows(shards, labels, sampled_values[0])
    return Prepared(
        inputs, labels, *shards, partition_strategy, sampled_values, num_true, num_sampled, shard,
        num_classes, gathered,
    )


def default_samples(ctx, which, labels, num_true, num_sampled, num_classes, seed, backend):
    """The default first-phase sampler: unique draws over ``[0, num_classes)``."""
    if num_sampled > num_classes:
        raise ValueError(
            f"num_sampled={num_sampled} cannot be greater than num_classes={num_classes}: the "
            f"default sampler draws num_sampled distinct classes (unique=True)"
        )
    from . import samplers  # the samplers module imports the context; keep it lazy

    sampler = (
        samplers.learned_unigram_candidate_sampler
        if which == "learned_unigram"
        else samplers.log_uniform_candidate_sampler
    )
    return tuple(
        sampler(labels, num_true, num_sampled, True, num_classes, seed=seed, backend=backend)
    )
