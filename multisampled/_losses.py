"""STUB: the loss family. To be implemented."""
def _stub(*a, **k): raise NotImplementedError
compute_sampled_logits = nce_loss = rank_sampled_softmax_loss = sampled_softmax_loss = sampled_softmax_with_cross_entropy = _stub
