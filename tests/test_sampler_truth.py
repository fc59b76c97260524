"""The sampler truth: the reference's Threefry-2x32 against published answers and against JAX's
own implementation, and the kit's ``SamplerTruthTests`` failing when the core's generator or its
mapping of draws to classes is mutated.

Each mutation is applied by a throwaway ``conftest.py`` in a temporary directory and the group
runs there in a subprocess, so the patch never leaks into this process; Hypothesis runs
derandomized there, so every verdict is reproducible.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, strategies as st
from kit_subprocess import run_kit, summary

import multisampled

from multisampled.conformance import reference as ref

WORD = st.integers(0, 2**32 - 1)

#: Random123's kat_vectors for threefry2x32_20 (also in JAX's random tests).
RANDOM123_THREEFRY2X32_20 = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


# ------------------------------------------------------------------ the reference's Threefry


def test_reference_kat_constant_is_random123s():
    assert list(ref.THREEFRY2X32_KAT) == RANDOM123_THREEFRY2X32_20


@pytest.mark.parametrize("key, counter, expected", RANDOM123_THREEFRY2X32_20)
def test_reference_threefry_known_answers(key, counter, expected):
    assert ref.threefry2x32(*key, *counter) == expected
    x0, x1 = ref.threefry2x32_array(*key, np.array([counter[0]]), np.array([counter[1]]))
    assert (int(x0[0]), int(x1[0])) == expected


@given(key0=WORD, key1=WORD, payload=st.integers(0, 2**32 - 1))
def test_reference_array_form_equals_int_form(key0, key1, payload):
    rng = np.random.default_rng(payload)
    c0 = rng.integers(0, 2**32, 16, dtype=np.uint64)
    c1 = rng.integers(0, 2**32, 16, dtype=np.uint64)
    x0, x1 = ref.threefry2x32_array(key0, key1, c0, c1)
    for i in range(16):
        assert ref.threefry2x32(key0, key1, int(c0[i]), int(c1[i])) == (int(x0[i]), int(x1[i]))


def test_reference_threefry_matches_jax_primitive():
    """JAX's ``threefry2x32_p`` (its own implementation, the kernel behind ``jax.random``) on
    random keys and counters, one key per element."""
    pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.extend.random import threefry2x32_p

    rng = np.random.default_rng(2024)
    words = [rng.integers(0, 2**32, 4096, dtype=np.uint64) for _ in range(4)]
    words = [np.concatenate([w, np.array([0, 2**32 - 1], dtype=np.uint64)]) for w in words]
    mine = ref.threefry2x32_array(*words)
    theirs = threefry2x32_p.bind(*(jnp.asarray(w.astype(np.uint32)) for w in words))
    for i, (m, t) in enumerate(zip(mine, theirs)):
        np.testing.assert_array_equal(m, np.asarray(t).astype(np.uint64), err_msg=f"x{i}")


def test_torch_op_kernel_matches_reference():
    """The core's Threefry on int64 torch words (what the torch backend runs on CUDA and under
    torch.compile; CPU sampler calls take the NumPy host path instead)."""
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    from multisampled import kernels

    rng = np.random.default_rng(7)
    c0 = rng.integers(0, 2**32, 1024, dtype=np.uint64)
    c1 = rng.integers(0, 2**32, 1024, dtype=np.uint64)
    for key in [(0, 0), (2**32 - 1, 2**32 - 1), (0x13198A2E, 0x03707344)]:
        got = kernels.threefry2x32(xp, key[0], key[1], torch.from_numpy(c0.astype(np.int64)),
                                   torch.from_numpy(c1.astype(np.int64)))
        want = ref.threefry2x32_array(key[0], key[1], c0, c1)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy().astype(np.uint64), w)


# ------------------------------------------------------------------ the reference's samplers


@given(key0=WORD, key1=WORD, call_index=st.integers(0, 5), num_sampled=st.integers(1, 40),
       range_max=st.integers(1, 10**6))
def test_reference_uniform_draws_follow_the_counter_contract(key0, key1, call_index,
                                                             num_sampled, range_max):
    """Draw i of call c is Threefry of the counter (c, i), and its uniform class is
    floor(u * R) for u = (x0 * 2**32 + x1) / 2**64."""
    cands, tries = ref.reference_candidates("uniform", (key0, key1), call_index, num_sampled,
                                            False, range_max)
    assert tries == num_sampled
    for i, k in enumerate(cands.tolist()):
        x0, x1 = ref.threefry2x32(key0, key1, call_index, i)
        u_times_r = ((x0 << 32) | x1) * range_max
        assert k == u_times_r // 2**64


@given(key0=WORD, key1=WORD, kind=st.sampled_from(["uniform", "log_uniform", "learned_unigram"]),
       range_max=st.integers(1, 30), data=st.data())
def test_reference_unique_sampling_is_tfs_loop_over_the_draws(key0, key1, kind, range_max, data):
    num_sampled = data.draw(st.integers(1, range_max))
    cands, tries = ref.reference_candidates(kind, (key0, key1), 3, num_sampled, True, range_max)
    draws, _ = ref.reference_candidates(kind, (key0, key1), 3, tries, False, range_max)
    expected, expected_tries = ref.unique_sampling_trace(draws, num_sampled)
    np.testing.assert_array_equal(cands, expected)
    assert tries == expected_tries


def test_reference_never_draws_zero_weights():
    weights = [0.0, 3.0, 0.0, 1.0, 0.0]
    cands, _ = ref.reference_candidates("fixed_unigram", (1, 2), 0, 2000, False, 6,
                                        unigrams=weights, num_reserved_ids=1)
    assert set(cands.tolist()) == {2, 4}
    np.testing.assert_array_equal(
        ref.reference_probabilities("fixed_unigram", np.arange(6), 6, unigrams=weights,
                                    num_reserved_ids=1),
        np.float32([0, 0, 0.75, 0, 0.25, 0]))


# ------------------------------------------------------------------ mutations of the core

# name -> (patch applied at conftest import, tests of the group that must fail, backends)
MUTATIONS = {
    # the core's Threefry reads this module attribute on every call: the portable version
    # (numpy; TensorFlow off the CPU) and the NumPy host kernel (torch and TensorFlow CPU words)
    "threefry_rotation_schedule": (
        """
        from multisampled import _rng
        _rng._ROTATIONS = (_rng._ROTATIONS[1], _rng._ROTATIONS[0])
        """,
        ["test_truth_threefry_known_answers", "test_truth_threefry_words",
         "test_truth_uniform_sampler", "test_truth_log_uniform_sampler",
         "test_truth_fixed_unigram_sampler", "test_truth_learned_unigram_sampler",
         "test_truth_counts_after_rejections", "test_truth_seed_streams"],
        ["numpy", "torch", "tensorflow"],
    ),
    "uniform_int_one_class_high": (
        """
        from multisampled import _rng
        _orig = _rng.uniform_int

        def mutated(xp, hi, lo, n):
            return (_orig(xp, hi, lo, n) + 1) % n

        _rng.uniform_int = mutated
        """,
        ["test_truth_uniform_sampler", "test_truth_learned_unigram_sampler"],
        ["numpy"],
    ),
    "cdf_search_one_threshold_short": (
        """
        from multisampled import _rng
        _orig_keys, _orig_words = _rng.search_cdf_keys, _rng.search_cdf

        def keys(xp, hi, lo, table):
            k = _orig_keys(xp, hi, lo, table)
            return xp.where(k > 0, k - 1, k)

        def words(xp, hi, lo, th_hi, th_lo, index_dtype=None):
            k = _orig_words(xp, hi, lo, th_hi, th_lo, index_dtype)
            return xp.where(k > 0, k - 1, k)

        _rng.search_cdf_keys, _rng.search_cdf = keys, words
        """,
        ["test_truth_log_uniform_sampler", "test_truth_fixed_unigram_sampler"],
        ["numpy"],
    ),
    "expected_counts_one_try_more": (
        """
        from multisampled import _unique
        _orig = _unique.expected_count

        def mutated(xp, p, s, num_tries, dtype=None):
            return _orig(xp, p, s, num_tries if num_tries == s else num_tries + 1, dtype)

        _unique.expected_count = mutated
        """,
        ["test_truth_counts_after_rejections"],
        ["numpy"],
    ),
    "seed_words_swapped": (
        """
        from multisampled import _rng
        _orig = _rng.Generator.__init__

        def mutated(self, seed=None):
            _orig(self, seed)
            self.key = (self.key[1], self.key[0])

        _rng.Generator.__init__ = mutated
        """,
        ["test_truth_seed_streams"],
        ["numpy"],
    ),
    "key_words_swapped": (
        """
        from multisampled import _seeds
        _orig = _seeds.key_words

        def mutated(ctx, key):
            k0, k1 = _orig(ctx, key)
            return k1, k0

        _seeds.key_words = mutated
        """,
        ["test_truth_uniform_sampler", "test_truth_log_uniform_sampler"],
        ["numpy", "torch"],
    ),
    "call_index_off_by_one": (
        """
        from multisampled import _rng
        _orig = _rng.Generator.next_call

        def mutated(self):
            key0, key1, index = _orig(self)
            return key0, key1, index + 1

        _rng.Generator.next_call = mutated
        """,
        ["test_truth_seed_streams"],
        ["numpy"],
    ),
}


def _needs(backend: str) -> None:
    """Skips unless ``backend`` is installed and under test (``$MULTISAMPLED_BACKEND``, when set,
    narrows the backends as it does for the kit)."""
    named = multisampled.env_backend_name()
    if named is not None and named != backend:
        pytest.skip(f"MULTISAMPLED_BACKEND={named} leaves out {backend}")
    if backend != "numpy" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")


def _run_group(tmp_path, patch: str, backend: str):
    """Runs SamplerTruthTests on ``backend`` with ``patch`` applied; returns the result and the
    names of the failed tests."""
    return run_kit(tmp_path, patch, backend, group="SamplerTruthTests", examples=60)


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_truth_group_passes_unmutated(tmp_path, backend):
    _needs(backend)
    result, failed = _run_group(tmp_path, "", backend)
    assert result.returncode == 0 and not failed, summary(result)
    assert "8 passed" in result.stdout, summary(result)


@pytest.mark.parametrize(
    "mutation, backend",
    [(name, backend) for name, (_, _, backends) in MUTATIONS.items() for backend in backends],
)
def test_truth_group_catches_mutation(tmp_path, mutation, backend):
    patch, must_fail, _ = MUTATIONS[mutation]
    _needs(backend)
    result, failed = _run_group(tmp_path, patch, backend)
    # 1 = tests failed (2+ would be an interrupted run or a broken patch, not a detection)
    assert result.returncode == 1, f"{mutation} on {backend}: exit {result.returncode}\n" + (
        summary(result))
    missed = sorted(set(must_fail) - failed)
    assert not missed, f"{mutation} on {backend} went undetected by {missed}:\n{summary(result)}"
