"""Keyed sampling inside whole traced programs: a TF SavedModel, ``jax.lax.scan`` over training
steps, ``jax.export`` with a symbolic batch, and the learned unigram's functional form under
``torch.compile(fullgraph=True)``. Each traced result must equal the eager calls with the same
keys (the core's candidates themselves are checked against independent references elsewhere:
tests/test_sampler_truth.py)."""

import numpy as np
import pytest

import multisampled as ms

R, S, D = 1000, 16, 8
LABELS = np.array([[3], [5], [998]], dtype=np.int64)


# --------------------------------------------------------------------------- TensorFlow


def test_tf_saved_model_with_a_key_and_a_none_batch_equals_eager(tmp_path):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.standard_normal((R, D)).astype(np.float32))
            self.b = tf.Variable(rng.standard_normal(R).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.int64),
                                      tf.TensorSpec([None, D], tf.float32),
                                      tf.TensorSpec([2], tf.int64)])
        def loss(self, labels, inputs, key):
            return ms.sampled_softmax_loss(self.w, self.b, labels, inputs, S, R, seed=key)

    model = Model()
    tf.saved_model.save(model, str(tmp_path))
    restored = tf.saved_model.load(str(tmp_path))
    x = tf.constant(rng.standard_normal((3, D)).astype(np.float32))
    y = tf.constant(LABELS)
    for key in (tf.constant([5, 9], tf.int64), tf.constant([0, 2**32 - 1], tf.int64)):
        eager = ms.sampled_softmax_loss(model.w, model.b, y, x, S, R, seed=key)
        np.testing.assert_allclose(restored.loss(y, x, key), eager, rtol=1e-5)
        # a smaller batch runs the same saved graph
        np.testing.assert_allclose(restored.loss(y[:2], x[:2], key), eager[:2], rtol=1e-5)
    other = ms.sampled_softmax_loss(model.w, model.b, y, x, S, R,
                                    seed=tf.constant([5, 10], tf.int64))
    assert not np.allclose(restored.loss(y, x, tf.constant([5, 9], tf.int64)), other)


# --------------------------------------------------------------------------- JAX


def test_jax_scan_over_training_steps_equals_the_steps_one_by_one():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    steps, batch = 4, 3
    rng = np.random.default_rng(0)
    params = (jnp.asarray(rng.standard_normal((R, D)).astype(np.float32)),
              jnp.asarray(np.zeros(R, np.float32)))
    xs = jnp.asarray(rng.standard_normal((steps, batch, D)).astype(np.float32))
    ys = jnp.asarray(rng.integers(0, R, (steps, batch, 1)).astype(np.int32))
    base = jax.random.key(3)

    def loss(params, x, y, key):
        w, b = params
        return ms.sampled_softmax_loss(w, b, y, x, S, R, seed=key).sum()

    def step(params, inputs):
        i, x, y = inputs
        key = jax.random.fold_in(base, i)  # a fresh key each step: fresh negatives
        value, grads = jax.value_and_grad(loss)(params, x, y, key)
        candidates = ms.log_uniform_candidate_sampler(y, 1, S, True, R, seed=key)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
        return params, (value, candidates.sampled_candidates)

    scanned = jax.jit(lambda p: jax.lax.scan(step, p, (jnp.arange(steps), xs, ys)))
    final, (values, candidates) = scanned(params)
    one_step = jax.jit(step)
    p = params
    for i in range(steps):
        p, (value, cands) = one_step(p, (jnp.asarray(i), xs[i], ys[i]))
        np.testing.assert_allclose(values[i], value, rtol=1e-6)
        np.testing.assert_array_equal(candidates[i], cands)
    for a, b in zip(final, p):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert len({tuple(np.asarray(c)) for c in candidates}) == steps  # keys differ per step


def _symbolic_batch(jax):
    from jax import export

    (batch,) = export.symbolic_shape("b")
    return export, batch


def test_jax_export_of_a_sampler_with_a_symbolic_batch():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    export, batch = _symbolic_batch(jax)

    def draw(labels, key):
        return tuple(ms.log_uniform_candidate_sampler(labels, 1, S, True, R, seed=key))

    exported = export.export(jax.jit(draw))(
        jax.ShapeDtypeStruct((batch, 1), jnp.int32), jax.ShapeDtypeStruct((2,), jnp.uint32))
    key = jnp.asarray([5, 9], jnp.uint32)
    for rows in (3, 1):
        y = jnp.asarray(LABELS[:rows].astype(np.int32))
        got, want = exported.call(y, key), draw(y, key)
        assert got[1].shape == (rows, 1)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
        np.testing.assert_allclose(got[2], want[2], rtol=1e-6)


def test_jax_export_of_the_loss_with_a_symbolic_batch():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    export, batch = _symbolic_batch(jax)
    rng = np.random.default_rng(4)
    w = jnp.asarray(rng.standard_normal((R, D)).astype(np.float32))
    b = jnp.asarray(np.zeros(R, np.float32))

    def loss(w, b, labels, inputs, key):
        return ms.sampled_softmax_loss(w, b, labels, inputs, S, R, seed=key)

    exported = export.export(jax.jit(loss))(
        jax.ShapeDtypeStruct((R, D), jnp.float32), jax.ShapeDtypeStruct((R,), jnp.float32),
        jax.ShapeDtypeStruct((batch, 1), jnp.int32), jax.ShapeDtypeStruct((batch, D), jnp.float32),
        jax.ShapeDtypeStruct((2,), jnp.uint32))
    key = jnp.asarray([5, 9], jnp.uint32)
    y = jnp.asarray(LABELS.astype(np.int32))
    x = jnp.asarray(rng.standard_normal((3, D)).astype(np.float32))
    np.testing.assert_allclose(exported.call(w, b, y, x, key), loss(w, b, y, x, key), rtol=1e-5)
    # one exported program, another batch size
    np.testing.assert_allclose(exported.call(w, b, y[:1], x[:1], key),
                               loss(w, b, y[:1], x[:1], key), rtol=1e-5)


def test_jax_export_serializes_once_traced_value_checks_are_switched_off():
    """A ``checkify.debug_check`` leaves an error effect that ``Exported.serialize()`` cannot
    write; with ``set_traced_value_checks(False)`` the exported program serializes, and the
    deserialized program draws what the function draws."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from multisampled.backends import jax as jax_backend

    export, batch = _symbolic_batch(jax)

    def draw(labels, key):
        return tuple(ms.log_uniform_candidate_sampler(labels, 1, S, True, R, seed=key))

    def draw_unchecked(labels, key):  # a new function: jit caches traces per function
        return draw(labels, key)

    args = (jax.ShapeDtypeStruct((batch, 1), jnp.int32), jax.ShapeDtypeStruct((2,), jnp.uint32))
    with pytest.raises(NotImplementedError, match="ErrorEffect"):
        export.export(jax.jit(draw))(*args).serialize()
    previous = jax_backend.set_traced_value_checks(False)
    try:
        assert previous is True and jax_backend.traced_value_checks() is False
        blob = export.export(jax.jit(draw_unchecked))(*args).serialize()
    finally:
        jax_backend.set_traced_value_checks(previous)
    assert jax_backend.traced_value_checks() is True
    restored = export.deserialize(blob)
    key = jnp.asarray([5, 9], jnp.uint32)
    y = jnp.asarray(LABELS.astype(np.int32))
    got, want = restored.call(y, key), draw(y, key)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6)


def test_jax_traced_value_checks_switch_off_explicitly():
    """Under ``checkify`` a bad label is reported; switched off, it is not (the clipped id is
    used); the switch takes only a bool."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from jax.experimental import checkify

    from multisampled.backends import jax as jax_backend

    w = jnp.zeros((R, D), jnp.float32)
    b = jnp.zeros((R,), jnp.float32)
    x = jnp.ones((1, D), jnp.float32)
    bad = jnp.asarray([[R + 3]], jnp.int32)

    def loss(labels, key):
        return ms.sampled_softmax_loss(w, b, labels, x, S, R, seed=key)

    def unchecked(labels, key):  # a new function: jit caches traces per function
        return loss(labels, key)

    key = jnp.asarray([1, 2], jnp.uint32)
    err, _ = checkify.checkify(jax.jit(loss))(bad, key)
    assert err.get() is not None and "labels" in err.get()
    previous = jax_backend.set_traced_value_checks(False)
    try:
        err, out = checkify.checkify(jax.jit(unchecked))(bad, key)
        assert err.get() is None and np.isfinite(np.asarray(out)).all()
    finally:
        jax_backend.set_traced_value_checks(previous)
    with pytest.raises(TypeError, match="enabled must be a bool, got 1"):
        jax_backend.set_traced_value_checks(1)


# --------------------------------------------------------------------------- torch


def _learned_steps(torch, unique):
    def step(labels, key, counts):
        out, state = ms.learned_unigram_candidate_sampler(
            labels, 1, 5, unique, 20, seed=key, state=ms.LearnedUnigramState(counts))
        return tuple(out), state.counts

    batches = [torch.tensor(b) for b in ([[3], [5], [3]], [[7], [3], [1]], [[3], [3], [9]])]
    keys = [torch.tensor([0, i]) for i in range(len(batches))]
    return step, batches, keys


def _check_compiled_learned_steps(torch, unique):
    step, batches, keys = _learned_steps(torch, unique)
    compiled = torch.compile(step, fullgraph=True)
    eager_counts = traced_counts = ms.learned_unigram_state(20, backend="torch").counts
    for y, key in zip(batches, keys):
        want, eager_counts = step(y, key, eager_counts)
        got, traced_counts = compiled(y, key, traced_counts)
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=0)
        torch.testing.assert_close(got[2], want[2], rtol=1e-6, atol=0)
        torch.testing.assert_close(traced_counts, eager_counts, rtol=0, atol=0)
    # every label counted once, after its own call sampled
    assert int(traced_counts[3]) == 1 + 5


def test_torch_compile_learned_unigram_functional_form_without_unique():
    torch = pytest.importorskip("torch")
    _check_compiled_learned_steps(torch, unique=False)


def test_torch_compile_learned_unigram_functional_form_unique():
    torch = pytest.importorskip("torch")
    _check_compiled_learned_steps(torch, unique=True)
