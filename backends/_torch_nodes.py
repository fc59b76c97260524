"""The torch backend's autograd nodes and fast kernels (CPU): the sampled softmax as one node,
row gathers with cheap CPU gradients, sparse bias rows, the unique sampler's selection and the
accidental-hit mask.

The core writes the loss as a chain of Array API operations; autograd then keeps and re-reads
several ``[B, S]`` intermediates. :class:`SampledSoftmaxCE` computes the same function
(:func:`multisampled.kernels.sampled_softmax`) with fewer passes over the ``[B, S]`` logits:

forward
    ``z = b_s - log Q_s + x @ W_s^T`` (one ``addmm``), the accidental hits' ``-FLT_MAX`` added
    (at the hit positions of a :func:`hit_mask` mask, else through the dense mask), then
    ``e = exp(z - max)`` in place and its row sums; ``lse = max + log(sum)``.
backward
    ``G = e * (g / sum)`` (the softmax needs no second ``exp``; ``G`` overwrites ``e`` unless
    the graph is retained, so a second ``backward(retain_graph=True)`` still works), the bias
    gradient as its column sums, and two GEMMs (``G @ W_s``, ``G^T @ x``).
float32 CUDA tensors (where :func:`._torch_triton.usable`)
    one Triton kernel each way after the GEMM (:mod:`._torch_triton_ce`): the forward reads
    ``z`` once for ``lse`` and the loss, and keeps ``z`` and ``lse``; the backward recomputes
    the softmax from them as it writes ``G`` (over ``z`` unless the graph is retained).

Everything is computed in float32 (float64 for float64 inputs), as the kernel does. Under
``torch.autocast`` the node runs with autocast off and does what autocast does for its own
operations: the three GEMMs in the autocast dtype (their outputs in float32), everything else,
the softmax included, in float32.
:func:`first_distinct` finds the first ``S`` distinct classes of a block of draws, and
:func:`hit_mask` the accidental hits, with a per-class table instead of sorting.
:class:`TakeRows` is the row gather of the torch backend's ``take_rows``: PyTorch's own
gradient, with CPU zeros that need not be filled.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from multisampled.kernels import FLT_MAX

from . import _torch_triton, _torch_triton_ce

# ------------------------------------------------------------------------------ gathers

NUMPY_FLOATS = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}


def _plain_cpu_backward(grad: torch.Tensor, device: torch.device) -> bool:
    """Whether this is a plain first-order CPU backward: no ``create_graph``, no compiler, no
    ``torch.func`` wrapper (those have no storage)."""
    if device.type != "cpu" or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return False
    try:
        grad.data_ptr()
    except RuntimeError:  # a functorch wrapper, a fake or meta tensor
        return False
    return True


def _fresh_host_zeros_ok(grad: torch.Tensor, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a gradient may be built in ``numpy.zeros`` memory: a plain CPU backward of a
    NumPy dtype."""
    return dtype in NUMPY_FLOATS and _plain_cpu_backward(grad, device)


class TakeRows(torch.autograd.Function):
    """``table.index_select(0, ids)`` with PyTorch's own gradient (zeros, then the rows added
    with ``index_add``), written once where a dense gradient is kept.

    * A CPU leaf table whose ``.grad`` is already a dense tensor (``zero_grad(set_to_none=False)``,
      gradient accumulation) and that has no tensor hooks gets its rows as a sparse COO
      gradient, which autograd adds into ``.grad`` in place: the step writes the rows, not a
      whole ``[C, D]`` gradient that is then added (same values up to the order of the
      additions of a repeated id).
    * In a plain CPU backward otherwise, the zeros of the ``[C, D]`` gradient come from
      ``numpy.zeros``: memory the operating system zeroes as it is first touched (calloc), so a
      step pays for the pages its rows land in, not for filling the whole gradient, which every
      step allocates afresh once ``optimizer.zero_grad()`` has set it to None.
    * Elsewhere (accelerators, ``create_graph=True``, ``torch.func``, ``torch.compile``) the
      backward is ``torch.zeros(...).index_add(...)``, differentiable like index_select's own.
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
        ctx.leaf = weakref.ref(table) if table.is_leaf else None

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        shape, dtype, device = ctx.meta
        if _accumulates_in_place(ctx.leaf, grad):
            return torch.sparse_coo_tensor(ids[None, :], grad, tuple(shape),
                                           check_invariants=False), None
        if _fresh_host_zeros_ok(grad, dtype, device):
            out = torch.from_numpy(np.zeros(tuple(shape), dtype=NUMPY_FLOATS[dtype]))
            return out.index_add_(0, ids, grad), None
        return torch.zeros(shape, dtype=dtype, device=device).index_add(0, ids, grad), None


def _accumulates_in_place(leaf, grad: torch.Tensor) -> bool:
    """Whether autograd will add a sparse row gradient into the leaf's dense ``.grad`` in
    place: a first-order CPU backward outside compilers and ``torch.func``, a leaf whose ``.grad``
    is a plain dense tensor of its own shape and dtype, and no tensor hooks (which would see a
    sparse gradient)."""
    table = None if leaf is None else leaf()
    if table is None or table._backward_hooks or not _plain_cpu_backward(grad, table.device):
        return False
    held = table.grad
    return (held is not None and type(held) is torch.Tensor and held.layout == torch.strided
            and held.shape == table.shape and held.dtype == table.dtype
            and held.device == table.device and not held.requires_grad)


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


def hit_mask(labels: torch.Tensor, candidates: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Bool ``[B, S]``: :func:`multisampled.kernels.hit_mask` of ``labels [B, T]`` and
    ``candidates [S]`` (ids in ``[0, num_classes)``) from a ``[num_classes]`` table of each
    class's LAST position among the candidates (``scatter_reduce(amax)``, deterministic)
    instead of sorting and comparing every label with every candidate: row ``i``'s hits are
    the table's entries at its labels.

    The mask keeps the flat positions of its hits (:func:`_hit_positions`), so that
    :class:`SampledSoftmaxCE` adds ``-FLT_MAX`` at those few positions instead of reading the
    ``[B, S]`` mask (bool tensors have no vectorised CPU kernels).
    """
    B, T = labels.shape
    S = int(candidates.shape[0])
    device = candidates.device
    last = torch.full((num_classes,), -1, dtype=torch.int32, device=device)
    last.scatter_reduce_(0, candidates.long(), torch.arange(S, dtype=torch.int32, device=device),
                         reduce="amax")
    col = last.index_select(0, labels.reshape(-1)).view(B, T).long()
    # row i's hit at column c is flat position i * S + c; the labels without a hit go to B * S
    flat = torch.where(col >= 0, torch.arange(B, device=device).mul_(S)[:, None] + col, B * S)
    mask = torch.zeros(B * S + 1, dtype=torch.bool, device=device)
    mask.scatter_(0, flat.view(-1), True)
    mask = mask[: B * S].view(B, S)
    if not torch.is_inference_mode_enabled():  # inference tensors have no version counter
        mask._multisampled_hit_positions = (flat[col >= 0], mask._version)
    return mask


def _hit_positions(hits: torch.Tensor):
    """The flat ``[B * S]`` positions of the hits of a mask from :func:`hit_mask` that nobody
    has modified since (a position repeats where a row repeats a label); None for any other
    mask."""
    found = getattr(hits, "_multisampled_hit_positions", None)
    if found is None or hits.is_inference() or hits._version != found[1]:
        return None
    return found[0]


def _add_hits(z: torch.Tensor, hits: torch.Tensor) -> None:
    """``z += -FLT_MAX`` at the hits, in place (``z`` contiguous ``[B, S]``)."""
    positions = _hit_positions(hits)
    if positions is None:
        z.add_(torch.where(hits, -FLT_MAX, 0.0).to(z.dtype))
        return
    # z - FLT_MAX written once per position (a repeated position writes the same value); the
    # other entries are left as they are, which the dense add leaves them too (+ 0.0)
    flat = z.view(-1)
    flat.index_put_((positions,), flat.index_select(0, positions).sub_(FLT_MAX))


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
        loss, e, e_true, total, fused = _forward(x, true_w, true_b, sampled_w, sampled_b,
                                                 log_q_true, log_q_sampled, hits, num_true, gemm)
        ctx.save_for_backward(x, true_w, true_b, sampled_w, sampled_b, log_q_true,
                              log_q_sampled, hits, e, e_true, total)
        ctx.num_true, ctx.gemm, ctx.fused = num_true, gemm, fused
        return loss

    @staticmethod
    def backward(ctx, grad):
        (x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits, e, e_true,
         total) = ctx.saved_tensors
        rows = (true_w, true_b, sampled_w, sampled_b)
        if torch.is_grad_enabled():  # create_graph=True: differentiate the portable kernel
            grads = _portable_backward(grad, (x, *rows), lambda t: t, log_q_true,
                                       log_q_sampled, hits, ctx.num_true)
        else:
            grads = _backward(grad, x, *rows, e, e_true, total, ctx.num_true, ctx.gemm,
                              fused=ctx.fused)
        return (*grads, None, None, None, None, None)


class JoinedRowsCE(torch.autograd.Function):
    """:class:`SampledSoftmaxCE` on ONE tensor of gathered rows each for the weights and the
    biases, the ``B*T`` true rows then the ``S`` sampled rows (``rows_w [B*T + S, D]``,
    ``rows_b [B*T + S]``): their gradients come back as one tensor each, not as two slices'
    gradients padded with zeros and added."""

    @staticmethod
    def forward(ctx, x, rows_w, rows_b, log_q_true, log_q_sampled, hits, num_true, gemm):
        n = x.shape[0] * num_true
        loss, e, e_true, total, fused = _forward(
            x, rows_w[:n], rows_b[:n], rows_w[n:], rows_b[n:], log_q_true, log_q_sampled, hits,
            num_true, gemm)
        ctx.save_for_backward(x, rows_w, rows_b, log_q_true, log_q_sampled, hits, e, e_true,
                              total)
        ctx.num_true, ctx.gemm, ctx.fused = num_true, gemm, fused
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, rows_w, rows_b, log_q_true, log_q_sampled, hits, e, e_true, total = ctx.saved_tensors
        n = x.shape[0] * ctx.num_true

        def split(t):
            x, rows_w, rows_b = t
            return x, rows_w[:n], rows_b[:n], rows_w[n:], rows_b[n:]

        if torch.is_grad_enabled():  # create_graph=True: differentiate the portable kernel
            grads = _portable_backward(grad, (x, rows_w, rows_b), split, log_q_true,
                                       log_q_sampled, hits, ctx.num_true)
        else:
            joined = torch.empty_like(rows_w), torch.empty_like(rows_b)
            dx, d_true_w, d_true_b, d_sampled_w, d_sampled_b = _backward(
                grad, *split((x, rows_w, rows_b)), e, e_true, total, ctx.num_true, ctx.gemm,
                out=split((None, *joined))[1:], fused=ctx.fused)
            grads = (dx, *joined)
        return (*grads, None, None, None, None, None)


def _forward(x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits, T, gemm):
    """``(loss, e, e_true, total, fused)``: the loss, and what the backward keeps of the
    softmax; where the Triton kernels serve (float32 CUDA tensors), ``fused`` and
    ``(z, true logits, lse)`` in place of ``(e, e_true, total)``."""
    B, D = x.shape
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
        _add_hits(z, hits)
    if cdtype == torch.float32 and _torch_triton.usable(z):  # one pass over z, no [B, S] write
        loss, lse = _torch_triton_ce.softmax_ce_forward(z, true_logits)
        return loss, z, true_logits, lse, True
    # softmax over [true | sampled] without concatenating: shift by the row max of both
    m = torch.maximum(z.amax(dim=1), true_logits.amax(dim=1))
    e = z.sub_(m[:, None]).exp_()  # z's storage now holds exp(z - m)
    e_true = torch.exp(true_logits - m[:, None])
    total = e.sum(dim=1) + e_true.sum(dim=1)
    lse = m + torch.log(total)
    loss = lse - (true_logits[:, 0] if T == 1 else true_logits.sum(dim=1) / T)
    return loss, e, e_true, total, False


def _backward(grad, x, true_w, true_b, sampled_w, sampled_b, e, e_true, total, T, gemm,
              out=None, fused=False):
    """``(dx, d true_w, d true_b, d sampled_w, d sampled_b)`` of a plain backward; ``out``:
    four tensors of the rows' shapes and dtypes that receive the rows' gradients (the slices of
    one joined gradient each for the weights and the biases), or None; ``fused``: ``e, e_true,
    total`` are the Triton forward's ``z``, true logits and ``lse``."""
    B, D = x.shape
    cdtype = e.dtype
    xc, twc = x.to(cdtype), true_w.to(cdtype)
    if fused:  # one kernel pass recomputes the softmax from z and lse
        gz, d_true = _torch_triton_ce.softmax_ce_backward(e, e_true, total, grad,
                                                          in_place=_graph_is_freed())
    else:
        scale = grad.to(cdtype) / total  # [B]
        # d loss / d z = softmax * g, over e's storage unless a retained graph re-reads it
        gz = e.mul_(scale[:, None]) if _graph_is_freed() else e * scale[:, None]
        # d/d true_logits of lse - mean(true): softmax share minus 1/T, times g
        d_true = e_true * scale[:, None] - grad.to(cdtype)[:, None] / T  # [B, T]
    gzg = gz.to(gemm)
    rows = _row_grads(d_true, xc, gz, gzg, x.to(gemm), (true_w, true_b, sampled_w, sampled_b),
                      out)
    dx = torch.mm(gzg, sampled_w.to(gemm)).to(cdtype)
    if T == 1:
        dx.addcmul_(d_true, twc)
    else:
        dx += (d_true[:, :, None] * twc.view(B, T, D)).sum(dim=1)
    return (dx.to(x.dtype), *rows)


def _row_grads(d_true, xc, gz, gzg, xg, rows, out):
    """The gradients of the four row tensors, written into ``out`` where it is given and the
    dtypes allow it (no cast between the product and its place)."""
    B, T = d_true.shape
    true_w, true_b, sampled_w, sampled_b = rows
    if out is None or len({t.dtype for t in rows} | {d_true.dtype, gzg.dtype}) != 1:
        grads = ((d_true[:, :, None] * xc[:, None, :]).reshape(B * T, -1),
                 d_true.reshape(-1), torch.mm(gzg.t(), xg), gz.sum(dim=0))
        grads = tuple(g.to(r.dtype) for g, r in zip(grads, rows))
        if out is None:
            return grads
        for o, g in zip(out, grads):
            o.copy_(g)
        return tuple(out)
    o_true_w, o_true_b, o_sampled_w, o_sampled_b = out
    torch.mul(d_true[:, :, None], xc[:, None, :], out=o_true_w.view(B, T, -1))
    o_true_b.copy_(d_true.reshape(-1))
    torch.mm(gzg.t(), xg, out=o_sampled_w)
    torch.sum(gz, dim=0, out=o_sampled_b)
    return tuple(out)


def _graph_is_freed() -> bool:
    """Whether the running backward frees the graph's saved tensors once it is done (no
    ``retain_graph=True``), so that the node may overwrite them (PyTorch's own compiled
    autograd asks the same question); False where the probe is missing."""
    probe = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return probe is not None and not probe()


def _portable_backward(grad, inputs, split, log_q_true, log_q_sampled, hits, num_true):
    """The gradients of ``inputs`` as the portable kernel's autograd gives them,
    differentiable again; ``split(inputs)`` gives the kernel's ``x`` and four row tensors."""
    import array_api_compat.torch as xp

    from multisampled import kernels

    with torch.enable_grad():
        leaves = [t if t.requires_grad else t.detach().requires_grad_(True) for t in inputs]
        loss = kernels.sampled_softmax(xp, *split(leaves), log_q_true, log_q_sampled, hits,
                                       num_true, lambda a: a.detach())
        return torch.autograd.grad(loss, leaves, grad, create_graph=True, allow_unused=True)


def _joined(first: torch.Tensor, second: torch.Tensor):
    """The tensor whose leading rows are ``first`` and whose other rows are ``second``, where
    the two are its two contiguous row slices (``rows[:n]``, ``rows[n:]``, as the core splits
    the gathered rows); None otherwise."""
    base = first._base
    if base is None or second._base is not base or not base.is_contiguous():
        return None
    if base.shape[1:] != first.shape[1:] or base.shape[1:] != second.shape[1:]:
        return None
    if base.shape[0] != first.shape[0] + second.shape[0] or first.dtype != base.dtype:
        return None
    if not (first.is_contiguous() and second.is_contiguous()):
        return None
    if (first.storage_offset() != base.storage_offset()
            or second.storage_offset() != base.storage_offset() + first.numel()):
        return None
    return base


def sampled_softmax(x, true_w, true_b, sampled_w, sampled_b, log_q_true, log_q_sampled, hits,
                    num_true: int) -> torch.Tensor:
    """:class:`SampledSoftmaxCE` (:class:`JoinedRowsCE` where the rows are the two slices of
    one tensor each): TF's per-example sampled softmax loss ``[B]``; under ``torch.autocast``
    its GEMMs run in the autocast dtype (the rest in float32)."""
    cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device = x.device.type
    rows_w, rows_b = _joined(true_w, sampled_w), _joined(true_b, sampled_b)
    if rows_w is not None and rows_b is not None:
        node, inputs = JoinedRowsCE, (x, rows_w, rows_b)
    else:
        node, inputs = SampledSoftmaxCE, (x, true_w, true_b, sampled_w, sampled_b)
    if not torch.is_autocast_enabled(device):
        return node.apply(*inputs, log_q_true, log_q_sampled, hits, num_true, cdtype)
    # autocast leaves float64 alone, as it does for its own matmuls
    gemm = cdtype if cdtype == torch.float64 else torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):
        return node.apply(*inputs, log_q_true, log_q_sampled, hits, num_true, gemm)


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
