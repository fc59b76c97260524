"""CUDA benchmark of multisampled.torch.SampledSoftmaxLoss at the issue's GPU shapes.

Workloads (forward + backward w.r.t. weights, biases and inputs, fresh negatives every step):

  lm1b       B=4096 D=512 C=793,472   S=8,192   float32 and bfloat16, dense and sparse gradients
  retrieval  B=8192 D=128 C=5,000,000 S=16,384  float32, dense and sparse gradients

Step rows (``"kind": "step"``): the median step time over CUDA events (``step_ms``), the same
step replayed from a captured CUDA graph (``graph_ms``, dense only), the module's sampler alone
(``sampler_ms``) and its share of the step, and the peak memory the step allocates on top of the
parameters and inputs (``peak_extra_mib``; dense steps include the dense weight gradient).
``--path fused`` runs the torch backend's CPU fast paths on CUDA too (the fused autograd node
and the per-class selection table of ``multisampled.backends._torch_nodes``, behind
``Torch.sampled_softmax`` and ``Torch.first_distinct``), ``--path both`` both paths.
``--sampler portable`` turns the torch backend's Triton sampler kernels off (the core's torch
operations), ``--sampler routed`` leaves the backend as it is (the Triton kernels for
``draw_classes``, ``threefry2x32`` and ``first_distinct`` where triton imports), ``--sampler
both`` both; each row
names its path, its sampler and whether the Triton kernels served it (``triton_routed``).

Sampler rows (``"kind": "sampler"``, one per workload, log-uniform, unique): one sampler call
three ways, each timed and checked bit for bit against the first: ``portable_ms`` (the public
sampler with the Triton kernels off), ``routed_ms`` (the same call through the backend's Triton
``draw_classes`` and ``first_distinct``), and ``triton_fused_ms`` (candidates only: draws and
classes in one kernel, then the two-kernel first-occurrence selection, over the block the core
draws on CUDA).

Everything runs at PyTorch's default precision settings. Prints one JSON object; ``--out PATH``
also writes it after every row, so a run cut short keeps its rows. Without CUDA it prints a
JSON error line and exits with status 2, except with ``--dry-run``: tiny shapes on the CPU,
wall-clock timing, no CUDA graph (the CUDA-only fields say "skipped"), which checks the script
itself; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

WORKLOADS = {
    "lm1b": dict(B=4096, D=512, C=793_472, S=8192, dtypes=("float32", "bfloat16")),
    "retrieval": dict(B=8192, D=128, C=5_000_000, S=16384, dtypes=("float32",)),
}
# --dry-run: shapes a CPU runs in moments
DRY_RUN_WORKLOADS = {
    "tiny": dict(B=64, D=16, C=5000, S=128, dtypes=("float32", "bfloat16")),
}
SAMPLER_SEED = 2**33 + 5


def median_ms(fn, iters: int, warmup: int, device: str) -> float:
    """Median time of ``fn()`` in ms: CUDA events on CUDA, the wall clock elsewhere."""
    import torch

    for _ in range(warmup):
        fn()
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


@contextlib.contextmanager
def backend_path(path: str):
    """``"fused"``: the torch backend's fused loss node and per-class selection on every device
    (patched on the backend class for the block); ``"core"``: the backend as it is."""
    from multisampled import plugin
    from multisampled.backends import _torch_nodes
    from multisampled.backends import torch as torch_backend

    cls = torch_backend.Torch
    saved = cls.__dict__["sampled_softmax"], cls.__dict__["first_distinct"]

    def sampled_softmax(self, xp, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                        log_q_sampled, hits, num_true):
        if log_q_true is not None and not self.is_compiling():
            return _torch_nodes.sampled_softmax(x, true_w, true_b, sampled_w, sampled_b,
                                                log_q_true, log_q_sampled, hits, num_true)
        return plugin.Backend.sampled_softmax(self, xp, x, true_w, true_b, sampled_w,
                                              sampled_b, log_q_true, log_q_sampled, hits,
                                              num_true)

    def first_distinct(self, xp, classes, num_sampled, num_classes):
        return _torch_nodes.first_distinct(classes, num_sampled, num_classes)

    if path == "fused":
        cls.sampled_softmax, cls.first_distinct = sampled_softmax, first_distinct
    try:
        yield
    finally:
        cls.sampled_softmax, cls.first_distinct = saved


@contextlib.contextmanager
def sampler_routing(sampler: str):
    """``"portable"``: the torch backend's Triton sampler kernels off for the block (the
    backend asks ``_torch_triton.usable``); ``"routed"``: the backend as it is."""
    from multisampled.backends import _torch_triton

    saved = _torch_triton.usable
    if sampler == "portable":
        _torch_triton.usable = lambda *values: False
    try:
        yield
    finally:
        _torch_triton.usable = saved


def triton_routed(device: str) -> bool:
    """Whether the torch backend sends this device's sampler work to the Triton kernels."""
    import torch

    from multisampled.backends import _torch_triton

    return bool(_torch_triton.usable(torch.zeros(1, device=device)))


def _error(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}: {str(exc)[:160]}"


def run(name: str, B: int, D: int, C: int, S: int, dtype_name: str, sparse: bool,
        iters: int, warmup: int, path: str = "core", sampler: str = "routed",
        device: str = "cuda") -> dict:
    import torch

    from multisampled.torch import SampledSoftmaxLoss

    cuda = device == "cuda"
    dtype = getattr(torch, dtype_name)
    row = {"kind": "step", "workload": name, "B": B, "D": D, "C": C, "S": S,
           "dtype": dtype_name, "grads": "sparse" if sparse else "dense", "path": path,
           "sampler": sampler, "triton_routed": sampler == "routed" and triton_routed(device)}
    if cuda:
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    module = SampledSoftmaxLoss(C, D, S, sparse=sparse, seed=1, device=device, dtype=dtype)
    with torch.no_grad():
        module.weight.normal_(0.0, 0.02)
        module.bias.zero_()
    x = torch.randn(B, D, device=device, dtype=dtype, requires_grad=True)
    labels = torch.randint(0, C, (B, 1), device=device)

    def step():
        module.weight.grad = module.bias.grad = x.grad = None
        module(x, labels).sum().backward()

    step()
    module.weight.grad = module.bias.grad = x.grad = None
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        row["peak_extra_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        module.weight.grad = module.bias.grad = x.grad = None
    else:
        row["peak_extra_mib"] = "skipped: needs CUDA"

    row["step_ms"] = median_ms(step, iters, warmup, device)
    row["sampler_ms"] = median_ms(lambda: module.sample(labels), iters, warmup, device)
    row["sampler_share"] = row["sampler_ms"] / row["step_ms"]

    if sparse:
        pass
    elif not cuda:
        row["graph_ms"] = "skipped: needs CUDA"
    else:
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    step()
            torch.cuda.current_stream().wait_stream(side)
            # gradients set to None before capture: the captured backward owns them (graph
            # pool), so a replay does exactly the work of one eager step
            module.weight.grad = module.bias.grad = x.grad = None
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                module(x, labels).sum().backward()
            row["graph_ms"] = median_ms(graph.replay, iters, warmup, device)
            del graph
        except Exception as exc:  # report, do not abort the other rows
            row["graph_ms"] = _error(exc)
    return row


def triton_skip_reason(device: str):
    """Why the Triton kernels cannot run here (None when they can)."""
    from multisampled.backends import _torch_triton

    if not _torch_triton.triton_available():
        return "skipped: triton is not installed"
    if device != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return "skipped: Triton kernels need CUDA tensors (or TRITON_INTERPRET=1)"
    return None


def sampler_row(name: str, C: int, S: int, iters: int, warmup: int, device: str) -> dict:
    """One log-uniform unique sampler call: portable, routed and fused Triton kernels."""
    import torch

    import multisampled as ms
    from multisampled import kernels
    from multisampled.backends import _torch_triton

    row = {"kind": "sampler", "workload": name, "C": C, "S": S, "sampler_kind": "log_uniform",
           "unique": True, "triton_routed": triton_routed(device)}
    labels = torch.zeros((1, 1), dtype=torch.int64, device=device)

    def call(stream):
        return ms.log_uniform_candidate_sampler(labels, 1, S, True, C, seed=stream)

    with sampler_routing("portable"):
        want = call(ms.Generator(SAMPLER_SEED))[0]
        stream = ms.Generator(SAMPLER_SEED)
        row["portable_ms"] = median_ms(lambda: call(stream), iters, warmup, device)
    got = call(ms.Generator(SAMPLER_SEED))[0]
    row["routed_matches_portable"] = bool(torch.equal(got, want))
    stream = ms.Generator(SAMPLER_SEED)
    row["routed_ms"] = median_ms(lambda: call(stream), iters, warmup, device)

    reason = triton_skip_reason(device)
    if reason is not None:
        row["triton_fused_ms"] = reason
        return row
    cdf_keys = kernels.table_plan("torch", torch.device(device), ("log_uniform", C),
                                  "int64")[0][0]
    block = 1 << (kernels.block_bound(("log_uniform", C), S) - 1).bit_length()
    key0, key1 = SAMPLER_SEED >> 32, SAMPLER_SEED & 0xFFFFFFFF

    def fused():
        classes = _torch_triton.draw_classes(key0, key1, 0, 0, block, device=device,
                                             cdf_keys=cdf_keys)
        return _torch_triton.first_distinct(classes, S, C)

    try:
        candidates, _ = fused()
        row["block"] = block
        row["triton_fused_matches_portable"] = bool(torch.equal(candidates, want))
        row["triton_fused_ms"] = median_ms(fused, iters, warmup, device)
    except Exception as exc:  # report, do not abort the other rows
        row["triton_fused_ms"] = _error(exc)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--path", choices=("core", "fused", "both"), default="core")
    parser.add_argument("--sampler", choices=("routed", "portable", "both"), default="routed")
    parser.add_argument("--out", help="also write the JSON here, after every row")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny shapes on the CPU: checks the script, times nothing useful")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(json.dumps({"error": f"torch is not installed: {exc}"}))
        sys.exit(2)
    if args.dry_run:
        device, workloads = "cpu", DRY_RUN_WORKLOADS
        names = sorted(workloads)
        args.iters, args.warmup = min(args.iters, 3), min(args.warmup, 1)
    elif not torch.cuda.is_available():
        print(json.dumps({"error": "CUDA is not available: this benchmark needs a CUDA GPU "
                                   f"(torch {torch.__version__})"}))
        sys.exit(2)
    else:
        device, workloads = "cuda", WORKLOADS
        names = args.only or sorted(workloads)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "triton": triton_version,
              "commit": os.environ.get("BENCH_COMMIT"), "dry_run": args.dry_run, "rows": []}
    rows = report["rows"]

    def emit(row):
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress, one row a line
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)

    paths = ("core", "fused") if args.path == "both" else (args.path,)
    samplers = ("routed", "portable") if args.sampler == "both" else (args.sampler,)
    for name in names:
        w = workloads[name]
        try:
            emit(sampler_row(name, w["C"], w["S"], args.iters, args.warmup, device))
        except Exception as exc:
            emit({"kind": "sampler", "workload": name, "error": _error(exc)})
        for dtype_name in w["dtypes"]:
            for sparse in (False, True):
                for path in paths:
                    for sampler in samplers:
                        try:
                            with backend_path(path), sampler_routing(sampler):
                                emit(run(name, w["B"], w["D"], w["C"], w["S"], dtype_name,
                                         sparse, args.iters, args.warmup, path, sampler,
                                         device))
                        except torch.OutOfMemoryError as exc:
                            emit({"kind": "step", "workload": name, "dtype": dtype_name,
                                  "sparse": sparse, "path": path, "sampler": sampler,
                                  "error": _error(exc)})
                        if device == "cuda":
                            torch.cuda.empty_cache()  # the row's tensors died with run()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
