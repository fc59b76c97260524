"""The TensorFlow Array API namespace, part four: element-wise functions (the extremes with
the gradient split evenly at ties, ``logaddexp`` with its exact gradient, NumPy's bit shifts)."""

from __future__ import annotations

import tensorflow as tf

from ._tf_array_api_base import _is_array, _pair, _truth


# --------------------------------------------------------------------------- bit shifts


def _shift(op, x, y, left: bool):
    """``x << y`` / ``x >> y`` with NumPy's results for Python-int shifts of any size."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_integer:
        raise TypeError(f"bit shifts need integer arrays, got dtype {x.dtype.name}")
    if isinstance(y, int):
        bits = x.dtype.size * 8
        if y < 0:
            raise ValueError(f"a bit shift by a negative count is undefined, got {y}")
        if y >= bits:  # TF leaves this implementation-defined; NumPy shifts everything out
            if left or x.dtype.is_unsigned:
                return tf.zeros_like(x)
            return tf.where(x < 0, tf.constant(-1, x.dtype), tf.constant(0, x.dtype))
    return op(x, tf.convert_to_tensor(y, dtype=x.dtype))


def _lshift(x, y):
    return _shift(tf.bitwise.left_shift, x, y, True)


def _rshift(x, y):
    return _shift(tf.bitwise.right_shift, x, y, False)


# --------------------------------------------------------------------------- element-wise


def clip(x, /, min=None, max=None):  # noqa: A002
    """``min(max(x, min), max)`` in ``x``'s dtype; NaN stays NaN."""
    x = tf.convert_to_tensor(x)
    if min is not None:
        x = tf.maximum(x, tf.cast(min, x.dtype) if _is_array(min) else tf.constant(min, x.dtype))
    if max is not None:
        x = tf.minimum(x, tf.cast(max, x.dtype) if _is_array(max) else tf.constant(max, x.dtype))
    return x


def _binary_extreme(select, x1, x2):
    x1, x2 = _pair(x1, x2)
    if not x1.dtype.is_floating:
        return select(x1, x2)
    shape = tf.broadcast_static_shape(x1.shape, x2.shape)
    a, b = tf.broadcast_to(x1, shape), tf.broadcast_to(x2, shape)
    return _tie_split(select, a, b)


def _tie_split(select, a, b):
    @tf.custom_gradient
    def op(a, b):
        out = select(a, b)

        def grad(upstream):
            half = tf.cast(tf.equal(a, b), upstream.dtype) * 0.5
            to_a = tf.cast(tf.equal(out, a), upstream.dtype) - half
            to_b = tf.cast(tf.equal(out, b), upstream.dtype) - half
            return upstream * to_a, upstream * to_b

        return out, grad

    return op(a, b)


def maximum(x1, x2, /):
    """Element-wise maximum (NaN propagates); the gradient is split evenly at ties."""
    return _binary_extreme(tf.maximum, x1, x2)


def minimum(x1, x2, /):
    """Element-wise minimum (NaN propagates); the gradient is split evenly at ties."""
    return _binary_extreme(tf.minimum, x1, x2)


def logaddexp(x1, x2, /):
    """``log(exp(x1) + exp(x2))`` as NumPy computes it (``inf`` pairs included), with the
    exact gradient ``exp(x_i - out)`` (0.5 each at ties)."""
    x1, x2 = _pair(x1, x2)
    shape = tf.broadcast_static_shape(x1.shape, x2.shape)
    if not shape.is_fully_defined():  # a None dimension while tracing
        shape = tf.broadcast_dynamic_shape(tf.shape(x1), tf.shape(x2))
    return _logaddexp(tf.broadcast_to(x1, shape), tf.broadcast_to(x2, shape))


@tf.custom_gradient
def _logaddexp(a, b):
    delta = a - b
    big = tf.maximum(a, b)
    out = tf.where(tf.math.is_nan(delta), a + b, big + tf.math.log1p(tf.exp(-tf.abs(delta))))

    def grad(upstream):
        return upstream * tf.exp(a - out), upstream * tf.exp(b - out)

    return out, grad


def _unary(tf_op):
    def op(x, /):
        return tf_op(x)

    op.__name__ = tf_op.__name__
    op.__doc__ = f"Element-wise ``{tf_op.__name__}``."
    return op


exp = _unary(tf.exp)
expm1 = _unary(tf.math.expm1)
log = _unary(tf.math.log)
log1p = _unary(tf.math.log1p)
abs = _unary(tf.abs)  # noqa: A001


def logical_not(x, /):
    return tf.logical_not(_truth(x))


def _float_test(tf_op, for_integers: bool):
    def op(x, /):
        if not x.dtype.is_floating:
            return tf.fill(tf.shape(x), for_integers)
        return tf_op(x)

    return op


isnan = _float_test(tf.math.is_nan, False)
isinf = _float_test(tf.math.is_inf, False)
isfinite = _float_test(tf.math.is_finite, True)


def bitwise_left_shift(x1, x2, /):
    return _lshift(x1, x2)


def bitwise_right_shift(x1, x2, /):
    return _rshift(x1, x2)


__all__ = [
    "clip", "maximum", "minimum", "logaddexp", "exp", "expm1", "log", "log1p", "abs",
    "logical_not", "isnan", "isinf", "isfinite", "bitwise_left_shift", "bitwise_right_shift",
]
