"""Facts about arrays of any backend that the Array API standard leaves to helpers."""

from __future__ import annotations

from typing import Any


def device_of(x: Any) -> Any:
    """The device of array ``x`` (None where it has none: a symbolic tensor, say). The one
    definition every core module and the default :meth:`Backend.device_of` use."""
    import array_api_compat

    try:
        return array_api_compat.device(x)
    except Exception:
        return getattr(x, "device", None)


def static_dim(x: Any, axis: int) -> Any:
    """``x.shape[axis]`` as an int, or None where the size is not known while tracing
    (a ``None`` batch dimension of a ``tf.function`` signature)."""
    n = x.shape[axis]
    if n is None:
        return None
    try:
        return int(n)
    except TypeError:  # a symbolic size
        return None
