"""Communication of the sharded class table, per rank and per step, by formula and measured.

    python benchmarks/bench_sharded.py                 # 2 and 4 CPU processes (gloo, localhost)
    python benchmarks/bench_sharded.py --world 3 --batch 256 --dim 64 --classes 20000

Three ways to train a sampled softmax over a class table split across ``P`` ranks, every rank
holding the same inputs ``[B, D]``, labels ``[B, T]`` and ``S`` candidates:

* ``multisampled``: ``sampled_softmax_loss(..., shard_group=group)``. Forward: an all-reduce of
  the row maxima ``[B]`` and of the sums of exponentials and true logits ``[B, 2]``; backward:
  an all-reduce of the inputs' gradient ``[B, D]``.
* ``gather_rows``: every rank contributes the rows it owns of the ``B*T + S`` ids (zeros
  elsewhere) to an all-reduce of ``[B*T + S, D + 1]`` rows (weights and bias), then computes the loss on the whole
  rows alone (the backward needs no communication: each rank keeps its own rows' gradients).
* ``vocab_parallel``: Megatron's vocab-parallel cross entropy of the full softmax: each rank
  computes the logits of its ``C/P`` classes ``[B, C/P]``; the same three all-reduces as
  ``multisampled``, but over all classes (and ``B*C/P*D`` multiply-adds per rank).

"measured" counts the bytes each rank hands to ``torch.distributed`` collectives in one step,
by wrapping ``all_reduce`` during that step; "ring" is what a ring all-reduce of ``n`` bytes
sends (and receives) per rank, ``2 (P-1)/P n``. The step time is the median of ``--n`` steps on
CPU processes of one machine (a shared machine: compare rows of one run). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time


def _formula(method: str, b: int, t: int, s: int, d: int, c: int, p: int, elem: int) -> int:
    """Bytes handed to all-reduces per rank and step."""
    if method == "multisampled" or method == "vocab_parallel":
        return (3 * b + b * d) * elem
    if method == "gather_rows":
        return (b * t + s) * (d + 1) * elem  # the weight rows and the bias beside them
    raise ValueError(method)


def _worker(rank: int, world: int, port: int, args, queue) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    import multisampled as ms

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    counted = []
    real_all_reduce = dist.all_reduce

    def counting_all_reduce(tensor, *a, **k):
        counted.append(tensor.numel() * tensor.element_size())
        return real_all_reduce(tensor, *a, **k)

    b, t, s, d, c = args.batch, args.num_true, args.sampled, args.dim, args.classes
    rng = np.random.default_rng(0)
    full_w = rng.normal(size=(c, d)).astype("float32") * 0.05
    full_b = np.zeros(c, dtype="float32")
    x0 = torch.tensor(rng.normal(size=(b, d)).astype("float32"))
    labels = torch.tensor(rng.integers(0, c, size=(b, t)))
    q, r = divmod(c, world)
    sizes = [q + 1 if k < r else q for k in range(world)]
    start = sum(sizes[:rank])
    w = torch.nn.Parameter(torch.tensor(full_w[start:start + sizes[rank]]))
    bias = torch.nn.Parameter(torch.tensor(full_b[start:start + sizes[rank]]))
    group = dist.group.WORLD

    def step_multisampled(key):
        return ms.sampled_softmax_loss(w, bias, labels, x, s, c, num_true=t, seed=key,
                                       shard_group=group)

    def step_gather_rows(key):
        cand, tq, sq = ms.log_uniform_candidate_sampler(labels, t, s, True, c, seed=key)
        ids = torch.cat([labels.reshape(-1), cand])
        local = ids - start
        mine = ((local >= 0) & (local < w.shape[0])).to(w.dtype)
        local = local.clamp(0, w.shape[0] - 1)
        own = torch.cat([w[local] * mine[:, None], (bias[local] * mine)[:, None]], dim=1)
        rows = own.detach().clone()
        dist.all_reduce(rows)
        # every rank now holds all rows; the gradient of its own rows flows back through
        # ``own`` with no communication
        rows = rows + (own - own.detach())
        n = b * t
        xp = ms.get_backend("torch").namespace()
        hits = ms.kernels.hit_mask(xp, labels, cand)
        return ms.kernels.sampled_softmax(xp, x, rows[:n, :d], rows[:n, d], rows[n:, :d],
                                          rows[n:, d], torch.log(tq), torch.log(sq), hits, t)

    def step_vocab_parallel(key):
        del key
        xin = ms.get_backend("torch").copy_to_group(x, group)
        logits = xin @ w.T + bias  # [B, C/P]
        m = logits.detach().max(dim=1).values
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
        local = labels - start
        mine = (local >= 0) & (local < w.shape[0])
        true = logits.gather(1, local.clamp(0, w.shape[0] - 1)) * mine
        parts = torch.stack([torch.exp(logits - m[:, None]).sum(1), true.sum(1)], dim=1)
        parts = ms.get_backend("torch").all_reduce(parts, "sum", group)
        return torch.log(parts[:, 0]) + m - parts[:, 1] / t

    methods = {"multisampled": step_multisampled, "gather_rows": step_gather_rows,
               "vocab_parallel": step_vocab_parallel}
    out = {}
    for name, fn in methods.items():
        times = []
        for i in range(args.warmup + args.n):
            x = x0.clone().requires_grad_(True)
            w.grad = bias.grad = None
            key = torch.tensor([7, i])
            counted.clear()
            dist.all_reduce = counting_all_reduce
            dist.barrier()
            t0 = time.perf_counter()
            loss = fn(key)
            loss.sum().backward()
            elapsed = time.perf_counter() - t0
            dist.all_reduce = real_all_reduce
            if i >= args.warmup:
                times.append(elapsed)
        out[name] = {"measured_bytes": sum(counted),
                     "step_ms": 1e3 * sorted(times)[len(times) // 2], "loss": loss.detach()}
    same = torch.allclose(out["multisampled"].pop("loss"), out["gather_rows"].pop("loss"),
                          rtol=1e-4, atol=1e-4)
    out["vocab_parallel"].pop("loss")
    dist.destroy_process_group()
    if rank == 0:
        queue.put((out, same))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world: int, args) -> dict:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, args, queue))
             for r in range(world)]
    for p in procs:
        p.start()
    result, same = queue.get(timeout=600)
    for p in procs:
        p.join(timeout=60)
    rows = {}
    for name, m in result.items():
        formula = _formula(name, args.batch, args.num_true, args.sampled, args.dim, args.classes,
                           world, 4)
        rows[name] = {
            "formula_bytes": formula,
            "measured_bytes": m["measured_bytes"],
            "ring_bytes_sent": round(2 * (world - 1) / world * m["measured_bytes"]),
            "step_ms": round(m["step_ms"], 2),
        }
    rows["gather_rows_loss_equals_multisampled"] = bool(same)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--num-true", type=int, default=1)
    parser.add_argument("--sampled", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=20000)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    report = {
        "shape": {"B": args.batch, "T": args.num_true, "S": args.sampled, "D": args.dim,
                  "C": args.classes, "dtype": "float32"},
        "torch": torch.__version__, "backend": "gloo (CPU processes, localhost)",
        "loadavg": os.getloadavg(), "worlds": {},
    }
    for world in args.world:
        report["worlds"][str(world)] = run(world, args)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
