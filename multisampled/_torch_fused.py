"""The sampled softmax cross entropy as one autograd node, for :mod:`multisampled.torch`.

The core writes the loss as a chain of Array API operations; autograd then keeps and re-reads
several ``[B, S]`` intermediates. :class:`SampledSoftmaxCE` computes the same function
(TensorFlow's ``sampled_softmax_loss`` on gathered rows, SEMANTICS section 13) with fewer passes
over the ``[B, S]`` logits:

forward
    ``z = b_s - log Q_s + x @ W_s^T`` (one ``addmm``), accidental hits added as ``-FLT_MAX`` with
    one scatter, then ``e = exp(z - max)`` in place and its row sums; ``lse = max + log(sum)``.
backward
    ``G = e * (g / sum)`` in place over ``e`` (the softmax needs no second ``exp``), the bias
    gradient as its column sums, and two GEMMs (``G @ W_s``, ``G^T @ x``).

Everything is computed in float32 (float64 for float64 inputs), as the core does.

Accidental hits use a ``[num_classes]`` table of each class's last position among the
candidates (TensorFlow masks only the last copy of a repeated candidate), so nothing is sorted. The unique sampler
:func:`first_distinct` likewise finds the first ``S`` distinct classes of a block of draws with
a per-class table instead of sorting.

Every operation here runs on CUDA too, without a host synchronisation. The module still sends
CUDA tensors to the core's operations (``SampledSoftmaxLoss._fused_cuda = False``) until this
path has passed the CUDA tests on a GPU, which run both paths.

:class:`TakeRows` is the row gather of the module and of the torch backend's ``take_rows`` (the
functional API): PyTorch's own gradient, with CPU zeros that need not be filled.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

FLT_MAX = 3.4028234663852886e38

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


# ------------------------------------------------------------------------------ hits


def hit_columns(labels: torch.Tensor, candidates: torch.Tensor, num_classes: int):
    """``(cols [B, T], hit [B, T])``: for each label, the last column of ``candidates`` holding
    it (0 where none does) and whether there is one. No sorting, no host synchronisation.

    TF assigns a hit repeated within a row once (``-FLT_MAX``); here it is added once per copy
    (``-inf`` for two). Both have softmax weight exactly 0 and no gradient, so the loss and its
    gradients are the same.
    """
    B, T = labels.shape
    S = int(candidates.shape[0])
    device = labels.device
    last = torch.full((num_classes,), -1, dtype=torch.int32, device=device)
    last.scatter_reduce_(0, candidates, torch.arange(S, dtype=torch.int32, device=device),
                         reduce="amax")
    col = last.index_select(0, labels.reshape(-1)).reshape(B, T).long()
    return col.clamp(min=0), col >= 0


def add_hits(z: torch.Tensor, labels: torch.Tensor, candidates: torch.Tensor,
             num_classes: int) -> None:
    """``z += -FLT_MAX`` at the accidental hits, in place (every other addend is an exact 0)."""
    B, S = z.shape
    col, hit = hit_columns(labels, candidates, num_classes)
    flat = (torch.arange(B, device=z.device)[:, None] * S + col).reshape(-1)
    values = torch.where(hit, -FLT_MAX, 0.0).to(z.dtype).reshape(-1)
    z.view(-1).scatter_add_(0, flat, values)


# ------------------------------------------------------------------------------ the loss


class SampledSoftmaxCE(torch.autograd.Function):
    """``loss [B]`` of TF's sampled softmax on gathered rows.

    Inputs: ``x [B, D]``; ``rows_w [B*T + S, D]`` and ``rows_b [B*T + S]`` (the true rows, then
    the sampled rows); ``log_q [B*T + S]`` in the compute dtype (no gradient); ``labels [B, T]``
    and ``candidates [S]`` int64 (for the hits; ``None`` when hits are not removed);
    ``num_classes``. Gradients reach ``x``, ``rows_w`` and ``rows_b``.
    """

    @staticmethod
    def forward(ctx, x, rows_w, rows_b, log_q, labels, candidates, num_classes):
        B, D = x.shape
        T = int(labels.shape[1])
        bt = B * T
        cdtype = log_q.dtype
        xc = x.to(cdtype)
        wc = rows_w.to(cdtype)
        true_w = wc[:bt]  # [B*T, D]
        adj = torch.sub(rows_b.to(cdtype), log_q)  # b - log Q per row: [B*T + S]
        # row-wise dot products x_i . w_{y[i,t]} + b - log Q: [B, T]
        if T == 1:
            true_logits = (xc * true_w).sum(dim=1, keepdim=True)
        else:
            true_logits = (xc[:, None, :] * true_w.view(B, T, D)).sum(dim=2)
        true_logits += adj[:bt].view(B, T)
        # shared negatives: b - log Q + x @ W_s^T, [B, S]
        z = torch.addmm(adj[bt:], xc, wc[bt:].t())
        if candidates is not None:
            add_hits(z, labels, candidates, num_classes)
        # softmax over [true | sampled] without concatenating: shift by the row max of both
        m = torch.maximum(z.amax(dim=1), true_logits.amax(dim=1))
        e = z.sub_(m[:, None]).exp_()  # z's storage now holds exp(z - m)
        e_true = torch.exp(true_logits - m[:, None])
        total = e.sum(dim=1) + e_true.sum(dim=1)
        lse = m + torch.log(total)
        if T == 1:
            loss = lse - true_logits[:, 0]
        else:
            loss = lse - true_logits.sum(dim=1) / T
        ctx.save_for_backward(x, xc, wc, e, e_true, total)
        ctx.bias_dtype, ctx.w_dtype = rows_b.dtype, rows_w.dtype
        return loss.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, xc, wc, e, e_true, total = ctx.saved_tensors
        B, D = x.shape
        T = int(e_true.shape[1])
        bt = B * T
        cdtype = e.dtype
        scale = grad.to(cdtype) / total  # [B]
        # d loss / d z = softmax * g (in place over e: it is not needed afterwards)
        gz = e.mul_(scale[:, None])
        # d/d true_logits of lse - mean(true): softmax share minus 1/T, times g
        d_true = e_true * scale[:, None] - grad.to(cdtype)[:, None] / T  # [B, T]
        d_rows_w = torch.empty((wc.shape[0], D), dtype=cdtype, device=x.device)
        torch.mul(d_true[:, :, None], xc[:, None, :], out=d_rows_w[:bt].view(B, T, D))
        torch.mm(gz.t(), xc, out=d_rows_w[bt:])
        dx = torch.mm(gz, wc[bt:])
        if T == 1:
            dx.addcmul_(d_true, wc[:bt])
        else:
            dx += (d_true[:, :, None] * wc[:bt].view(B, T, D)).sum(dim=1)
        d_rows_b = torch.cat([d_true.view(bt), gz.sum(dim=0)]).to(ctx.bias_dtype)
        return dx.to(x.dtype), d_rows_w.to(ctx.w_dtype), d_rows_b, None, None, None, None


def sampled_softmax_ce(x, rows_w, rows_b, log_q, labels, candidates: Optional[torch.Tensor],
                       num_classes: int) -> torch.Tensor:
    """:class:`SampledSoftmaxCE`: TF's per-example sampled softmax loss ``[B]``."""
    return SampledSoftmaxCE.apply(x, rows_w, rows_b, log_q, labels, candidates, num_classes)
