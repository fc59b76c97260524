"""compute_accidental_hits and the dense hit mask against a reference written from SEMANTICS 4."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import multisampled as ms
from multisampled._context import context
from multisampled._hits import hit_mask, last_occurrence

FLT_MAX = float(np.finfo(np.float32).max)


def hits_reference(true_classes, candidates):
    """TF's kernel: value -> position map overwritten in position order, then rows, columns."""
    position = {}
    for j, value in enumerate(candidates):
        position[int(value)] = j
    rows, ids = [], []
    for i, row in enumerate(true_classes):
        for value in row:
            if int(value) in position:
                rows.append(i)
                ids.append(position[int(value)])
    return rows, ids


def labels_and_candidates(max_class=8):
    return st.tuples(
        st.integers(0, 5),  # batch
        st.integers(1, 3),  # num_true
        st.integers(0, 7),  # num sampled
    ).flatmap(
        lambda bts: st.tuples(
            st.lists(
                st.lists(st.integers(0, max_class), min_size=bts[1], max_size=bts[1]),
                min_size=bts[0],
                max_size=bts[0],
            ),
            st.lists(st.integers(0, max_class), min_size=bts[2], max_size=bts[2]),
            st.just(bts[1]),
        )
    )


@given(labels_and_candidates())
def test_matches_reference(case):
    labels, candidates, num_true = case
    true_classes = np.asarray(labels, dtype=np.int64).reshape(len(labels), num_true)
    sampled = np.asarray(candidates, dtype=np.int64)
    indices, ids, weights = ms.compute_accidental_hits(true_classes, sampled, num_true)
    rows, positions = hits_reference(true_classes, sampled)
    assert indices.dtype == np.int32 and ids.dtype == np.int64 and weights.dtype == np.float32
    np.testing.assert_array_equal(indices, rows)
    np.testing.assert_array_equal(ids, positions)
    np.testing.assert_array_equal(weights, np.full(len(rows), -FLT_MAX, np.float32))


@given(labels_and_candidates())
def test_dense_mask_matches_reference(case):
    labels, candidates, num_true = case
    true_classes = np.asarray(labels, dtype=np.int64).reshape(len(labels), num_true)
    sampled = np.asarray(candidates, dtype=np.int64)
    ctx = context(true_classes)
    mask = hit_mask(ctx.xp, true_classes, sampled)
    expected = np.zeros((len(labels), len(candidates)), bool)
    for i, j in zip(*hits_reference(true_classes, sampled)):
        expected[i, j] = True
    np.testing.assert_array_equal(mask, expected)


@given(st.lists(st.integers(-3, 4), max_size=12))
def test_last_occurrence(values):
    candidates = np.asarray(values, dtype=np.int64)
    got = last_occurrence(context(candidates).xp, candidates)
    expected = [
        all(values[k] != values[j] for k in range(j + 1, len(values))) for j in range(len(values))
    ]
    np.testing.assert_array_equal(got, np.asarray(expected, bool).reshape(-1))


def test_duplicated_candidate_reports_last_position_and_repeated_label_twice():
    indices, ids, _ = ms.compute_accidental_hits(
        np.array([[1, 2], [3, 3]]), np.array([3, 1, 3, 0]), num_true=2
    )
    np.testing.assert_array_equal(indices, [0, 1, 1])
    np.testing.assert_array_equal(ids, [1, 2, 2])


def test_no_hits_gives_empty_outputs():
    indices, ids, weights = ms.compute_accidental_hits(np.array([[5]]), np.array([1, 2]), 1)
    assert indices.shape == ids.shape == weights.shape == (0,)


def test_int32_inputs_accepted():
    indices, ids, _ = ms.compute_accidental_hits(
        np.array([[2]], np.int32), np.array([2, 2], np.int32), 1
    )
    np.testing.assert_array_equal(indices, [0])
    np.testing.assert_array_equal(ids, [1])


def test_errors():
    with pytest.raises(ValueError, match=r"true_classes must have shape \[\?, 2\]"):
        ms.compute_accidental_hits(np.zeros((2, 3), np.int64), np.zeros(2, np.int64), 2)
    with pytest.raises(ValueError, match=r"true_classes must be a rank-2"):
        ms.compute_accidental_hits(np.zeros(3, np.int64), np.zeros(2, np.int64), 1)
    with pytest.raises(ValueError, match=r"sampled_candidates must be a rank-1"):
        ms.compute_accidental_hits(np.zeros((2, 1), np.int64), np.zeros((2, 1), np.int64), 1)
    with pytest.raises(TypeError, match=r"true_classes must have an integer dtype"):
        ms.compute_accidental_hits(np.zeros((2, 1)), np.zeros(2, np.int64), 1)
    with pytest.raises(TypeError, match=r"sampled_candidates must have an integer dtype"):
        ms.compute_accidental_hits(np.zeros((2, 1), np.int64), np.zeros(2), 1)
    with pytest.raises(ValueError, match=r"num_true must be a positive int"):
        ms.compute_accidental_hits(np.zeros((2, 1), np.int64), np.zeros(2, np.int64), 0)


@settings(max_examples=5)
@given(labels_and_candidates())
def test_matches_tensorflow(case):
    tf = pytest.importorskip("tensorflow")
    labels, candidates, num_true = case
    true_classes = np.asarray(labels, dtype=np.int64).reshape(len(labels), num_true)
    sampled = np.asarray(candidates, dtype=np.int64)
    t_idx, t_ids, t_w = tf.nn.compute_accidental_hits(true_classes, sampled, num_true)
    indices, ids, weights = ms.compute_accidental_hits(true_classes, sampled, num_true)
    np.testing.assert_array_equal(indices, t_idx.numpy())
    np.testing.assert_array_equal(ids, t_ids.numpy())
    np.testing.assert_array_equal(weights, t_w.numpy())
