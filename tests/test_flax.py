"""``multisampled.flax.SampledSoftmax``: an NNX module in jitted optax training loops (``nnx.jit``
and ``jax.jit`` over ``nnx.split`` state), against the functional API for the same key and a
NumPy full softmax."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

import multisampled as ms  # noqa: E402
from multisampled.flax import SampledSoftmax  # noqa: E402

V, D, S = 500, 16, 32


class NextToken(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(V, D, rngs=rngs)
        self.proj = nnx.Linear(D, D, rngs=rngs)
        self.loss = SampledSoftmax(V, D, S, rngs=rngs, reduction="mean")

    def __call__(self, tokens, following):
        return self.loss(self.proj(self.embed(tokens)), following)


def data(n=64, seed=1):
    tokens = jax.random.randint(jax.random.key(seed), (n,), 0, V)
    return tokens, (tokens * 7 + 3) % V


def test_nnx_jit_optax_loop_lowers_the_loss_with_fresh_negatives():
    model = NextToken(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(0.02), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, tokens, following):
        loss, grads = nnx.value_and_grad(lambda m: m(tokens, following))(model)
        opt.update(model, grads)
        return loss

    @nnx.jit
    def sampled_loss(model, tokens, following):
        return model(tokens, following)

    tokens, following = data()
    losses = [float(step(model, opt, tokens, following)) for _ in range(25)]
    assert losses[-1] < losses[0] - 1.0, losses
    assert int(model.loss.rngs.count[...]) == 25  # one key per step
    # the same batch and parameters, two calls: two sets of negatives, two losses
    a, b = sampled_loss(model, tokens, following), sampled_loss(model, tokens, following)
    assert float(a) != float(b)
    model.eval()
    full = float(model(tokens, following))
    assert full < np.log(V) - 1.0  # the full softmax over 500 classes learned the task


def test_jax_jit_over_split_state():
    """Plain ``jax.jit`` over the module's state: merged inside, split on the way out (the
    stream's counter travels with the state)."""
    graphdef, state = nnx.split(NextToken(nnx.Rngs(1)))
    tx = optax.sgd(0.5)
    opt_state = tx.init(nnx.state(nnx.merge(graphdef, state), nnx.Param))

    @jax.jit
    def step(state, opt_state, tokens, following):
        model = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: m(tokens, following))(model)
        params = nnx.state(model, nnx.Param)
        updates, opt_state = tx.update(grads, opt_state, params)
        nnx.update(model, optax.apply_updates(params, updates))
        return nnx.state(model), opt_state, loss

    tokens, following = data()
    losses = []
    for _ in range(25):
        state, opt_state, loss = step(state, opt_state, tokens, following)
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.5, losses
    assert int(nnx.merge(graphdef, state).loss.rngs.count[...]) == 25


@pytest.mark.parametrize("num_true", [1, 2])
def test_equals_the_functional_api_for_the_same_key(num_true):
    layer = SampledSoftmax(V, D, S, num_true=num_true, rngs=nnx.Rngs(params=0,
                                                                     sampled_softmax=3))
    x = jax.random.normal(jax.random.key(4), (9, D))
    y = jax.random.randint(jax.random.key(5), (9, num_true), 0, V)
    key = nnx.clone(layer).rngs()  # the key the layer's next call draws

    def functional_loss(kernel, bias, x):
        return ms.sampled_softmax_loss(kernel, bias, y, x, S, V, num_true=num_true,
                                       seed=key).sum()

    want, want_g = jax.jit(jax.value_and_grad(functional_loss, argnums=(0, 1, 2)))(
        layer.kernel[...], layer.bias[...], x)
    got, (got_m, got_x) = nnx.jit(nnx.value_and_grad(
        lambda m, x: m(x, y if num_true > 1 else y[:, 0]).sum(), argnums=(0, 1)))(layer, x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for g, w in zip((got_m["kernel"][...], got_m["bias"][...], got_x), want_g):
        assert float(jnp.abs(w).sum()) > 0
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_evaluation_is_the_full_softmax_and_logits():
    layer = SampledSoftmax(V, D, S, num_true=2, rngs=nnx.Rngs(2), deterministic=True)
    x = jax.random.normal(jax.random.key(6), (7, D))
    y = jax.random.randint(jax.random.key(7), (7, 2), 0, V)
    w, b = (np.asarray(a, np.float64) for a in (layer.kernel[...], layer.bias[...]))
    z = np.asarray(x, np.float64) @ w.T + b
    ref = (np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
           - np.take_along_axis(z, np.asarray(y), 1).mean(1))
    np.testing.assert_allclose(layer(x, y), ref, rtol=1e-5, atol=1e-5)
    assert int(layer.rngs.count[...]) == 0  # evaluation draws nothing
    assert layer(x).shape == (7, V)
    assert layer(x, y, deterministic=False).shape == (7,)


def test_sequences_and_ignored_positions():
    layer = SampledSoftmax(V, D, S, rngs=nnx.Rngs(3), ignore_index=-1)
    x = jax.random.normal(jax.random.key(8), (3, 4, D))
    y = jax.random.randint(jax.random.key(9), (3, 4), 0, V).at[1, 2].set(-1)
    grad = nnx.jit(nnx.grad(lambda m, x: m(x, y).sum(), argnums=1))(layer, x)
    per = nnx.jit(lambda m, x: m(x, y))(layer, x)
    assert per.shape == (3, 4)
    assert per[1, 2] == 0 and bool(jnp.all(per[0] > 0))
    assert float(jnp.abs(grad[1, 2]).sum()) == 0 and float(jnp.abs(grad[0]).sum()) > 0


def test_constructor_and_call_errors():
    with pytest.raises(ValueError, match="num_sampled=20 cannot be greater than num_classes=10"):
        SampledSoftmax(10, 4, 20, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="rngs must be an nnx.Rngs"):
        SampledSoftmax(10, 4, 2, rngs=0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        SampledSoftmax(10, 4, 2, rngs=nnx.Rngs(0), reduction="avg")
    layer = SampledSoftmax(10, 4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch_size, embedding_dim=4\]"):
        layer(jnp.ones((3, 5)), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match=r"labels must have shape \[3, num_true=1\]"):
        layer(jnp.ones((3, 4)), jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 10\)"):
        layer(jnp.ones((3, 4)), jnp.array([0, 1, 10]))
