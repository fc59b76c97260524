"""Triton kernels of the torch backend's sampled softmax node: one pass over the ``[B, S]``
logits each way, for float32 CUDA tensors.

:class:`~multisampled.backends._torch_nodes.SampledSoftmaxCE` computes the sampled logits
``z [B, S]`` (one GEMM, the accidental hits' ``-FLT_MAX`` added) and the true logits
``[B, T]``; these kernels do the rest of :func:`multisampled.kernels.sampled_softmax`:

* :func:`softmax_ce_forward`: one program per row reads the row once, in blocks, keeping a
  running maximum and the sum of ``exp`` rescaled to it (the online softmax of flash
  attention); the true logits start both. ``lse = max + log(sum)`` and
  ``loss = lse - mean_t true[:, t]``.
* :func:`softmax_ce_backward`: ``gz = exp(z - lse) * g`` over ``z`` (in place, or into a new
  tensor where the graph is kept) and ``d_true = exp(true - lse) * g - g / T``.

The backward recomputes the softmax from ``z`` and ``lse`` instead of reading a saved ``exp``:
the forward writes nothing of size ``[B, S]``. A hit's ``exp(-FLT_MAX - lse)`` is 0.
Triton is imported on the first kernel call (:class:`._torch_triton.LazyKernels`); under
``TRITON_INTERPRET=1`` the kernels also run on CPU tensors (the tests).
"""

from __future__ import annotations

import torch

from . import _torch_triton

ROW_BLOCK = 1024  # logits per step of a row's program


def _blocks(z: torch.Tensor, true_logits: torch.Tensor, block):
    """``(B, S, T, BLOCK, T_BLOCK)`` of a launch: ``BLOCK`` is ``block`` (a power of two) or
    the row's length rounded up to one, at least 16 and at most :data:`ROW_BLOCK`."""
    B, S = z.shape
    T = true_logits.shape[1]
    if z.dtype != torch.float32 or true_logits.dtype != torch.float32 or T < 1:
        raise ValueError(
            "softmax_ce kernels: expected float32 z [B, S] and true logits [B, T >= 1]; got "
            f"{z.dtype} {tuple(z.shape)} and {true_logits.dtype} {tuple(true_logits.shape)}")
    if block is None:
        block = min(ROW_BLOCK, max(16, 1 << max(S - 1, 0).bit_length()))
    return B, S, T, block, 1 << (T - 1).bit_length()


def softmax_ce_forward(z: torch.Tensor, true_logits: torch.Tensor, *, block=None):
    """``(loss [B], lse [B])`` of float32 sampled logits ``z [B, S]`` (hits applied) and true
    logits ``[B, T]``: ``lse`` over ``[true | z]`` and ``lse - mean_t true``."""
    k = _kernels()
    z, true_logits = z.contiguous(), true_logits.contiguous()
    B, S, T, block, t_block = _blocks(z, true_logits, block)
    loss = torch.empty((B,), dtype=torch.float32, device=z.device)
    lse = torch.empty((B,), dtype=torch.float32, device=z.device)
    if B:
        k.ce_forward[(B,)](z, true_logits, lse, loss, S, T, BLOCK=block, T_BLOCK=t_block)
    return loss, lse


def softmax_ce_backward(z: torch.Tensor, true_logits: torch.Tensor, lse: torch.Tensor,
                        grad: torch.Tensor, *, in_place: bool, block=None):
    """``(gz [B, S], d_true [B, T])``: the loss's gradients with respect to ``z`` and the true
    logits for the incoming ``grad [B]``; ``gz`` overwrites ``z`` where ``in_place`` (``z``
    contiguous)."""
    k = _kernels()
    true_logits = true_logits.contiguous()
    B, S, T, block, t_block = _blocks(z, true_logits, block)
    if in_place and not z.is_contiguous():
        raise ValueError("softmax_ce_backward: in_place needs a contiguous z")
    z = z.contiguous()
    gz = z if in_place else torch.empty_like(z)
    d_true = torch.empty_like(true_logits)
    g = grad.to(torch.float32).contiguous()
    if B:
        k.ce_backward[(B,)](z, gz, true_logits, d_true, lse.contiguous(), g, S, T,
                            BLOCK=block, T_BLOCK=t_block)
    return gz, d_true


# ------------------------------------------------------------------------------ kernels

_kernels = _torch_triton.LazyKernels(globals())
_jit = _kernels.jit


@_jit(do_not_specialize=["S", "T"])
def _ce_forward_kernel(z_ptr, true_ptr, lse_ptr, loss_ptr, S, T, BLOCK: tl.constexpr,
                       T_BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    t_offs = tl.arange(0, T_BLOCK)
    t_in = t_offs < T
    true = tl.load(true_ptr + row * T + t_offs, mask=t_in, other=float("-inf"))
    # the true logits are finite: the running maximum is from the start, so exp(-inf - m)
    # of the padding and exp(-FLT_MAX - m) of a hit are 0, never NaN
    m = tl.max(true, 0)
    total = tl.sum(tl.exp(true - m), 0)
    lanes = tl.arange(0, BLOCK)
    base = z_ptr + row * S
    start = S * 0
    while start < S:
        offs = start + lanes
        v = tl.load(base + offs, mask=offs < S, other=float("-inf"))
        m_new = tl.maximum(m, tl.max(v, 0))
        total = total * tl.exp(m - m_new) + tl.sum(tl.exp(v - m_new), 0)
        m = m_new
        start = start + BLOCK
    lse = m + tl.log(total)
    tl.store(lse_ptr + row, lse)
    tl.store(loss_ptr + row, lse - tl.sum(tl.where(t_in, true, 0.0), 0) / T)


@_jit(do_not_specialize=["S", "T"])
def _ce_backward_kernel(z_ptr, gz_ptr, true_ptr, d_true_ptr, lse_ptr, g_ptr, S, T,
                        BLOCK: tl.constexpr, T_BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    lse = tl.load(lse_ptr + row)
    g = tl.load(g_ptr + row)
    lanes = tl.arange(0, BLOCK)
    start = S * 0
    while start < S:
        offs = row * S + start + lanes
        inside = start + lanes < S
        v = tl.load(z_ptr + offs, mask=inside, other=float("-inf"))
        tl.store(gz_ptr + offs, tl.exp(v - lse) * g, mask=inside)
        start = start + BLOCK
    t_offs = tl.arange(0, T_BLOCK)
    t_in = t_offs < T
    true = tl.load(true_ptr + row * T + t_offs, mask=t_in, other=0.0)
    tl.store(d_true_ptr + row * T + t_offs, tl.exp(true - lse) * g - g / T, mask=t_in)
