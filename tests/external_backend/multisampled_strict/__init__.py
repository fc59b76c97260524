"""A multisampled backend for array-api-strict, written as a third-party plugin.

It imports only ``multisampled.plugin`` (the seam) and, lazily, its own framework: a subclass of
:class:`multisampled.plugin.Backend` with the required core and the conversions
array-api-strict's devices need. Two of array-api-strict's devices are offered, so the
conformance kit checks that results stay on the inputs' device (array-api-strict refuses to mix
devices). Every other capability is the portable default (array-api-strict has no float16, which
the default ``has_dtype`` reads from the namespace).
"""

from __future__ import annotations

from multisampled import plugin

DEVICES = ("CPU_DEVICE", "device1")


def _device(name):
    import array_api_strict

    if name is None or isinstance(name, array_api_strict.Device):
        return name
    return array_api_strict.Device(str(name))


class Strict(plugin.Backend):
    name = "strict"
    module = "array_api_strict"
    extra = "strict"

    def is_array_type(self, tp: type) -> bool:
        from array_api_strict._array_object import Array

        return issubclass(tp, Array)

    def namespace(self):
        import array_api_strict

        return array_api_strict

    def version(self):
        import importlib.metadata

        try:
            return importlib.metadata.version("array-api-strict")
        except importlib.metadata.PackageNotFoundError:
            return None

    def asarray(self, value, dtype=None, device=None):
        import array_api_strict as xs
        import numpy as np

        if isinstance(value, xs._array_object.Array):
            out = value if dtype is None else xs.astype(value, getattr(xs, np.dtype(dtype).name))
            return out if device is None else out.to_device(_device(device))
        arr = np.asarray(value, dtype=dtype)
        return xs.asarray(arr, device=_device(device))

    def to_numpy(self, array):
        import array_api_strict as xs
        import numpy as np

        # only arrays on the CPU device convert to NumPy
        return np.asarray(array.to_device(xs.Device("CPU_DEVICE")))

    def devices(self):
        return list(DEVICES)


BACKEND = Strict()


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
