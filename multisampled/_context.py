"""The per-call context every core function works through: backend, namespace, device.

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
    def may_read_values(self) -> bool:
        """Whether value checks may read this call's arrays on the host (no accelerator
        synchronisation, no tracer): :meth:`Backend.may_read_values` of the call's device."""
        return bool(self.backend.may_read_values(self.device))

    def is_backend_array(self, x: Any) -> bool:
        return x is not None and not _registry.is_host(x)

    def asarray(self, x: Any, dtype: Optional[str] = None) -> Any:
        """A backend array on the call's device. ``dtype`` is a dtype NAME ("int64") or None.

        Backend arrays are returned unchanged when the dtype already matches (no copies);
        host data (NumPy arrays, lists, scalars) is converted by the backend's ``asarray``.
        """
        if self.is_backend_array(x):
            if dtype is None:
                return x
            target = getattr(self.xp, dtype)
            return x if x.dtype == target else self.xp.astype(x, target)
        return self.backend.asarray(x, dtype=dtype, device=self.device)

    def take_rows(self, table: Any, ids: Any) -> Any:
        """``take(table, ids, axis=0)`` through the backend (its cheaper gather, if any)."""
        return self.backend.take_rows(table, ids)

    def stop_gradient(self, x: Any) -> Any:
        return self.backend.stop_gradient(x)


def context(*arrays: Any, backend: Optional[str] = None) -> Ctx:
    """The context for a call whose array arguments are ``arrays``."""
    b = _registry.backend_of(*arrays, backend=backend)
    device = None
    for x in _registry.flatten(arrays):
        if x is not None and not _registry.is_host(x):
            device = b.device_of(x)
            break
    return Ctx(b, b.namespace(), device)


def context_for(backend: Backend, device: Any) -> Ctx:
    """The context of a front end that resolved its backend and device itself."""
    return Ctx(backend, backend.namespace(), device)
