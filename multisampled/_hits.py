"""STUB: TF compute_accidental_hits. To be implemented."""
def compute_accidental_hits(true_classes, sampled_candidates, num_true, seed=None, name=None, backend=None):
    raise NotImplementedError
