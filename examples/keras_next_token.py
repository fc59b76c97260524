"""Train a small next-token model over a large vocabulary with sampled softmax (Keras 3).

The data is synthetic and learnable, as in ``torch_next_token.py``: token ids follow a Zipf law,
and each token is followed by one of a few successors fixed per token. A functional Keras model
embeds the previous token, runs an MLP, and ends in ``multisampled.keras.SampledSoftmax``, which
adds its loss: in ``model.fit`` TensorFlow's sampled softmax over ``--sampled`` log-uniform
negatives, fresh in every step (keys from the layer's ``keras.random.SeedGenerator``); in
``model.evaluate`` the full softmax over every class. Runs on the Keras backend that
``KERAS_BACKEND`` names (tensorflow, jax or torch).

    python examples/keras_next_token.py                       # CPU, a few seconds
    KERAS_BACKEND=jax python examples/keras_next_token.py

Prints the full-softmax evaluation loss before and after training and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math

import keras
import numpy as np

from multisampled.keras import SampledSoftmax


def make_data(n: int, table: np.ndarray, rng: np.random.Generator):
    """``n`` ``(previous, next)`` pairs as int32 ``[n, 1]`` arrays: ids with ``P(k)``
    proportional to ``1 / (k + 1)``, and ``next`` one of the successors ``table[previous]``."""
    vocab, successors = table.shape
    p = 1.0 / np.arange(1, vocab + 1)
    prev = rng.choice(vocab, size=n, p=p / p.sum())
    nxt = table[prev, rng.integers(0, successors, n)]
    return prev[:, None].astype("int32"), nxt[:, None].astype("int32")


def build_model(vocab: int, dim: int, sampled: int, seed: int) -> keras.Model:
    prev = keras.Input((1,), dtype="int32", name="previous")
    nxt = keras.Input((1,), dtype="int32", name="next")
    h = keras.layers.Flatten()(keras.layers.Embedding(vocab, dim)(prev))
    h = keras.layers.Dense(dim, activation="tanh")(h)
    h = keras.layers.Dense(dim)(h)
    loss = SampledSoftmax(vocab, sampled, seed=seed, name="sampled_softmax")(h, nxt)
    return keras.Model([prev, nxt], loss)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--sampled", type=int, default=256)
    parser.add_argument("--successors", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    table = rng.integers(0, args.vocab, (args.vocab, args.successors))
    train = make_data(args.examples, table, rng)
    held_out = make_data(2048, table, rng)

    model = build_model(args.vocab, args.dim, args.sampled, args.seed)
    # the layer adds its loss: no loss= here
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    before = float(model.evaluate(list(held_out), batch_size=1024, verbose=0))
    print(f"[{keras.backend.backend()}] full-softmax eval loss before training: {before:.3f} "
          f"(log V = {math.log(args.vocab):.3f})")
    history = model.fit(list(train), batch_size=args.batch, epochs=args.epochs, verbose=0)
    for epoch, loss in enumerate(history.history["loss"], start=1):
        print(f"epoch {epoch}  sampled-softmax train loss {loss:.3f}")
    after = float(model.evaluate(list(held_out), batch_size=1024, verbose=0))
    print(f"full-softmax eval loss after training: {after:.3f}")
    result = {"backend": keras.backend.backend(), "vocab": args.vocab, "epochs": args.epochs,
              "eval_loss_before": before, "eval_loss_after": after}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
