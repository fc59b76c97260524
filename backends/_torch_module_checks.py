"""The torch-side checks of :class:`multisampled.torch.SampledSoftmaxLoss`: its dtype, tied-weight
and sharding arguments, its inputs and labels as torch tensors (types, shapes, devices, label
ranges, wholly ignored positions) and the guards of its sampler's call counter, each with its
``torch.func`` and asynchronous variant. The framework-free rules are :mod:`multisampled.layers`'s;
the module's file calls these and keeps only the glue.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from multisampled import Generator, get_backend

from .torch import _functorch_active

CALL_LIMIT = Generator.CALL_LIMIT
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_dtype(dtype: Any) -> None:
    """``dtype`` (the parameters' dtype argument) is None or a floating dtype."""
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float16, bfloat16, float32 or float64, got {dtype}")


def check_tied(weight: Any, shape: tuple, device: Any, dtype: Any) -> None:
    """``weight=`` (a tied class table) is an ``nn.Parameter`` of ``shape``, floating, and agrees
    with the ``device`` and ``dtype`` arguments given with it."""
    if not isinstance(weight, nn.Parameter):
        raise TypeError(
            f"weight must be an nn.Parameter (an embedding's weight, say), got "
            f"{type(weight).__name__}")
    if tuple(weight.shape) != shape:
        raise ValueError(
            f"weight must have shape [num_classes={shape[0]}, embedding_dim={shape[1]}], "
            f"got {list(weight.shape)}")
    if weight.dtype not in FLOAT_DTYPES:
        raise TypeError(f"weight must be float16, bfloat16, float32 or float64, got "
                        f"{weight.dtype}")
    if dtype is not None and dtype != weight.dtype:
        raise ValueError(f"dtype={dtype} disagrees with the tied weight's dtype "
                         f"{weight.dtype}; leave dtype out to follow the weight")
    if device is not None:
        want = torch.device(device)
        if want.type != weight.device.type or want.index not in (None, weight.device.index):
            raise ValueError(f"device={device} disagrees with the tied weight's device "
                             f"{weight.device}; leave device out to follow the weight")


def check_sharding(weight: Any, seed: Any) -> None:
    """``shard_group=`` takes neither a tied ``weight`` nor a ``torch.Generator`` seed."""
    if weight is not None:
        raise ValueError("weight= (a tied class table) cannot be combined with "
                         "shard_group=: each rank owns its own shard of the table")
    if isinstance(seed, torch.Generator):
        raise ValueError("seed: a torch.Generator draws different negatives on every rank; "
                         "with shard_group= pass an int seed, or None for group rank 0's "
                         "random key")


def check_inputs(inputs: Any, embedding_dim: int, device: torch.device) -> torch.Tensor:
    """``inputs``: a floating ``[..., embedding_dim]`` tensor on ``device`` (the weight's)."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
    if inputs.ndim < 2 or inputs.shape[-1] != embedding_dim:
        raise ValueError(
            f"inputs must have shape [batch_size, embedding_dim={embedding_dim}] (or "
            f"[..., embedding_dim]), got shape {list(inputs.shape)}"
        )
    if inputs.device != device:
        raise ValueError(
            f"inputs are on {inputs.device} but weight is on {device}; move the "
            "module or the inputs"
        )
    return inputs


def flat_batch(inputs: torch.Tensor, labels: Any, embedding_dim: int, num_true: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs [N, D], labels [N, num_true] int64)`` flattened over the leading shape of
    checked ``inputs``, with ``labels`` checked (:func:`check_labels`) and on their device."""
    labels = check_labels(labels, tuple(inputs.shape[:-1]), num_true)
    if labels.device != inputs.device:
        raise ValueError(f"labels are on {labels.device} but inputs are on {inputs.device}")
    return inputs.reshape(-1, embedding_dim), labels


def check_labels(labels: Any, lead: Optional[tuple], num_true: int) -> torch.Tensor:
    """``labels`` as int64 ``[N, num_true]`` (``[...]`` accepted for ``num_true == 1``), for
    positions of leading shape ``lead`` (None: any)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"labels must have an integer dtype (class ids), got {labels.dtype}; cast "
            "explicitly if the values are whole numbers"
        )
    shape = tuple(labels.shape)
    if lead is None:  # sample(): [N, num_true], or [N]
        rows, lead = "batch_size", shape[:1]
    elif len(lead) == 1:
        rows = f"batch_size={lead[0]}"
    else:
        rows = ", ".join(str(n) for n in lead)
    if num_true == 1 and shape == lead:
        labels = labels[..., None]
    if not lead or tuple(labels.shape) != lead + (num_true,):
        raise ValueError(
            f"labels must have shape [{rows}, num_true={num_true}]"
            + (f" (or [{rows}])" if num_true == 1 else "")
            + f", got shape {list(shape)}"
        )
    return labels.reshape(-1, num_true).to(torch.int64)


def checked_range(ctx: Any, name: str, values: torch.Tensor, num_classes: int,
                  ignore_index: Optional[int]) -> torch.Tensor:
    """``values`` with every id in ``[0, num_classes)``: a ``ValueError`` where values are read
    on the host, else an asynchronous check with the ids clamped (never gather out of bounds);
    under ``torch.func`` (no host reads, no asynchronous assertions) a clamp only."""
    ok = torch.all((values >= 0) & (values < num_classes))
    message = f"{name} must hold values in [0, {num_classes})"
    if ignore_index is None:
        message += " (or set ignore_index= for padding positions)"
    if _functorch_active():  # torch.func: no host reads, no async assertions
        return values.clamp(0, num_classes - 1)
    if ctx.may_read_values:
        if not bool(ok):
            raise ValueError(
                f"{message}; got values with min {int(values.min())}, max {int(values.max())}")
        return values
    ctx.backend.check_async(ok, message)
    return values.clamp(0, num_classes - 1)  # never gather out of bounds


def check_whole_positions(ctx: Any, labels: torch.Tensor, ignore_index: int) -> None:
    """Each position's ``labels [N, T]`` are all ``ignore_index`` or none of them (where values
    are read on the host, a ``ValueError``; else an asynchronous check; none under
    ``torch.func``)."""
    ignored = labels == ignore_index
    mixed = ignored.any(dim=1) & ~ignored.all(dim=1)
    message = f"a position's labels must be all ignore_index={ignore_index} or none of them"
    if ctx.may_read_values and not _functorch_active():
        if bool(mixed.any()):
            raise ValueError(f"{message}; got labels "
                             f"{labels[mixed][0].tolist()} at a position")
    elif not _functorch_active():
        ctx.backend.check_async(~mixed.any(), message)


def next_call(generator: Optional[torch.Generator], seed_key: torch.Tensor,
              num_calls: torch.Tensor, device: torch.device) -> tuple:
    """``(key0, key1, call_index)`` as 0-d int64 tensors on ``device``: a fresh key of the
    ``torch.Generator`` seed, else the module's key and counter, which advances in place (an
    asynchronous check that the stream is not used up)."""
    if generator is not None:
        if generator.device.type != device.type:
            raise ValueError(
                f"seed is a torch.Generator on {generator.device} but the tensors "
                f"are on {device}; pass a generator of the tensors' device"
            )
        words = get_backend("torch").key_from_seed(generator, device)
        return words[0], words[1], torch.zeros((), dtype=torch.int64, device=device)
    call = num_calls.clone()
    torch._assert_async(
        call < CALL_LIMIT,
        f"SampledSoftmaxLoss has used all {CALL_LIMIT} call indices of its stream",
    )
    try:
        num_calls.add_(1)
    except RuntimeError as e:
        if not _functorch_active():
            raise
        raise RuntimeError(
            "SampledSoftmaxLoss advances its sampler's call counter (the num_calls buffer) "
            "in place, which torch.func.grad, vjp and jvp forbid; draw the negatives "
            "outside the transform with module.sample(labels) and pass them as "
            "sampled_values=, or differentiate with torch.autograd"
        ) from e
    return seed_key[0], seed_key[1], call
