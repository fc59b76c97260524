"""PyTorch backend (CPU and CUDA). Imports torch only when a torch tensor is seen or asked for.

Value checks (label ranges, positive probabilities) run on the host for CPU tensors; on CUDA
they use ``torch._assert_async``, which raises without a host synchronisation (the error
surfaces at the next synchronising call, as CUDA device-side asserts do).

The backend also brings its own Threefry-2x32 (``Backend.threefry2x32``), bit-identical to the
core's: in-place torch operations on int64 words for CUDA and compiled code (torch cannot add or
shift ``uint32``), and NumPy ``uint32`` arithmetic on zero-copy views for CPU tensors in eager
mode, where ~150 small torch calls would cost more than the arithmetic.

Under ``torch.compile`` every public function of multisampled runs as one graph break
(``Backend.outside_trace``): eagerly, on every call of the compiled code, so its seed stream
advances and each call draws fresh negatives. ``fullgraph=True`` and CUDA graphs need
``multisampled.torch.SampledSoftmaxLoss``, whose sampler counter lives on the device.
"""

from __future__ import annotations

import importlib.metadata
import sys

from multisampled import _rng, plugin


def _is_array_type(tp: type) -> bool:
    import torch

    return issubclass(tp, torch.Tensor)


def _namespace():
    import array_api_compat.torch

    return array_api_compat.torch


def _asarray(value, dtype=None, device=None):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        out = value
        if dtype is not None:
            out = out.to(getattr(torch, np.dtype(dtype).name if dtype != "bfloat16" else dtype))
        return out if device is None else out.to(device)
    if dtype == "bfloat16":
        return torch.as_tensor(np.asarray(value, dtype="float32"), device=device).to(torch.bfloat16)
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype.kind == "f" and dtype is None and not isinstance(value, np.ndarray):
        arr = arr.astype("float32")  # Python floats become torch's default float32, as torch does
    return torch.as_tensor(arr, device=device)


def _to_numpy(a):
    import torch

    a = a.detach()
    if a.dtype == torch.bfloat16:
        a = a.float()
    return a.cpu().numpy()


def _version():
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _stop_gradient(a):
    return a.detach()


def _devices():
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return out


def _device_of(a) -> str:
    return str(a.device)


def _host_checks(device) -> bool:
    if not (device is None or getattr(device, "type", str(device)) == "cpu"):
        return False
    # while torch.compile traces, a host read would break the graph: use the async checks
    import torch

    return not torch.compiler.is_compiling()


_MASK32 = 0xFFFFFFFF
_PARITY = 0x1BD11BDA  # Threefry key-schedule constant
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(xp, key0, key1, c0, c1):
    """``multisampled._rng.threefry2x32`` for torch words (int64 holding 32-bit values).

    Bit-identical to the core's. CPU tensors outside ``torch.compile`` are encrypted with NumPy
    ``uint32`` arithmetic on zero-copy views (~4x less per-operation overhead than ~150 small
    torch calls); everything else (CUDA, compiled graphs) runs :func:`_threefry2x32_ops`.
    """
    import torch

    if c0.dtype != torch.int64 or c1.dtype != torch.int64:
        raise TypeError(
            "torch Threefry words must be int64 tensors holding 32-bit values (torch cannot add "
            f"or shift uint32), got dtypes {c0.dtype} and {c1.dtype}"
        )
    if (
        c0.device.type == "cpu"
        and c1.device.type == "cpu"
        and not torch.compiler.is_compiling()
    ):
        host = _threefry2x32_host(key0, key1, c0, c1)
        if host is not None:
            return host
    return _threefry2x32_ops(key0, key1, c0, c1)


def _threefry2x32_host(key0, key1, c0, c1):
    """NumPy ``uint32`` evaluation for CPU tensors (uint32 arithmetic wraps by itself); None
    when the tensors cannot be viewed as NumPy arrays (``torch.func`` wrappers, subclasses)."""
    import numpy as np
    import torch

    try:
        x0 = c0.numpy().astype(np.uint32)
        x1 = c1.numpy().astype(np.uint32)
        k0 = key0 if isinstance(key0, int) else int(key0)
        k1 = key1 if isinstance(key1, int) else int(key1)
    except (RuntimeError, TypeError):
        return None
    x0, x1 = _rng.threefry2x32_numpy(k0 & _MASK32, k1 & _MASK32, x0, x1)
    return torch.from_numpy(x0.astype(np.int64)), torch.from_numpy(x1.astype(np.int64))


def _threefry2x32_ops(key0, key1, c0, c1):
    """Threefry-2x32 (20 rounds) on int64 torch words with in-place operations.

    ``key0, key1``: Python ints in ``[0, 2**32)`` or 0-d int64 tensors holding such values;
    ``c0, c1``: int64 tensors of 32-bit values, broadcast against each other. Every addition and
    left shift is masked back to 32 bits, so no operation overflows int64 (no reliance on
    wrap-around); nothing reads values on the host, so CUDA graphs and ``torch.compile`` trace it.
    """
    import torch

    ks = [key0, key1, key0 ^ key1 ^ _PARITY]
    injections = []
    for block in range(5):
        k1 = ks[(block + 2) % 3]
        k1 = (k1 + block + 1) & _MASK32 if isinstance(k1, int) else k1 + (block + 1)
        injections.append((ks[(block + 1) % 3], k1))
    shape = torch.broadcast_shapes(c0.shape, c1.shape)
    # fresh full-size tensors, so that everything below can work in place
    x0 = torch.add(c0, ks[0]).bitwise_and_(_MASK32).expand(shape).clone()
    x1 = torch.add(c1, ks[1]).bitwise_and_(_MASK32).expand(shape).clone()
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0.add_(x1).bitwise_and_(_MASK32)
            high = torch.bitwise_left_shift(x1, r).bitwise_and_(_MASK32)
            # rotate left by r, then mix in x0
            x1.bitwise_right_shift_(32 - r).bitwise_or_(high).bitwise_xor_(x0)
        x0.add_(injections[block][0]).bitwise_and_(_MASK32)
        x1.add_(injections[block][1]).bitwise_and_(_MASK32)
    return x0, x1


def _assert_async(condition, message: str) -> None:
    import torch

    torch._assert_async(condition, message)


def _key_from_seed(seed, device):
    """Two fresh 32-bit key words drawn from a ``torch.Generator`` on the generator's device
    (then moved to the tensors' device without a host synchronisation), as the
    ``SampledSoftmaxLoss`` module does; None for any other seed."""
    import torch

    if not isinstance(seed, torch.Generator):
        return None
    words = torch.randint(0, 2**32, (2,), generator=seed, device=seed.device, dtype=torch.int64)
    if device is not None and words.device != torch.device(device):
        words = words.to(device, non_blocking=True)
    return words[0], words[1]


def _take_rows(table, ids):
    """Row gathers whose CPU gradient needs no filled zeros
    (:func:`multisampled._torch_fused.take_rows`)."""
    from multisampled import _torch_fused

    return _torch_fused.take_rows(table, ids)


def _call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


# ``_call`` behind torch.compiler.disable. It must exist before a trace asks for it (creating it
# inside a trace is itself a graph break, which would run the probe outside the trace), so it is
# built as soon as torch is seen outside one: at import when torch is loaded, else on the next
# eager call of any multisampled function.
_eager_runner = None


def _build_runner(torch) -> None:
    global _eager_runner
    if _eager_runner is None:
        _eager_runner = torch.compiler.disable(_call)


if "torch" in sys.modules:
    _build_runner(sys.modules["torch"])


def _outside_trace():
    """While ``torch.compile`` (Dynamo) traces, a runner that calls a public function as one
    graph break, eagerly on every run of the compiled code; None otherwise (and whenever torch
    is not imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if not torch.compiler.is_compiling():
        if _eager_runner is None:
            _build_runner(torch)
        return None
    return _eager_runner


BACKEND = plugin.Backend(
    name="torch",
    module="torch",
    is_array_type=_is_array_type,
    namespace=_namespace,
    asarray=_asarray,
    to_numpy=_to_numpy,
    version=_version,
    extra="torch",
    stop_gradient=_stop_gradient,
    devices=_devices,
    device_of=_device_of,
    threefry2x32=_threefry2x32,
    assert_async=_assert_async,
    host_checks=_host_checks,
    float_dtypes=("float16", "bfloat16", "float32", "float64"),
    key_from_seed=_key_from_seed,
    take_rows=_take_rows,
    outside_trace=_outside_trace,
)


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
