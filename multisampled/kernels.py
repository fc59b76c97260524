"""The kernel API: the building blocks a front end or a backend may reuse.

Each function takes an Array API namespace ``xp`` and arrays, reads no registry and no value on
the host, and is the one definition of its rule in the library; :class:`multisampled.plugin.
Backend`'s optional capabilities default to them, so a backend that offers a faster kernel is
checked against these by the conformance kit.

Random numbers (Threefry-2x32, integer-only mapping of draws to classes):
    :func:`threefry2x32`, :func:`uniform_int`, :func:`search_cdf`, :func:`cdf_thresholds`.
Unique sampling (TF's loop): :func:`block_size`, :func:`first_new_positions`,
    :func:`portable_first_distinct` (or a backend's per-class table, where :func:`table_fits`), and
    the expected counts :func:`expected_count`.
The TF loss math on gathered rows: :func:`compute_dtype`, :func:`sampled_logit_parts`,
    :func:`softmax_cross_entropy`, :func:`sampled_softmax`, :func:`sigmoid_terms`,
    :func:`nce`, :func:`logsumexp`, and the accidental hits :func:`hit_mask`.
Host work: :func:`table_plan` (a table distribution's device tables, cached), listed in
    :data:`HOST_WORK`.
"""

from ._distributions import table_plan
from ._hits import hit_mask, last_occurrence
from ._math import (
    FLT_MAX,
    compute_dtype,
    logsumexp,
    nce,
    sampled_logit_parts,
    sampled_softmax,
    sigmoid_terms,
    softmax_cross_entropy,
)
from ._rng import cdf_thresholds, search_cdf, threefry2x32, uniform_int
from ._unique import (
    BLOCK_FAILURE_PROBABILITY,
    TABLE_CLASSES,
    block_bound,
    block_size,
    expected_count,
    first_new_positions,
    portable_first_distinct,
    table_fits,
)

from .samplers import fixed_unigram_plan  # noqa: E402

#: Host work of Python constants whose results a tracing compiler may take as constants at
#: trace time (the torch backend marks them with ``torch.compiler.assume_constant_result``).
HOST_WORK = (table_plan, fixed_unigram_plan, block_bound)

__all__ = [
    "BLOCK_FAILURE_PROBABILITY",
    "HOST_WORK",
    "FLT_MAX",
    "block_size",
    "cdf_thresholds",
    "compute_dtype",
    "expected_count",
    "first_new_positions",
    "hit_mask",
    "last_occurrence",
    "logsumexp",
    "nce",
    "portable_first_distinct",
    "sampled_logit_parts",
    "sampled_softmax",
    "search_cdf",
    "sigmoid_terms",
    "softmax_cross_entropy",
    "table_plan",
    "TABLE_CLASSES",
    "table_fits",
    "threefry2x32",
    "uniform_int",
]
