"""TensorFlow's candidate samplers (``tf.random.*_candidate_sampler``), on any Array API backend.

Each sampler draws ONE set of ``num_sampled`` candidates shared by the whole batch and returns
``CandidateSamples(sampled_candidates [S] int64, true_expected_count [B, T] float32,
sampled_expected_count [S] float32)`` (SEMANTICS.md 5). Base distributions
(:mod:`multisampled._distributions`), unique sampling with rejection, ``num_tries`` and the
expected-count formula (:mod:`multisampled._unique`) follow TensorFlow's kernels exactly; the
random numbers are counter-based (Threefry, integer-only mapping to classes), so a seed or key
gives bit-identical candidates on every backend and device, but not TensorFlow's candidates
(TensorFlow uses Philox with its own mapping). ``seed`` takes a key, None, an int or a
Generator (:mod:`multisampled._seeds`); under ``jax.jit``, ``tf.function`` and
``torch.compile(fullgraph=True)`` it must be a key.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from typing import Any, NamedTuple, Optional, Sequence, Union, overload

from . import _distributions as dists
from . import _rng, _seeds, _unique, _vocab
from ._checks import (
    check_bool,
    check_dense,
    check_int_in,
    check_integer_ids,
    check_rank,
    dtype_name,
    index_ids,
    named_array,
)
from ._context import Ctx, context
from ._guard import public
from ._types import Array, Seed

__all__ = [
    "CandidateSamples",
    "LearnedUnigramSampler",
    "LearnedUnigramState",
    "all_candidate_sampler",
    "fixed_unigram_candidate_sampler",
    "learned_unigram_candidate_sampler",
    "learned_unigram_state",
    "log_uniform_candidate_sampler",
    "uniform_candidate_sampler",
]

INT32_MAX = _unique.INT32_MAX


class CandidateSamples(NamedTuple):
    """What every sampler returns; usable as ``sampled_values`` of the losses.

    Attributes:
        sampled_candidates: ``[S]`` the sampled classes, in the index dtype.
        true_expected_count: ``[B, num_true]`` float32: how often each label is expected
            among the ``S`` draws.
        sampled_expected_count: ``[S]`` float32: the same for each candidate.
    """

    sampled_candidates: Array
    true_expected_count: Array
    sampled_expected_count: Array


# --------------------------------------------------------------------------- argument checks


def _true_classes(ctx: Ctx, true_classes: Any, num_true: int) -> Any:
    """``true_classes`` as a backend array of an integer dtype, shape-checked (TF's checks)."""
    tc = named_array(ctx, "true_classes", true_classes)
    check_integer_ids(ctx, "true_classes (labels)", tc)
    check_rank("true_classes", tc, 2, "[batch_size, num_true]")
    if tc.shape[1] != num_true:
        raise ValueError(
            f"true_classes must have num_true={num_true} columns, got {tc.shape[1]} "
            f"(shape {tuple(tc.shape)})"
        )
    return tc


def _check_class_range(ctx: Ctx, tc: Any, range_max: int, what: str) -> Any:
    """TF's "`true_candidate` out of range [0, R)" check, then the cast to the index dtype.

    Eager where values may be read; otherwise the backend's ``check_async``, and the ids used
    for gathers are kept in range so an invalid label never reads out of bounds. Unsigned
    labels are converted first (:func:`multisampled._checks.index_ids`).
    """
    xp = ctx.xp
    msg = f"true_classes values must be in [0, {range_max}) ({what})"
    tc, wrap = index_ids(ctx, tc)
    if not any(n == 0 for n in tc.shape):
        bad = tc < 0
        if xp.iinfo(tc.dtype).max >= range_max:
            bad = bad | (tc >= range_max)
        if ctx.may_read_values:
            if bool(xp.any(bad)):
                flat = xp.reshape(tc, (-1,))
                first = int(xp.argmax(xp.astype(xp.reshape(bad, (-1,)), xp.int8)))
                value = int(flat[first])
                if value < 0 and wrap:
                    value += wrap
                raise ValueError(f"{msg}, got {value} at flat position {first}")
        else:
            ctx.backend.check_async(xp.logical_not(xp.any(bad)), msg)
    out = tc if tc.dtype == ctx.index_dtype else xp.astype(tc, ctx.index_dtype)
    if not ctx.may_read_values:
        out = xp.clip(out, 0, range_max - 1)
    return out


def _common_checks(num_true, num_sampled, unique, range_max=None):
    num_true = check_int_in("num_true", num_true, 1, INT32_MAX)
    num_sampled = check_int_in("num_sampled", num_sampled, 1, INT32_MAX)
    unique = check_bool("unique", unique)
    if range_max is not None:
        range_max = check_int_in("range_max", range_max, 1)
        if unique and num_sampled > range_max:
            raise ValueError(
                f"Sampler's range is too small: unique=True needs num_sampled <= range_max, got "
                f"num_sampled={num_sampled} and range_max={range_max}"
            )
    return num_true, num_sampled, unique, range_max


def _check_index_range(ctx: Ctx, range_max: int) -> None:
    """Class ids ``[0, range_max)`` must fit the backend's index dtype (int64: ``range_max <
    2**63``; int32 on JAX without x64: ``range_max < 2**31``)."""
    limit = int(ctx.xp.iinfo(ctx.index_dtype).max)
    if range_max > limit:
        raise ValueError(
            f"range_max={range_max} is too large for the {ctx.name} backend: class ids must fit "
            f"its index dtype {dtype_name(ctx.index_dtype)}, so range_max must be at most "
            f"{limit}"
        )


def fixed_unigram_plan(backend_name: str, device: Any, word: str, range_max: int,
                       vocab_file: str, distortion: float, num_reserved_ids: int,
                       num_shards: int, shard: int, unigrams: Union[Sequence[float], Array],
                       ) -> tuple[tuple[Array, ...], Array, int, int, tuple]:
    """The fields of the fixed-unigram :class:`~multisampled._distributions.Table`: host work
    of constants (the weights read once, the tables built and cached), which tracing compilers
    evaluate at trace time (:data:`multisampled.kernels.HOST_WORK`).

    Args:
        backend_name: The registered name of the backend whose arrays are built.
        device: The device of the tables, as the backend's ``asarray`` takes it.
        word: The word dtype's name: ``"int64"`` or ``"uint32"``.
        range_max: The number of classes ``R``.
        vocab_file: A vocabulary file's path, or ``""`` to use ``unigrams``.
        distortion: The power each weight is raised to.
        num_reserved_ids: The ids before the file's or list's entries (weight 0).
        num_shards: The number of shards the classes are split into.
        shard: This shard's index in ``[0, num_shards)``.
        unigrams: The weights (host floats), or empty to read ``vocab_file``.

    Returns:
        ``(tables, p, range, support, key)``: the threshold tables, the float32 ``[R]``
        probabilities, ``R``, the classes of positive probability and the table's key.

    Raises:
        TypeError: ``unigrams`` not a sequence of floats; ``backend_name`` not a str.
        ValueError: Both or neither of ``vocab_file`` and ``unigrams`` given; ``unigrams`` not
            flat; weights not finite and >= 0, not finite after ``distortion``, or of a float32
            total that is not positive and finite; ``range_max`` not the number of weights of
            this shard; a line of ``vocab_file`` without a float weight; no backend registered
            as ``backend_name``.
        IsADirectoryError: ``vocab_file`` is a directory.
        FileNotFoundError: ``vocab_file`` cannot be read.
        ImportError: The backend is registered but its framework is not installed.
    """
    unigrams = _vocab.unigram_array(unigrams)
    n_unigrams = unigrams.shape[0]
    if not vocab_file and n_unigrams == 0:
        raise ValueError("Must provide either vocab_file or unigrams: both are empty")
    if vocab_file and n_unigrams:
        raise ValueError(
            f"Must only provide one of vocab_file and unigrams: got vocab_file={vocab_file!r} "
            f"and {n_unigrams} unigrams"
        )
    args = (range_max, vocab_file, distortion, num_reserved_ids, num_shards, shard, unigrams)
    key = ("fixed_unigram", range_max, distortion, num_reserved_ids, num_shards, shard,
           _vocab.source_key(vocab_file, unigrams))
    dists.register_builder(key, lambda: dists.fixed_unigram_host(
        _vocab.fixed_unigram_weights(*args)))
    tables, p, range_, support = dists.table_plan(backend_name, device, key, word)
    return tables, p, range_, support, key


def _check_unigram_range(range_max: int) -> None:
    if range_max >= INT32_MAX:
        raise ValueError(
            f"range_max must be less than {INT32_MAX} for unigram samplers, got {range_max}"
        )


def _labels_for(ctx: Ctx, true_classes: Any, num_true: int, range_max: int, what: str) -> Any:
    _check_index_range(ctx, range_max)
    tc = _true_classes(ctx, true_classes, num_true)
    return _check_class_range(ctx, tc, range_max, what)


# --------------------------------------------------------------------------- one call


def run(ctx: Ctx, dist: Any, tc: Any, s: int, unique: bool, seed: Any) -> CandidateSamples:
    """One sampler call: candidates, then both expected counts (TF's float32 formula)."""
    xp = ctx.xp
    candidates, num_tries = _unique.sample(ctx, dist, s, unique, _seeds.call_for(ctx, seed))
    true_q = _unique.expected_count(xp, dist.prob(ctx, xp.reshape(tc, (-1,))), s, num_tries)
    sampled_q = _unique.expected_count(xp, dist.prob(ctx, candidates), s, num_tries)
    return CandidateSamples(candidates, xp.reshape(true_q, (-1, tc.shape[1])), sampled_q)


# --------------------------------------------------------------------------- public samplers


@public
def uniform_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int,
                              unique: bool, range_max: int, seed: Optional[Seed] = None,
                              name: Optional[str] = None, *,
                              backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.uniform_candidate_sampler``: classes uniform in ``[0, range_max)``.

    ``P(k) = 1/range_max``. Returns ``CandidateSamples(sampled_candidates [S] int64,
    true_expected_count [B, num_true] float32, sampled_expected_count [S] float32)``.
    ``seed``: a key (an integer array of two 32-bit words, or a JAX key: the candidates are a
    pure function of it, also under ``jax.jit``/``tf.function``/``torch.compile``), None
    (fresh randomness), an int (the process-wide stream of that seed on this backend, shared
    by all samplers: reproducible across runs, different on each call) or a
    :class:`multisampled.Generator`. ``name`` is accepted and ignored.

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, range_max)``.
        num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
        num_sampled: ``S``, the number of candidates (in ``[1, 2**31)``).
        unique: Whether the candidates are distinct (TF's rejection loop).
        range_max: The number of classes ``R`` (>= 1); candidates lie in ``[0, R)``.
        seed: A key (an integer array of two 32-bit words, or a JAX key; needed under ``jax.jit``,
            ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh randomness), an int
            in ``[0, 2**64)`` (the process-wide stream of that seed on this backend), or a
            :class:`~multisampled.Generator`.
        name: Accepted and ignored (TF's op name).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``CandidateSamples(sampled_candidates [S], true_expected_count [B, num_true],
        sampled_expected_count [S])``: candidates in the index dtype (int64; int32 on JAX without
        x64), expected counts in float32, arrays of the labels' backend.

    Raises:
        TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or not
            of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``range_max`` below 1
            or beyond the backend's index dtype; ``unique=True`` with ``num_sampled > range_max``;
            ``true_classes`` not ``[B, num_true]``; an int seed outside ``[0, 2**64)`` or a key not
            of two 32-bit words; an unknown ``backend``. Also, where the backend reads values on
            the host (NumPy, CPU tensors): labels outside the class range; elsewhere the framework
            reports them (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: A :class:`~multisampled.Generator` seed whose ``2**32`` calls are used up;
            under TensorFlow's XLA with its value checks on, a call that needs a value check.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = _labels_for(ctx, true_classes, num_true, range_max, "uniform_candidate_sampler")
    return run(ctx, dists.Uniform(range_max), tc, num_sampled, unique, seed)


@public
def log_uniform_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int,
                                  unique: bool, range_max: int, seed: Optional[Seed] = None,
                                  name: Optional[str] = None, *,
                                  backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.log_uniform_candidate_sampler``: Zipfian classes in ``[0, range_max)``.

    ``P(k) = ln((k+2)/(k+1)) / ln(range_max+1)`` (float64, returned as float32); suits class ids
    sorted by decreasing frequency. Returns and ``seed`` as :func:`uniform_candidate_sampler`.
    Builds (once per backend and device) a table of ``12 * range_max`` bytes.

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, range_max)``.
        num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
        num_sampled: ``S``, the number of candidates (in ``[1, 2**31)``).
        unique: Whether the candidates are distinct (TF's rejection loop).
        range_max: The number of classes ``R`` (>= 1); candidates lie in ``[0, R)``.
        seed: A key (an integer array of two 32-bit words, or a JAX key; needed under ``jax.jit``,
            ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh randomness), an int
            in ``[0, 2**64)`` (the process-wide stream of that seed on this backend), or a
            :class:`~multisampled.Generator`.
        name: Accepted and ignored (TF's op name).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``CandidateSamples(sampled_candidates [S], true_expected_count [B, num_true],
        sampled_expected_count [S])``: candidates in the index dtype (int64; int32 on JAX without
        x64), expected counts in float32, arrays of the labels' backend.

    Raises:
        TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or not
            of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call.
        ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``range_max`` below 1
            or beyond the backend's index dtype; ``unique=True`` with ``num_sampled > range_max``;
            ``true_classes`` not ``[B, num_true]``; an int seed outside ``[0, 2**64)`` or a key not
            of two 32-bit words; an unknown ``backend``. Also, where the backend reads values on
            the host (NumPy, CPU tensors): labels outside the class range; elsewhere the framework
            reports them (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: A :class:`~multisampled.Generator` seed whose ``2**32`` calls are used up;
            under TensorFlow's XLA with its value checks on, a call that needs a value check.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = _labels_for(ctx, true_classes, num_true, range_max, "log_uniform_candidate_sampler")
    return run(ctx, dists.log_uniform(ctx, range_max), tc, num_sampled, unique, seed)


# --------------------------------------------------------------------------- learned unigram


class LearnedUnigramState(NamedTuple):
    """The learned unigram's explicit state (a pytree for JAX): ``counts`` ``[range_max]`` of
    the index dtype, every entry >= 1.

    Attributes:
        counts: ``[range_max]`` the classes' weights: 1 plus the times each was a label.
    """

    counts: Array


def learned_unigram_state(range_max: int, *,
                          backend: Optional[str] = None) -> LearnedUnigramState:
    """The initial :class:`LearnedUnigramState` (every count 1) on ``backend``.

    Args:
        range_max: The number of classes (in ``[1, 2**31 - 1)``).
        backend: The backend name of the counts; None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy.

    Returns:
        The state, ``counts`` all ones in the backend's index dtype.

    Raises:
        TypeError: ``range_max`` not an int; ``backend`` not a str.
        ValueError: ``range_max`` below 1, at least ``2**31 - 1``, or beyond the backend's
            index dtype; an unknown ``backend``.
        ImportError: The backend's framework is not installed.
    """
    import numpy as np

    range_max = check_int_in("range_max", range_max, 1)
    _check_unigram_range(range_max)
    ctx = context(backend=backend)
    _check_index_range(ctx, range_max)
    return LearnedUnigramState(
        ctx.asarray(np.ones((range_max,), dtype=np.int64), dtype_name(ctx.index_dtype)))


def _learn(ctx: Ctx, counts: Any, labels: Any) -> Any:
    """``counts`` plus 1 per entry of ``labels`` (repeats counted), dropping the updates that
    would take the total past 2**31-1 (TensorFlow's rule); no host read, so it traces."""
    xp = ctx.xp
    range_max = counts.shape[0]
    total = xp.sum(counts)
    positions = xp.arange(labels.shape[0], dtype=counts.dtype, device=ctx.device)
    allowed = _unique.LEARNED_TOTAL_CAP - total
    kept = xp.where(positions < allowed, xp.astype(labels, counts.dtype),
                    xp.full_like(positions, range_max))
    values = xp.sort(kept)
    ids = xp.arange(range_max, dtype=counts.dtype, device=ctx.device)
    # a bincount without scatter: occurrences of id = right edge - left edge in sorted values
    added = (xp.searchsorted(values, ids, side="right")
             - xp.searchsorted(values, ids, side="left"))
    return counts + xp.astype(added, counts.dtype)


def _learned_call(ctx: Ctx, counts: Any, true_classes, num_true, num_sampled, unique, seed):
    range_max = int(counts.shape[0])
    tc = _labels_for(ctx, true_classes, num_true, range_max, "learned_unigram_candidate_sampler")
    total = int(ctx.xp.sum(counts)) if ctx.may_read_values else None
    result = run(ctx, dists.Learned(ctx, counts, total), tc, num_sampled, unique, seed)
    return result, _learn(ctx, counts, ctx.xp.reshape(tc, (-1,)))  # after sampling, as TF


class LearnedUnigramSampler:
    """TF's learned unigram sampler as an object that owns its state.

    Weights start at 1 for each of ``range_max`` classes. A call samples from ``weight / total``,
    computes the expected counts, and only then adds 1 per entry of ``true_classes`` (repeats
    counted; updates that would take the total past 2**31-1 are dropped, as in TensorFlow).
    The counts live where the backend keeps state (``Backend.new_state``): a ``tf.Variable``
    on TensorFlow, updated inside ``tf.function`` too; an array elsewhere. Under ``jax.jit``
    use the functional form with ``state=`` instead.

    Args:
        range_max: The number of classes (in ``[1, 2**31 - 1)``).
        backend: The backend name of the counts; None: the default backend. A first call with
            arrays of another backend (or device) moves the counts there.

    Raises:
        TypeError: ``range_max`` not an int; ``backend`` not a str.
        ValueError: ``range_max`` below 1, at least ``2**31 - 1``, or beyond the backend's
            index dtype; an unknown ``backend``.
        ImportError: The backend's framework is not installed.
    """

    def __init__(self, range_max: int, *, backend: Optional[str] = None) -> None:
        range_max = check_int_in("range_max", range_max, 1)
        _check_unigram_range(range_max)
        self.range_max = range_max
        self._backend = backend
        self._lock = threading.Lock()
        self._bind(context(backend=backend))

    def _bind(self, ctx: Ctx) -> None:
        self._where = dists.device_key(ctx)
        self._device = dists.resolved_device(ctx)
        self._learned = False
        self._state = ctx.backend.new_state(
            learned_unigram_state(self.range_max, backend=ctx.backend.name).counts)

    @property
    def counts(self) -> Any:
        """The current weights (a backend array of the index dtype)."""
        from ._registry import get_backend

        return get_backend(self._where[0]).read_state(self._state)

    @property
    def total(self) -> int:
        """The sum of the weights (reads them on the host)."""
        from ._registry import get_backend

        return int(get_backend(self._where[0]).namespace().sum(self.counts))

    @public(traceable=False)
    def __call__(self, true_classes: Array, num_true: int, num_sampled: int, unique: bool,
                 seed: Optional[Seed] = None) -> CandidateSamples:
        """Sample, then learn from ``true_classes``; arguments as in TensorFlow's sampler.

        Args:
            true_classes: ``[B, num_true]`` integer labels in ``[0, range_max)``.
            num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
            num_sampled: ``S``, the number of candidates (in ``[1, 2**31)``).
            unique: Whether the candidates are distinct (TF's rejection loop).
            seed: A key (an integer array of two 32-bit words, or a JAX key; needed under
                ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh
                randomness), an int in ``[0, 2**64)`` (the process-wide stream of that seed on this
                backend), or a :class:`~multisampled.Generator`.

        Returns:
            ``CandidateSamples(sampled_candidates [S], true_expected_count [B, num_true],
            sampled_expected_count [S])``: candidates in the index dtype (int64; int32 on JAX
            without x64), expected counts in float32, arrays of the labels' backend.

        Raises:
            TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or
                not of an integer dtype; arrays of two frameworks, of a type no backend knows, or
                of another framework than ``backend``; ``backend`` not a str; a seed of another
                type, or a seed that is not a key while a compiler traces the call.
            ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``unique=True``
                with ``num_sampled > range_max``; ``true_classes`` not ``[B, num_true]``; an int
                seed outside ``[0, 2**64)`` or a key not of two 32-bit words; an unknown
                ``backend``; arrays on another backend or device than the counts, once the sampler
                has learned. Also, where the backend reads values on the host (NumPy, CPU tensors):
                labels outside the class range; elsewhere the framework reports them (see the
                README's "Value checks and accelerators").
            ImportError: ``backend`` names a registered backend whose framework is not installed.
            RuntimeError: A :class:`~multisampled.Generator` seed whose ``2**32`` calls are used
                up; under TensorFlow's XLA with its value checks on, a call that needs a value
                check.
        """
        import dataclasses

        num_true, num_sampled, unique, _ = _common_checks(
            num_true, num_sampled, unique, self.range_max)
        check_dense("true_classes", true_classes)
        ctx = context(true_classes, backend=self._backend)
        seed = _seeds.check_seed(ctx, seed)
        with self._lock:
            if ctx.device is None and ctx.backend.name == self._where[0]:
                ctx = dataclasses.replace(ctx, device=self._device)  # host labels go to counts
            if dists.device_key(ctx) != self._where:
                if self._learned:
                    raise ValueError(
                        f"this LearnedUnigramSampler learned on {self._where}; true_classes are "
                        f"on {dists.device_key(ctx)}: keep one sampler per backend and device"
                    )
                self._bind(ctx)  # nothing learned yet: move to the caller's backend
            counts = ctx.backend.read_state(self._state)
            result, counts = _learned_call(ctx, counts, true_classes, num_true, num_sampled,
                                           unique, seed)
            self._state = ctx.backend.assign_state(self._state, counts)
            self._learned = True
            return result

    def __repr__(self) -> str:
        return f"LearnedUnigramSampler(range_max={self.range_max})"


_learned_states: dict = {}
_learned_lock = threading.Lock()


def _reset_learned_states() -> None:
    """Forget the state of every functional learned unigram sampler (tests)."""
    with _learned_lock:
        _learned_states.clear()


@public(traceable=False)
def _learned_unigram_stateful(true_classes, num_true, num_sampled, unique, range_max, seed,
                              backend):
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    # TF keeps one kernel per op and attribute set; an int seed is an attribute, any other
    # seed (None, a Generator, a key) is not: one state for all of them, not one per object
    seed_attr = seed if isinstance(seed, int) else None
    key = dists.device_key(ctx) + (num_true, num_sampled, unique, range_max, seed_attr)
    with _learned_lock:
        sampler = _learned_states.get(key)
        if sampler is None:
            sampler = _learned_states[key] = LearnedUnigramSampler(
                range_max, backend=ctx.backend.name)
    return sampler(true_classes, num_true, num_sampled, unique, seed=seed)


@overload
def learned_unigram_candidate_sampler(
    true_classes: Array, num_true: int, num_sampled: int, unique: bool, range_max: int,
    seed: Optional[Seed] = None, name: Optional[str] = None, *, state: None = None,
    backend: Optional[str] = None,
) -> CandidateSamples: ...


@overload
def learned_unigram_candidate_sampler(
    true_classes: Array, num_true: int, num_sampled: int, unique: bool, range_max: int,
    seed: Optional[Seed] = None, name: Optional[str] = None, *, state: LearnedUnigramState,
    backend: Optional[str] = None,
) -> tuple[CandidateSamples, LearnedUnigramState]: ...


@public
def learned_unigram_candidate_sampler(
    true_classes: Array, num_true: int, num_sampled: int, unique: bool, range_max: int,
    seed: Optional[Seed] = None, name: Optional[str] = None, *,
    state: Optional[LearnedUnigramState] = None, backend: Optional[str] = None,
) -> Union[CandidateSamples, tuple[CandidateSamples, LearnedUnigramState]]:
    """``tf.random.learned_unigram_candidate_sampler``: classes by counts of past labels.

    Without ``state``: state persists across calls the way TensorFlow's eager kernel cache
    keeps it, one :class:`LearnedUnigramSampler` per backend, device and attribute set
    ``(num_true, num_sampled, unique, range_max, int seed)``; returns ``CandidateSamples``.
    With ``state`` (a :class:`LearnedUnigramState`, see :func:`learned_unigram_state`): a pure
    function, for ``jax.jit``/``lax.scan``; returns ``(CandidateSamples, new_state)``. A call's
    own labels affect only later calls. ``seed`` as :func:`uniform_candidate_sampler`;
    ``range_max < 2**31 - 1``.

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, range_max)``.
        num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
        num_sampled: ``S``, the number of candidates (in ``[1, 2**31)``).
        unique: Whether the candidates are distinct (TF's rejection loop).
        range_max: The number of classes ``R`` (in ``[1, 2**31 - 1)``).
        seed: A key (an integer array of two 32-bit words, or a JAX key; needed under ``jax.jit``,
            ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh randomness), an int
            in ``[0, 2**64)`` (the process-wide stream of that seed on this backend), or a
            :class:`~multisampled.Generator`.
        name: Accepted and ignored (TF's op name).
        state: A :class:`LearnedUnigramState` for the pure form, or None for the state kept per
            backend, device and attribute set.
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``CandidateSamples(sampled_candidates [S], true_expected_count [B, num_true],
        sampled_expected_count [S])``: candidates in the index dtype (int64; int32 on JAX without
        x64), expected counts in float32, arrays of the labels' backend. With ``state``:
        ``(CandidateSamples, new_state)``.

    Raises:
        TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or not
            of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call; ``state`` not a
            LearnedUnigramState.
        ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``range_max`` below 1
            or beyond the backend's index dtype; ``unique=True`` with ``num_sampled > range_max``;
            ``range_max >= 2**31 - 1``; ``true_classes`` not ``[B, num_true]``; an int seed outside
            ``[0, 2**64)`` or a key not of two 32-bit words; an unknown ``backend``;
            ``state.counts`` not ``[range_max]``. Also, where the backend reads values on the host
            (NumPy, CPU tensors): labels outside the class range; elsewhere the framework reports
            them (see the README's "Value checks and accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: A :class:`~multisampled.Generator` seed whose ``2**32`` calls are used up;
            under TensorFlow's XLA with its value checks on, a call that needs a value check.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    _check_unigram_range(range_max)
    if state is None:
        return _learned_unigram_stateful(true_classes, num_true, num_sampled, unique, range_max,
                                         seed, backend)
    if not isinstance(state, LearnedUnigramState):
        raise TypeError(
            f"state must be a multisampled.LearnedUnigramState, got {type(state).__name__}")
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, state.counts, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    if tuple(state.counts.shape) != (range_max,):
        raise ValueError(
            f"state.counts must have shape [range_max={range_max}], got "
            f"{list(state.counts.shape)}")
    result, counts = _learned_call(ctx, state.counts, true_classes, num_true, num_sampled,
                                   unique, seed)
    return result, LearnedUnigramState(counts)


# --------------------------------------------------------------------------- fixed unigram


@public
def fixed_unigram_candidate_sampler(
    true_classes: Array, num_true: int, num_sampled: int, unique: bool, range_max: int,
    vocab_file: Union[str, os.PathLike, None] = "", distortion: float = 1.0,
    num_reserved_ids: int = 0, num_shards: int = 1, shard: int = 0,
    unigrams: Union[Sequence[float], Array] = (), seed: Optional[Seed] = None,
    name: Optional[str] = None, *, backend: Optional[str] = None,
) -> CandidateSamples:
    """``tf.random.fixed_unigram_candidate_sampler``: classes by fixed weights.

    Weights come from ``unigrams`` or from ``vocab_file`` (CSV-like: the last comma field of each
    non-empty line), exactly one of the two. ``num_reserved_ids`` leading ids get weight 0; with
    ``num_shards > 1`` only ids with ``id % num_shards == shard`` are kept, and the running id of
    loaded entries starts at the number of reserved ids of THIS shard (TensorFlow's quirk). Each
    weight is raised to ``distortion``. ``range_max`` must equal the number of kept weights, and
    the candidates are shard-local indices in ``[0, range_max)``. ``P(k) = w[k] / sum(w)`` in
    float32. Returns and ``seed`` as :func:`uniform_candidate_sampler`; the weights are read on
    the host once (under a compiler, at trace time: under ``torch.compile`` pass ``unigrams``
    as a list).

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, range_max)``.
        num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
        num_sampled: ``S``, the number of candidates (in ``[1, 2**31)``).
        unique: Whether the candidates are distinct (TF's rejection loop).
        range_max: The number of kept weights ``R`` (in ``[1, 2**31 - 1)``).
        vocab_file: A vocabulary file's path (an empty one or None: none).
        distortion: The finite power each weight is raised to.
        num_reserved_ids: Leading ids of weight 0 (>= 0).
        num_shards: The number of shards of the vocabulary (>= 1).
        shard: This shard's index, in ``[0, num_shards)``.
        unigrams: The classes' weights (a sequence of floats or a 1-D array), finite and >= 0.
        seed: A key (an integer array of two 32-bit words, or a JAX key; needed under ``jax.jit``,
            ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh randomness), an int
            in ``[0, 2**64)`` (the process-wide stream of that seed on this backend), or a
            :class:`~multisampled.Generator`.
        name: Accepted and ignored (TF's op name).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``CandidateSamples(sampled_candidates [S], true_expected_count [B, num_true],
        sampled_expected_count [S])``: candidates in the index dtype (int64; int32 on JAX without
        x64), expected counts in float32, arrays of the labels' backend.

    Raises:
        TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or not
            of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type, or a
            seed that is not a key while a compiler traces the call; ``distortion`` not a real
            number, ``vocab_file`` not a path, ``unigrams`` not a sequence of floats.
        ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``range_max`` below 1
            or beyond the backend's index dtype; ``unique=True`` with ``num_sampled > range_max``;
            ``range_max >= 2**31 - 1`` or not the number of kept weights; ``true_classes`` not
            ``[B, num_true]``; an int seed outside ``[0, 2**64)`` or a key not of two 32-bit words;
            an unknown ``backend``; ``shard`` or ``num_reserved_ids`` out of range, ``distortion``
            not finite; both or neither of ``vocab_file`` and ``unigrams``; a weight negative, not
            finite, or not finite after ``distortion``; a vocabulary line whose last field is not a
            number; ``unique=True`` with fewer positive weights than ``num_sampled``. Also, where
            the backend reads values on the host (NumPy, CPU tensors): labels outside the class
            range; elsewhere the framework reports them (see the README's "Value checks and
            accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
        RuntimeError: A :class:`~multisampled.Generator` seed whose ``2**32`` calls are used up;
            under TensorFlow's XLA with its value checks on, a call that needs a value check.
        FileNotFoundError: ``vocab_file`` cannot be read.
        IsADirectoryError: ``vocab_file`` is a directory.
    """
    num_true, num_sampled, unique, range_max = _common_checks(
        num_true, num_sampled, unique, range_max)
    _check_unigram_range(range_max)
    num_reserved_ids = check_int_in("num_reserved_ids", num_reserved_ids, 0, INT32_MAX)
    num_shards = check_int_in("num_shards", num_shards, 1, INT32_MAX)
    shard = check_int_in("shard", shard, 0, INT32_MAX)
    if shard >= num_shards:
        raise ValueError(f"shard must be in [0, num_shards={num_shards}), got {shard}")
    if isinstance(distortion, bool) or not isinstance(distortion, numbers.Real):
        raise TypeError(
            f"distortion must be a float, got {distortion!r} of type {type(distortion).__name__}"
        )
    if not math.isfinite(float(distortion)):
        raise ValueError(f"distortion must be a finite float, got {distortion}")
    if vocab_file is None:
        vocab_file = ""
    if not isinstance(vocab_file, (str, os.PathLike)):
        raise TypeError(
            f"vocab_file must be a path (str), got {vocab_file!r} of type "
            f"{type(vocab_file).__name__}"
        )
    vocab_file = os.fspath(vocab_file)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    seed = _seeds.check_seed(ctx, seed)
    tc = _labels_for(ctx, true_classes, num_true, range_max, "fixed_unigram_candidate_sampler")
    word = "int64" if _rng.word_dtype(ctx) == ctx.xp.int64 else "uint32"
    plan = fixed_unigram_plan(ctx.backend.name, dists.resolved_device(ctx), word, range_max,
                              vocab_file, float(distortion), num_reserved_ids, num_shards, shard,
                              unigrams)
    dist = dists.Table(*plan)
    if unique and dist.support < num_sampled:
        raise ValueError(
            f"unique=True needs num_sampled={num_sampled} distinct classes but only "
            f"{dist.support} classes of range_max={range_max} have a positive weight "
            "(TensorFlow would loop until it aborts)"
        )
    return run(ctx, dist, tc, num_sampled, unique, seed)


# --------------------------------------------------------------------------- all classes


@public
def all_candidate_sampler(true_classes: Array, num_true: int, num_sampled: int, unique: bool,
                          seed: Optional[Seed] = None, name: Optional[str] = None, *,
                          backend: Optional[str] = None) -> CandidateSamples:
    """``tf.random.all_candidate_sampler``: every class ``0 .. num_sampled-1``, in order.

    Every expected count is 1.0; ``unique`` and ``seed`` are validated and otherwise ignored.
    True classes must lie in ``[0, num_sampled)`` (recent TensorFlow kernels check this).
    Useful as an oracle: the sampled softmax over all classes equals the full softmax.

    Args:
        true_classes: ``[B, num_true]`` integer labels in ``[0, num_sampled)``.
        num_true: The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).
        num_sampled: The number of classes, all of them returned.
        unique: Validated, ignored.
        seed: Validated, ignored: a key (an integer array of two 32-bit words, or a JAX key; needed
            under ``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``), None (fresh
            randomness), an int in ``[0, 2**64)`` (the process-wide stream of that seed on this
            backend), or a :class:`~multisampled.Generator`.
        name: Accepted and ignored (TF's op name).
        backend: The backend name for host data (``"torch"``, say); None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. Arrays
            of a framework always run on that framework's backend.

    Returns:
        ``CandidateSamples(arange(num_sampled), ones [B, num_true], ones [num_sampled])``: the
        candidates in the index dtype, float32 counts.

    Raises:
        TypeError: An int or bool argument of another type; ``true_classes`` ragged, sparse or not
            of an integer dtype; arrays of two frameworks, of a type no backend knows, or of
            another framework than ``backend``; ``backend`` not a str; a seed of another type.
        ValueError: ``num_true`` or ``num_sampled`` outside ``[1, 2**31)``; ``true_classes`` not
            ``[B, num_true]``; an int seed outside ``[0, 2**64)``; an unknown ``backend``. Also,
            where the backend reads values on the host (NumPy, CPU tensors): labels outside the
            class range; elsewhere the framework reports them (see the README's "Value checks and
            accelerators").
        ImportError: ``backend`` names a registered backend whose framework is not installed.
    """
    num_true, num_sampled, unique, _ = _common_checks(num_true, num_sampled, unique)
    check_dense("true_classes", true_classes)
    ctx = context(true_classes, backend=backend)
    _seeds.check_seed(ctx, seed)
    tc = _labels_for(ctx, true_classes, num_true, num_sampled, "all_candidate_sampler")
    xp = ctx.xp
    candidates = xp.arange(num_sampled, dtype=ctx.index_dtype, device=ctx.device)
    ones = xp.ones((num_sampled,), dtype=xp.float32, device=ctx.device)
    return CandidateSamples(candidates, xp.ones_like(tc, dtype=xp.float32), ones)
