"""TensorFlow's candidate samplers: distributions (chi-square against formulas written here),
TF's unique loop and num_tries (re-simulated draw by draw), expected counts, state of the learned
unigram, the fixed unigram's weight rules, cross-backend bit-identity and every error."""

import math
import os

import array_api_strict as xs
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

import multisampled as ms
from multisampled import _distributions, _learned, _registry, _rng, _unique, samplers
from multisampled.backends import numpy as numpy_backend

SEEDS = st.integers(0, 2**64 - 1)


@pytest.fixture(autouse=True)
def _fresh_state():
    _rng.reset_streams()
    _learned.reset_learned_states()
    yield
    _rng.reset_streams()
    _learned.reset_learned_states()


# --------------------------------------------------------------------------- references


def p_uniform(r):
    return np.full(r, 1.0 / r)


def p_log_uniform(r):
    k = np.arange(r, dtype=np.float64)
    return (np.log(k + 2.0) - np.log(k + 1.0)) / math.log(r + 1.0)


def fixed_weights(unigrams, distortion=1.0, num_reserved_ids=0, num_shards=1, shard=0):
    """SEMANTICS.md 5.5 steps 1-3, written as the plain loop."""
    wv = []
    for word_id in range(num_reserved_ids):
        if word_id % num_shards == shard:
            wv.append(0.0)
    word_id = len(wv)
    for value in unigrams:
        if word_id % num_shards == shard:
            wv.append(float(value) ** distortion)
        word_id += 1
    return np.asarray(wv, dtype=np.float64)


def tf_unique_loop(draws, s):
    """TF's SampleBatchGetExpectedCountAvoid for unique=True over a given stream of draws."""
    seen, kept, tries = set(), [], 0
    for value in draws:
        tries += 1
        if value not in seen:
            seen.add(value)
            kept.append(value)
            if len(kept) == s:
                return kept, tries
    return None


def tf_expected_count(p32, s, num_tries):
    """TF's ExpectedCountHelper in float32."""
    p32 = np.asarray(p32, dtype=np.float32)
    if num_tries == s:
        return p32 * np.float32(s)
    return -np.expm1(np.float32(num_tries) * np.log1p(-p32))


def chi2_pvalue(samples, probs):
    samples = np.asarray(samples).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.bincount(samples, minlength=probs.shape[0])
    assert counts.shape[0] == probs.shape[0], "a sample outside the range"
    support = probs > 0
    assert counts[~support].sum() == 0, "a class of probability 0 was sampled"
    expected = probs[support] / probs[support].sum() * counts.sum()
    return scipy.stats.chisquare(counts[support], expected).pvalue


class NumpyAsync(type(numpy_backend.BACKEND)):
    """The NumPy backend posing as an accelerator: no host reads, checks via check_async."""

    name = "numpy-async"
    async_checks = True

    def __init__(self, record):
        self.record = record

    def may_read_values(self, device):
        return False

    def check_async(self, condition, message):
        self.record.append((bool(condition), message))


@pytest.fixture
def async_backend(monkeypatch):
    """``async_backend(record)``: a :class:`NumpyAsync` registered for the test (the core finds
    a call's backend again by name: its tables, the learned state)."""

    def make(record):
        backend = NumpyAsync(record)
        monkeypatch.setitem(_registry._backends, backend.name, backend)
        return backend

    return make


# --------------------------------------------------------------------------- distributions


def _pooled(call, calls, s):
    g = ms.Generator(20240531)
    return np.concatenate(
        [np.asarray(call(s, g).sampled_candidates) for _ in range(calls)]
    )


def test_uniform_frequencies():
    r = 11
    draws = _pooled(lambda s, g: ms.uniform_candidate_sampler([[0]], 1, s, False, r, seed=g),
                    20, 1000)
    assert chi2_pvalue(draws, p_uniform(r)) > 1e-4


def test_log_uniform_frequencies():
    r = 17
    draws = _pooled(lambda s, g: ms.log_uniform_candidate_sampler([[0]], 1, s, False, r, seed=g),
                    20, 1000)
    assert chi2_pvalue(draws, p_log_uniform(r)) > 1e-4


def test_fixed_unigram_frequencies_with_shards_and_distortion():
    kw = dict(unigrams=[1, 2, 3, 4, 5, 6, 7, 8, 9], distortion=0.5, num_reserved_ids=3,
              num_shards=2, shard=1)
    w = fixed_weights(**kw)
    draws = _pooled(
        lambda s, g: ms.fixed_unigram_candidate_sampler([[0]], 1, s, False, len(w), seed=g, **kw),
        10, 2000)
    assert chi2_pvalue(draws, w / w.sum()) > 1e-4


def test_learned_unigram_frequencies_follow_counts():
    r = 7
    sampler = ms.LearnedUnigramSampler(r)
    labels = np.asarray([[0, 3], [3, 3], [6, 5], [5, 3]])
    sampler(labels, 2, 5, False, seed=ms.Generator(1))
    weights = 1.0 + np.bincount(labels.reshape(-1), minlength=r)
    draws = sampler(labels, 2, 20000, False, seed=ms.Generator(2)).sampled_candidates
    assert chi2_pvalue(draws, weights / weights.sum()) > 1e-4


def test_uniform_large_range_covers_top_classes():
    # floor(u * R) for R near 2**31 reaches the top of the range and stays inside it
    r = 2**31 - 1
    c = np.asarray(ms.uniform_candidate_sampler([[r - 1]], 1, 4000, False, r,
                                                seed=ms.Generator(3)).sampled_candidates)
    assert c.min() >= 0 and c.max() < r and c.max() > r * 0.99


# --------------------------------------------------------------------------- unique sampling


def _sampler(kind, r, weights=None):
    if kind == "uniform":
        return (lambda tc, s, u, seed, **kw: ms.uniform_candidate_sampler(
            tc, 1, s, u, r, seed=seed, **kw)), p_uniform(r)
    if kind == "log_uniform":
        return (lambda tc, s, u, seed, **kw: ms.log_uniform_candidate_sampler(
            tc, 1, s, u, r, seed=seed, **kw)), p_log_uniform(r)
    if kind == "fixed":
        w = np.asarray(weights, dtype=np.float64)
        return (lambda tc, s, u, seed, **kw: ms.fixed_unigram_candidate_sampler(
            tc, 1, s, u, r, unigrams=list(weights), seed=seed, **kw)), w / w.sum()
    if kind == "learned":  # a fresh sampler each call: weights all 1
        return (lambda tc, s, u, seed, **kw: ms.LearnedUnigramSampler(r, **kw)(
            tc, 1, s, u, seed=seed)), p_uniform(r)
    raise AssertionError(kind)


@st.composite
def unique_cases(draw):
    kind = draw(st.sampled_from(["uniform", "log_uniform", "fixed", "learned"]))
    r = draw(st.integers(1, 24))
    weights = None
    if kind == "fixed":
        weights = draw(st.lists(st.integers(0, 9), min_size=r, max_size=r))
        if not any(weights):
            weights[0] = 1
        s = draw(st.integers(1, sum(1 for w in weights if w > 0)))
    else:
        s = draw(st.integers(1, r))
    return kind, r, s, weights, draw(SEEDS)


def _stream(sampler, tc, seed, n):
    """Draws 0..n-1 of call 0 of Generator(seed), one class per draw (non-unique sampling)."""
    draws = sampler(tc, n, False, ms.Generator(seed)).sampled_candidates
    return [int(v) for v in np.asarray(draws)]


def _check_against_tf_loop(sampler, probs, s, seed, result, tc):
    n = 64 * (len(probs) + s)
    while True:
        ref = tf_unique_loop(_stream(sampler, tc, seed, n), s)
        if ref is not None:
            break
        n *= 4
    kept, tries = ref
    assert [int(v) for v in np.asarray(result.sampled_candidates)] == kept
    p32 = probs.astype(np.float32)
    np.testing.assert_allclose(np.asarray(result.sampled_expected_count),
                               tf_expected_count(p32[kept], s, tries), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(result.true_expected_count),
                               tf_expected_count(p32[np.asarray(tc)], s, tries), rtol=1e-6)
    return tries


@given(unique_cases())
def test_unique_sampling_is_tf_loop_over_the_draw_stream(case):
    kind, r, s, weights, seed = case
    sampler, probs = _sampler(kind, r, weights)
    tc = np.asarray([[0], [r - 1]])
    result = sampler(tc, s, True, ms.Generator(seed))
    c = np.asarray(result.sampled_candidates)
    assert c.dtype == np.int64 and c.shape == (s,)
    assert len(set(c.tolist())) == s and c.min() >= 0 and c.max() < r
    assert np.all(probs[c] > 0)
    _check_against_tf_loop(sampler, probs, s, seed, result, tc)


def test_expected_count_switches_formula_with_num_tries():
    sampler, probs = _sampler("uniform", 5)
    tc = np.asarray([[1], [4]])
    tries_seen = set()
    for seed in range(40):
        result = sampler(tc, 3, True, ms.Generator(seed))
        tries = _check_against_tf_loop(sampler, probs, 3, seed, result, tc)
        q = np.asarray(result.sampled_expected_count)
        if tries == 3:  # no rejection: S * P, exactly, not 1 - (1 - P)^S
            assert np.array_equal(q, np.full(3, np.float32(0.2) * np.float32(3)))
        else:
            assert not np.allclose(q, 0.6)
        tries_seen.add(tries == 3)
    assert tries_seen == {True, False}


def test_non_unique_uses_s_times_p():
    r = 4
    result = ms.uniform_candidate_sampler([[0, 1]], 2, 10, False, r, seed=ms.Generator(0))
    assert len(set(np.asarray(result.sampled_candidates).tolist())) < 10  # repeats allowed
    expected = np.float32(1 / r) * np.float32(10)  # 2.5: may exceed 1
    assert np.array_equal(np.asarray(result.true_expected_count), np.full((1, 2), expected))
    assert np.array_equal(np.asarray(result.sampled_expected_count), np.full(10, expected))


@pytest.mark.parametrize("kind", ["uniform", "log_uniform", "fixed", "learned"])
def test_unique_result_does_not_depend_on_block_size(kind, monkeypatch, async_backend):
    r, s = 30, 25
    weights = [1 + (i % 4) for i in range(r)]
    sampler, _ = _sampler(kind, r, weights)
    tc = np.asarray([[2], [29]])
    reference = [sampler(tc, s, True, ms.Generator(seed)) for seed in range(3)]
    record = []
    backend = async_backend(record)

    def same(results):
        for a, b in zip(reference, results):
            assert np.array_equal(np.asarray(a.sampled_candidates),
                                  np.asarray(b.sampled_candidates))
            assert np.array_equal(np.asarray(a.sampled_expected_count),
                                  np.asarray(b.sampled_expected_count))
            assert np.array_equal(np.asarray(a.true_expected_count),
                                  np.asarray(b.true_expected_count))

    # one block sized by the failure bound, no host reads
    same([sampler(tc, s, True, ms.Generator(seed), backend=backend) for seed in range(3)])
    assert record and all(ok for ok, _ in record)
    # the smallest blocks: many refills on the host
    monkeypatch.setattr(_unique, "_block_sizes", {})  # the bounds of tables are cached
    monkeypatch.setattr(_unique, "block_size", lambda tails, n: n)
    same([sampler(tc, s, True, ms.Generator(seed)) for seed in range(3)])
    # no safe block size off the host: falls back to reading the count
    monkeypatch.setattr(_unique, "MAX_BLOCK", 1)
    monkeypatch.setattr(_unique, "_block_sizes", {})
    monkeypatch.setattr(_unique, "block_size", lambda tails, n: 10**6)
    same([sampler(tc, s, True, ms.Generator(seed), backend=backend) for seed in range(3)])


def test_unique_block_bound_holds_enough_distinct_classes():
    # the bound is at least the mean number of draws (coupon collector for uniform R = S)
    r = 50
    n = _unique.block_size(p_uniform(r)[:1] * 0 + (r - np.arange(r)) / r, r)
    mean = r * sum(1.0 / k for k in range(1, r + 1))
    assert mean < n < 20 * mean


def test_unique_sampling_gives_up_like_tf(monkeypatch):
    monkeypatch.setattr(_unique, "MAX_TRIES", 40)
    with pytest.raises(ValueError, match="distinct classes in 40 draws"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 3, True, 3, unigrams=[1e6, 1, 1],
                                           seed=ms.Generator(0))


def test_unique_fixed_unigram_support_smaller_than_num_sampled():
    with pytest.raises(ValueError, match=r"only 2 classes of range_max=4 have a positive weight"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 3, True, 4, unigrams=[0, 1, 0, 2])


# --------------------------------------------------------------------------- seeds


def _two_calls(fn, tc):
    return [np.asarray(fn(tc).sampled_candidates) for _ in range(2)]


def test_seeded_sequence_repeats_in_a_fresh_stream_and_calls_differ():
    fn = lambda tc: ms.log_uniform_candidate_sampler(tc, 1, 20, True, 10**5, seed=99)  # noqa
    a = _two_calls(fn, [[1]])
    _rng.reset_streams()
    b = _two_calls(fn, [[1]])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])
    # another seed, another sequence
    c = np.asarray(ms.log_uniform_candidate_sampler([[1]], 1, 20, True, 10**5,
                                                    seed=100).sampled_candidates)
    assert not np.array_equal(a[0], c)


def test_seed_none_gives_fresh_samples():
    a = ms.uniform_candidate_sampler([[1]], 1, 10, True, 10**6).sampled_candidates
    b = ms.uniform_candidate_sampler([[1]], 1, 10, True, 10**6).sampled_candidates
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def _to_numpy(x):
    return np.asarray(x.cpu()) if hasattr(x, "cpu") else np.asarray(x)


def _backend_arrays():
    cases = [("numpy", lambda a: np.asarray(a)),
             ("array_api_strict", lambda a: xs.asarray(np.asarray(a)))]
    try:
        import torch

        cases.append(("torch", lambda a: torch.asarray(np.asarray(a))))
    except ImportError:
        pass
    return cases


def _all_sampler_calls(tc):
    out = []
    for unique in (False, True):
        for fn in (ms.uniform_candidate_sampler, ms.log_uniform_candidate_sampler,
                   ms.learned_unigram_candidate_sampler):
            for _ in range(2):  # the second call continues the stream (and the learned state)
                out.append(fn(tc, 2, 9, unique, 40, seed=5))
        out.append(ms.fixed_unigram_candidate_sampler(
            tc, 2, 9, unique, 40, unigrams=[(i * 7) % 5 + 1 for i in range(80)], num_shards=2,
            shard=1, distortion=0.75, seed=5))
    return out


LABELS = [[0, 39], [7, 7], [12, 3]]


def _assert_same_results(reference, out, name):
    assert len(reference) == len(out)
    for a, b in zip(reference, out):
        assert np.array_equal(np.asarray(a.sampled_candidates),
                              _to_numpy(b.sampled_candidates)), name
        np.testing.assert_allclose(np.asarray(a.true_expected_count),
                                   _to_numpy(b.true_expected_count), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(a.sampled_expected_count),
                                   _to_numpy(b.sampled_expected_count), rtol=1e-6, err_msg=name)


def _fresh_run(calls, tc):
    _rng.reset_streams()
    _learned.reset_learned_states()
    return calls(tc)


def test_same_seed_is_bit_identical_across_backends(monkeypatch):
    reference = _fresh_run(_all_sampler_calls, np.asarray(LABELS))
    for name, make in _backend_arrays()[1:]:
        tc = make(LABELS)
        if name == "array_api_strict":
            with xs.ArrayAPIStrictFlags(api_version="2023.12", boolean_indexing=False,
                                        data_dependent_shapes=False):
                out = _fresh_run(_all_sampler_calls, tc)
        else:
            out = _fresh_run(_all_sampler_calls, tc)
        for r in out:
            assert type(r.sampled_candidates) is type(tc)
        _assert_same_results(reference, out, name)
    # uint32 words (the path of backends with int32 indices) give the same bits
    monkeypatch.setattr(_rng, "word_dtype", lambda ctx: ctx.xp.uint32)
    _distributions._tables._items.clear()
    _assert_same_results(reference, _fresh_run(_all_sampler_calls, np.asarray(LABELS)),
                         "numpy-uint32")
    _distributions._tables._items.clear()


def _few_sampler_calls(tc):
    return [ms.uniform_candidate_sampler(tc, 2, 9, False, 40, seed=5),
            ms.log_uniform_candidate_sampler(tc, 2, 9, True, 40, seed=5),
            ms.learned_unigram_candidate_sampler(tc, 2, 9, False, 40, seed=5),
            ms.learned_unigram_candidate_sampler(tc, 2, 9, False, 40, seed=5)]


@pytest.mark.slow
def test_same_seed_is_bit_identical_on_jax(request):
    # JAX without x64 has int32 indices, so it runs on uint32 words. Op-by-op JAX compiles every
    # operation (~20 s), so this runs only with `-m slow` or HYPOTHESIS_PROFILE=ci.
    if not (request.config.getoption("markexpr") == "slow"
            or os.environ.get("HYPOTHESIS_PROFILE") == "ci"):
        pytest.skip("slow: run with -m slow or HYPOTHESIS_PROFILE=ci")
    jnp = pytest.importorskip("jax.numpy")
    reference = _fresh_run(_few_sampler_calls, np.asarray(LABELS))
    out = _fresh_run(_few_sampler_calls, jnp.asarray(np.asarray(LABELS)))
    _assert_same_results(reference, out, "jax")


def test_output_types_dtypes_and_shapes():
    for fn in (ms.uniform_candidate_sampler, ms.log_uniform_candidate_sampler,
               ms.learned_unigram_candidate_sampler):
        r = fn(np.asarray([[1, 2], [3, 4], [0, 0]], dtype=np.int32), 2, 5, True, 9, seed=1)
        assert isinstance(r, ms.CandidateSamples)
        assert r.sampled_candidates.dtype == np.int64 and r.sampled_candidates.shape == (5,)
        assert r.true_expected_count.dtype == np.float32 and r.true_expected_count.shape == (3, 2)
        assert r.sampled_expected_count.dtype == np.float32
        assert r.sampled_expected_count.shape == (5,)
    empty = ms.uniform_candidate_sampler(np.zeros((0, 1), dtype=np.int64), 1, 2, False, 3)
    assert empty.true_expected_count.shape == (0, 1)


# --------------------------------------------------------------------------- learned unigram


def test_learned_unigram_state_evolution():
    r = 6
    sampler = ms.LearnedUnigramSampler(r)
    assert np.array_equal(np.asarray(sampler.counts), np.ones(r))
    first = np.asarray([[1, 1], [2, 5]])
    res1 = sampler(first, 2, 3, False, seed=1)
    # the batch's own labels do not influence its own expected counts: Q = S / R
    q1 = (np.float32(1) / np.float32(r)) * np.float32(3)
    assert np.array_equal(np.asarray(res1.true_expected_count), np.full((2, 2), q1))
    counts = np.ones(r) + np.bincount(first.reshape(-1), minlength=r)  # repeats count
    assert np.array_equal(np.asarray(sampler.counts), counts)
    second = np.asarray([[1, 0], [5, 3]])
    res2 = sampler(second, 2, 3, False, seed=1)
    p = counts.astype(np.float32)[second] / np.float32(counts.sum())
    assert np.array_equal(np.asarray(res2.true_expected_count), p * np.float32(3))
    p_c = counts.astype(np.float32)[np.asarray(res2.sampled_candidates)] / np.float32(counts.sum())
    assert np.array_equal(np.asarray(res2.sampled_expected_count), p_c * np.float32(3))
    counts += np.bincount(second.reshape(-1), minlength=r)
    assert np.array_equal(np.asarray(sampler.counts), counts)


def test_learned_unigram_total_is_capped(monkeypatch):
    r = 5
    monkeypatch.setattr(_unique, "LEARNED_TOTAL_CAP", r + 3)
    sampler = ms.LearnedUnigramSampler(r)
    sampler(np.asarray([[4, 4], [2, 0]]), 2, 1, False, seed=1)
    # only the first 3 labels in row-major order fit under the cap; the rest are dropped
    assert np.asarray(sampler.counts).tolist() == [1, 1, 2, 1, 3]
    sampler(np.asarray([[1, 1]]), 2, 1, False, seed=1)
    assert np.asarray(sampler.counts).tolist() == [1, 1, 2, 1, 3]


def test_learned_unigram_functional_state_per_attribute_set():
    call = lambda s: ms.learned_unigram_candidate_sampler([[3]], 1, s, False, 5, seed=7)  # noqa
    assert np.asarray(call(2).true_expected_count)[0, 0] == np.float32(0.2) * np.float32(2)
    q = np.asarray(call(2).true_expected_count)[0, 0]  # remembers the first call's label
    assert q == (np.float32(2) / np.float32(6)) * np.float32(2)
    q = np.asarray(call(3).true_expected_count)[0, 0]  # another attribute set: fresh state
    assert q == np.float32(0.2) * np.float32(3)


def test_learned_unigram_host_lists_and_arrays_share_state():
    sampler = ms.LearnedUnigramSampler(4)
    sampler([[1]], 1, 2, False)
    sampler(np.asarray([[1]]), 1, 2, False)
    assert np.asarray(sampler.counts).tolist() == [1, 3, 1, 1]
    ms.learned_unigram_candidate_sampler([[2]], 1, 2, False, 4)
    q = ms.learned_unigram_candidate_sampler(np.asarray([[2]]), 1, 2, False, 4).true_expected_count
    assert np.asarray(q)[0, 0] == (np.float32(2) / np.float32(5)) * np.float32(2)


def test_learned_unigram_sampler_moves_only_before_learning():
    sampler = ms.LearnedUnigramSampler(4)
    sampler(xs.asarray(np.asarray([[1]])), 1, 2, False)  # nothing learned yet: moves
    assert type(sampler.counts) is type(xs.asarray([1]))
    with pytest.raises(ValueError, match="keep one sampler per backend"):
        sampler(np.asarray([[1]]), 1, 2, False)


# --------------------------------------------------------------------------- fixed unigram


def test_fixed_unigram_shard_example_of_quirk_13_13():
    res = ms.fixed_unigram_candidate_sampler(
        [[0], [1], [2], [3]], 1, 1, False, 4, num_reserved_ids=2, num_shards=2, shard=1,
        unigrams=[1, 2, 3, 4, 5, 6])
    expected = np.asarray([0, 1, 3, 5], dtype=np.float32) / np.float32(9)
    assert np.array_equal(np.asarray(res.true_expected_count).reshape(-1), expected)
    draws = ms.fixed_unigram_candidate_sampler(
        [[0]], 1, 500, False, 4, num_reserved_ids=2, num_shards=2, shard=1,
        unigrams=[1, 2, 3, 4, 5, 6], seed=ms.Generator(4)).sampled_candidates
    assert set(np.asarray(draws).tolist()) == {1, 2, 3}  # shard-local ids; reserved never drawn


def test_fixed_unigram_shard_example_of_5_5():
    res = ms.fixed_unigram_candidate_sampler([[0], [1], [2]], 1, 2, False, 3, num_shards=2,
                                             shard=1, unigrams=[1, 2, 3, 4, 5, 6])
    expected = np.asarray([2, 4, 6], dtype=np.float32) / np.float32(12) * np.float32(2)
    assert np.array_equal(np.asarray(res.true_expected_count).reshape(-1), expected)
    assert set(np.asarray(res.sampled_candidates).tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match=r"range_max=6 must equal the number of weights"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 2, False, 6, num_shards=2, shard=1,
                                           unigrams=[1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize(
    "unigrams,distortion,reserved,expected",
    [
        ([0, 1, 4, 9], 0.5, 0, [0, 1, 2, 3]),
        ([0, 1, 4, 9], 0.0, 0, [1, 1, 1, 1]),  # distortion 0: zero counts get weight 1 too
        ([0, 1, 4], 0.0, 1, [0, 1, 1, 1]),  # but reserved ids stay at 0
    ],
)
def test_fixed_unigram_distortion(unigrams, distortion, reserved, expected):
    r = len(expected)
    res = ms.fixed_unigram_candidate_sampler(
        [[k] for k in range(r)], 1, 1, False, r, unigrams=unigrams, distortion=distortion,
        num_reserved_ids=reserved)
    w = np.asarray(expected, dtype=np.float32)
    assert np.array_equal(np.asarray(res.true_expected_count).reshape(-1), w / w.sum())


def test_fixed_unigram_vocab_file(tmp_path):
    path = tmp_path / "vocab.csv"
    path.write_bytes(b"the,5\nquick,brown, 3 \n\nfox,0\r\n")
    res = ms.fixed_unigram_candidate_sampler([[0], [1], [2]], 1, 1, False, 3,
                                             vocab_file=str(path))
    expected = np.asarray([5, 3, 0], dtype=np.float32) / np.float32(8)
    assert np.array_equal(np.asarray(res.true_expected_count).reshape(-1), expected)
    # pathlib paths work; a bad line in another shard is never parsed (as in TensorFlow)
    other = tmp_path / "sharded.csv"
    other.write_text("a,1\nb,oops\nc,3\n")
    res = ms.fixed_unigram_candidate_sampler([[0], [1]], 1, 1, False, 2, vocab_file=other,
                                             num_shards=2, shard=0)
    expected = np.asarray([1, 3], dtype=np.float32) / np.float32(4)
    assert np.array_equal(np.asarray(res.true_expected_count).reshape(-1), expected)
    with pytest.raises(ValueError, match=r"vocab_file=.*vocabulary format at line 2: 'b,oops'"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 1, False, 3, vocab_file=other)
    with pytest.raises(ValueError, match="Must only provide one of vocab_file and unigrams"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 1, False, 3, vocab_file=str(path),
                                           unigrams=[1, 2, 3])
    with pytest.raises(FileNotFoundError, match="vocab_file="):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 1, False, 3,
                                           vocab_file=str(tmp_path / "missing.csv"))


# --------------------------------------------------------------------------- all candidates


def test_all_candidate_sampler():
    res = ms.all_candidate_sampler(np.asarray([[0, 4], [2, 1]]), 2, 5, True, seed=3)
    assert np.asarray(res.sampled_candidates).tolist() == [0, 1, 2, 3, 4]
    assert res.sampled_candidates.dtype == np.int64
    assert np.array_equal(np.asarray(res.sampled_expected_count), np.ones(5, np.float32))
    assert np.array_equal(np.asarray(res.true_expected_count), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"true_classes values must be in \[0, 5\).*got 5"):
        ms.all_candidate_sampler([[5]], 1, 5, False)


# --------------------------------------------------------------------------- errors


def _uniform(**kw):
    args = dict(true_classes=[[0]], num_true=1, num_sampled=2, unique=False, range_max=10)
    args.update(kw)
    return ms.uniform_candidate_sampler(**args)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (dict(true_classes=[0, 1]), ValueError, r"true_classes must be a rank-2 array.*rank 1"),
        (dict(true_classes=[[[0]]]), ValueError, r"true_classes must be a rank-2 array.*rank 3"),
        (dict(true_classes=[[0, 1]]), ValueError, r"num_true=1 columns, got 2"),
        (dict(true_classes=[[0.0]]), TypeError,
         r"true_classes \(labels\) must have an integer dtype"),
        (dict(true_classes=[[True]]), TypeError,
         r"true_classes \(labels\) must have an integer dtype"),
        (dict(num_true=0), ValueError, r"num_true must be an int >= 1|num_true must be an int in"),
        (dict(num_true=1.0), TypeError, r"num_true must be an int, got 1.0"),
        (dict(num_sampled=0), ValueError, r"num_sampled must be an int in \[1, .*got 0"),
        (dict(num_sampled=True), TypeError, r"num_sampled must be an int, got the bool True"),
        (dict(range_max=0), ValueError, r"range_max must be an int >= 1, got 0"),
        (dict(range_max="10"), TypeError, r"range_max must be an int"),
        (dict(unique=1), TypeError, r"unique must be a bool, got 1"),
        (dict(unique=True, num_sampled=11), ValueError,
         r"Sampler's range is too small.*num_sampled=11.*range_max=10"),
        (dict(true_classes=[[10]]), ValueError,
         r"true_classes values must be in \[0, 10\).*got 10"),
        (dict(true_classes=[[0], [-1]]), ValueError, r"in \[0, 10\).*got -1 at flat position 1"),
        (dict(seed=-1), ValueError, r"seed must be an int in \[0, 2\*\*64\); got -1"),
        (dict(seed=1.5), TypeError, r"seed must be None, a Generator, a key or an int"),
        (dict(seed=2**64), ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
    ],
)
def test_errors_name_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        _uniform(**kwargs)


def test_unigram_range_max_limit():
    for fn in (ms.learned_unigram_candidate_sampler,):
        with pytest.raises(ValueError, match=r"less than 2147483647.*got 2147483647"):
            fn([[0]], 1, 1, False, 2**31 - 1)
    with pytest.raises(ValueError, match=r"range_max must be less than 2147483647"):
        ms.LearnedUnigramSampler(2**31)
    with pytest.raises(ValueError, match=r"range_max must be less than 2147483647"):
        ms.fixed_unigram_candidate_sampler([[0]], 1, 1, False, 2**31 - 1, unigrams=[1.0])


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (dict(unigrams=()), ValueError, r"Must provide either vocab_file or unigrams"),
        (dict(unigrams=[1, float("nan"), 2]), ValueError,
         r"unigrams weights must be finite and >= 0, got nan at index 1"),
        (dict(unigrams=[1, -2, 2]), ValueError,
         r"unigrams weights must be finite and >= 0, got -2"),
        (dict(unigrams=[1, float("inf"), 2]), ValueError, r"finite and >= 0, got inf"),
        (dict(unigrams=[0, 0, 0]), ValueError, r"positive finite total"),
        (dict(unigrams=[[1, 2, 3]]), ValueError, r"unigrams must be a flat sequence"),
        (dict(unigrams="abc"), TypeError, r"unigrams must be a sequence of floats"),
        (dict(unigrams=[0, 1, 2], distortion=-1.0), ValueError,
         r"distortion=-1.0 turns the unigrams weight 0.0 at index 0 into inf"),
        (dict(distortion=float("nan")), ValueError, r"distortion must be a finite float, got nan"),
        (dict(distortion="1"), TypeError, r"distortion must be a float"),
        (dict(num_reserved_ids=-1), ValueError, r"num_reserved_ids must be an int in \[0"),
        (dict(num_shards=0), ValueError, r"num_shards must be an int in \[1"),
        (dict(shard=2, num_shards=2), ValueError, r"shard must be in \[0, num_shards=2\), got 2"),
        (dict(vocab_file=3), TypeError, r"vocab_file must be a path"),
        (dict(range_max=4), ValueError,
         r"range_max=4 must equal the number of weights of shard 0, which is 3"),
    ],
)
def test_fixed_unigram_errors(kwargs, error, pattern):
    args = dict(true_classes=[[0]], num_true=1, num_sampled=1, unique=False, range_max=3,
                unigrams=[1, 2, 3])
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        ms.fixed_unigram_candidate_sampler(**args)


def test_label_range_goes_through_assert_async_off_the_host(async_backend):
    record = []
    res = ms.uniform_candidate_sampler(np.asarray([[3], [12]]), 1, 2, False, 10,
                                       backend=async_backend(record))
    assert record and record[0][0] is False
    assert "true_classes values must be in [0, 10)" in record[0][1]
    # computed without reading out of range
    assert np.asarray(res.true_expected_count).shape == (2, 1)


# --------------------------------------------------------------------------- against TensorFlow


def test_expected_counts_equal_tensorflow():
    tf = pytest.importorskip("tensorflow")

    def tf_true_q(fn, labels, **kw):
        res = fn(true_classes=tf.constant(np.asarray(labels, dtype=np.int64)), **kw)
        return res.true_expected_count.numpy(), res.sampled_expected_count.numpy()

    def ours(fn, labels, **kw):
        res = fn(np.asarray(labels), **kw)
        return np.asarray(res.true_expected_count)

    labels = [[0, 1], [99999, 123], [7, 7]]
    for name in ("uniform_candidate_sampler", "log_uniform_candidate_sampler"):
        for unique in (False, True):  # unique with R = 100000, S = 3: no rejection, S * P
            kw = dict(num_true=2, num_sampled=3, unique=unique, range_max=100000, seed=1)
            theirs, _ = tf_true_q(getattr(tf.random, name), labels, **kw)
            mine = ours(getattr(ms, name), labels, **kw)
            np.testing.assert_array_max_ulp(mine, theirs, maxulp=1)

    kw = dict(num_true=1, num_sampled=2, unique=False, range_max=4, num_reserved_ids=2,
              num_shards=2, shard=1, unigrams=[1, 2, 3, 4, 5, 6], distortion=0.75)
    fixed_labels = [[0], [1], [2], [3]]
    theirs, _ = tf_true_q(tf.random.fixed_unigram_candidate_sampler, fixed_labels, **kw)
    np.testing.assert_array_max_ulp(ours(ms.fixed_unigram_candidate_sampler, fixed_labels, **kw),
                                    theirs, maxulp=1)

    # learned unigram: the same state evolution over three calls (range 37 keeps this kernel
    # apart from any other test's). An int seed: with seed=None TF takes a fresh op seed per
    # call once a global seed is set (tf.random.set_seed, keras.utils.set_random_seed), so
    # every call gets a new kernel and TF's state would not persist
    batches = [[[1, 1], [2, 36]], [[5, 1], [1, 0]], [[36, 36], [3, 4]]]
    kw = dict(num_true=2, num_sampled=4, unique=False, range_max=37, seed=20261204)
    _learned.reset_learned_states()
    for batch in batches:
        theirs, _ = tf_true_q(tf.random.learned_unigram_candidate_sampler, batch, **kw)
        mine = ours(ms.learned_unigram_candidate_sampler, batch, **kw)
        assert np.array_equal(mine, theirs)

    # rejection: recover TF's num_tries from its counts, then the same formula must agree
    r, s = 10, 7
    theirs_true, theirs_sampled = tf_true_q(
        tf.random.uniform_candidate_sampler, [[0], [9]], num_true=1, num_sampled=s,
        unique=True, range_max=r, seed=3)
    p = np.float32(1.0 / r)
    tries = [n for n in range(s, 100000)
             if tf_expected_count([p], s, n)[0] == theirs_sampled[0]]
    assert tries, "TensorFlow's count matches no num_tries"
    from multisampled._context import context

    ctx = context(np.zeros(1))
    mine = _unique.expected_count(ctx.xp, np.full((2,), p, dtype=np.float32), s, tries[0])
    np.testing.assert_array_max_ulp(mine, theirs_true.reshape(-1), maxulp=1)
