"""NumPy backend: the embedded default. Host arrays, no autodiff; every capability portable."""

from __future__ import annotations

from multisampled import plugin


class NumPy(plugin.Backend):
    name = "numpy"
    module = "numpy"
    extra = ""

    def is_array_type(self, tp: type) -> bool:
        import numpy as np  # already in sys.modules when this is called

        return issubclass(tp, (np.ndarray, np.generic))

    def namespace(self):
        import array_api_compat.numpy

        return array_api_compat.numpy

    def asarray(self, value, dtype=None, device=None):
        import numpy as np

        return np.asarray(value, dtype=dtype)

    def devices(self):
        return ["cpu"]

    def device_of(self, array):
        return "cpu"


BACKEND = NumPy()


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
