"""The building blocks of the strategies: floating dtype names and rounding to them, the size and
seed strategies, and the shard layouts of SEMANTICS 6.

Public through :mod:`multisampled.conformance.strategies`, which re-exports every name here.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from hypothesis import strategies as st

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------------------------------------
# dtypes and rounding


def host_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype a payload of ``dtype`` is held in on the host (bfloat16 -> float32).

    Args:
        dtype: A floating dtype name (one of :data:`FLOAT_DTYPES`).

    Returns:
        ``float32`` for ``"bfloat16"``, else the NumPy dtype of that name.

    Raises:
        TypeError: A name NumPy does not know.
    """
    if dtype == "bfloat16":
        return np.dtype(np.float32)
    return np.dtype(dtype)


def round_to_dtype(x: Any, dtype: str) -> np.ndarray:
    """``x`` rounded (nearest, ties to even) to ``dtype``, held in :func:`host_dtype`.

    Args:
        x: Host data (a NumPy array, a list, a scalar).
        dtype: A floating dtype name (one of :data:`FLOAT_DTYPES`).

    Returns:
        The rounded values, bfloat16 ones as float32 exact in bfloat16.
    """
    x = np.asarray(x, dtype=np.float64)
    if dtype != "bfloat16":
        return x.astype(dtype)
    f32 = x.astype(np.float32)
    bits = f32.view(np.uint32).astype(np.uint64)
    # round to nearest even on the 16 dropped bits; NaN/inf are not produced by the strategies
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def float_dtypes(supported: Sequence[str] = FLOAT_DTYPES) -> st.SearchStrategy[str]:
    """One of the floating dtypes in ``supported`` (names), float32 first so it shrinks there.

    Args:
        supported: The dtype names to choose from.

    Returns:
        A strategy of dtype names.
    """
    order = [d for d in ("float32", "float64", "float16", "bfloat16") if d in supported]
    return st.sampled_from(order)


# ---------------------------------------------------------------------------------------------
# sizes


def batch_sizes(max_value: int = 4) -> st.SearchStrategy[int]:
    """Batch sizes ``1..max_value``.

    Args:
        max_value: The largest size.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def dims(max_value: int = 4) -> st.SearchStrategy[int]:
    """Embedding widths ``1..max_value``.

    Args:
        max_value: The largest width.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def num_classes(min_value: int = 1, max_value: int = 12) -> st.SearchStrategy[int]:
    """Class counts ``min_value..max_value``.

    Args:
        min_value: The smallest count.
        max_value: The largest count.

    Returns:
        A strategy of ints.
    """
    return st.integers(min_value, max_value)


def num_trues(max_value: int = 5) -> st.SearchStrategy[int]:
    """Labels per example, ``1..max_value``.

    Args:
        max_value: The largest count.

    Returns:
        A strategy of ints.
    """
    return st.integers(1, max_value)


def seeds() -> st.SearchStrategy[int]:
    """Seeds of the NumPy generator that fills a problem's payloads.

    Returns:
        A strategy of ints in ``[0, 2**32)``.
    """
    return st.integers(0, 2**32 - 1)


def partition_strategies() -> st.SearchStrategy[str]:
    """The two shard layouts.

    Returns:
        A strategy of ``"div"`` and ``"mod"``.
    """
    return st.sampled_from(["div", "mod"])


# ---------------------------------------------------------------------------------------------
# sharding (SEMANTICS 6)


def mod_shard_sizes(total: int, num_shards: int) -> list[int]:
    """Rows of each shard under "mod": shard p holds ids p, p+P, p+2P, ...

    Args:
        total: The rows of the whole table.
        num_shards: The number of shards ``P``.

    Returns:
        The number of rows of each shard.
    """
    return [len(range(p, total, num_shards)) for p in range(num_shards)]


def div_shard_sizes(total: int, num_shards: int) -> list[int]:
    """Rows of each shard under "div": the first ``total % P`` shards hold one row more.

    Args:
        total: The rows of the whole table.
        num_shards: The number of shards ``P``.

    Returns:
        The number of rows of each shard.
    """
    q, r = divmod(total, num_shards)
    return [q + 1 if p < r else q for p in range(num_shards)]


def shard_weights(full: np.ndarray, num_shards: int, partition_strategy: str) -> list[np.ndarray]:
    """Split a ``[C, ...]`` table into the shard list whose lookup under ``partition_strategy``
    reproduces ``full`` (ids are global row numbers of ``full``).

    Args:
        full: The whole table, ``[C, ...]``.
        num_shards: The number of shards.
        partition_strategy: ``"div"`` or ``"mod"``.

    Returns:
        The shards, copies of ``full``'s rows.

    Raises:
        ValueError: Another ``partition_strategy``.
    """
    total = full.shape[0]
    if partition_strategy == "mod":
        return [full[p::num_shards].copy() for p in range(num_shards)]
    if partition_strategy == "div":
        sizes = div_shard_sizes(total, num_shards)
        bounds = np.cumsum([0] + sizes)
        return [full[bounds[p] : bounds[p + 1]].copy() for p in range(num_shards)]
    raise ValueError(f"partition_strategy must be 'div' or 'mod', got {partition_strategy!r}")
