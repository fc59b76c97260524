"""Paddle's sampled softmax (section 10) and the full-softmax oracle."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import numpy.typing as npt

from ._common import (
    PADDLE_CLAMP,
    PADDLE_MASK,
    PADDLE_SHIFTED_LOGIT_FLOOR,
    _f64,
    _i64,
    _logsumexp,
    _shards_of,
    _softmax,
    _upstream_vector,
)
from ._distributions import paddle_log_uniform_prob


def paddle_adjust_prob(p: npt.ArrayLike, num_samples: int, num_tries: int,
                       dtype: str = "float32") -> np.ndarray:
    """Paddle's ``adjust_prob`` in the logits dtype (same formula as section 5.4).

    Args:
        p: Probabilities of the samples.
        num_samples: ``S``, the number of negatives.
        num_tries: The draws Paddle's sampler consumed.
        dtype: The logits' dtype, ``"float32"`` or ``"float64"``.

    Returns:
        The adjusted probabilities, float64 values of ``dtype`` numbers.

    Raises:
        ValueError: Another ``dtype``.
    """
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


def paddle_samples(label: npt.ArrayLike, negatives: npt.ArrayLike, num_tries: int,
                   range_max: int, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Paddle's non-customized ``Samples`` and ``Probabilities`` (section 10.3 step 1).

    Row ``i`` is ``label[i, :]`` followed by the shared ``negatives``; every entry's probability
    is Paddle's log-uniform ``P`` (float32), converted to ``dtype`` and adjusted with
    ``num_samples = len(negatives)``. Returns ``(samples int64 [N, T+S], probabilities
    float64 [N, T+S])``, the latter holding values of ``dtype``.

    Args:
        label: ``[N, T]`` integer labels.
        negatives: ``[S]`` integer negatives shared by the rows.
        num_tries: The draws Paddle's sampler consumed.
        range_max: ``K``, the number of classes.
        dtype: The logits' dtype, ``"float32"`` or ``"float64"``.

    Returns:
        ``(samples, probabilities)``.

    Raises:
        ValueError: ``label`` not 2-D or ``negatives`` not 1-D (or either not integer), ids
            below 0, ``range_max < 1``, or another ``dtype``.
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


def paddle_sampled_logits(logits: npt.ArrayLike, label: npt.ArrayLike, samples: npt.ArrayLike,
                          probabilities: npt.ArrayLike, *,
                          remove_accidental_hits: bool = True) -> np.ndarray:
    """Paddle's ``SampledLogits`` (section 10.3 steps 2-4), ``[N, T+S]``.

    Args:
        logits: ``[N, K]`` full logits.
        label: ``[N, T]`` integer labels (their shape gives ``T``).
        samples: ``[N, T+S]`` integer samples in ``[0, K)``, the labels first.
        probabilities: ``[N, T+S]`` probabilities of the samples.
        remove_accidental_hits: Whether sampled columns equal to a true sample lose ``1e20``.

    Returns:
        The float64 sampled logits, clamped as Paddle clamps them.

    Raises:
        ValueError: Shapes that do not fit, samples outside ``[0, K)``, or arguments that are
            not real (integer) arrays.
    """
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


def paddle_sampled_softmax(logits: npt.ArrayLike, label: npt.ArrayLike,
                           samples: npt.ArrayLike, probabilities: npt.ArrayLike, *,
                           remove_accidental_hits: bool = True) -> np.ndarray:
    """Paddle's ``sampled_softmax_with_cross_entropy`` with given samples, ``[N, 1]``.

    Cross entropy on the -64-clipped, max-shifted logits (section 10.3a). For ``T > 1`` (where
    Paddle's own layer fails, section 10.5) every true column carries ``1/T``: the loss is the
    mean over the true columns of ``-log softmax``.

    Args:
        logits: ``[N, K]`` full logits.
        label: ``[N, T]`` integer labels.
        samples: ``[N, T+S]`` integer samples, the labels first.
        probabilities: ``[N, T+S]`` probabilities of the samples.
        remove_accidental_hits: Whether hits are masked.

    Returns:
        The float64 loss ``[N, 1]``.

    Raises:
        ValueError: As :func:`paddle_sampled_logits`.
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
    logits: npt.ArrayLike, label: npt.ArrayLike, samples: npt.ArrayLike,
    probabilities: npt.ArrayLike, *, remove_accidental_hits: bool = True,
    upstream: Optional[npt.ArrayLike] = None,
) -> np.ndarray:
    """d ``sum(upstream * loss)`` / d ``logits`` ``[N, K]``: scatter-add of ``softmax - y``.

    The softmax is that of the clipped logits; neither the clip, the mask nor the clamps are
    differentiated (section 11).

    Args:
        logits: ``[N, K]`` full logits.
        label: ``[N, T]`` integer labels.
        samples: ``[N, T+S]`` integer samples, the labels first.
        probabilities: ``[N, T+S]`` probabilities of the samples.
        remove_accidental_hits: Whether hits are masked.
        upstream: ``[N]`` weights of the rows' losses; None: ones.

    Returns:
        The float64 gradient ``[N, K]``.

    Raises:
        ValueError: As :func:`paddle_sampled_logits`, or ``upstream`` not of ``N`` values.
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


def full_softmax_cross_entropy(weights: npt.ArrayLike, biases: npt.ArrayLike,
                               labels_1col: npt.ArrayLike, inputs: npt.ArrayLike) -> np.ndarray:
    """Full softmax cross entropy over all classes, ``[B]`` (a shard list is concatenated).

    Args:
        weights: ``[C, D]``, or a Python list of shards in "div" order.
        biases: ``[C]``, or a list of shards.
        labels_1col: ``[B]`` or ``[B, 1]`` integer labels.
        inputs: ``[B, D]`` inputs.

    Returns:
        The float64 loss of each row, ``[B]``.

    Raises:
        ValueError: An empty shard list, or arguments that are not real (integer) arrays.
    """
    w = np.concatenate(_shards_of(weights, "weights"), axis=0)
    b = np.concatenate(_shards_of(biases, "biases"), axis=0)
    labels = _i64(labels_1col, "labels_1col").reshape(-1)
    inputs = _f64(inputs, "inputs")
    loss = np.zeros(inputs.shape[0])
    for i in range(inputs.shape[0]):
        row = np.array([float(np.dot(inputs[i], w[c])) + b[c] for c in range(w.shape[0])])
        loss[i] = _logsumexp(row) - row[labels[i]]
    return loss
