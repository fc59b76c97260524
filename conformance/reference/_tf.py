"""TF's sampled logits and losses (sections 2, 3, 9), their gradients (section 11) and
rank_sampled_softmax_loss (section 7)."""

from __future__ import annotations

import math

import numpy as np

from ._common import FLT_MAX, _f64, _i64, _logsumexp, _shards_of, _softmax, _upstream_vector
from ._distributions import _scatter_add, accidental_hits, embedding_lookup


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
