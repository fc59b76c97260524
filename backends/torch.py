"""PyTorch backend (CPU and CUDA). Imports torch only when a torch tensor is seen or asked for.

Value checks (label ranges, positive probabilities) run on the host for CPU tensors; on CUDA
they use ``torch._assert_async``, which raises without a host synchronisation (the error
surfaces at the next synchronising call, as CUDA device-side asserts do).
"""

from __future__ import annotations

import importlib.metadata

from multisampled import plugin


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
    return device is None or getattr(device, "type", str(device)) == "cpu"


def _assert_async(condition, message: str) -> None:
    import torch

    torch._assert_async(condition, message)


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
    assert_async=_assert_async,
    host_checks=_host_checks,
    float_dtypes=("float16", "bfloat16", "float32", "float64"),
)


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
