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
    return static_size(x.shape[axis])


def static_size(n: Any) -> Any:
    """A shape entry as an int, or None where it is not known while tracing: ``None`` (TF) or
    a symbolic size (``jax.export``'s, whose ``int()`` raises JAX's
    ``InconclusiveDimensionOperation``, not a ``TypeError``)."""
    if n is None:
        return None
    if isinstance(n, int):
        return n
    try:
        return int(n)
    except Exception:  # a symbolic size
        return None
