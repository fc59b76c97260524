"""PyTorch front end: :class:`SampledSoftmaxLoss`, an ``nn.Module`` owning the class weights.

The functional API (:func:`sampled_softmax_loss` and friends, re-exported here) already takes and
returns torch tensors on their own device; this module adds what a training loop wants on top:
parameters initialised like ``nn.Linear``, a sampler whose key and call counter are buffers
(so ``torch.compile(fullgraph=True)`` and CUDA-graph replays draw fresh negatives with no host
synchronisation), sparse row gradients, the full softmax in eval mode, reductions, an ignored
label id, inputs of any leading shape and tied class tables. The layer's logic is
:mod:`multisampled.layers`'s and its checks of torch tensors live beside the torch backend
(``multisampled.backends._torch_module_checks``); this file is the torch glue. Importing it
imports torch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from multisampled import layers as _layer
from multisampled import (
    CandidateSamples,
    Generator,
    compute_sampled_logits,
    nce_loss,
    rank_sampled_softmax_loss,
    sampled_softmax_loss,
    sampled_softmax_with_cross_entropy,
)
from multisampled.backends import _torch_module_checks as _checks
from multisampled.backends import torch as _backend

CALL_LIMIT = Generator.CALL_LIMIT

__all__ = [
    "SampledSoftmaxLoss",
    "compute_sampled_logits",
    "nce_loss",
    "rank_sampled_softmax_loss",
    "sampled_softmax_loss",
    "sampled_softmax_with_cross_entropy",
]

SAMPLERS = _layer.SAMPLERS
REDUCTIONS = _layer.REDUCTIONS


class SampledSoftmaxLoss(nn.Module):
    r"""Sampled softmax loss with TensorFlow's semantics, owning the class weights.

    ``SampledSoftmaxLoss(num_classes, embedding_dim, num_sampled, *, num_true=1,
    sampler="log_uniform", unigrams=None, remove_accidental_hits=True, bias=True, sparse=False,
    seed=None, reduction="none", ignore_index=None, weight=None, device=None, dtype=None,
    shard_group=None, partition_strategy="div")``

    Parameters ``weight [num_classes, embedding_dim]`` and ``bias [num_classes]`` (None with
    ``bias=False``) are initialised like ``nn.Linear(embedding_dim, num_classes)``. ``weight=``
    an existing ``nn.Parameter`` of that shape (an input embedding's ``weight``, say) ties the
    class table to it instead: the module then shares that parameter and does not
    re-initialise it.

    ``forward(inputs, labels, *, sampled_values=None, full_softmax=None)``:

    * ``inputs [..., D]`` floating, on the parameters' device; ``labels [..., num_true]``
      integer (or ``[...]`` when ``num_true == 1``) with the same leading shape (``[B, D]``
      with ``[B]``, or ``[batch, time, D]`` with ``[batch, time]`` for a sequence model). All
      positions share one set of negatives per call, as the rows of one TF batch do.
    * Training mode: the sampled softmax loss of each position, equal to
      ``multisampled.sampled_softmax_loss(weight, bias, labels, inputs, num_sampled,
      num_classes, num_true, sampled_values, remove_accidental_hits)`` on the flattened
      positions for the same sampled values (computed in float32 for half-precision inputs).
    * Eval mode (or ``full_softmax=True``): the full softmax cross entropy over all classes;
      ``full_softmax=False`` forces the sampled loss in eval mode.
    * ``reduction``: ``"none"`` (the default: the loss per position, shape ``[...]``, in
      ``inputs.dtype``), ``"mean"`` or ``"sum"`` (a 0-d tensor).
    * ``ignore_index`` (an extension; TF has none): positions whose labels all equal it
      (``-100``, say, for padding) have loss 0, no gradient, and are left out of the mean;
      ``None`` (the default) accepts only ids in ``[0, num_classes)``, as TF does.
    * ``sampled_values``: an explicit ``(candidates [S], true_expected_count [N, T],
      sampled_expected_count [S])`` triple over the ``N`` flattened positions, used instead of
      the sampler.
    * Under ``torch.autocast`` the two large matrix products run in the autocast dtype, the
      softmax in float32, and the loss is float32 (as autocast gives for torch's own losses).

    ``sampler``: ``"log_uniform"`` (TF's default), ``"uniform"``, or ``"fixed_unigram"`` with
    ``unigrams=`` the classes' weights (item frequencies, say), each drawing ``num_sampled``
    distinct classes on the tensors' device with the library's one sampling engine; or a
    callable ``sampler(labels [N, T] int64) -> CandidateSamples``.

    ``seed`` (built-in samplers): an int in ``[0, 2**64)`` (call ``k`` of the module equals the
    ``k``-th call of the functional sampler with ``seed=multisampled.Generator(seed)``, on CPU
    and CUDA), None (a random key fixed for the module's life), or a ``torch.Generator`` on the
    tensors' device (a fresh key drawn from it every call). The key and the call counter are
    buffers (``seed_key``, ``num_calls``): they move with ``.to()``, are saved in the
    ``state_dict`` and the counter advances in place, so graph replays draw fresh negatives,
    and a copy (``copy.deepcopy``, ``pickle``, ``torch.save``) continues the same stream.

    ``sparse=True``: ``weight.grad`` and ``bias.grad`` are sparse COO tensors of the gathered
    rows (``torch.optim.SparseAdam`` / ``SGD``), for eager autograd.

    ``shard_group=`` a ``torch.distributed`` process group: each rank owns its shard of the
    class table, ``weight [rows, embedding_dim]`` and ``bias [rows]`` with this rank's rows of
    the ``partition_strategy`` layout ("div": a contiguous range, the first ``num_classes mod
    world`` ranks one row more; "mod": the classes ``c = rank (mod world)``). Every rank passes
    the same ``inputs`` and ``labels`` and gets the same loss, the gradient of ``inputs`` and
    its shard's rows of the table gradient, all as on one device. The key is group rank 0's
    (broadcast at construction; ``seed`` may not be a ``torch.Generator``), and a tied
    ``weight=`` is not allowed. :meth:`full_logits` gives this rank's classes only.

    ``torch.func``: ``vmap`` over the module draws one set of negatives per call, shared by the
    mapped slices (value checks become clamps there); ``grad``/``vjp``/``jvp`` forbid the
    counter's in-place step, so draw the negatives outside with :meth:`sample` and pass them as
    ``sampled_values``.

    Args:
        num_classes: The number of classes ``C`` (>= 1, below ``2**63``).
        embedding_dim: The width ``D`` of the inputs and of the class table's rows (>= 1).
        num_sampled: The negatives drawn per call (>= 1; at most ``num_classes`` for a
            built-in sampler).
        num_true: The labels per position ``T`` (>= 1).
        sampler: ``"log_uniform"``, ``"uniform"``, ``"fixed_unigram"``, or a callable
            ``sampler(labels [N, T] int64) -> CandidateSamples``.
        unigrams: The ``num_classes`` class weights of ``sampler="fixed_unigram"`` (a
            sequence of floats or a 1-D array, finite and >= 0); None otherwise.
        remove_accidental_hits: Whether to mask sampled classes equal to a position's label.
        bias: Whether the module has a ``bias`` parameter.
        sparse: Whether ``weight.grad`` and ``bias.grad`` are sparse (eager autograd).
        seed: An int in ``[0, 2**64)``, None (a random key), or a ``torch.Generator`` on the
            tensors' device.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        ignore_index: The label id of positions to leave out (``-100``, say), or None.
        weight: An existing ``nn.Parameter [num_classes, embedding_dim]`` to tie the class
            table to, or None for a new one.
        device: The parameters' device (a ``torch.device`` or its name); None: torch's
            default, or the tied weight's.
        dtype: The parameters' floating dtype; None: torch's default, or the tied weight's.
        shard_group: A ``torch.distributed`` process group over which the table is sharded,
            or None.
        partition_strategy: ``"div"`` or ``"mod"``: the shard layout with ``shard_group``.

    Raises:
        TypeError: An int or bool argument of another type; ``sampler`` neither a name nor
            callable; ``dtype`` or the tied ``weight``'s dtype not float16, bfloat16, float32
            or float64; ``weight`` not an ``nn.Parameter``; ``seed`` not an int, None or a
            ``torch.Generator``; ``ignore_index`` not an int.
        ValueError: A count below 1 or ``num_classes >= 2**63``; an unknown sampler or
            ``reduction``; ``num_sampled > num_classes`` for a built-in sampler; ``unigrams``
            without ``sampler="fixed_unigram"`` (or missing with it), of another length, or
            with a weight negative or not finite; an int ``seed`` outside ``[0, 2**64)``; a
            tied ``weight`` of another shape, or disagreeing with ``device``/``dtype``; with
            ``shard_group``: a tied ``weight``, a ``torch.Generator`` seed, an unknown
            ``partition_strategy``, or fewer classes than ranks.
        RuntimeError: ``shard_group`` before ``torch.distributed.init_process_group``.
    """

    def __init__(self, num_classes: int, embedding_dim: int, num_sampled: int, *,
                 num_true: int = 1,
                 sampler: Union[str, Callable[[torch.Tensor], Any]] = "log_uniform",
                 unigrams: Any = None, remove_accidental_hits: bool = True, bias: bool = True,
                 sparse: bool = False, seed: Union[None, int, torch.Generator] = None,
                 reduction: str = "none", ignore_index: Optional[int] = None,
                 weight: Optional[nn.Parameter] = None,
                 device: Union[str, torch.device, None] = None,
                 dtype: Optional[torch.dtype] = None,
                 shard_group: Any = None, partition_strategy: str = "div") -> None:
        super().__init__()
        self.spec = _layer.LayerSpec.checked(
            num_classes, embedding_dim, num_sampled, num_true=num_true, sampler=sampler,
            remove_accidental_hits=remove_accidental_hits, unigrams=unigrams)
        self.num_classes, self.embedding_dim = self.spec.num_classes, self.spec.embedding_dim
        self.num_sampled, self.num_true = self.spec.num_sampled, self.spec.num_true
        self.remove_accidental_hits = self.spec.remove_accidental_hits
        self.sparse = _layer.check_bool("sparse", sparse)
        self.reduction = _layer.check_reduction(reduction)
        self.ignore_index = _layer.check_ignore_index(ignore_index, self.num_classes)
        has_bias = _layer.check_bool("bias", bias)
        _checks.check_dtype(dtype)
        if weight is not None:
            _checks.check_tied(weight, (self.num_classes, self.embedding_dim), device, dtype)
            device, dtype = weight.device, weight.dtype
        self.shard_group, self.partition_strategy = shard_group, partition_strategy
        rows = self.num_classes
        if shard_group is not None:
            _checks.check_sharding(weight, seed)
            rows = self._shard(self._ctx(torch.device("cpu" if device is None else device))).rows
        factory = {"device": device, "dtype": dtype}
        self.weight = weight if weight is not None else nn.Parameter(
            torch.empty((rows, self.embedding_dim), **factory))
        if has_bias:
            self.bias = nn.Parameter(torch.empty((rows,), **factory))
        else:
            self.register_parameter("bias", None)
        self._reset(weight is None)
        self.sampler = sampler if isinstance(sampler, str) else getattr(
            sampler, "__name__", type(sampler).__name__)
        self._sampler_fn = None if self.spec.builtin else sampler
        self._generator = seed if isinstance(seed, torch.Generator) else None
        key = (0, 0) if self._generator is not None else _layer.seed_key(seed)
        self.seed = "torch.Generator" if self._generator is not None else seed
        self.register_buffer("seed_key", torch.tensor(key, dtype=torch.int64, device=device))
        self.register_buffer("num_calls", torch.zeros((), dtype=torch.int64, device=device))
        if shard_group is not None:  # every rank draws the candidates of group rank 0's key
            torch.distributed.broadcast(
                self.seed_key, src=torch.distributed.get_global_rank(shard_group, 0),
                group=shard_group)
        if self.spec.builtin:  # build the sampler's tables now, outside any trace
            _layer.distribution(self._ctx(self.num_calls.device), self.spec)

    def _shard(self, ctx):
        if self.shard_group is None:
            return None
        return _layer.table_shard(ctx, self.spec, self.shard_group, self.partition_strategy)

    def reset_parameters(self) -> None:
        """``nn.Linear(embedding_dim, num_classes)``'s initialisation (of the bias alone when
        the weight is tied to another module's parameter)."""
        self._reset(not getattr(self, "_tied", False))

    def _reset(self, own_weight: bool) -> None:
        self._tied = not own_weight
        if own_weight:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.embedding_dim)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        """The configuration shown in the module's ``repr``.

        Returns:
            ``num_classes=..., embedding_dim=..., ...``: the arguments that differ between
            modules.
        """
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"num_sampled={self.num_sampled}, num_true={self.num_true}, sampler={self.sampler!r}, "
            f"remove_accidental_hits={self.remove_accidental_hits}, "
            f"bias={self.bias is not None}, sparse={self.sparse}, reduction={self.reduction!r}"
            + ("" if self.ignore_index is None else f", ignore_index={self.ignore_index}")
            + ("" if self.shard_group is None else
               f", sharded ({self.partition_strategy!r}, {self.weight.shape[0]} rows here)")
            + (", tied weight" if self._tied else "")
        )

    # ---------------------------------------------------------------------------- forward

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, *,
                sampled_values: Optional[Any] = None,
                full_softmax: Optional[bool] = None) -> torch.Tensor:
        """The loss per position ``[...]``, or its mean or sum (see the class docstring).

        Args:
            inputs: ``[..., D]`` floating inputs on the parameters' device.
            labels: ``[..., num_true]`` integer labels (``[...]`` when ``num_true == 1``) with
                the inputs' leading shape, on their device.
            sampled_values: ``(candidates [S], true_expected_count [N, T],
                sampled_expected_count [S])`` over the ``N`` flattened positions, used instead
                of the sampler; None: draw.
            full_softmax: True or False forces the full or the sampled loss; None: the full
                softmax in eval mode, the sampled one in training mode.

        Returns:
            The loss per position ``[...]`` in ``inputs.dtype`` (float32 under
            ``torch.autocast``) for ``reduction="none"``, else a 0-d tensor.

        Raises:
            TypeError: ``inputs`` or ``labels`` not a tensor, ``inputs`` not floating,
                ``labels`` not integer; ``full_softmax`` not a bool; a callable sampler's
                result or ``sampled_values`` not a triple of arrays, or of the wrong dtypes.
            ValueError: Shapes or devices that do not fit (``inputs`` not ``[..., D]``, labels
                not of the inputs' leading shape, tensors on another device than the module or
                the ``torch.Generator`` seed); ``sampled_values`` of the wrong shapes. Also,
                where values are read on the host (CPU tensors, outside ``torch.func`` and
                ``torch.compile``): labels outside ``[0, num_classes)`` (other than
                ``ignore_index``), a position whose labels are only partly ``ignore_index``,
                invalid ``sampled_values``; on CUDA those are a device-side assertion at the
                next synchronising call.
            RuntimeError: The sampler's counter advanced under ``torch.func.grad``, ``vjp``
                or ``jvp`` (pass ``sampled_values`` from :meth:`sample` instead).
        """
        full = _layer.use_full_softmax(self.training, full_softmax)
        lead = _checks.check_inputs(inputs, self.embedding_dim, self.weight.device).shape[:-1]
        inputs, labels = _checks.flat_batch(inputs, labels, self.embedding_dim, self.num_true)
        ctx = self._ctx(inputs.device)
        keep = None
        if self.ignore_index is not None:
            keep, labels = self._ignored(ctx, labels)
        labels = _checks.checked_range(ctx, "labels", labels, self.num_classes, self.ignore_index)
        out_dtype = torch.float32 if torch.is_autocast_enabled(inputs.device.type) else inputs.dtype
        if full and self.shard_group is not None:
            loss = _layer.full_softmax_loss(ctx, self.spec, inputs, self.weight, self.bias,
                                            labels, self._shard(ctx)).to(out_dtype)
        elif full:
            loss = self._full_softmax_loss(inputs, labels).to(out_dtype)
        else:
            if sampled_values is None:
                sampled_values = self._draw(ctx, labels)
                if not self.spec.builtin:
                    sampled_values = self._validated(ctx, inputs, sampled_values)
            else:
                sampled_values = self._validated(ctx, inputs, sampled_values)
            loss = _layer.sampled_softmax_step(ctx, self.spec, inputs, labels, sampled_values,
                                               self._gather, out_dtype=out_dtype,
                                               shard=self._shard(ctx))
        return _layer.reduce(ctx, loss, keep, self.reduction, tuple(lead))

    def full_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs @ weight.T + bias``: the logits of all classes, ``[..., C]`` in inputs'
        dtype (computed in float32 for float16/bfloat16, as the losses are); with
        ``shard_group``, of this rank's classes ``[..., rows]``, in the shard's order.

        Args:
            inputs: ``[..., D]`` floating inputs on the parameters' device.

        Returns:
            The logits ``[..., C]`` (or ``[..., rows]``).

        Raises:
            TypeError: ``inputs`` is not a floating tensor.
            ValueError: ``inputs`` is not ``[..., D]`` or is on another device.
        """
        inputs = _checks.check_inputs(inputs, self.embedding_dim, self.weight.device)
        flat = inputs.reshape(-1, self.embedding_dim)
        logits = self._full_logits(flat).to(inputs.dtype)
        return logits.reshape(*inputs.shape[:-1], self.weight.shape[0])

    def sample(self, labels: torch.Tensor) -> CandidateSamples:
        """Draw the next set of negatives for ``labels [N, num_true]`` (or ``[N]`` when
        ``num_true == 1``; flatten a sequence's positions first), advancing the stream: what a
        training-mode forward call would use.

        Args:
            labels: ``[N, num_true]`` (or ``[N]``) integer labels on the module's device.

        Returns:
            ``CandidateSamples(sampled_candidates [S], true_expected_count [N, T],
            sampled_expected_count [S])``, to pass as ``sampled_values``.

        Raises:
            TypeError: ``labels`` not an integer tensor; a callable sampler's result not a
                triple.
            ValueError: ``labels`` of another shape or device; where values are read on the
                host, labels outside ``[0, num_classes)`` (other than ``ignore_index``) or a
                position whose labels are only partly ``ignore_index``.
            RuntimeError: Called under ``torch.func.grad``, ``vjp`` or ``jvp``.
        """
        labels = _checks.check_labels(labels, None, self.num_true)
        ctx = self._ctx(labels.device)
        if self.ignore_index is not None:
            labels = self._ignored(ctx, labels)[1]
        labels = _checks.checked_range(ctx, "labels", labels, self.num_classes, self.ignore_index)
        return CandidateSamples(*self._draw(ctx, labels))

    # ---------------------------------------------------------------------------- internals

    def _ctx(self, device):
        return _layer.context("torch", device)

    @torch.no_grad()
    def _draw(self, ctx, labels: torch.Tensor) -> tuple:
        if self._sampler_fn is not None:
            out = self._sampler_fn(labels)
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                raise TypeError(
                    "sampler must return CandidateSamples (sampled_candidates, "
                    f"true_expected_count, sampled_expected_count), got {type(out).__name__}"
                )
            return tuple(out)
        if labels.device != self.num_calls.device:
            raise ValueError(
                f"labels are on {labels.device} but the module is on {self.num_calls.device}; "
                "move the module with .to(device)"
            )
        return _layer.sample(ctx, self.spec, labels, _checks.next_call(
            self._generator, self.seed_key, self.num_calls, labels.device))

    def _validated(self, ctx, inputs, sampled_values) -> tuple:
        return _layer.validated_samples(ctx, self.spec, int(inputs.shape[0]), sampled_values)

    def _ignored(self, ctx, labels: torch.Tensor) -> tuple:
        """``(keep [N] bool, labels)``: the positions whose labels are not all ``ignore_index``,
        and the labels with the ignored ones replaced by class 0 (their loss is discarded)."""
        if self.num_true > 1:
            _checks.check_whole_positions(ctx, labels, self.ignore_index)
        return _layer.ignored_positions(ctx, labels, self.ignore_index)

    def _gather(self, ids: torch.Tensor):
        """``(weight rows [N, D], bias rows [N])``; sparse row gradients with ``sparse=True``."""
        if self.sparse:
            rows_w = F.embedding(ids, self.weight, sparse=True)
            rows_b = None if self.bias is None else _backend.take_sparse_rows(self.bias, ids)
        else:
            rows_w = _backend.BACKEND.take_rows(self.weight, ids)
            rows_b = None if self.bias is None else _backend.BACKEND.take_rows(self.bias, ids)
        if rows_b is None:
            rows_b = torch.zeros(ids.shape, dtype=rows_w.dtype, device=rows_w.device)
        return rows_w, rows_b

    def _full_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        cdtype = torch.float64 if inputs.dtype == torch.float64 else torch.float32
        bias = None if self.bias is None else self.bias.to(cdtype)
        # under autocast the product runs in the autocast dtype; the softmax stays in cdtype
        return F.linear(inputs.to(cdtype), self.weight.to(cdtype), bias).to(cdtype)

    def _full_softmax_loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._full_logits(inputs)
        true = logits.gather(1, labels)
        return torch.logsumexp(logits, dim=1) - true.sum(dim=1) / self.num_true
