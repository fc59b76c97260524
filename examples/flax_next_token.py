"""Train a small next-token model over a large vocabulary with sampled softmax (Flax NNX, optax).

The data is synthetic and learnable, as in ``torch_next_token.py``: token ids follow a Zipf law,
and each token is followed by one of a few successors fixed per token. The model embeds the
previous token, runs an MLP, and scores the next one with ``multisampled.flax.SampledSoftmax``:
in training TensorFlow's sampled softmax over ``--sampled`` log-uniform negatives, drawn afresh
in every step from the module's ``nnx.Rngs`` stream inside the ``nnx.jit`` training step; in
evaluation (``model.eval()``) the full softmax over every class.

    python examples/flax_next_token.py     # CPU, a few seconds

Prints the full-softmax evaluation loss before and after training and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from multisampled.flax import SampledSoftmax


def make_data(key, n: int, table):
    """``n`` ``(previous, next)`` pairs: ids with ``P(k)`` proportional to ``1 / (k + 1)``,
    and ``next`` one of the successors ``table[previous]``."""
    vocab, successors = table.shape
    k1, k2 = jax.random.split(key)
    logits = -jnp.log(jnp.arange(1, vocab + 1, dtype=jnp.float32))
    prev = jax.random.categorical(k1, logits, shape=(n,))
    pick = jax.random.randint(k2, (n,), 0, successors)
    return prev, table[prev, pick]


class NextToken(nnx.Module):
    def __init__(self, vocab: int, dim: int, sampled: int, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab, dim, rngs=rngs)
        self.hidden = nnx.Linear(dim, dim, rngs=rngs)
        self.out = nnx.Linear(dim, dim, rngs=rngs)
        self.loss = SampledSoftmax(vocab, dim, sampled, rngs=rngs, reduction="mean")

    def __call__(self, prev, nxt):
        h = self.out(jnp.tanh(self.hidden(self.embed(prev))))
        return self.loss(h, nxt)


@nnx.jit
def train_step(model, optimizer, prev, nxt):
    loss, grads = nnx.value_and_grad(lambda m: m(prev, nxt))(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def eval_loss(model, prev, nxt):
    return model(prev, nxt)


def evaluate(model: NextToken, prev, nxt) -> float:
    model.eval()  # the loss module computes the full softmax over every class
    loss = float(eval_loss(model, prev, nxt))
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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    k_table, k_train, k_eval = jax.random.split(key, 3)
    table = jax.random.randint(k_table, (args.vocab, args.successors), 0, args.vocab)
    train_prev, train_next = make_data(k_train, args.steps * args.batch, table)
    eval_prev, eval_next = make_data(k_eval, 2048, table)  # held-out pairs

    model = NextToken(args.vocab, args.dim, args.sampled,
                      rngs=nnx.Rngs(params=args.seed, sampled_softmax=args.seed + 1))
    optimizer = nnx.Optimizer(model, optax.adam(args.lr), wrt=nnx.Param)

    before = evaluate(model, eval_prev, eval_next)
    print(f"full-softmax eval loss before training: {before:.3f} (log V = "
          f"{math.log(args.vocab):.3f})")
    for step in range(args.steps):
        rows = slice(step * args.batch, (step + 1) * args.batch)
        loss = train_step(model, optimizer, train_prev[rows], train_next[rows])
        if (step + 1) % max(1, args.steps // 5) == 0:
            print(f"step {step + 1:5d}  sampled-softmax train loss {float(loss):.3f}")
    after = evaluate(model, eval_prev, eval_next)
    print(f"full-softmax eval loss after training: {after:.3f}")
    result = {"vocab": args.vocab, "steps": args.steps, "eval_loss_before": before,
              "eval_loss_after": after}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
