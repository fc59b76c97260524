"""STUB: TF candidate samplers. To be implemented."""
from typing import NamedTuple, Any
class CandidateSamples(NamedTuple):
    sampled_candidates: Any
    true_expected_count: Any
    sampled_expected_count: Any
def _stub(*a, **k): raise NotImplementedError
log_uniform_candidate_sampler = uniform_candidate_sampler = learned_unigram_candidate_sampler = _stub
fixed_unigram_candidate_sampler = all_candidate_sampler = _stub
class LearnedUnigramSampler:
    def __init__(self, *a, **k): raise NotImplementedError
