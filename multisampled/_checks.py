"""Small reusable argument validators.

Every error names the argument, the value received and what was expected: ``ValueError`` for bad
values and shapes, ``TypeError`` for wrong Python types and dtypes. Checks of array VALUES go
through :func:`check_value_range` / :func:`check_positive_finite`, which read values on the host
only when the backend allows it (``Backend.may_read_values``) and otherwise hand the condition
to the backend's ``check_async`` (never forcing a device-to-host synchronisation).
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Optional, Sequence


def check_int(name: str, value: Any) -> int:
    """``value`` as a Python int; bools and non-integers are a ``TypeError``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int, got {value!r} of type {type(value).__name__}"
        ) from None


def check_int_in(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    """``value`` as a Python int in ``[minimum, maximum]`` (no upper bound when None)."""
    v = check_int(name, value)
    if v < minimum or (maximum is not None and v > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {bound}, got {v}")
    return v


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as a Python int >= 1."""
    v = check_int(name, value)
    if v < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {v}")
    return v


def check_non_negative_int(name: str, value: Any) -> int:
    """``value`` as a Python int >= 0."""
    v = check_int(name, value)
    if v < 0:
        raise ValueError(f"{name} must be a non-negative int (>= 0), got {v}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a Python bool (Python and NumPy bools only; no truthiness guessing).

    Args:
        name: The argument's name, for the error message.
        value: The value to check.

    Returns:
        ``value`` as a Python bool.

    Raises:
        TypeError: ``value`` is neither a Python bool nor a 0-d NumPy bool.
    """
    if isinstance(value, bool):
        return value
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind == "b" and getattr(value, "ndim", 1) == 0:
        return bool(value)  # a NumPy bool scalar
    raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")


def dtype_name(dtype: Any) -> str:
    """A short readable name for a dtype of any backend (``float32``, ``int64``)."""
    s = str(dtype)
    for prefix in ("torch.", "<dtype: '", "dtype('", "array_api_strict."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.rstrip("')>")


def is_integer_dtype(xp: Any, dtype: Any) -> bool:
    return xp.isdtype(dtype, "integral")


def is_floating_dtype(xp: Any, dtype: Any) -> bool:
    return xp.isdtype(dtype, "real floating")


def check_integer_ids(ctx: Any, name: str, arr: Any) -> None:
    """``arr`` (labels, candidates, samples) must have an integer dtype (floats are refused: a
    cast would truncate silently)."""
    if not is_integer_dtype(ctx.xp, arr.dtype):
        raise TypeError(
            f"{name} must have an integer dtype (class ids), got dtype {dtype_name(arr.dtype)}; "
            f"cast explicitly if the values are whole numbers"
        )


def named_array(ctx: Any, name: str, value: Any, dtype: Optional[str] = None) -> Any:
    """``ctx.asarray(value, dtype)``; a conversion error (host data the backend cannot hold,
    such as int64 values beyond int32 on JAX without x64) names the argument."""
    try:
        return ctx.asarray(value, dtype)
    except (ValueError, TypeError) as exc:
        kind = ValueError if isinstance(exc, ValueError) else TypeError
        raise kind(f"{name}: {exc}") from exc


_NOT_DENSE = {
    "RaggedTensor": "a tf.RaggedTensor; convert it with .to_tensor() (rows must have num_true "
                    "entries)",
    "SparseTensor": "a tf.SparseTensor; convert it with tf.sparse.to_dense()",
    "IndexedSlices": "a tf.IndexedSlices; convert it with tf.convert_to_tensor()",
}


def check_dense(name: str, value: Any) -> None:
    """``value`` must not be a ragged or sparse array (TensorFlow's RaggedTensor, SparseTensor
    and IndexedSlices, a sparse torch tensor, SciPy and JAX sparse matrices): a ``TypeError``
    saying that ``name`` must be dense."""
    tp = type(value)
    what = _NOT_DENSE.get(tp.__name__) if tp.__module__.startswith("tensorflow") else None
    if what is None and tp.__module__.startswith(("scipy.sparse", "jax.experimental.sparse")):
        what = f"a sparse {tp.__module__}.{tp.__name__}; convert it with .todense()"
    if what is None and tp.__module__.startswith("torch") and "sparse" in str(
            getattr(value, "layout", "")):
        what = f"a torch tensor of layout {value.layout}; convert it with .to_dense()"
    if what is not None:
        raise TypeError(f"{name} must be a dense array, got {what}")


def check_floating(ctx: Any, name: str, arr: Any) -> None:
    """``arr`` must have a real floating dtype."""
    if not is_floating_dtype(ctx.xp, arr.dtype):
        raise TypeError(
            f"{name} must have a real floating dtype, got dtype {dtype_name(arr.dtype)}"
        )


def check_rank(name: str, arr: Any, rank: int, what: str = "") -> None:
    """``arr.ndim == rank``; ``what`` describes the expected layout (``"[batch, num_true]"``)."""
    if len(arr.shape) != rank:
        layout = f" {what}" if what else ""
        raise ValueError(
            f"{name} must be a rank-{rank} array{layout}, got shape {tuple(arr.shape)} "
            f"(rank {len(arr.shape)})"
        )


def check_label_columns(name: str, arr: Any, num_true: int) -> None:
    """``arr`` (labels, true classes) is ``[batch_size, num_true]``: rank 2, ``num_true`` columns."""
    check_rank(name, arr, 2, "[batch_size, num_true]")
    if arr.shape[1] != num_true:
        raise ValueError(
            f"{name} must have num_true={num_true} columns, got {arr.shape[1]} (shape "
            f"{list(arr.shape)}, expected [batch_size, num_true])"
        )


def check_shape(name: str, arr: Any, expected: Sequence[Optional[int]], what: str = "") -> None:
    """``arr.shape`` must equal ``expected``; ``None`` entries match any size."""
    shape = tuple(arr.shape)
    ok = len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected)
    )
    if not ok:
        shown = "[" + ", ".join("?" if e is None else str(e) for e in expected) + "]"
        layout = f" {what}" if what else ""
        raise ValueError(f"{name} must have shape {shown}{layout}, got shape {list(shape)}")


def broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target``."""
    shape, target = tuple(shape), tuple(target)
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s != t and s != 1:
            return False
    return True


def _values_summary(ctx: Any, arr: Any) -> str:
    xp = ctx.xp
    lo, hi = xp.min(arr), xp.max(arr)
    return f"min {_scalar(lo)}, max {_scalar(hi)}"


def _scalar(a: Any) -> Any:
    try:
        return a.item()
    except Exception:  # arrays without .item() (TensorFlow's)
        if dtype_name(a.dtype).startswith(("int", "uint")):
            return int(a)  # exact (a float would round 64-bit values)
        return float(a)


def _run_check(ctx: Any, ok: Any, message_fn) -> None:
    """Raise ``ValueError(message_fn())`` when the 0-d bool array ``ok`` is False.

    Eager where the backend may read values; otherwise through its ``check_async`` (the message
    is then built without reading values).
    """
    if ctx.may_read_values:
        if not bool(ok):
            raise ValueError(message_fn(True))
    else:
        ctx.backend.check_async(ok, message_fn(False))


def index_ids(ctx: Any, arr: Any) -> tuple:
    """``(ids, wrap)``: integer ids a backend can compare and gather with.

    Unsigned ids become the index dtype by a wrapping cast (PyTorch has no comparison kernels
    for uint16/32/64): values the index dtype cannot hold turn negative, so range checks catch
    them, and ``wrap`` (``2**bits`` of the unsigned dtype, else 0) recovers them for messages.
    Signed ids are returned unchanged with ``wrap`` 0.
    """
    xp = ctx.xp
    if not xp.isdtype(arr.dtype, "unsigned integer"):
        return arr, 0
    span = int(xp.iinfo(arr.dtype).max) + 1
    wraps = span > int(xp.iinfo(ctx.index_dtype).max) + 1
    return xp.astype(arr, ctx.index_dtype), (span if wraps else 0)


def _unwrapped_summary(ctx: Any, ids: Any, wrap: int) -> str:
    """``min .., max ..`` of ids that :func:`index_ids` may have wrapped (negative values are
    shown as the unsigned values they came from)."""
    if not wrap:
        return _values_summary(ctx, ids)
    xp = ctx.xp
    neg = ids < 0
    if not bool(xp.any(neg)):
        return _values_summary(ctx, ids)
    lowest = xp.full_like(ids, xp.iinfo(ids.dtype).min)
    top = int(_scalar(xp.max(xp.where(neg, ids, lowest)))) + wrap
    if bool(xp.all(neg)):
        low = int(_scalar(xp.min(ids))) + wrap
    else:
        low = int(_scalar(xp.min(xp.where(neg, xp.full_like(ids, xp.iinfo(ids.dtype).max),
                                          ids))))
    return f"min {low}, max {top}"


def check_value_range(ctx: Any, name: str, arr: Any, low: int, high: int) -> None:
    """Every value of the integer array ``arr`` lies in ``[low, high)`` (``low >= 0``); unsigned
    arrays are compared after :func:`index_ids`."""
    if _is_empty(arr):
        return
    xp = ctx.xp
    arr, wrap = index_ids(ctx, arr)
    ok = xp.all((arr >= low) & (arr < high))

    def message(with_values: bool) -> str:
        got = f"; got values with {_unwrapped_summary(ctx, arr, wrap)}" if with_values else ""
        return f"{name} must hold values in [{low}, {high}){got}"

    _run_check(ctx, ok, message)


def keep_in_range(ctx: Any, arr: Any, low: int, high: int) -> Any:
    """``arr`` clipped to ``[low, high)`` where value checks are asynchronous, else unchanged.

    Off the host the range check only reports later, so the ids are clipped to keep the gathers
    that follow in bounds (an out-of-bounds gather can crash an accelerator or read garbage).
    """
    if ctx.may_read_values or _is_empty(arr):
        return arr
    return ctx.xp.clip(arr, low, high - 1)


def check_positive_finite(ctx: Any, name: str, arr: Any) -> None:
    """Every value of the floating array ``arr`` is finite and > 0 (NaN fails)."""
    if _is_empty(arr):
        return
    xp = ctx.xp
    ok = xp.all(xp.isfinite(arr) & (arr > 0))

    def message(with_values: bool) -> str:
        if with_values:
            if bool(xp.any(xp.isnan(arr))):
                got = "; got NaN values"
            else:
                got = f"; got values with {_values_summary(ctx, arr)}"
        else:
            got = ""
        return f"{name} must be finite and > 0 everywhere (it is used as log(count)){got}"

    _run_check(ctx, ok, message)


def check_non_negative(ctx: Any, name: str, arr: Any) -> None:
    """Every value of the floating array ``arr`` is >= 0 (+inf allowed; NaN fails)."""
    if _is_empty(arr):
        return
    xp = ctx.xp
    ok = xp.all(arr >= 0)  # NaN compares False

    def message(with_values: bool) -> str:
        got = f"; got values with {_values_summary(ctx, arr)}" if with_values else ""
        if with_values and bool(xp.any(xp.isnan(arr))):
            got = "; got NaN values"
        return f"{name} must be >= 0 and not NaN everywhere{got}"

    _run_check(ctx, ok, message)


def check_nonzero(ctx: Any, name: str, arr: Any) -> None:
    """Every value of the floating array ``arr`` is nonzero and not NaN (infinities allowed)."""
    if _is_empty(arr):
        return
    xp = ctx.xp
    ok = xp.all((arr != 0) & xp.logical_not(xp.isnan(arr)))

    def message(with_values: bool) -> str:
        got = f"; got {_values_summary(ctx, arr)}" if with_values else ""
        return f"{name} must be nonzero and not NaN{got}"

    _run_check(ctx, ok, message)


def check_nonzero_scalar(name: str, value: Any) -> float:
    """A Python (or NumPy) real number other than 0 and NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    v = float(value)
    if v == 0 or math.isnan(v):
        raise ValueError(f"{name} must be nonzero and not NaN, got {value!r}")
    return v


def _is_empty(arr: Any) -> bool:
    """Whether ``arr`` certainly has no elements (unknown sizes count as non-empty)."""
    return any(n == 0 for n in arr.shape if n is not None)


def check_seed_int(seed: Any, name: str = "seed") -> int:
    """An int seed in ``[0, 2**64)``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be None, a Generator, a key or an int in [0, 2**64); "
            f"got {seed!r} of type {type(seed).__name__}"
        )
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"{name} must be an int in [0, 2**64); got {seed}")
    return seed
