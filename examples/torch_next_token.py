"""Train a small next-token model over a large vocabulary with sampled softmax (PyTorch).

The data is synthetic and learnable: token ids follow a Zipf law (as words do), and each token
is followed by one of a few successors fixed per token. The model embeds the previous token,
runs an MLP, and scores the next one with ``multisampled.torch.SampledSoftmaxLoss``: in training
mode TensorFlow's sampled softmax over ``--sampled`` log-uniform negatives (sparse row
gradients for ``torch.optim.SparseAdam``), in eval mode the full softmax over every class, as
TensorFlow's documentation recommends for evaluation.

    python examples/torch_next_token.py                 # CPU, a few seconds
    python examples/torch_next_token.py --device cuda   # on a GPU

Prints the full-softmax evaluation loss before and after training and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
from torch import nn

from multisampled.torch import SampledSoftmaxLoss


def zipf_tokens(n: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` token ids with ``P(k)`` proportional to ``1 / (k + 1)``: id 0 is the most common
    (the order the log-uniform sampler assumes)."""
    weights = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def make_data(n: int, table: torch.Tensor, seed: int):
    """``n`` ``(previous, next)`` pairs: ``next`` is one of the successors ``table[previous]``."""
    g = torch.Generator().manual_seed(seed)
    vocab, successors = table.shape
    prev = zipf_tokens(n, vocab, g)
    pick = torch.randint(0, successors, (n,), generator=g)
    return prev, table[prev, pick]


class NextToken(nn.Module):
    def __init__(self, vocab: int, dim: int, sampled: int, seed: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, sparse=True)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, dim))
        self.loss = SampledSoftmaxLoss(vocab, dim, sampled, seed=seed, sparse=True)

    def forward(self, prev: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        return self.loss(self.mlp(self.embed(prev)), nxt[:, None]).mean()


@torch.no_grad()
def evaluate(model: NextToken, prev: torch.Tensor, nxt: torch.Tensor) -> float:
    model.eval()  # the loss module computes the full softmax over every class
    loss = model(prev, nxt).item()
    model.train()
    return loss


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--sampled", type=int, default=256)
    parser.add_argument("--successors", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    table = torch.randint(0, args.vocab, (args.vocab, args.successors),
                          generator=torch.Generator().manual_seed(args.seed))
    train_prev, train_next = make_data(args.steps * args.batch, table, args.seed + 1)
    eval_prev, eval_next = make_data(2048, table, args.seed + 2)  # held-out pairs
    train_prev, train_next = train_prev.to(device), train_next.to(device)
    eval_prev, eval_next = eval_prev.to(device), eval_next.to(device)

    model = NextToken(args.vocab, args.dim, args.sampled, args.seed).to(device)
    sparse = list(model.embed.parameters()) + list(model.loss.parameters())
    dense = list(model.mlp.parameters())
    optimizers = [torch.optim.SparseAdam(sparse, lr=args.lr), torch.optim.Adam(dense, lr=args.lr)]

    before = evaluate(model, eval_prev, eval_next)
    print(f"full-softmax eval loss before training: {before:.3f} (log V = "
          f"{math.log(args.vocab):.3f})")
    for step in range(args.steps):
        rows = slice(step * args.batch, (step + 1) * args.batch)
        for opt in optimizers:
            opt.zero_grad()
        loss = model(train_prev[rows], train_next[rows])
        loss.backward()
        for opt in optimizers:
            opt.step()
        if (step + 1) % max(1, args.steps // 5) == 0:
            print(f"step {step + 1:5d}  sampled-softmax train loss {loss.item():.3f}")
    after = evaluate(model, eval_prev, eval_next)
    print(f"full-softmax eval loss after training: {after:.3f}")
    result = {"vocab": args.vocab, "steps": args.steps, "device": str(device),
              "eval_loss_before": before, "eval_loss_after": after}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
