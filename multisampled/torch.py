"""PyTorch front end: :class:`SampledSoftmaxLoss`, an ``nn.Module`` owning the class weights.

The functional API (:func:`sampled_softmax_loss` and friends, re-exported here) already takes and
returns torch tensors on their own device; this module adds what a training loop wants on top:

* parameters ``weight [C, D]`` and ``bias [C]`` initialised like ``nn.Linear(D, C)``;
* a sampler that runs on the tensors' device with no host synchronisation (Threefry counters;
  the call counter is a buffer updated in place), so the loss works under
  ``torch.cuda.set_sync_debug_mode("error")``, ``torch.compile(fullgraph=True)`` and inside a
  captured CUDA graph, and replays of a graph draw fresh negatives;
* ``sparse=True``: the gathered rows' gradients come back as sparse COO tensors (the
  ``nn.Embedding(sparse=True)`` way), for ``torch.optim.SparseAdam`` / ``SGD`` and vocabularies
  too large for a dense gradient per step;
* the full softmax cross entropy over all classes in eval mode (TensorFlow's recommendation for
  evaluating a model trained with sampled softmax).

Importing this module imports torch.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks, _losses, _registry, _rng, _torch_fused, samplers
from ._context import Ctx, context
from ._losses import (
    compute_sampled_logits,
    nce_loss,
    rank_sampled_softmax_loss,
    sampled_softmax_loss,
    sampled_softmax_with_cross_entropy,
)
from .samplers import CandidateSamples

__all__ = [
    "SampledSoftmaxLoss",
    "compute_sampled_logits",
    "nce_loss",
    "rank_sampled_softmax_loss",
    "sampled_softmax_loss",
    "sampled_softmax_with_cross_entropy",
]

SAMPLERS = ("log_uniform", "uniform")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_MASK32 = 0xFFFFFFFF


def _numpy_ctx() -> Ctx:
    return context(backend="numpy")


def _check_range(ctx: Ctx, name: str, values: torch.Tensor, high: int) -> None:
    """Every value of ``values`` lies in ``[0, high)``: eagerly with the offending values where
    the host may read them, else through ``torch._assert_async`` (no synchronisation)."""
    if ctx.host_checks:
        _checks.check_value_range(ctx, name, values, 0, high)
    else:
        ok = torch.all((values >= 0) & (values < high))
        torch._assert_async(ok, f"{name} must hold values in [0, {high})")


class _SparseRows(torch.autograd.Function):
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


class _DeviceSampler:
    """A built-in unique sampler (TF's log-uniform or uniform) run entirely on the device.

    Draw ``i`` of call ``c`` is Threefry counter ``(c, i)`` under the key, exactly as in
    :mod:`multisampled.samplers`, so the candidates are bit-identical to the ``c``-th call of
    ``log_uniform_candidate_sampler(..., unique=True, seed=Generator(seed))`` on any backend and
    device, and so are the expected counts on the same backend (they go through the library's
    float32 ``log1p``/``expm1``, whose last bit may differ between libraries).
    One block of draws is sized so that it holds ``num_sampled`` distinct classes except with
    probability below 1e-12 (checked with ``torch._assert_async``); TF's rejection loop over
    that block keeps the first draw of each class, found with a stable sort on CUDA and a
    per-class table on CPU (:func:`multisampled._torch_fused.first_distinct`), so shapes never
    depend on data.
    """

    def __init__(self, kind: str, num_classes: int, num_sampled: int):
        np_ctx = _numpy_ctx()
        self.kind, self.range, self.num_sampled = kind, num_classes, num_sampled
        if kind == "log_uniform":
            dist = samplers._log_uniform(np_ctx, num_classes)
        else:
            dist = samplers._Uniform(np_ctx, num_classes)
        self.host_dist = dist
        block_size = getattr(dist, "unique_block_size", None)
        if block_size is not None:
            bound = block_size(num_sampled)
        else:
            bound = samplers._unique_block_size(dist.tail_masses(num_sampled), num_sampled)
        self.block = bound
        # a block beyond this size is not safe to allocate: count on the host instead
        self.bounded = bound <= max(samplers._MAX_BLOCK, 4 * num_sampled)
        # on the host, refills are cheap: start near the expected need, as the core does
        self.host_first_block = min(bound, max(4 * num_sampled, 2**16))

    def tables(self):
        """Host tables for the module's buffers: ``(threshold keys int64, P float32)``, or
        ``(None, None)`` for the uniform sampler (``floor(u * C)``, ``P = 1/C``).

        The keys are the core's 64-bit fixed-point CDF thresholds with the sign bit flipped
        (:func:`multisampled._rng.host_signed_keys`): one ``torch.searchsorted`` finds the class
        of a draw exactly.
        """
        import numpy as np

        if self.kind != "log_uniform":
            return None, None
        d = self.host_dist
        if len(d.tables) == 1:
            keys = np.asarray(d.tables[0], dtype=np.int64)
        else:
            hi, lo = (np.asarray(t).astype(np.int64) & _MASK32 for t in d.tables)
            keys = _rng.host_signed_keys(hi, lo)
        return torch.from_numpy(keys.copy()), torch.from_numpy(np.asarray(d.p, np.float32).copy())

    @property
    def p(self) -> float:
        return self.host_dist.p


class SampledSoftmaxLoss(nn.Module):
    r"""Sampled softmax loss with TensorFlow's semantics, owning the class weights.

    ``SampledSoftmaxLoss(num_classes, embedding_dim, num_sampled, *, num_true=1,
    sampler="log_uniform", remove_accidental_hits=True, bias=True, sparse=False, seed=None,
    device=None, dtype=None)``

    Parameters ``weight [num_classes, embedding_dim]`` and ``bias [num_classes]`` (None with
    ``bias=False``) are initialised like ``nn.Linear(embedding_dim, num_classes)``.

    ``forward(inputs, labels, *, sampled_values=None, full_softmax=None)``:

    * ``inputs [B, D]`` floating (float16, bfloat16, float32, float64), on the parameters'
      device; ``labels [B, num_true]`` integer (or ``[B]`` when ``num_true == 1``).
    * Training mode: the per-example sampled softmax loss ``[B]`` in ``inputs.dtype``:
      ``multisampled.sampled_softmax_loss(weight, bias, labels, inputs, num_sampled,
      num_classes, num_true, sampled_values, remove_accidental_hits)`` with the same sampled
      values, i.e. ``lse(z) - mean_t z[:, t]`` over the ``T + S`` logits ``x.w + b - ln Q``
      (accidental hits masked with -FLT_MAX), computed in float32 for half-precision inputs;
      the module gathers the rows itself and runs the core's math on them, so the values are
      bit-identical to the functional API's. Gradients reach ``weight``/``bias`` at the
      gathered rows and ``inputs``; none reach labels or sampled values.
    * Eval mode (or ``full_softmax=True``): the full softmax cross entropy over all classes,
      ``lse_c(x.w_c + b_c) - mean_t (x.w_{y_t} + b_{y_t})`` (for ``num_true == 1`` the usual
      cross entropy). ``full_softmax=False`` forces the sampled loss in eval mode.
    * ``sampled_values``: an explicit ``(candidates [S], true_expected_count [B, T],
      sampled_expected_count [S])`` triple, used instead of the sampler.

    ``sampler``: ``"log_uniform"`` (TF's default, ``P(k) = ln((k+2)/(k+1)) / ln(C+1)``) or
    ``"uniform"``, both drawing ``num_sampled`` distinct classes on the tensors' device without a
    host synchronisation; or a callable ``sampler(labels) -> CandidateSamples`` (``labels``
    ``[B, T]`` int64), e.g. ``lambda y: multisampled.fixed_unigram_candidate_sampler(y, 1, S,
    True, C, unigrams=counts, seed=7)`` (its own rules on seeds and synchronisation apply;
    ``seed`` below is then unused). The built-in samplers keep a CDF table of ``12 * C`` bytes
    as non-persistent buffers on the module's device.

    ``seed`` (built-in samplers):

    * an int in ``[0, 2**64)``: TensorFlow's op-seed contract. The module owns its stream: call
      ``k`` of the module draws Threefry counters ``(k, i)`` under the key ``(seed >> 32, seed &
      0xFFFFFFFF)``, so the sequence of negatives is reproducible across runs, changes every
      step, and equals the ``k``-th call of ``log_uniform_candidate_sampler(..., seed=
      multisampled.Generator(seed))`` bit for bit, on CPU and CUDA. The key and the call counter
      are buffers (``seed_key``, ``num_calls``): they move with ``.to()``, are saved in the
      ``state_dict`` (a resumed run continues the sequence) and the counter is incremented in
      place, so replays of a captured CUDA graph draw fresh negatives.
    * None: a random key from :mod:`secrets`, fixed for the module's life (different negatives
      each step, not reproducible across runs unless the ``state_dict`` is restored).
    * a ``torch.Generator`` on the tensors' device: every call draws a fresh 64-bit key from it
      (two 32-bit words with ``torch.randint(..., generator=seed)`` on the device, no host
      synchronisation) and uses call index 0, so ``seed.manual_seed(s)`` reproduces the
      negatives. The key words come from torch's own generator (Philox on CUDA, Mersenne twister
      on the CPU), so CPU and CUDA runs differ; prefer an int seed under ``torch.compile`` and
      register the generator with a CUDA graph (``graph.register_generator_state``).

    ``sparse=True``: rows are gathered with ``F.embedding(ids, weight, sparse=True)`` (the bias
    likewise), so ``weight.grad`` and ``bias.grad`` are uncoalesced sparse COO tensors holding
    the ``B*T + S`` gathered rows (repeats accumulate when coalesced); use
    ``torch.optim.SparseAdam`` or ``torch.optim.SGD``. Sparse gradients are for eager autograd;
    ``torch.compile`` supports the dense variant.
    """

    # Which tensors take the fused autograd node and the table-based unique selection of
    # multisampled._torch_fused; the others run the core's operations (the tests compare the
    # two paths). CUDA keeps the core's operations until the fused path has been checked on a
    # GPU (tests/test_torch_cuda.py and benchmarks/bench_torch_cuda.py --fused run both).
    _fused_cpu = True
    _fused_cuda = False

    def _fused(self, t: torch.Tensor) -> bool:
        return self._fused_cuda if t.is_cuda else self._fused_cpu

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        num_sampled: int,
        *,
        num_true: int = 1,
        sampler: Union[str, Callable[[torch.Tensor], Any]] = "log_uniform",
        remove_accidental_hits: bool = True,
        bias: bool = True,
        sparse: bool = False,
        seed: Union[None, int, torch.Generator] = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        # resolved once here: the registry takes a lock, which torch.compile cannot trace
        self._backend = _registry.get_backend("torch")
        self.num_classes = _checks.check_positive_int("num_classes", num_classes)
        self.embedding_dim = _checks.check_positive_int("embedding_dim", embedding_dim)
        self.num_sampled = _checks.check_positive_int("num_sampled", num_sampled)
        self.num_true = _checks.check_positive_int("num_true", num_true)
        self.remove_accidental_hits = _checks.check_bool(
            "remove_accidental_hits", remove_accidental_hits
        )
        self.sparse = _checks.check_bool("sparse", sparse)
        has_bias = _checks.check_bool("bias", bias)
        if self.num_classes >= 2**32:
            raise ValueError(
                f"num_classes must be below 2**32 (class ids are 32-bit draws), got {num_classes}"
            )
        if dtype is not None and dtype not in _FLOAT_DTYPES:
            raise TypeError(f"dtype must be float16, bfloat16, float32 or float64, got {dtype}")
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty((self.num_classes, self.embedding_dim), **factory))
        if has_bias:
            self.bias = nn.Parameter(torch.empty((self.num_classes,), **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

        self._device_sampler: Optional[_DeviceSampler] = None
        self._sampler_fn: Optional[Callable] = None
        if isinstance(sampler, str):
            if sampler not in SAMPLERS:
                raise ValueError(
                    f"sampler must be one of {list(SAMPLERS)} or a callable returning "
                    f"CandidateSamples, got {sampler!r}"
                )
            if self.num_sampled > self.num_classes:
                raise ValueError(
                    f"num_sampled={num_sampled} cannot be greater than num_classes={num_classes}:"
                    f" the {sampler} sampler draws num_sampled distinct classes"
                )
            self._device_sampler = _DeviceSampler(sampler, self.num_classes, self.num_sampled)
        elif callable(sampler):
            self._sampler_fn = sampler
        else:
            raise TypeError(
                f"sampler must be one of {list(SAMPLERS)} or a callable returning "
                f"CandidateSamples, got {sampler!r} of type {type(sampler).__name__}"
            )
        self.sampler = sampler if isinstance(sampler, str) else getattr(
            sampler, "__name__", type(sampler).__name__)

        self._generator: Optional[torch.Generator] = None
        if isinstance(seed, torch.Generator):
            self._generator = seed
            key = 0
        elif seed is None:
            key = secrets.randbits(64)
        else:
            key = _rng._check_seed(seed)
        self.seed = seed if not isinstance(seed, torch.Generator) else "torch.Generator"
        # the key as two 32-bit words and the stream position: buffers, so they follow .to()
        # and the state_dict, and the counter can advance inside a compiled graph or CUDA graph
        self.register_buffer(
            "seed_key", torch.tensor([key >> 32, key & _MASK32], dtype=torch.int64, device=device)
        )
        self.register_buffer("num_calls", torch.zeros((), dtype=torch.int64, device=device))
        thresholds, prob = (None, None)
        if self._device_sampler is not None:
            thresholds, prob = self._device_sampler.tables()
        self.register_buffer(
            "_cdf_thresholds",
            None if thresholds is None else thresholds.to(device),
            persistent=False,
        )
        # float32 probabilities kept as their int32 bit patterns: module.to(dtype) converts
        # floating buffers, and TF computes the expected counts in float32
        self.register_buffer(
            "_class_prob_bits",
            None if prob is None else prob.view(torch.int32).to(device),
            persistent=False,
        )

    # ---------------------------------------------------------------------------- parameters

    def reset_parameters(self) -> None:
        """``nn.Linear(embedding_dim, num_classes)``'s initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.embedding_dim)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"num_sampled={self.num_sampled}, num_true={self.num_true}, sampler={self.sampler!r}, "
            f"remove_accidental_hits={self.remove_accidental_hits}, "
            f"bias={self.bias is not None}, sparse={self.sparse}"
        )

    # ---------------------------------------------------------------------------- forward

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        *,
        sampled_values: Optional[Any] = None,
        full_softmax: Optional[bool] = None,
    ) -> torch.Tensor:
        """Per-example loss ``[B]`` (see the class docstring)."""
        full = (not self.training) if full_softmax is None else _checks.check_bool(
            "full_softmax", full_softmax)
        inputs, labels = self._check_batch(inputs, labels)
        ctx = self._context(inputs)
        _check_range(ctx, "labels", labels, self.num_classes)
        if not ctx.host_checks:
            # an invalid label is reported by the async check; never gather out of bounds
            labels = labels.clamp(0, self.num_classes - 1)
        if full:
            return self._full_softmax_loss(inputs, labels)
        cdtype = _losses.compute_dtype(ctx, inputs.dtype)
        if sampled_values is None and self._device_sampler is not None:
            # the built-in sampler (valid by construction); expected counts of the labels and
            # the candidates in one pass
            candidates, num_tries = self._candidates(ctx, labels)
            ids = torch.cat([labels.reshape(-1), candidates])
            q = samplers._expected_count(ctx, self._prob(ids), self.num_sampled, num_tries)
        else:
            if sampled_values is None:
                sampled_values = self._draw(labels)
            sampled_values = _losses._check_sampled_values(
                ctx,
                sampled_values,
                batch=int(inputs.shape[0]),
                num_true=self.num_true,
                num_classes=self.num_classes,
                cdtype=cdtype,
                expected_len=self.num_sampled if self.remove_accidental_hits else None,
                length_reason=" (they must agree when remove_accidental_hits=True)",
            )
            if not ctx.host_checks:
                sampled_values = (
                    sampled_values[0].clamp(0, self.num_classes - 1), *sampled_values[1:])
            candidates, true_q, sampled_q = (v.detach() for v in sampled_values)
            ids = torch.cat([labels.reshape(-1), candidates])
            q = torch.cat([true_q.reshape(-1), sampled_q])
        rows_w, rows_b = self._gather(ids)
        n_true = labels.numel()
        if not self._fused(inputs):
            # the core's operations on the gathered rows
            true_logits, sampled_logits = _losses._sampled_logit_parts(
                ctx,
                rows_w[:n_true],
                rows_b[:n_true],
                rows_w[n_true:],
                rows_b[n_true:],
                inputs,
                labels,
                (candidates, q[:n_true].reshape(labels.shape), q[n_true:]),
                self.num_true,
                self.num_sampled,
                True,
                self.remove_accidental_hits,
            )
            loss = _losses._softmax_cross_entropy_parts(ctx, true_logits, sampled_logits)
            return loss.to(inputs.dtype)
        # one autograd node with fewer passes over the [B, S] logits
        loss = _torch_fused.sampled_softmax_ce(
            inputs, rows_w, rows_b, torch.log(q.to(cdtype)), labels,
            candidates if self.remove_accidental_hits else None, self.num_classes)
        return loss.to(inputs.dtype)

    def full_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs @ weight.T + bias``: the logits of all classes, ``[B, C]`` in inputs' dtype
        (computed in float32 for float16/bfloat16, as the losses are)."""
        inputs = self._check_inputs(inputs)
        return self._full_logits(inputs).to(inputs.dtype)

    # ---------------------------------------------------------------------------- sampling

    def sample(self, labels: torch.Tensor) -> CandidateSamples:
        """Draw the next set of negatives for ``labels [B, num_true]`` (or ``[B]``), advancing
        the stream: what a training-mode forward call would use.

        Returns ``CandidateSamples(candidates [S] int64, true_expected_count [B, T] float32,
        sampled_expected_count [S] float32)`` on the labels' device.
        """
        labels = self._check_labels(labels, None)
        _check_range(self._context(labels), "labels", labels, self.num_classes)
        return self._draw(labels)

    @torch.no_grad()
    def _draw(self, labels: torch.Tensor) -> CandidateSamples:
        if self._sampler_fn is not None:
            out = self._sampler_fn(labels)
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                raise TypeError(
                    "sampler must return CandidateSamples (sampled_candidates, "
                    f"true_expected_count, sampled_expected_count), got {type(out).__name__}"
                )
            return CandidateSamples(*out)
        if labels.device != self.num_calls.device:
            raise ValueError(
                f"labels are on {labels.device} but the module is on {self.num_calls.device}; "
                "move the module with .to(device)"
            )
        return self._sample_builtin(self._context(labels), labels)

    def _key_and_call(self, device):
        """``(key0, key1, call_index)`` as 0-d int64 tensors on ``device``; advances the stream."""
        if self._generator is not None:
            gen_device = self._generator.device
            if gen_device.type != device.type or (
                device.type == "cuda" and (gen_device.index or 0) != (device.index or 0)
            ):
                raise ValueError(
                    f"seed is a torch.Generator on {gen_device} but the tensors are on {device}; "
                    "pass a generator of the tensors' device"
                )
            words = torch.randint(
                0, 2**32, (2,), generator=self._generator, device=device, dtype=torch.int64
            )
            return words[0], words[1], torch.zeros((), dtype=torch.int64, device=device)
        call = self.num_calls.clone()
        torch._assert_async(
            call < _rng.CALL_LIMIT,
            f"SampledSoftmaxLoss has used all {_rng.CALL_LIMIT} call indices of its stream",
        )
        self.num_calls.add_(1)
        return self.seed_key[0], self.seed_key[1], call

    def _classes(self, ctx: Ctx, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
        """Class of each draw: ``floor(u * C)`` (uniform) or the CDF search (log-uniform)."""
        if self._cdf_thresholds is None:
            return _rng.uniform_int(ctx.xp, hi, lo, self.num_classes)
        return _rng.search_cdf_keys(ctx.xp, hi, lo, self._cdf_thresholds)

    def _prob(self, classes: torch.Tensor) -> torch.Tensor:
        if self._class_prob_bits is None:
            return torch.full(
                classes.shape, self._device_sampler.p, dtype=torch.float32, device=classes.device
            )
        bits = self._class_prob_bits.index_select(0, classes.reshape(-1)).reshape(classes.shape)
        return bits.view(torch.float32)

    def _sample_builtin(self, ctx: Ctx, labels: torch.Tensor) -> CandidateSamples:
        candidates, num_tries = self._candidates(ctx, labels)
        s = self.num_sampled
        true_q = samplers._expected_count(ctx, self._prob(labels), s, num_tries)
        sampled_q = samplers._expected_count(ctx, self._prob(candidates), s, num_tries)
        return CandidateSamples(candidates, true_q, sampled_q)

    def _candidates(self, ctx: Ctx, labels: torch.Tensor):
        """``(candidates [S], num_tries)`` of the next call of the built-in sampler."""
        ds = self._device_sampler
        s = self.num_sampled
        device = labels.device
        key0, key1, call = self._key_and_call(device)
        on_host = ctx.host_checks
        if ds.bounded and not (on_host and ds.block > ds.host_first_block):
            n = ds.block
            draws = torch.arange(n, dtype=torch.int64, device=device)
            hi, lo = _rng.threefry(ctx, key0, key1, call, draws)
            classes = self._classes(ctx, hi, lo)
            if not self._fused(labels):
                # the core's sort-based selection
                pos = samplers._first_new_positions(ctx, classes, None)[:s]
                candidates = classes.index_select(0, pos.clamp(max=n - 1))
                num_tries = pos[s - 1] + 1
            else:
                candidates, num_tries = _torch_fused.first_distinct(
                    classes, s, self.num_classes)
            torch._assert_async(
                num_tries <= n,
                f"unique sampling: {n} draws held fewer than num_sampled={s} distinct classes "
                f"(probability < {samplers.BLOCK_FAILURE_PROBABILITY})",
            )
            return candidates, num_tries
        # no bounded block is safe (or the host can refill cheaply): TF's loop with host
        # reads of the counts (a synchronisation on CUDA, only for such distributions)
        first = ds.host_first_block if on_host else max(samplers._MAX_BLOCK, 4 * s)
        dist = _ClassesOf(self, ctx)
        return samplers._sample_unique_eager(ctx, dist, (key0, key1, int(call)), s, first)

    # ---------------------------------------------------------------------------- internals

    def _context(self, tensor: torch.Tensor) -> Ctx:
        return Ctx(self._backend, self._backend.namespace(), tensor.device)

    def _check_inputs(self, inputs: Any) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
        if not inputs.is_floating_point():
            raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
        if inputs.ndim != 2 or inputs.shape[1] != self.embedding_dim:
            raise ValueError(
                f"inputs must have shape [batch_size, embedding_dim={self.embedding_dim}], got "
                f"shape {list(inputs.shape)}"
            )
        if inputs.device != self.weight.device:
            raise ValueError(
                f"inputs are on {inputs.device} but weight is on {self.weight.device}; move the "
                "module or the inputs"
            )
        return inputs

    def _check_batch(self, inputs: Any, labels: Any):
        inputs = self._check_inputs(inputs)
        labels = self._check_labels(labels, int(inputs.shape[0]))
        if labels.device != inputs.device:
            raise ValueError(
                f"labels are on {labels.device} but inputs are on {inputs.device}"
            )
        return inputs, labels

    def _check_labels(self, labels: Any, batch: Optional[int]) -> torch.Tensor:
        """``labels`` as int64 ``[B, num_true]`` (``[B]`` accepted for ``num_true == 1``)."""
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(
                f"labels must have an integer dtype (class ids), got {labels.dtype}; cast "
                "explicitly if the values are whole numbers"
            )
        if labels.ndim == 1 and self.num_true == 1:
            labels = labels[:, None]
        rows = labels.shape[0] if batch is None and labels.ndim == 2 else batch
        if labels.ndim != 2 or tuple(labels.shape) != (rows, self.num_true):
            raise ValueError(
                f"labels must have shape [batch_size{'' if batch is None else '=' + str(batch)}, "
                f"num_true={self.num_true}]"
                + (" (or [batch_size])" if self.num_true == 1 else "")
                + f", got shape {list(labels.shape)}"
            )
        return labels.to(torch.int64)

    def _gather(self, ids: torch.Tensor):
        """``(weight rows [N, D], bias rows [N])``; sparse row gradients with ``sparse=True``."""
        if self.sparse:
            rows_w = F.embedding(ids, self.weight, sparse=True)
            rows_b = None if self.bias is None else _SparseRows.apply(self.bias, ids)
        else:
            rows_w = _torch_fused.take_rows(self.weight, ids)
            rows_b = None if self.bias is None else _torch_fused.take_rows(self.bias, ids)
        if rows_b is None:
            rows_b = torch.zeros(ids.shape, dtype=rows_w.dtype, device=rows_w.device)
        return rows_w, rows_b

    def _full_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        cdtype = torch.float64 if inputs.dtype == torch.float64 else torch.float32
        bias = None if self.bias is None else self.bias.to(cdtype)
        return F.linear(inputs.to(cdtype), self.weight.to(cdtype), bias)

    def _full_softmax_loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._full_logits(inputs)
        true = logits.gather(1, labels)
        loss = torch.logsumexp(logits, dim=1) - true.sum(dim=1) / self.num_true
        return loss.to(inputs.dtype)


class _ClassesOf:
    """The ``dist`` the core's host-refill sampler expects, mapping draws with the module."""

    def __init__(self, module: SampledSoftmaxLoss, ctx: Ctx):
        self.module, self.ctx = module, ctx

    def classes(self, hi, lo):
        return self.module._classes(self.ctx, hi, lo)
