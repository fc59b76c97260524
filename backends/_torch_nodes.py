"""The torch backend's autograd nodes and fast kernels (CPU): the sampled softmax as one node,
row gathers with cheap CPU gradients, sparse bias rows, and the unique sampler's selection.

The core writes the loss as a chain of Array API operations; autograd then keeps and re-reads
several ``[B, S]`` intermediates. :class:`SampledSoftmaxCE` computes the same function
(:func:`multisampled.kernels.sampled_softmax`) with fewer passes over the ``[B, S]`` logits:

forward
    ``z = b_s - log Q_s + x @ W_s^T`` (one ``addmm``), the accidental hits' ``-FLT_MAX`` added,
    then ``e = exp(z - max)`` in place and its row sums; ``lse = max + log(sum)``.
backward
    ``G = e * (g / sum)`` (the softmax needs no second ``exp``; ``e`` is kept, so a second
    ``backward(retain_graph=True)`` works), the bias gradient as its column sums, and two GEMMs
    (``G @ W_s``, ``G^T @ x``).

Everything is computed in float32 (float64 for float64 inputs), as the kernel does. Under
``torch.autocast`` the node runs with autocast off and does what autocast does for its own
operations: the three GEMMs in the autocast dtype (their outputs in float32), everything else,
the softmax included, in float32.
:func:`first_distinct` finds the first ``S`` distinct classes of a block of draws with a
per-class table instead of sorting. :class:`TakeRows` is the row gather of the torch backend's
``take_rows``: PyTorch's own gradient, with CPU zeros that need not be filled.
"""

from __future__ import annotations

import numpy as np
import torch

from multisampled.kernels import FLT_MAX

# ------------------------------------------------------------------------------ gathers

NUMPY_FLOATS = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}


def _fresh_host_zeros_ok(grad: torch.Tensor, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a gradient may be built in ``numpy.zeros`` memory: a plain CPU backward (no
    ``create_graph``, no compiler, no ``torch.func`` wrapper: those have no storage)."""
    if device.type != "cpu" or dtype not in NUMPY_FLOATS or torch.is_grad_enabled():
        return False
    if torch.compiler.is_compiling():
        return False
    try:
        grad.data_ptr()
    except RuntimeError:  # a functorch wrapper, a fake or meta tensor
        return False
    return True


class TakeRows(torch.autograd.Function):
    """``table.index_select(0, ids)`` with PyTorch's own gradient (zeros, then the rows added
    with ``index_add``: the same values, bit for bit).

    In a plain CPU backward the zeros of the ``[C, D]`` gradient come from ``numpy.zeros``:
    memory the operating system zeroes as it is first touched (calloc), so a step pays for the
    pages its rows land in, not for page-faulting and filling the whole gradient, which every
    step allocates afresh once ``optimizer.zero_grad()`` has set it to None. Elsewhere
    (accelerators, ``create_graph=True``, ``torch.func``, ``torch.compile``) the backward is
    ``torch.zeros(...).index_add(...)``, differentiable like index_select's own.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(table, ids):
        return table.index_select(0, ids)

    @staticmethod
    def setup_context(ctx, inputs, output):
        table, ids = inputs
        ctx.save_for_backward(ids)
        ctx.meta = (table.shape, table.dtype, table.device)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        shape, dtype, device = ctx.meta
        if _fresh_host_zeros_ok(grad, dtype, device):
            out = torch.from_numpy(np.zeros(tuple(shape), dtype=NUMPY_FLOATS[dtype]))
            return out.index_add_(0, ids, grad), None
        return torch.zeros(shape, dtype=dtype, device=device).index_add(0, ids, grad), None


def take_rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table.index_select(0, ids)`` for 1-D ``ids``, through :class:`TakeRows` when a
    gradient will flow into ``table``."""
    if table.requires_grad and torch.is_grad_enabled():
        return TakeRows.apply(table, ids)
    return table.index_select(0, ids)


# ------------------------------------------------------------------------------ sampling


def first_distinct(classes: torch.Tensor, s: int, num_classes: int):
    """``(candidates [s], num_tries 0-d)``: the first ``s`` distinct classes of the draws
    ``classes [n]`` in draw order, and the position of the ``s``-th one plus 1 (``n + 1`` when
    the block holds fewer than ``s`` distinct classes: the caller asserts ``num_tries <= n``).

    TensorFlow's unique sampler keeps a draw iff its class was not drawn before; a draw is the
    first of its class iff it is the minimum position of that class (a ``[num_classes]`` table
    filled by ``scatter_reduce(amin)``, deterministic). Ranks come from a cumulative sum.
    """
    n = int(classes.shape[0])
    device = classes.device
    pos = torch.arange(n, device=device)
    table = torch.full((num_classes,), n, dtype=torch.int64, device=device)
    table.scatter_reduce_(0, classes, pos, reduce="amin")
    is_first = table.gather(0, classes) == pos
    # kept draws go to slot rank (1-based); the others to slot 0, ranks beyond s to slot s + 1
    slot = torch.cumsum(is_first, 0).mul_(is_first).clamp_(max=s + 1)
    kept = torch.full((s + 2,), n, dtype=torch.int64, device=device)
    kept.scatter_(0, slot, pos)
    kept = kept[1 : s + 1]
    candidates = classes.index_select(0, kept.clamp(max=n - 1))
    return candidates, kept[s - 1] + 1


# ------------------------------------------------------------------------------ the loss


class SampledSoftmaxCE(torch.autograd.Function):
    """``loss [B]`` of TF's sampled softmax on gathered rows (compute dtype).

    Inputs as :func:`multisampled.kernels.sampled_softmax`: ``x [B, D]``, ``true_w [B*T, D]``,
    ``true_b [B*T]``, ``sampled_w [S, D]``, ``sampled_b [S]``, ``log_q_true`` (to ``[B, T]``)
    and ``log_q_sampled [S]`` (no gradient), ``hits`` a bool ``[B, S]`` mask or None, and
    ``num_true``, and ``gemm`` the dtype of the GEMMs (the compute dtype, or autocast's).
    Gradients reach ``x`` and the rows. Under ``create_graph=True`` the backward is the portable
    kernel's own autograd, so second derivatives are exact.
    """

    @staticmethod
    def forward(ctx, x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits,
                num_true, gemm):
        B, D = x.shape
        T = num_true
        cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdtype)
        twc, swc = true_w.to(cdtype), sampled_w.to(cdtype)
        # row-wise dot products x_i . w_{y[i,t]} + b - log Q: [B, T]
        true_adj = (true_b.to(cdtype).view(B, T) - log_q_true.to(cdtype).expand(B, T))
        if T == 1:
            true_logits = (xc * twc).sum(dim=1, keepdim=True)
        else:
            true_logits = (xc[:, None, :] * twc.view(B, T, D)).sum(dim=2)
        true_logits += true_adj
        # shared negatives: b - log Q + x @ W_s^T, [B, S] (one addmm)
        adj = sampled_b.to(cdtype) - log_q_sampled.to(cdtype)
        if gemm == cdtype:
            z = torch.addmm(adj, xc, swc.t())
        else:
            z = torch.mm(xc.to(gemm), swc.to(gemm).t()).to(cdtype).add_(adj)
        if hits is not None:
            z.add_(torch.where(hits, -FLT_MAX, 0.0).to(cdtype))
        # softmax over [true | sampled] without concatenating: shift by the row max of both
        m = torch.maximum(z.amax(dim=1), true_logits.amax(dim=1))
        e = z.sub_(m[:, None]).exp_()  # z's storage now holds exp(z - m)
        e_true = torch.exp(true_logits - m[:, None])
        total = e.sum(dim=1) + e_true.sum(dim=1)
        lse = m + torch.log(total)
        loss = lse - (true_logits[:, 0] if T == 1 else true_logits.sum(dim=1) / T)
        ctx.save_for_backward(x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                              log_q_sampled, hits, e, e_true, total)
        ctx.num_true, ctx.gemm = T, gemm
        return loss

    @staticmethod
    def backward(ctx, grad):
        (x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits, e, e_true,
         total) = ctx.saved_tensors
        T = ctx.num_true
        if torch.is_grad_enabled():  # create_graph=True: differentiate the portable kernel
            return _portable_backward(grad, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                      log_q_sampled, hits, T)
        B, D = x.shape
        cdtype, gemm = e.dtype, ctx.gemm
        xc, twc = x.to(cdtype), true_w.to(cdtype)
        scale = grad.to(cdtype) / total  # [B]
        # d loss / d z = softmax * g (e stays intact for a retained graph's next backward)
        gz = e * scale[:, None]
        # d/d true_logits of lse - mean(true): softmax share minus 1/T, times g
        d_true = e_true * scale[:, None] - grad.to(cdtype)[:, None] / T  # [B, T]
        d_true_w = (d_true[:, :, None] * xc[:, None, :]).reshape(B * T, D)
        gzg = gz.to(gemm)
        d_sampled_w = torch.mm(gzg.t(), x.to(gemm))
        dx = torch.mm(gzg, sampled_w.to(gemm)).to(cdtype)
        if T == 1:
            dx.addcmul_(d_true, twc)
        else:
            dx += (d_true[:, :, None] * twc.view(B, T, D)).sum(dim=1)
        return (dx.to(x.dtype), d_true_w.to(true_w.dtype), d_true.reshape(-1).to(true_b.dtype),
                d_sampled_w.to(sampled_w.dtype), gz.sum(dim=0).to(sampled_b.dtype), None, None,
                None, None, None)


def _portable_backward(grad, x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                       log_q_sampled, hits, num_true):
    """The gradients as the portable kernel's autograd gives them, differentiable again."""
    import array_api_compat.torch as xp

    from multisampled import kernels

    inputs = (x, true_w, true_b, sampled_w, sampled_b)
    with torch.enable_grad():
        leaves = [t if t.requires_grad else t.detach().requires_grad_(True) for t in inputs]
        loss = kernels.sampled_softmax(xp, *leaves, log_q_true, log_q_sampled, hits, num_true,
                                       lambda a: a.detach())
        grads = torch.autograd.grad(loss, leaves, grad, create_graph=True, allow_unused=True)
    return (*grads, None, None, None, None, None)


def sampled_softmax(x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits,
                    num_true: int) -> torch.Tensor:
    """:class:`SampledSoftmaxCE`: TF's per-example sampled softmax loss ``[B]``; under
    ``torch.autocast`` its GEMMs run in the autocast dtype (the rest in float32)."""
    cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return SampledSoftmaxCE.apply(x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                      log_q_sampled, hits, num_true, cdtype)
    # autocast leaves float64 alone, as it does for its own matmuls
    gemm = cdtype if cdtype == torch.float64 else torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):
        return SampledSoftmaxCE.apply(x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                                      log_q_sampled, hits, num_true, gemm)


class SparseRows(torch.autograd.Function):
    """``values[ids]`` for a 1-D ``values`` whose gradient is a sparse COO tensor of the rows
    (``F.embedding(sparse=True)`` needs a 2-D table, and the view of a 1-D bias as a column
    cannot carry a sparse gradient back)."""

    @staticmethod
    def forward(ctx, values, ids):
        ctx.save_for_backward(ids)
        ctx.size = values.shape[0]
        return values.index_select(0, ids)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        rows = torch.sparse_coo_tensor(ids[None, :], grad, (ctx.size,), check_invariants=False)
        return rows, None
