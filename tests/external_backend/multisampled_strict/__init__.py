"""A multisampled backend for array-api-strict, written as a third-party plugin.

It imports only ``multisampled.plugin`` (the seam) and, lazily, its own framework. Two of
array-api-strict's devices are offered, so the conformance kit checks that results stay on the
inputs' device (array-api-strict refuses to mix devices).
"""

from __future__ import annotations

import importlib.metadata

from multisampled import plugin

DEVICES = ("CPU_DEVICE", "device1")


def _is_array_type(tp: type) -> bool:
    from array_api_strict._array_object import Array

    return issubclass(tp, Array)


def _namespace():
    import array_api_strict

    return array_api_strict


def _device(name):
    import array_api_strict

    if name is None or isinstance(name, array_api_strict.Device):
        return name
    return array_api_strict.Device(str(name))


def _asarray(value, dtype=None, device=None):
    import array_api_strict as xs
    import numpy as np

    if isinstance(value, xs._array_object.Array):
        out = value if dtype is None else xs.astype(value, getattr(xs, np.dtype(dtype).name))
        return out if device is None else out.to_device(_device(device))
    arr = np.asarray(value, dtype=dtype)
    return xs.asarray(arr, device=_device(device))


def _to_numpy(a):
    import array_api_strict as xs
    import numpy as np

    # only arrays on the CPU device convert to NumPy
    return np.asarray(a.to_device(xs.Device("CPU_DEVICE")))


def _version():
    try:
        return importlib.metadata.version("array-api-strict")
    except importlib.metadata.PackageNotFoundError:
        return None


BACKEND = plugin.Backend(
    name="strict",
    module="array_api_strict",
    is_array_type=_is_array_type,
    namespace=_namespace,
    asarray=_asarray,
    to_numpy=_to_numpy,
    version=_version,
    extra="strict",
    devices=lambda: list(DEVICES),
    device_of=lambda a: str(a.device),
    host_checks=True,
    float_dtypes=("float32", "float64"),
)


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
