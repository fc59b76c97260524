"""The conformance kit on every installed backend (or only ``$MULTISAMPLED_BACKEND``).

One ``BackendConformance`` subclass per backend is generated below, so test ids read
``TestConformance_torch::test_...``. An unknown ``MULTISAMPLED_BACKEND`` fails collection with
the registry's error, which lists the valid names.
"""

import re

import multisampled
from multisampled import _registry
from multisampled.conformance import BackendConformance


# Backends whose kit run only happens when MULTISAMPLED_BACKEND names them: eager JAX compiles
# every operation for every new shape, and the kit takes ~17 min on 2 CPU cores (it passes:
# `MULTISAMPLED_BACKEND=jax pytest tests/test_conformance.py`, or `tox -e jax`).
NAMED_ONLY = {"jax"}


def backends_under_test():
    """The backend named by ``$MULTISAMPLED_BACKEND``, else every installed backend (less the
    ``NAMED_ONLY`` ones)."""
    named = _registry.env_backend_name()  # raises ValueError listing the valid names
    if named is not None:
        return [named]
    return [i.name for i in multisampled.backends() if i.available and i.name not in NAMED_ONLY]


for _name in backends_under_test():
    _cls_name = "TestConformance_" + re.sub(r"\W", "_", _name)
    globals()[_cls_name] = type(
        _cls_name, (BackendConformance,), {"backend": _name, "__module__": __name__}
    )
del _name, _cls_name
