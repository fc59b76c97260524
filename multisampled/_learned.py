"""TF's learned unigram candidate sampler: classes drawn by ``1 +`` the counts of past labels.

The counts are the sampler's state: explicit (:class:`LearnedUnigramState`, a pure function for
``jax.jit``), owned by a :class:`LearnedUnigramSampler` (kept where the backend keeps state), or,
without ``state=``, one sampler per backend, device and attribute set, the way TensorFlow's eager
kernel cache keeps it. A call samples first and learns from its labels after (TensorFlow's order).
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple, Optional, Union, overload

from . import _distributions as dists
from . import _seeds, _unique
from ._checks import check_dense, check_int_in, dtype_name
from ._context import Ctx, context
from ._docs import fill
from ._guard import public
from ._sampling import (
    CandidateSamples,
    check_counts,
    check_index_range,
    check_unigram_range,
    labels_for,
    run,
)
from ._types import Array, Seed

__all__ = [
    "LearnedUnigramSampler",
    "LearnedUnigramState",
    "learned_unigram_candidate_sampler",
    "learned_unigram_state",
]


class LearnedUnigramState(NamedTuple):
    """The learned unigram's explicit state (a pytree for JAX): ``counts`` ``[range_max]`` of
    the index dtype, every entry >= 1.

    Attributes:
        counts: ``[range_max]`` the classes' weights: 1 plus the times each was a label.
    """

    counts: Array


@fill
def learned_unigram_state(range_max: int, *,
                          backend: Optional[str] = None) -> LearnedUnigramState:
    """The initial :class:`LearnedUnigramState` (every count 1) on ``backend``.

    Args:
        range_max: {learned_range_max}
        backend: The backend name of the counts; None: the innermost
            :func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy.

    Returns:
        The state, ``counts`` all ones in the backend's index dtype.

    Raises:
        TypeError: {learned_types}
        ValueError: {learned_values}
        ImportError: {learned_import}
    """
    import numpy as np

    range_max = check_int_in("range_max", range_max, 1)
    check_unigram_range(range_max)
    ctx = context(backend=backend)
    check_index_range(ctx, range_max)
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
    tc = labels_for(ctx, true_classes, num_true, range_max, "learned_unigram_candidate_sampler")
    total = int(ctx.xp.sum(counts)) if ctx.may_read_values else None
    result = run(ctx, dists.Learned(ctx, counts, total), tc, num_sampled, unique, seed)
    return result, _learn(ctx, counts, ctx.xp.reshape(tc, (-1,)))  # after sampling, as TF


@fill
class LearnedUnigramSampler:
    """TF's learned unigram sampler as an object that owns its state.

    Weights start at 1 for each of ``range_max`` classes. A call samples from ``weight / total``,
    computes the expected counts, and only then adds 1 per entry of ``true_classes`` (repeats
    counted; updates that would take the total past 2**31-1 are dropped, as in TensorFlow).
    The counts live where the backend keeps state (``Backend.new_state``): a ``tf.Variable``
    on TensorFlow, updated inside ``tf.function`` too; an array elsewhere. Under ``jax.jit``
    use the functional form with ``state=`` instead.

    Args:
        range_max: {learned_range_max}
        backend: The backend name of the counts; None: the default backend. A first call with
            arrays of another backend (or device) moves the counts there.

    Raises:
        TypeError: {learned_types}
        ValueError: {learned_values}
        ImportError: {learned_import}
    """

    def __init__(self, range_max: int, *, backend: Optional[str] = None) -> None:
        range_max = check_int_in("range_max", range_max, 1)
        check_unigram_range(range_max)
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
    @fill
    def __call__(self, true_classes: Array, num_true: int, num_sampled: int, unique: bool,
                 seed: Optional[Seed] = None) -> CandidateSamples:
        """Sample, then learn from ``true_classes``; arguments as in TensorFlow's sampler.

        Args:
            true_classes: {sampler_true_classes}
            num_true: {sampler_num_true}
            num_sampled: {sampler_num_sampled}
            unique: {unique}
            seed: {sampler_seed}

        Returns:
            {candidate_samples}

        Raises:
            TypeError: {sampler_types}; {bad_seed}.
            ValueError: {sampler_counts}; ``unique=True`` with ``num_sampled > range_max``;
                ``true_classes`` not ``[B, num_true]``; {seed_values}; arrays on another backend
                or device than the counts, once the sampler has learned. {labels_on_host}
            ImportError: {import_error}
            RuntimeError: {runtime_errors}.
        """
        import dataclasses

        num_true, num_sampled, unique, _ = check_counts(
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


def reset_learned_states() -> None:
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
@fill
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
        true_classes: {sampler_true_classes}
        num_true: {sampler_num_true}
        num_sampled: {sampler_num_sampled}
        unique: {unique}
        range_max: The number of classes ``R`` (in ``[1, 2**31 - 1)``).
        seed: {sampler_seed}
        name: {op_name}
        state: A :class:`LearnedUnigramState` for the pure form, or None for the state kept per
            backend, device and attribute set.
        backend: {backend}

    Returns:
        {candidate_samples} With ``state``: ``(CandidateSamples, new_state)``.

    Raises:
        TypeError: {sampler_types}; {bad_seed}; ``state`` not a LearnedUnigramState.
        ValueError: {sampler_values}; ``range_max >= 2**31 - 1``; ``state.counts`` not
            ``[range_max]``. {labels_on_host}
        ImportError: {import_error}
        RuntimeError: {runtime_errors}.
    """
    num_true, num_sampled, unique, range_max = check_counts(
        num_true, num_sampled, unique, range_max)
    check_unigram_range(range_max)
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
