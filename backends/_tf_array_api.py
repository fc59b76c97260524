"""The Array API namespace of the TensorFlow backend: a thin adapter over ``tf``.

array-api-compat has no TensorFlow namespace, so this module is one: the functions, dtypes and
``__array_namespace_info__`` the core uses, each with the signature and the semantics of the
Array API standard (2023.12) for the arguments the core passes, computed with TensorFlow ops on
``tf.Tensor`` / ``tf.Variable`` arrays (results are ``tf.Tensor``s). Where TensorFlow's own op
differs from the standard the function says so and does what the standard says:

- ``argsort``/``sort`` are stable (``tf.math.top_k``, which keeps the lower index first on ties,
  on an order-reversing key for ascending order: ``~x`` for integers, never overflowing);
- ``argmax`` returns the FIRST maximal index (TF leaves ties unspecified);
- ``sum``/``cumulative_sum`` of narrow integers and bools return int64, the default integer;
- ``maximum``/``minimum`` split the gradient evenly between equal arguments, as PyTorch and JAX
  do (TF gives it all to the first argument);
- ``logaddexp`` (TF has none) is NumPy's formula with the exact gradient ``exp(x_i - out)``;
- ``searchsorted`` returns int64 and accepts values of any shape.

Importing this module imports TensorFlow. TensorFlow's own classes are left as they are: the
core calls the standard's functions where ``tf.Tensor`` lacks the operator (bit shifts) and
reads ``len(x.shape)`` rather than ``x.ndim`` (which ``tf.Variable`` lacks).
"""

from __future__ import annotations

import builtins
import contextlib
import math
from typing import Optional

import numpy as np
import tensorflow as tf

__array_api_version__ = "2023.12"

bool = tf.bool  # noqa: A001 - the standard's dtype name
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
float16, bfloat16, float32, float64 = tf.float16, tf.bfloat16, tf.float32, tf.float64
complex64, complex128 = tf.complex64, tf.complex128

e, pi, inf, nan = math.e, math.pi, math.inf, math.nan
newaxis = None

_ARRAY_TYPES = (tf.Tensor, tf.Variable)


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


# --------------------------------------------------------------------------- dtypes and devices

_KIND_TESTS = {
    "bool": lambda d: d == tf.bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: d.is_integer or d.is_floating or d.is_complex,
}


def isdtype(dtype, kind) -> bool:
    """Whether ``dtype`` is of ``kind``: a kind name, a dtype, or a tuple of those."""
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, tf.DType):
        return dtype == kind
    test = _KIND_TESTS.get(kind)
    if test is None:
        raise ValueError(f"kind must be a dtype, a tuple or one of {sorted(_KIND_TESTS)}, "
                         f"got {kind!r}")
    return builtins.bool(test(tf.as_dtype(dtype)))


def iinfo(type_):
    """NumPy's ``iinfo`` of an integer dtype or array (``bits``, ``min``, ``max``, ``dtype``)."""
    dtype = getattr(type_, "dtype", type_)
    return np.iinfo(tf.as_dtype(dtype).as_numpy_dtype)


def finfo(type_):
    """``finfo`` of a floating dtype or array (bfloat16 through ml_dtypes)."""
    dtype = tf.as_dtype(getattr(type_, "dtype", type_))
    if dtype == tf.bfloat16:
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(dtype.as_numpy_dtype)


def _default_device() -> str:
    """The device TensorFlow places a new eager float32 tensor on (its canonical name)."""
    with tf.init_scope():
        return tf.zeros(()).device


class _Info:
    """``__array_namespace_info__()``: default dtypes (int64 indices) and devices."""

    def capabilities(self):
        return {"boolean indexing": False, "data-dependent shapes": True}

    def default_device(self):
        return _default_device()

    def devices(self):
        return [d.name for d in tf.config.list_logical_devices()]

    def default_dtypes(self, *, device=None):
        return {"real floating": tf.float32, "complex floating": tf.complex64,
                "integral": tf.int64, "indexing": tf.int64}

    def dtypes(self, *, device=None, kind=None):
        names = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "bfloat16", "float32", "float64", "complex64",
                 "complex128")
        found = {n: globals()[n] for n in names}
        if kind is None:
            return found
        return {n: d for n, d in found.items() if isdtype(d, kind)}


def __array_namespace_info__():
    return _Info()


def _on(device):
    """A context placing new tensors on ``device`` (None or "": TensorFlow's choice)."""
    if device is None or device == "":
        return contextlib.nullcontext()
    return tf.device(device)


def _dtype(dtype) -> Optional[tf.DType]:
    return None if dtype is None else tf.as_dtype(dtype)


# --------------------------------------------------------------------------- promotion helpers


def _is_array(x) -> bool:
    return isinstance(x, _ARRAY_TYPES)


def _result_dtype(a: tf.DType, b: tf.DType) -> tf.DType:
    """The standard's promotion for two dtypes (bfloat16 with float16 gives float32)."""
    if a == b:
        return a
    if a == tf.bool:
        return b
    if b == tf.bool:
        return a
    if a.is_floating and b.is_floating:
        if tf.bfloat16 in (a, b):
            other = b if a == tf.bfloat16 else a
            return tf.float32 if other == tf.float16 else other
        return a if a.size >= b.size else b
    if a.is_floating != b.is_floating:  # mixed kinds are left open by the standard
        return a if a.is_floating else b
    return tf.as_dtype(np.result_type(a.as_numpy_dtype, b.as_numpy_dtype))


def _pair(x1, x2):
    """Both arguments as tensors of one dtype; a Python scalar takes the array's dtype."""
    if not _is_array(x1) and not _is_array(x2):
        x1 = asarray(x1)
    if not _is_array(x1):
        return tf.convert_to_tensor(x1, dtype=x2.dtype), x2
    if not _is_array(x2):
        return x1, tf.convert_to_tensor(x2, dtype=x1.dtype)
    dt = _result_dtype(x1.dtype, x2.dtype)
    return tf.cast(x1, dt), tf.cast(x2, dt)


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array of rank {ndim}")
    return axis % ndim


def _shape_list(shape) -> list:
    if isinstance(shape, int):
        return [shape]
    dims = list(tf.TensorShape(shape).as_list())
    if builtins.any(d is None for d in dims):
        raise ValueError(
            f"shape {dims} is not fully known (a data-dependent size while tf.function "
            "traces); expected static sizes"
        )
    return dims


def _move_last(x, axis: int):
    """``x`` with ``axis`` moved to the end, and the permutation that undoes it."""
    nd = x.shape.rank
    if axis == nd - 1:
        return x, None
    perm = [d for d in range(nd) if d != axis] + [axis]
    inverse = [perm.index(d) for d in range(nd)]
    return tf.transpose(x, perm), inverse


# --------------------------------------------------------------------------- creation


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """A tensor holding ``obj``; Python ints become int64 and Python floats float32."""
    dtype = _dtype(dtype)
    if _is_array(obj):
        out = obj if dtype is None or obj.dtype == dtype else tf.cast(obj, dtype)
        if device is not None:
            with _on(device):
                out = tf.identity(out)
        return out
    if dtype is None:
        arr = np.asarray(obj)
        if arr.dtype.kind == "f" and not isinstance(obj, np.ndarray):
            arr = arr.astype(np.float32)
    elif dtype == tf.bfloat16:
        arr = np.asarray(obj, dtype=np.float32)
    else:
        arr = np.asarray(obj, dtype=dtype.as_numpy_dtype)
    with _on(device):
        out = tf.convert_to_tensor(arr)
        return out if dtype is None or out.dtype == dtype else tf.cast(out, dtype)


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


def _truth(x):
    return x if x.dtype == tf.bool else tf.not_equal(x, tf.zeros((), x.dtype))


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


__all__ = [name for name in dict(globals()) if not name.startswith("_") and name not in (
    "annotations", "builtins", "contextlib", "math", "np", "tf", "Optional")]
