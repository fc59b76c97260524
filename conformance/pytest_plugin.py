"""Opt-in pytest plugin of the conformance kit: backend fixtures and a report header.

Not auto-loaded (it is not declared under ``pytest11``). Enable it with::

    pytest -p multisampled.conformance.pytest_plugin

or ``pytest_plugins = ["multisampled.conformance.pytest_plugin"]`` in a top-level conftest.py.

Fixtures (parametrized over the backends under test: ``$MULTISAMPLED_BACKEND`` alone when set,
else every installed backend; an unknown name fails with the registry's list of valid names):

- ``conformance_backend``: the :class:`multisampled.plugin.Backend`.
- ``backend_name``: its name. ``xp``: its Array API namespace.
- ``to_backend(value, dtype=None, device=None)`` / ``to_numpy(array)``: conversions.
- ``assert_close(actual, desired, *, dtype, rtol=None, atol=None, device=None)``:
  :func:`multisampled.conformance.testing.assert_close` bound to the backend.
- ``reference``: the float64 reference model (:mod:`multisampled.conformance.reference`).

The header names the backends under test, their framework versions and devices, and the
``MULTISAMPLED_BACKEND`` and ``HYPOTHESIS_PROFILE`` variables. ``HYPOTHESIS_PROFILE=ci`` (or
``quick``, ``dev``) selects a profile the kit registers when the project has not registered its
own.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

def backend_names() -> list[str]:
    """The backends under test: ``$MULTISAMPLED_BACKEND`` alone, else all installed ones (the
    one definition: the project's own kit run uses it too).

    Returns:
        The backend names, the default backend first.

    Raises:
        ValueError: ``$MULTISAMPLED_BACKEND`` names no registered backend (the message lists
            the valid names).
        ImportError: It names a backend whose framework is not installed.
    """
    import multisampled

    named = multisampled.env_backend_name()  # ValueError listing the valid names when unknown
    if named is not None:
        return [named]
    return [info.name for info in multisampled.backends() if info.available]


PROFILES = {
    "quick": dict(max_examples=10),
    "dev": dict(max_examples=20),
    "ci": dict(max_examples=60, derandomize=True, print_blob=True),
}


def register_profiles(overwrite: bool = False) -> None:
    """Register the kit's hypothesis profiles (deadlines off: first calls of a framework compile
    kernels) and load ``$HYPOTHESIS_PROFILE``. ``overwrite=False`` (the plugin's default) keeps
    a profile of the same name that is already registered (a project's own; note that
    hypothesis ships a ``ci`` profile of its own too).

    Args:
        overwrite: Whether to replace profiles of the same names that are registered already.

    Raises:
        hypothesis.errors.InvalidArgument: ``$HYPOTHESIS_PROFILE`` names no registered
            profile.
    """
    from hypothesis import HealthCheck, settings

    relaxed = [HealthCheck.too_slow, HealthCheck.data_too_large]
    for name, kwargs in PROFILES.items():
        if not overwrite:
            try:
                settings.get_profile(name)
                continue
            except Exception:
                pass
        settings.register_profile(name, deadline=None, suppress_health_check=relaxed, **kwargs)
    profile = os.environ.get("HYPOTHESIS_PROFILE")
    if profile:
        settings.load_profile(profile)


def pytest_configure(config):
    register_profiles()


def pytest_report_header(config):
    lines = []
    try:
        import multisampled
        from multisampled.conformance.testing import get_backend

        names = backend_names()
        described = []
        for name in names:
            spec = get_backend(name)
            devices = spec.devices() if spec.devices is not None else ["default"]
            described.append(f"{name} {spec.version()} (devices: {', '.join(map(str, devices))})")
        lines.append(f"multisampled {multisampled.__version__}; conformance backends: "
                     + "; ".join(described))
    except Exception as exc:  # the header must never hide the real error, which collection shows
        lines.append(f"multisampled conformance backends: unavailable ({exc})")
    try:
        from hypothesis import settings

        loaded = f"max_examples={settings.default.max_examples}"
    except Exception:
        loaded = "hypothesis not importable"
    lines.append(
        f"MULTISAMPLED_BACKEND={os.environ.get('MULTISAMPLED_BACKEND', '<unset>')}; "
        f"HYPOTHESIS_PROFILE={os.environ.get('HYPOTHESIS_PROFILE', '<unset>')} ({loaded})"
    )
    return lines


def pytest_generate_tests(metafunc):
    # every backend fixture depends on ``backend_name``, so it is in the closure of any of them
    if "backend_name" in metafunc.fixturenames:
        names = backend_names()
        metafunc.parametrize("backend_name", names, ids=names, scope="session")


@pytest.fixture(scope="session")
def conformance_backend(backend_name):
    from multisampled.conformance.testing import get_backend

    return get_backend(backend_name)


@pytest.fixture(scope="session")
def xp(conformance_backend):
    return conformance_backend.namespace()


@pytest.fixture(scope="session")
def to_backend(conformance_backend, xp):
    def convert(value, dtype=None, device=None):
        if dtype == "bfloat16":
            arr = conformance_backend.asarray(np.asarray(value, np.float32), dtype="float32",
                                              device=device)
            return xp.astype(arr, xp.bfloat16)
        return conformance_backend.asarray(np.asarray(value), dtype=dtype, device=device)

    return convert


@pytest.fixture(scope="session")
def to_numpy(conformance_backend):
    from multisampled.conformance.testing import to_numpy as convert

    return functools.partial(convert, backend=conformance_backend)


@pytest.fixture(scope="session")
def assert_close(conformance_backend):
    from multisampled.conformance.testing import assert_close as check

    return functools.partial(check, backend=conformance_backend)


@pytest.fixture(scope="session")
def reference():
    from multisampled.conformance import reference as module

    return module
