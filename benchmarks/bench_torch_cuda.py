"""CUDA benchmark of multisampled.torch.SampledSoftmaxLoss at the issue's GPU shapes.

Workloads (forward + backward w.r.t. weights, biases and inputs, fresh negatives every step):

  lm1b       B=4096 D=512 C=793,472   S=8,192   float32 and bfloat16, dense and sparse gradients
  retrieval  B=8192 D=128 C=5,000,000 S=16,384  float32, dense and sparse gradients

For each: the median step time over CUDA events (``step_ms``), the same step replayed from a
captured CUDA graph (``graph_ms``, dense only), the sampler alone (``sampler_ms``) and its share
of the step, and the peak memory the step allocates on top of the parameters and inputs
(``peak_extra_mib``; dense steps include the dense weight gradient). Prints one JSON line (a
list of rows); ``--only lm1b`` / ``--only retrieval`` restricts the workloads. ``--path fused``
runs the torch backend's CPU fast paths on CUDA too (the fused autograd node and the per-class
selection table of ``multisampled.backends._torch_nodes``, behind ``Torch.sampled_softmax`` and
``Torch.first_distinct``; off on CUDA by default until the CUDA tests have passed with them),
``--path both`` both paths; each row names its path. Everything runs at PyTorch's default precision settings. Without CUDA it prints a JSON
error line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

WORKLOADS = {
    "lm1b": dict(B=4096, D=512, C=793_472, S=8192, dtypes=("float32", "bfloat16")),
    "retrieval": dict(B=8192, D=128, C=5_000_000, S=16384, dtypes=("float32",)),
}


def cuda_median_ms(fn, iters: int, warmup: int) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
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


def run(name: str, B: int, D: int, C: int, S: int, dtype_name: str, sparse: bool,
        iters: int, warmup: int, path: str = "core") -> dict:
    import torch

    from multisampled.torch import SampledSoftmaxLoss

    dtype = getattr(torch, dtype_name)
    row = {"workload": name, "B": B, "D": D, "C": C, "S": S, "dtype": dtype_name,
           "grads": "sparse" if sparse else "dense", "path": path}
    torch.cuda.empty_cache()
    torch.manual_seed(0)
    module = SampledSoftmaxLoss(C, D, S, sparse=sparse, seed=1, device="cuda", dtype=dtype)
    with torch.no_grad():
        module.weight.normal_(0.0, 0.02)
        module.bias.zero_()
    x = torch.randn(B, D, device="cuda", dtype=dtype, requires_grad=True)
    labels = torch.randint(0, C, (B, 1), device="cuda")

    def step():
        module.weight.grad = module.bias.grad = x.grad = None
        module(x, labels).sum().backward()

    step()
    torch.cuda.synchronize()
    module.weight.grad = module.bias.grad = x.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    row["peak_extra_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    module.weight.grad = module.bias.grad = x.grad = None

    row["step_ms"] = cuda_median_ms(step, iters, warmup)
    row["sampler_ms"] = cuda_median_ms(lambda: module.sample(labels), iters, warmup)
    row["sampler_share"] = row["sampler_ms"] / row["step_ms"]

    if not sparse:
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
            row["graph_ms"] = cuda_median_ms(graph.replay, iters, warmup)
            del graph
        except Exception as exc:  # report, do not abort the other rows
            row["graph_ms"] = f"error: {type(exc).__name__}: {str(exc)[:160]}"
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--path", choices=("core", "fused", "both"), default="core")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(json.dumps({"error": f"torch is not installed: {exc}"}))
        sys.exit(2)
    if not torch.cuda.is_available():
        print(json.dumps({"error": "CUDA is not available: this benchmark needs a CUDA GPU "
                                   f"(torch {torch.__version__})"}))
        sys.exit(2)
    rows = []
    for name in args.only or sorted(WORKLOADS):
        w = WORKLOADS[name]
        for dtype_name in w["dtypes"]:
            for sparse in (False, True):
                for path in ("core", "fused") if args.path == "both" else (args.path,):
                    try:
                        with backend_path(path):
                            rows.append(run(name, w["B"], w["D"], w["C"], w["S"], dtype_name,
                                            sparse, args.iters, args.warmup, path))
                        torch.cuda.empty_cache()  # the row's tensors died with run()
                    except torch.OutOfMemoryError as exc:
                        rows.append({"workload": name, "dtype": dtype_name, "sparse": sparse,
                                     "path": path,
                                     "error": f"OutOfMemoryError: {str(exc)[:160]}"})
                        torch.cuda.empty_cache()
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "rows": rows}))


if __name__ == "__main__":
    main()
