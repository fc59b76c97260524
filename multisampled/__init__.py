"""multisampled: TensorFlow/Paddle sampled softmax, NCE and candidate samplers on any Array API
framework (NumPy, PyTorch, JAX, TensorFlow, and third-party backends through plugins).

Every function takes arrays of one framework and returns arrays of the same framework; host data
(NumPy arrays, lists) goes to ``backend=``, ``use_backend(...)``, ``$MULTISAMPLED_BACKEND`` or
NumPy, in that order.
"""

from ._registry import BackendInfo, env_backend_name, get_backend, use_backend
from ._rng import Generator, reset_streams
from .plugin import hookimpl
from ._hits import compute_accidental_hits
from ._paddle import sampled_softmax_with_cross_entropy
from ._tf_losses import (
    compute_sampled_logits,
    nce_loss,
    rank_sampled_softmax_loss,
    row_ids,
    sampled_softmax_loss,
)
from .samplers import (
    CandidateSamples,
    LearnedUnigramSampler,
    LearnedUnigramState,
    all_candidate_sampler,
    fixed_unigram_candidate_sampler,
    learned_unigram_candidate_sampler,
    learned_unigram_state,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from . import kernels, v1

# the callable package of the built-in backends: ``multisampled.backends()`` lists the
# registered backends, ``multisampled.backends.torch`` is a module (it imports no framework)
from . import backends  # noqa: E402
from . import _registry as _plugins  # noqa: E402

# Load the plugins now (they import no framework): loading takes a lock, which a compiler
# tracing the first call of a function (torch.compile) could not trace.
_plugins.plugin_manager()

__version__ = "0.1.0"

__all__ = [
    "BackendInfo",
    "CandidateSamples",
    "Generator",
    "LearnedUnigramSampler",
    "LearnedUnigramState",
    "all_candidate_sampler",
    "backends",
    "compute_accidental_hits",
    "compute_sampled_logits",
    "env_backend_name",
    "fixed_unigram_candidate_sampler",
    "get_backend",
    "hookimpl",
    "kernels",
    "learned_unigram_candidate_sampler",
    "learned_unigram_state",
    "log_uniform_candidate_sampler",
    "nce_loss",
    "rank_sampled_softmax_loss",
    "reset_streams",
    "row_ids",
    "sampled_softmax_loss",
    "sampled_softmax_with_cross_entropy",
    "uniform_candidate_sampler",
    "use_backend",
    "v1",
]
