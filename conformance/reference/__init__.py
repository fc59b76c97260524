"""Independent reference model of TensorFlow's and Paddle's sampled losses, in plain NumPy.

Written from the project's semantics document alone (section numbers below refer to it), in the
most direct style: float64 throughout, explicit loops over rows and columns where that reads
closest to the definition. It shares no code with the library it checks, so a disagreement
between the two points at a bug in one of them.

Conventions
-----------
- Inputs are anything ``numpy.asarray`` accepts. Floats are cast to float64, ids to int64.
- Probabilities and expected counts that the frameworks produce in float32 are returned as
  float64 arrays holding exactly those float32 values.
- ``sampled_values`` is the triple ``(candidates [S], true_expected_count [B, T] (or anything
  that broadcasts to it), sampled_expected_count [S])``.
- ``weights`` and ``biases`` are one array, or a Python ``list`` of shards (TF's convention:
  only a ``list`` is a shard list). Gradients with respect to a shard list are lists of the same
  length.
- Bad inputs raise ``ValueError`` (shapes, values) where TensorFlow or Paddle would fail.
"""

from __future__ import annotations


from ._common import FLT_MAX, PADDLE_CLAMP, PADDLE_MASK, PADDLE_SHIFTED_LOGIT_FLOOR
from ._distributions import (
    accidental_hits,
    embedding_lookup,
    expected_count,
    fixed_unigram_weights,
    learned_unigram_weights,
    log_uniform_prob,
    paddle_log_uniform_prob,
    uniform_prob,
    unique_sampling_trace,
)
from ._paddle import (
    full_softmax_cross_entropy,
    paddle_adjust_prob,
    paddle_sampled_logits,
    paddle_sampled_softmax,
    paddle_sampled_softmax_grad,
    paddle_samples,
)
from ._samplers import (
    THREEFRY2X32_KAT,
    cdf_threshold_ints,
    fixed_unigram_weights_float32,
    reference_candidates,
    reference_expected_counts,
    reference_probabilities,
    sampler_draws,
    threefry2x32,
    threefry2x32_array,
)
from ._tf import (
    nce_loss,
    nce_loss_grad,
    rank_resample,
    rank_sampled_softmax_loss,
    rank_sampled_softmax_loss_grad,
    sampled_logits,
    sampled_softmax_loss,
    sampled_softmax_loss_grad,
)

__all__ = [
    "FLT_MAX",
    "PADDLE_MASK",
    "PADDLE_CLAMP",
    "PADDLE_SHIFTED_LOGIT_FLOOR",
    "log_uniform_prob",
    "paddle_log_uniform_prob",
    "uniform_prob",
    "fixed_unigram_weights",
    "learned_unigram_weights",
    "expected_count",
    "unique_sampling_trace",
    "accidental_hits",
    "embedding_lookup",
    "sampled_logits",
    "sampled_softmax_loss",
    "sampled_softmax_loss_grad",
    "nce_loss",
    "nce_loss_grad",
    "rank_resample",
    "rank_sampled_softmax_loss",
    "rank_sampled_softmax_loss_grad",
    "paddle_adjust_prob",
    "paddle_samples",
    "paddle_sampled_logits",
    "paddle_sampled_softmax",
    "paddle_sampled_softmax_grad",
    "full_softmax_cross_entropy",
    "THREEFRY2X32_KAT",
    "threefry2x32",
    "threefry2x32_array",
    "sampler_draws",
    "cdf_threshold_ints",
    "fixed_unigram_weights_float32",
    "reference_probabilities",
    "reference_candidates",
    "reference_expected_counts",
]
