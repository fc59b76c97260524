"""The whole training step with the built-in sampler INSIDE each framework's compiler, against
TensorFlow's native ``tf.nn.sampled_softmax_loss`` in ``tf.function`` (the anchor), in one run.

Rows (forward + backward, float32, every step a fresh key and so fresh negatives):

  jax                  jax.jit(jax.value_and_grad(...)) with seed=jax.random.fold_in(key, step)
  jax-rows             the same, differentiated with respect to the gathered rows
                       (``gathered=True``, ``multisampled.row_ids``): TF's IndexedSlices
  tensorflow           tf.function + GradientTape with seed=tf.constant([1, step])
  torch-compiled       torch.compile(fullgraph=True) of the functional API with a key tensor
  torch-compiled-rows  the same with the gathered rows as the leaves (two compiled graphs: the
                       sampler with row_ids, then the loss)
  torch                the functional API eagerly (for reference)

TensorFlow's anchor returns its weight and bias gradients as ``tf.IndexedSlices`` of the
gathered rows; the plain jax and torch rows return a dense ``[C, D]`` weight gradient (the
framework's gather gradient), the ``-rows`` rows the rows' gradients, as TF does.

All rows are timed round-robin (one step of each in turn, so load changes hit all rows alike) in
one process. Prints one JSON line: ``ratios`` (each row's median over the anchor's) and the
targets of the traceable-sampling work (jax <= 1.0, tensorflow <= 1.1, torch-compiled <= 1.0;
the same for the ``-rows`` rows, TF's like-for-like). Frameworks run at their defaults; the
1-minute load average is recorded. ``--workload cpu-small`` for a quick run.

``--breakdown`` adds where each compiled step spends its time, also round-robin: per compiler
the sampler alone, the loss with given ``sampled_values`` (drawn once), and a minimal step
written in the framework itself (gathers, matmul, logsumexp, backward: no multisampled code),
which shows the floor set by the framework's dense ``[C, D]`` weight gradient; for the anchor,
TF's own sampler and its loss with given samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any, Callable

import numpy as np

import multisampled as ms
from multisampled import _bench

TARGETS = {"jax": 1.0, "jax-rows": 1.0, "tensorflow": 1.1, "torch-compiled": 1.0,
           "torch-compiled-rows": 1.0}
JAX_ROWS, TORCH_ROWS = "jax-rows", _bench.TORCH_COMPILED + "-rows"


# --------------------------------------------------------------------------- row-gradient steps


def jax_rows_step(data: _bench.HostData, point: _bench.Workload) -> Callable[[], Any]:
    import jax

    w, b, x = (jax.numpy.asarray(a) for a in (data.weights, data.biases, data.inputs))
    y = jax.numpy.asarray(data.labels.astype(np.int32))
    S, C = point.S, point.C

    def loss(rows_w: Any, rows_b: Any, x: Any, sampled: Any) -> Any:
        return ms.sampled_softmax_loss(rows_w, rows_b, y, x, S, C, sampled_values=sampled,
                                       gathered=True).sum()

    @jax.jit
    def step(w: Any, b: Any, x: Any, key: Any) -> Any:
        sampled = tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C, seed=key))
        ids = ms.row_ids(y, sampled)
        value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(w[ids], b[ids], x, sampled)
        return value, ids, grads  # (ids, grads[0]): TF's IndexedSlices of the weights

    base = jax.random.key(1)
    counter = iter(range(2**31))
    return lambda: jax.block_until_ready(step(w, b, x, jax.random.fold_in(base, next(counter))))


def torch_rows_step(data: _bench.HostData, point: _bench.Workload) -> Callable[[], Any]:
    import torch

    w, b = torch.from_numpy(data.weights), torch.from_numpy(data.biases)
    x = torch.from_numpy(data.inputs).requires_grad_()
    y = torch.from_numpy(data.labels)
    S, C = point.S, point.C

    @torch.compile(fullgraph=True)
    def draw(key: Any) -> Any:
        sampled = tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C, seed=key))
        return sampled, ms.row_ids(y, sampled)

    @torch.compile(fullgraph=True)
    def loss(rows_w: Any, rows_b: Any, sampled: Any, key: Any) -> Any:
        # the key keeps the call traceable (with sampled_values given it draws nothing)
        return ms.sampled_softmax_loss(rows_w, rows_b, y, x, S, C, sampled_values=sampled,
                                       seed=key, gathered=True).sum()

    counter = iter(range(2**31))

    def step() -> None:
        key = torch.tensor([1, next(counter)])
        sampled, ids = draw(key)
        rows_w, rows_b = w[ids].requires_grad_(), b[ids].requires_grad_()
        x.grad = None
        loss(rows_w, rows_b, sampled, key).backward()  # rows_w.grad: the rows' gradients

    return step


ROW_STEPS = {"jax": (JAX_ROWS, jax_rows_step), "torch": (TORCH_ROWS, torch_rows_step)}


def round_robin(steps: dict[str, Callable[[], Any]], rounds: int,
                warmup: int) -> dict[str, list[float]]:
    """Milliseconds of ``rounds`` calls of each step, one step of every row in turn."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(1e3 * (time.perf_counter() - t0))
    return times


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"


# --------------------------------------------------------------------------- breakdown steps


def _tf_parts(data: _bench.HostData, point: _bench.Workload) -> dict[str, Callable[[], Any]]:
    import tensorflow as tf

    W, b = tf.Variable(data.weights), tf.Variable(data.biases)
    x, y = tf.constant(data.inputs), tf.constant(data.labels)
    S, C = point.S, point.C
    given = tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C,
                                                   seed=tf.constant([1, 0], tf.int64)))

    def tape_of(loss_fn):
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(loss_fn())
            return tape.gradient(loss, [W, b, x])
        return step

    native_full = tf.function(tape_of(lambda: tf.nn.sampled_softmax_loss(W, b, y, x, S, C,
                                                                         seed=1)))
    native_sampler = tf.function(lambda: tf.random.log_uniform_candidate_sampler(
        y, 1, S, True, C, seed=1))
    native_given = tf.function(tape_of(lambda: tf.nn.sampled_softmax_loss(
        W, b, y, x, S, C, sampled_values=given)))
    sampler = tf.function(lambda key: tuple(ms.log_uniform_candidate_sampler(
        y, 1, S, True, C, seed=key)))
    ms_given = tf.function(tape_of(lambda: ms.sampled_softmax_loss(
        W, b, y, x, S, C, sampled_values=given)))
    counter = iter(range(2**31))

    def key():
        return tf.constant([1, next(counter)], tf.int64)

    return {
        "tensorflow-native": native_full,
        "tensorflow-native-sampler": native_sampler,
        "tensorflow-native-given": native_given,
        "tensorflow-sampler": lambda: sampler(key()),
        "tensorflow-given": ms_given,
    }


def _jax_parts(data: _bench.HostData, point: _bench.Workload) -> dict[str, Callable[[], Any]]:
    import jax
    import jax.numpy as jnp

    w, b, x = (jnp.asarray(a) for a in (data.weights, data.biases, data.inputs))
    y = jnp.asarray(data.labels.astype(np.int32))
    S, C = point.S, point.C
    base = jax.random.key(1)
    given = tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C, seed=base))

    sampler = jax.jit(lambda key: tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C,
                                                                         seed=key)))
    ms_given = jax.jit(jax.value_and_grad(
        lambda w, b, x: ms.sampled_softmax_loss(w, b, y, x, S, C,
                                                sampled_values=given).sum(),
        argnums=(0, 1, 2)))

    def minimal(w, b, x):
        cand, true_q, sampled_q = given
        t = y[:, 0]
        true_logit = jnp.sum(x * w[t], 1) + b[t] - jnp.log(true_q[:, 0])
        sampled = x @ w[cand].T + b[cand] - jnp.log(sampled_q)
        sampled = jnp.where(t[:, None] == cand[None, :], -1e37, sampled)
        logits = jnp.concatenate([true_logit[:, None], sampled], 1)
        return jnp.sum(jax.nn.logsumexp(logits, 1) - true_logit)

    reference = jax.jit(jax.value_and_grad(minimal, argnums=(0, 1, 2)))
    counter = iter(range(2**31))

    return {
        "jax-sampler": lambda: jax.block_until_ready(
            sampler(jax.random.fold_in(base, next(counter)))),
        "jax-given": lambda: jax.block_until_ready(ms_given(w, b, x)),
        "jax-minimal": lambda: jax.block_until_ready(reference(w, b, x)),
    }


def _torch_parts(data: _bench.HostData, point: _bench.Workload) -> dict[str, Callable[[], Any]]:
    import torch

    w = torch.from_numpy(data.weights).requires_grad_()
    b = torch.from_numpy(data.biases).requires_grad_()
    x = torch.from_numpy(data.inputs).requires_grad_()
    y = torch.from_numpy(data.labels)
    S, C = point.S, point.C
    given = tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C, seed=torch.tensor([1, 0])))

    @torch.compile(fullgraph=True)
    def sampler(key):
        return tuple(ms.log_uniform_candidate_sampler(y, 1, S, True, C, seed=key))

    # the key makes the call traceable (with sampled_values given it draws nothing)
    @torch.compile(fullgraph=True)
    def ms_given(key):
        return ms.sampled_softmax_loss(w, b, y, x, S, C, sampled_values=given, seed=key).sum()

    @torch.compile(fullgraph=True)
    def minimal():
        cand, true_q, sampled_q = given
        t = y[:, 0]
        true_logit = (x * w[t]).sum(1) + b[t] - torch.log(true_q[:, 0])
        sampled = x @ w[cand].T + b[cand] - torch.log(sampled_q)
        sampled = torch.where(t[:, None] == cand[None, :], -1e37, sampled)
        logits = torch.cat([true_logit[:, None], sampled], 1)
        return (torch.logsumexp(logits, 1) - true_logit).sum()

    counter = iter(range(2**31))
    fixed = torch.tensor([1, 0])

    def backward(loss_fn):
        def step():
            w.grad = b.grad = x.grad = None
            loss_fn().backward()
        return step

    return {
        "torch-compiled-sampler": lambda: sampler(torch.tensor([1, next(counter)])),
        "torch-compiled-given": backward(lambda: ms_given(fixed)),
        "torch-compiled-minimal": backward(minimal),
    }


PARTS = {"tensorflow": _tf_parts, "jax": _jax_parts, "torch": _torch_parts}


def breakdown(point: _bench.Workload, backends: list[str], rounds: int,
              warmup: int) -> dict[str, Any]:
    """Round-robin medians (ms) of the full steps and their parts; see the module doc."""
    data = _bench.host_data(point)
    steps: dict[str, Callable[[], Any]] = {}
    errors: dict[str, str] = {}
    for name in ("jax", "tensorflow"):
        if name in backends:
            steps[name] = _bench.STEPS[name](data, point)[0]
    if "torch" in backends:
        steps[_bench.TORCH_COMPILED] = _bench.STEPS[_bench.TORCH_COMPILED](data, point)[0]
    for name in backends:
        if name in PARTS:
            try:
                steps.update(PARTS[name](data, point))
            except Exception as exc:  # a row that fails is reported, not fatal
                errors[name] = _error(exc)
    before = _bench.load_average()
    times = round_robin(steps, rounds, warmup)
    medians = {name: statistics.median(v) for name, v in times.items()}
    anchor = medians.get(_bench.ANCHOR)
    return {
        "rounds": rounds,
        "warmup": warmup,
        "loadavg_1m_before": before,
        "loadavg_1m_after": _bench.load_average(),
        "median_ms": {k: round(v, 3) for k, v in medians.items()},
        "ratio_to_anchor": ({k: round(v / anchor, 3) for k, v in medians.items()}
                            if anchor else None),
        "errors": errors,
        "threads": {k: os.environ.get(k) for k in (
            "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
            "XLA_FLAGS")},
    }


def steps_report(point: _bench.Workload, backends: list[str], rounds: int,
                 warmup: int) -> dict[str, Any]:
    """Every row of the module doc and the anchor, built, then timed round-robin."""
    data = _bench.host_data(point)
    steps: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in _bench.row_names(backends, anchor=True):
        try:
            steps[name], _, notes[name] = _bench.STEPS[name](data, point)
        except Exception as exc:  # a row that fails is reported, not fatal
            errors[name] = _error(exc)
        if name in ROW_STEPS:
            rows_name, build = ROW_STEPS[name]
            try:
                steps[rows_name] = build(data, point)
                notes[rows_name] = "gathered=True: gradients of the gathered rows"
            except Exception as exc:
                errors[rows_name] = _error(exc)
    before = _bench.load_average()
    times = round_robin(steps, rounds, warmup)
    anchor = statistics.median(times[_bench.ANCHOR]) if _bench.ANCHOR in times else None
    rows = []
    for name in [*steps, *errors]:
        median = statistics.median(times[name]) if name in times else None
        rows.append({"name": name, **point.shape(), "median_ms": median,
                     "ratio": median / anchor if median is not None and anchor else None,
                     "times_ms": times.get(name, []), "note": notes.get(name),
                     "error": errors.get(name)})
    return {
        "workload": {"name": point.name, **point.shape(), "dtype": point.dtype},
        "rounds": rounds, "warmup": warmup, "anchor": _bench.ANCHOR, "timing": "round-robin",
        "versions": _bench.framework_versions(),
        "loadavg_1m_before": before, "loadavg_1m_after": _bench.load_average(), "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cpu-medium", choices=sorted(_bench.WORKLOADS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each compiled step's parts round-robin (module doc)")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats} and "
                     f"{args.warmup}")
    workload = _bench.WORKLOADS[args.workload]
    installed = [i.name for i in ms.backends() if i.available]
    backends = [b for b in ("torch", "jax", "tensorflow") if b in installed]
    report = steps_report(workload, backends, args.repeats, args.warmup)
    ratios = {r["name"]: r["ratio"] for r in report["rows"] if r.get("ratio") is not None}
    out = {
        "ratios": ratios,
        "targets": TARGETS,
        "meets_targets": {k: ratios.get(k) is not None and ratios[k] <= v
                          for k, v in TARGETS.items()},
        "report": report,
    }
    if args.breakdown:
        if "tensorflow" not in backends:
            parser.error("--breakdown needs TensorFlow (the anchor)")
        out["breakdown"] = breakdown(workload, backends, args.repeats, args.warmup)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
