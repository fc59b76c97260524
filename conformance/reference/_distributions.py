"""Base distributions, expected counts and the unique sampling trace (section 5), accidental
hits (section 4) and the partitioned lookup (section 6)."""

from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np
import numpy.typing as npt

from ._common import FLT_MAX, _as_float32_values, _i64, _is_shard_list, _shards_of


def log_uniform_prob(classes: npt.ArrayLike, range_max: int) -> np.ndarray:
    """TF's log-uniform ``P(k) = ln((k+2)/(k+1)) / log1p(R)`` in double, returned as float32.

    Section 5.2. Returns float64 values of float32 numbers, shape of ``classes``.

    Args:
        classes: Class ids >= 0 (integer values).
        range_max: ``R``, the number of classes (>= 1).

    Returns:
        ``P(classes)``: float64 values of float32 numbers.

    Raises:
        ValueError: ``range_max < 1``, ids below 0, or ``classes`` not integer.
    """
    k = _i64(classes, "classes").astype(np.float64)
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    if np.any(k < 0):
        raise ValueError(f"classes: expected ids >= 0, got {classes!r}")
    log_range = math.log1p(float(range_max))
    return _as_float32_values(np.log((k + 2.0) / (k + 1.0)) / log_range)


def paddle_log_uniform_prob(classes: npt.ArrayLike, range_max: int) -> np.ndarray:
    """Paddle's log-uniform probability: the same formula with ``ln(K+1)`` stored in float32.

    Section 10.3 step 1. Returns float64 values of float32 numbers.

    Args:
        classes: Class ids >= 0 (integer values).
        range_max: ``K``, the number of classes (>= 1).

    Returns:
        ``P(classes)``: float64 values of float32 numbers.

    Raises:
        ValueError: ``range_max < 1``, ids below 0, or ``classes`` not integer.
    """
    k = _i64(classes, "classes").astype(np.float64)
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    if np.any(k < 0):
        raise ValueError(f"classes: expected ids >= 0, got {classes!r}")
    log_range_f32 = float(np.float32(math.log(float(range_max) + 1.0)))
    return _as_float32_values(np.log((k + 2.0) / (k + 1.0)) / log_range_f32)


def uniform_prob(classes: npt.ArrayLike, range_max: int) -> np.ndarray:
    """TF's uniform sampler: ``P(k) = 1/R`` as float32, for every class (section 5.2).

    Args:
        classes: Class ids (integer values; only their shape is used).
        range_max: ``R`` (>= 1).

    Returns:
        ``float32(1/R)`` as float64, of the shape of ``classes``.

    Raises:
        ValueError: ``range_max < 1``, or ``classes`` not integer.
    """
    k = _i64(classes, "classes")
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    return np.full(k.shape, float(np.float32(1.0 / range_max)), dtype=np.float64)


def fixed_unigram_weights(
    range_max: int,
    unigrams: Optional[Iterable[float]] = None,
    vocab_lines: Optional[Iterable[str]] = None,
    distortion: float = 1.0,
    num_reserved_ids: int = 0,
    num_shards: int = 1,
    shard: int = 0,
) -> np.ndarray:
    """Weight vector of TF's fixed-unigram sampler (section 5.5, with quirk 13.13).

    ``P(k) = w[k] / sum(w)`` over shard-local indices ``k``. Weights are float64
    ``value ** distortion`` (TF keeps them in float32; probabilities agree to float32 rounding).
    ``vocab_lines`` are the lines of a vocabulary file: empty lines are skipped, the value is the
    last comma-separated field.

    Args:
        range_max: The shard-local number of weights the sampler must end with.
        unigrams: The classes' counts (exactly one of ``unigrams`` and ``vocab_lines``).
        vocab_lines: A vocabulary file's lines.
        distortion: The power applied to every count.
        num_reserved_ids: Leading ids of weight 0.
        num_shards: The number of shards of the vocabulary.
        shard: This shard's index, ``0 <= shard < num_shards``.

    Returns:
        The float64 weights ``[range_max]`` of this shard.

    Raises:
        ValueError: Both or neither of ``unigrams`` and ``vocab_lines``; a bad ``shard``; a
            vocabulary line whose last field is not a number; a negative count; a weight
            count other than ``range_max``.
    """
    if (unigrams is None) == (vocab_lines is None):
        raise ValueError(
            "unigrams / vocab_lines: expected exactly one of them, got "
            f"unigrams={unigrams!r}, vocab_lines={vocab_lines!r}"
        )
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"shard: expected 0 <= shard < num_shards={num_shards}, got {shard}")
    weights = []
    for reserved_id in range(num_reserved_ids):
        if reserved_id % num_shards == shard:
            weights.append(0.0)
    # quirk 13.13: the running id starts at the number of reserved ids kept by THIS shard
    word_id = len(weights)
    if unigrams is not None:
        values = [float(v) for v in unigrams]
        lines = [None] * len(values)
    else:
        lines = [line for line in vocab_lines if line != ""]
        values = [None] * len(lines)
    for value, line in zip(values, lines):
        if word_id % num_shards == shard:
            if line is not None:
                field = line.split(",")[-1]
                try:
                    value = float(field)
                except ValueError:
                    raise ValueError(
                        f"vocab_lines: wrong vocabulary format at line {line!r}: "
                        "expected the last comma-separated field to be a number"
                    ) from None
            if float(value) < 0:
                raise ValueError(f"unigrams: expected counts >= 0, got {value!r}")
            weights.append(float(value) ** float(distortion))
        word_id += 1
    if len(weights) != range_max:
        raise ValueError(
            f"range_max: expected the shard-local weight count {len(weights)}, got {range_max}"
        )
    return np.asarray(weights, dtype=np.float64)


def learned_unigram_weights(range_max: int,
                            previous_true_classes: Iterable[npt.ArrayLike] = ()) -> np.ndarray:
    """Weights of TF's learned-unigram sampler before a call (section 5.2).

    Every weight starts at 1; each entry of each earlier call's ``true_classes`` (a sequence of
    ``[B, T]`` arrays, repeats counted) adds 1. The 2^31-1 cap is not modelled.

    Args:
        range_max: The number of classes.
        previous_true_classes: The ``true_classes`` of the earlier calls, in order.

    Returns:
        The float64 weights ``[range_max]``.

    Raises:
        ValueError: A ``true_classes`` that is not integer.
    """
    weights = np.ones(range_max, dtype=np.float64)
    for batch in previous_true_classes:
        for value in _i64(batch, "previous_true_classes").ravel():
            weights[int(value)] += 1.0
    return weights


def expected_count(p: npt.ArrayLike, num_tries: int, num_sampled: int) -> np.ndarray:
    """TF's ``ExpectedCountHelper`` (section 5.4), evaluated in float32 like TF.

    ``S * p`` when ``num_tries == num_sampled`` (no rejection), else
    ``-expm1(num_tries * log1p(-p))``; every intermediate is rounded to float32.
    Returns float64 values of float32 numbers.

    Args:
        p: Probabilities of the classes.
        num_tries: The draws the unique sampler consumed.
        num_sampled: ``S``.

    Returns:
        The expected counts, float64 values of float32 numbers.
    """
    p32 = np.asarray(p, dtype=np.float64).astype(np.float32)
    if num_tries == num_sampled:
        q = np.float32(num_sampled) * p32
        return q.astype(np.float32).astype(np.float64)
    # float32 libm calls, as TF's std::log1p / std::expm1 on float (last-ulp differences
    # between libm builds are possible)
    product_f32 = np.float32(num_tries) * np.log1p(-p32)
    return (-np.expm1(product_f32)).astype(np.float32).astype(np.float64)


def unique_sampling_trace(draws: npt.ArrayLike, num_sampled: int) -> tuple[np.ndarray, int]:
    """TF's unique sampling loop (section 5.3) applied to a given sequence of draws.

    Keeps a draw only if it has not been kept before, stops once ``num_sampled`` distinct values
    are kept. Returns ``(candidates int64 [S], num_tries)`` where ``num_tries`` counts every
    draw consumed, rejected repeats included.

    Args:
        draws: The sampler's draws in order (integer values).
        num_sampled: ``S``, the number of distinct values to keep.

    Returns:
        ``(candidates, num_tries)``.

    Raises:
        ValueError: Fewer than ``num_sampled`` distinct draws, or ``draws`` not integer.
    """
    kept = []
    seen = set()
    num_tries = 0
    for value in _i64(draws, "draws").ravel():
        if len(kept) == num_sampled:
            break
        num_tries += 1
        if int(value) in seen:
            continue
        seen.add(int(value))
        kept.append(int(value))
    if len(kept) < num_sampled:
        raise ValueError(
            f"draws: expected enough draws to keep {num_sampled} distinct values, "
            f"got only {len(kept)} distinct in {num_tries} draws"
        )
    return np.asarray(kept, dtype=np.int64), num_tries


# --------------------------------------------------------------------------------------------
# accidental hits (section 4)


def accidental_hits(true_classes: npt.ArrayLike, sampled_candidates: npt.ArrayLike
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's ``compute_accidental_hits``: ``(indices int32, ids int64, weights float32)``.

    A candidate value that occurs several times maps to its LAST position only. Rows are scanned
    in order, and within a row the true columns in order; a repeated true label emits its pair
    once per repetition.

    Args:
        true_classes: ``[B, T]`` integer labels.
        sampled_candidates: ``[S]`` integer candidates.

    Returns:
        The hits' rows, their candidate positions and ``-FLT_MAX`` weights.

    Raises:
        ValueError: ``true_classes`` not 2-D or ``sampled_candidates`` not 1-D, or either not
            integer.
    """
    true_classes = _i64(true_classes, "true_classes")
    candidates = _i64(sampled_candidates, "sampled_candidates")
    if true_classes.ndim != 2:
        raise ValueError(
            f"true_classes: expected a [batch_size, num_true] matrix, got shape {true_classes.shape}"
        )
    if candidates.ndim != 1:
        raise ValueError(
            f"sampled_candidates: expected a vector, got shape {candidates.shape}"
        )
    position_of = {}
    for position, value in enumerate(candidates):
        position_of[int(value)] = position  # later positions overwrite earlier ones
    indices, ids = [], []
    for row in range(true_classes.shape[0]):
        for col in range(true_classes.shape[1]):
            value = int(true_classes[row, col])
            if value in position_of:
                indices.append(row)
                ids.append(position_of[value])
    weights = np.full(len(indices), -FLT_MAX, dtype=np.float32)
    return np.asarray(indices, dtype=np.int32), np.asarray(ids, dtype=np.int64), weights


# --------------------------------------------------------------------------------------------
# partitioned lookup (section 6)


def _locate(shard_rows, ids, partition_strategy):
    """(shard, local row) of every id, exactly as TF partitions; ValueError where TF fails."""
    num_shards = len(shard_rows)
    ids = [int(i) for i in np.asarray(ids, dtype=np.int64).ravel()]
    if num_shards == 1:
        # a single shard ignores the strategy string entirely
        places = [(0, i) for i in ids]
    elif partition_strategy == "mod":
        places = [(i % num_shards, i // num_shards) for i in ids]
    elif partition_strategy == "div":
        total = sum(shard_rows)
        per_shard, extras = divmod(total, num_shards)
        if per_shard == 0:
            raise ValueError(
                f"params: 'div' needs at least as many rows ({total}) as shards ({num_shards})"
            )
        places = []
        for i in ids:
            p = max(i // (per_shard + 1), (i - extras) // per_shard)
            local = i % (per_shard + 1) if p < extras else (i - extras) % per_shard
            places.append((p, local))
    else:
        raise ValueError(
            f"partition_strategy: expected 'mod' or 'div', got {partition_strategy!r}"
        )
    for i, (p, local) in zip(ids, places):
        if i < 0 or not 0 <= p < num_shards or not 0 <= local < shard_rows[p]:
            raise ValueError(
                f"ids: id {i} is not in the table (maps to shard {p}, row {local}; shard rows "
                f"{list(shard_rows)}, strategy {partition_strategy!r})"
            )
    return places


def embedding_lookup(params: npt.ArrayLike, ids: npt.ArrayLike,
                     partition_strategy: str = "div") -> np.ndarray:
    """Rows of ``params`` (one array or a list of shards) for ``ids``: shape ids.shape + row shape.

    Args:
        params: One table, or a Python list of shards.
        ids: Integer global row ids.
        partition_strategy: ``"div"`` or ``"mod"`` (ignored for one shard, as TF).

    Returns:
        The float64 rows.

    Raises:
        ValueError: An empty shard list, a non-real table, an unknown strategy with several
            shards, "div" with fewer rows than shards, or an id outside the table.
    """
    shards = _shards_of(params, "params")
    ids_arr = _i64(ids, "ids")
    places = _locate([s.shape[0] for s in shards], ids_arr, partition_strategy)
    row_shape = shards[0].shape[1:]
    rows = [shards[p][local] for p, local in places]
    out = np.stack(rows) if rows else np.zeros((0,) + row_shape)
    return out.reshape(ids_arr.shape + row_shape)


def _scatter_add(params, ids, row_grads, partition_strategy):
    """Dense gradient of ``params`` (same structure) from per-id row gradients."""
    shards = _shards_of(params, "params")
    grads = [np.zeros_like(s) for s in shards]
    places = _locate([s.shape[0] for s in shards], ids, partition_strategy)
    for (p, local), g in zip(places, row_grads):
        grads[p][local] += g
    return grads if _is_shard_list(params) else grads[0]
