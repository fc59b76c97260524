"""TF's sampled logits and losses (sections 2, 3, 9), their gradients (section 11) and
rank_sampled_softmax_loss (section 7)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import numpy.typing as npt

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
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    *,
    subtract_log_q: bool = True,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
) -> tuple[np.ndarray, np.ndarray]:
    """TF's ``_compute_sampled_logits`` (section 3): ``(logits [B, T+S], labels [B, T+S])``.

    Args:
        weights: ``[C, D]``, or a Python list of shards in the ``partition_strategy`` layout.
        biases: ``[C]``, or a list of shards.
        labels: ``[B, T]`` integer labels.
        inputs: ``[B, D]`` inputs.
        sampled_values: ``(candidates [S], true_expected_count, sampled_expected_count)``, the
            counts broadcasting to ``[B, T]`` and ``[S]``.
        subtract_log_q: Whether ``ln Q`` is subtracted.
        remove_accidental_hits: Whether sampled columns equal to a row's label get ``-FLT_MAX``.
        partition_strategy: ``"div"`` or ``"mod"`` (ignored for one shard).

    Returns:
        ``(logits, labels)``, float64.

    Raises:
        ValueError: Shapes that do not fit (``labels`` not 2-D, ``inputs`` not ``[B, D]``,
            ``sampled_values`` not a triple, candidates not 1-D, weights of another width),
            non-integer ids or non-real arrays, an empty shard list, an unknown
            ``partition_strategy`` with several shards, or an id outside the table.
    """
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


def _tf_logits(weights, biases, labels, inputs, sampled_values, remove_accidental_hits,
               partition_strategy):
    """The losses' logits and targets: :func:`sampled_logits` with ``subtract_log_q``."""
    return sampled_logits(weights, biases, labels, inputs, sampled_values, subtract_log_q=True,
                          remove_accidental_hits=remove_accidental_hits,
                          partition_strategy=partition_strategy)


def sampled_softmax_loss(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    *,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
) -> np.ndarray:
    """TF's ``sampled_softmax_loss`` (section 2.3): soft-label softmax cross entropy, ``[B]``.

    Args:
        weights: As for :func:`sampled_logits`.
        biases: As for :func:`sampled_logits`.
        labels: As for :func:`sampled_logits`.
        inputs: As for :func:`sampled_logits`.
        sampled_values: As for :func:`sampled_logits`.
        remove_accidental_hits: As for :func:`sampled_logits` (True by default here).
        partition_strategy: As for :func:`sampled_logits`.

    Returns:
        The float64 loss of each example, ``[B]``.

    Raises:
        ValueError: As :func:`sampled_logits`.
    """
    logits, soft_labels = _tf_logits(weights, biases, labels, inputs, sampled_values,
                                     remove_accidental_hits, partition_strategy)
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
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    *,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
) -> np.ndarray:
    """TF's ``nce_loss`` (section 9): summed sigmoid cross entropy over ``T+S`` columns, ``[B]``.

    Args:
        weights: As for :func:`sampled_logits`.
        biases: As for :func:`sampled_logits`.
        labels: As for :func:`sampled_logits`.
        inputs: As for :func:`sampled_logits`.
        sampled_values: As for :func:`sampled_logits`.
        remove_accidental_hits: As for :func:`sampled_logits` (False by default, as in TF).
        partition_strategy: As for :func:`sampled_logits`.

    Returns:
        The float64 loss of each example, ``[B]``.

    Raises:
        ValueError: As :func:`sampled_logits`.
    """
    logits, targets = _tf_logits(weights, biases, labels, inputs, sampled_values,
                                 remove_accidental_hits, partition_strategy)
    loss = np.zeros(logits.shape[0])
    for i in range(logits.shape[0]):
        loss[i] = sum(
            _sigmoid_xent(float(logits[i, c]), float(targets[i, c]))
            for c in range(logits.shape[1])
        )
    return loss


def _logit_grad_to_params(
    weights, biases, labels, inputs, sampled_values, d_logits, partition_strategy
):
    """Backpropagate ``d loss / d logits`` ([B, T+S]) through section 3 steps 4-7 (section 11)."""
    candidates = _i64(sampled_values[0], "sampled_values[0]")
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
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    *,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
    upstream: Optional[npt.ArrayLike] = None,
) -> dict:
    """Analytic gradient of ``sum(upstream * sampled_softmax_loss(...))``.

    Returns ``{"weights", "biases", "inputs"}``; a shard list gets a list of per-shard
    gradients. Sampled values and labels carry no gradient; masked columns get 0.

    Args:
        weights: As for :func:`sampled_softmax_loss`.
        biases: As for :func:`sampled_softmax_loss`.
        labels: As for :func:`sampled_softmax_loss`.
        inputs: As for :func:`sampled_softmax_loss`.
        sampled_values: As for :func:`sampled_softmax_loss`.
        remove_accidental_hits: As for :func:`sampled_softmax_loss`.
        partition_strategy: As for :func:`sampled_softmax_loss`.
        upstream: ``[B]`` weights of the examples' losses; None: ones.

    Returns:
        The float64 gradients by name.

    Raises:
        ValueError: As :func:`sampled_logits`; ``upstream`` not of ``B`` values.
    """
    logits, soft_labels = _tf_logits(weights, biases, labels, inputs, sampled_values,
                                     remove_accidental_hits, partition_strategy)
    up = _upstream_vector(upstream, logits.shape[0])
    d_logits = np.zeros_like(logits)
    for i in range(logits.shape[0]):
        d_logits[i] = up[i] * (_softmax(logits[i]) - soft_labels[i])
    return _logit_grad_to_params(
        weights, biases, labels, inputs, sampled_values, d_logits, partition_strategy
    )


def nce_loss_grad(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    *,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
    upstream: Optional[npt.ArrayLike] = None,
) -> dict:
    """Analytic gradient of ``sum(upstream * nce_loss(...))``: ``d/dz = sigmoid(z) - y``.

    Args:
        weights: As for :func:`nce_loss`.
        biases: As for :func:`nce_loss`.
        labels: As for :func:`nce_loss`.
        inputs: As for :func:`nce_loss`.
        sampled_values: As for :func:`nce_loss`.
        remove_accidental_hits: As for :func:`nce_loss`.
        partition_strategy: As for :func:`nce_loss`.
        upstream: ``[B]`` weights of the examples' losses; None: ones.

    Returns:
        ``{"weights", "biases", "inputs"}``: the float64 gradients (a list per shard list).

    Raises:
        ValueError: As :func:`sampled_logits`; ``upstream`` not of ``B`` values.
    """
    logits, targets = _tf_logits(weights, biases, labels, inputs, sampled_values,
                                 remove_accidental_hits, partition_strategy)
    up = _upstream_vector(upstream, logits.shape[0])
    d_logits = np.zeros_like(logits)
    for i in range(logits.shape[0]):
        for c in range(logits.shape[1]):
            d_logits[i, c] = up[i] * (_sigmoid(float(logits[i, c])) - targets[i, c])
    return _logit_grad_to_params(
        weights, biases, labels, inputs, sampled_values, d_logits, partition_strategy
    )


# --------------------------------------------------------------------------------------------
# rank_sampled_softmax_loss (section 7)


def rank_resample(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    num_resampled: int,
    resampling_temperature: float,
    partition_strategy: str = "div",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's ``_rank_resample``: keep the ``num_resampled`` highest-scoring candidates.

    ``r(c) = lse_j(w_c . x_j / tau) + b_c / tau`` over the batch rows ``j``. The kept candidates
    come in decreasing score order, ties toward the lower position. ``true_expected_count`` is
    passed through; the sampled expected counts follow their candidates.

    Args:
        weights: As for :func:`sampled_logits`.
        biases: As for :func:`sampled_logits`.
        inputs: As for :func:`sampled_logits`.
        sampled_values: As for :func:`sampled_logits`.
        num_resampled: How many candidates to keep, ``0 < num_resampled < S``.
        resampling_temperature: ``tau``.
        partition_strategy: ``"div"`` or ``"mod"`` (ignored for one shard).

    Returns:
        ``(candidates, true_expected_count, sampled_expected_count)`` of the kept candidates.

    Raises:
        ValueError: ``num_resampled`` not in ``(0, S)``, non-integer candidates, non-real arrays,
            or a candidate outside the table.
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


def _rank_resampled(weights, biases, inputs, sampled_values, num_resampled,
                    resampling_temperature, partition_strategy):
    """The rank losses' first step: their argument checks, then :func:`rank_resample`."""
    num_sampled = np.asarray(sampled_values[0]).shape[0]
    if num_sampled <= num_resampled:
        raise ValueError(
            f"num_resampled: expected less than num_sampled ({num_sampled}), got {num_resampled}"
        )
    if partition_strategy not in ("div", "mod"):
        raise ValueError(
            f"partition_strategy: expected 'div' or 'mod', got {partition_strategy!r}"
        )
    return rank_resample(weights, biases, inputs, sampled_values, num_resampled,
                         resampling_temperature, partition_strategy)


def rank_sampled_softmax_loss(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    num_resampled: int,
    *,
    resampling_temperature: float = 1.0,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
) -> np.ndarray:
    """TF contrib ``rank_sampled_softmax_loss`` (section 7) with given first-phase values.

    Args:
        weights: As for :func:`sampled_logits`.
        biases: As for :func:`sampled_logits`.
        labels: As for :func:`sampled_logits`.
        inputs: As for :func:`sampled_logits`.
        sampled_values: As for :func:`sampled_logits`.
        num_resampled: How many first-phase candidates to keep (fewer than ``S``).
        resampling_temperature: ``tau`` of the scores.
        remove_accidental_hits: Whether kept candidates equal to a row's label are masked.
        partition_strategy: ``"div"`` or ``"mod"`` (checked even for one shard).

    Returns:
        The float64 loss of each example, ``[B]``.

    Raises:
        ValueError: ``num_resampled >= S`` or not above 0, an unknown ``partition_strategy``, or as
            :func:`sampled_softmax_loss`.
    """
    resampled = _rank_resampled(weights, biases, inputs, sampled_values, num_resampled,
                                resampling_temperature, partition_strategy)
    return sampled_softmax_loss(
        weights, biases, labels, inputs, resampled,
        remove_accidental_hits=remove_accidental_hits, partition_strategy=partition_strategy,
    )


def rank_sampled_softmax_loss_grad(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    sampled_values: Sequence[npt.ArrayLike],
    num_resampled: int,
    *,
    resampling_temperature: float = 1.0,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
    upstream: Optional[npt.ArrayLike] = None,
) -> dict:
    """Gradient of ``sum(upstream * rank_sampled_softmax_loss(...))``; scores carry none.

    Args:
        weights: As for :func:`rank_sampled_softmax_loss`.
        biases: As for :func:`rank_sampled_softmax_loss`.
        labels: As for :func:`rank_sampled_softmax_loss`.
        inputs: As for :func:`rank_sampled_softmax_loss`.
        sampled_values: As for :func:`rank_sampled_softmax_loss`.
        num_resampled: As for :func:`rank_sampled_softmax_loss`.
        resampling_temperature: As for :func:`rank_sampled_softmax_loss`.
        remove_accidental_hits: As for :func:`rank_sampled_softmax_loss`.
        partition_strategy: As for :func:`rank_sampled_softmax_loss`.
        upstream: ``[B]`` weights of the examples' losses; None: ones.

    Returns:
        ``{"weights", "biases", "inputs"}``: the float64 gradients.

    Raises:
        ValueError: As :func:`rank_sampled_softmax_loss`; ``upstream`` not of ``B`` values.
    """
    resampled = _rank_resampled(weights, biases, inputs, sampled_values, num_resampled,
                                resampling_temperature, partition_strategy)
    return sampled_softmax_loss_grad(
        weights, biases, labels, inputs, resampled,
        remove_accidental_hits=remove_accidental_hits, partition_strategy=partition_strategy,
        upstream=upstream,
    )
