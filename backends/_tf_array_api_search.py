"""The TensorFlow Array API namespace, part three: indexing, stable sorting and search, and
reductions (``argmax`` returns the first maximal index; narrow integer sums are int64)."""

from __future__ import annotations

import tensorflow as tf

from ._tf_array_api_base import _axis, _move_last, _pair, _truth


# --------------------------------------------------------------------------- indexing and search


def take(x, indices, /, *, axis=None):
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(f"take without axis needs a 1-D array, got shape {x.shape}")
        axis = 0
    if indices.dtype not in (tf.int32, tf.int64):
        indices = tf.cast(indices, tf.int64)
    return tf.gather(x, indices, axis=axis)


def where(condition, x1, x2, /):
    x1, x2 = _pair(x1, x2)
    return tf.where(condition, x1, x2)


def nonzero(x, /):
    if x.shape.rank == 0:
        raise ValueError("nonzero does not take 0-d arrays")
    mask = x if x.dtype == tf.bool else tf.not_equal(x, tf.zeros((), x.dtype))
    coords = tf.where(mask)  # [N, ndim] int64, row-major order
    return tuple(coords[:, d] for d in range(x.shape.rank))


def _reversed_order(x):
    """A key whose DESCENDING order is ``x``'s ascending order (no overflow: ``~`` for ints)."""
    if x.dtype == tf.bool:
        x = tf.cast(x, tf.int8)
    if x.dtype.is_integer:
        return tf.bitwise.invert(x)
    return -x


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    """Stable (always) argsort along ``axis``, int64 indices."""
    nd = x.shape.rank
    if nd == 0:
        return tf.zeros((), tf.int64)
    moved, inverse = _move_last(tf.convert_to_tensor(x), _axis(axis, nd))
    key = moved if descending else _reversed_order(moved)
    if key.dtype == tf.bool:
        key = tf.cast(key, tf.int8)
    n = key.shape[-1] if key.shape[-1] is not None else tf.shape(key)[-1]
    idx = tf.cast(tf.math.top_k(key, k=n, sorted=True).indices, tf.int64)
    return idx if inverse is None else tf.transpose(idx, inverse)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    nd = x.shape.rank
    if nd == 0:
        return tf.convert_to_tensor(x)
    order = argsort(x, axis=axis, descending=descending)
    moved, inverse = _move_last(tf.convert_to_tensor(x), _axis(axis, nd))
    order_moved, _ = _move_last(order, _axis(axis, nd))
    out = tf.gather(moved, order_moved, axis=-1, batch_dims=nd - 1)
    return out if inverse is None else tf.transpose(out, inverse)


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    """Insertion points of ``x2`` (any shape) in the sorted 1-D ``x1``, int64."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if x1.shape.rank != 1:
        raise ValueError(f"searchsorted needs a 1-D sorted array, got shape {x1.shape}")
    if sorter is not None:
        x1 = tf.gather(x1, sorter)
    x1, x2 = _pair(x1, x2)
    flat = tf.reshape(x2, [-1])
    out = tf.searchsorted(x1, flat, side=side, out_type=tf.int64)
    return tf.reshape(out, tf.shape(x2))


# --------------------------------------------------------------------------- reductions


def _accumulator(dtype: tf.DType, requested) -> tf.DType:
    if requested is not None:
        return tf.as_dtype(requested)
    if dtype == tf.bool or (dtype.is_integer and not dtype.is_unsigned):
        return tf.int64
    if dtype.is_unsigned:
        return tf.uint64
    return dtype


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    acc = _accumulator(x.dtype, dtype)
    return tf.reduce_sum(tf.cast(x, acc), axis=axis, keepdims=keepdims)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    if x.dtype == tf.bool:
        return tf.reduce_any(x, axis=axis, keepdims=keepdims)
    return tf.reduce_max(x, axis=axis, keepdims=keepdims)


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    if x.dtype == tf.bool:
        return tf.reduce_all(x, axis=axis, keepdims=keepdims)
    return tf.reduce_min(x, axis=axis, keepdims=keepdims)


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return tf.reduce_any(_truth(x), axis=axis, keepdims=keepdims)


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return tf.reduce_all(_truth(x), axis=axis, keepdims=keepdims)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(f"cumulative_sum without axis needs a 1-D array, got {x.shape}")
        axis = 0
    x = tf.cast(x, _accumulator(x.dtype, dtype))
    out = tf.cumsum(x, axis=axis)
    if include_initial:
        axis = _axis(axis, x.shape.rank)
        first = tf.zeros_like(tf.gather(x, [0], axis=axis))
        out = tf.concat([first, out], axis=axis)
    return out


def argmax(x, /, *, axis=None, keepdims=False):
    """Index of the FIRST maximal value (of the first NaN, as NumPy), int64."""
    if axis is None:
        flat = argmax(tf.reshape(x, [-1]), axis=0)
        return tf.reshape(flat, [1] * x.shape.rank) if keepdims else flat
    nd = x.shape.rank
    moved, _ = _move_last(tf.convert_to_tensor(x), _axis(axis, nd))
    if moved.dtype == tf.bool:
        moved = tf.cast(moved, tf.int8)
    hit = tf.equal(moved, tf.reduce_max(moved, axis=-1, keepdims=True))
    if moved.dtype.is_floating:
        isnan_ = tf.math.is_nan(moved)
        hit = tf.where(tf.reduce_any(isnan_, axis=-1, keepdims=True), isnan_, hit)
    n = tf.shape(moved, out_type=tf.int64)[-1]
    positions = tf.where(hit, tf.range(n, dtype=tf.int64), n)
    out = tf.reduce_min(positions, axis=-1)
    if keepdims:
        out = tf.expand_dims(out, _axis(axis, nd))
    return out


__all__ = [
    "take", "where", "nonzero", "argsort", "sort", "searchsorted", "sum", "max", "min", "any",
    "all", "cumulative_sum", "argmax",
]
