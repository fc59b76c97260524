"""TensorFlow backend (eager, and ``tf.function`` with given samples). Imports tensorflow only
when a TensorFlow array is seen or the backend is named.

Arrays: ``tf.Tensor`` (eager tensors and the symbolic tensors of a ``tf.function`` trace) and
``tf.Variable``; results are ``tf.Tensor``s on the inputs' device. Gradients flow through
``tf.GradientTape`` into weights, biases and inputs (and Paddle's ``logits``), none into labels,
sampled candidates or expected counts (``tf.stop_gradient``). Rows are gathered with
``tf.gather``, so the gradient of a weight Variable is a ``tf.IndexedSlices`` holding the
gathered rows only, as with ``tf.nn.sampled_softmax_loss`` itself. Host data (NumPy arrays,
lists) becomes tensors through ``tf.convert_to_tensor``; Python floats become float32 (TF's
default) and integers int64, the index dtype. Floating dtypes: float16, bfloat16, float32,
float64.

The Array API namespace is :mod:`multisampled.backends._tf_array_api` (array-api-compat has no
TensorFlow support); TensorFlow's own classes are not modified.

Value checks (labels in range, positive expected counts) read values on the host for eager
tensors on CPU. On GPU, and while ``tf.function`` traces, they are ``tf.debugging.Assert`` ops
(an ``InvalidArgumentError`` when the check fails) and ids are clipped into range before every
gather. XLA (``tf.function(jit_compile=True)``) drops assertions, so there a value check cannot
run: tracing stops with a ``RuntimeError`` naming the check, unless the caller has switched
value checks under XLA off with :func:`set_xla_value_checks` (``False``: the checks are left
out, invalid ids are clipped into range and invalid counts used as they are), the way
``torch.distributions.Distribution.set_default_validate_args`` switches validation.

``tf.function``: every function traces and runs, gradients included, with given
``sampled_values`` or with a key as ``seed`` (an integer tensor of two 32-bit words, e.g.
``tf.stack([0, step])``); a ``None`` batch dimension in an input signature works. AutoGraph
converts the core's Python code while tracing, which is harmless (its control flow depends on
Python values only) but slow: ``tf.function(autograph=False)`` traces about twice as fast.
``jit_compile=True`` needs ``set_xla_value_checks(False)`` (see above). A built-in sampler
called with an int seed while ``tf.function`` traces raises ``TypeError`` asking for a key: the
seed stream's call counter would advance once, at trace time. ``compute_accidental_hits`` has a
data-dependent output size and runs eagerly only. ``LearnedUnigramSampler`` keeps its counts in
a ``tf.Variable``, updated inside ``tf.function`` too.

Random draws: the core's Threefry, on NumPy copies of eager CPU words, else on uint32 copies of
the words (:func:`_threefry2x32`). The unique samplers' first-occurrence selection is
``tf.unique`` (:func:`_first_distinct`), the portable sorts under XLA.
"""

from __future__ import annotations

import importlib.metadata

from multisampled import kernels, layers, plugin

_MASK32 = 0xFFFFFFFF
_xla_value_checks = True
_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                  "tf-nightly", "tf-nightly-cpu")


def set_xla_value_checks(enabled: bool) -> bool:
    """Whether value checks are required under XLA (``tf.function(jit_compile=True)``), where
    TensorFlow drops assertions; returns the previous setting.

    ``True`` (the default): a function that needs a value check (labels in range, positive
    expected counts) stops tracing under XLA with a ``RuntimeError`` naming the check.
    ``False``: the checks are left out under XLA, explicitly: invalid ids are clipped into range
    before every gather (a label ``>= num_classes`` uses class ``num_classes - 1``) and invalid
    expected counts are used as they are, so validate the inputs before the compiled function.
    Outside XLA nothing changes.
    """
    global _xla_value_checks
    previous, _xla_value_checks = _xla_value_checks, layers.check_bool("enabled", enabled)
    return previous


def xla_value_checks() -> bool:
    """The current :func:`set_xla_value_checks` setting."""
    return _xla_value_checks


def _in_xla_context() -> bool:
    """Whether the graph being traced is compiled by XLA (``jit_compile=True``), where
    assertions are dropped."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # a TensorFlow without these modules: assume no XLA
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph()))


def _is_array_type(tp: type) -> bool:
    import tensorflow as tf

    return issubclass(tp, (tf.Tensor, tf.Variable))


def _resolve_device(device):
    """The canonical TensorFlow name of ``device`` (None stays None).

    ``device`` is a name TensorFlow understands (``"CPU:0"``, ``"/device:GPU:1"``, an array's
    ``.device`` string) or a ``tf.DeviceSpec``; it must name an existing device, since
    TensorFlow's soft placement would otherwise silently put the data elsewhere.
    """
    if device is None or device == "":
        return None
    import tensorflow as tf

    try:
        spec = device if isinstance(device, tf.DeviceSpec) else tf.DeviceSpec.from_string(device)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a TensorFlow device name: {exc}; expected one of "
            f"{_devices()}"
        ) from None
    kind = (spec.device_type or "CPU").upper()
    index = spec.device_index or 0
    for d in tf.config.list_logical_devices():
        if d.device_type.upper() == kind and d.name.endswith(f":{index}"):
            return d.name
    raise ValueError(f"device={device!r} is not a TensorFlow device; expected one of {_devices()}")


def _devices():
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices()]


def _asarray(value, dtype=None, device=None):
    import numpy as np
    import tensorflow as tf

    from . import _tf_array_api as xp

    dev = _resolve_device(device)
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return xp.asarray(value, dtype=dtype, device=dev)
    arr = np.asarray(value, dtype=None if dtype in (None, "bfloat16") else dtype)
    if arr.dtype == object:
        raise TypeError(
            f"cannot convert {type(value).__name__} to a TensorFlow tensor: it holds objects, "
            "expected numbers"
        )
    if dtype is None and arr.dtype.kind == "f" and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)  # Python floats become float32, as tf.constant does
    # host data becomes an eager tensor even while tf.function traces: the core caches tables
    # built here, and a cached symbolic tensor would leak out of its graph
    with tf.init_scope(), xp._on(dev):
        out = tf.convert_to_tensor(arr)
        return tf.cast(out, tf.bfloat16) if dtype == "bfloat16" else out


def _to_numpy(a):
    import numpy as np
    import tensorflow as tf

    if isinstance(a, tf.IndexedSlices):
        a = tf.convert_to_tensor(a)
    if a.dtype == tf.bfloat16:
        a = tf.cast(a, tf.float32)
    return np.asarray(a.numpy())


def _version():
    for dist in _DISTRIBUTIONS:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _device_type(device) -> str:
    import tensorflow as tf

    if isinstance(device, tf.DeviceSpec):
        return (device.device_type or "").upper()
    try:
        return (tf.DeviceSpec.from_string(str(device)).device_type or "").upper()
    except (TypeError, ValueError):
        return ""


def _host_checks(device) -> bool:
    """True for eager execution on CPU (or host data whose default device is a CPU)."""
    import tensorflow as tf

    if not tf.executing_eagerly():  # tf.function traces: values cannot be read
        return False
    if device is None or device == "":
        from . import _tf_array_api

        device = _tf_array_api._default_device()
    return _device_type(device) == "CPU"


def _threefry2x32(xp, key0, key1, c0, c1):
    """The core's Threefry-2x32: on NumPy ``uint32`` copies of eager CPU words (a few dozen
    NumPy operations instead of ~250 eager TensorFlow ops), else on TensorFlow ``uint32``
    copies of the words (graphs of ``tf.function`` too), whose additions wrap by themselves:
    a third fewer ops than masked int64 words."""
    import tensorflow as tf

    words = [v for v in (key0, key1, c0, c1) if isinstance(v, (tf.Tensor, tf.Variable))]
    if tf.executing_eagerly() and all(_device_type(v.device) == "CPU" for v in words):
        return _threefry2x32_host(key0, key1, c0, c1)
    word = c0.dtype
    if word == tf.uint32:
        return kernels.threefry2x32(xp, key0, key1, c0, c1)

    def u32(v):
        return tf.cast(v, tf.uint32) if isinstance(v, (tf.Tensor, tf.Variable)) else v

    x0, x1 = kernels.threefry2x32(xp, u32(key0), u32(key1), u32(c0), u32(c1))
    return tf.cast(x0, word), tf.cast(x1, word)


def _first_distinct(xp, classes, s: int, num_classes: int):
    """:func:`multisampled.kernels.portable_first_distinct` through ``tf.unique``, whose values
    come in first-occurrence order: a dozen ops instead of two sorts. XLA has no ``tf.unique``
    (its output size depends on the values), so under ``jit_compile=True`` the portable
    selection runs."""
    import tensorflow as tf

    if _in_xla_context():
        return kernels.portable_first_distinct(xp, classes, s, num_classes)
    n = classes.shape[0]
    values, index = tf.unique(classes, out_idx=tf.int64)
    count = tf.size(values, out_type=tf.int64)
    # slots past the distinct classes take the last draw, as the portable selection's do
    padded = tf.concat([values, classes[-1:]], axis=0)
    candidates = tf.gather(padded, tf.minimum(tf.range(s, dtype=tf.int64), count))
    last = tf.argmax(tf.cast(tf.equal(index, s - 1), tf.int32), output_type=tf.int64)
    return candidates, tf.where(count >= s, last + 1, tf.constant(n + 1, tf.int64))


def _threefry2x32_host(key0, key1, c0, c1):
    import array_api_compat.numpy as xnp
    import numpy as np
    import tensorflow as tf

    word = c0.dtype
    x0, x1 = np.broadcast_arrays(c0.numpy().astype(np.uint32), c1.numpy().astype(np.uint32))
    y0, y1 = kernels.threefry2x32(xnp, int(key0) & _MASK32, int(key1) & _MASK32, x0, x1)
    with tf.device(c0.device):
        return (tf.convert_to_tensor(y0.astype(word.as_numpy_dtype)),
                tf.convert_to_tensor(y1.astype(word.as_numpy_dtype)))


class TensorFlow(plugin.Backend):
    name = "tensorflow"
    module = "tensorflow"
    extra = "tensorflow"
    async_checks = True

    is_array_type = staticmethod(_is_array_type)
    asarray = staticmethod(_asarray)
    to_numpy = staticmethod(_to_numpy)

    def namespace(self):
        from . import _tf_array_api

        return _tf_array_api

    def version(self):
        return _version()

    def stop_gradient(self, array):
        import tensorflow as tf

        return tf.stop_gradient(array)

    def devices(self):
        return _devices()

    def device_of(self, array):
        return getattr(array, "device", "") or None

    def has_dtype(self, name: str) -> bool:
        return name in ("float16", "bfloat16", "float32", "float64")

    def may_read_values(self, device) -> bool:
        return _host_checks(device)

    def check_async(self, condition, message: str) -> None:
        """``tf.debugging.Assert``: raises ``InvalidArgumentError`` when ``condition`` is False
        (at once in eager mode; when the traced function runs under ``tf.function``, whose
        automatic control dependencies keep the assertion in the graph). Under XLA, which drops
        assertions: a ``RuntimeError`` at trace time, or nothing after
        ``set_xla_value_checks(False)``."""
        import tensorflow as tf

        if _in_xla_context():
            if _xla_value_checks:
                raise RuntimeError(
                    f"{message}: this value check cannot run under XLA (tf.function("
                    "jit_compile=True) drops assertions), so an invalid value would pass "
                    "unreported (ids clipped into range, counts used as given). Validate the "
                    "inputs before the compiled function and call multisampled.backends."
                    "tensorflow.set_xla_value_checks(False) to compile without value checks, "
                    "or compile without jit_compile=True"
                )
            return
        tf.debugging.Assert(condition, [message])

    def is_compiling(self) -> bool:
        import tensorflow as tf

        return not tf.executing_eagerly()

    def compiler(self):
        import tensorflow as tf

        return lambda fn: tf.function(fn, autograph=False)

    def threefry2x32(self, xp, key0, key1, c0, c1):
        return _threefry2x32(xp, key0, key1, c0, c1)

    def first_distinct(self, xp, classes, num_sampled: int, num_classes: int):
        return _first_distinct(xp, classes, num_sampled, num_classes)

    def while_loop(self, cond, body, state):
        import tensorflow as tf

        if tf.executing_eagerly():
            return super().while_loop(cond, body, state)
        return tuple(tf.while_loop(lambda *s: cond(s), lambda *s: body(s), state))

    def new_state(self, value):
        import tensorflow as tf

        with tf.init_scope():
            return tf.Variable(value, trainable=False)

    def assign_state(self, state, value):
        state.assign(value)
        return state

    def read_state(self, state):
        import tensorflow as tf

        return tf.convert_to_tensor(state)


BACKEND = TensorFlow()


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
