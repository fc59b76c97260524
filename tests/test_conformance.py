"""The conformance kit on every installed backend (or only ``$MULTISAMPLED_BACKEND``).

One ``BackendConformance`` subclass per backend is generated below, so test ids read
``TestConformance_torch::test_...``. An unknown ``MULTISAMPLED_BACKEND`` fails collection with
the registry's error, which lists the valid names. The set of backends is the kit plugin's
(:func:`multisampled.conformance.pytest_plugin.backend_names`).
"""

import re

from multisampled.conformance import BackendConformance
from multisampled.conformance.pytest_plugin import backend_names

# Backends whose kit run only happens when MULTISAMPLED_BACKEND names them: eager JAX compiles
# every operation for every new shape, and the kit takes ~17 min on 2 CPU cores (it passes:
# `MULTISAMPLED_BACKEND=jax pytest tests/test_conformance.py`, or `tox -e jax`).
NAMED_ONLY = {"jax"}
_named = backend_names.__module__ and __import__("multisampled").env_backend_name()

for _name in [n for n in backend_names() if _named or n not in NAMED_ONLY]:
    _cls_name = "TestConformance_" + re.sub(r"\W", "_", _name)
    globals()[_cls_name] = type(
        _cls_name, (BackendConformance,), {"backend": _name, "__module__": __name__}
    )
del _name, _cls_name
