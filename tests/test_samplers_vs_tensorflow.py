"""Our samplers draw from the same distributions as TensorFlow's own samplers.

The bits differ (TF uses Philox, we use Threefry), so the comparison is statistical: pooled
candidate histograms from many calls of each, tested for homogeneity with a contingency
chi-square test. Fixed seeds keep the test deterministic.
"""

import numpy as np
import pytest

import multisampled as ms

tf = pytest.importorskip("tensorflow")
stats = pytest.importorskip("scipy.stats")

R, S, CALLS = 12, 4, 300
UNIGRAMS = [5.0, 1.0, 0.0, 3.0, 2.0, 8.0, 1.0, 4.0, 0.5, 6.0, 2.5, 1.5]


def _tf_histogram(sampler, unique, **kw):
    labels = tf.constant([[0]], dtype=tf.int64)
    counts = np.zeros(R)
    for i in range(CALLS):
        out = sampler(labels, 1, S, unique, R, seed=1000 + i, **kw)
        np.add.at(counts, out.sampled_candidates.numpy(), 1)
    return counts


def _our_histogram(sampler, unique, **kw):
    labels = np.zeros((1, 1), np.int64)
    counts = np.zeros(R)
    gen = ms.Generator(7)
    for _ in range(CALLS):
        out = sampler(labels, 1, S, unique, R, seed=gen, **kw)
        np.add.at(counts, np.asarray(out.sampled_candidates), 1)
    return counts


@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize(
    "name,kw",
    [
        ("log_uniform_candidate_sampler", {}),
        ("uniform_candidate_sampler", {}),
        ("fixed_unigram_candidate_sampler", {"unigrams": UNIGRAMS, "distortion": 0.75}),
    ],
)
def test_candidate_distribution_matches_tensorflow(name, kw, unique):
    theirs = _tf_histogram(getattr(tf.random, name), unique, **kw)
    ours = _our_histogram(getattr(ms, name), unique, **kw)
    assert theirs.sum() == ours.sum() == CALLS * S
    support = (theirs + ours) > 0
    # classes with zero weight must never be drawn by either
    if "unigrams" in kw:
        zero = np.asarray(kw["unigrams"]) == 0
        assert theirs[zero].sum() == 0 and ours[zero].sum() == 0
    _, p, _, _ = stats.chi2_contingency(np.stack([theirs[support], ours[support]]))
    assert p > 1e-4, (name, unique, theirs, ours)


def test_the_check_can_fail():
    """A uniform sampler is told apart from TF's log-uniform one by the same test."""
    theirs = _tf_histogram(tf.random.log_uniform_candidate_sampler, False)
    ours = _our_histogram(ms.uniform_candidate_sampler, False)
    _, p, _, _ = stats.chi2_contingency(np.stack([theirs, ours]))
    assert p < 1e-4
