"""The one seam between the core and a backend.

A backend is a plugin module declared in the ``multisampled.backends`` entry-point group::

    [project.entry-points."multisampled.backends"]
    cupy = "multisampled_cupy"

The module implements the :func:`multisampled_register_backends` hook and hands the core one
:class:`Backend` instance per array library (or per device variant) through ``register``::

    from multisampled import plugin

    class CuPy(plugin.Backend):
        name = "cupy"
        module = "cupy"
        extra = "cupy"

        def is_array_type(self, tp):
            import cupy
            return issubclass(tp, cupy.ndarray)

        def namespace(self):
            import cupy
            return cupy

    @plugin.hookimpl
    def multisampled_register_backends(register):
        register(CuPy())

Registering must not import the framework: the core calls a backend's methods only once an
array of that framework has been seen (its module is in ``sys.modules``) or when the user asks
for the backend by name.

:class:`Backend` has a small required core (``name``, ``module``, :meth:`~Backend.is_array_type`
and :meth:`~Backend.namespace`) and optional capabilities. Every capability's default is the
portable behaviour, written next to its contract below, so a backend overrides only what its
framework does differently or faster. Capabilities that depend on the device or on the
framework's configuration take the call's device and are asked on every call.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Callable, Optional, Sequence

import pluggy

__all__ = ["Backend", "hookimpl", "hookspec", "multisampled_register_backends", "PROJECT"]

PROJECT = "multisampled"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Backend:
    """What a plugin tells the core about one array library. Subclass it.

    Required class attributes: ``name`` (the id users select: ``backend="torch"``,
    ``MULTISAMPLED_BACKEND=torch``) and ``module`` (the framework's top-level module; arrays
    are recognised only once it is in ``sys.modules``). ``extra`` is the pip extra that
    installs the framework, shown in error messages (``multisampled[torch]``).

    Required methods: :meth:`is_array_type` and :meth:`namespace`. Everything else has a
    portable default.
    """

    name: str = ""
    module: str = ""
    extra: str = ""

    # ------------------------------------------------------------------ required

    def is_array_type(self, tp: type) -> bool:
        """True for this framework's array types (called once the module is imported; cached
        per type)."""
        raise NotImplementedError(f"{type(self).__name__} must define is_array_type(tp)")

    def namespace(self) -> Any:
        """The Array API namespace the core computes with (may import the framework)."""
        raise NotImplementedError(f"{type(self).__name__} must define namespace()")

    # ------------------------------------------------------------------ conversions

    def version(self) -> Optional[str]:
        """The framework's version, None when it is not installed. Default: the version of the
        distribution named like ``module``."""
        try:
            return importlib.metadata.version(self.module)
        except importlib.metadata.PackageNotFoundError:
            return None

    def available(self) -> bool:
        """True when the framework is installed (a broken install counts as not available)."""
        try:
            return self.version() is not None
        except Exception:
            return False

    def asarray(self, value: Any, dtype: Optional[str] = None, device: Any = None) -> Any:
        """Host data (NumPy arrays, lists, scalars) or an array of this backend as an array of
        this backend. ``dtype`` is a dtype NAME (``"int64"``, ``"bfloat16"``) or None (keep
        NumPy's); ``device`` a device of this backend (an entry of :meth:`devices`, or what
        :meth:`device_of` returns) or None for the default. Default: NumPy, then the
        namespace's ``asarray``."""
        import numpy as np

        xp = self.namespace()
        target = None if dtype is None else getattr(xp, dtype)
        if not _is_numpy(value) and _is_array_api(value):
            out = value if target is None or value.dtype == target else xp.astype(value, target)
            return out if device is None else _to_device(out, device)
        host = np.asarray(value, dtype=None if dtype in (None, "bfloat16") else dtype)
        if host.dtype == object:
            raise TypeError(
                f"cannot convert {type(value).__name__} to a {self.name} array: it holds "
                "objects, expected numbers"
            )
        if target is None:
            target = getattr(xp, host.dtype.name)
        if device is None:
            return xp.asarray(host, dtype=target)
        return xp.asarray(host, dtype=target, device=device)

    def to_numpy(self, array: Any) -> Any:
        """An array of this backend as a NumPy array (reports, the CLI, tests; may
        synchronise). Default: ``numpy.asarray``."""
        import numpy as np

        return np.asarray(array)

    # ------------------------------------------------------------------ devices and dtypes

    def devices(self) -> Sequence[Any]:
        """The devices this backend can run on (reports, the conformance kit's device tests);
        empty means "the default device only"."""
        return []

    def device_of(self, array: Any) -> Any:
        """The device of one of this backend's arrays (None where it has none, e.g. a symbolic
        tensor). The core asks this and nothing else for an array's device."""
        import array_api_compat

        try:
            return array_api_compat.device(array)
        except Exception:
            return getattr(array, "device", None)

    def has_dtype(self, name: str) -> bool:
        """Whether arrays of the floating dtype ``name`` (``"float64"``, ``"bfloat16"``) can be
        made now (JAX without x64 has no float64). Default: the namespace has the dtype."""
        return getattr(self.namespace(), name, None) is not None

    # ------------------------------------------------------------------ autodiff and checks

    def stop_gradient(self, array: Any) -> Any:
        """``array`` cut off from autodiff. Required as soon as the framework has autodiff:
        sampled values and soft labels never get gradients. Default: the identity."""
        return array

    def may_read_values(self, device: Any) -> bool:
        """Whether value checks (labels in range, positive counts) may read this call's values
        on the host: cheap, and possible (no accelerator synchronisation, no tracer). Asked per
        call with the call's device (None for host data). Where it is False the core uses
        :meth:`check_async` and never synchronises."""
        return True

    #: whether :meth:`check_async` reports failed checks (the conformance kit then expects
    #: bad values to raise off the host too)
    async_checks: bool = False

    def check_async(self, condition: Any, message: str) -> None:
        """Report ``message`` (later, without a host synchronisation) where the 0-d bool array
        ``condition`` is False. Default: nothing (checks off the host are skipped; ids are
        kept in range before every gather so nothing reads out of bounds)."""

    # ------------------------------------------------------------------ tracing compilers

    def is_compiling(self) -> bool:
        """Whether a compiler is tracing now (``jax.jit``, ``tf.function``,
        ``torch.compile``): host state (the int seeds' streams) cannot advance once per run of
        the compiled code, so samplers need a key. Default: never."""
        return False

    def outside_trace(self) -> Optional[Callable[..., Any]]:
        """For compilers that trace Python code and can leave a function to run eagerly
        (``torch.compile``): while such a trace is in progress and a call has no key, a
        ``runner(fn, *args, **kwargs)`` that runs ``fn`` outside it on every run of the
        compiled code; None otherwise. Must be cheap and must not import the framework."""
        return None

    def compiler(self) -> Optional[Callable[[Callable[..., Any]], Callable[..., Any]]]:
        """``fn -> compiled fn`` (``jax.jit``, ``tf.function``, ``torch.compile(
        fullgraph=True)``) for the conformance kit's tracing group; None: no compiler."""
        return None

    # ------------------------------------------------------------------ random numbers

    def key_from_seed(self, seed: Any, device: Any) -> Optional[tuple]:
        """For a framework-native seed object (a ``torch.Generator``): two fresh 32-bit key
        words as 0-d word arrays on ``device``, drawn from ``seed`` (advancing it) without a
        host synchronisation; None for anything else."""
        return None

    def key_words(self, key: Any) -> Optional[Any]:
        """For a framework-native key object that is not a plain array of two words (a JAX
        typed key): its two 32-bit words as a 1-D integer array; None for anything else."""
        return None

    def threefry2x32(self, xp: Any, key0: Any, key1: Any, c0: Any, c1: Any) -> tuple:
        """Threefry-2x32 of the counters ``(c0, c1)`` under ``(key0, key1)``: a faster kernel
        of the same bits may replace :func:`multisampled.kernels.threefry2x32` (the default),
        and the conformance kit checks it against an independent reference."""
        from . import kernels

        return kernels.threefry2x32(xp, key0, key1, c0, c1)

    def first_distinct(self, xp: Any, classes: Any, num_sampled: int, num_classes: int) -> tuple:
        """``(candidates [num_sampled], num_tries)``: the first ``num_sampled`` distinct classes
        of the draws ``classes [n]`` in draw order, and the position of the last of them plus
        1 (``> n`` when the draws hold fewer). Default:
        :func:`multisampled.kernels.portable_first_distinct`."""
        from . import kernels

        return kernels.portable_first_distinct(xp, classes, num_sampled, num_classes)

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any],
                   state: Any) -> Any:
        """``while cond(state): state = body(state)`` over a tuple of arrays of fixed shapes
        (the unique sampler's loop where no block size is safe); a framework's own loop
        (``jax.lax.while_loop``, ``tf.while_loop``) lets a compiler trace it. Default: a Python
        loop, which reads ``cond`` on the host."""
        while bool(cond(state)):
            state = body(state)
        return state

    # ------------------------------------------------------------------ the loss's hot path

    def take_rows(self, table: Any, ids: Any) -> Any:
        """``take(table, ids, axis=0)`` for a parameter table and 1-D integer ids, with the same
        values and gradients, where the framework has a cheaper way."""
        return self.namespace().take(table, ids, axis=0)

    def hit_mask(self, xp: Any, labels: Any, candidates: Any, num_classes: int) -> Any:
        """Bool ``[B, S]``: the accidental hits of ``labels [B, T]`` among ``candidates [S]``
        (one integer dtype, ids in ``[0, num_classes)``), as
        :func:`multisampled.kernels.hit_mask` (the default) defines them; a backend may build
        the same mask without sorting."""
        from . import kernels

        return kernels.hit_mask(xp, labels, candidates)

    def sampled_softmax(self, xp: Any, x: Any, true_w: Any, true_b: Any, sampled_w: Any,
                        sampled_b: Any, log_q_true: Any, log_q_sampled: Any, hits: Any,
                        num_true: int) -> Any:
        """TF's per-example sampled softmax loss ``[B]`` (in the compute dtype) on gathered
        rows, as :func:`multisampled.kernels.sampled_softmax` (the default) defines it; a
        backend may fuse it into fewer passes over the ``[B, S]`` logits."""
        from . import kernels

        return kernels.sampled_softmax(xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                       log_q_sampled, hits, num_true, self.stop_gradient)

    # ------------------------------------------------------------------ state

    def new_state(self, value: Any) -> Any:
        """A holder of learned state (the learned unigram's counts) initialised to ``value``,
        which :meth:`assign_state` can update where a trace runs (a ``tf.Variable``, a torch
        buffer). Default: the array itself."""
        return value

    def assign_state(self, state: Any, value: Any) -> Any:
        """Store ``value`` in ``state``; returns the holder to keep. Default: ``value``."""
        return value

    def read_state(self, state: Any) -> Any:
        """The array held by ``state``."""
        return state

    # ------------------------------------------------------------------ collectives

    def group_info(self, group: Any) -> tuple:
        """``(rank, world_size)`` of this process in ``group``, what the losses' ``shard_group=``
        takes (a ``torch.distributed`` process group, a JAX mesh axis name); ``rank`` is an int
        or a 0-d integer array (a traced axis index), ``world_size`` an int. Raise ``TypeError``
        or ``ValueError`` naming ``shard_group`` for anything else. Default: no collectives."""
        raise TypeError(
            f"shard_group={group!r}: the {self.name} backend has no collectives, so its class "
            "table cannot be sharded across ranks (pass the shards as a list on one device "
            "instead)"
        )

    def all_reduce(self, x: Any, op: str, group: Any) -> Any:
        """The elementwise ``op`` (``"sum"`` or ``"max"``) of ``x`` over ``group``, on every
        rank, without a host synchronisation. Gradient of ``"sum"``: each rank's own ``x``
        receives the output's gradient unchanged (every rank holds the same result and
        back-propagates it); ``"max"`` is only taken of values without gradient."""
        raise TypeError(f"the {self.name} backend has no collectives")

    def copy_to_group(self, x: Any, group: Any) -> Any:
        """``x``, the same on every rank of ``group``, as this rank's operand: the value
        unchanged, its gradient summed over the group. Default: ``x`` (right where the
        framework differentiates through its collectives, as JAX under ``shard_map``)."""
        return x

    def __repr__(self) -> str:
        return f"<multisampled backend {self.name!r} ({type(self).__module__})>"


def _is_numpy(value: Any) -> bool:
    import sys

    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, (np.ndarray, np.generic))


def _is_array_api(value: Any) -> bool:
    return hasattr(value, "__array_namespace__")


def _to_device(array: Any, device: Any) -> Any:
    import array_api_compat

    return array_api_compat.to_device(array, device)


@hookspec
def multisampled_register_backends(register: Callable[[Backend], None]) -> None:
    """Register backends by calling ``register(backend)`` once per :class:`Backend` instance.

    Must not import any array framework.
    """
