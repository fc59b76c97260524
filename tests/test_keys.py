"""Keys: ``seed=`` as an array of two 32-bit words (or a JAX key) makes sampling a pure function
of the key, the same on every backend and under every compiler (jax.jit/vmap, tf.function,
torch.compile(fullgraph=True))."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multisampled as ms

R, S = 1000, 16
LABELS = np.array([[3], [5], [998]], dtype=np.int64)


def _candidates(out):
    return np.asarray(ms.get_backend("numpy").to_numpy(out.sampled_candidates)
                      if isinstance(out.sampled_candidates, np.ndarray)
                      else _to_numpy(out.sampled_candidates))


def _to_numpy(a):
    for name in ("torch", "tensorflow", "jax"):
        b = ms.get_backend(name)
        if b.is_array_type(type(a)):
            return np.asarray(b.to_numpy(a))
    return np.asarray(a)


keys = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))


@settings(max_examples=10, deadline=None)
@given(key=keys, unique=st.booleans())
def test_same_key_same_candidates_on_every_backend(key, unique):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    jnp = pytest.importorskip("jax.numpy")
    ref = ms.log_uniform_candidate_sampler(LABELS, 1, S, unique, R, seed=np.array(key, np.uint32))
    want = np.asarray(ref.sampled_candidates)
    # an int seed's first call is the call with the key of its two words
    ms.reset_streams()
    first = ms.log_uniform_candidate_sampler(LABELS, 1, S, unique, R, seed=key[0] << 32 | key[1])
    np.testing.assert_array_equal(first.sampled_candidates, want)
    for labels, seed in (
        (torch.tensor(LABELS), torch.tensor(key, dtype=torch.int64)),
        (tf.constant(LABELS), tf.constant(key, dtype=tf.int64)),
        (jnp.asarray(LABELS), jnp.asarray(key, dtype=jnp.uint32)),
        (torch.tensor(LABELS), np.array(key, np.uint32)),  # a key of another framework
    ):
        out = ms.log_uniform_candidate_sampler(labels, 1, S, unique, R, seed=seed)
        np.testing.assert_array_equal(_to_numpy(out.sampled_candidates), want)
        np.testing.assert_allclose(_to_numpy(out.sampled_expected_count),
                                   ref.sampled_expected_count, rtol=1e-6)


def test_a_key_does_not_advance():
    k = np.array([1, 2], np.uint32)
    a = ms.uniform_candidate_sampler(LABELS, 1, S, True, R, seed=k)
    b = ms.uniform_candidate_sampler(LABELS, 1, S, True, R, seed=k)
    c = ms.uniform_candidate_sampler(LABELS, 1, S, True, R, seed=np.array([1, 3], np.uint32))
    np.testing.assert_array_equal(a.sampled_candidates, b.sampled_candidates)
    assert not np.array_equal(a.sampled_candidates, c.sampled_candidates)


@pytest.mark.parametrize("bad, error, match", [
    (np.array([1, 2, 3], np.uint32), ValueError, r"two 32-bit words, got shape \[3\]"),
    (np.array([1.0, 2.0]), TypeError, r"seed \(a key\) must have an integer dtype"),
    (np.array([-1, 2]), ValueError, r"words must be in \[0, 2\*\*32\)"),
    (np.array([2**32, 2]), ValueError, r"words must be in \[0, 2\*\*32\)"),
])
def test_bad_keys_are_named(bad, error, match):
    with pytest.raises(error, match=match):
        ms.uniform_candidate_sampler(LABELS, 1, S, True, R, seed=bad)


# --------------------------------------------------------------------------- JAX


def test_jax_jit_vmap_and_typed_keys():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    y = jnp.asarray(LABELS)

    def draw(key):
        return ms.log_uniform_candidate_sampler(y, 1, S, True, R, seed=key)

    key = jax.random.key(7)
    eager, jitted = draw(key), jax.jit(draw)(key)
    np.testing.assert_array_equal(eager.sampled_candidates, jitted.sampled_candidates)
    np.testing.assert_allclose(eager.sampled_expected_count, jitted.sampled_expected_count,
                               rtol=1e-6)
    # typed and legacy keys: their words
    np.testing.assert_array_equal(draw(jax.random.PRNGKey(7)).sampled_candidates,
                                  eager.sampled_candidates)
    np.testing.assert_array_equal(
        ms.log_uniform_candidate_sampler(LABELS, 1, S, True, R, seed=np.array([0, 7],
                                                                              np.uint32))
        .sampled_candidates, eager.sampled_candidates)
    # vmap over keys: per-row candidates, each the single-key call's
    ks = jax.random.split(key, 4)
    rows = jax.jit(jax.vmap(draw))(ks)
    assert rows.sampled_candidates.shape == (4, S)
    for i in range(4):
        np.testing.assert_array_equal(rows.sampled_candidates[i], draw(ks[i]).sampled_candidates)
    assert len({tuple(np.asarray(r)) for r in rows.sampled_candidates}) == 4


def test_jax_loss_and_gradients_under_jit_equal_eager():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((R, 8)).astype(np.float32))
    b = jnp.asarray(rng.standard_normal(R).astype(np.float32))
    x = jnp.asarray(rng.standard_normal((3, 8)).astype(np.float32))
    y = jnp.asarray(LABELS)

    def loss(w, b, x, key):
        return ms.sampled_softmax_loss(w, b, y, x, S, R, seed=key).sum()

    key = jax.random.key(11)
    eager = jax.value_and_grad(loss, argnums=(0, 1, 2))(w, b, x, key)
    jitted = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(w, b, x, key)
    np.testing.assert_allclose(eager[0], jitted[0], rtol=1e-5)
    for g, h in zip(eager[1], jitted[1]):
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)


def test_int_seed_under_jit_is_a_type_error_asking_for_a_key():
    jax = pytest.importorskip("jax")
    with pytest.raises(TypeError, match="needs a key as seed"):
        jax.jit(lambda y: ms.log_uniform_candidate_sampler(y, 1, S, True, R, seed=3))(
            jax.numpy.asarray(LABELS))


def test_jax_learned_unigram_state_under_jit_matches_eager_calls():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    batches = [jnp.asarray(b) for b in ([[3], [5], [3]], [[7], [3], [1]], [[3], [3], [9]])]

    def step(state, key, y):
        out, state = ms.learned_unigram_candidate_sampler(y, 1, 5, True, 20, seed=key,
                                                          state=state)
        return state, out

    jitted = jax.jit(step)
    s_eager = s_jit = ms.learned_unigram_state(20, backend="jax")
    for i, y in enumerate(batches):
        key = jax.random.key(i)
        s_eager, a = step(s_eager, key, y)
        s_jit, b = jitted(s_jit, key, y)
        np.testing.assert_array_equal(a.sampled_candidates, b.sampled_candidates)
        np.testing.assert_allclose(a.true_expected_count, b.true_expected_count, rtol=1e-6)
        np.testing.assert_array_equal(s_eager.counts, s_jit.counts)
    # every label counted once after sampling: class 3 seen five times
    assert int(s_jit.counts[3]) == 1 + 5


# --------------------------------------------------------------------------- TensorFlow


def test_tf_function_with_a_key_and_a_none_batch():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    w = tf.Variable(rng.standard_normal((R, 8)).astype(np.float32))
    b = tf.Variable(np.zeros(R, np.float32))

    def loss(y, x, key):
        return ms.sampled_softmax_loss(w, b, y, x, S, R, seed=key)

    sig = [tf.TensorSpec([None, 1], tf.int64), tf.TensorSpec([None, 8], tf.float32),
           tf.TensorSpec([2], tf.int64)]
    traced = tf.function(loss, input_signature=sig)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    key = tf.constant([5, 9], tf.int64)
    eager = loss(tf.constant(LABELS), tf.constant(x), key)
    np.testing.assert_allclose(traced(tf.constant(LABELS), tf.constant(x), key), eager,
                               rtol=1e-5)
    np.testing.assert_allclose(traced(tf.constant(LABELS[:2]), tf.constant(x[:2]), key),
                               eager[:2], rtol=1e-5)  # a partial batch, same trace
    from multisampled.backends import tensorflow as tf_backend

    previous = tf_backend.set_xla_value_checks(False)  # XLA drops the label check
    try:
        xla = tf.function(loss, jit_compile=True)
        np.testing.assert_allclose(xla(tf.constant(LABELS), tf.constant(x), key), eager,
                                   rtol=1e-5)
    finally:
        tf_backend.set_xla_value_checks(previous)


def test_tf_learned_unigram_variable_updates_inside_tf_function():
    tf = pytest.importorskip("tensorflow")
    sampler = ms.LearnedUnigramSampler(30, backend="tensorflow")
    eager = ms.LearnedUnigramSampler(30, backend="tensorflow")
    step = tf.function(lambda y, k: sampler(y, 1, 4, True, seed=k).sampled_candidates)
    for i in range(3):
        key = tf.constant([0, i], tf.int64)
        y = tf.constant([[2], [2], [i + 5]], tf.int64)
        np.testing.assert_array_equal(step(y, key), eager(y, 1, 4, True, seed=key)
                                      .sampled_candidates)
    np.testing.assert_array_equal(sampler.counts, eager.counts)
    assert int(sampler.counts[2]) == 1 + 6


def test_keras_fit_with_a_partial_last_batch():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("Keras runs on another backend here")
    C, D = 200, 8

    class Sampled(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(C, D), initializer="glorot_uniform")
            self.b = self.add_weight(shape=(C,), initializer="zeros")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

        def call(self, x, y):
            self.step.assign_add(1)
            key = tf.stack([tf.constant(0, tf.int64), self.step])
            return ms.sampled_softmax_loss(self.w.value, self.b.value, y, x, 16, C, seed=key)


    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.proj = keras.layers.Dense(D)
            self.sampled = Sampled()

        def call(self, inputs):
            x, y = inputs
            return self.sampled(self.proj(x), y)

    model = Model()
    model.compile(optimizer="adam", loss=lambda _, per_example: per_example)
    rng = np.random.default_rng(2)
    y = rng.integers(0, C, (70, 1))
    x = rng.standard_normal((70, D)).astype(np.float32)
    history = model.fit([x, y], np.zeros(70), batch_size=32, epochs=2, verbose=0)  # 32+32+6
    assert np.all(np.isfinite(history.history["loss"]))


# --------------------------------------------------------------------------- torch


def test_torch_compile_fullgraph_with_a_key_equals_eager():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w = torch.tensor(rng.standard_normal((R, 8)).astype(np.float32), requires_grad=True)
    b = torch.zeros(R, requires_grad=True)
    x = torch.tensor(rng.standard_normal((3, 8)).astype(np.float32))
    y = torch.tensor(LABELS)

    def loss(x, key):
        return ms.sampled_softmax_loss(w, b, y, x, S, R, seed=key)

    key = torch.tensor([4, 2])
    eager = loss(x, key)
    eager.sum().backward()
    g_eager = w.grad.clone()
    w.grad = None
    compiled = torch.compile(loss, fullgraph=True)(x, key)
    compiled.sum().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad, g_eager, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- short blocks


def test_a_deliberately_short_block_is_reported_not_silent(monkeypatch):
    """Off the host one block is drawn; one too short for S distinct classes must not pass."""
    from multisampled import _unique

    recorded = []
    numpy_cls = type(ms.get_backend("numpy"))

    class Accelerator(numpy_cls):
        name = "numpy-accelerator"
        async_checks = True

        def may_read_values(self, device):
            return False

        def check_async(self, condition, message):
            recorded.append((bool(condition), message))

    monkeypatch.setattr(_unique, "_bound", lambda dist, s: s)  # a block of exactly s draws
    from multisampled._context import context_for

    ctx = context_for(Accelerator(), None)
    from multisampled import _distributions, _sampling

    tc = ctx.asarray(LABELS)
    out = _sampling.run(ctx, _distributions.Uniform(50), tc, 48, True,
                        np.array([0, 1], np.uint32))
    assert any(not ok and "held fewer than num_sampled=48" in m for ok, m in recorded)
    assert np.all(np.isnan(out.sampled_expected_count))
    assert np.all(np.isnan(out.true_expected_count))


def test_fresh_generators_and_keys_share_one_learned_state():
    """TF keeps one learned-unigram kernel per attribute set; an int seed is an attribute, a
    Generator or a key is not: fresh ones per call must not grow the state table."""
    from multisampled import _learned

    _learned.reset_learned_states()
    y = np.array([[1], [2]])
    for i in range(5):
        ms.learned_unigram_candidate_sampler(y, 1, 3, True, 10, seed=ms.Generator(i))
        ms.learned_unigram_candidate_sampler(y, 1, 3, True, 10, seed=np.array([0, i], np.uint32))
    assert len(_learned._learned_states) == 1
    ms.learned_unigram_candidate_sampler(y, 1, 3, True, 10, seed=7)
    assert len(_learned._learned_states) == 2
    _learned.reset_learned_states()
