"""The TensorFlow loss math on gathered rows, written once on the Array API (SEMANTICS 2, 3, 9).

Every function takes the namespace ``xp`` and arrays, and a ``stop_gradient`` where a constant
must carry no gradient; none reads the registry, a device or a value on the host, so backends
and front ends reuse them as they are (:mod:`multisampled.kernels`).

For a batch ``x [B, D]`` with labels ``y [B, T]`` and shared sampled candidates ``s [S]``:

* true logits ``x_i . w_{y[i,t]} + b_{y[i,t]} - ln Qtrue[i, t]``, one column per label;
* sampled logits ``x_i . w_{s_j} + b_{s_j} - ln Qs[j]``, plus ``-FLT_MAX`` at the accidental
  hits (the LAST copy of a candidate equal to one of the row's labels, SEMANTICS 4);
* soft labels ``1/T`` on the true columns, 0 on the sampled ones;
* ``sampled_softmax_loss = lse(logits) - mean_t true_logits`` (soft-label cross entropy);
* ``nce_loss`` = the sigmoid cross entropy of the same logits, targets ``1/T`` and 0.

Logits and losses are computed in float32 for float16/bfloat16 inputs and in the inputs' own
dtype for float32/float64 (:func:`compute_dtype`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ._types import Array

FLT_MAX = 3.4028234663852886e38  # the largest finite float32; TF's mask weight is -FLT_MAX


def _identity(x: Any) -> Any:
    return x


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """float64 stays float64; every other floating dtype computes in float32.

    Args:
        xp: The Array API namespace of ``dtype``.
        dtype: A floating dtype of ``xp``.

    Returns:
        ``xp.float64`` for float64, else ``xp.float32``.
    """
    return xp.float64 if dtype == xp.float64 else xp.float32


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def sampled_logit_parts(
    xp: Any,
    x: Array,
    true_w: Array,
    true_b: Array,
    sampled_w: Array,
    sampled_b: Array,
    log_q_true: Optional[Array],
    log_q_sampled: Optional[Array],
    hits: Optional[Array],
    num_true: int,
    stop_gradient: Callable[[Array], Array] = _identity,
) -> tuple[Array, Array]:
    """``(true_logits [B, T], sampled_logits [B, S])`` in the compute dtype (SEMANTICS 3).

    ``x [B, D]``; ``true_w [B*T, D]`` and ``true_b [B*T]`` the rows of the labels (row-major);
    ``sampled_w [S, D]``, ``sampled_b [S]`` the candidates' rows; ``log_q_true`` (broadcasting to
    ``[B, T]``) and ``log_q_sampled`` (to ``[S]``) the logs of the expected counts, or None when
    log Q is not subtracted; ``hits`` a bool ``[B, S]`` accidental-hit mask or None. Rows may
    come from any gather; gradients flow into them and ``x``.

    Args:
        xp: The Array API namespace of the arrays.
        x: ``[B, D]`` floating inputs.
        true_w: ``[B*T, D]`` the labels' weight rows (row-major).
        true_b: ``[B*T]`` the labels' biases.
        sampled_w: ``[S, D]`` the candidates' weight rows.
        sampled_b: ``[S]`` the candidates' biases.
        log_q_true: The log expected counts of the labels (broadcasting to ``[B, T]``), or None
            when log Q is not subtracted.
        log_q_sampled: The log expected counts of the candidates (broadcasting to ``[S]``);
            read only when ``log_q_true`` is not None.
        hits: A bool ``[B, S]`` accidental-hit mask (``-FLT_MAX`` is added there), or None.
        num_true: ``T``, the labels per example.
        stop_gradient: The backend's stop-gradient (the identity where nothing is
            differentiated); applied to constants that must carry no gradient.

    Returns:
        ``(true_logits [B, T], sampled_logits [B, S])`` in :func:`compute_dtype` of ``x``.
    """
    cdtype = compute_dtype(xp, x.dtype)
    x = cast(xp, x, cdtype)
    dim = x.shape[1]
    true_w = xp.reshape(cast(xp, true_w, cdtype), (-1, num_true, dim))
    true_b = xp.reshape(cast(xp, true_b, cdtype), (-1, num_true))
    sampled_b = cast(xp, sampled_b, cdtype)
    # row-wise dot products x_i . w_{y[i,t]} + b_{y[i,t]}: [B, T]
    true_logits = xp.sum(x[:, None, :] * true_w, axis=-1) + true_b
    if log_q_true is not None:
        true_logits = true_logits - cast(xp, log_q_true, cdtype)
        # the sampled columns' log Q is per column: fold it into the [S] bias vector, so the
        # [B, S] logits take one broadcast add (TF adds the mask first, then subtracts log Q;
        # at a masked entry both orders give -FLT_MAX, as the magnitudes differ by > 2**24)
        sampled_b = sampled_b - cast(xp, log_q_sampled, cdtype)
    # shared negatives: x @ W_s^T + b_s: [B, S]
    sampled_logits = xp.matmul(x, xp.matrix_transpose(cast(xp, sampled_w, cdtype))) + sampled_b
    if hits is not None:
        # TF adds a dense constant holding -FLT_MAX at the hits (a repeated hit is assigned
        # once); the result stays finite in float32/float64 and has no backward of its own
        # (a miss adds -0.0, which leaves every logit as it is)
        mask = xp.astype(hits, sampled_logits.dtype) * -FLT_MAX
        sampled_logits = sampled_logits + stop_gradient(mask)
    return true_logits, sampled_logits


def logsumexp(xp: Any, z: Array, stop_gradient: Callable[[Array], Array] = _identity) -> Array:
    """log sum exp over the last axis of a 2-D array, max-shifted (the shift carries no
    gradient: its derivative cancels exactly).

    Args:
        xp: The Array API namespace of ``z``.
        z: ``[B, N]`` floating values (N >= 1).
        stop_gradient: The backend's stop-gradient, applied to the shift.

    Returns:
        ``[B]``: ``log(sum(exp(z), axis=1))``, in the dtype of ``z``.
    """
    m = stop_gradient(xp.max(z, axis=1, keepdims=True))
    return xp.log(xp.sum(xp.exp(z - m), axis=1)) + m[:, 0]


def softmax_cross_entropy(xp: Any, true_logits: Array, sampled_logits: Array,
                          stop_gradient: Callable[[Array], Array] = _identity) -> Array:
    """The soft-label cross entropy ``[B]`` of ``concat([true_logits, sampled_logits], 1)``
    with ``1/T`` on the ``T`` true columns: ``lse(z) - mean_t true_logits`` (``=
    -sum(y * log_softmax(z))``), without the concatenation.

    Args:
        xp: The Array API namespace of the logits.
        true_logits: ``[B, T]`` the true columns' logits.
        sampled_logits: ``[B, S]`` the sampled columns' logits, of the same dtype.
        stop_gradient: The backend's stop-gradient, applied to the max shifts.

    Returns:
        ``[B]``: the per-example loss, in the logits' dtype.
    """
    num_true = true_logits.shape[1]
    lse = xp.logaddexp(logsumexp(xp, true_logits, stop_gradient),
                       logsumexp(xp, sampled_logits, stop_gradient))
    return lse - xp.sum(true_logits, axis=1) / num_true


def sigmoid_terms(xp: Any, z: Array, target: float, keep: Optional[Array] = None) -> Array:
    """Row sums of TF's stable ``max(z, 0) - z*y + log1p(exp(-|z|))`` for a constant target,
    over the entries where ``keep`` (a bool array broadcasting to ``z``; None: all) holds.

    Args:
        xp: The Array API namespace of ``z``.
        z: ``[B, N]`` floating logits.
        target: The constant target ``y`` of every entry.
        keep: A bool array broadcasting to ``z``: the entries summed; None: all of them.

    Returns:
        ``[B]``: the row sums of the sigmoid cross entropy terms, in the dtype of ``z``.
    """
    terms = xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))
    if target:
        terms = terms - z * target
    if keep is not None:
        terms = xp.where(keep, terms, xp.zeros_like(terms))
    return xp.sum(terms, axis=1)


def nce(xp: Any, true_logits: Array, sampled_logits: Array) -> Array:
    """TF's ``nce_loss`` ``[B]`` from the two logit parts: targets ``1/T`` and 0.

    Args:
        xp: The Array API namespace of the logits.
        true_logits: ``[B, T]`` the true columns' logits.
        sampled_logits: ``[B, S]`` the sampled columns' logits.

    Returns:
        ``[B]``: the per-example loss, in the logits' dtype.
    """
    num_true = true_logits.shape[1]
    return sigmoid_terms(xp, true_logits, 1.0 / num_true) + sigmoid_terms(xp, sampled_logits, 0.0)


def sampled_softmax(xp: Any, x: Array, true_w: Array, true_b: Array, sampled_w: Array,
                    sampled_b: Array, log_q_true: Optional[Array], log_q_sampled: Optional[Array],
                    hits: Optional[Array], num_true: int,
                    stop_gradient: Callable[[Array], Array] = _identity) -> Array:
    """TF's ``sampled_softmax_loss`` ``[B]`` (compute dtype) on gathered rows: the portable
    definition behind :meth:`Backend.sampled_softmax`.

    Args:
        xp: The Array API namespace of the arrays.
        x: ``[B, D]`` floating inputs.
        true_w: ``[B*T, D]`` the labels' weight rows (row-major).
        true_b: ``[B*T]`` the labels' biases.
        sampled_w: ``[S, D]`` the candidates' weight rows.
        sampled_b: ``[S]`` the candidates' biases.
        log_q_true: The log expected counts of the labels (broadcasting to ``[B, T]``), or None
            when log Q is not subtracted.
        log_q_sampled: The log expected counts of the candidates (broadcasting to ``[S]``).
        hits: A bool ``[B, S]`` accidental-hit mask, or None.
        num_true: ``T``, the labels per example.
        stop_gradient: The backend's stop-gradient (the identity where nothing is
            differentiated); applied to constants that must carry no gradient.

    Returns:
        ``[B]``: the per-example loss, in :func:`compute_dtype` of ``x``.
    """
    true_logits, sampled_logits = sampled_logit_parts(
        xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits, num_true,
        stop_gradient)
    return softmax_cross_entropy(xp, true_logits, sampled_logits, stop_gradient)
