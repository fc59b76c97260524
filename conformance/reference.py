"""Independent reference model of TensorFlow's and Paddle's sampled losses, in plain NumPy.

Written from the project's semantics document alone (section numbers below refer to it), in the
most direct style: float64 throughout, explicit loops over rows and columns where that reads
closest to the definition. It shares no code with the library it checks, so a disagreement
between the two points at a bug in one of them.

Conventions
-----------
- Inputs are anything ``numpy.asarray`` accepts. Floats are cast to float64, ids to int64.
- Probabilities and expected counts that the frameworks produce in float32 are returned as
  float64 arrays holding exactly those float32 values.
- ``sampled_values`` is the triple ``(candidates [S], true_expected_count [B, T] (or anything
  that broadcasts to it), sampled_expected_count [S])``.
- ``weights`` and ``biases`` are one array, or a Python ``list`` of shards (TF's convention:
  only a ``list`` is a shard list). Gradients with respect to a shard list are lists of the same
  length.
- Bad inputs raise ``ValueError`` (shapes, values) where TensorFlow or Paddle would fail.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np

__all__ = [
    "FLT_MAX",
    "PADDLE_MASK",
    "PADDLE_CLAMP",
    "PADDLE_SHIFTED_LOGIT_FLOOR",
    "log_uniform_prob",
    "paddle_log_uniform_prob",
    "uniform_prob",
    "fixed_unigram_weights",
    "learned_unigram_weights",
    "expected_count",
    "unique_sampling_trace",
    "accidental_hits",
    "embedding_lookup",
    "sampled_logits",
    "sampled_softmax_loss",
    "sampled_softmax_loss_grad",
    "nce_loss",
    "nce_loss_grad",
    "rank_resample",
    "rank_sampled_softmax_loss",
    "rank_sampled_softmax_loss_grad",
    "paddle_adjust_prob",
    "paddle_samples",
    "paddle_sampled_logits",
    "paddle_sampled_softmax",
    "paddle_sampled_softmax_grad",
    "full_softmax_cross_entropy",
    "THREEFRY2X32_KAT",
    "threefry2x32",
    "threefry2x32_array",
    "sampler_draws",
    "cdf_threshold_ints",
    "fixed_unigram_weights_float32",
    "reference_probabilities",
    "reference_candidates",
    "reference_expected_counts",
]

#: Largest finite float32; TF's accidental-hit mask is ``-FLT_MAX`` (section 4).
FLT_MAX = float(np.finfo(np.float32).max)
#: Paddle subtracts this from accidental hits (section 10.3 step 3).
PADDLE_MASK = 1e20
#: Paddle maps +-inf to +-this after the log-Q subtraction (section 10.3 step 4).
PADDLE_CLAMP = 1e20
#: Paddle's softmax clips row-max-shifted logits from below at this value (section 10.3a).
PADDLE_SHIFTED_LOGIT_FLOOR = -64.0


# --------------------------------------------------------------------------------------------
# helpers


def _f64(x, name):
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real array, got {x!r}") from exc


def _i64(x, name):
    arr = np.asarray(x)
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    # float ids are truncated toward zero, as TF's cast to int64 does
    return arr.astype(np.int64)


def _as_float32_values(x):
    """float64 array holding the float32 rounding of ``x``."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def _logsumexp(row):
    m = np.max(row)
    if not np.isfinite(m):
        return float(m)
    return m + math.log(float(np.sum(np.exp(row - m))))


def _softmax(row):
    m = np.max(row)
    e = np.exp(row - m)
    return e / np.sum(e)


def _is_shard_list(params):
    return isinstance(params, list)


def _shards_of(params, name):
    if _is_shard_list(params):
        if len(params) == 0:
            raise ValueError(f"{name}: expected a non-empty list of shards, got []")
        return [_f64(p, f"{name}[{k}]") for k, p in enumerate(params)]
    return [_f64(params, name)]


# --------------------------------------------------------------------------------------------
# base distributions and expected counts (section 5)


def log_uniform_prob(classes, range_max):
    """TF's log-uniform ``P(k) = ln((k+2)/(k+1)) / log1p(R)`` in double, returned as float32.

    Section 5.2. Returns float64 values of float32 numbers, shape of ``classes``.
    """
    k = _i64(classes, "classes").astype(np.float64)
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    if np.any(k < 0):
        raise ValueError(f"classes: expected ids >= 0, got {classes!r}")
    log_range = math.log1p(float(range_max))
    return _as_float32_values(np.log((k + 2.0) / (k + 1.0)) / log_range)


def paddle_log_uniform_prob(classes, range_max):
    """Paddle's log-uniform probability: the same formula with ``ln(K+1)`` stored in float32.

    Section 10.3 step 1. Returns float64 values of float32 numbers.
    """
    k = _i64(classes, "classes").astype(np.float64)
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    if np.any(k < 0):
        raise ValueError(f"classes: expected ids >= 0, got {classes!r}")
    log_range_f32 = float(np.float32(math.log(float(range_max) + 1.0)))
    return _as_float32_values(np.log((k + 2.0) / (k + 1.0)) / log_range_f32)


def uniform_prob(classes, range_max):
    """TF's uniform sampler: ``P(k) = 1/R`` as float32, for every class (section 5.2)."""
    k = _i64(classes, "classes")
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    return np.full(k.shape, float(np.float32(1.0 / range_max)), dtype=np.float64)


def fixed_unigram_weights(
    range_max,
    unigrams=None,
    vocab_lines=None,
    distortion=1.0,
    num_reserved_ids=0,
    num_shards=1,
    shard=0,
):
    """Weight vector of TF's fixed-unigram sampler (section 5.5, with quirk 13.13).

    ``P(k) = w[k] / sum(w)`` over shard-local indices ``k``. Weights are float64
    ``value ** distortion`` (TF keeps them in float32; probabilities agree to float32 rounding).
    ``vocab_lines`` are the lines of a vocabulary file: empty lines are skipped, the value is the
    last comma-separated field.
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


def learned_unigram_weights(range_max, previous_true_classes=()):
    """Weights of TF's learned-unigram sampler before a call (section 5.2).

    Every weight starts at 1; each entry of each earlier call's ``true_classes`` (a sequence of
    ``[B, T]`` arrays, repeats counted) adds 1. The 2^31-1 cap is not modelled.
    """
    weights = np.ones(range_max, dtype=np.float64)
    for batch in previous_true_classes:
        for value in _i64(batch, "previous_true_classes").ravel():
            weights[int(value)] += 1.0
    return weights


def expected_count(p, num_tries, num_sampled):
    """TF's ``ExpectedCountHelper`` (section 5.4), evaluated in float32 like TF.

    ``S * p`` when ``num_tries == num_sampled`` (no rejection), else
    ``-expm1(num_tries * log1p(-p))``; every intermediate is rounded to float32.
    Returns float64 values of float32 numbers.
    """
    p32 = np.asarray(p, dtype=np.float64).astype(np.float32)
    if num_tries == num_sampled:
        q = np.float32(num_sampled) * p32
        return q.astype(np.float32).astype(np.float64)
    # float32 libm calls, as TF's std::log1p / std::expm1 on float (last-ulp differences
    # between libm builds are possible)
    product_f32 = np.float32(num_tries) * np.log1p(-p32)
    return (-np.expm1(product_f32)).astype(np.float32).astype(np.float64)


def unique_sampling_trace(draws, num_sampled):
    """TF's unique sampling loop (section 5.3) applied to a given sequence of draws.

    Keeps a draw only if it has not been kept before, stops once ``num_sampled`` distinct values
    are kept. Returns ``(candidates int64 [S], num_tries)`` where ``num_tries`` counts every
    draw consumed, rejected repeats included.
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


def accidental_hits(true_classes, sampled_candidates):
    """TF's ``compute_accidental_hits``: ``(indices int32, ids int64, weights float32)``.

    A candidate value that occurs several times maps to its LAST position only. Rows are scanned
    in order, and within a row the true columns in order; a repeated true label emits its pair
    once per repetition.
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


def embedding_lookup(params, ids, partition_strategy="div"):
    """Rows of ``params`` (one array or a list of shards) for ``ids``: shape ids.shape + row shape."""
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


# --------------------------------------------------------------------------------------------
# TF sampled logits and losses (sections 2, 3, 9)


def _parse_common(labels, inputs, sampled_values):
    labels = _i64(labels, "labels")
    if labels.ndim != 2:
        raise ValueError(f"labels: expected a [batch_size, num_true] matrix, got shape {labels.shape}")
    inputs = _f64(inputs, "inputs")
    if inputs.ndim != 2 or inputs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"inputs: expected shape [{labels.shape[0]}, dim], got {inputs.shape}"
        )
    if len(sampled_values) != 3:
        raise ValueError(f"sampled_values: expected a triple, got {len(sampled_values)} items")
    candidates = _i64(sampled_values[0], "sampled_values[0]")
    if candidates.ndim != 1:
        raise ValueError(f"sampled_values[0]: expected a vector, got shape {candidates.shape}")
    true_count = np.broadcast_to(_f64(sampled_values[1], "sampled_values[1]"), labels.shape)
    sampled_count = np.broadcast_to(
        _f64(sampled_values[2], "sampled_values[2]"), candidates.shape
    )
    return labels, inputs, candidates, true_count, sampled_count


def sampled_logits(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    *,
    subtract_log_q=True,
    remove_accidental_hits=False,
    partition_strategy="div",
):
    """TF's ``_compute_sampled_logits`` (section 3): ``(logits [B, T+S], labels [B, T+S])``."""
    labels, inputs, candidates, true_count, sampled_count = _parse_common(
        labels, inputs, sampled_values
    )
    batch, num_true = labels.shape
    num_sampled = candidates.shape[0]
    w_shards = _shards_of(weights, "weights")
    if any(s.ndim != 2 or s.shape[1] != inputs.shape[1] for s in w_shards):
        raise ValueError(
            f"weights: expected shards of shape [rows, {inputs.shape[1]}], got "
            f"{[s.shape for s in w_shards]}"
        )
    all_ids = np.concatenate([labels.ravel(), candidates])
    all_w = embedding_lookup(weights, all_ids, partition_strategy)
    all_b = embedding_lookup(biases, all_ids, partition_strategy)
    true_w = all_w[: batch * num_true]
    true_b = all_b[: batch * num_true]
    samp_w = all_w[batch * num_true :]
    samp_b = all_b[batch * num_true :]

    true_logits = np.zeros((batch, num_true))
    for i in range(batch):
        for t in range(num_true):
            k = i * num_true + t
            true_logits[i, t] = float(np.dot(inputs[i], true_w[k])) + true_b[k]

    samp_logits = np.zeros((batch, num_sampled))
    for i in range(batch):
        for j in range(num_sampled):
            samp_logits[i, j] = float(np.dot(inputs[i], samp_w[j])) + samp_b[j]

    if remove_accidental_hits:
        mask = np.zeros((batch, num_sampled))
        hit_rows, hit_cols, _ = accidental_hits(labels, candidates)
        for i, j in zip(hit_rows, hit_cols):
            mask[i, j] = -FLT_MAX  # assigned, so a repeated pair is still one -FLT_MAX
        samp_logits = samp_logits + mask

    if subtract_log_q:
        # masking happens before the log-Q subtraction
        true_logits = true_logits - np.log(true_count)
        samp_logits = samp_logits - np.log(sampled_count)[None, :]

    out_logits = np.concatenate([true_logits, samp_logits], axis=1)
    out_labels = np.concatenate(
        [np.full((batch, num_true), 1.0 / num_true), np.zeros((batch, num_sampled))], axis=1
    )
    return out_logits, out_labels


def sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    *,
    remove_accidental_hits=True,
    partition_strategy="div",
):
    """TF's ``sampled_softmax_loss`` (section 2.3): soft-label softmax cross entropy, ``[B]``."""
    logits, soft_labels = sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        sampled_values,
        subtract_log_q=True,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
    )
    loss = np.zeros(logits.shape[0])
    for i in range(logits.shape[0]):
        lse = _logsumexp(logits[i])
        loss[i] = -sum(
            soft_labels[i, c] * (logits[i, c] - lse)
            for c in range(logits.shape[1])
            if soft_labels[i, c] != 0.0
        )
    return loss


def _sigmoid_xent(z, y):
    return max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z)))


def _sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def nce_loss(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    *,
    remove_accidental_hits=False,
    partition_strategy="div",
):
    """TF's ``nce_loss`` (section 9): summed sigmoid cross entropy over ``T+S`` columns, ``[B]``."""
    logits, targets = sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        sampled_values,
        subtract_log_q=True,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
    )
    loss = np.zeros(logits.shape[0])
    for i in range(logits.shape[0]):
        loss[i] = sum(
            _sigmoid_xent(float(logits[i, c]), float(targets[i, c]))
            for c in range(logits.shape[1])
        )
    return loss


def _logit_grad_to_params(
    weights, biases, labels, inputs, candidates, d_logits, partition_strategy
):
    """Backpropagate ``d loss / d logits`` ([B, T+S]) through section 3 steps 4-7 (section 11)."""
    labels = _i64(labels, "labels")
    inputs = _f64(inputs, "inputs")
    batch, num_true = labels.shape
    num_sampled = candidates.shape[0]
    all_ids = np.concatenate([labels.ravel(), candidates])
    all_w = embedding_lookup(weights, all_ids, partition_strategy)

    d_inputs = np.zeros_like(inputs)
    row_grads_w = np.zeros_like(all_w)
    row_grads_b = np.zeros(all_ids.shape[0])
    for i in range(batch):
        for t in range(num_true):
            k = i * num_true + t
            g = d_logits[i, t]
            d_inputs[i] += g * all_w[k]
            row_grads_w[k] += g * inputs[i]
            row_grads_b[k] += g
        for j in range(num_sampled):
            k = batch * num_true + j
            g = d_logits[i, num_true + j]
            d_inputs[i] += g * all_w[k]
            row_grads_w[k] += g * inputs[i]
            row_grads_b[k] += g
    return {
        "weights": _scatter_add(weights, all_ids, row_grads_w, partition_strategy),
        "biases": _scatter_add(biases, all_ids, row_grads_b, partition_strategy),
        "inputs": d_inputs,
    }


def _upstream_vector(upstream, batch):
    if upstream is None:
        return np.ones(batch)
    up = _f64(upstream, "upstream").reshape(-1)
    if up.shape[0] != batch:
        raise ValueError(f"upstream: expected {batch} values, got shape {np.shape(upstream)}")
    return up


def sampled_softmax_loss_grad(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    *,
    remove_accidental_hits=True,
    partition_strategy="div",
    upstream=None,
):
    """Analytic gradient of ``sum(upstream * sampled_softmax_loss(...))``.

    Returns ``{"weights", "biases", "inputs"}``; a shard list gets a list of per-shard
    gradients. Sampled values and labels carry no gradient; masked columns get 0.
    """
    logits, soft_labels = sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        sampled_values,
        subtract_log_q=True,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
    )
    up = _upstream_vector(upstream, logits.shape[0])
    d_logits = np.zeros_like(logits)
    for i in range(logits.shape[0]):
        d_logits[i] = up[i] * (_softmax(logits[i]) - soft_labels[i])
    candidates = _i64(sampled_values[0], "sampled_values[0]")
    return _logit_grad_to_params(
        weights, biases, labels, inputs, candidates, d_logits, partition_strategy
    )


def nce_loss_grad(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    *,
    remove_accidental_hits=False,
    partition_strategy="div",
    upstream=None,
):
    """Analytic gradient of ``sum(upstream * nce_loss(...))``: ``d/dz = sigmoid(z) - y``."""
    logits, targets = sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        sampled_values,
        subtract_log_q=True,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
    )
    up = _upstream_vector(upstream, logits.shape[0])
    d_logits = np.zeros_like(logits)
    for i in range(logits.shape[0]):
        for c in range(logits.shape[1]):
            d_logits[i, c] = up[i] * (_sigmoid(float(logits[i, c])) - targets[i, c])
    candidates = _i64(sampled_values[0], "sampled_values[0]")
    return _logit_grad_to_params(
        weights, biases, labels, inputs, candidates, d_logits, partition_strategy
    )


# --------------------------------------------------------------------------------------------
# rank_sampled_softmax_loss (section 7)


def rank_resample(
    weights,
    biases,
    inputs,
    sampled_values,
    num_resampled,
    resampling_temperature,
    partition_strategy="div",
):
    """TF's ``_rank_resample``: keep the ``num_resampled`` highest-scoring candidates.

    ``r(c) = lse_j(w_c . x_j / tau) + b_c / tau`` over the batch rows ``j``. The kept candidates
    come in decreasing score order, ties toward the lower position. ``true_expected_count`` is
    passed through; the sampled expected counts follow their candidates.
    """
    inputs = _f64(inputs, "inputs")
    candidates = _i64(sampled_values[0], "sampled_values[0]")
    sampled_count = np.broadcast_to(
        _f64(sampled_values[2], "sampled_values[2]"), candidates.shape
    )
    if not 0 < num_resampled < candidates.shape[0]:
        raise ValueError(
            f"num_resampled: expected 0 < num_resampled < num_sampled={candidates.shape[0]}, "
            f"got {num_resampled}"
        )
    tau = float(resampling_temperature)
    w = embedding_lookup(weights, candidates, partition_strategy)
    b = embedding_lookup(biases, candidates, partition_strategy)
    scores = np.zeros(candidates.shape[0])
    for j in range(candidates.shape[0]):
        per_row = np.array([float(np.dot(w[j], inputs[r] / tau)) for r in range(inputs.shape[0])])
        scores[j] = _logsumexp(per_row) + b[j] / tau
    order = sorted(range(candidates.shape[0]), key=lambda j: (-scores[j], j))
    keep = order[:num_resampled]
    return (
        candidates[keep].copy(),
        np.asarray(sampled_values[1], dtype=np.float64),
        sampled_count[keep].copy(),
    )


def _check_rank_args(sampled_values, num_resampled, partition_strategy):
    num_sampled = np.asarray(sampled_values[0]).shape[0]
    if num_sampled <= num_resampled:
        raise ValueError(
            f"num_resampled: expected less than num_sampled ({num_sampled}), got {num_resampled}"
        )
    if partition_strategy not in ("div", "mod"):
        raise ValueError(
            f"partition_strategy: expected 'div' or 'mod', got {partition_strategy!r}"
        )


def rank_sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    num_resampled,
    *,
    resampling_temperature=1.0,
    remove_accidental_hits=True,
    partition_strategy="div",
):
    """TF contrib ``rank_sampled_softmax_loss`` (section 7) with given first-phase values."""
    _check_rank_args(sampled_values, num_resampled, partition_strategy)
    resampled = rank_resample(
        weights, biases, inputs, sampled_values, num_resampled, resampling_temperature,
        partition_strategy,
    )
    return sampled_softmax_loss(
        weights, biases, labels, inputs, resampled,
        remove_accidental_hits=remove_accidental_hits, partition_strategy=partition_strategy,
    )


def rank_sampled_softmax_loss_grad(
    weights,
    biases,
    labels,
    inputs,
    sampled_values,
    num_resampled,
    *,
    resampling_temperature=1.0,
    remove_accidental_hits=True,
    partition_strategy="div",
    upstream=None,
):
    """Gradient of ``sum(upstream * rank_sampled_softmax_loss(...))``; scores carry none."""
    _check_rank_args(sampled_values, num_resampled, partition_strategy)
    resampled = rank_resample(
        weights, biases, inputs, sampled_values, num_resampled, resampling_temperature,
        partition_strategy,
    )
    return sampled_softmax_loss_grad(
        weights, biases, labels, inputs, resampled,
        remove_accidental_hits=remove_accidental_hits, partition_strategy=partition_strategy,
        upstream=upstream,
    )


# --------------------------------------------------------------------------------------------
# Paddle (section 10)


def paddle_adjust_prob(p, num_samples, num_tries, dtype="float32"):
    """Paddle's ``adjust_prob`` in the logits dtype (same formula as section 5.4)."""
    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    p = np.asarray(p, dtype=np.float64).astype(np_dtype)
    if num_tries == num_samples:
        q = p * np_dtype.type(num_samples)
    elif np_dtype == np.float64:
        # Paddle's kernel calls the C library's double std::log1p / std::expm1, as Python's
        # math module does. NumPy's own float64 log1p/expm1 are SIMD code on some CPUs
        # (AVX-512, NumPy >= 1.22) whose results may differ from the C library's in the last
        # place, so they are not used for the double case.
        q = np.asarray([-math.expm1(float(num_tries) * math.log1p(-float(v)))
                        for v in p.reshape(-1)], dtype=np.float64).reshape(p.shape)
    else:
        q = -np.expm1(np_dtype.type(num_tries) * np.log1p(-p))
    return np.asarray(q, dtype=np_dtype).astype(np.float64)


def paddle_samples(label, negatives, num_tries, range_max, dtype="float32"):
    """Paddle's non-customized ``Samples`` and ``Probabilities`` (section 10.3 step 1).

    Row ``i`` is ``label[i, :]`` followed by the shared ``negatives``; every entry's probability
    is Paddle's log-uniform ``P`` (float32), converted to ``dtype`` and adjusted with
    ``num_samples = len(negatives)``. Returns ``(samples int64 [N, T+S], probabilities
    float64 [N, T+S])``, the latter holding values of ``dtype``.
    """
    label = _i64(label, "label")
    negatives = _i64(negatives, "negatives")
    if label.ndim != 2:
        raise ValueError(f"label: expected shape [N, T], got {label.shape}")
    if negatives.ndim != 1:
        raise ValueError(f"negatives: expected a vector, got shape {negatives.shape}")
    samples = np.concatenate(
        [label, np.broadcast_to(negatives, (label.shape[0], negatives.shape[0]))], axis=1
    )
    p = paddle_log_uniform_prob(samples, range_max)
    return samples, paddle_adjust_prob(p, negatives.shape[0], num_tries, dtype)


def _paddle_clamp(x):
    x = np.array(x, dtype=np.float64)
    x[x == np.inf] = PADDLE_CLAMP
    x[x == -np.inf] = -PADDLE_CLAMP
    return x


def paddle_sampled_logits(logits, label, samples, probabilities, *, remove_accidental_hits=True):
    """Paddle's ``SampledLogits`` (section 10.3 steps 2-4), ``[N, T+S]``."""
    logits = _f64(logits, "logits")
    label = _i64(label, "label")
    samples = _i64(samples, "samples")
    probabilities = _f64(probabilities, "probabilities")
    if logits.ndim != 2 or label.ndim != 2:
        raise ValueError(
            f"logits, label: expected 2-D, got shapes {logits.shape} and {label.shape}"
        )
    n, k = logits.shape
    num_true = label.shape[1]
    if samples.ndim != 2 or samples.shape[0] != n or samples.shape[1] <= num_true:
        raise ValueError(f"samples: expected shape [{n}, {num_true}+S], got {samples.shape}")
    if probabilities.shape != samples.shape:
        raise ValueError(
            f"probabilities: expected shape {samples.shape}, got {probabilities.shape}"
        )
    if np.any(samples < 0) or np.any(samples >= k):
        raise ValueError(f"samples: expected ids in [0, {k}), got {samples.tolist()}")
    out = np.zeros(samples.shape)
    for i in range(n):
        true_set = {int(v) for v in samples[i, :num_true]}
        for c in range(samples.shape[1]):
            value = logits[i, samples[i, c]]
            if remove_accidental_hits and c >= num_true and int(samples[i, c]) in true_set:
                value = value - PADDLE_MASK
            out[i, c] = value
    with np.errstate(divide="ignore"):
        log_q = np.log(probabilities)
    return _paddle_clamp(out - _paddle_clamp(log_q))


def _paddle_clipped(row):
    shifted = row - np.max(row)
    return np.maximum(shifted, PADDLE_SHIFTED_LOGIT_FLOOR)


def paddle_sampled_softmax(logits, label, samples, probabilities, *, remove_accidental_hits=True):
    """Paddle's ``sampled_softmax_with_cross_entropy`` with given samples, ``[N, 1]``.

    Cross entropy on the -64-clipped, max-shifted logits (section 10.3a). For ``T > 1`` (where
    Paddle's own layer fails, section 10.5) every true column carries ``1/T``: the loss is the
    mean over the true columns of ``-log softmax``.
    """
    z = paddle_sampled_logits(
        logits, label, samples, probabilities, remove_accidental_hits=remove_accidental_hits
    )
    num_true = np.asarray(label).shape[1]
    loss = np.zeros((z.shape[0], 1))
    for i in range(z.shape[0]):
        clipped = _paddle_clipped(z[i])
        lse = _logsumexp(clipped)
        loss[i, 0] = sum(lse - clipped[t] for t in range(num_true)) / num_true
    return loss


def paddle_sampled_softmax_grad(
    logits, label, samples, probabilities, *, remove_accidental_hits=True, upstream=None
):
    """d ``sum(upstream * loss)`` / d ``logits`` ``[N, K]``: scatter-add of ``softmax - y``.

    The softmax is that of the clipped logits; neither the clip, the mask nor the clamps are
    differentiated (section 11).
    """
    z = paddle_sampled_logits(
        logits, label, samples, probabilities, remove_accidental_hits=remove_accidental_hits
    )
    logits = _f64(logits, "logits")
    samples = _i64(samples, "samples")
    num_true = np.asarray(label).shape[1]
    up = _upstream_vector(upstream, z.shape[0])
    grad = np.zeros_like(logits)
    for i in range(z.shape[0]):
        soft = _softmax(_paddle_clipped(z[i]))
        for c in range(z.shape[1]):
            target = 1.0 / num_true if c < num_true else 0.0
            grad[i, samples[i, c]] += up[i] * (soft[c] - target)
    return grad


# --------------------------------------------------------------------------------------------
# oracle


def full_softmax_cross_entropy(weights, biases, labels_1col, inputs):
    """Full softmax cross entropy over all classes, ``[B]`` (a shard list is concatenated)."""
    w = np.concatenate(_shards_of(weights, "weights"), axis=0)
    b = np.concatenate(_shards_of(biases, "biases"), axis=0)
    labels = _i64(labels_1col, "labels_1col").reshape(-1)
    inputs = _f64(inputs, "inputs")
    loss = np.zeros(inputs.shape[0])
    for i in range(inputs.shape[0]):
        row = np.array([float(np.dot(inputs[i], w[c])) + b[c] for c in range(w.shape[0])])
        loss[i] = _logsumexp(row) - row[labels[i]]
    return loss


# --------------------------------------------------------------------------------------------
# sampler truth: Threefry-2x32 and the integer mapping of draws to classes (section 5)
#
# TensorFlow's samplers draw from Philox; multisampled's draw from a counter-based contract of
# their own, which these functions state in Python ints so that a sampler can be checked bit for
# bit. Draw i of the call with index c under the key (key0, key1) is the Threefry-2x32-20 block
# (x0, x1) of the counter (c, i), read as the 64-bit integer X = x0 * 2**32 + x1 (the number
# u = X / 2**64 in [0, 1)). An int seed s is the key (s >> 32, s & 0xFFFFFFFF). Classes follow
# from X by integer arithmetic; only the CDF thresholds are computed, once, in float64.

_MASK32 = 0xFFFFFFFF
#: Skein's key-schedule parity constant, as Random123 uses it for 32-bit words.
_THREEFRY_PARITY = 0x1BD11BDA
#: Random123's rotation amounts R_32x2_0_0 .. R_32x2_7_0: round r rotates by entry r % 8.
_THREEFRY_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_THREEFRY_ROUNDS = 20

#: Random123's known-answer vectors of Threefry-2x32-20: ``((key0, key1), (c0, c1), (x0, x1))``.
THREEFRY2X32_KAT = (
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
)

def _rotl32(x, r):
    """``x`` rotated left by ``r`` bits as a 32-bit word (a Python int or a uint64 array)."""
    return ((x << r) | (x >> (32 - r))) & _MASK32


def _threefry_rounds(key0, key1, c0, c1):
    """Threefry-2x32-20 of 32-bit words held in Python ints or NumPy uint64 arrays.

    Random123's definition: the key schedule is ``(key0, key1, key0 ^ key1 ^ parity)``; the
    counter plus the first two key words is mixed by 20 rounds of ``x0 += x1; x1 = rotl(x1,
    R[r % 8]) ^ x0``, and after every fourth round injection ``s = 1 .. 5`` adds key words
    ``s % 3`` and ``(s + 1) % 3`` (the latter plus ``s``). Every sum is reduced mod 2**32.
    """
    ks = (key0, key1, key0 ^ key1 ^ _THREEFRY_PARITY)
    x0 = (c0 + ks[0]) & _MASK32
    x1 = (c1 + ks[1]) & _MASK32
    for r in range(_THREEFRY_ROUNDS):
        x0 = (x0 + x1) & _MASK32
        x1 = _rotl32(x1, _THREEFRY_ROTATIONS[r % 8]) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = (x0 + ks[s % 3]) & _MASK32
            x1 = (x1 + ks[(s + 1) % 3] + s) & _MASK32
    return x0, x1


def _word(value, name):
    """``value`` as a Python int in ``[0, 2**32)``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int in [0, 2**32), got {value!r}")
    value = int(value)
    if not 0 <= value <= _MASK32:
        raise ValueError(f"{name}: expected an int in [0, 2**32), got {value}")
    return value


def threefry2x32(key0, key1, c0, c1):
    """Threefry-2x32 with 20 rounds: the counter ``(c0, c1)`` encrypted under ``(key0, key1)``.

    All four are ints in ``[0, 2**32)``; returns ``(x0, x1)``, two such ints. Random123's
    function, which ``jax.random`` also uses (see :data:`THREEFRY2X32_KAT`).
    """
    words = [_word(v, n) for v, n in zip((key0, key1, c0, c1), ("key0", "key1", "c0", "c1"))]
    return _threefry_rounds(*words)


def threefry2x32_array(key0, key1, c0, c1):
    """:func:`threefry2x32` elementwise over broadcast NumPy integer arrays (or ints).

    Every value must lie in ``[0, 2**32)``. Returns ``(x0, x1)`` as uint64 arrays of the
    broadcast shape (at least one dimension) holding 32-bit values.
    """
    words = []
    for value, name in zip((key0, key1, c0, c1), ("key0", "key1", "c0", "c1")):
        arr = np.array(value, ndmin=1)
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > _MASK32)):
            raise ValueError(f"{name}: expected integers in [0, 2**32), got {value!r}")
        words.append(arr.astype(np.uint64))
    return _threefry_rounds(*np.broadcast_arrays(*words))


def sampler_draws(key, call_index, start, count):
    """``X = x0 * 2**32 + x1`` of draws ``start .. start+count-1`` of one sampler call.

    ``key``: ``(key0, key1)``; draw ``i`` of call ``call_index`` is the counter
    ``(call_index, i)``. Returns a list of Python ints in ``[0, 2**64)``.
    """
    key0, key1 = (_word(k, "key") for k in key)
    call_index = _word(call_index, "call_index")
    if start < 0 or start + count > 2**32:
        raise ValueError(f"draws [{start}, {start + count}) leave the 32-bit draw counter")
    draws = np.arange(start, start + count, dtype=np.uint64)
    x0, x1 = threefry2x32_array(key0, key1, call_index, draws)
    return [(a << 32) | b for a, b in zip(x0.tolist(), x1.tolist())]


def _draw_stream(key, call_index):
    """``X`` of draws 0, 1, 2, ... of one sampler call, lazily, in growing blocks."""
    start, block = 0, 256
    while start < 2**32:
        count = min(block, 2**32 - start)
        yield from sampler_draws(key, call_index, start, count)
        start += count
        block = min(2 * block, 2**16)


def cdf_threshold_ints(cdf):
    """64-bit fixed-point thresholds ``rint(clip(cdf, 0, 1) * 2**64)`` of float64 CDF values.

    Python ints; values that reach ``2**64`` (which no draw can reach) are dropped. A draw ``X``
    falls in class ``k`` = the number of thresholds ``<= X``.
    """
    scaled = np.rint(np.clip(np.asarray(cdf, dtype=np.float64), 0.0, 1.0) * 2.0**64)
    thresholds = [int(v) for v in scaled.tolist() if v < 2.0**64]
    if any(b < a for a, b in zip(thresholds, thresholds[1:])):
        raise ValueError("cdf: expected non-decreasing values")
    return thresholds


def fixed_unigram_weights_float32(unigrams, distortion=1.0, num_reserved_ids=0, num_shards=1,
                                  shard=0):
    """The fixed-unigram weights ``wv`` in float32, as TensorFlow holds them (section 5.5).

    Reserved ids of this shard get 0 (no power applied); every kept unigram (entries whose
    running id, starting at the number of this shard's reserved ids, is ``shard`` mod
    ``num_shards``) becomes ``float32(value) ** float32(distortion)`` in float32.
    """
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"shard: expected 0 <= shard < num_shards={num_shards}, got {shard}")
    reserved = sum(1 for rid in range(num_reserved_ids) if rid % num_shards == shard)
    kept = [v for j, v in enumerate(unigrams) if (reserved + j) % num_shards == shard]
    values = np.asarray(kept, dtype=np.float64).astype(np.float32)
    if np.any(~np.isfinite(values) | (values < 0)):
        raise ValueError(f"unigrams: expected finite values >= 0, got {list(unigrams)!r}")
    powered = np.power(values, np.float32(distortion), dtype=np.float32)
    return np.concatenate([np.zeros(reserved, dtype=np.float32), powered])


def _uniform_parts(range_max):
    """Uniform: class ``(X * R) >> 64`` (``floor(u * R)``); ``P = float32(1/R)``."""
    p = np.float32(1.0 / range_max)
    return (lambda x: (x * range_max) >> 64), (lambda k: np.full(k.shape, p)), range_max


def _log_uniform_parts(range_max):
    """Log-uniform: the number of thresholds ``t_k <= X``, ``t_k`` of ``log(k+2) / log1p(R)``
    for ``k = 0 .. R-2``; ``P`` as :func:`log_uniform_prob`."""
    k = np.arange(range_max - 1, dtype=np.float64)
    thresholds = cdf_threshold_ints(np.log(k + 2.0) / np.log1p(float(range_max)))

    def prob(classes):
        return log_uniform_prob(classes, range_max).astype(np.float32)

    return (lambda x: bisect.bisect_right(thresholds, x)), prob, range_max


def _fixed_unigram_parts(range_max, unigrams, **weight_args):
    """Fixed unigram: the number of thresholds ``<= X`` of ``cumsum(float64(w)) / sum`` less
    its last entry; ``P = float32(w[k] / total)`` with TensorFlow's running float32 total."""
    w = fixed_unigram_weights_float32(unigrams, **weight_args)
    if w.shape[0] != range_max:
        raise ValueError(f"range_max: expected the weight count {w.shape[0]}, got {range_max}")
    total = np.float32(0.0)
    for v in w:
        total = np.float32(total + v)
    if not (np.isfinite(total) and total > 0):
        raise ValueError(f"unigrams: expected a positive finite total weight, got {total}")
    cum = np.cumsum(w.astype(np.float64))
    thresholds = cdf_threshold_ints(cum[:-1] / cum[-1])
    p = (w / total).astype(np.float32)
    support = int(np.count_nonzero(w))
    return (lambda x: bisect.bisect_right(thresholds, x)), (lambda k: p[k]), support


def _learned_unigram_parts(range_max, counts=None):
    """Learned unigram: the first ``k`` with ``cumsum(counts)[k] > (X * total) >> 64`` (a
    uniform integer in ``[0, total)``); ``P = float32(count[k]) / float32(total)``."""
    counts = [1] * range_max if counts is None else [int(c) for c in counts]
    if len(counts) != range_max or min(counts) < 1:
        raise ValueError(f"counts: expected {range_max} ints >= 1, got {counts!r}")
    cum = list(itertools.accumulate(counts))
    total = cum[-1]
    p = np.asarray(counts, dtype=np.float32) / np.float32(total)
    return (lambda x: bisect.bisect_right(cum, (x * total) >> 64)), (lambda k: p[k]), range_max


_SAMPLER_PARTS = {
    "uniform": (_uniform_parts, ()),
    "log_uniform": (_log_uniform_parts, ()),
    "fixed_unigram": (_fixed_unigram_parts,
                      ("unigrams", "distortion", "num_reserved_ids", "num_shards", "shard")),
    "learned_unigram": (_learned_unigram_parts, ("counts",)),
}


def _sampler_parts(kind, range_max, dist_args):
    """``(draw_to_class, prob, support)`` of sampler ``kind`` over ``[0, range_max)``.

    ``draw_to_class(X)`` is the class of a 64-bit draw; ``prob(classes)`` the float32 ``P(k)``
    of an int64 array of classes (the expected counts' ``P``); ``support`` the number of
    classes with ``P > 0``.
    """
    if kind not in _SAMPLER_PARTS:
        raise ValueError(f"kind: expected one of {sorted(_SAMPLER_PARTS)}, got {kind!r}")
    build, allowed = _SAMPLER_PARTS[kind]
    unknown = sorted(set(dist_args) - set(allowed))
    if unknown:
        raise ValueError(f"{kind}: unexpected arguments {unknown}; expected {list(allowed)}")
    if kind == "fixed_unigram" and "unigrams" not in dist_args:
        raise ValueError("fixed_unigram: expected the argument unigrams")
    if range_max < 1:
        raise ValueError(f"range_max: expected >= 1, got {range_max}")
    return build(range_max, **dist_args)


def reference_probabilities(kind, classes, range_max, **dist_args):
    """The float32 ``P(k)`` of ``classes`` under sampler ``kind`` (float64 values of float32s).

    ``kind``: "uniform" (``1/R``), "log_uniform" (``ln((k+2)/(k+1)) / log1p(R)`` in float64),
    "fixed_unigram" (``w[k] / total``, ``total`` summed in float32 in order; ``dist_args``
    ``unigrams``, ``distortion``, ``num_reserved_ids``, ``num_shards``, ``shard``) or
    "learned_unigram" (``float32(count[k]) / float32(sum(counts))``; ``dist_args`` ``counts``,
    all ones by default).
    """
    _, prob, _ = _sampler_parts(kind, range_max, dist_args)
    k = _i64(classes, "classes")
    if np.any((k < 0) | (k >= range_max)):
        raise ValueError(f"classes: expected ids in [0, {range_max}), got {classes!r}")
    return prob(k).astype(np.float64)


def reference_candidates(kind, key, call_index, num_sampled, unique, range_max, **dist_args):
    """``(candidates int64 [S], num_tries)`` of one sampler call (section 5.3).

    Draw ``i`` of the call is :func:`sampler_draws` ``(key, call_index, i)``; its class is
    ``(X * R) >> 64`` (uniform), the number of CDF thresholds ``<= X`` (log-uniform, fixed
    unigram; thresholds of the CDF without its last entry, :func:`cdf_threshold_ints`), or the
    first ``k`` with ``cumsum(counts)[k] > (X * sum(counts)) >> 64`` (learned unigram).
    ``unique=False``: the classes of draws ``0 .. S-1``, ``num_tries = S``. ``unique=True``:
    TensorFlow's loop, keeping a draw's class iff it is new, until ``S`` are kept, in order of
    first draw; ``num_tries`` counts every draw up to the one that completed the set.
    ``dist_args`` as in :func:`reference_probabilities`.
    """
    to_class, _, support = _sampler_parts(kind, range_max, dist_args)
    if num_sampled < 1:
        raise ValueError(f"num_sampled: expected >= 1, got {num_sampled}")
    if not unique:
        draws = sampler_draws(key, call_index, 0, num_sampled)
        return np.asarray([to_class(x) for x in draws], dtype=np.int64), num_sampled
    if num_sampled > support:
        raise ValueError(
            f"num_sampled: unique sampling needs {num_sampled} classes with P > 0, "
            f"got {support}"
        )
    kept, seen = [], set()
    for num_tries, x in enumerate(_draw_stream(key, call_index), start=1):
        k = to_class(x)
        if k not in seen:
            seen.add(k)
            kept.append(k)
            if len(kept) == num_sampled:
                return np.asarray(kept, dtype=np.int64), num_tries
    raise ValueError(f"unique sampling found {len(kept)} of {num_sampled} classes in 2**32 draws")


def reference_expected_counts(kind, classes, num_sampled, num_tries, range_max, **dist_args):
    """TensorFlow's expected counts of ``classes`` for a call with ``num_tries`` (section 5.4).

    :func:`expected_count` of :func:`reference_probabilities`: ``S * P`` when
    ``num_tries == S``, else ``-expm1(num_tries * log1p(-P))``, in float32. Returns float64
    values of float32 numbers, shape of ``classes``.
    """
    p = reference_probabilities(kind, classes, range_max, **dist_args)
    return expected_count(p, num_tries, num_sampled)
