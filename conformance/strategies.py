"""Hypothesis strategies for every input the multisampled APIs take.

Structure (sizes, which row holds a hit, duplicated labels, shard layouts, dtypes) is drawn by
hypothesis so it shrinks to a small counterexample; the float payloads come from a NumPy
generator seeded by a drawn integer, which keeps example generation cheap.

Every value is produced on the host as NumPy (float values already rounded to the target
dtype, so a float64 reference sees exactly what the backend sees). bfloat16 payloads are held
as float32 arrays whose values are exactly representable in bfloat16.

The workhorse is :func:`sampled_softmax_problem`; :func:`paddle_problem` is the Paddle-style
counterpart (full logits, per-row customized samples). This is the module backend authors
import: it also re-exports the dtype, size and shard building blocks (``_primitives``) and the
fixed examples (``_examples``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from hypothesis import assume, strategies as st

from ._examples import example_paddle_problem, example_problem
from ._primitives import (
    FLOAT_DTYPES,
    batch_sizes,
    dims,
    div_shard_sizes,
    float_dtypes,
    host_dtype,
    mod_shard_sizes,
    num_classes,
    num_trues,
    partition_strategies,
    round_to_dtype,
    seeds,
    shard_weights,
)

__all__ = [
    # the problem strategies, defined here
    "accidental_hit_case",
    "paddle_problem",
    "rank_problem",
    "sampled_softmax_problem",
    # re-exported from _primitives: dtypes and rounding, sizes and seeds, shard layouts
    "FLOAT_DTYPES",
    "batch_sizes",
    "dims",
    "div_shard_sizes",
    "float_dtypes",
    "host_dtype",
    "mod_shard_sizes",
    "num_classes",
    "num_trues",
    "partition_strategies",
    "round_to_dtype",
    "seeds",
    "shard_weights",
    # re-exported from _examples: the fixed examples
    "example_paddle_problem",
    "example_problem",
]


# ---------------------------------------------------------------------------------------------
# the workhorse


@st.composite
def sampled_softmax_problem(
    draw: st.DrawFn,
    *,
    dtype: Optional[str] = "float32",
    dtypes: Sequence[str] = ("float32",),
    num_true: Optional[int] = None,
    max_num_true: int = 5,
    max_batch: int = 4,
    max_dim: int = 4,
    max_classes: int = 12,
    min_classes: int = 1,
    max_sampled: int = 8,
    unique: Optional[bool] = None,
    force_hit: Optional[bool] = None,
    duplicate_labels: Optional[bool] = None,
    shards: Optional[str] = "none",
    shard_biases: Optional[bool] = False,
    extreme: Optional[bool] = False,
) -> dict:
    """A complete TF-style sampled-softmax input with explicit ``sampled_values``.

    Returns a dict of NumPy arrays and ints:

    - ``weights``: ``[C, D]`` array, or a list of shards laid out for ``partition_strategy``;
      ``full_weights`` is always the ``[C, D]`` table in global id order.
    - ``biases`` (array or shard list, see ``shard_biases``), ``full_biases`` ``[C]``.
    - ``labels`` ``[B, T]`` int64, ``inputs`` ``[B, D]``.
    - ``sampled_candidates`` ``[S]`` int64, ``true_expected_count`` ``[B, T]``,
      ``sampled_expected_count`` ``[S]`` (positive, in ``dtype``).
    - ``num_sampled`` (= S), ``num_classes`` (= C), ``num_true`` (= T),
      ``partition_strategy`` ("div" or "mod"; the layout of the shards), ``num_shards``,
      ``dtype`` (name), ``unique`` (whether the candidates are distinct), ``hit_rows``
      (rows in which some sampled candidate equals one of the row's labels).

    Arguments fix or free each structural choice (None = let hypothesis choose):
    ``dtype`` (None draws from ``dtypes``), ``num_true``, ``unique`` (distinct candidates;
    False forces at least one repeated candidate when S > 1), ``force_hit`` (True plants a
    sampled candidate equal to a true label of one row; with non-unique candidates it also
    plants a second copy so "last duplicate only" matters), ``duplicate_labels`` (a row whose
    label appears twice; needs T >= 2), ``shards`` ("none", "mod", "div", "any"/None for any
    of them, or a tuple of those to choose from), ``shard_biases`` (biases sharded like the
    weights; None lets hypothesis choose), ``extreme`` (logits of magnitude up to ~1e3;
    float32/float64 only).

    Args:
        dtype: The payloads' dtype name; None draws one of ``dtypes``.
        dtypes: The dtype names ``dtype=None`` draws from.
        num_true: ``T``; None draws ``1..max_num_true``.
        max_num_true: The largest drawn ``T``.
        max_batch: The largest batch ``B``.
        max_dim: The largest width ``D``.
        max_classes: The largest ``C``.
        min_classes: The smallest ``C``.
        max_sampled: The largest ``S``.
        unique: Whether the candidates are distinct (None: drawn).
        force_hit: Whether a candidate equals a label of some row (None: drawn).
        duplicate_labels: Whether a row repeats a label (None: drawn where ``T >= 2``).
        shards: ``"none"``, ``"div"``, ``"mod"``, ``"any"``/None, or a tuple of them.
        shard_biases: Whether the biases are sharded like the weights (None: drawn).
        extreme: Whether logits may be large (float32 and float64 only).

    Returns:
        A strategy of the problem dicts described above.
    """
    dtype, T, B, D, unique, C, S = _draw_sizes(
        draw, dtype, dtypes, num_true, max_num_true, max_batch, max_dim, unique, min_classes,
        max_classes, max_sampled)
    rng = np.random.default_rng(draw(seeds()))
    labels = _draw_labels(draw, rng, B, T, C, duplicate_labels)
    sampled = _draw_candidates(draw, rng, labels, C, S, unique, force_hit)
    full_w, full_b, inputs, sampled_ec, true_ec = _draw_payloads(
        draw, rng, dtype, extreme, sampled, B, T, C, D)
    weights, biases, partition_strategy, num_shards = _draw_shards(
        draw, full_w, full_b, shards, shard_biases)
    hit_rows = sorted(
        {i for i in range(B) for t in range(T) if labels[i, t] in set(sampled.tolist())}
    )
    return dict(
        weights=weights,
        biases=biases,
        full_weights=full_w,
        full_biases=full_b,
        labels=labels,
        inputs=inputs,
        sampled_candidates=sampled,
        true_expected_count=true_ec,
        sampled_expected_count=sampled_ec,
        num_sampled=S,
        num_classes=C,
        num_true=T,
        partition_strategy=partition_strategy,
        num_shards=num_shards,
        dtype=dtype,
        unique=bool(unique),
        hit_rows=hit_rows,
    )


def _draw_sizes(draw: st.DrawFn, dtype: Optional[str], dtypes: Sequence[str],
                num_true: Optional[int], max_num_true: int, max_batch: int, max_dim: int,
                unique: Optional[bool], min_classes: int, max_classes: int,
                max_sampled: int) -> tuple:
    """The dtype and ``(T, B, D)``, whether the candidates are distinct, ``C`` and ``S``."""
    if dtype is None:
        dtype = draw(float_dtypes(dtypes))
    T = num_true if num_true is not None else draw(st.integers(1, max_num_true))
    B = draw(batch_sizes(max_batch))
    D = draw(dims(max_dim))
    if unique is None:
        unique = draw(st.booleans())
    C = draw(num_classes(max(min_classes, 1), max_classes))
    if unique:
        S = draw(st.integers(1, min(C, max_sampled)))  # includes the edge S == C
    else:
        S = draw(st.integers(1, max_sampled))
    return dtype, T, B, D, unique, C, S


def _draw_labels(draw: st.DrawFn, rng: np.random.Generator, B: int, T: int, C: int,
                 duplicate_labels: Optional[bool]) -> np.ndarray:
    """``[B, T]`` labels, one row repeating its first label when ``duplicate_labels``."""
    labels = rng.integers(0, C, size=(B, T), dtype=np.int64)
    if duplicate_labels is None:
        duplicate_labels = T >= 2 and draw(st.booleans())
    if duplicate_labels and T >= 2:
        row = draw(st.integers(0, B - 1))
        labels[row, T - 1] = labels[row, 0]
    return labels


def _draw_candidates(draw: st.DrawFn, rng: np.random.Generator, labels: np.ndarray, C: int,
                     S: int, unique: bool, force_hit: Optional[bool]) -> np.ndarray:
    """``S`` candidates: distinct when ``unique``, else with a repeat; ``force_hit`` plants a
    row's label among them (twice when they may repeat)."""
    B, T = labels.shape
    if unique:
        sampled = rng.permutation(C)[:S].astype(np.int64)
    else:
        sampled = rng.integers(0, C, size=S, dtype=np.int64)
        if S > 1 and len(set(sampled.tolist())) == S:
            sampled[-1] = sampled[0]  # at least one repeated candidate
    if force_hit is None:
        force_hit = draw(st.booleans())
    if force_hit:
        row = draw(st.integers(0, B - 1))
        col = draw(st.integers(0, T - 1))
        target = int(labels[row, col])
        pos = draw(st.integers(0, S - 1))
        if unique:
            where = np.flatnonzero(sampled == target)
            if where.size == 0:
                sampled[pos] = target
        else:
            sampled[pos] = target
            if S > 1:
                other = draw(st.integers(0, S - 1).filter(lambda j: j != pos))
                sampled[other] = target
    if unique:
        assert len(set(sampled.tolist())) == S
    return sampled


def _draw_payloads(draw: st.DrawFn, rng: np.random.Generator, dtype: str,
                   extreme: Optional[bool], sampled: np.ndarray, B: int, T: int, C: int,
                   D: int) -> tuple:
    """``(full_w, full_b, inputs, sampled_ec, true_ec)`` rounded to ``dtype``; ``extreme``
    draws a scale of the logits (float32 and float64 only)."""
    scale = 1.0
    if extreme and dtype in ("float32", "float64"):
        scale = draw(st.sampled_from([1.0, 30.0, 300.0]))
    full_w = round_to_dtype(rng.standard_normal((C, D)) * scale, dtype)
    full_b = round_to_dtype(rng.standard_normal(C) * scale, dtype)
    inputs = round_to_dtype(rng.standard_normal((B, D)) * (scale if scale == 1.0 else 3.0), dtype)
    class_ec = rng.uniform(0.05, 2.0, size=C)  # one expected count per class, as a sampler gives
    sampled_ec = round_to_dtype(class_ec[sampled], dtype)
    true_ec = round_to_dtype(rng.uniform(0.05, 2.0, size=(B, T)), dtype)
    return full_w, full_b, inputs, sampled_ec, true_ec


def _draw_shards(draw: st.DrawFn, full_w: np.ndarray, full_b: np.ndarray,
                 shards: Optional[Any], shard_biases: Optional[bool]) -> tuple:
    """``(weights, biases, partition_strategy, num_shards)``: the tables as laid out by the
    drawn ``shards`` choice (a single shard list when ``C`` is 1)."""
    C = full_w.shape[0]
    if shards is None or shards == "any":
        shards = draw(st.sampled_from(["none", "div", "mod"]))
    elif isinstance(shards, (list, tuple)):
        shards = draw(st.sampled_from(list(shards)))
    num_shards = 1
    weights: object = full_w
    biases: object = full_b
    partition_strategy = "div"
    if shards in ("div", "mod"):
        partition_strategy = shards
        if C >= 2:
            num_shards = draw(st.integers(2, min(C, 4)))
            weights = shard_weights(full_w, num_shards, shards)
            if shard_biases is None:
                shard_biases = draw(st.booleans())
            if shard_biases:
                biases = shard_weights(full_b, num_shards, shards)
        else:
            weights = [full_w]
    return weights, biases, partition_strategy, num_shards


@st.composite
def rank_problem(draw: st.DrawFn, *, dtype: str = "float32", **kwargs: Any) -> dict:
    """A :func:`sampled_softmax_problem` with at least two distinct candidates, plus
    ``num_resampled`` (1..S-1) and ``resampling_temperature``.

    Candidates are distinct so the top-k selection has no exact ties; draws whose k-th and
    (k+1)-th scores are nearly tied are rejected, since float32 rounding could then pick a
    different (equally valid) subset than the float64 reference.

    Args:
        dtype: The payloads' dtype name.
        **kwargs: :func:`sampled_softmax_problem`'s arguments (``unique`` defaults to True
            and ``min_classes`` to 2).

    Returns:
        A strategy of problem dicts with ``num_resampled`` and ``resampling_temperature``.
    """
    kwargs.setdefault("unique", True)
    kwargs.setdefault("min_classes", 2)
    p = draw(sampled_softmax_problem(dtype=dtype, **kwargs))
    S = p["num_sampled"]
    assume(S >= 2)
    p["num_resampled"] = draw(st.integers(1, S - 1))
    p["resampling_temperature"] = draw(st.sampled_from([1.0, 0.5, 2.0]))
    scores = _rank_scores(p)
    order = np.sort(scores)[::-1]
    k = p["num_resampled"]
    assume(order[k - 1] - order[k] > 1e-3 * (1.0 + abs(order[k - 1])))
    return p


def _rank_scores(p: dict) -> np.ndarray:
    """TAPAS resampling scores (SEMANTICS 7 step 2), only to reject near-ties."""
    w = p["full_weights"].astype(np.float64)[p["sampled_candidates"]]
    b = p["full_biases"].astype(np.float64)[p["sampled_candidates"]]
    x = p["inputs"].astype(np.float64) / p["resampling_temperature"]
    z = w @ x.T
    m = z.max(axis=1, keepdims=True)
    return (m[:, 0] + np.log(np.exp(z - m).sum(axis=1))) + b / p["resampling_temperature"]


# ---------------------------------------------------------------------------------------------
# accidental hits alone


@st.composite
def accidental_hit_case(draw: st.DrawFn, *, max_batch: int = 5, max_num_true: int = 5,
                        max_sampled: int = 8, max_classes: int = 10) -> dict:
    """``true_classes [B, T]`` int64 and ``sampled_candidates [S]`` int64 with forced hits,
    repeated candidates and repeated labels in a row.

    Args:
        max_batch: The largest ``B``.
        max_num_true: The largest ``T``.
        max_sampled: The largest ``S``.
        max_classes: The largest number of classes ``C``.

    Returns:
        A strategy of dicts with ``true_classes``, ``sampled_candidates``, ``num_true`` and
        ``num_classes``.
    """
    C = draw(st.integers(1, max_classes))
    B = draw(st.integers(1, max_batch))
    T = draw(st.integers(1, max_num_true))
    S = draw(st.integers(1, max_sampled))
    true_classes = np.array(
        draw(st.lists(st.lists(st.integers(0, C - 1), min_size=T, max_size=T),
                      min_size=B, max_size=B)),
        dtype=np.int64,
    ).reshape(B, T)
    pool = st.one_of(st.sampled_from(sorted(set(true_classes.ravel().tolist()))),
                     st.integers(0, C - 1))
    sampled = np.array(draw(st.lists(pool, min_size=S, max_size=S)), dtype=np.int64)
    return dict(true_classes=true_classes, sampled_candidates=sampled, num_true=T,
                num_classes=C)


# ---------------------------------------------------------------------------------------------
# Paddle


@st.composite
def paddle_problem(
    draw: st.DrawFn,
    *,
    dtype: Optional[str] = "float32",
    dtypes: Sequence[str] = ("float32",),
    num_true: Optional[int] = 1,
    max_num_true: int = 3,
    max_batch: int = 4,
    max_classes: int = 12,
    max_samples: int = 6,
    force_hit: Optional[bool] = None,
    extreme: Optional[bool] = None,
    per_row: Optional[bool] = None,
) -> dict:
    """Inputs of ``sampled_softmax_with_cross_entropy`` with customized samples.

    Returns ``logits [N, K]``, ``label [N, T]`` int64, ``num_samples`` (S),
    ``customized_samples [N, T+S]`` int64 (first T columns are the labels; the S negatives
    are distinct within a row and differ from row to row when ``per_row``),
    ``customized_probabilities [N, T+S]`` (positive, in ``dtype``), ``num_true`` (None draws
    1..``max_num_true``: Paddle's own layer fails for T > 1, multisampled gives every true
    column ``1/T``), ``dtype``,
    ``num_classes`` (K). ``force_hit`` plants one or more negatives equal to the row's label
    (Paddle masks every matching column). ``extreme`` spreads logits over more than 64 so
    Paddle's -64 clip of the shifted logits matters (float32/float64 only).

    Args:
        dtype: The payloads' dtype name; None draws one of ``dtypes``.
        dtypes: The dtype names ``dtype=None`` draws from.
        num_true: ``T``; None draws ``1..max_num_true``.
        max_num_true: The largest drawn ``T``.
        max_batch: The largest ``N``.
        max_classes: The largest ``K`` (at least 2 are drawn).
        max_samples: The largest ``S`` (at most ``K``).
        force_hit: Whether some negatives equal the row's label (None: drawn).
        extreme: Whether the logits spread beyond Paddle's clip (None: drawn).
        per_row: Whether each row has its own negatives (None: drawn).

    Returns:
        A strategy of the dicts described above.
    """
    if dtype is None:
        dtype = draw(float_dtypes(dtypes))
    T = num_true if num_true is not None else draw(st.integers(1, max_num_true))
    N = draw(st.integers(1, max_batch))
    K = draw(st.integers(2, max_classes))
    S = draw(st.integers(1, min(max_samples, K)))
    if per_row is None:
        per_row = draw(st.booleans())
    rng = np.random.default_rng(draw(seeds()))
    label = rng.integers(0, K, size=(N, T), dtype=np.int64)
    shared = rng.permutation(K)[:S]
    negatives = np.stack([rng.permutation(K)[:S] if per_row else shared for _ in range(N)])
    if force_hit is None:
        force_hit = draw(st.booleans())
    if force_hit:
        row = draw(st.integers(0, N - 1))
        cols = draw(st.lists(st.integers(0, S - 1), min_size=1, max_size=S, unique=True))
        negatives[row, cols] = label[row, draw(st.integers(0, T - 1))]
    samples = np.concatenate([label, negatives.astype(np.int64)], axis=1)
    if extreme is None:
        extreme = draw(st.booleans())
    scale = 40.0 if (extreme and dtype in ("float32", "float64")) else 2.0
    logits = round_to_dtype(rng.standard_normal((N, K)) * scale, dtype)
    probabilities = round_to_dtype(rng.uniform(0.02, 1.0, size=(N, T + S)), dtype)
    return dict(
        logits=logits,
        label=label,
        num_samples=S,
        num_true=T,
        customized_samples=samples,
        customized_probabilities=probabilities,
        dtype=dtype,
        num_classes=K,
    )
