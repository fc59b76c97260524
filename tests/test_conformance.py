"""The conformance kit on every installed backend (or only ``$MULTISAMPLED_BACKEND``).

One ``BackendConformance`` subclass per backend is generated below, so test ids read
``TestConformance_torch::test_...``. An unknown ``MULTISAMPLED_BACKEND`` fails collection with
the registry's error, which lists the valid names. The set of backends is the kit plugin's
(:func:`multisampled.conformance.pytest_plugin.backend_names`).
"""

import re

from multisampled.conformance import BackendConformance
from multisampled.conformance.pytest_plugin import backend_names

# Backends whose value, gradient and golden calls run compiled (Backend.compiler()): eager JAX
# compiles every primitive for every new shape.
COMPILED = {"jax"}

for _name in backend_names():
    _cls_name = "TestConformance_" + re.sub(r"\W", "_", _name)
    globals()[_cls_name] = type(
        _cls_name, (BackendConformance,),
        {"backend": _name, "compile_calls": _name in COMPILED, "__module__": __name__},
    )
del _name, _cls_name
