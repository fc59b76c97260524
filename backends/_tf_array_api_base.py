"""The TensorFlow Array API namespace, part one: the dtypes, ``isdtype``/``iinfo``/``finfo``,
devices and ``__array_namespace_info__``, ``asarray``, and the promotion and axis helpers the
other parts (:mod:`._tf_array_api_creation`, :mod:`._tf_array_api_search`,
:mod:`._tf_array_api_elementwise`) share. :mod:`._tf_array_api` is the namespace itself."""

from __future__ import annotations

import builtins
import contextlib
import math
from typing import Optional

import numpy as np
import tensorflow as tf

bool = tf.bool  # noqa: A001 - the standard's dtype name
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
float16, bfloat16, float32, float64 = tf.float16, tf.bfloat16, tf.float32, tf.float64
complex64, complex128 = tf.complex64, tf.complex128

e, pi, inf, nan = math.e, math.pi, math.inf, math.nan
newaxis = None

_ARRAY_TYPES = (tf.Tensor, tf.Variable)


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


# --------------------------------------------------------------------------- conversion


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


def _truth(x):
    return x if x.dtype == tf.bool else tf.not_equal(x, tf.zeros((), x.dtype))


__all__ = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    "e", "pi", "inf", "nan", "newaxis", "isdtype", "iinfo", "finfo", "asarray",
]
