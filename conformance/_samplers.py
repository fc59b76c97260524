"""Candidate samplers: seeded bit-identity with the NumPy backend, distribution statistics,
and the expected-count ("tries") formula of SEMANTICS 5.4."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ._kit import KitBase
from .strategies import example_paddle_problem, example_problem

SAMPLERS = ("log_uniform", "uniform", "learned_unigram", "fixed_unigram")
#: Fixed-unigram weights used by the kit (zeros included: those classes must never be drawn).
UNIGRAMS = (5.0, 0.0, 3.0, 1.0, 2.0, 8.0, 0.0, 4.0, 6.0, 7.0, 1.0, 2.0)


def chi_square_p_value(observed, expected) -> float:
    """Upper-tail p-value of Pearson's statistic (scipy when present, else Wilson-Hilferty)."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    dof = observed.size - 1
    if dof < 1:
        return 1.0
    try:
        from scipy import stats

        return float(stats.chi2.sf(stat, dof))
    except ImportError:  # scipy is a test extra, not a requirement of the kit
        z = ((stat / dof) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * dof))) / math.sqrt(2.0 / (9.0 * dof))
        return 0.5 * math.erfc(z / math.sqrt(2.0))


def recover_num_tries(p, q, num_sampled: int, expected_count) -> int:
    """The ``num_tries`` that explains expected counts ``q`` of classes with probabilities
    ``p`` (SEMANTICS 5.4): ``num_sampled`` when ``q == S * P``, else the integer ``n`` with
    ``q == 1 - (1 - P)^n``. Returns -1 when no integer explains ``q``."""
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    keep = p > 0
    p, q = p[keep], q[keep]
    if p.size == 0:
        return num_sampled
    if np.allclose(q, expected_count(p, num_sampled, num_sampled), rtol=2e-6, atol=0):
        return num_sampled
    # the best-conditioned entry: largest P whose count is still below 1 in float32
    usable = (q > 0) & (q < 1) & (p < 1)
    if not np.any(usable):
        return -1
    j = int(np.flatnonzero(usable)[np.argmax(p[usable])])
    guess = math.log1p(-q[j]) / math.log1p(-p[j])
    for n in sorted({max(num_sampled + 1, int(round(guess)) + d) for d in range(-3, 4)}):
        if np.allclose(q, expected_count(p, n, num_sampled), rtol=2e-5, atol=0):
            return n
    return -1


class SamplerTests(KitBase):
    """Samplers: seeded streams identical to NumPy's, right distribution, right counts."""

    # ------------------------------------------------------------------ plumbing

    def _sampler(self, name: str, range_max: int):
        """``call(true_classes, num_true, num_sampled, unique, seed, backend)`` and ``P(k)``."""
        ms, ref = self.ms, self.reference
        if name == "log_uniform":
            def call(tc, t, s, u, seed, backend):
                return ms.log_uniform_candidate_sampler(tc, t, s, u, range_max, seed=seed,
                                                        backend=backend)

            return call, lambda k: ref.log_uniform_prob(k, range_max)
        if name == "uniform":
            def call(tc, t, s, u, seed, backend):
                return ms.uniform_candidate_sampler(tc, t, s, u, range_max, seed=seed,
                                                    backend=backend)

            return call, lambda k: ref.uniform_prob(k, range_max)
        if name == "fixed_unigram":
            unigrams = list(UNIGRAMS[:range_max])

            def call(tc, t, s, u, seed, backend):
                return ms.fixed_unigram_candidate_sampler(tc, t, s, u, range_max,
                                                          unigrams=unigrams, seed=seed,
                                                          backend=backend)

            w = ref.fixed_unigram_weights(range_max, unigrams=unigrams)
            return call, lambda k: (w / w.sum())[np.asarray(k)]
        if name == "learned_unigram":
            samplers: dict = {}

            def call(tc, t, s, u, seed, backend):
                # one fresh sampler object per backend: its state is the learned counts
                if backend not in samplers:
                    samplers[backend] = ms.LearnedUnigramSampler(range_max, backend=backend)
                return samplers[backend](tc, t, s, u, seed=seed)

            # first call only (later calls learn from the labels)
            return call, lambda k: ref.uniform_prob(k, range_max)
        raise ValueError(f"unknown sampler {name!r}")

    def _fresh_streams(self):
        self.ms.reset_streams()

    def _true_classes(self, range_max, batch=3, num_true=2, seed=0):
        rng = np.random.default_rng(seed)
        return rng.integers(0, range_max, size=(batch, num_true), dtype=np.int64)

    def _np_triple(self, out):
        return [self.to_numpy(x) for x in out]

    # ------------------------------------------------------------------ tests

    @pytest.mark.parametrize("unique", [True, False], ids=["unique", "nonunique"])
    @pytest.mark.parametrize("sampler", SAMPLERS)
    def test_seeded_sampler_matches_numpy(self, sampler, unique):
        """Same seed, fresh streams: the same candidates as the NumPy backend, call after call;
        consecutive calls of one stream differ."""
        range_max, num_sampled, seed = 12, 6, 1234
        tc = self._true_classes(range_max)
        runs = {}
        for backend in (self.backend, "numpy"):
            self._fresh_streams()
            call, _ = self._sampler(sampler, range_max)
            arg = self.arr(tc) if backend == self.backend else tc
            runs[backend] = [call(arg, 2, num_sampled, unique, seed, backend) for _ in range(3)]
        for i, (mine, ref) in enumerate(zip(runs[self.backend], runs["numpy"])):
            self.assert_equal(mine[0], np.asarray(ref[0]),
                              err_msg=f"{sampler}: candidates of call {i} differ from NumPy's")
            for k, what in ((1, "true_expected_count"), (2, "sampled_expected_count")):
                self.assert_close(mine[k], np.asarray(ref[k], np.float64), dtype="float32",
                                  rtol=2e-6, atol=0, err_msg=f"{sampler}: {what} of call {i}")
        calls = [tuple(self.to_numpy(r[0]).tolist()) for r in runs[self.backend]]
        assert len(set(calls)) > 1, f"{sampler}: consecutive seeded calls must differ: {calls}"

    @pytest.mark.parametrize("sampler", SAMPLERS)
    def test_seeded_sampler_restarts_after_reset(self, sampler):
        """``reset_streams()`` restarts every seeded stream at its first call."""
        range_max = 12
        tc = self.arr(self._true_classes(range_max))
        call, _ = self._sampler(sampler, range_max)
        self._fresh_streams()
        first = self.to_numpy(call(tc, 2, 4, False, 99, self.backend)[0])
        call, _ = self._sampler(sampler, range_max)
        self._fresh_streams()
        again = self.to_numpy(call(tc, 2, 4, False, 99, self.backend)[0])
        np.testing.assert_array_equal(again, first)

    @pytest.mark.parametrize("sampler", SAMPLERS)
    def test_sampler_frequencies_follow_p(self, sampler):
        """Chi-square of candidate frequencies against the reference's P: one large
        non-unique draw, and the FIRST candidate of many unique calls (which is one draw
        from P, SEMANTICS 5.3)."""
        range_max = 10
        call, prob = self._sampler(sampler, range_max)
        p = np.asarray(prob(np.arange(range_max)), dtype=np.float64)
        tc = self.arr(self._true_classes(range_max, batch=1, num_true=1))
        self._fresh_streams()
        # non-unique: S i.i.d. draws from P
        draws = self.to_numpy(call(tc, 1, 4000, False, 7, self.backend)[0])
        self._check_frequencies(sampler, "non-unique draws", draws, p, range_max)
        if sampler == "learned_unigram":
            return  # later calls follow the learned counts, checked in the next test
        firsts = []
        for _ in range(300):
            out = call(tc, 1, 3, True, 8, self.backend)
            firsts.append(int(self.to_numpy(out[0])[0]))
        self._check_frequencies(sampler, "first unique candidates", np.array(firsts), p,
                                range_max)

    def _check_frequencies(self, sampler, what, draws, p, range_max):
        draws = np.asarray(draws).astype(np.int64)
        assert draws.min() >= 0 and draws.max() < range_max, (
            f"{sampler}: {what} outside [0, {range_max}): {np.unique(draws)}")
        counts = np.bincount(draws, minlength=range_max).astype(np.float64)
        zero = p == 0
        assert np.all(counts[zero] == 0), (
            f"{sampler}: classes with P = 0 were drawn: {np.flatnonzero(zero & (counts > 0))}")
        expected = p[~zero] * draws.size
        pval = chi_square_p_value(counts[~zero], expected)
        assert pval > 1e-6, (
            f"{sampler}: {what} do not follow P (chi-square p = {pval:.2e}); counts "
            f"{counts.tolist()}, expected {np.round(p * draws.size, 1).tolist()}")

    def test_learned_unigram_learns_after_sampling(self):
        """A call's labels change only LATER calls: call 1 draws from uniform weights, call 2
        from ``1 + counts of call 1's labels`` (SEMANTICS 5.2)."""
        range_max = 6
        sampler = self.ms.LearnedUnigramSampler(range_max, backend=self.backend)
        labels1 = np.array([[0], [0], [0], [5], [5], [5], [5], [5], [5], [5]], dtype=np.int64)
        self._fresh_streams()
        out1 = sampler(self.arr(labels1), 1, 4, False, seed=31)
        q1 = self.to_numpy(out1[1])
        np.testing.assert_allclose(q1, 4.0 / range_max, rtol=1e-6,
                                   err_msg="first call: Q = S / R for every class")
        labels2 = np.array([[1]], dtype=np.int64)
        out2 = sampler(self.arr(labels2), 1, 4000, False, seed=31)
        w = self.reference.learned_unigram_weights(range_max, [labels1])
        p = w / w.sum()
        np.testing.assert_allclose(self.to_numpy(out2[1]), 4000 * p[[[1]]], rtol=1e-5,
                                   err_msg="second call: Q follows the learned weights")
        self._check_frequencies("learned_unigram", "second-call draws",
                                self.to_numpy(out2[0]), p, range_max)

    @pytest.mark.parametrize("sampler", SAMPLERS)
    def test_expected_counts_follow_tries_formula(self, sampler):
        """For every seeded unique call the counts of true and sampled classes are
        ``expected_count(P, num_tries, S)`` for ONE integer ``num_tries >= S`` recovered from
        the output; small ranges must show rejections (``num_tries > S``), and non-unique
        calls use ``S * P`` (SEMANTICS 5.4)."""
        ref = self.reference
        range_max, num_sampled = 6, 4
        call, prob = self._sampler(sampler, range_max)
        tc_np = self._true_classes(range_max, batch=2, num_true=2, seed=3)
        tc = self.arr(tc_np)
        self._fresh_streams()
        tries = []
        for i in range(12):
            cands, true_q, sampled_q = self._np_triple(call(tc, 2, num_sampled, True, 17,
                                                            self.backend))
            assert len(set(cands.tolist())) == num_sampled, f"unique call {i}: {cands}"
            if sampler == "learned_unigram":
                w = ref.learned_unigram_weights(range_max, [tc_np] * i)
                p_all = w / w.sum()
                p_true, p_cand = p_all[tc_np], p_all[cands]
            else:
                p_true, p_cand = prob(tc_np), prob(cands)
            p_true = np.asarray(p_true, np.float64)
            p_cand = np.asarray(p_cand, np.float64)
            n = recover_num_tries(np.concatenate([p_true.ravel(), p_cand]),
                                  np.concatenate([true_q.ravel(), sampled_q]),
                                  num_sampled, ref.expected_count)
            assert n >= num_sampled, (
                f"{sampler} call {i}: expected counts {sampled_q} of candidates {cands} (P "
                f"{p_cand}) match no num_tries of the formula S*P / 1-(1-P)^num_tries")
            np.testing.assert_allclose(true_q, ref.expected_count(p_true, n, num_sampled),
                                       rtol=2e-5, err_msg=f"{sampler} call {i}: true counts")
            tries.append(n)
        assert any(n > num_sampled for n in tries), (
            f"{sampler}: {len(tries)} unique calls over range {range_max} never rejected a "
            f"draw (num_tries {tries}); expected counts must use 1-(1-P)^num_tries then")
        # non-unique: always S * P
        out = self._np_triple(call(tc, 2, num_sampled, False, 18, self.backend))
        if sampler == "learned_unigram":
            w = ref.learned_unigram_weights(range_max, [tc_np] * 12)
            p_cand = (w / w.sum())[out[0]]
        else:
            p_cand = np.asarray(prob(out[0]), np.float64)
        np.testing.assert_allclose(out[2], ref.expected_count(p_cand, num_sampled, num_sampled),
                                   rtol=2e-6, err_msg=f"{sampler}: non-unique counts are S*P")

    def test_expected_counts_without_rejection_are_s_times_p(self):
        """Unique sampling that needed no rejection reports ``S * P``, not ``1-(1-P)^S``
        (SEMANTICS 5.4; a large range makes rejection unlikely)."""
        ref = self.reference
        range_max, num_sampled = 100000, 3
        tc_np = np.array([[0, 1], [2, 50]], dtype=np.int64)
        self._fresh_streams()
        seen_plain = False
        for _ in range(5):
            cands, true_q, sampled_q = self._np_triple(self.ms.log_uniform_candidate_sampler(
                self.arr(tc_np), 2, num_sampled, True, range_max, seed=5, backend=self.backend))
            p = np.concatenate([ref.log_uniform_prob(tc_np, range_max).ravel(),
                                ref.log_uniform_prob(cands, range_max)])
            n = recover_num_tries(p, np.concatenate([true_q.ravel(), sampled_q]), num_sampled,
                                  ref.expected_count)
            assert n >= num_sampled, f"counts {true_q}, {sampled_q} match no num_tries"
            seen_plain |= n == num_sampled
        assert seen_plain, "no call without rejection reported S * P"

    def test_default_sampler_is_seeded_log_uniform(self):
        """With ``sampled_values=None`` the loss uses ``log_uniform_candidate_sampler(labels,
        T, S, unique=True, range_max=num_classes, seed=seed)``: same seed, fresh streams, same
        loss as with those values passed explicitly; and the same loss as on NumPy."""
        p = example_problem("float32", batch=4, num_classes=30, num_true=2, num_sampled=5)
        a = self.problem_arrays(p)
        common = dict(num_sampled=5, num_classes=30, num_true=2, seed=11)
        for api in ("sampled_softmax_loss", "nce_loss"):
            fn = getattr(self.ms, api)
            self._fresh_streams()
            got = fn(a["weights"], a["biases"], a["labels"], a["inputs"], backend=self.backend,
                     **common)
            self._fresh_streams()
            values = self.ms.log_uniform_candidate_sampler(a["labels"], 2, 5, True, 30, seed=11,
                                                           backend=self.backend)
            explicit = fn(a["weights"], a["biases"], a["labels"], a["inputs"],
                          sampled_values=tuple(values), backend=self.backend,
                          **{k: v for k, v in common.items() if k != "seed"})
            self.assert_close(got, explicit, dtype="float32", rtol=0, atol=0,
                              err_msg=f"{api}: default sampler")
            self._fresh_streams()
            on_numpy = fn(p["weights"], p["biases"], p["labels"], p["inputs"], backend="numpy",
                          **common)
            self.assert_close(got, np.asarray(on_numpy, np.float64), dtype="float32",
                              err_msg=f"{api}: same seed as on NumPy")
        q = example_paddle_problem("float32", num_classes=20)
        lg = self.arr(q["logits"], "float32")
        mine = self.ms.sampled_softmax_with_cross_entropy(lg, self.arr(q["label"]), 4, seed=5,
                                                          backend=self.backend)
        on_numpy = self.ms.sampled_softmax_with_cross_entropy(q["logits"], q["label"], 4, seed=5,
                                                              backend="numpy")
        self.assert_close(mine, np.asarray(on_numpy, np.float64), dtype="float32", device=lg,
                          err_msg="Paddle API: same nonzero seed, same negatives as on NumPy")

    def test_backend_threefry_matches_core(self):
        """A backend's own ``threefry2x32`` is bit-identical to the core's portable one."""
        from multisampled import kernels, plugin

        spec = self.backend_spec
        if type(spec).threefry2x32 is plugin.Backend.threefry2x32:
            pytest.skip(f"backend {self.backend!r} uses the core's portable threefry2x32")
        fast = spec.threefry2x32
        rng = np.random.default_rng(0)
        c0 = rng.integers(0, 2**32, size=257, dtype=np.uint64)
        c1 = rng.integers(0, 2**32, size=257, dtype=np.uint64)
        xp = self.xp
        index = self.to_numpy(self.ms.all_candidate_sampler(
            self.arr(np.zeros((1, 1), np.int64)), 1, 1, True).sampled_candidates).dtype
        name = "int64" if index == np.int64 else "uint32"
        a0 = self.arr(c0.astype(name))
        a1 = self.arr(c1.astype(name))
        for key in ((0, 0), (0x12345678, 0x9ABCDEF0), (2**32 - 1, 1)):
            mine = fast(xp, key[0], key[1], a0, a1)
            core = kernels.threefry2x32(xp, key[0], key[1], a0, a1)
            for m, c in zip(mine, core):
                np.testing.assert_array_equal(self.to_numpy(m).astype(np.uint64),
                                              self.to_numpy(c).astype(np.uint64))
