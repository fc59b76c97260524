"""The TensorFlow Array API namespace, part two: creation functions (``arange``, ``full``,
``zeros``, ``*_like``), dtype and shape changes, and ``matmul``."""

from __future__ import annotations

import builtins

import numpy as np
import tensorflow as tf

from ._tf_array_api_base import _dtype, _on, _pair, _result_dtype, _shape_list


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    if stop is None:
        start, stop = 0, start
    dtype = _dtype(dtype)
    if dtype is None:
        exact = builtins.all(isinstance(v, int) for v in (start, stop, step))
        dtype = tf.int64 if exact else tf.float32
    work = tf.int64 if dtype.is_integer else dtype
    with _on(device):
        out = tf.range(start, stop, step, dtype=work)
        return out if work == dtype else tf.cast(out, dtype)


def _fill_dtype(fill_value, dtype):
    if dtype is not None:
        return tf.as_dtype(dtype)
    if isinstance(fill_value, (builtins.bool, np.bool_)):
        return tf.bool
    if isinstance(fill_value, (int, np.integer)):
        return tf.int64
    return tf.float32


def full(shape, fill_value, *, dtype=None, device=None):
    dtype = _fill_dtype(fill_value, dtype)
    with _on(device):
        return tf.fill(_shape_list(shape), tf.constant(fill_value, dtype=dtype))


def zeros(shape, *, dtype=None, device=None):
    with _on(device):
        return tf.zeros(_shape_list(shape), dtype=_dtype(dtype) or tf.float32)


def ones(shape, *, dtype=None, device=None):
    with _on(device):
        return tf.ones(_shape_list(shape), dtype=_dtype(dtype) or tf.float32)


def full_like(x, /, fill_value, *, dtype=None, device=None):
    dtype = _dtype(dtype) or x.dtype
    if dtype == tf.bool:
        fill_value = fill_value != 0  # this namespace names the dtype `bool`
    with _on(device):
        return tf.fill(tf.shape(x), tf.constant(fill_value, dtype=dtype))


def zeros_like(x, /, *, dtype=None, device=None):
    return full_like(x, 0, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None):
    return full_like(x, 1, dtype=dtype, device=device)


# --------------------------------------------------------------------------- dtype and shape


def astype(x, dtype, /, *, copy=True, device=None):
    out = tf.cast(x, tf.as_dtype(dtype))
    if device is not None:
        with _on(device):
            out = tf.identity(out)
    return out


def reshape(x, /, shape, *, copy=None):
    return tf.reshape(x, list(shape) if not isinstance(shape, int) else [shape])


def concat(arrays, /, *, axis=0):
    arrays = list(arrays)
    dt = arrays[0].dtype
    for a in arrays[1:]:
        dt = _result_dtype(dt, a.dtype)
    arrays = [tf.cast(a, dt) for a in arrays]
    if axis is None:
        return tf.concat([tf.reshape(a, [-1]) for a in arrays], axis=0)
    return tf.concat(arrays, axis=axis)


def broadcast_to(x, /, shape):
    if not isinstance(shape, int) and builtins.any(d is None for d in tf.TensorShape(shape)):
        # a None dimension while tracing: the target's dynamic size where x's is 1 or unknown
        dims = [tf.shape(x)[i - len(shape) + x.shape.rank] if d is None else d
                for i, d in enumerate(shape)]
        return tf.broadcast_to(x, tf.stack(dims))
    return tf.broadcast_to(x, _shape_list(shape))


def matrix_transpose(x, /):
    if x.shape.rank < 2:
        raise ValueError(f"matrix_transpose needs an array of rank >= 2, got shape {x.shape}")
    return tf.linalg.matrix_transpose(x)


def matmul(x1, x2, /):
    x1, x2 = _pair(x1, x2)
    if x1.shape.rank == 0 or x2.shape.rank == 0:
        raise ValueError("matmul does not take 0-d arrays")
    squeeze = []
    if x1.shape.rank == 1:
        x1, squeeze = x1[None, :], squeeze + [-2]
    if x2.shape.rank == 1:
        x2, squeeze = x2[:, None], squeeze + [-1]
    out = tf.linalg.matmul(x1, x2)
    return tf.squeeze(out, axis=squeeze) if squeeze else out


__all__ = [
    "arange", "full", "zeros", "ones", "full_like", "zeros_like", "ones_like", "astype",
    "reshape", "concat", "broadcast_to", "matrix_transpose", "matmul",
]
