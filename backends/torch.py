"""PyTorch backend (CPU and CUDA). Imports torch only when a torch tensor is seen or asked for.

Value checks (label ranges, positive probabilities) run on the host for CPU tensors; on CUDA,
under ``torch.compile`` and during CUDA-graph capture they use ``torch._assert_async``, which
raises without a host synchronisation (the error surfaces at the next synchronising call, as
CUDA device-side asserts do).

Fast paths, each behind one capability of :class:`multisampled.plugin.Backend`:

* ``threefry2x32``: CPU tensors in eager mode are encrypted by the core's Threefry on zero-copy
  NumPy ``uint32`` views (a few dozen NumPy operations instead of ~150 small torch calls);
  CUDA tensors with triton installed, the Triton kernel of
  :mod:`multisampled.backends._torch_triton` (not under ``torch.compile`` tracing); elsewhere
  the core's Threefry runs on int64 torch words.
* ``draw_classes`` on CUDA tensors with triton: the draws mapped to uniform or table classes in
  the Triton kernel that also runs their Threefry (the log-uniform table, the fixed unigram).
* ``first_distinct`` on CUDA tensors with triton: the Triton selection kernels.
* ``first_distinct``, ``hit_mask``, ``take_rows``, ``sampled_softmax``: the autograd nodes and
  the per-class tables of :mod:`multisampled.backends._torch_nodes` on CPU tensors.

Under ``torch.compile`` a public function called without a key runs as one graph break
(``outside_trace``): eagerly, on every call of the compiled code, so its seed stream advances
and each call draws fresh negatives. With a key (``seed=torch.tensor([k0, k1])``) the call is
traced like any other code, also with ``fullgraph=True``; the sampler's tables are built at
trace time (``multisampled.kernels.HOST_WORK``).
"""

from __future__ import annotations

import sys

from multisampled import kernels, plugin


def _torch():
    import torch

    return torch


class Torch(plugin.Backend):
    name = "torch"
    module = "torch"
    extra = "torch"
    async_checks = True

    def is_array_type(self, tp: type) -> bool:
        return issubclass(tp, _torch().Tensor)

    def namespace(self):
        import array_api_compat.torch

        return array_api_compat.torch

    def asarray(self, value, dtype=None, device=None):
        import numpy as np

        torch = _torch()
        if isinstance(value, torch.Tensor):
            out = value
            if dtype is not None:
                out = out.to(getattr(torch, dtype))
            return out if device is None else out.to(device)
        if dtype == "bfloat16":
            host = np.asarray(value, dtype="float32")
            return torch.as_tensor(host, device=device).to(torch.bfloat16)
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == object:
            raise TypeError(
                f"cannot convert {type(value).__name__} to a torch tensor: it holds objects, "
                "expected numbers"
            )
        if arr.dtype.kind == "f" and dtype is None and not isinstance(value, np.ndarray):
            arr = arr.astype("float32")  # Python floats become torch's default float32
        if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:
            arr = _unsigned_as_int64(arr)  # torch has few kernels for uint16/32/64
        if any(s < 0 for s in arr.strides):
            arr = np.ascontiguousarray(arr)  # torch cannot view negative strides
        return torch.as_tensor(arr, device=device)

    def to_numpy(self, array):
        torch = _torch()
        a = array.detach()
        if a.dtype == torch.bfloat16:
            a = a.float()
        return a.cpu().numpy()

    def stop_gradient(self, array):
        return array.detach()

    def devices(self):
        torch = _torch()
        out = ["cpu"]
        if torch.cuda.is_available():
            out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return out

    def device_of(self, array):
        return array.device

    def has_dtype(self, name: str) -> bool:
        return name in ("float16", "bfloat16", "float32", "float64")

    def may_read_values(self, device) -> bool:
        return _is_cpu(device) and not self.is_compiling()

    def check_async(self, condition, message: str) -> None:
        _torch()._assert_async(condition, message)

    def is_compiling(self) -> bool:
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        if torch.compiler.is_compiling():
            return True
        return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()

    def outside_trace(self):
        """While ``torch.compile`` (Dynamo) traces, a runner that calls a public function as
        one graph break, eagerly on every run of the compiled code; None otherwise (and
        whenever torch is not imported)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        if not torch.compiler.is_compiling():
            _prepare_for_traces(torch)
            return None
        return _eager_runner

    def compiler(self):
        torch = _torch()
        return lambda fn: torch.compile(fn, fullgraph=True)

    def while_loop(self, cond, body, state):
        """Under ``torch.compile``, ``torch.while_loop`` (traced with ``fullgraph=True``);
        eagerly, the Python loop."""
        torch = _torch()
        if torch.compiler.is_compiling():
            out = torch.while_loop(lambda *s: cond(s), lambda *s: tuple(body(s)), tuple(state))
            return tuple(out)
        return super().while_loop(cond, body, state)

    def key_from_seed(self, seed, device):
        """Two fresh 32-bit key words drawn from a ``torch.Generator`` on its device (then
        moved to the tensors' device without a host synchronisation); None otherwise."""
        torch = _torch()
        if not isinstance(seed, torch.Generator):
            return None
        words = torch.randint(0, 2**32, (2,), generator=seed, device=seed.device,
                              dtype=torch.int64)
        if device is not None and words.device != torch.device(device):
            words = words.to(device, non_blocking=True)
        return words[0], words[1]

    def threefry2x32(self, xp, key0, key1, c0, c1):
        torch = _torch()
        if c0.dtype != torch.int64 or c1.dtype != torch.int64:
            raise TypeError(
                "torch Threefry words must be int64 tensors holding 32-bit values (torch cannot "
                f"add or shift uint32), got dtypes {c0.dtype} and {c1.dtype}"
            )
        from . import _torch_triton

        if _torch_triton.usable(c0, c1, key0, key1):  # CUDA tensors, triton installed
            return _torch_triton.threefry2x32(key0, key1, c0, c1)
        if c0.device.type == "cpu" and not self.is_compiling():
            host = _threefry_on_numpy(key0, key1, c0, c1)
            if host is not None:
                return host
        return kernels.threefry2x32(xp, key0, key1, c0, c1)

    def draw_classes(self, key0, key1, call_index, start, count, device, *, uniform_range=None,
                     cdf_keys=None):
        from . import _torch_triton

        if device is None:
            return None
        device = _torch().device(device)
        values = [v for v in (key0, key1, call_index, start, cdf_keys) if v is not None]
        if not _torch_triton.usable(device, *values):  # CUDA, triton installed
            return None
        return _torch_triton.draw_classes(key0, key1, call_index, start, count, device=device,
                                          uniform_range=uniform_range, cdf_keys=cdf_keys)

    def first_distinct(self, xp, classes, num_sampled, num_classes):
        # the per-class table costs 8 bytes a class on the CPU, 4 with Triton: for ranges far
        # beyond the draws (up to 2**63 for the uniform sampler) the sort-based selection keeps
        # memory to the draws'
        if kernels.table_fits(num_classes, classes.shape[0]):
            from . import _torch_triton

            if _torch_triton.usable(classes):  # CUDA tensors, triton installed
                return _torch_triton.first_distinct(classes, num_sampled, num_classes)
            if classes.device.type == "cpu":
                from . import _torch_nodes

                return _torch_nodes.first_distinct(classes, num_sampled, num_classes)
        return kernels.portable_first_distinct(xp, classes, num_sampled, num_classes)

    def hit_mask(self, xp, labels, candidates, num_classes):
        # the per-class table costs 4 bytes a class: beyond the bound (or the ids' count) the
        # portable mask keeps memory to the [B, S] comparison
        ids = labels.numel() + candidates.numel()
        if (candidates.device.type == "cpu" and not self.is_compiling()
                and not _functorch_active() and kernels.table_fits(num_classes, ids)):
            from . import _torch_nodes

            return _torch_nodes.hit_mask(labels, candidates, num_classes)
        return super().hit_mask(xp, labels, candidates, num_classes)

    def take_rows(self, table, ids):
        from . import _torch_nodes

        return _torch_nodes.take_rows(table, ids)

    def sampled_softmax(self, xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                        log_q_sampled, hits, num_true):
        if (x.device.type == "cpu" and not self.is_compiling() and log_q_true is not None
                and not _functorch_active()):
            from . import _torch_nodes

            return _torch_nodes.sampled_softmax(x, true_w, true_b, sampled_w, sampled_b,
                                                log_q_true, log_q_sampled, hits, num_true)
        return super().sampled_softmax(xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                       log_q_sampled, hits, num_true)

    def new_state(self, value):
        return value.clone()

    def assign_state(self, state, value):
        with _torch().no_grad():
            state.copy_(value)
        return state

    def group_info(self, group):
        from . import _torch_collectives

        return _torch_collectives.group_info(group)

    def all_reduce(self, x, op, group):
        from . import _torch_collectives

        return _torch_collectives.all_reduce(x, op, group)

    def copy_to_group(self, x, group):
        from . import _torch_collectives

        return _torch_collectives.copy_to_group(x, group)


def take_sparse_rows(values, ids):
    """``values[ids]`` of a 1-D table whose gradient is a sparse COO tensor of the rows (the
    module's ``sparse=True`` bias; ``F.embedding(sparse=True)`` serves 2-D tables)."""
    from . import _torch_nodes

    return _torch_nodes.SparseRows.apply(values, ids)


def _functorch_active() -> bool:
    """Whether a ``torch.func`` transform (grad, vmap, jvp) is running: the fused loss node, an
    autograd.Function without ``setup_context``, cannot run under one (the portable kernel can)."""
    probe = getattr(_torch()._C, "_are_functorch_transforms_active", None)
    return bool(probe()) if probe is not None else False


def _is_cpu(device) -> bool:
    return device is None or getattr(device, "type", str(device)) == "cpu"


def _unsigned_as_int64(arr):
    """Unsigned host ids as int64, which torch compares and gathers (it has few kernels for
    uint16/32/64); uint64 data holding values int64 cannot hold stays uint64, so the core's range
    checks (which convert it themselves) name the argument and the value."""
    import numpy as np

    if arr.dtype.itemsize == 8 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        return arr
    return arr.astype(np.int64)


def _threefry_on_numpy(key0, key1, c0, c1):
    """The core's Threefry on NumPy ``uint32`` views of CPU tensors; None when the tensors
    cannot be viewed as NumPy arrays (``torch.func`` wrappers, subclasses)."""
    import array_api_compat.numpy as xnp
    import numpy as np

    torch = _torch()
    try:
        x0 = c0.numpy().astype(np.uint32)
        x1 = c1.numpy().astype(np.uint32)
        k0 = key0 if isinstance(key0, int) else int(key0)
        k1 = key1 if isinstance(key1, int) else int(key1)
    except (RuntimeError, TypeError):
        return None
    x0, x1 = np.broadcast_arrays(x0, x1)
    y0, y1 = kernels.threefry2x32(xnp, k0 & 0xFFFFFFFF, k1 & 0xFFFFFFFF, x0, x1)
    return torch.from_numpy(y0.astype(np.int64)), torch.from_numpy(y1.astype(np.int64))


def _call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


# ``_call`` behind torch.compiler.disable. It must exist before a trace asks for it (creating it
# inside a trace is itself a graph break, which would run the probe outside the trace), so it is
# built as soon as torch is seen outside one: at import when torch is loaded, else on the next
# eager call of any multisampled function. The host work of samplers is marked as a constant
# for Dynamo at the same moment.
_eager_runner = None


def _prepare_for_traces(torch) -> None:
    global _eager_runner
    if _eager_runner is None:
        for fn in kernels.HOST_WORK:
            torch.compiler.assume_constant_result(fn)
        _eager_runner = torch.compiler.disable(_call)


if "torch" in sys.modules:
    _prepare_for_traces(sys.modules["torch"])


BACKEND = Torch()


@plugin.hookimpl
def multisampled_register_backends(register):
    register(BACKEND)
