"""JAX backend (CPU, GPU, TPU). Imports jax only when a JAX array is seen or the backend is named.

Arrays: ``jax.Array`` and every JAX tracer, so ``jax.grad``, ``jax.jit`` and ``jax.vmap`` of a
function calling multisampled run on this backend (a tracer is never taken for a second
framework). Results are JAX arrays; the Array API namespace is ``jax.numpy``.

64-bit types: the backend never changes JAX's configuration. Without ``jax_enable_x64`` (JAX's
default) the index dtype is int32, sampled candidates are int32, and host data is converted to
what JAX can hold: 64-bit integers become 32-bit ones when every value fits (a value that does not
fit is a ``ValueError``, never a wrap-around), float64 host data becomes float32 as JAX itself
does. float64 is available exactly when the user enabled x64.

Value checks (labels in range, positive expected counts) read values on the host only where that
is free and possible: for concrete arrays on CPU, outside any JAX transformation. On GPU/TPU and
inside ``jit``, ``grad``, ``vmap`` and other transformations (where arrays may be tracers whose
values cannot be read) the checks become ``checkify.debug_check``s: wrap the function in
``jax.experimental.checkify.checkify`` to have them reported; in plain ``jit`` they are no-ops
(JAX has no assertion that is both synchronisation-free on accelerators and an ordinary Python
exception), and the core clips class ids into range before every gather, so an invalid id
never reads out of bounds. Shape and dtype checks always run. A ``debug_check`` leaves an
error effect in the traced program, which ``jax.export``'s ``Exported.serialize()`` cannot
write: :func:`set_traced_value_checks` (``False``) leaves the traced checks out, explicitly. Whether a
transformation is active is read from JAX's trace state (``jax._src.core.trace_state_clean``);
should that private function disappear, a public probe detects ``jit``-style tracing (constants
become tracers) and the other transformations then keep host checks.

Random draws: the backend's :func:`threefry2x32` is JAX's own Threefry-2x32 primitive
(``jax.extend.random.threefry2x32_p``, the kernel behind ``jax.random``), bit-identical to the
core's portable implementation and one fused kernel instead of a hundred small operations.
Under ``jax.jit`` (or ``scan``, ``while_loop``, ...) a sampler needs a key as ``seed``
(``jax.random.key(k)``): an int seed's stream would advance once, when the function is traced.
``jax.vmap`` over keys gives per-example candidates.
"""

from __future__ import annotations

from multisampled import kernels, layers, plugin

_MASK32 = 0xFFFFFFFF
_traced_value_checks = True


def set_traced_value_checks(enabled: bool) -> bool:
    """Whether value checks inside JAX transformations and on accelerators are
    ``checkify.debug_check``s; returns the previous setting.

    ``True`` (the default): they are, reported under ``jax.experimental.checkify.checkify``
    and no-ops in plain ``jax.jit``; each leaves an error effect in the traced program, so an
    ``Exported`` from ``jax.export`` cannot be serialized. ``False``: they are left out,
    explicitly, in the manner of ``torch.distributions``' ``validate_args``; invalid ids are
    clipped into range before every gather (a label ``>= num_classes`` uses class
    ``num_classes - 1``) and invalid expected counts are used as they are, so validate the
    inputs before the traced function. Checks that read concrete values on the host are
    unchanged. The setting is read while a function is traced: set it before ``jax.jit`` first
    traces the function (jit keeps one trace per function and argument shapes).

    Args:
        enabled: Whether traced value checks are made.

    Returns:
        The previous setting.

    Raises:
        TypeError: ``enabled`` is not a bool.
    """
    global _traced_value_checks
    previous, _traced_value_checks = _traced_value_checks, layers.check_bool("enabled", enabled)
    return previous


def traced_value_checks() -> bool:
    """The current :func:`set_traced_value_checks` setting.

    Returns:
        Whether traced value checks are made.
    """
    return _traced_value_checks


def _is_jax_value(value) -> bool:
    import jax

    return isinstance(value, (jax.Array, jax.core.Tracer))


def _resolve_device(device):
    """A ``jax.Device`` (or sharding) for ``device``: None, a Device/Sharding, or a name from
    :func:`_devices` (``"cpu:0"``, ``"gpu:1"``) or a platform (``"cpu"``, ``"gpu"``)."""
    if device is None or not isinstance(device, str):
        return device
    import jax

    candidates = list(jax.devices())
    try:
        candidates += [d for d in jax.devices("cpu") if d not in candidates]
    except RuntimeError:
        pass
    for d in candidates:
        if device in (_device_name(d), str(d)):
            return d
    for d in candidates:
        if device == d.platform:
            return d
    raise ValueError(
        f"device={device!r} is not a JAX device; expected one of "
        f"{[_device_name(d) for d in candidates]} or a jax.Device"
    )


def _fit_host(arr):
    """``arr`` (NumPy) in a dtype JAX holds under its current configuration, values unchanged.

    Without x64, 64-bit integers become 32-bit when every value fits; otherwise ValueError.
    Floating data is left to JAX (float64 becomes float32, as ``jax.numpy.asarray`` does).
    """
    import jax
    import numpy as np

    if arr.dtype.kind not in "iu":
        return arr
    target = np.dtype(jax.dtypes.canonicalize_dtype(arr.dtype))
    if target == arr.dtype:
        return arr
    info = np.iinfo(target)
    if arr.size:
        outside = (arr < info.min) | (arr > info.max)
        if outside.any():
            flat = int(np.argmax(outside.reshape(-1)))
            raise ValueError(
                f"{arr.dtype} data holds {arr.reshape(-1)[flat]} at flat position {flat}, "
                f"which JAX without 64-bit mode (jax_enable_x64) cannot hold: expected "
                f"{target} values in [{info.min}, {info.max}]"
            )
    return arr.astype(target)


def _asarray(value, dtype=None, device=None):
    import jax
    import jax.numpy as jnp
    import numpy as np

    dev = _resolve_device(device)
    if _is_jax_value(value):
        out = value
        if dtype is not None:
            target = jnp.bfloat16 if dtype == "bfloat16" else jax.dtypes.canonicalize_dtype(dtype)
            if out.dtype != target:
                out = out.astype(target)
        return out if dev is None else jax.device_put(out, dev)
    # host data becomes a concrete array even while jit traces: the core caches constant tables
    # built here, and a cached tracer would leak out of the trace
    with jax.ensure_compile_time_eval():
        if dtype == "bfloat16":
            return jnp.asarray(np.asarray(value, dtype=np.float32), dtype=jnp.bfloat16, device=dev)
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == object:
            raise TypeError(
                f"cannot convert {type(value).__name__} to a JAX array: it holds objects, "
                "expected numbers"
            )
        arr = _fit_host(arr)
        if dtype is not None and arr.dtype.kind in "fc":
            # an explicit float64 request without x64: JAX's own float32 and its warning
            return jnp.asarray(arr, dtype=arr.dtype, device=dev)
        return jnp.asarray(arr, device=dev)


def _to_numpy(a):
    import jax.numpy as jnp
    import numpy as np

    if a.dtype == jnp.bfloat16:
        a = a.astype(jnp.float32)
    return np.asarray(a)


def _device_name(device) -> str:
    platform = getattr(device, "platform", None)
    if platform is None:
        return str(device)
    return f"{platform}:{device.id}"


def _devices():
    import jax

    found = list(jax.devices())
    try:
        found += [d for d in jax.devices("cpu") if d not in found]
    except RuntimeError:  # a build without the CPU platform
        pass
    return [_device_name(d) for d in found]


def _trace_state_clean():
    """JAX's own "no transformation is active" flag; None where this JAX does not expose it."""
    try:
        from jax._src import core

        return bool(core.trace_state_clean())
    except Exception:
        return None


def _transforming() -> bool:
    """Whether a JAX transformation (jit, grad, vmap, ...) is active in this thread."""
    clean = _trace_state_clean()
    if clean is not None:
        return not clean
    # public fallback: while jit stages a function, even a new constant is a tracer
    import jax
    import jax.numpy as jnp

    return isinstance(jnp.zeros(()), jax.core.Tracer)


def _host_checks(device) -> bool:
    """True for concrete CPU arrays (or host data) outside every JAX transformation."""
    if _transforming():
        return False
    if device is None:  # host data only: nothing lives on an accelerator yet
        return True
    platforms = {getattr(d, "platform", None) for d in getattr(device, "device_set", (device,))}
    return platforms == {"cpu"}


def _threefry2x32(xp, key0, key1, c0, c1):
    """The core's Threefry-2x32 through JAX's own primitive (``threefry2x32_p``): one fused
    kernel instead of a hundred small operations; traced words too."""
    import jax.numpy as jnp

    try:
        from jax.extend.random import threefry2x32_p
    except ImportError:  # an older JAX: the core's portable version
        return kernels.threefry2x32(xp, key0, key1, c0, c1)
    word = c0.dtype
    u32 = jnp.uint32

    def as_u32(v):
        if isinstance(v, int):
            return jnp.asarray(v & _MASK32, dtype=u32)
        return v if v.dtype == u32 else (v & _MASK32).astype(u32)

    a0, a1 = as_u32(c0), as_u32(c1)
    if a0.shape != a1.shape:
        a0, a1 = jnp.broadcast_arrays(a0, a1)
    x0, x1 = threefry2x32_p.bind(as_u32(key0), as_u32(key1), a0, a1)
    if word != u32:  # int64 words (x64 enabled): same bits, the caller's dtype
        x0, x1 = x0.astype(word), x1.astype(word)
    return x0, x1


def _first_distinct(classes, s: int, num_classes: int):
    """:func:`multisampled.kernels.portable_first_distinct` from a per-class table instead of two
    sorts of the draws: each class's first draw position (``.at[].min``), kept draws ranked by
    a cumulative sum and scattered to their slots (the torch backend's CPU selection)."""
    import jax.numpy as jnp

    n = classes.shape[0]
    pos = jnp.arange(n, dtype=classes.dtype)
    first = jnp.full((num_classes,), n, dtype=classes.dtype).at[classes].min(pos)
    is_first = first[classes] == pos
    # kept draws go to slot rank (1-based); the others to slot 0, ranks beyond s to slot s + 1
    slot = jnp.minimum(jnp.cumsum(is_first, dtype=classes.dtype) * is_first, s + 1)
    kept = jnp.full((s + 2,), n, dtype=classes.dtype).at[slot].set(pos)[1:s + 1]
    return classes[jnp.minimum(kept, n - 1)], kept[s - 1] + 1


class Jax(plugin.Backend):
    name = "jax"
    module = "jax"
    extra = "jax"

    def is_array_type(self, tp: type) -> bool:
        import jax

        # tracers are instances of jax.Array but not subclasses of it: name both
        return issubclass(tp, (jax.Array, jax.core.Tracer))

    def namespace(self):
        import jax.numpy

        return jax.numpy

    asarray = staticmethod(_asarray)
    to_numpy = staticmethod(_to_numpy)

    def stop_gradient(self, array):
        import jax

        return jax.lax.stop_gradient(array)

    def devices(self):
        return _devices()

    def device_of(self, array):
        import jax

        if isinstance(array, jax.core.Tracer):
            return None  # no device while a transformation runs
        devices = array.devices()
        return next(iter(devices)) if len(devices) == 1 else array.sharding

    def has_dtype(self, name: str) -> bool:
        if name == "float64":
            import jax

            return bool(jax.config.jax_enable_x64)
        return name in ("float16", "bfloat16", "float32")

    def may_read_values(self, device) -> bool:
        return _host_checks(device)

    def check_async(self, condition, message: str) -> None:
        """``checkify.debug_check``: reported under ``jax.experimental.checkify.checkify``
        (and eagerly), a no-op in plain ``jax.jit``; nothing after
        ``set_traced_value_checks(False)``."""
        if not _traced_value_checks:
            return
        from jax.experimental import checkify

        checkify.debug_check(condition, message.replace("{", "{{").replace("}", "}}"))

    def first_distinct(self, xp, classes, num_sampled, num_classes):
        if kernels.table_fits(num_classes, classes.shape[0]):
            return _first_distinct(classes, num_sampled, num_classes)
        return kernels.portable_first_distinct(xp, classes, num_sampled, num_classes)

    def is_compiling(self) -> bool:
        import jax
        import jax.numpy as jnp

        # while jit (or scan, while_loop) stages a function, even a new constant is a tracer
        return isinstance(jnp.zeros(()), jax.core.Tracer)

    def compiler(self):
        import jax

        return jax.jit

    def while_loop(self, cond, body, state):
        import jax

        return jax.lax.while_loop(cond, body, state)

    def key_words(self, key):
        import jax

        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            impl = str(jax.random.key_impl(key))
            if "threefry2x32" not in impl:
                raise ValueError(
                    f"seed: a JAX key of the {impl} implementation; multisampled draws with "
                    "Threefry-2x32, so pass a threefry key (jax.random.key(k), the default)"
                )
            return jax.random.key_data(key)
        return None

    threefry2x32 = staticmethod(lambda xp, k0, k1, c0, c1: _threefry2x32(xp, k0, k1, c0, c1))

    def group_info(self, group):
        import jax

        if not isinstance(group, str):
            raise TypeError(
                "shard_group must be a mesh axis name (a str) inside jax.shard_map, got "
                f"{type(group).__name__}"
            )
        try:
            return jax.lax.axis_index(group), int(jax.lax.axis_size(group))
        except NameError as e:
            raise ValueError(
                f"shard_group={group!r} is not a mesh axis bound here: call the loss inside "
                f"jax.shard_map over a mesh with the axis {group!r}"
            ) from e

    def all_reduce(self, x, op, group):
        import jax

        if op == "sum":
            return jax.lax.psum(x, group)
        if op == "max":
            return jax.lax.pmax(x, group)
        raise ValueError(f"all_reduce: op must be 'sum' or 'max', got {op!r}")


BACKEND = Jax()


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
