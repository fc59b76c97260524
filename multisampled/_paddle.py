"""PaddlePaddle's ``sampled_softmax_with_cross_entropy`` (SEMANTICS 10) on any Array API backend.

Paddle works on full logits ``[N, K]``: it picks the columns of the row's labels and of the
sampled negatives, masks accidental hits (every match, by subtracting 1e20), subtracts the
clamped ``ln Q`` and takes its own soft-label cross entropy, which clips the max-shifted logits
from below at -64.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from . import _distributions, _rng, _unique
from ._checks import (
    check_bool,
    check_floating,
    check_integer_ids,
    check_non_negative,
    check_non_negative_int,
    check_positive_int,
    check_rank,
    check_shape,
    check_value_range,
    keep_in_range,
    named_array,
)
from ._context import Ctx, context
from ._docs import fill
from ._guard import public
from ._hits import equal_any
from ._math import cast as _cast_xp, compute_dtype
from ._types import Array

PADDLE_MASK = 1e20  # Paddle subtracts this from accidental hits and clamps +-inf to +-it
PADDLE_CLIP = -64.0  # Paddle's softmax clips max-shifted logits from below at this value


def _cast(ctx: Ctx, x: Any, dtype: Any) -> Any:
    return _cast_xp(ctx.xp, x, dtype)


@public
@fill
def sampled_softmax_with_cross_entropy(
    logits: Array,
    label: Array,
    num_samples: int,
    num_true: int = 1,
    remove_accidental_hits: bool = True,
    use_customized_samples: bool = False,
    customized_samples: Optional[Array] = None,
    customized_probabilities: Optional[Array] = None,
    seed: int = 0,
    *,
    backend: Optional[str] = None,
) -> Array:
    """``paddle.fluid.layers.sampled_softmax_with_cross_entropy(logits, label, num_samples,
    num_true=1, remove_accidental_hits=True, use_customized_samples=False,
    customized_samples=None, customized_probabilities=None, seed=0)``, ``[N, 1]``.

    ``logits [N, K]`` are the full class scores; ``label [N, T]`` integer. Samples are ``[N,
    T+S]``: the row's labels, then ``S`` log-uniform negatives drawn without repetition over
    ``[0, K)`` and shared by all rows, with probabilities ``P(k) = ln((k+2)/(k+1)) /
    float32(log1p(K))`` turned into expected counts (``S*P`` when no draw was rejected, else
    ``1 - (1-P)^num_tries``). Sampled columns equal to one of the row's first ``T`` sample
    columns get ``1e20`` subtracted (every match), then ``clamp(ln Q)`` is subtracted and +-inf
    is clamped to +-1e20. The cross entropy is Paddle's: max-shifted logits are clipped from
    below at -64 (forward), and the gradient is ``softmax - soft_label`` of the clipped values.

    ``use_customized_samples=True`` uses ``customized_samples [N, T+S]`` (integer, in ``[0,
    K)``, may differ per row) and ``customized_probabilities [N, T+S]`` as given; ``label``
    values are then unused (only its shape). Customized probabilities must be >= 0 and not NaN
    (0 and +inf go through Paddle's clamp of ``ln`` to -/+1e20, as in Paddle; a negative or NaN
    value would give Paddle a NaN loss and is refused).

    ``seed``: nonzero repeats the same negatives on every call (Paddle re-seeds its sampler each
    time); 0 draws fresh negatives each call. Negatives are drawn on the arrays' device with
    the project's counter-based generator (not Paddle's ``mt19937_64`` stream).

    ``num_true > 1``: Paddle's layer cannot run it; here every true column carries ``1/T`` and
    the loss is the mean of ``-log softmax`` over the ``T`` true columns (TF's soft-label
    formula). Paddle's final ``/ num_true`` is NOT applied on top. ``num_true`` must equal
    ``label.shape[1]`` and ``num_samples <= K``. Only ``logits`` receives gradients. Half
    precision logits are computed in float32 (Paddle has float32/float64 kernels only).

    Args:
        logits: ``[N, K]`` floating scores of all ``K`` classes.
        label: ``[N, num_true]`` integer true classes, in ``[0, K)`` (only its shape is used with
            ``use_customized_samples=True``).
        num_samples: The number of negatives ``S`` (>= 1; at most ``K`` when they are drawn).
        num_true: The number of true classes per row, ``label.shape[1]`` (>= 1).
        remove_accidental_hits: Whether to subtract ``1e20`` from the sampled columns equal to one
            of the row's true sample columns.
        use_customized_samples: Whether to use ``customized_samples`` and
            ``customized_probabilities`` instead of drawing.
        customized_samples: ``[N, num_true + num_samples]`` integer class ids in ``[0, K)``, the
            row's true classes first (``use_customized_samples=True``).
        customized_probabilities: ``[N, num_true + num_samples]`` floating probabilities of those
            samples, >= 0 and not NaN.
        seed: An int >= 0: nonzero repeats the same negatives on every call, 0 draws fresh ones.
        backend: {backend}

    Returns:
        The loss of each row, ``[N, 1]``, in the logits' dtype and backend.

    Raises:
        TypeError: {bad_ints}; ``logits`` or ``customized_probabilities`` not floating, ``label``
            or ``customized_samples`` not of an integer dtype; {foreign_arrays}; negatives to be
            drawn while a compiler traces the call (``jax.jit``, ``tf.function``: pass customized
            samples).
        ValueError: ``num_samples`` or ``num_true`` below 1, ``seed`` negative or ``>= 2**64``;
            ``logits`` not ``[N, K]``, ``label`` not ``[N, num_true]``;
            ``use_customized_samples=True`` without both customized arrays, or with shapes other
            than ``[N, num_true + num_samples]``; ``num_samples > K`` for drawn negatives; an
            unknown ``backend``. {values_on_host} ids outside ``[0, K)`` and customized
            probabilities negative or NaN; {reported_elsewhere}.
        ImportError: {import_error}
        RuntimeError: {xla_value_check}.
    """
    ctx = context(logits, label, customized_samples, customized_probabilities, backend=backend)
    xp = ctx.xp
    num_samples = check_positive_int("num_samples", num_samples)
    num_true = check_positive_int("num_true", num_true)
    remove_accidental_hits = check_bool("remove_accidental_hits", remove_accidental_hits)
    use_customized_samples = check_bool("use_customized_samples", use_customized_samples)
    seed = check_non_negative_int("seed", seed)
    logits = named_array(ctx, "logits", logits)
    label = named_array(ctx, "label", label)
    check_floating(ctx, "logits", logits)
    check_rank("logits", logits, 2, "[N, K]")
    check_integer_ids(ctx, "label", label)
    check_rank("label", label, 2, "[N, num_true]")
    n, k = int(logits.shape[0]), int(logits.shape[1])
    if label.shape[1] != num_true:
        raise ValueError(
            f"num_true={num_true} must equal the number of label columns; label has shape "
            f"{list(label.shape)}"
        )
    check_shape("label", label, (n, num_true), "[N of logits, num_true]")
    cdtype = compute_dtype(xp, logits.dtype)
    if use_customized_samples:
        picked, probs, true_samples, sampled_samples = _customized(
            ctx, logits, num_true, num_samples, customized_samples, customized_probabilities,
            cdtype)
    else:
        picked, probs, true_samples, sampled_samples = _drawn(
            ctx, logits, label, num_true, num_samples, seed, cdtype)
    z = _sampled_logits(ctx, picked, probs, true_samples, sampled_samples, num_true,
                        remove_accidental_hits, cdtype)
    loss = _paddle_soft_label_cross_entropy(ctx, z, num_true)
    return xp.reshape(_cast(ctx, loss, logits.dtype), (n, 1))


def _customized(ctx: Ctx, logits, num_true, num_samples, customized_samples,
                customized_probabilities, cdtype) -> tuple:
    """``(picked logits, probabilities, true samples, sampled samples)`` of the customized
    samples ``[N, T+S]``, checked."""
    n, k = int(logits.shape[0]), int(logits.shape[1])
    width = num_true + num_samples
    if customized_samples is None or customized_probabilities is None:
        raise ValueError(
            "use_customized_samples=True needs both customized_samples and "
            f"customized_probabilities; got customized_samples="
            f"{'None' if customized_samples is None else 'an array'}, "
            f"customized_probabilities="
            f"{'None' if customized_probabilities is None else 'an array'}"
        )
    samples = named_array(ctx, "customized_samples", customized_samples)
    probs = named_array(ctx, "customized_probabilities", customized_probabilities)
    check_integer_ids(ctx, "customized_samples", samples)
    check_shape("customized_samples", samples, (n, width), "[N, num_true + num_samples]")
    check_floating(ctx, "customized_probabilities", probs)
    check_shape("customized_probabilities", probs, (n, width), "[N, num_true + num_samples]")
    check_value_range(ctx, "customized_samples", samples, 0, k)
    # Paddle clamps ln(0) and ln(inf) to -/+1e20 and returns a finite loss: reproduced.
    # A negative or NaN probability gives Paddle a NaN loss: refused.
    check_non_negative(ctx, "customized_probabilities", probs)
    samples = keep_in_range(ctx, _cast(ctx, samples, ctx.index_dtype), 0, k)
    probs = _cast(ctx, ctx.stop_gradient(probs), cdtype)
    picked = _gather_per_row(ctx, logits, samples)
    return picked, probs, samples[:, :num_true], samples[:, num_true:]


def _drawn(ctx: Ctx, logits, label, num_true, num_samples, seed, cdtype) -> tuple:
    """``(picked logits, probabilities, true samples, sampled samples)`` with the labels and
    ``num_samples`` log-uniform negatives drawn without repetition."""
    xp = ctx.xp
    n, k = int(logits.shape[0]), int(logits.shape[1])
    if num_samples > k:
        raise ValueError(
            f"num_samples={num_samples} cannot be greater than the number of classes "
            f"K = logits.shape[1] = {k}: negatives are drawn without repetition"
        )
    check_value_range(ctx, "label", label, 0, k)
    label = keep_in_range(ctx, _cast(ctx, label, ctx.index_dtype), 0, k)
    negatives, num_tries = _paddle_negatives(ctx, k, num_samples, seed)
    negatives = _cast(ctx, negatives, ctx.index_dtype)
    neg_q = _unique.expected_count(xp, _paddle_log_uniform_prob(ctx, negatives, k),
                                   num_samples, num_tries, cdtype)
    true_q = _unique.expected_count(xp, _paddle_log_uniform_prob(ctx, label, k), num_samples,
                                    num_tries, cdtype)
    probs = xp.concat([true_q, xp.broadcast_to(neg_q[None, :], (n, num_samples))], axis=1)
    picked = xp.concat(
        [_gather_per_row(ctx, logits, label), xp.take(logits, negatives, axis=1)], axis=1
    )
    return picked, probs, label, negatives[None, :]


def _sampled_logits(ctx: Ctx, picked, probs, true_samples, sampled_samples, num_true,
                    remove_accidental_hits, cdtype) -> Any:
    """Paddle's ``SampledLogits``: hits get ``1e20`` subtracted (every match), then the clamped
    ``ln Q``; +-inf clamped to +-1e20."""
    import numpy as np

    xp = ctx.xp
    z = _cast(ctx, picked, cdtype)
    if remove_accidental_hits:
        n, num_samples = z.shape[0], z.shape[1] - num_true
        # every sampled column equal to one of the row's first T sample columns
        hits = xp.broadcast_to(equal_any(xp, true_samples, sampled_samples), (n, num_samples))
        mask = xp.concat([xp.zeros_like(z[:, :num_true]), xp.astype(hits, cdtype)], axis=1)
        z = z - mask * PADDLE_MASK
    with np.errstate(divide="ignore"):  # ln 0 = -inf is clamped below, as Paddle does
        log_probs = xp.log(probs)
    return _clamp_inf(ctx, z - _clamp_inf(ctx, log_probs))


def _gather_per_row(ctx: Ctx, logits: Any, columns: Any) -> Any:
    """``logits[i, columns[i, c]]`` for ``columns [N, W]`` (a flat ``take``, no fancy indexing)."""
    xp = ctx.xp
    n, k = int(logits.shape[0]), int(logits.shape[1])
    width = int(columns.shape[1])
    rows = xp.arange(n, dtype=columns.dtype, device=ctx.device)[:, None] * k
    flat = xp.reshape(rows + columns, (-1,))
    return xp.reshape(xp.take(xp.reshape(logits, (-1,)), flat), (n, width))


def _clamp_inf(ctx: Ctx, v: Any) -> Any:
    """Paddle's clamp: +inf -> 1e20, -inf -> -1e20, everything else (NaN too) unchanged."""
    xp = ctx.xp
    big = xp.full_like(v, PADDLE_MASK)
    v = xp.where(v == math.inf, big, v)
    return xp.where(v == -math.inf, -big, v)


def _paddle_log_uniform_prob(ctx: Ctx, ids: Any, k: int) -> Any:
    """Paddle's ``LogUniformSampler::Probability``: ``ln((id+2)/(id+1))`` in double divided by
    ``ln(K+1)`` stored as float32, returned as float32."""
    xp = ctx.xp
    log_range = _paddle_log_range(k)
    if ctx.backend.has_dtype("float64"):
        idf = xp.astype(ids, xp.float64)
        p = xp.log((idf + 2.0) / (idf + 1.0)) / log_range
    else:  # no double on this backend: the same formula in float32 (last-bit differences)
        idf = xp.astype(ids, xp.float32)
        p = xp.log1p(1.0 / (idf + 1.0)) / log_range
    return xp.astype(p, xp.float32)


def _paddle_log_range(k: int) -> float:
    """``ln(K + 1)`` rounded to float32, as Paddle's sampler stores it."""
    import numpy as np

    return float(np.float32(math.log1p(k)))


def _paddle_negatives(ctx: Ctx, k: int, num_samples: int, seed: int):
    """``(negatives [S], num_tries)``: ``S`` distinct log-uniform classes of ``[0, K)`` in
    first-draw order, drawn on the arrays' device with the core's counter-based generator.

    Paddle builds a new sampler seeded with ``seed`` on every call, so a nonzero seed repeats
    the same negatives on every call: here, a fresh :class:`~multisampled.Generator` of that seed
    each call. ``seed=0`` draws fresh negatives each call. The stream is the project's Threefry
    generator (the same classes on every backend and device), not Paddle's ``mt19937_64``.
    ``num_tries`` is an int, or a 0-d array on backends that do not read values on the host.
    """
    from ._seeds import call_for

    if ctx.backend.is_compiling():
        # Paddle's seed is an int and has no key form: the generic "needs a key" error of the
        # seeds would ask for something this API cannot take
        raise TypeError(
            "sampled_softmax_with_cross_entropy cannot draw its negatives while a compiler "
            "traces (jax.jit, tf.function): the int seed's draws happen on the host, once, at "
            "trace time. Pass use_customized_samples=True with customized_samples and "
            "customized_probabilities drawn outside the traced function"
        )
    dist = _distributions.log_uniform(ctx, k)
    call = call_for(ctx, _rng.Generator(seed) if seed else None)
    return _unique.sample(ctx, dist, num_samples, True, call)


def _paddle_soft_label_cross_entropy(ctx: Ctx, z: Any, num_true: int) -> Any:
    """Paddle's ``softmax_with_cross_entropy(soft_label=True)`` with ``1/T`` on the first ``T``
    columns: shifted logits ``s = z - max(z)`` are clipped from below at -64, the loss is
    ``lse(c) - mean_t c_t`` of the clipped values ``c``, and the gradient is ``softmax(c) -
    label`` with the clip passed through as the identity (``c = sg(clip(s)) + (s - sg(s))``
    equals ``clip(s)`` exactly in the forward pass)."""
    xp = ctx.xp
    sg = ctx.stop_gradient
    s = z - sg(xp.max(z, axis=1, keepdims=True))
    clipped = sg(xp.clip(s, min=PADDLE_CLIP)) + (s - sg(s))
    lse = xp.log(xp.sum(xp.exp(clipped), axis=1))
    return lse - xp.sum(clipped[:, :num_true], axis=1) / num_true

