"""Sharded embedding lookup: "mod" and "div" against an independent layout reference
(SEMANTICS 6)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from multisampled._context import context
from multisampled._partition import check_shards, embedding_lookup


def layout_reference(total, num_shards, strategy):
    """Global id of every (shard, local row), built by enumerating what each shard owns."""
    owned = [[] for _ in range(num_shards)]
    if strategy == "mod":
        for i in range(total):
            owned[i % num_shards].append(i)
    else:  # "div": consecutive blocks, the first (total mod P) blocks one longer
        base, extra = divmod(total, num_shards)
        start = 0
        for p in range(num_shards):
            size = base + (1 if p < extra else 0)
            owned[p] = list(range(start, start + size))
            start += size
    return owned


def make_shards(table, num_shards, strategy):
    """Split a global ``[N, ...]`` table into shards following the layout."""
    owned = layout_reference(table.shape[0], num_shards, strategy)
    return [table[np.asarray(ids, dtype=np.int64)] for ids in owned]


def lookup(shards, ids, strategy, rank=2):
    ctx = context(*shards)
    checked, total = check_shards(ctx, "weights", shards, strategy, rank)
    return embedding_lookup(ctx, checked, total, np.asarray(ids, dtype=np.int64), strategy)


@given(
    total=st.integers(1, 23),
    num_shards=st.integers(1, 6),
    strategy=st.sampled_from(["mod", "div"]),
    data=st.data(),
)
def test_lookup_matches_layout(total, num_shards, strategy, data):
    if strategy == "div" and total < num_shards:
        num_shards = total
    table = np.arange(total * 3, dtype=np.float64).reshape(total, 3) + 0.5
    ids = data.draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=12))
    shards = make_shards(table, num_shards, strategy)
    got = lookup(shards, ids, strategy)
    np.testing.assert_array_equal(got, table[np.asarray(ids)])
    got_b = lookup([s[:, 0] for s in shards], ids, strategy, rank=1)
    np.testing.assert_array_equal(got_b, table[np.asarray(ids), 0])


def test_div_example_13_over_5():
    owned = layout_reference(13, 5, "div")
    assert owned == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10], [11, 12]]
    table = np.arange(13, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    shards = [table[0:3], table[3:6], table[6:9], table[9:11], table[11:13]]
    got = lookup(shards, list(range(13)), "div")
    np.testing.assert_array_equal(got[:, 0], np.arange(13))


def test_mod_and_div_read_different_rows_for_uneven_shards():
    table = np.arange(10, dtype=np.float32)[:, None]
    shards = [table[0:4], table[4:7], table[7:10]]  # sizes [4, 3, 3]: valid for both layouts
    ids = list(range(10))
    div = lookup(shards, ids, "div")[:, 0]
    mod = lookup(shards, ids, "mod")[:, 0]
    np.testing.assert_array_equal(div, np.arange(10))  # "div" = concatenation order
    # "mod": id i is row i // 3 of shard i % 3
    expected_mod = [float(shards[i % 3][i // 3, 0]) for i in ids]
    np.testing.assert_array_equal(mod, expected_mod)
    assert not np.array_equal(div, mod)


def test_single_shard_ignores_strategy():
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    got = lookup([table], [2, 0], "no-such-strategy")
    np.testing.assert_array_equal(got, table[[2, 0]])
    got = lookup(table, [1], None)
    np.testing.assert_array_equal(got, table[[1]])


def test_mod_with_fewer_rows_than_shards():
    table = np.arange(2, dtype=np.float32)[:, None]
    shards = [table[0:1], table[1:2], np.zeros((0, 1), np.float32)]
    got = lookup(shards, [1, 0, 1], "mod")
    np.testing.assert_array_equal(got[:, 0], [1, 0, 1])


@pytest.mark.parametrize("strategy", ["mod", "div"])
def test_sizes_off_layout_raise(strategy):
    shards = [np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((4, 2))]
    with pytest.raises(
        ValueError, match=r"weights: shard sizes \[3, 3, 4\].*expected sizes \[4, 3, 3\]"
    ):
        lookup(shards, [0], strategy)


def test_unknown_strategy_raises_with_several_shards():
    shards = [np.zeros((2, 2)), np.zeros((2, 2))]
    with pytest.raises(ValueError, match=r"partition_strategy.*\['mod', 'div'\].*'bogus'"):
        lookup(shards, [0], "bogus")


def test_div_with_fewer_rows_than_shards_raises():
    shards = [np.zeros((1, 2)), np.zeros((0, 2)), np.zeros((0, 2))]
    with pytest.raises(ValueError, match=r"weights.*'div'.*1 rows over 3 shards"):
        lookup(shards, [0], "div")


def test_mismatched_shard_width_and_dtype_raise():
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        lookup([np.zeros((2, 2)), np.zeros((2, 3))], [0], "div")
    with pytest.raises(TypeError, match=r"weights\[1\] is float32"):
        lookup([np.zeros((2, 2)), np.zeros((2, 2), np.float32)], [0], "div")
    with pytest.raises(ValueError, match=r"weights must be an array or a non-empty list"):
        lookup([], [0], "div")
