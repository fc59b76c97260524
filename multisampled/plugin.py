"""The one seam between the core and a backend.

A backend is a plugin module declared in the ``multisampled.backends`` entry-point group::

    [project.entry-points."multisampled.backends"]
    cupy = "multisampled_cupy"

The module implements the :func:`multisampled_register_backends` hook and hands the core one
:class:`Backend` per array library (or per device variant) through the ``register`` callback::

    import multisampled.plugin as plugin

    @plugin.hookimpl
    def multisampled_register_backends(register):
        register(plugin.Backend(name="cupy", module="cupy", ...))

Registering must not import the framework: the core only calls the ``Backend``'s callables when
an array of that framework is actually seen (its module is already in ``sys.modules``) or when
the user asks for the backend by name. Everything the Array API standard already offers is taken
from ``namespace()``; the remaining fields are the few things the standard has no word for.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import pluggy

__all__ = ["Backend", "hookimpl", "hookspec", "multisampled_register_backends", "PROJECT"]

PROJECT = "multisampled"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclasses.dataclass(frozen=True)
class Backend:
    """What a plugin tells the core about one array library.

    Required:
      name: the id users select (``backend="torch"``, ``MULTISAMPLED_BACKEND=torch``).
      module: top-level module of the framework (``"torch"``). Array detection looks for it in
        ``sys.modules`` and never imports it.
      is_array_type: ``type -> bool``; called only once ``module`` is imported, cached per type.
      namespace: ``() -> namespace``; the Array API namespace (e.g. ``array_api_compat.torch``).
        May import the framework.
      asarray: ``(host_value, dtype=None, device=None) -> array``; turns NumPy arrays, lists and
        scalars into this backend's arrays. ``dtype`` is a NumPy dtype name or None.
      to_numpy: ``array -> numpy.ndarray`` for reports, the CLI and tests (may synchronise).
      version: ``() -> str | None``; the framework's version, None when it is not installed.
      extra: the pip extra that installs the framework (``multisampled[torch]``).

    Optional (None means "use the portable Array API fallback in the core"):
      stop_gradient: ``array -> array`` that blocks autodiff. Needed by any backend with
        autodiff; the fallback is the identity.
      devices: ``() -> list[str]`` of the devices this backend can run on, for reports.
      device_of: ``array -> str``; a readable device name for reports and errors.
      threefry2x32: a faster implementation of ``multisampled._rng.threefry2x32`` with the same
        signature; the conformance kit checks it is bit-identical to the core's.
      assert_async: ``(condition_array, message) -> None``; raise (possibly later, without a
        host synchronisation) when ``condition_array`` (a 0-d bool array) is False. Backends that
        can check values on the host cheaply leave it None and the core checks eagerly.
      host_checks: whether value checks (label range, positive probabilities) may read array
        values on the host: a bool, or ``device -> bool`` (PyTorch: True on CPU, False on CUDA).
        Where it is False the core uses ``assert_async`` and never synchronises.
      float_dtypes: names of the floating dtypes the backend supports, for the dtype rules.
      key_from_seed: ``(seed, device) -> (key0, key1) | None`` for framework-native seed objects
        (a ``torch.Generator``): the two 32-bit Threefry key words as 0-d word arrays on
        ``device``, drawn from ``seed`` (advancing it) without a host synchronisation; None when
        ``seed`` is not such an object. Each call then uses call index 0 under the fresh key.
      take_rows: ``(table, ids) -> rows``: ``take(table, ids, axis=0)`` for a parameter table
        and 1-D integer ids (every row gather of weights and biases), with the same values and
        gradients, where the backend has a cheaper way (PyTorch: a CPU gradient whose zeros
        need not be filled).
      outside_trace: ``() -> runner | None``, for frameworks whose compiler traces Python code
        and can leave a function to run eagerly (``torch.compile``): while such a trace is in
        progress, a ``runner(fn, *args, **kwargs)`` that calls ``fn`` outside it on every run
        of the compiled code; None otherwise. Every public function asks this first, so the
        seed streams (host state) advance on every call of a compiled function and the
        compiler never traces into the core. Must be cheap and must not import the framework.
    """

    name: str
    module: str
    is_array_type: Callable[[type], bool]
    namespace: Callable[[], Any]
    asarray: Callable[..., Any]
    to_numpy: Callable[[Any], Any]
    version: Callable[[], Optional[str]]
    extra: str
    stop_gradient: Optional[Callable[[Any], Any]] = None
    devices: Optional[Callable[[], list]] = None
    device_of: Optional[Callable[[Any], str]] = None
    threefry2x32: Optional[Callable[..., Any]] = None
    assert_async: Optional[Callable[[Any, str], None]] = None
    host_checks: Any = True
    float_dtypes: tuple = ("float16", "float32", "float64")
    key_from_seed: Optional[Callable[[Any, Any], Any]] = None
    take_rows: Optional[Callable[[Any, Any], Any]] = None
    outside_trace: Optional[Callable[[], Optional[Callable[..., Any]]]] = None

    def available(self) -> bool:
        """True when the framework imports."""
        try:
            return self.version() is not None
        except Exception:  # a broken install is "not available", never a crash of the registry
            return False


@hookspec
def multisampled_register_backends(register: Callable[[Backend], None]) -> None:
    """Register backends by calling ``register(Backend(...))`` once per backend.

    Must not import any array framework.
    """
