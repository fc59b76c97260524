"""The per-call context every core function works through: backend, namespace, conversions.

Core modules never call the registry or a framework themselves; they take a ``Ctx`` from
:func:`context` and use ``ctx.xp`` (the Array API namespace) plus the few helpers here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from . import _registry
from .plugin import Backend


@dataclasses.dataclass(frozen=True)
class Ctx:
    backend: Backend
    xp: Any
    device: Any  # the device of the first backend array seen, or None for host data

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def index_dtype(self):
        """The backend's default integer dtype for indices (int64, or int32 on JAX without x64)."""
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is not None:
            try:
                return info().default_dtypes(device=self.device)["indexing"]
            except Exception:
                pass
        return self.xp.int64

    @property
    def host_checks(self) -> bool:
        """Whether value checks may read this call's arrays on the host (no accelerator sync)."""
        h = self.backend.host_checks
        return bool(h(self.device)) if callable(h) else bool(h)

    def is_backend_array(self, x: Any) -> bool:
        return x is not None and not _registry._is_host(x)

    def asarray(self, x: Any, dtype: Optional[str] = None) -> Any:
        """A backend array on the call's device. ``dtype`` is a dtype NAME ("int64") or None.

        Backend arrays are returned unchanged when the dtype already matches (no copies);
        host data (NumPy arrays, lists, scalars) is converted by the backend's ``asarray``.
        """
        if self.is_backend_array(x):
            if dtype is None:
                return x
            target = self.dtype(dtype)
            return x if x.dtype == target else self.xp.astype(x, target)
        return self.backend.asarray(x, dtype=dtype, device=self.device)

    def dtype(self, name: str):
        return getattr(self.xp, name)

    def take_rows(self, table: Any, ids: Any) -> Any:
        """``take(table, ids, axis=0)``, through the backend's ``take_rows`` when it has one."""
        f = self.backend.take_rows
        return self.xp.take(table, ids, axis=0) if f is None else f(table, ids)

    def stop_gradient(self, x: Any) -> Any:
        f = self.backend.stop_gradient
        return x if f is None else f(x)


def context(*arrays: Any, backend: Optional[str] = None) -> Ctx:
    """The context for a call whose array arguments are ``arrays``."""
    b = _registry.backend_of(*arrays, backend=backend)
    xp = b.namespace()
    device = None
    for x in _registry._flatten(arrays):
        if x is not None and not _registry._is_host(x):
            device = _device(xp, x)
            break
    return Ctx(b, xp, device)


def _device(xp: Any, x: Any) -> Any:
    import array_api_compat

    try:
        return array_api_compat.device(x)
    except Exception:
        return getattr(x, "device", None)
