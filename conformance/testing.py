"""Assertions for backend arrays: namespace, dtype, shape and device first, values last.

``backend`` is a registered backend name (or a :class:`multisampled.plugin.Backend`). Expected
values are NumPy arrays (from the float64 reference) or arrays of the same backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

if TYPE_CHECKING:
    from multisampled.plugin import Backend

__all__ = [
    "assert_close",
    "assert_device",
    "assert_dtype",
    "assert_equal",
    "assert_namespace",
    "device_of",
    "eps",
    "get_backend",
    "same_device",
    "to_numpy",
    "tolerances",
]

#: Default (rtol, atol) per dtype for a result computed in that dtype from inputs exactly
#: representable in it, compared with a float64 evaluation of the same formula.
_TOLERANCES = {
    "float64": (1e-9, 1e-9),
    "float32": (3e-5, 3e-5),
    "float16": (2e-2, 2e-2),
    "bfloat16": (8e-2, 8e-2),
}


def eps(dtype: str) -> float:
    """Machine epsilon of a floating dtype name (bfloat16 included).

    Args:
        dtype: ``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``.

    Returns:
        The distance from 1.0 to the next larger number of the dtype.

    Raises:
        KeyError: Another dtype name.
    """
    return {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23,
            "float64": 2.0**-52}[dtype]


def tolerances(dtype: str) -> tuple[float, float]:
    """Default ``(rtol, atol)`` for results of ``dtype`` (a dtype name).

    Args:
        dtype: ``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``.

    Returns:
        The relative and absolute tolerances of a result computed in that dtype from inputs
        exact in it, against a float64 evaluation.

    Raises:
        ValueError: Another dtype name.
    """
    try:
        return _TOLERANCES[dtype]
    except KeyError:
        raise ValueError(
            f"dtype must be one of {sorted(_TOLERANCES)} for a tolerance, got {dtype!r}"
        ) from None


def get_backend(backend: Union[str, Backend]) -> Backend:
    """The registered :class:`~multisampled.plugin.Backend` for a name (or the object itself).

    Args:
        backend: A registered backend's name, or a Backend.

    Returns:
        The Backend.

    Raises:
        TypeError: ``backend`` is neither a str nor a Backend.
        ValueError: No backend is registered under the name.
        ImportError: The backend's framework is not installed.
    """
    import multisampled
    from multisampled.plugin import Backend

    if isinstance(backend, Backend):
        return backend
    return multisampled.get_backend(backend)


def _type_name(x: Any) -> str:
    tp = type(x)
    return f"{tp.__module__}.{tp.__qualname__}"


def _dtype_name(x: Any) -> str:
    """A readable, framework-independent dtype name ("float32", "bfloat16", "int64")."""
    d = getattr(x, "dtype", None)
    name = getattr(d, "name", None)
    if isinstance(name, str):
        return name
    s = str(d)
    for prefix in ("torch.", "tf.", "<dtype: '"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.rstrip("'>")


def assert_namespace(actual: Any, backend: Union[str, Backend]) -> None:
    """``actual`` is an array of ``backend`` (not a NumPy array or another framework's).

    Args:
        actual: The result under test.
        backend: The backend (or its name) whose array it must be.

    Raises:
        AssertionError: ``actual`` is not an array of the backend.
    """
    b = get_backend(backend)
    if not b.is_array_type(type(actual)):
        raise AssertionError(
            f"expected an array of backend {b.name!r} (module {b.module}), got {_type_name(actual)}"
        )


def assert_dtype(actual: Any, dtype: str, backend: Union[str, Backend]) -> None:
    """``actual.dtype`` is the backend's ``dtype`` (a name such as "float32").

    Args:
        actual: The result under test.
        dtype: The expected dtype's name in the backend's namespace.
        backend: The backend (or its name).

    Raises:
        AssertionError: The backend has no such dtype, or ``actual`` has another.
    """
    b = get_backend(backend)
    xp = b.namespace()
    expected = getattr(xp, dtype, None)
    if expected is None:
        raise AssertionError(f"backend {b.name!r} has no dtype {dtype!r}")
    if actual.dtype != expected:
        raise AssertionError(f"expected dtype {dtype}, got {_dtype_name(actual)}")


def device_of(x: Any) -> Any:
    """The Array API device of ``x`` (None when it cannot be told).

    Args:
        x: An array of any backend.

    Returns:
        Its device object, or None.
    """
    try:
        import array_api_compat

        return array_api_compat.device(x)
    except Exception:
        return getattr(x, "device", None)


def same_device(a: Any, b: Any) -> bool:
    """Whether two devices are the same (None, an unknown device, matches any).

    Args:
        a: A device object or None.
        b: A device object or None.

    Returns:
        True when either is None, or they are equal or print alike.
    """
    if a is None or b is None:
        return True
    if a == b:
        return True
    return str(a) == str(b)


def assert_device(actual: Any, device: Any) -> None:
    """``actual`` lives on ``device`` (a device object, or an array whose device is meant).

    Args:
        actual: The result under test.
        device: The expected device, an array on it, or None (no check).

    Raises:
        AssertionError: ``actual`` is on another device.
    """
    if device is None:
        return
    if hasattr(device, "shape") and hasattr(device, "dtype"):
        device = device_of(device)
    got = device_of(actual)
    if not same_device(got, device):
        raise AssertionError(f"expected the result on device {device!r}, got it on {got!r}")


def to_numpy(x: Any, backend: Union[str, Backend]) -> np.ndarray:
    """``x`` as a NumPy array; bfloat16 (which NumPy lacks) comes back as float32.

    Args:
        x: An array of ``backend``, or a NumPy array (returned as it is).
        backend: The backend (or its name) that converts it.

    Returns:
        The NumPy array.
    """
    b = get_backend(backend)
    if isinstance(x, np.ndarray):
        return x
    if _dtype_name(x) == "bfloat16":
        xp = b.namespace()
        x = xp.astype(x, xp.float32)
    return np.asarray(b.to_numpy(x))


def _check_meta(actual, desired_np, *, backend, dtype, device):
    assert_namespace(actual, backend)
    if dtype is not None:
        assert_dtype(actual, dtype, backend)
    shape = tuple(int(s) for s in actual.shape)
    if shape != tuple(desired_np.shape):
        raise AssertionError(f"expected shape {tuple(desired_np.shape)}, got {shape}")
    assert_device(actual, device)


def assert_close(
    actual: Any,
    desired: Any,
    *,
    backend: Union[str, Backend],
    dtype: Optional[str],
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    device: Any = None,
    err_msg: str = "",
) -> None:
    """Check namespace, dtype, shape and device of ``actual``, then its values.

    ``dtype`` is the expected dtype name of ``actual`` (None skips the dtype check and uses
    float32 tolerances); ``rtol``/``atol`` default to :func:`tolerances` of ``dtype``.
    ``device`` is a device, or an input array whose device the result must share; when
    ``desired`` is an array of the same backend its device is used.

    Args:
        actual: The result under test, an array of ``backend``.
        desired: The expected values: a NumPy array (the float64 reference's) or an array of
            the same backend.
        backend: The backend (or its name) under test.
        dtype: The expected dtype name of ``actual``, or None.
        rtol: The relative tolerance; None: that of ``dtype``.
        atol: The absolute tolerance; None: that of ``dtype``.
        device: The expected device, an array on it, or None.
        err_msg: Text added to a failure's message.

    Raises:
        AssertionError: The namespace, dtype, shape, device or values differ.
    """
    b = get_backend(backend)
    if device is None and not isinstance(desired, np.ndarray) and b.is_array_type(type(desired)):
        device = device_of(desired)
    desired_np = np.asarray(to_numpy(desired, b), dtype=np.float64)
    _check_meta(actual, desired_np, backend=b, dtype=dtype, device=device)
    d_rtol, d_atol = tolerances(dtype if dtype in _TOLERANCES else "float32")
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    got = np.asarray(to_numpy(actual, b), dtype=np.float64)
    np.testing.assert_allclose(got, desired_np, rtol=rtol, atol=atol, err_msg=err_msg)


def assert_equal(
    actual: Any,
    desired: Any,
    *,
    backend: Union[str, Backend],
    dtype: Optional[str] = None,
    device: Any = None,
    err_msg: str = "",
) -> None:
    """Like :func:`assert_close` but exact (integers, sampled ids, masks).

    Args:
        actual: The result under test, an array of ``backend``.
        desired: The expected values: a NumPy array or an array of the same backend.
        backend: The backend (or its name) under test.
        dtype: The expected dtype name of ``actual``, or None (not checked).
        device: The expected device, an array on it, or None.
        err_msg: Text added to a failure's message.

    Raises:
        AssertionError: The namespace, dtype, shape, device or values differ.
    """
    b = get_backend(backend)
    if device is None and not isinstance(desired, np.ndarray) and b.is_array_type(type(desired)):
        device = device_of(desired)
    desired_np = np.asarray(to_numpy(desired, b))
    _check_meta(actual, desired_np, backend=b, dtype=dtype, device=device)
    np.testing.assert_array_equal(to_numpy(actual, b), desired_np, err_msg=err_msg)
