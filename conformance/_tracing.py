"""The tracing group: every API with a key (and with given sampled values) under the backend's
compiler (``Backend.compiler()``: ``jax.jit``, ``tf.function``, ``torch.compile(fullgraph=True)``)
equals the eager call with the same key, gradients included. A backend without a compiler skips
the group."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from ._backend_calls import _Compiled
from ._kit import KitBase, kit_given

_KEYS = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))


class TracingTests(KitBase):
    """Compiled calls with a key equal eager calls with the same key."""

    def compiled(self):
        """``multisampled`` with every function run through the backend's compiler."""
        compiler = self.backend_spec.compiler()
        if compiler is None:
            pytest.skip(f"backend {self.backend!r} declares no compiler (Backend.compiler())")
        return _Compiled(self.ms, compiler, self.backend_spec)

    def key(self, words):
        return self.arr(np.asarray(words, dtype=np.uint32))

    def _same(self, got, want, what):
        for g, w, name in zip(got, want, ("sampled_candidates", "true_expected_count",
                                          "sampled_expected_count")):
            g, w = self.to_numpy(g), self.to_numpy(w)
            if name == "sampled_candidates":
                np.testing.assert_array_equal(g, w, err_msg=f"{what}: {name}")
            else:
                np.testing.assert_allclose(g, w, rtol=2e-6, err_msg=f"{what}: {name}")

    @kit_given(key=_KEYS, unique=st.booleans(), fraction=0.25)
    def test_traced_samplers_equal_eager(self, key, unique):
        """uniform, log-uniform, fixed-unigram and all-candidate samplers with a key."""
        compiled = self.compiled()
        labels = self.arr(np.array([[1, 4], [7, 0], [9, 9]], dtype=np.int64))
        k = self.key(key)
        weights = [float(w) for w in np.arange(1, 21)]
        calls = {
            "uniform_candidate_sampler": lambda ms: ms.uniform_candidate_sampler(
                labels, 2, 6, unique, 20, seed=k),
            "log_uniform_candidate_sampler": lambda ms: ms.log_uniform_candidate_sampler(
                labels, 2, 6, unique, 20, seed=k),
            "fixed_unigram_candidate_sampler": lambda ms: ms.fixed_unigram_candidate_sampler(
                labels, 2, 6, unique, 20, unigrams=weights, seed=k),
            "all_candidate_sampler": lambda ms: ms.all_candidate_sampler(
                labels, 2, 12, unique, seed=k),
        }
        for name, call in calls.items():
            self._same(call(compiled), call(self.ms), f"{name}, compiled vs eager")

    @kit_given(key=_KEYS, remove=st.booleans(), fraction=0.25)
    def test_traced_losses_and_gradients_equal_eager(self, key, remove):
        """sampled_softmax_loss, nce_loss and compute_sampled_logits with the default sampler
        drawing from a key, and the Paddle op with customized samples."""
        rng = np.random.default_rng(key[1])
        c, d = 40, 6
        w = self.arr(rng.standard_normal((c, d)).astype(np.float32) * 0.5, "float32")
        b = self.arr(rng.standard_normal(c).astype(np.float32) * 0.1, "float32")
        x = self.arr(rng.standard_normal((5, d)).astype(np.float32), "float32")
        y = self.arr(rng.integers(0, c, (5, 1)))
        k = self.key(key)
        compiled = self.compiled()

        def losses(ms, w, b, x):
            common = dict(num_sampled=8, num_classes=c, remove_accidental_hits=remove, seed=k)
            xp = self.xp
            logits, _ = ms.compute_sampled_logits(w, b, y, x, **common)
            return (xp.sum(ms.sampled_softmax_loss(w, b, y, x, **common))
                    + xp.sum(ms.nce_loss(w, b, y, x, **common)) + xp.sum(logits * 0.01))

        eager = losses(self.ms, w, b, x)
        got = compiled.sampled_softmax_loss(w, b, y, x, num_sampled=8, num_classes=c,
                                            remove_accidental_hits=remove, seed=k)
        want = self.ms.sampled_softmax_loss(w, b, y, x, num_sampled=8, num_classes=c,
                                            remove_accidental_hits=remove, seed=k)
        self.assert_close(got, self.to_numpy(want).astype(np.float64), dtype="float32",
                          rtol=1e-5, atol=1e-6)
        grads = self.grad(lambda w, b, x: losses(compiled, w, b, x), w, b, x)
        if grads is None:
            return
        want_grads = self.grad(lambda w, b, x: losses(self.ms, w, b, x), w, b, x)
        for g, h, name in zip(grads, want_grads, ("weights", "biases", "inputs")):
            np.testing.assert_allclose(self.grad_to_numpy(g, w), self.grad_to_numpy(h, w),
                                       rtol=1e-4, atol=1e-5,
                                       err_msg=f"gradient of {name}, compiled vs eager")
        assert np.isfinite(float(self.to_numpy(eager)))
