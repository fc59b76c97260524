"""CPU benchmark of the PyTorch backend against TensorFlow's native sampled softmax.

Forward + backward (gradients w.r.t. weights, biases and inputs) of the sampled softmax loss at
B=512 D=128 C=100,000 S=1,024 (the default; override with --B/--D/--C/--S), median of ``--n``
timed steps after ``--warmup`` steps, in one process:

  torch_dense_ms       multisampled.torch.SampledSoftmaxLoss, dense weight gradients
  torch_dense_kept_ms  the same, with the gradients kept and zeroed in place each step
                       (zero_grad(set_to_none=False)): the rows are added into .grad
  torch_sparse_ms      the same module with sparse=True (sparse COO row gradients)
  torch_functional_ms  multisampled.sampled_softmax_loss(weights, biases, ...) on torch tensors
  tf_fwd_bwd_ms        tf.nn.sampled_softmax_loss forward + GradientTape gradients, eager
  tf_fn_fwd_bwd_ms     the same inside tf.function

Every step draws fresh negatives (a seeded stream, as TensorFlow's op seed) and starts with the
gradients set to None (as ``optimizer.zero_grad()`` does), except the kept row's. Torch runs with its default thread
settings (reported as torch_num_threads). Prints one JSON line; "meets_target" is
torch_dense_ms <= tf_fn_fwd_bwd_ms, "sparse_meets_target" the same for the sparse row (TF's
weight gradient is IndexedSlices, i.e. sparse). Timings on a shared machine are noisy (the 1-minute
load average is recorded): compare rows of one run, not across runs.

The script changes no setting of either framework. PyTorch's own opt-in
``THP_MEM_ALLOC_ENABLE=1`` (transparent huge pages for large CPU allocations) speeds up the dense
row, whose fresh ``[C, D]`` gradient is page-faulted in every step; the JSON records the variable
(``torch_thp_mem_alloc``) so such a run is reported as its own row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _load():
    # other work on the machine skews every row (torch's OpenMP threads suffer most): record it
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median_ms(step, n: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e3 * times[len(times) // 2]


def host_data(B: int, D: int, C: int):
    import numpy as np

    rng = np.random.default_rng(0)
    weights = rng.standard_normal((C, D), dtype=np.float32) * 0.05
    biases = np.zeros(C, np.float32)
    inputs = rng.standard_normal((B, D), dtype=np.float32)
    labels = rng.integers(0, C, (B, 1))
    return weights, biases, inputs, labels


def torch_rows(data, S: int, n: int, warmup: int) -> dict:
    import torch

    import multisampled
    from multisampled.torch import SampledSoftmaxLoss

    weights, biases, inputs_np, labels_np = data
    C, D = weights.shape
    x = torch.from_numpy(inputs_np).requires_grad_()
    y = torch.from_numpy(labels_np)
    out = {"torch": torch.__version__, "torch_num_threads": torch.get_num_threads(),
           "torch_thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE")}

    for name, sparse, kept in (("torch_dense_ms", False, False),
                               ("torch_dense_kept_ms", False, True),
                               ("torch_sparse_ms", True, False)):
        module = SampledSoftmaxLoss(C, D, S, sparse=sparse, seed=1)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(weights))
            module.bias.copy_(torch.from_numpy(biases))

        def step(module=module, kept=kept):
            module.zero_grad(set_to_none=not kept)
            x.grad = None
            module(x, y).sum().backward()

        out[name] = median_ms(step, n, warmup)

    w = torch.from_numpy(weights).requires_grad_()
    b = torch.from_numpy(biases).requires_grad_()
    stream = multisampled.Generator(1)

    def functional():
        w.grad = b.grad = x.grad = None
        multisampled.sampled_softmax_loss(w, b, y, x, S, C, seed=stream).sum().backward()

    out["torch_functional_ms"] = median_ms(functional, n, warmup)
    return out


def tensorflow_rows(data, S: int, n: int, warmup: int) -> dict:
    import tensorflow as tf

    weights, biases, inputs_np, labels_np = data
    C = weights.shape[0]
    W = tf.Variable(weights)
    b = tf.Variable(biases)
    x = tf.constant(inputs_np)
    y = tf.constant(labels_np, dtype=tf.int64)

    def fwd_bwd():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.sampled_softmax_loss(W, b, y, x, S, C, seed=1))
        return tape.gradient(loss, [W, b, x])

    compiled = tf.function(fwd_bwd)
    return {
        "tf": tf.__version__,
        "tf_fwd_bwd_ms": median_ms(fwd_bwd, n, warmup),
        "tf_fn_fwd_bwd_ms": median_ms(compiled, n, warmup),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--B", type=int, default=512)
    parser.add_argument("--D", type=int, default=128)
    parser.add_argument("--C", type=int, default=100_000)
    parser.add_argument("--S", type=int, default=1024)
    parser.add_argument("--n", type=int, default=15, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow rows")
    args = parser.parse_args(argv)
    data = host_data(args.B, args.D, args.C)
    res = {"B": args.B, "D": args.D, "C": args.C, "S": args.S, "n": args.n,
           "machine": platform.machine(), "cpus": os.cpu_count(),
           "loadavg_1m_before": _load()}
    res.update(torch_rows(data, args.S, args.n, args.warmup))
    if not args.no_tf:
        try:
            res.update(tensorflow_rows(data, args.S, args.n, args.warmup))
        except ImportError as exc:
            res["tf_error"] = f"{type(exc).__name__}: {exc}"
    res["loadavg_1m_after"] = _load()
    tf_fn = res.get("tf_fn_fwd_bwd_ms")
    res["meets_target"] = None if tf_fn is None else res["torch_dense_ms"] <= tf_fn
    # TF's gradient of the weights is IndexedSlices: the like-for-like torch row is the sparse one
    res["sparse_meets_target"] = None if tf_fn is None else res["torch_sparse_ms"] <= tf_fn
    print(json.dumps(res), flush=True)
    return res


if __name__ == "__main__":
    main()
