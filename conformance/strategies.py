"""Hypothesis strategies for every input the multisampled APIs take.

Structure (sizes, which row holds a hit, duplicated labels, shard layouts, dtypes) is drawn by
hypothesis so it shrinks to a small counterexample; the float payloads come from a NumPy
generator seeded by a drawn integer, which keeps example generation cheap.

Every value is produced on the host as NumPy (float values already rounded to the target
dtype, so a float64 reference sees exactly what the backend sees). bfloat16 payloads are held
as float32 arrays whose values are exactly representable in bfloat16.

The workhorse is :func:`sampled_softmax_problem`; :func:`paddle_problem` is the Paddle-style
counterpart (full logits, per-row customized samples).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from hypothesis import assume, strategies as st

__all__ = [
    "FLOAT_DTYPES",
    "accidental_hit_case",
    "batch_sizes",
    "dims",
    "div_shard_sizes",
    "example_paddle_problem",
    "example_problem",
    "float_dtypes",
    "host_dtype",
    "mod_shard_sizes",
    "num_classes",
    "num_trues",
    "paddle_problem",
    "partition_strategies",
    "rank_problem",
    "round_to_dtype",
    "sampled_softmax_problem",
    "seeds",
    "shard_weights",
]

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------------------------------------
# dtypes and rounding


def host_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype a payload of ``dtype`` is held in on the host (bfloat16 -> float32).

    Args:
        dtype: A floating dtype name (one of :data:`FLOAT_DTYPES`).

    Returns:
        ``float32`` for ``"bfloat16"``, else the NumPy dtype of that name.

    Raises:
        TypeError: A name NumPy does not know.
    """
    if dtype == "bfloat16":
        return np.dtype(np.float32)
    return np.dtype(dtype)


def round_to_dtype(x: Any, dtype: str) -> np.ndarray:
    """``x`` rounded (nearest, ties to even) to ``dtype``, held in :func:`host_dtype`.

    Args:
        x: Host data (a NumPy array, a list, a scalar).
        dtype: A floating dtype name (one of :data:`FLOAT_DTYPES`).

    Returns:
        The rounded values, bfloat16 ones as float32 exact in bfloat16.
    """
    x = np.asarray(x, dtype=np.float64)
    if dtype != "bfloat16":
        return x.astype(dtype)
    f32 = x.astype(np.float32)
    bits = f32.view(np.uint32).astype(np.uint64)
    # round to nearest even on the 16 dropped bits; NaN/inf are not produced by the strategies
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def float_dtypes(supported: Sequence[str] = FLOAT_DTYPES) -> st.SearchStrategy[str]:
    """One of the floating dtypes in ``supported`` (names), float32 first so it shrinks there.

    Args:
        supported: The dtype names to choose from.

    Returns:
        A strategy of dtype names.
    """
    order = [d for d in ("float32", "float64", "float16", "bfloat16") if d in supported]
    return st.sampled_from(order)


# ---------------------------------------------------------------------------------------------
# sizes


def batch_sizes(max_value: int = 4) -> st.SearchStrategy[int]:
    """Batch sizes ``1..max_value``.

    Args:
        max_value: The largest size.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def dims(max_value: int = 4) -> st.SearchStrategy[int]:
    """Embedding widths ``1..max_value``.

    Args:
        max_value: The largest width.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def num_classes(min_value: int = 1, max_value: int = 12) -> st.SearchStrategy[int]:
    """Class counts ``min_value..max_value``.

    Args:
        min_value: The smallest count.
        max_value: The largest count.

    Returns:
        A strategy of ints.
    """
    return st.integers(min_value, max_value)


def num_trues(max_value: int = 5) -> st.SearchStrategy[int]:
    """Labels per example, ``1..max_value``.

    Args:
        max_value: The largest count.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def seeds() -> st.SearchStrategy[int]:
    """Seeds of the NumPy generator that fills a problem's payloads.

    Returns:
        A strategy of ints in ``[0, 2**32)``.
    """
    return st.integers(0, 2**32 - 1)


def partition_strategies() -> st.SearchStrategy[str]:
    """The two shard layouts.

    Returns:
        A strategy of ``"div"`` and ``"mod"``.
    """
    return st.sampled_from(["div", "mod"])


# ---------------------------------------------------------------------------------------------
# sharding (SEMANTICS 6)


def mod_shard_sizes(total: int, num_shards: int) -> list[int]:
    """Rows of each shard under "mod": shard p holds ids p, p+P, p+2P, ...

    Args:
        total: The rows of the whole table.
        num_shards: The number of shards ``P``.

    Returns:
        The number of rows of each shard.
    """
    return [len(range(p, total, num_shards)) for p in range(num_shards)]


def div_shard_sizes(total: int, num_shards: int) -> list[int]:
    """Rows of each shard under "div": the first ``total % P`` shards hold one row more.

    Args:
        total: The rows of the whole table.
        num_shards: The number of shards ``P``.

    Returns:
        The number of rows of each shard.
    """
    q, r = divmod(total, num_shards)
    return [q + 1 if p < r else q for p in range(num_shards)]


def shard_weights(full: np.ndarray, num_shards: int, partition_strategy: str) -> list[np.ndarray]:
    """Split a ``[C, ...]`` table into the shard list whose lookup under ``partition_strategy``
    reproduces ``full`` (ids are global row numbers of ``full``).

    Args:
        full: The whole table, ``[C, ...]``.
        num_shards: The number of shards.
        partition_strategy: ``"div"`` or ``"mod"``.

    Returns:
        The shards, copies of ``full``'s rows.

    Raises:
        ValueError: Another ``partition_strategy``.
    """
    total = full.shape[0]
    if partition_strategy == "mod":
        return [full[p::num_shards].copy() for p in range(num_shards)]
    if partition_strategy == "div":
        sizes = div_shard_sizes(total, num_shards)
        bounds = np.cumsum([0] + sizes)
        return [full[bounds[p] : bounds[p + 1]].copy() for p in range(num_shards)]
    raise ValueError(f"partition_strategy must be 'div' or 'mod', got {partition_strategy!r}")


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
    rng = np.random.default_rng(draw(seeds()))

    # labels
    labels = rng.integers(0, C, size=(B, T), dtype=np.int64)
    if duplicate_labels is None:
        duplicate_labels = T >= 2 and draw(st.booleans())
    if duplicate_labels and T >= 2:
        row = draw(st.integers(0, B - 1))
        labels[row, T - 1] = labels[row, 0]

    # candidates
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

    # payloads
    scale = 1.0
    if extreme and dtype in ("float32", "float64"):
        scale = draw(st.sampled_from([1.0, 30.0, 300.0]))
    full_w = round_to_dtype(rng.standard_normal((C, D)) * scale, dtype)
    full_b = round_to_dtype(rng.standard_normal(C) * scale, dtype)
    inputs = round_to_dtype(rng.standard_normal((B, D)) * (scale if scale == 1.0 else 3.0), dtype)
    class_ec = rng.uniform(0.05, 2.0, size=C)  # one expected count per class, as a sampler gives
    sampled_ec = round_to_dtype(class_ec[sampled], dtype)
    true_ec = round_to_dtype(rng.uniform(0.05, 2.0, size=(B, T)), dtype)

    # sharding
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


# ---------------------------------------------------------------------------------------------
# fixed examples (for tests that need one known-good input rather than a search)


def example_problem(
    dtype: str = "float32",
    *,
    batch: int = 3,
    dim: int = 4,
    num_classes: int = 7,
    num_true: int = 2,
    num_sampled: int = 4,
    hits_in_every_row: bool = True,
    seed: int = 0,
) -> dict:
    """One deterministic :func:`sampled_softmax_problem`-shaped dict (unsharded weights).

    With ``hits_in_every_row`` the candidates contain the first label of every row, so each
    row has an accidental hit (needs ``num_sampled >= batch``).

    Args:
        dtype: The payloads' dtype name.
        batch: ``B``.
        dim: ``D``.
        num_classes: ``C``.
        num_true: ``T``.
        num_sampled: ``S`` distinct candidates (at most ``C``).
        hits_in_every_row: Whether the candidates hold every row's first label.
        seed: The NumPy generator's seed.

    Returns:
        The problem dict, with the keys of :func:`sampled_softmax_problem`.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=(batch, num_true), dtype=np.int64)
    sampled = rng.permutation(num_classes)[:num_sampled].astype(np.int64)
    if hits_in_every_row:
        firsts = list(dict.fromkeys(labels[:, 0].tolist()))
        others = [c for c in sampled.tolist() if c not in firsts]
        sampled = np.array((firsts + others)[:num_sampled], dtype=np.int64)
        if len(set(sampled.tolist())) < num_sampled:
            extra = [c for c in range(num_classes) if c not in sampled.tolist()]
            sampled = np.array(list(dict.fromkeys(sampled.tolist())) + extra, np.int64)[
                :num_sampled]
    full_w = round_to_dtype(rng.standard_normal((num_classes, dim)), dtype)
    full_b = round_to_dtype(rng.standard_normal(num_classes), dtype)
    inputs = round_to_dtype(rng.standard_normal((batch, dim)), dtype)
    class_ec = rng.uniform(0.05, 2.0, size=num_classes)
    hit_rows = sorted({i for i in range(batch) if set(labels[i].tolist()) & set(sampled.tolist())})
    return dict(
        weights=full_w,
        biases=full_b,
        full_weights=full_w,
        full_biases=full_b,
        labels=labels,
        inputs=inputs,
        sampled_candidates=sampled,
        true_expected_count=round_to_dtype(rng.uniform(0.05, 2.0, size=(batch, num_true)), dtype),
        sampled_expected_count=round_to_dtype(class_ec[sampled], dtype),
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        partition_strategy="div",
        num_shards=1,
        dtype=dtype,
        unique=True,
        hit_rows=hit_rows,
    )


def example_paddle_problem(dtype: str = "float32", *, batch: int = 3, num_classes: int = 8,
                           num_samples: int = 4, seed: int = 0) -> dict:
    """One deterministic :func:`paddle_problem`-shaped dict with a hit in row 0 (twice).

    Args:
        dtype: The payloads' dtype name.
        batch: ``N``.
        num_classes: ``K``.
        num_samples: ``S`` negatives per row (at most ``K``; the hit fills the first two).
        seed: The NumPy generator's seed.

    Returns:
        The problem dict, with the keys of :func:`paddle_problem` (``num_true`` 1).
    """
    rng = np.random.default_rng(seed)
    label = rng.integers(0, num_classes, size=(batch, 1), dtype=np.int64)
    negatives = np.stack([rng.permutation(num_classes)[:num_samples] for _ in range(batch)])
    negatives[0, :2] = label[0, 0]
    samples = np.concatenate([label, negatives.astype(np.int64)], axis=1)
    return dict(
        logits=round_to_dtype(rng.standard_normal((batch, num_classes)) * 2.0, dtype),
        label=label,
        num_samples=num_samples,
        num_true=1,
        customized_samples=samples,
        customized_probabilities=round_to_dtype(
            rng.uniform(0.02, 1.0, size=(batch, 1 + num_samples)), dtype),
        dtype=dtype,
        num_classes=num_classes,
    )
