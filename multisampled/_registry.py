"""Backend registry: plugin loading, array-type detection, and backend selection.

Selection rules (one place, here):
1. Arrays of a framework go to that framework's backend. Two frameworks in one call is a
   ``TypeError`` naming both.
2. Host data (NumPy arrays, lists, scalars) goes to ``backend=`` if given, else the innermost
   ``use_backend(...)``, else ``$MULTISAMPLED_BACKEND``, else ``"numpy"``.
3. An array no plugin claims but that array-api-compat understands (array-api-strict, say) runs
   on a generic backend built from its own namespace, with the portable fallbacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from typing import Any, Iterable, Iterator, NamedTuple, Optional, Union

import pluggy

from . import plugin
from .plugin import Backend

ENV_VAR = "MULTISAMPLED_BACKEND"
ENTRY_POINT_GROUP = "multisampled.backends"
DEFAULT_BACKEND = "numpy"

_lock = threading.RLock()  # re-entrant: a plugin may query the registry while registering
_pm: Optional[pluggy.PluginManager] = None
_backends: dict[str, Backend] = {}
_type_cache: dict[type, Optional[Backend]] = {}
_generic_cache: dict[type, Backend] = {}
# the registered backends' ``outside_trace`` probes; None until the plugins are loaded. Read
# without the lock: a compiler tracing a public function cannot trace a lock.
_trace_probes: Optional[tuple] = None
_selected: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "multisampled_backend", default=None
)


class BackendInfo(NamedTuple):
    """One registered backend, as :func:`multisampled.backends` lists it.

    Attributes:
        name: The backend's name, what ``backend=`` and ``$MULTISAMPLED_BACKEND`` take
            (``"numpy"``, ``"torch"``, ``"jax"``, ``"tensorflow"``, a plugin's).
        version: The framework's version, or None when the framework is not installed.
        available: Whether the framework is installed (``version`` is not None).
        extra: The pip extra that installs the framework (``pip install 'multisampled[torch]'``).
        plugin: The module of the backend's class (the plugin that registered it).
    """

    name: str
    version: Optional[str]
    available: bool
    extra: str
    plugin: str


def _register(backend: Backend) -> None:
    global _trace_probes
    if not isinstance(backend, Backend):
        raise TypeError(
            "register() expects an instance of a multisampled.plugin.Backend subclass, got "
            f"{backend!r} of type {type(backend).__name__}"
        )
    for attr in ("name", "module"):
        if not isinstance(getattr(backend, attr), str) or not getattr(backend, attr):
            raise TypeError(
                f"{type(backend).__name__}.{attr} must be a non-empty str, got "
                f"{getattr(backend, attr)!r}"
            )
    if backend.name in _backends and _backends[backend.name] is not backend:
        raise ValueError(f"backend {backend.name!r} is registered twice")
    _backends[backend.name] = backend
    _trace_probes = _probes_of(_backends)


def plugin_manager() -> pluggy.PluginManager:
    """The loaded plugin manager (built-ins and third parties, through entry points)."""
    global _pm, _trace_probes
    if _pm is not None:  # no lock once loaded: a compiler tracing a call cannot trace one
        return _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(plugin.PROJECT)
            pm.add_hookspecs(plugin)
            _load_entry_points(pm)
            pm.hook.multisampled_register_backends(register=_register)
            _trace_probes = _probes_of(_backends)
            _pm = pm
        return _pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load every plugin of the entry-point group; a broken plugin warns instead of failing."""
    import importlib.metadata
    import warnings

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:
            warnings.warn(
                f"multisampled: backend plugin {ep.name!r} ({ep.value}) failed to load: {exc!r}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        pm.register(module, name=ep.name)


def register_plugin(module_or_object: Any) -> None:
    """Register a plugin object directly (for tests and interactive use)."""
    pm = plugin_manager()
    with _lock:
        pm.register(module_or_object)
        # the hook already ran for the entry-point plugins; run it for this one alone
        pm.subset_hook_caller(
            "multisampled_register_backends",
            remove_plugins=[p for p in pm.get_plugins() if p is not module_or_object],
        )(register=_register)
        _type_cache.clear()


def trace_probes() -> tuple:
    """The registered backends' ``outside_trace`` probes (see
    :attr:`multisampled.plugin.Backend.outside_trace`); loads the plugins the first time."""
    global _trace_probes
    probes = _trace_probes
    if probes is None:
        plugin_manager()
        with _lock:
            probes = _trace_probes = _probes_of(_backends)
    return probes


def _probes_of(backends: dict) -> tuple:
    return tuple(b.outside_trace for b in backends.values()
                 if type(b).outside_trace is not Backend.outside_trace)


def _all() -> dict[str, Backend]:
    plugin_manager()
    return _backends


def backends() -> list[BackendInfo]:
    """The registered backends, with framework version and availability."""
    out = []
    for name, b in sorted(_all().items(), key=lambda kv: (kv[0] != DEFAULT_BACKEND, kv[0])):
        version = None
        try:
            version = b.version()
        except Exception:
            version = None
        mod = type(b).__module__
        out.append(BackendInfo(name, version, version is not None, b.extra, mod))
    return out


def _unknown_backend(name: Any, source: str) -> ValueError:
    infos = backends()
    installed = [i.name for i in infos if i.available]
    missing = [f"{i.name} (pip install 'multisampled[{i.extra}]')" for i in infos if not i.available]
    msg = f"{source}={name!r} is not a known backend; installed backends: {installed}"
    if missing:
        msg += f"; registered but not installed: {missing}"
    return ValueError(msg)


def get_backend(name: Union[str, Backend], *, source: str = "backend") -> Backend:
    """The :class:`~multisampled.plugin.Backend` registered as ``name``; a clear error if
    unknown or not installed.

    Args:
        name: A registered backend's name (``"numpy"``, ``"torch"``, ``"jax"``,
            ``"tensorflow"``, a plugin's, or an ``"array_api:<module>"`` backend already built
            for arrays no plugin claims); a :class:`~multisampled.plugin.Backend` is returned
            as it is.
        source: What the error messages call the name (``"backend"``, ``"use_backend"``,
            ``"MULTISAMPLED_BACKEND"``).

    Returns:
        The registered backend.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: No backend is registered as ``name`` (the message lists the installed
            ones and those registered but not installed).
        ImportError: The backend is registered but its framework is not installed (the message
            gives the pip extra).
    """
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise TypeError(f"{source} must be a backend name (str), got {type(name).__name__}")
    b = _all().get(name)
    if b is None:
        # a generic backend already built for an array type no plugin claims
        # ("array_api:<module>"): core code that names its call's backend finds it again
        b = next((g for g in list(_generic_cache.values()) if g.name == name), None)
    if b is None:
        raise _unknown_backend(name, source)
    if not _available(b):
        raise ImportError(
            f"{source}={name!r}: the backend is registered but its framework is not installed; "
            f"install it with: pip install 'multisampled[{b.extra}]'"
        )
    return b


_availability: dict[str, bool] = {}


def _available(b: Backend) -> bool:
    # reading package metadata costs ~1 ms: once per backend, not once per call
    if b.name not in _availability:
        _availability[b.name] = b.available()
    return _availability[b.name]


def env_backend_name() -> Optional[str]:
    """``$MULTISAMPLED_BACKEND``, validated. The only place the variable is read.

    Returns:
        The variable's value without surrounding spaces, or None when it is unset or blank.

    Raises:
        ValueError: The value names no registered backend.
        ImportError: The value names a registered backend whose framework is not installed.
    """
    value = os.environ.get(ENV_VAR)
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    get_backend(value, source=ENV_VAR)
    return value


def default_backend() -> Backend:
    """The backend host data goes to when no ``backend=`` is given."""
    name = _selected.get()
    if name is not None:
        return get_backend(name, source="use_backend")
    name = env_backend_name()
    return get_backend(name or DEFAULT_BACKEND, source=ENV_VAR if name else "backend")


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Send host data (NumPy arrays, lists, scalars) to backend ``name`` inside the block.

    ``with use_backend("torch") as backend: ...``; blocks nest (the innermost wins) and are
    local to the thread or task (a :mod:`contextvars` variable). Arrays of a framework still go
    to that framework's backend, and ``backend=`` of a call still overrides the block.

    Args:
        name: A registered backend's name.

    Returns:
        A context manager whose ``with`` target is the :class:`~multisampled.plugin.Backend`.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: No backend is registered as ``name``.
        ImportError: The backend is registered but its framework is not installed.
    """
    get_backend(name, source="use_backend")
    token = _selected.set(name)
    try:
        yield get_backend(name)
    finally:
        _selected.reset(token)


def is_host(x: Any) -> bool:
    """Whether ``x`` is host data (None, Python scalars and sequences, NumPy)."""
    if x is None or isinstance(x, (bool, int, float, complex, list, tuple, str, bytes)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, (np.ndarray, np.generic))


def _claim(x: Any) -> Optional[Backend]:
    tp = type(x)
    try:
        return _type_cache[tp]
    except KeyError:
        pass
    found = None
    for b in _all().values():
        if b.module in sys.modules:
            try:
                if b.is_array_type(tp):
                    found = b
                    break
            except Exception:
                continue
    if found is None:
        found = _generic_for_instance(x)
    _type_cache[tp] = found
    return found


class _Generic(Backend):
    """A backend for arrays no plugin claims but array-api-compat understands (array-api-strict,
    say): their own namespace and the portable defaults."""

    extra = ""

    def __init__(self, tp: type, xp: Any):
        self.tp, self.xp = tp, xp
        self.module = tp.__module__.split(".")[0]
        self.name = f"array_api:{self.module}"

    def is_array_type(self, t: type) -> bool:
        return t is self.tp

    def namespace(self) -> Any:
        return self.xp

    def version(self) -> Optional[str]:
        mod = sys.modules.get(self.module)
        return getattr(mod, "__version__", "unknown") if mod is not None else None


def _generic_for_instance(x: Any) -> Optional[Backend]:
    tp = type(x)
    if tp in _generic_cache:
        return _generic_cache[tp]
    import array_api_compat

    if not array_api_compat.is_array_api_obj(x):
        return None
    b = _Generic(tp, array_api_compat.array_namespace(x))
    _generic_cache[tp] = b
    return b


def backend_of(*arrays: Any, backend: Optional[str] = None) -> Backend:
    """The backend for a call whose array arguments are ``arrays`` (nested lists allowed)."""
    found: Optional[Backend] = None
    found_type: Optional[type] = None
    for x in flatten(arrays):
        if is_host(x):
            continue
        b = _claim(x)
        if b is None:
            raise TypeError(
                f"multisampled does not know arrays of type {type(x).__module__}."
                f"{type(x).__qualname__}; installed backends: "
                f"{[i.name for i in backends() if i.available]}"
            )
        if found is None:
            found, found_type = b, type(x)
        elif b is not found:
            raise TypeError(
                f"arrays from two frameworks in one call: {found.name} "
                f"({found_type.__module__}.{found_type.__qualname__}) and {b.name} "
                f"({type(x).__module__}.{type(x).__qualname__}); convert them to one framework"
            )
    if found is not None:
        if backend is not None:
            requested = get_backend(backend)
            if requested is not found:
                raise TypeError(
                    f"backend={backend!r} was requested but the arrays are {found.name} arrays "
                    f"({found_type.__module__}.{found_type.__qualname__})"
                )
        return found
    if backend is not None:
        return get_backend(backend)
    return default_backend()


def flatten(items: Iterable[Any]):
    for x in items:
        if isinstance(x, (list, tuple)):
            # a list of shards or a sampled_values triple: look inside
            yield from flatten(x)
        else:
            yield x


def _reset_for_tests() -> None:
    """Forget loaded plugins and caches (tests that install plugins use this)."""
    global _pm, _trace_probes
    with _lock:
        _pm = None
        _trace_probes = None
        _backends.clear()
        _type_cache.clear()
        _generic_cache.clear()
        _availability.clear()
