"""A class table sharded across processes: each rank owns its shard of SampledSoftmaxLoss.

    torchrun --standalone --nproc-per-node 2 examples/sharded_torch.py --steps 50

Every rank runs the same replicated encoder on the same batch (here: the same seed), and owns
``1/world`` of the output classes ("div": a contiguous range). The loss, the encoder's gradient
and each rank's rows of the table gradient equal a one-process run's, so the replicated encoder
needs no gradient all-reduce of its own. Uses gloo on CPU and NCCL on CUDA. Rank 0 prints one
JSON line: the first and last training losses and the eval loss before and after training
(the full softmax over all classes, assembled over the ranks).
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist
from torch import nn

from multisampled.torch import SampledSoftmaxLoss


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--sampled", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else None
    torch.manual_seed(0)  # the same encoder and data on every rank
    encoder = nn.Embedding(args.vocab, args.dim, device=device)
    loss_fn = SampledSoftmaxLoss(args.vocab, args.dim, args.sampled, seed=1, reduction="mean",
                                 shard_group=dist.group.WORLD, device=device)
    params = list(encoder.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.Adam(params, lr=0.05)
    # a toy next-token task: token t is followed by (7 t + 3) mod V
    tokens = torch.randint(0, args.vocab, (args.batch * args.steps,), device=device)
    targets = (7 * tokens + 3) % args.vocab
    eval_batch = (tokens[: args.batch], targets[: args.batch])
    eval_before = _eval(encoder, loss_fn, *eval_batch)
    losses = []
    for step in range(args.steps):
        batch = slice(step * args.batch, (step + 1) * args.batch)
        loss = loss_fn(encoder(tokens[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    out = {"world": dist.get_world_size(), "rows_here": loss_fn.weight.shape[0],
           "first_loss": losses[0], "last_loss": losses[-1], "eval_loss_before": eval_before,
           "eval_loss_after": _eval(encoder, loss_fn, *eval_batch)}
    if rank == 0:
        print(json.dumps(out))
    dist.destroy_process_group()
    return out


def _eval(encoder, loss_fn, tokens, targets) -> float:
    """The full softmax loss over all classes (eval mode), assembled over the ranks."""
    loss_fn.eval()
    with torch.no_grad():
        value = float(loss_fn(encoder(tokens), targets))
    loss_fn.train()
    return value


if __name__ == "__main__":
    main()
