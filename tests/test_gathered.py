"""``gathered=True`` and :func:`multisampled.row_ids`: the losses on rows the caller gathered.

The kit's ``test_gathered_rows`` holds every backend's values and row gradients to the
reference; here: the errors, and the compilers (``jax.jit``, ``tf.function`` with a ``None``
batch, ``torch.compile(fullgraph=True)``) against the reference.
"""

from __future__ import annotations

import numpy as np
import pytest

import multisampled as ms
from multisampled.conformance import reference

C, D, B, T, S = 30, 4, 5, 2, 6
_rs = np.random.default_rng(11)
W = _rs.standard_normal((C, D)).astype(np.float32)
BIAS = _rs.standard_normal(C).astype(np.float32)
X = _rs.standard_normal((B, D)).astype(np.float32)
Y = _rs.integers(0, C, (B, T))
Y[0, 0] = 3  # 3 is also a candidate: an accidental hit
SAMPLED = (np.array([3, 9, 0, 17, 25, 4]), np.full((B, T), 0.2, np.float32),
           np.linspace(0.1, 0.6, S).astype(np.float32))
IDS = np.concatenate([Y.ravel(), SAMPLED[0]])


def _reference():
    args = (W.astype(np.float64), BIAS.astype(np.float64), Y, X.astype(np.float64),
            tuple(np.asarray(v, np.float64) if i else v for i, v in enumerate(SAMPLED)))
    loss = reference.sampled_softmax_loss(*args)
    grads = reference.sampled_softmax_loss_grad(*args)
    return loss, grads


def _scatter(rows_grad, like):
    out = np.zeros(like.shape)
    np.add.at(out, IDS, np.asarray(rows_grad, np.float64))
    return out


def _check(loss, grads):
    """``loss`` and the row gradients ``(weights, biases, inputs)`` against the reference."""
    want_loss, want = _reference()
    np.testing.assert_allclose(np.asarray(loss, np.float64), want_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scatter(grads[0], W), want["weights"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_scatter(grads[1], BIAS), want["biases"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grads[2]), want["inputs"], rtol=1e-4, atol=1e-5)


def test_row_ids_are_the_labels_then_the_candidates():
    ids = ms.row_ids(Y, SAMPLED)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, IDS)


@pytest.mark.parametrize("api", [ms.sampled_softmax_loss, ms.nce_loss,
                                 ms.compute_sampled_logits])
def test_errors_name_the_argument(api):
    rows = (W[IDS], BIAS[IDS])
    with pytest.raises(ValueError, match=r"gathered=True needs sampled_values"):
        api(*rows, Y, X, S, C, T, gathered=True)
    with pytest.raises(ValueError, match=r"gathered=True cannot be combined with shard_group"):
        api(*rows, Y, X, S, C, T, sampled_values=SAMPLED, gathered=True, shard_group="x")
    with pytest.raises(ValueError, match=r"weights must have \[B\*T \+ S, dim\] = 16 rows with "
                                         r"gathered=True .*10 labels, then 6 candidates.*got 15"):
        api(W[IDS][:-1], BIAS[IDS], Y, X, S, C, T, sampled_values=SAMPLED, gathered=True)
    with pytest.raises(ValueError, match=r"biases must have \[B\*T \+ S\] = 16 rows .*got 30"):
        api(W[IDS], BIAS, Y, X, S, C, T, sampled_values=SAMPLED, gathered=True)
    with pytest.raises(ValueError, match=r"weights must have shape \[B\*T \+ S, dim\] with "
                                         r"dim = inputs.shape\[1\] = 4"):
        api(W[IDS][:, :3], BIAS[IDS], Y, X, S, C, T, sampled_values=SAMPLED, gathered=True)
    with pytest.raises(TypeError, match=r"weights must be one array of gathered rows with "
                                        r"gathered=True, got a list"):
        api([W[IDS]], BIAS[IDS], Y, X, S, C, T, sampled_values=SAMPLED, gathered=True)
    with pytest.raises(TypeError, match=r"gathered must be a bool, got 1 of type int"):
        api(*rows, Y, X, S, C, T, sampled_values=SAMPLED, gathered=1)


def test_row_ids_errors():
    with pytest.raises(TypeError, match=r"sampled_values must be a tuple .*got None"):
        ms.row_ids(Y, None)
    with pytest.raises(ValueError, match=r"labels must be a rank-2 array"):
        ms.row_ids(Y.ravel(), SAMPLED)
    with pytest.raises(TypeError, match=r"sampled_values\[0\] \(sampled_candidates\)"):
        ms.row_ids(Y, (SAMPLED[0].astype(np.float32), *SAMPLED[1:]))


def test_jax_jit_of_row_gradients():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    y = jnp.asarray(Y.astype(np.int32))

    @jax.jit
    def step(w, b, x, sampled):
        ids = ms.row_ids(y, sampled)
        return jax.value_and_grad(
            lambda rw, rb, x: ms.sampled_softmax_loss(rw, rb, y, x, S, C, T,
                                                      sampled_values=sampled,
                                                      gathered=True).sum(),
            argnums=(0, 1, 2))(w[ids], b[ids], x)

    loss_sum, grads = step(jnp.asarray(W), jnp.asarray(BIAS), jnp.asarray(X),
                           tuple(jnp.asarray(v) for v in SAMPLED))
    want_loss, _ = _reference()
    np.testing.assert_allclose(float(loss_sum), want_loss.sum(), rtol=1e-5)
    _check(want_loss, grads)


def test_tf_function_with_a_none_batch():
    tf = pytest.importorskip("tensorflow")
    spec = [tf.TensorSpec([None, D], tf.float32), tf.TensorSpec([None, D], tf.float32),
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, T], tf.int64)]

    @tf.function(input_signature=spec)
    def step(x, rows_w, rows_b, y):
        with tf.GradientTape() as tape:
            tape.watch([x, rows_w, rows_b])
            loss = ms.sampled_softmax_loss(rows_w, rows_b, y, x, S, C, T,
                                           sampled_values=tuple(tf.constant(v)
                                                                for v in SAMPLED),
                                           gathered=True)
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, [rows_w, rows_b, x])

    ids = ms.row_ids(tf.constant(Y), tuple(tf.constant(v) for v in SAMPLED)).numpy()
    np.testing.assert_array_equal(ids, IDS)
    loss, (gw, gb, gx) = step(tf.constant(X), tf.constant(W[IDS]), tf.constant(BIAS[IDS]),
                              tf.constant(Y))
    _check(loss.numpy(), (gw.numpy(), gb.numpy(), gx.numpy()))


def test_torch_compile_fullgraph():
    torch = pytest.importorskip("torch")
    y, key = torch.from_numpy(Y), torch.tensor([1, 2])
    sampled = tuple(torch.from_numpy(v) for v in SAMPLED)

    @torch.compile(fullgraph=True, backend="eager")
    def loss_of(rows_w, rows_b, x):
        # the key keeps the call in the graph (with sampled_values given it draws nothing)
        return ms.sampled_softmax_loss(rows_w, rows_b, y, x, S, C, T, sampled_values=sampled,
                                       seed=key, gathered=True)

    ids = torch.compile(ms.row_ids, fullgraph=True, backend="eager")(y, sampled)
    rows_w = torch.from_numpy(W)[ids].requires_grad_()
    rows_b = torch.from_numpy(BIAS)[ids].requires_grad_()
    x = torch.from_numpy(X).requires_grad_()
    loss = loss_of(rows_w, rows_b, x)
    loss.sum().backward()
    _check(loss.detach().numpy(), (rows_w.grad.numpy(), rows_b.grad.numpy(), x.grad.numpy()))
