"""The conformance kit can fail: each deliberate mutation of the core makes it fail.

Every mutation is applied by a throwaway ``conftest.py`` in a temporary directory, and the
relevant kit tests run there in a subprocess (``class TestKit(BackendConformance)``), so the
patch never leaks into this process. The same tests must pass with no mutation applied.
Hypothesis runs derandomized there, so every verdict is reproducible.
"""

from __future__ import annotations

import importlib.util

import pytest
from kit_subprocess import run_kit, summary

# name -> (patch applied at conftest import, kit tests that must catch it, backend)
MUTATIONS = {
    "log_q_not_subtracted": (
        """
        from multisampled import _tf_losses
        _orig = _tf_losses._parts
        _sig = inspect.signature(_orig)

        def mutated(*args, **kwargs):
            bound = _sig.bind(*args, **kwargs)
            bound.arguments["subtract_log_q"] = False
            return _orig(*bound.args, **bound.kwargs)

        _tf_losses._parts = mutated
        """,
        "test_sampled_softmax_loss_values or test_compute_sampled_logits_values",
        "numpy",
    ),
    "accidental_hits_not_removed": (
        """
        from multisampled import plugin

        def mutated(self, xp, labels, candidates, num_classes):
            return xp.zeros((labels.shape[0], candidates.shape[0]), dtype=xp.bool)

        plugin.Backend.hit_mask = mutated
        """,
        "test_sampled_softmax_loss_values or test_tf_masks_last_duplicate_per_row",
        "numpy",
    ),
    "accidental_hits_in_wrong_row": (
        """
        from multisampled import plugin
        _orig = plugin.Backend.hit_mask

        def mutated(self, xp, labels, candidates, num_classes):
            return xp.roll(_orig(self, xp, labels, candidates, num_classes), 1, axis=0)

        plugin.Backend.hit_mask = mutated
        """,
        "test_sampled_softmax_loss_values or test_tf_masks_last_duplicate_per_row",
        "numpy",
    ),
    "mod_and_div_swapped": (
        """
        from multisampled import _partition
        _orig = _partition.shard_and_row

        def mutated(ctx, ids, total, num_shards, partition_strategy):
            swapped = {"mod": "div", "div": "mod"}[partition_strategy]
            return _orig(ctx, ids, total, num_shards, swapped)

        _partition.shard_and_row = mutated
        """,
        "test_v1_sampled_softmax_loss_values",
        "numpy",
    ),
    "soft_labels_not_one_over_t": (
        """
        import multisampled
        from multisampled import _math, _tf_losses
        _orig_logits = multisampled.compute_sampled_logits
        _sig = inspect.signature(_orig_logits)

        def mutated_logits(*args, **kwargs):
            num_true = _sig.bind(*args, **kwargs).arguments.get("num_true", 1)
            logits, labels = _orig_logits(*args, **kwargs)
            return logits, labels * num_true  # every true column gets 1, not 1/T

        def mutated_xent(xp, true_logits, sampled_logits, stop_gradient=lambda a: a):
            lse = xp.logaddexp(_math.logsumexp(xp, true_logits, stop_gradient),
                               _math.logsumexp(xp, sampled_logits, stop_gradient))
            return lse - xp.sum(true_logits, axis=1)

        def mutated_nce(xp, true_logits, sampled_logits):
            return (_math.sigmoid_terms(xp, true_logits, 1.0)
                    + _math.sigmoid_terms(xp, sampled_logits, 0.0))

        multisampled.compute_sampled_logits = mutated_logits
        _math.softmax_cross_entropy = mutated_xent
        _tf_losses.nce = mutated_nce
        """,
        "test_compute_sampled_logits_values or test_nce_loss_values "
        "or test_sampled_softmax_loss_values",
        "numpy",
    ),
    "expected_counts_without_tries_formula": (
        """
        from multisampled import _unique

        def mutated(xp, p, s, num_tries, dtype=None):
            return p * float(s)  # S * P even after rejections

        _unique.expected_count = mutated
        """,
        "test_expected_counts_follow_tries_formula",
        "numpy",
    ),
    "sampled_values_receive_gradients": (
        """
        from multisampled import _context

        _context.Ctx.stop_gradient = lambda self, x: x
        """,
        "test_no_gradient_into_sampled_values",
        "torch",
    ),
}

def _needs(backend: str) -> None:
    if backend != "numpy" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")


def _run_kit(tmp_path, patch: str, selection: str, backend: str):
    return run_kit(tmp_path, patch, backend, selection=selection, stop_first=True)[0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_kit_passes_unmutated(tmp_path, backend):
    _needs(backend)
    selection = " or ".join(
        [f"({sel})" for _, sel, b in MUTATIONS.values() if b == backend]
        + (list(HEADLINE) if backend == "numpy" else [])
    )
    result = _run_kit(tmp_path, "", selection, backend)
    assert result.returncode == 0, summary(result)
    assert " passed" in result.stdout, summary(result)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_kit_catches_mutation(tmp_path, mutation):
    patch, selection, backend = MUTATIONS[mutation]
    _needs(backend)
    result = _run_kit(tmp_path, patch, selection, backend)
    # 1 = tests failed (2+ would be an interrupted run or a broken patch, not a detection)
    assert result.returncode == 1, f"mutation {mutation!r} went undetected:\n{summary(result)}"
    assert "AssertionError" in result.stdout or "Error" in result.stdout, summary(result)


# the headline losses: each must fail on its own under the mutations of the math they share
HEADLINE = ("test_sampled_softmax_loss_values", "test_nce_loss_values",
            "test_rank_sampled_softmax_loss_values")


@pytest.mark.parametrize("test_name", HEADLINE)
@pytest.mark.parametrize("mutation", ["log_q_not_subtracted", "soft_labels_not_one_over_t"])
def test_each_headline_loss_catches_the_math_mutations(tmp_path, mutation, test_name):
    patch, _, backend = MUTATIONS[mutation]
    result = _run_kit(tmp_path, patch, test_name, backend)
    assert result.returncode == 1, (
        f"{test_name} passed under mutation {mutation!r}:\n{summary(result)}")
