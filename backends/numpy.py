"""NumPy backend: the embedded default. Host arrays, no autodiff."""

from __future__ import annotations

import importlib.metadata

from multisampled import plugin


def _is_array_type(tp: type) -> bool:
    import numpy as np  # already in sys.modules when this is called

    return issubclass(tp, (np.ndarray, np.generic))


def _namespace():
    import array_api_compat.numpy

    return array_api_compat.numpy


def _asarray(value, dtype=None, device=None):
    import numpy as np

    return np.asarray(value, dtype=dtype)


def _to_numpy(a):
    import numpy as np

    return np.asarray(a)


def _version():
    try:
        return importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        return None


BACKEND = plugin.Backend(
    name="numpy",
    module="numpy",
    is_array_type=_is_array_type,
    namespace=_namespace,
    asarray=_asarray,
    to_numpy=_to_numpy,
    version=_version,
    extra="",
    devices=lambda: ["cpu"],
    device_of=lambda a: "cpu",
    host_checks=True,
)


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
