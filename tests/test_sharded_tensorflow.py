"""A ``tf.distribute`` user's sharded table: the shards of a ``ShardedVariable`` (the "div"
sizes TF's ParameterServerStrategy gives, the first shards one row longer) passed as a shard
list give the one-table loss, with a gradient of the gathered rows for each shard."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
sharded_variable = pytest.importorskip("tensorflow.python.distribute.sharded_variable")

import multisampled as ms  # noqa: E402


def test_sharded_variable_shards_equal_one_table():
    rng = np.random.default_rng(0)
    c, d = 10, 4
    w = rng.normal(size=(c, d)).astype("float32")
    b = rng.normal(size=c).astype("float32")
    offsets = [0, 3, 6, 8, 10]  # TF's own example of 10 rows over 4 shards: [3, 3, 2, 2]
    sw = sharded_variable.ShardedVariable(
        [tf.Variable(w[offsets[i]:offsets[i + 1]]) for i in range(4)])
    sb = sharded_variable.ShardedVariable(
        [tf.Variable(b[offsets[i]:offsets[i + 1]]) for i in range(4)])
    x = tf.constant(rng.normal(size=(3, d)).astype("float32"))
    y = tf.constant([[1], [5], [9]])
    key = tf.constant([1, 2], tf.int64)
    with tf.GradientTape() as tape:
        got = ms.sampled_softmax_loss(list(sw.variables), list(sb.variables), y, x, 4, c,
                                      seed=key)
    grads = tape.gradient(got, list(sw.variables))
    one_w = tf.Variable(w)
    with tf.GradientTape() as tape:
        want = ms.sampled_softmax_loss(one_w, tf.constant(b), y, x, 4, c, seed=key)
    one_grad = tf.convert_to_tensor(tape.gradient(want, one_w))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    for i, g in enumerate(grads):
        assert isinstance(g, tf.IndexedSlices)
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(),
                                   one_grad.numpy()[offsets[i]:offsets[i + 1]], rtol=1e-5,
                                   atol=1e-6)
