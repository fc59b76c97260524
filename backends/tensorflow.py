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
gather. The GPU path has not been run: only ``tensorflow-cpu`` was available where this backend
was tested.

``tf.function``: the losses with given ``sampled_values`` (Paddle: ``customized_samples``) trace
and run, gradients included; shapes must be static (a ``None`` dimension in an input signature
is refused by the core's shape checks). AutoGraph converts the core's Python code while tracing,
which is harmless (its control flow depends on Python values only) but slow:
``tf.function(autograph=False)`` traces about twice as fast. With ``jit_compile=True`` XLA drops
the assertions, so invalid ids are clipped into range instead of reported. A built-in sampler
called while ``tf.function`` traces raises ``TypeError``: the seed stream's call counter
advances on the host when the function is TRACED, so the traced function would reuse the same
candidates on every call. Draw candidates eagerly and pass them in. ``compute_accidental_hits``
has a data-dependent output size and runs eagerly only.

Random draws: the backend's :func:`_threefry2x32` encrypts eager CPU words with NumPy ``uint32``
arithmetic on the tensors' host buffers (bit-identical to the core's portable Threefry, checked
by the conformance kit); other devices use the core's portable version.
"""

from __future__ import annotations

import importlib.metadata

from multisampled import _rng, plugin

_MASK32 = 0xFFFFFFFF
_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                  "tf-nightly", "tf-nightly-cpu")


def _is_array_type(tp: type) -> bool:
    import tensorflow as tf

    return issubclass(tp, (tf.Tensor, tf.Variable))


def _namespace():
    from . import _tf_array_api

    return _tf_array_api


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


def _stop_gradient(a):
    import tensorflow as tf

    return tf.stop_gradient(a)


def _devices():
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices()]


def _device_of(a) -> str:
    name = getattr(a, "device", "")
    return name or "not placed yet (a tensor of a tf.function graph)"


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


def _assert_async(condition, message: str) -> None:
    """``tf.debugging.Assert``: raises ``InvalidArgumentError`` when ``condition`` is False
    (at once in eager mode; when the traced function runs under ``tf.function``, whose
    automatic control dependencies keep the assertion in the graph)."""
    import tensorflow as tf

    tf.debugging.Assert(condition, [message])


def _threefry2x32(xp, key0, key1, c0, c1):
    """``multisampled._rng.threefry2x32`` for TensorFlow words, bit-identical to the core's.

    Refuses to run while ``tf.function`` traces (see the module docstring). Eager CPU words are
    encrypted with NumPy ``uint32`` arithmetic (a few dozen NumPy operations instead of ~250
    eager TensorFlow ops); other devices use the core's portable version.
    """
    import tensorflow as tf

    if not tf.executing_eagerly():
        raise TypeError(
            "multisampled's candidate samplers cannot run while tf.function traces: the seed "
            "stream advances on the host at trace time, so the traced function would reuse the "
            "same candidates on every call. Draw the candidates eagerly "
            "(multisampled.log_uniform_candidate_sampler(...), say) and pass them as "
            "sampled_values; for the Paddle API pass customized_samples"
        )
    words = [v for v in (key0, key1, c0, c1) if isinstance(v, (tf.Tensor, tf.Variable))]
    if all(_device_type(v.device) == "CPU" for v in words):
        return _threefry2x32_host(key0, key1, c0, c1)
    return _rng.threefry2x32(xp, key0, key1, c0, c1)


def _threefry2x32_host(key0, key1, c0, c1):
    """Threefry-2x32 (20 rounds) of eager CPU tensors in NumPy ``uint32`` (which wraps by
    itself); returns tensors of ``c0``'s dtype on the CPU."""
    import numpy as np
    import tensorflow as tf

    word = c0.dtype
    x0, x1 = _rng.threefry2x32_numpy(int(key0) & _MASK32, int(key1) & _MASK32,
                                     c0.numpy().astype(np.uint32), c1.numpy().astype(np.uint32))
    with tf.device(c0.device):
        return (tf.convert_to_tensor(x0.astype(word.as_numpy_dtype)),
                tf.convert_to_tensor(x1.astype(word.as_numpy_dtype)))


BACKEND = plugin.Backend(
    name="tensorflow",
    module="tensorflow",
    is_array_type=_is_array_type,
    namespace=_namespace,
    asarray=_asarray,
    to_numpy=_to_numpy,
    version=_version,
    extra="tensorflow",
    stop_gradient=_stop_gradient,
    devices=_devices,
    device_of=_device_of,
    threefry2x32=_threefry2x32,
    assert_async=_assert_async,
    host_checks=_host_checks,
    float_dtypes=("float16", "bfloat16", "float32", "float64"),
)


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
