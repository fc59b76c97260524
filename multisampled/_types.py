"""The type aliases of the public signatures, defined once here.

The library takes arrays of whichever framework the caller uses and never imports a framework
to recognise them, so an array is typed ``Any``: pretending to know ``torch.Tensor``,
``jax.Array`` and ``tf.Tensor`` here would make mypy follow (or reject) frameworks that are
optional. The aliases name what an argument holds; ints, bools, strings, optionals and return
tuples are typed precisely in the signatures themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, Union

if TYPE_CHECKING:
    from ._rng import Generator

__all__ = ["Array", "ClassTable", "SampledValues", "Seed"]

Array = Any
"""An array of any backend: a NumPy array, ``torch.Tensor``, ``jax.Array``, ``tf.Tensor`` or any
Array API array. As an argument, host data (NumPy arrays, nested lists, Python scalars) is
accepted too and goes to the selected backend; a returned array is the backend's own type."""

ClassTable = Union[Array, Sequence[Array]]
"""A class table (``weights [C, D]`` or ``biases [C]``): one array, or a list of shards."""

SampledValues = Sequence[Array]
"""A ``(sampled_candidates [S], true_expected_count [B, T], sampled_expected_count [S])``
triple (a tuple or list of three arrays; a :class:`~multisampled.CandidateSamples` is one)."""

Seed = Union[int, "Generator", Array]
"""A sampler seed: an int in ``[0, 2**64)`` (the process-wide stream of that seed), a
:class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit words, or a JAX
key); on the torch backend also a ``torch.Generator``. ``None``, where a signature allows it, draws fresh randomness."""
