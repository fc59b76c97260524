"""Candidate samplers against an independent truth: the reference's Threefry-2x32 and its
integer mapping of draws to classes (``reference.reference_candidates``), which share no code
with ``multisampled``.

Seeded candidates must equal the reference bit for bit on every backend; expected counts must
equal TensorFlow's formula (SEMANTICS 5.4) evaluated in float32 by the reference, up to the last
bits in which the frameworks' float32 ``log1p`` and ``expm1`` differ.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from . import testing
from ._kit import KitBase, kit_given

__all__ = ["SamplerTruthTests"]

KINDS = ("uniform", "log_uniform", "fixed_unigram", "learned_unigram")
#: Expected counts after rejections, ``-expm1(n * log1p(-P))``: TensorFlow's (Eigen's) float32
#: log1p and expm1 are each up to ~4 ulps from NumPy's, and the product passes both errors on.
RETRY_COUNT_ULPS = 8
#: Expected counts without rejection, ``S * P``: one float32 product of the same ``P``.
PLAIN_COUNT_ULPS = 1
#: Fixed-unigram weights of the small-range tests (zeros included: never drawn).
SMALL_UNIGRAMS = (5.0, 0.0, 3.0, 1.0, 2.0, 8.0, 0.0, 4.0, 6.0, 7.0, 1.0, 2.0)
MAX_SAMPLED = 200
#: ``num_sampled`` values the tests draw (with the largest one a call allows): few distinct
#: shapes, so that backends which compile per shape (eager JAX) stay quick.
SAMPLED_MENU = (1, 2, 3, 5, 8, 32, MAX_SAMPLED)


# ------------------------------------------------------------------ strategies


def keys() -> st.SearchStrategy:
    """Threefry keys ``(key0, key1)``: two 32-bit words."""
    word = st.integers(0, 2**32 - 1)
    return st.tuples(word, word)


def ranges(max_value: int = 10**5) -> st.SearchStrategy:
    """``range_max``: small ranges (many rejections) and large ones."""
    return st.one_of(st.integers(1, min(40, max_value)), st.integers(1, max_value))


@st.composite
def sampler_calls(draw, range_max: int, support: int) -> dict:
    """One call's ``num_sampled``, ``unique``, ``num_true`` and labels ``[B, num_true]`` over a
    range whose ``support`` classes have ``P > 0``."""
    unique = draw(st.booleans(), label="unique")
    top = min(support, MAX_SAMPLED) if unique else MAX_SAMPLED
    menu = sorted({s for s in SAMPLED_MENU if s < top} | {top})
    num_sampled = draw(st.sampled_from(menu), label="num_sampled")
    num_true = draw(st.integers(1, 3), label="num_true")
    batch = draw(st.integers(1, 4), label="batch")
    labels = draw(st.lists(st.integers(0, range_max - 1), min_size=batch * num_true,
                           max_size=batch * num_true), label="labels")
    return dict(num_sampled=num_sampled, unique=unique, num_true=num_true,
                labels=np.asarray(labels, dtype=np.int64).reshape(batch, num_true))


@st.composite
def fixed_unigram_args(draw) -> dict:
    """Keyword arguments of the fixed-unigram sampler: integer-valued unigrams (a zero count is
    never drawn), scaled, with a distortion, reserved ids and a shard."""
    num_shards = draw(st.integers(1, 3), label="num_shards")
    shard = draw(st.integers(0, num_shards - 1), label="shard")
    counts = draw(st.lists(st.integers(0, 9), min_size=num_shards, max_size=60),
                  label="unigram counts")
    scale = draw(st.sampled_from([1.0, 0.37, 1000.0]), label="scale")
    return dict(unigrams=[c * scale for c in counts],
                distortion=draw(st.sampled_from([1.0, 0.5, 0.75, 2.0, 0.0]), label="distortion"),
                num_reserved_ids=draw(st.integers(0, 3), label="num_reserved_ids"),
                num_shards=num_shards, shard=shard)


# ------------------------------------------------------------------ tests


class SamplerTruthTests(KitBase):
    """Samplers bit-identical to the independent reference: Threefry words, candidates,
    ``num_tries`` and the expected counts that depend on it."""

    # ------------------------------------------------------------------ hooks

    def truth_seed(self, key0: int, key1: int):
        """The ``seed=`` argument whose next sampler call draws under the key ``(key0, key1)``
        at call index 0."""
        return np.array([key0, key1], dtype=np.uint32)

    def backend_threefry_words(self, key0: int, key1: int, c0, c1) -> tuple:
        """``(x0, x1)`` as uint64 NumPy arrays: the Threefry words the backend's samplers use
        for counters ``(c0, c1)`` (NumPy arrays of 32-bit values) under ``(key0, key1)``.

        The words come from the backend's ``threefry2x32`` capability (its own kernel, or the
        portable :func:`multisampled.kernels.threefry2x32` it inherits), in the word dtype its
        samplers use (int64 where the index dtype is int64, else uint32).
        """
        index = self.to_numpy(self.ms.all_candidate_sampler(
            self.arr(np.zeros((1, 1), np.int64)), 1, 1, True).sampled_candidates).dtype
        word = "int64" if index == np.int64 else "uint32"
        a0 = self.arr(np.asarray(c0, dtype=np.uint64).astype(word))
        a1 = self.arr(np.asarray(c1, dtype=np.uint64).astype(word))
        x0, x1 = self.backend_spec.threefry2x32(self.xp, key0, key1, a0, a1)
        return (self.to_numpy(x0).astype(np.uint64), self.to_numpy(x1).astype(np.uint64))

    # ------------------------------------------------------------------ plumbing

    def truth_sample(self, kind: str, call: dict, range_max: int, seed, dist_args: dict,
                     learned=None):
        """One call of the public sampler ``kind`` on the backend (``learned``: the
        :class:`~multisampled.LearnedUnigramSampler` that owns the learned counts)."""
        ms = self.ms
        labels = self.arr(call["labels"])
        args = (labels, call["num_true"], call["num_sampled"], call["unique"])
        if kind == "uniform":
            return ms.uniform_candidate_sampler(*args, range_max, seed=seed, backend=self.backend)
        if kind == "log_uniform":
            return ms.log_uniform_candidate_sampler(*args, range_max, seed=seed,
                                                    backend=self.backend)
        if kind == "fixed_unigram":
            return ms.fixed_unigram_candidate_sampler(*args, range_max, seed=seed,
                                                      backend=self.backend, **dist_args)
        if kind == "learned_unigram":
            return learned(*args, seed=seed)
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")

    def assert_truth_counts(self, actual, desired: np.ndarray, ulps: int, err_msg: str) -> None:
        """``actual`` is a float32 array of the backend, shaped like ``desired`` (float64
        values of float32 numbers), within ``ulps`` float32 ulps of it."""
        spec = self.backend_spec
        testing.assert_namespace(actual, spec)
        testing.assert_dtype(actual, "float32", spec)
        got = np.asarray(self.to_numpy(actual), dtype=np.float64)
        assert got.shape == desired.shape, f"{err_msg}: shape {got.shape}, expected {desired.shape}"
        ulp = np.spacing(np.abs(desired).astype(np.float32)).astype(np.float64)
        off = np.abs(got - desired) / ulp
        worst = float(np.max(off, initial=0.0))
        assert worst <= ulps, (
            f"{err_msg}: {worst:.0f} float32 ulps from the reference (at most {ulps}); got "
            f"{got.ravel()[:8].tolist()}, expected {desired.ravel()[:8].tolist()}")

    def check_truth_call(self, kind: str, out, key: tuple, call_index: int, call: dict,
                         range_max: int, ref_args: dict, note: str = "") -> None:
        """Candidates of ``out`` equal the reference's for ``(key, call_index)``; both expected
        counts follow its ``num_tries``. ``ref_args``: the reference's distribution arguments."""
        ref = self.reference
        s, unique = call["num_sampled"], call["unique"]
        what = (f"{kind} (key {key}, call index {call_index}, range_max={range_max}, "
                f"num_sampled={s}, unique={unique}{note})")
        cands, num_tries = ref.reference_candidates(kind, key, call_index, s, unique, range_max,
                                                    **ref_args)
        testing.assert_namespace(out[0], self.backend_spec)
        got = self.to_numpy(out[0])
        np.testing.assert_array_equal(got.astype(np.int64), cands,
                                      err_msg=f"{what}: candidates differ from the reference")
        ulps = PLAIN_COUNT_ULPS if num_tries == s else RETRY_COUNT_ULPS
        for got_q, classes, name in ((out[1], call["labels"], "true_expected_count"),
                                     (out[2], cands, "sampled_expected_count")):
            want = ref.reference_expected_counts(kind, classes, s, num_tries, range_max,
                                                 **ref_args)
            self.assert_truth_counts(got_q, want, ulps, f"{what}: {name} (num_tries={num_tries})")

    def check_truth_fresh_call(self, kind: str, key: tuple, call: dict, range_max: int,
                               dist_args=None, ref_args=None, learned=None) -> None:
        """One call with ``truth_seed(*key)`` against the reference at call index 0
        (``ref_args`` default to the sampler's ``dist_args``)."""
        dist_args = dist_args or {}
        ref_args = dist_args if ref_args is None else ref_args
        out = self.truth_sample(kind, call, range_max, self.truth_seed(*key), dist_args, learned)
        note = "".join(f", {k}={v}" for k, v in dist_args.items())
        self.check_truth_call(kind, out, key, 0, call, range_max, ref_args, note)

    # ------------------------------------------------------------------ Threefry words

    def test_truth_threefry_known_answers(self):
        """Random123's known answers of Threefry-2x32-20, from the backend's sampler words."""
        for (k0, k1), (c0, c1), (x0, x1) in self.reference.THREEFRY2X32_KAT:
            got = self.backend_threefry_words(k0, k1, [c0], [c1])
            assert (int(got[0][0]), int(got[1][0])) == (x0, x1), (
                f"Threefry-2x32 key ({k0:#x}, {k1:#x}) counter ({c0:#x}, {c1:#x}): got "
                f"({int(got[0][0]):#x}, {int(got[1][0]):#x}), expected ({x0:#x}, {x1:#x})")

    @kit_given(key=keys(), payload=st.integers(0, 2**32 - 1), fraction=0.25)
    def test_truth_threefry_words(self, key, payload):
        """Threefry words of 64 counters (random ones, and edge words) equal the reference's."""
        rng = np.random.default_rng(payload)
        edges = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1], dtype=np.uint64)
        c0 = np.concatenate([edges, rng.integers(0, 2**32, 59, dtype=np.uint64)])
        c1 = np.concatenate([edges[::-1], rng.integers(0, 2**32, 59, dtype=np.uint64)])
        got = self.backend_threefry_words(key[0], key[1], c0, c1)
        want = self.reference.threefry2x32_array(key[0], key[1], c0, c1)
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(g, w, err_msg=f"Threefry word x{i} under key {key}")

    # ------------------------------------------------------------------ candidates and counts

    @kit_given(key=keys(), data=st.data(), fraction=0.15)
    def test_truth_uniform_sampler(self, key, data):
        """Uniform: class ``(X * R) >> 64`` of each draw."""
        range_max = data.draw(ranges(), label="range_max")
        call = data.draw(sampler_calls(range_max, range_max), label="call")
        self.check_truth_fresh_call("uniform", key, call, range_max)

    @kit_given(key=keys(), data=st.data(), fraction=0.1)
    def test_truth_log_uniform_sampler(self, key, data):
        """Log-uniform: the number of thresholds ``rint(log(k+2) / log1p(R) * 2**64) <= X``."""
        range_max = data.draw(ranges(), label="range_max")
        call = data.draw(sampler_calls(range_max, range_max), label="call")
        self.check_truth_fresh_call("log_uniform", key, call, range_max)

    @kit_given(key=keys(), data=st.data(), fraction=0.1)
    def test_truth_fixed_unigram_sampler(self, key, data):
        """Fixed unigram: thresholds of the float64 CDF of the float32 weights (reserved ids,
        shards, distortion; zero weights never drawn)."""
        args = data.draw(fixed_unigram_args(), label="sampler arguments")
        weights = self.reference.fixed_unigram_weights_float32(**args)
        support = int(np.count_nonzero(weights))
        assume(support > 0)
        range_max = weights.shape[0]
        call = data.draw(sampler_calls(range_max, support), label="call")
        self.check_truth_fresh_call("fixed_unigram", key, call, range_max, args)

    @kit_given(data=st.data(), fraction=0.1)
    def test_truth_learned_unigram_sampler(self, data):
        """Learned unigram, call after call of one sampler: the first ``k`` with
        ``cumsum(counts)[k] > (X * total) >> 64``, counts learned from the earlier calls'
        labels only."""
        range_max = data.draw(ranges(300), label="range_max")
        learned = self.ms.LearnedUnigramSampler(range_max, backend=self.backend)
        previous = []
        for _ in range(data.draw(st.integers(1, 3), label="calls")):
            key = data.draw(keys(), label="key")
            call = data.draw(sampler_calls(range_max, range_max), label="call")
            counts = self.reference.learned_unigram_weights(range_max, previous)
            self.check_truth_fresh_call(
                "learned_unigram", key, call, range_max, learned=learned,
                ref_args=dict(counts=counts.astype(np.int64).tolist()))
            previous.append(call["labels"])

    @kit_given(key=keys(), kind=st.sampled_from(KINDS), data=st.data(), fraction=0.1)
    def test_truth_counts_after_rejections(self, key, kind, data):
        """Unique sampling of most of a small range, where rejections are the rule: the
        candidates, ``num_tries`` and ``-expm1(num_tries * log1p(-P))`` of every sampler."""
        if kind == "fixed_unigram":
            dist_args = dict(unigrams=list(SMALL_UNIGRAMS))
            range_max = len(SMALL_UNIGRAMS)
            support = int(np.count_nonzero(SMALL_UNIGRAMS))
        else:
            dist_args = {}
            range_max = support = data.draw(st.integers(2, 16), label="range_max")
        num_sampled = data.draw(st.integers(max(2, support // 2), support), label="num_sampled")
        num_true = data.draw(st.integers(1, 3), label="num_true")
        labels = data.draw(st.lists(st.integers(0, range_max - 1), min_size=2 * num_true,
                                    max_size=2 * num_true), label="labels")
        call = dict(num_sampled=num_sampled, unique=True, num_true=num_true,
                    labels=np.asarray(labels, dtype=np.int64).reshape(2, num_true))
        learned = ref_args = None
        if kind == "learned_unigram":  # a fresh sampler: every count is 1
            learned = self.ms.LearnedUnigramSampler(range_max, backend=self.backend)
            ref_args = dict(counts=[1] * range_max)
        self.check_truth_fresh_call(kind, key, call, range_max, dist_args, ref_args, learned)

    # ------------------------------------------------------------------ seed streams

    @kit_given(seed=st.integers(0, 2**64 - 1), data=st.data(), fraction=0.1)
    def test_truth_seed_streams(self, seed, data):
        """``Generator(s)`` and ``seed=s`` (after ``reset_streams()``) draw under the key
        ``(s >> 32, s & 0xFFFFFFFF)``; their n-th call, whichever sampler makes it, uses call
        index n."""
        range_max = len(SMALL_UNIGRAMS)
        kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=2, max_size=4), label="kinds")
        calls = [data.draw(sampler_calls(range_max, 8), label=f"call {i}")
                 for i in range(len(kinds))]
        key = (seed >> 32, seed & 0xFFFFFFFF)
        fixed = dict(unigrams=list(SMALL_UNIGRAMS))
        for form in ("Generator", "int"):
            if form == "int":
                self.ms.reset_streams()
            stream = self.ms.Generator(seed) if form == "Generator" else seed
            learned = self.ms.LearnedUnigramSampler(range_max, backend=self.backend)
            for index, (kind, call) in enumerate(zip(kinds, calls)):
                dist_args = fixed if kind == "fixed_unigram" else {}
                out = self.truth_sample(kind, call, range_max, stream, dist_args, learned)
                ref_args = dist_args
                if kind == "learned_unigram":
                    ref_args = dict(counts=[1] * range_max)  # the sampler's first call
                    learned = self.ms.LearnedUnigramSampler(range_max, backend=self.backend)
                self.check_truth_call(kind, out, key, index, call, range_max, ref_args,
                                      f", seed form {form}")
