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

from ._types import Array

__all__ = ["Backend", "hookimpl", "hookspec", "multisampled_register_backends", "PROJECT"]

PROJECT = "multisampled"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Backend:
    """What a plugin tells the core about one array library. Subclass it: set ``name`` (what
    users select: ``backend="torch"``, ``MULTISAMPLED_BACKEND=torch``), ``module`` (the
    framework's top-level module: arrays are recognised once it is in ``sys.modules``) and
    ``extra`` (the pip extra named in error messages), and define :meth:`is_array_type` and
    :meth:`namespace`. Everything else has a portable default.
    """

    name: str = ""
    module: str = ""
    extra: str = ""

    # ------------------------------------------------------------------ required

    def is_array_type(self, tp: type) -> bool:
        """Whether ``tp`` is an array type of this framework (asked once the module is
        imported; cached per type).

        Args:
            tp: A type (``type(x)`` of an argument of a call).

        Returns:
            True for this framework's array types.

        Raises:
            NotImplementedError: The subclass does not define it (it is required).
        """
        raise NotImplementedError(f"{type(self).__name__} must define is_array_type(tp)")

    def namespace(self) -> Any:
        """The Array API namespace the core computes with (may import the framework).

        Returns:
            The Array API namespace of this framework's arrays.

        Raises:
            NotImplementedError: The subclass does not define it (it is required).
        """
        raise NotImplementedError(f"{type(self).__name__} must define namespace()")

    # ------------------------------------------------------------------ conversions

    def version(self) -> Optional[str]:
        """The framework's version. Default: that of the distribution named like ``module``.

        Returns:
            The framework's version string, or None when it is not installed.
        """
        try:
            return importlib.metadata.version(self.module)
        except importlib.metadata.PackageNotFoundError:
            return None

    def available(self) -> bool:
        """Whether the framework is installed (a broken install counts as not available).

        Returns:
            True when :meth:`version` names a version; False otherwise, also when it raises.
        """
        try:
            return self.version() is not None
        except Exception:
            return False

    def asarray(self, value: Array, dtype: Optional[str] = None, device: Any = None) -> Array:
        """Host data or an array of this backend as an array of this backend. Default: NumPy,
        then the namespace's ``asarray``.

        Args:
            value: Host data (a NumPy array, nested lists, Python scalars) or an array of this
                backend.
            dtype: A dtype name (``"int64"``, ``"bfloat16"``), or None to keep the dtype of
                ``value`` (NumPy's for host data).
            device: A device of this backend (an entry of :meth:`devices`, or what
                :meth:`device_of` returns), or None for the default device (an array of this
                backend stays where it is).

        Returns:
            An array of this backend.

        Raises:
            TypeError: ``value`` holds objects rather than numbers.
        """
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

    def to_numpy(self, array: Array) -> Any:
        """An array of this backend as a NumPy array (for reports, the CLI and tests; it may
        synchronise). Default: ``numpy.asarray``.

        Args:
            array: An array of this backend.

        Returns:
            A NumPy array of the same values.
        """
        import numpy as np

        return np.asarray(array)

    # ------------------------------------------------------------------ devices and dtypes

    def devices(self) -> Sequence[Any]:
        """The devices this backend can run on (for reports and the kit's device tests).

        Returns:
            The backend's devices; empty for "the default device only".
        """
        return []

    def device_of(self, array: Array) -> Any:
        """The device of one of this backend's arrays: the core asks this and nothing else.

        Args:
            array: An array of this backend.

        Returns:
            The array's device, or None where it has none.
        """
        import array_api_compat

        try:
            return array_api_compat.device(array)
        except Exception:
            return getattr(array, "device", None)

    def has_dtype(self, name: str) -> bool:
        """Whether arrays of a floating dtype can be made now (JAX without x64 has no float64).
        Default: the namespace has the dtype.

        Args:
            name: A floating dtype name (``"float64"``, ``"bfloat16"``).

        Returns:
            True when arrays of that dtype can be made now.
        """
        return getattr(self.namespace(), name, None) is not None

    # ------------------------------------------------------------------ autodiff and checks

    def stop_gradient(self, array: Array) -> Array:
        """``array`` cut off from autodiff, as sampled values and soft labels are. Required as
        soon as the framework has autodiff. Default: the identity.

        Args:
            array: An array of this backend.

        Returns:
            ``array``'s values, without gradient.
        """
        return array

    def may_read_values(self, device: Any) -> bool:
        """Whether value checks (labels in range, positive counts) may read this call's values
        on the host: cheap, and possible (no accelerator synchronisation, no tracer). Asked per
        call; where it is False the core uses :meth:`check_async` and never synchronises.

        Args:
            device: The call's device (what :meth:`device_of` returns), or None for host data.

        Returns:
            True when value checks may read the call's values on the host.
        """
        return True

    #: whether :meth:`check_async` reports failed checks (the conformance kit then expects
    #: bad values to raise off the host too)
    async_checks: bool = False

    def check_async(self, condition: Array, message: str) -> None:
        """Report ``message`` (later, without a host synchronisation) where the 0-d bool array
        ``condition`` is False. Default: nothing (checks off the host are skipped; ids are
        kept in range before every gather so nothing reads out of bounds).

        Args:
            condition: A 0-d bool array of this backend: the check holds where it is True.
            message: The error message to report where it is False.
        """

    # ------------------------------------------------------------------ tracing compilers

    def is_compiling(self) -> bool:
        """Whether a compiler is tracing now (``jax.jit``, ``tf.function``, ``torch.compile``):
        then samplers need a key, as host state (an int seed's stream) cannot advance once per
        run of the compiled code.

        Returns:
            True while a compiler is tracing. Default: never.
        """
        return False

    def outside_trace(self) -> Optional[Callable[..., Any]]:
        """For compilers that trace Python code and can leave a function to run eagerly
        (``torch.compile``): while such a trace is in progress and a call has no key, a
        ``runner(fn, *args, **kwargs)`` that runs ``fn`` outside it on every run of the
        compiled code; None otherwise. Must be cheap and must not import the framework.

        Returns:
            A ``runner(fn, *args, **kwargs)`` while such a trace is in progress, None otherwise.
        """
        return None

    def compiler(self) -> Optional[Callable[[Callable[..., Any]], Callable[..., Any]]]:
        """The compiler the conformance kit's tracing group uses.

        Returns:
            ``fn -> compiled fn`` (``jax.jit``, ``tf.function``,
            ``torch.compile(fullgraph=True)``), or None where the framework has none.
        """
        return None

    # ------------------------------------------------------------------ random numbers

    def key_from_seed(self, seed: Any, device: Any) -> Optional[tuple[Array, Array]]:
        """Two fresh key words drawn from a framework-native seed object (a ``torch.Generator``,
        which advances) without a host synchronisation.

        Args:
            seed: The ``seed`` a sampler was given.
            device: The call's device.

        Returns:
            ``(key0, key1)``, two 0-d 32-bit word arrays on ``device``, for a framework-native seed
            object; None for anything else.
        """
        return None

    def key_words(self, key: Any) -> Optional[Array]:
        """The words of a framework-native key object that is not a plain array of two words
        (a JAX typed key).

        Args:
            key: The key a sampler was given.

        Returns:
            A 1-D integer array of the key's two 32-bit words, for a framework-native key object;
            None for anything else.
        """
        return None

    def threefry2x32(self, xp: Any, key0: Array, key1: Array, c0: Array,
                     c1: Array) -> tuple[Array, Array]:
        """Threefry-2x32: a faster kernel of the same bits may replace
        :func:`multisampled.kernels.threefry2x32` (the default); the kit checks it against an
        independent reference.

        Args:
            xp: The Array API namespace of the arrays.
            key0: The key's first 32-bit word.
            key1: The key's second 32-bit word.
            c0: The counters' first words (32-bit unsigned).
            c1: The counters' second words, of the shape of ``c0``.

        Returns:
            ``(x0, x1)``: the two encrypted words, of the shape of ``c0``.
        """
        from . import kernels

        return kernels.threefry2x32(xp, key0, key1, c0, c1)

    def draw_classes(self, key0: Any, key1: Any, call_index: Any, start: Any, count: int,
                     device: Any, *, uniform_range: Optional[int] = None,
                     cdf_keys: Optional[Array] = None) -> Optional[Array]:
        """The classes of draws ``start .. start+count-1`` of one call in one fused kernel:
        ``floor(u * uniform_range)``, or the number of ``cdf_keys`` (int64 signed thresholds of
        :func:`multisampled.kernels.table_plan`) at most the draw's. Default: None (no kernel).

        Args:
            key0: The key's first word (a Python int or a 0-d integer array).
            key1: The key's second word, as ``key0``.
            call_index: The call's counter word, as ``key0``.
            start: The first draw index, as ``key0``.
            count: The number of draws.
            device: The call's device (None for host data).
            uniform_range: ``R`` of a uniform distribution, or None.
            cdf_keys: The thresholds of a table distribution, or None (exactly one is given).

        Returns:
            ``[count]`` classes in the index dtype, or None where the backend has no kernel.
        """
        return None

    def first_distinct(self, xp: Any, classes: Array, num_sampled: int,
                       num_classes: int) -> tuple[Array, Array]:
        """The first ``num_sampled`` distinct classes of the draws, in draw order. Default:
        :func:`multisampled.kernels.portable_first_distinct`.

        Args:
            xp: The Array API namespace of ``classes``.
            classes: ``[n]`` integer draws, ids in ``[0, num_classes)``.
            num_sampled: How many distinct classes to take.
            num_classes: The number of classes (the bound of the ids).

        Returns:
            ``(candidates [num_sampled], num_tries)``: the first distinct classes in draw order,
            and the position of the last of them plus 1 (``> n`` when the draws hold fewer).
        """
        from . import kernels

        return kernels.portable_first_distinct(xp, classes, num_sampled, num_classes)

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any],
                   state: Any) -> Any:
        """``while cond(state): state = body(state)`` over a tuple of arrays of fixed shapes
        (the unique sampler's loop where no block size is safe); a framework's own loop
        (``jax.lax.while_loop``, ``tf.while_loop``) lets a compiler trace it. Default: a Python
        loop, which reads ``cond`` on the host.

        Args:
            cond: ``state -> 0-d bool array``: whether to run ``body`` once more.
            body: ``state -> state``, of the same structure, shapes and dtypes.
            state: The initial state: a tuple of arrays of fixed shapes.

        Returns:
            The state once ``cond`` is False.
        """
        while bool(cond(state)):
            state = body(state)
        return state

    # ------------------------------------------------------------------ the loss's hot path

    def take_rows(self, table: Array, ids: Array) -> Array:
        """``take(table, ids, axis=0)`` with the same values and gradients, where the framework
        has a cheaper way.

        Args:
            table: A ``[C, ...]`` parameter table of this backend.
            ids: 1-D integer ids in ``[0, C)``.

        Returns:
            ``[len(ids), ...]``: the rows of ``table`` at ``ids``.
        """
        return self.namespace().take(table, ids, axis=0)

    def hit_mask(self, xp: Any, labels: Array, candidates: Array, num_classes: int) -> Array:
        """The accidental hits of the labels among the candidates, as
        :func:`multisampled.kernels.hit_mask` (the default) defines them; a backend may build
        the same mask without sorting.

        Args:
            xp: The Array API namespace of both arrays.
            labels: ``[B, T]`` integer labels.
            candidates: ``[S]`` integer candidates, of the dtype of ``labels``.
            num_classes: The number of classes (the bound of the ids).

        Returns:
            A bool ``[B, S]`` array: True at the accidental hits.
        """
        from . import kernels

        return kernels.hit_mask(xp, labels, candidates)

    def sampled_softmax(self, xp: Any, x: Array, true_w: Array, true_b: Array, sampled_w: Array,
                        sampled_b: Array, log_q_true: Optional[Array],
                        log_q_sampled: Optional[Array], hits: Optional[Array],
                        num_true: int) -> Array:
        """TF's per-example sampled softmax loss on gathered rows, as
        :func:`multisampled.kernels.sampled_softmax` (the default) defines it; a backend may
        fuse it into fewer passes over the ``[B, S]`` logits.

        Args:
            xp: The Array API namespace of the arrays.
            x: ``[B, D]`` floating inputs.
            true_w: ``[B*T, D]`` the labels' weight rows (row-major).
            true_b: ``[B*T]`` the labels' biases.
            sampled_w: ``[S, D]`` the candidates' weight rows.
            sampled_b: ``[S]`` the candidates' biases.
            log_q_true: The log expected counts of the labels (broadcasting to ``[B, T]``), or None
                when log Q is not subtracted.
            log_q_sampled: The log expected counts of the candidates (broadcasting to ``[S]``);
                read only when ``log_q_true`` is not None.
            hits: A bool ``[B, S]`` accidental-hit mask, or None.
            num_true: ``T``, the labels per example.

        Returns:
            ``[B]``: the per-example loss, in the compute dtype of ``x``.
        """
        from . import kernels

        return kernels.sampled_softmax(xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                       log_q_sampled, hits, num_true, self.stop_gradient)

    # ------------------------------------------------------------------ state

    def new_state(self, value: Array) -> Any:
        """A holder of learned state (the learned unigram's counts) that :meth:`assign_state`
        can update where a trace runs (a ``tf.Variable``, a torch buffer). Default: the array.

        Args:
            value: The initial array.

        Returns:
            The holder of the state.
        """
        return value

    def assign_state(self, state: Any, value: Array) -> Any:
        """Store ``value`` in ``state``; returns the holder to keep. Default: ``value``.

        Args:
            state: A holder from :meth:`new_state` (or a previous :meth:`assign_state`).
            value: The new array.

        Returns:
            The holder to keep (``state`` updated, or a new holder).
        """
        return value

    def read_state(self, state: Any) -> Array:
        """The array a state holder holds.

        Args:
            state: A holder from :meth:`new_state` or :meth:`assign_state`.

        Returns:
            The array it holds.
        """
        return state

    # ------------------------------------------------------------------ collectives

    def group_info(self, group: Any) -> tuple[Any, int]:
        """This process's place in a group the losses' ``shard_group=`` takes (a
        ``torch.distributed`` process group, a JAX mesh axis name). Default: no collectives.

        Args:
            group: The losses' ``shard_group=``.

        Returns:
            ``(rank, world_size)``: this process's rank in ``group`` (an int, or a 0-d integer
            array: a traced axis index) and the group's size (an int).

        Raises:
            TypeError: ``group`` is not a group of this backend, naming ``shard_group`` (the
                default raises it for every group: the backend has no collectives).
            ValueError: An override may raise it instead, naming ``shard_group``, for a group of
                the right type that cannot be used.
        """
        raise TypeError(
            f"shard_group={group!r}: the {self.name} backend has no collectives, so its class "
            "table cannot be sharded across ranks (pass the shards as a list on one device "
            "instead)"
        )

    def all_reduce(self, x: Array, op: str, group: Any) -> Array:
        """The elementwise reduction of ``x`` over ``group``, on every rank, without a host
        synchronisation. Gradient of ``"sum"``: each rank's own ``x``
        receives the output's gradient unchanged (every rank holds the same result and
        back-propagates it); ``"max"`` is only taken of values without gradient.

        Args:
            x: An array of this backend.
            op: ``"sum"`` or ``"max"``.
            group: A group :meth:`group_info` accepts.

        Returns:
            The reduction of ``x`` over ``group``, of the shape and dtype of ``x``.

        Raises:
            TypeError: The backend has no collectives (the default).
        """
        raise TypeError(f"the {self.name} backend has no collectives")

    def copy_to_group(self, x: Array, group: Any) -> Array:
        """``x``, the same on every rank of ``group``, as this rank's operand: the value
        unchanged, its gradient summed over the group. Default: ``x`` (right where the
        framework differentiates through its collectives, as JAX under ``shard_map``).

        Args:
            x: An array of this backend, the same on every rank.
            group: A group :meth:`group_info` accepts.

        Returns:
            ``x``'s value, whose gradient is summed over ``group``.
        """
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

    Args:
        register: Called once per backend with its :class:`Backend` instance.
    """
