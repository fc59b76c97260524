"""The loss family against an independent float64 NumPy reference (written from SEMANTICS 3, 4,
6, 7, 9, 10) and, where it imports, the real TensorFlow."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import multisampled as ms
from multisampled import v1

FLT_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------------------------
# reference (float64, loops, straight from SEMANTICS.md)


def ref_global_table(shards, strategy):
    """The global ``[N, ...]`` table a list of shards stands for (SEMANTICS 6)."""
    if len(shards) == 1:
        return np.asarray(shards[0], np.float64)
    num = len(shards)
    total = sum(len(s) for s in shards)
    table = [None] * total
    if strategy == "mod":
        for p, shard in enumerate(shards):
            for r, row in enumerate(shard):
                table[r * num + p] = row
    else:
        table = [row for shard in shards for row in shard]
    return np.asarray(table, np.float64)


def ref_hits(labels, candidates):
    position = {}
    for j, value in enumerate(candidates):
        position[int(value)] = j
    return {
        (i, position[int(v)]) for i, row in enumerate(labels) for v in row if int(v) in position
    }


def ref_sampled_logits(W, b, x, labels, cand, tq, sq, subtract_log_q=True, remove=False):
    B, T = labels.shape
    S = len(cand)
    tq = np.broadcast_to(np.asarray(tq, np.float64), (B, T))
    sq = np.broadcast_to(np.asarray(sq, np.float64), (S,))
    hits = ref_hits(labels, cand) if remove else set()
    z = np.zeros((B, T + S))
    for i in range(B):
        for t in range(T):
            c = labels[i, t]
            z[i, t] = x[i] @ W[c] + b[c] - (math.log(tq[i, t]) if subtract_log_q else 0.0)
        for j in range(S):
            c = cand[j]
            v = x[i] @ W[c] + b[c]
            if (i, j) in hits:
                v += -FLT_MAX
            if subtract_log_q:
                v -= math.log(sq[j])
            z[i, T + j] = v
    y = np.zeros((B, T + S))
    y[:, :T] = 1.0 / T
    return z, y


def ref_logsumexp(v):
    m = max(v)
    return m + math.log(sum(math.exp(a - m) for a in v))


def ref_softmax_ce(z, y):
    return np.array(
        [
            -sum(y[i, c] * (z[i, c] - ref_logsumexp(z[i])) for c in range(z.shape[1]))
            for i in range(z.shape[0])
        ]
    )


def ref_sigmoid_ce(z, y):
    out = np.zeros(z.shape[0])
    for i in range(z.shape[0]):
        for c in range(z.shape[1]):
            a = z[i, c]
            # log(1 + e^-a) for the label-y logistic loss, split to stay finite at -FLT_MAX
            softplus_neg = math.log1p(math.exp(-a)) if a > 0 else -a + math.log1p(math.exp(a))
            out[i] += softplus_neg + (1.0 - y[i, c]) * a
    return out


def ref_sampled_softmax(W, b, x, labels, cand, tq, sq, remove=True):
    return ref_softmax_ce(*ref_sampled_logits(W, b, x, labels, cand, tq, sq, True, remove))


def ref_nce(W, b, x, labels, cand, tq, sq, remove=False):
    return ref_sigmoid_ce(*ref_sampled_logits(W, b, x, labels, cand, tq, sq, True, remove))


def ref_rank(W, b, x, labels, cand, tq, sq, num_resampled, tau, remove=True):
    scores = [ref_logsumexp([W[c] @ x[j] / tau for j in range(len(x))]) + b[c] / tau for c in cand]
    keep = sorted(range(len(cand)), key=lambda j: (-scores[j], j))[:num_resampled]
    sq = np.broadcast_to(np.asarray(sq, np.float64), (len(cand),))
    return ref_sampled_softmax(W, b, x, labels, np.asarray(cand)[keep], tq, sq[keep], remove)


def ref_paddle(logits, samples, probs, num_true, remove=True):
    """(loss [N], d loss.sum() / d logits [N, K]) of Paddle's layer with 1/T soft labels."""
    logits = np.asarray(logits, np.float64)
    N, K = logits.shape

    def clamp(v):
        return 1e20 if v == math.inf else (-1e20 if v == -math.inf else v)

    loss = np.zeros(N)
    grad = np.zeros((N, K))
    for i in range(N):
        true_set = set(int(v) for v in samples[i, :num_true])
        z = []
        for k in range(samples.shape[1]):
            v = logits[i, samples[i, k]]
            if remove and k >= num_true and int(samples[i, k]) in true_set:
                v -= 1e20
            z.append(clamp(v - clamp(math.log(probs[i, k]))))
        m = max(z)
        c = [max(v - m, -64.0) for v in z]
        total = sum(math.exp(v) for v in c)
        loss[i] = math.log(total) - sum(c[:num_true]) / num_true
        for k in range(len(c)):
            label = 1.0 / num_true if k < num_true else 0.0
            grad[i, samples[i, k]] += math.exp(c[k]) / total - label
    return loss, grad


# ---------------------------------------------------------------------------------------------
# cases


@dataclasses.dataclass
class Case:
    W: np.ndarray  # [C, D] float32
    b: np.ndarray
    x: np.ndarray
    labels: np.ndarray  # [B, T] int64
    cand: np.ndarray  # [S] int64
    tq: np.ndarray  # [B, T] float32
    sq: np.ndarray  # [S] float32
    num_shards: int
    strategy: str

    @property
    def C(self):
        return self.W.shape[0]

    @property
    def T(self):
        return self.labels.shape[1]

    @property
    def S(self):
        return len(self.cand)

    def sv(self):
        return (self.cand, self.tq, self.sq)

    def shards(self, table):
        """``table`` split into shards following the case's layout."""
        P, N = self.num_shards, table.shape[0]
        if P == 1:
            return [table]
        if self.strategy == "mod":
            return [table[p::P] for p in range(P)]
        q, r = divmod(N, P)
        sizes = [q + 1 if p < r else q for p in range(P)]
        return np.split(table, np.cumsum(sizes)[:-1])

    def ref64(self):
        return (
            self.W.astype(np.float64),
            self.b.astype(np.float64),
            self.x.astype(np.float64),
            self.labels,
            self.cand,
            self.tq.astype(np.float64),
            self.sq.astype(np.float64),
        )


@st.composite
def cases(draw, max_batch=5, max_true=3, max_classes=12, max_shards=4, unique=None):
    B = draw(st.integers(1, max_batch))
    T = draw(st.integers(1, max_true))
    C = draw(st.integers(2, max_classes))
    D = draw(st.integers(1, 4))
    if unique is None:
        unique = draw(st.booleans())
    if unique:
        S = draw(st.integers(1, C))
        cand = draw(st.permutations(range(C)))[:S]
    else:
        S = draw(st.integers(1, 8))
        cand = draw(st.lists(st.integers(0, C - 1), min_size=S, max_size=S))
    labels = draw(st.lists(st.integers(0, C - 1), min_size=B * T, max_size=B * T))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P = draw(st.integers(1, min(max_shards, C)))
    return Case(
        W=rng.standard_normal((C, D)).astype(np.float32),
        b=rng.standard_normal(C).astype(np.float32),
        x=rng.standard_normal((B, D)).astype(np.float32),
        labels=np.asarray(labels, np.int64).reshape(B, T),
        cand=np.asarray(cand, np.int64),
        tq=rng.uniform(0.05, 2.0, (B, T)).astype(np.float32),
        sq=rng.uniform(0.05, 2.0, S).astype(np.float32),
        num_shards=P,
        strategy=draw(st.sampled_from(["mod", "div"])),
    )


def close(got, expected, rtol=2e-5, atol=2e-5):
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# values against the reference


@given(cases(), st.booleans(), st.booleans())
def test_compute_sampled_logits(case, subtract_log_q, remove):
    logits, labels = ms.compute_sampled_logits(
        case.shards(case.W),
        case.shards(case.b),
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        subtract_log_q=subtract_log_q,
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    )
    W, b, x, y, cand, tq, sq = case.ref64()
    z, ylab = ref_sampled_logits(W, b, x, y, cand, tq, sq, subtract_log_q, remove)
    assert logits.dtype == np.float32 and logits.shape == (case.labels.shape[0], case.T + case.S)
    close(logits, z)
    np.testing.assert_array_equal(labels, ylab.astype(np.float32))


@given(cases(), st.booleans())
def test_sampled_softmax_loss(case, remove):
    loss = ms.sampled_softmax_loss(
        case.shards(case.W),
        case.shards(case.b),
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    )
    assert loss.dtype == np.float32 and loss.shape == (case.labels.shape[0],)
    close(loss, ref_sampled_softmax(*case.ref64(), remove=remove))


@given(cases(), st.booleans())
def test_nce_loss(case, remove):
    loss = ms.nce_loss(
        case.shards(case.W),
        case.shards(case.b),
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    )
    assert loss.dtype == np.float32
    close(loss, ref_nce(*case.ref64(), remove=remove))


@given(cases(unique=True), st.data())
def test_rank_sampled_softmax_loss(case, data):
    if case.S < 2:
        case = dataclasses.replace(case, cand=np.arange(2), sq=np.ones(2, np.float32))
    num_resampled = data.draw(st.integers(1, case.S - 1))
    tau = data.draw(st.sampled_from([0.5, 1.0, 3.0]))
    remove = data.draw(st.booleans())
    W, b, x, y, cand, tq, sq = case.ref64()
    loss = ms.rank_sampled_softmax_loss(
        case.shards(W),
        case.shards(b),
        y,
        x,
        case.S,
        num_resampled,
        case.C,
        num_true=case.T,
        sampled_values=(cand, tq, sq),
        resampling_temperature=tau,
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    )
    assert loss.dtype == np.float64
    close(loss, ref_rank(W, b, x, y, cand, tq, sq, num_resampled, tau, remove), 1e-10, 1e-10)


def test_rank_ties_keep_the_earlier_candidate():
    # classes 1 and 2 have identical rows, so identical scores; top-1 keeps position 0 (TF top_k)
    W = np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 2.0], [-4.0, 0.0]])
    b = np.zeros(4)
    x = np.array([[1.0, 0.5]])
    labels = np.array([[0]])
    tq = np.ones((1, 1))
    for cand, sq in (([1, 2, 3], [0.5, 0.25, 1.0]), ([2, 1, 3], [0.25, 0.5, 1.0])):
        cand, sq = np.array(cand), np.array(sq)
        loss = ms.rank_sampled_softmax_loss(W, b, labels, x, 3, 1, 4, sampled_values=(cand, tq, sq))
        expected = ref_sampled_softmax(W, b, x, labels, cand[:1], tq, sq[:1])
        close(loss, expected, 1e-12, 1e-12)
        other = ref_sampled_softmax(W, b, x, labels, cand[1:2], tq, sq[1:2])
        assert abs(expected[0] - other[0]) > 1e-3  # the choice matters


def test_rank_temperature_as_array():
    rng = np.random.default_rng(3)
    W, b, x = rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal((4, 3))
    labels = np.array([[0], [1], [2], [3]])
    cand, tq, sq = np.array([5, 1, 4, 2]), np.full((4, 1), 0.3), np.full(4, 0.7)
    got = ms.rank_sampled_softmax_loss(
        W,
        b,
        labels,
        x,
        4,
        2,
        6,
        sampled_values=(cand, tq, sq),
        resampling_temperature=np.asarray(0.25),
    )
    close(got, ref_rank(W, b, x, labels, cand, tq, sq, 2, 0.25), 1e-12, 1e-12)


@given(cases(), st.booleans())
def test_float64_is_computed_in_float64(case, remove):
    W, b, x, y, cand, tq, sq = case.ref64()
    loss = ms.sampled_softmax_loss(
        W,
        b,
        y,
        x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=(cand, tq, sq),
        remove_accidental_hits=remove,
    )
    assert loss.dtype == np.float64
    close(loss, ref_sampled_softmax(W, b, x, y, cand, tq, sq, remove), 1e-12, 1e-12)


# ---------------------------------------------------------------------------------------------
# required properties


@given(st.integers(2, 12), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_all_candidates_equals_full_softmax(C, B, seed):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((C, 3)), rng.standard_normal(C)
    x = rng.standard_normal((B, 3))
    labels = rng.integers(0, C, (B, 1))
    all_candidates = (np.arange(C), np.ones((B, 1)), np.ones(C))
    loss = ms.sampled_softmax_loss(W, b, labels, x, C, C, sampled_values=all_candidates)
    logits = x @ W.T + b
    full = np.log(np.exp(logits).sum(1)) - logits[np.arange(B), labels[:, 0]]
    close(loss, full, 1e-12, 1e-12)


def simple_params(C=6, D=2, B=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((C, D)), rng.standard_normal(C), rng.standard_normal((B, D))


def test_duplicated_sampled_id_masks_only_last_copy():
    W, b, x = simple_params()
    labels = np.array([[3], [1]])
    cand = np.array([3, 0, 3])
    logits, _ = ms.compute_sampled_logits(
        W,
        b,
        labels,
        x,
        3,
        6,
        sampled_values=(cand, np.ones((2, 1)), np.ones(3)),
        remove_accidental_hits=True,
    )
    plain = x @ W.T + b
    close(logits[0, 1], plain[0, 3], 1e-12, 1e-12)  # first copy of 3 keeps its logit
    assert logits[0, 3] == pytest.approx(-FLT_MAX, rel=1e-12)  # last copy masked
    close(logits[1, 1:], plain[1, [3, 0, 3]], 1e-12, 1e-12)  # row 1's label is 1: nothing masked


def test_duplicated_true_labels_double_the_denominator():
    W, b, x = simple_params(B=1)
    labels = np.array([[2, 2]])
    cand = np.array([0, 4])
    loss = ms.sampled_softmax_loss(
        W, b, labels, x, 2, 6, num_true=2, sampled_values=(cand, np.ones((1, 2)), np.ones(2))
    )
    z = x[0] @ W.T + b
    expected = math.log(2 * math.exp(z[2]) + math.exp(z[0]) + math.exp(z[4])) - z[2]
    close(loss, [expected], 1e-12, 1e-12)


def test_accidental_hits_are_per_row():
    W, b, x = simple_params(B=3)
    labels = np.array([[2, 5], [5, 0], [1, 1]])
    cand = np.array([5, 2, 3])
    logits, _ = ms.compute_sampled_logits(
        W,
        b,
        labels,
        x,
        3,
        6,
        num_true=2,
        sampled_values=(cand, np.ones((3, 2)), np.ones(3)),
        remove_accidental_hits=True,
        subtract_log_q=False,
    )
    masked = np.asarray(logits[:, 2:]) < -1e38
    np.testing.assert_array_equal(
        masked, [[True, True, False], [True, False, False], [False, False, False]]
    )


def test_log_q_subtraction():
    W, b, x = simple_params(B=2)
    labels = np.array([[1], [4]])
    cand = np.array([0, 2, 5])
    tq, sq = np.array([[0.5], [2.0]]), np.array([0.1, 1.0, 3.0])
    args = (W, b, labels, x, 3, 6)
    with_q, _ = ms.compute_sampled_logits(*args, sampled_values=(cand, tq, sq))
    without, _ = ms.compute_sampled_logits(
        *args, sampled_values=(cand, tq, sq), subtract_log_q=False
    )
    close(
        np.asarray(without) - np.asarray(with_q),
        np.concatenate([np.log(tq), np.broadcast_to(np.log(sq), (2, 3))], 1),
        1e-12,
        1e-12,
    )


def test_true_expected_count_broadcasts():
    W, b, x = simple_params(B=3)
    labels = np.array([[1], [4], [0]])
    cand, sq = np.array([0, 2]), np.array([0.3, 0.6])
    got = ms.sampled_softmax_loss(W, b, labels, x, 2, 6, sampled_values=(cand, np.array([0.7]), sq))
    close(got, ref_sampled_softmax(W, b, x, labels, cand, np.full((3, 1), 0.7), sq), 1e-12, 1e-12)


@given(cases(max_shards=5, unique=True))
def test_v1_mod_and_div_shards_match_reference(case):
    W32 = case.W
    for strategy in ("mod", "div"):
        shards = dataclasses.replace(case, strategy=strategy).shards(W32)
        bshards = dataclasses.replace(case, strategy=strategy).shards(case.b)
        got = v1.sampled_softmax_loss(
            shards,
            bshards,
            case.labels,
            case.x,
            case.S,
            case.C,
            num_true=case.T,
            sampled_values=case.sv(),
            partition_strategy=strategy,
        )
        W, b, x, y, cand, tq, sq = case.ref64()
        Wg = ref_global_table([s.astype(np.float64) for s in shards], strategy)
        bg = ref_global_table([s.astype(np.float64) for s in bshards], strategy)
        np.testing.assert_array_equal(Wg, W)  # the sharding round-trips
        close(got, ref_sampled_softmax(Wg, bg, x, y, cand, tq, sq))


def test_mod_and_div_read_different_rows():
    rng = np.random.default_rng(1)
    shards = [rng.standard_normal((4, 2)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))]
    bshards = [np.zeros(4), np.zeros(3), np.zeros(3)]
    labels, x = np.array([[1], [7]]), rng.standard_normal((2, 2))
    sv = (np.array([2, 5, 9]), np.ones((2, 1)), np.ones(3))
    losses = {}
    for strategy in ("mod", "div"):
        losses[strategy] = v1.sampled_softmax_loss(
            shards, bshards, labels, x, 3, 10, sampled_values=sv, partition_strategy=strategy
        )
        Wg = ref_global_table(shards, strategy)
        close(
            losses[strategy],
            ref_sampled_softmax(Wg, np.zeros(10), x, labels, sv[0], sv[1], sv[2]),
            1e-12,
            1e-12,
        )
    assert not np.allclose(losses["mod"], losses["div"])
    # the v1 default is "mod"
    close(
        v1.sampled_softmax_loss(shards, bshards, labels, x, 3, 10, sampled_values=sv),
        losses["mod"],
        0,
        0,
    )
    # v2 uses "div"
    close(
        ms.sampled_softmax_loss(shards, bshards, labels, x, 3, 10, sampled_values=sv),
        losses["div"],
        0,
        0,
    )


def test_length_mismatch_without_hit_removal_keeps_tf_behaviour():
    W, b, x = simple_params(B=2)
    labels = np.array([[1], [4]])
    cand, tq, sq = np.array([0, 2, 5]), np.ones((2, 1)), np.ones(3)
    got = ms.sampled_softmax_loss(
        W, b, labels, x, 7, 6, sampled_values=(cand, tq, sq), remove_accidental_hits=False
    )
    close(got, ref_sampled_softmax(W, b, x, labels, cand, tq, sq, remove=False), 1e-12, 1e-12)
    got = ms.nce_loss(W, b, labels, x, 1, 6, sampled_values=(cand, tq, sq))
    close(got, ref_nce(W, b, x, labels, cand, tq, sq), 1e-12, 1e-12)


def test_v1_positional_order():
    W, b, x = simple_params(B=2)
    labels = np.array([[1], [4]])
    sv = (np.array([0, 1, 4]), np.full((2, 1), 0.5), np.full(3, 0.5))
    # v1: ..., remove_accidental_hits, partition_strategy, name, seed
    a = v1.sampled_softmax_loss(W, b, labels, x, 3, 6, 1, sv, False, "mod", "name", None)
    close(a, ref_sampled_softmax(W, b, x, labels, *sv, remove=False), 1e-12, 1e-12)
    # v2: ..., remove_accidental_hits, seed, name
    a = ms.sampled_softmax_loss(W, b, labels, x, 3, 6, 1, sv, True, None, "name")
    close(a, ref_sampled_softmax(W, b, x, labels, *sv, remove=True), 1e-12, 1e-12)
    a = v1.nce_loss(W, b, labels, x, 3, 6, 1, sv, True, "div", "nce")
    close(a, ref_nce(W, b, x, labels, *sv, remove=True), 1e-12, 1e-12)


@pytest.mark.parametrize(
    "fn", [ms.sampled_softmax_loss, v1.sampled_softmax_loss, ms.nce_loss, v1.nce_loss]
)
def test_swapped_labels_and_inputs_raise(fn):
    W, b, x = simple_params(B=2)
    labels = np.array([[1], [4]])
    with pytest.raises(TypeError, match=r"look swapped \(TF 0\.x order"):
        fn(W, b, x, labels, 2, 6)


# ---------------------------------------------------------------------------------------------
# dtypes


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("remove", [True, False])
def test_float16_computes_in_float32_and_stays_finite(remove):
    W, b, x = simple_params(B=2)
    labels = np.array([[0], [3]])
    sv = (np.array([0, 1, 2]), np.full((2, 1), 0.5, np.float32), np.full(3, 0.5, np.float32))
    got = ms.sampled_softmax_loss(
        W.astype(np.float16),
        b.astype(np.float16),
        labels,
        x.astype(np.float16),
        3,
        6,
        sampled_values=sv,
        remove_accidental_hits=remove,
    )
    assert got.dtype == np.float16
    assert np.all(np.isfinite(got))  # row 0 has an accidental hit; TF gives NaN there
    ref = ref_sampled_softmax(
        W.astype(np.float16).astype(np.float64),
        b.astype(np.float16).astype(np.float64),
        x.astype(np.float16).astype(np.float64),
        labels,
        *sv,
        remove=remove,
    )
    close(got, ref, 2e-3, 2e-3)
    logits, _ = ms.compute_sampled_logits(
        W.astype(np.float16),
        b,
        labels,
        x.astype(np.float16),
        3,
        6,
        sampled_values=sv,
        remove_accidental_hits=True,
    )
    assert logits.dtype == np.float16 and np.isneginf(logits[0, 1])  # -FLT_MAX in float16


def test_float32_mask_is_finite_like_tf():
    W, b, x = simple_params(B=1)
    sv = (np.array([2]), np.ones((1, 1), np.float32), np.ones(1, np.float32))
    logits, _ = ms.compute_sampled_logits(
        W.astype(np.float32),
        b.astype(np.float32),
        np.array([[2]]),
        x.astype(np.float32),
        1,
        6,
        sampled_values=sv,
        remove_accidental_hits=True,
    )
    assert np.isfinite(logits[0, 1]) and logits[0, 1] < -3e38


def test_weights_of_another_dtype_are_cast_to_the_compute_dtype():
    W, b, x = simple_params(B=2)
    labels = np.array([[0], [3]])
    sv = (np.array([1, 2]), np.full((2, 1), 0.5), np.full(2, 0.5))
    got = ms.sampled_softmax_loss(
        W, b.astype(np.float32), labels, x.astype(np.float32), 2, 6, sampled_values=sv
    )
    assert got.dtype == np.float32
    close(
        got,
        ref_sampled_softmax(
            W.astype(np.float32).astype(np.float64),
            b.astype(np.float32),
            x.astype(np.float32),
            labels,
            *sv,
        ),
        1e-5,
        1e-5,
    )


# ---------------------------------------------------------------------------------------------
# Paddle


def test_paddle_clip_example_exact():
    logits = np.array([[-80.0, 80.0, 0.0, 1.0]], np.float32)
    samples = np.array([[0, 1, 2, 3]])
    loss = ms.sampled_softmax_with_cross_entropy(
        logits,
        np.array([[0]]),
        3,
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=np.ones((1, 4), np.float32),
    )
    assert loss.shape == (1, 1) and loss.dtype == np.float32
    assert loss[0, 0] == np.float32(64.0)


@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(2, 9),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_paddle_customized_per_row_samples(N, T, S, K, remove, seed):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, K)) * 30).astype(np.float32)  # some shifts below -64
    samples = rng.integers(0, K, (N, T + S))
    probs = rng.uniform(0.01, 1.5, (N, T + S)).astype(np.float32)
    label = rng.integers(0, K, (N, T))  # values unused with customized samples
    loss = ms.sampled_softmax_with_cross_entropy(
        logits,
        label,
        S,
        num_true=T,
        remove_accidental_hits=remove,
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=probs,
    )
    expected, _ = ref_paddle(logits, samples, probs.astype(np.float64), T, remove)
    assert loss.shape == (N, 1)
    close(loss[:, 0], expected, 1e-5, 1e-4)


def test_paddle_masks_every_matching_column():
    logits = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    samples = np.array([[2, 2, 1, 2]])
    probs = np.ones((1, 4), np.float32)
    loss = ms.sampled_softmax_with_cross_entropy(
        logits,
        np.array([[0]]),
        3,
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=probs,
    )
    # columns 1 and 3 are masked (both equal the true sample 2): they sit at the -64 clip
    c = [0.0, -64.0, -1.0, -64.0]
    expected = math.log(sum(math.exp(v) for v in c)) - 0.0
    close(loss[:, 0], [expected], 1e-6, 1e-6)


@given(st.integers(1, 40), st.data(), st.integers(1, 2**31))
def test_paddle_negatives_are_the_core_unique_log_uniform_draw(K, data, seed):
    """Paddle's default negatives: TF's unique log-uniform process on the core generator, a
    fresh stream of ``seed`` on every call (so the same negatives every call)."""
    from multisampled._context import context
    from multisampled._paddle import _paddle_negatives

    S = data.draw(st.integers(1, K))
    label = np.zeros((1, 1), dtype=np.int64)
    negatives, tries = _paddle_negatives(context(label), K, S, seed)
    again, tries_again = _paddle_negatives(context(label), K, S, seed)
    public = ms.log_uniform_candidate_sampler(label, 1, S, True, K, seed=ms.Generator(seed))
    np.testing.assert_array_equal(negatives, public.sampled_candidates)
    np.testing.assert_array_equal(negatives, again)
    assert tries == tries_again and S <= tries
    assert len(set(np.asarray(negatives).tolist())) == S


@pytest.mark.parametrize("K,S", [(50, 3), (8, 6)])  # without and (certainly) with rejections
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_paddle_default_samples_value(K, S, dtype):
    from multisampled._paddle import _paddle_negatives

    rng = np.random.default_rng(K)
    N, T, seed = 3, 2, 11
    logits = rng.standard_normal((N, K)).astype(dtype)
    label = rng.integers(0, K, (N, T))
    label[0, 1] = label[0, 0]
    loss = ms.sampled_softmax_with_cross_entropy(logits, label, S, num_true=T, seed=seed)
    assert loss.dtype == dtype
    from multisampled._context import context

    negatives, tries = _paddle_negatives(context(logits), K, S, seed)
    negatives = np.asarray(negatives)
    if K == 8:
        assert tries > S
    log_range = np.float64(np.float32(np.log(K + 1.0)))
    samples = np.concatenate([label, np.broadcast_to(negatives, (N, S))], axis=1)
    p = (np.log((samples + 2.0) / (samples + 1.0)) / log_range).astype(np.float32).astype(dtype)
    q = p * S if tries == S else 1.0 - (1.0 - p.astype(np.float64)) ** tries
    expected, _ = ref_paddle(logits, samples, q, T)
    close(loss[:, 0], expected, 1e-5, 1e-5)


def test_paddle_seed_semantics():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 500)).astype(np.float32)
    label = rng.integers(0, 500, (4, 1))
    a = ms.sampled_softmax_with_cross_entropy(logits, label, 20, seed=5)
    b = ms.sampled_softmax_with_cross_entropy(logits, label, 20, seed=5)
    np.testing.assert_array_equal(a, b)  # a nonzero seed repeats the negatives every call
    c = ms.sampled_softmax_with_cross_entropy(logits, label, 20, seed=6)
    assert not np.array_equal(a, c)
    fresh = [ms.sampled_softmax_with_cross_entropy(logits, label, 20) for _ in range(3)]
    assert not (np.array_equal(fresh[0], fresh[1]) and np.array_equal(fresh[1], fresh[2]))


def test_paddle_num_true_2_is_the_mean_over_true_columns():
    logits = np.array([[0.5, 2.0, -1.0, 0.0]])
    samples = np.array([[0, 1, 2, 3]])
    loss = ms.sampled_softmax_with_cross_entropy(
        logits,
        np.array([[0, 1]]),
        2,
        num_true=2,
        use_customized_samples=True,
        customized_samples=samples,
        customized_probabilities=np.ones((1, 4)),
    )
    lse = math.log(sum(math.exp(v) for v in logits[0]))
    close(loss[:, 0], [0.5 * ((lse - 0.5) + (lse - 2.0))], 1e-12, 1e-12)  # no extra / num_true


# ---------------------------------------------------------------------------------------------
# default samplers (skipped while the sampler module is not available)


def _call_or_skip(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        pytest.skip("the default candidate sampler is not implemented yet")


@pytest.mark.parametrize("fn", [ms.sampled_softmax_loss, ms.nce_loss, v1.sampled_softmax_loss])
def test_default_sampler_path(fn):
    W, b, x = simple_params(C=30, B=4)
    labels = np.array([[1], [4], [29], [0]])
    loss = _call_or_skip(
        fn, W.astype(np.float32), b.astype(np.float32), labels, x.astype(np.float32), 5, 30
    )
    assert loss.shape == (4,) and loss.dtype == np.float32 and np.all(np.isfinite(loss))


def test_default_sampler_float64_inputs_are_cast():
    W, b, x = simple_params(C=30, B=4)
    loss = _call_or_skip(
        ms.sampled_softmax_loss, W, b, np.array([[1], [4], [29], [0]]), x, 5, 30, seed=3
    )
    assert loss.dtype == np.float64 and np.all(np.isfinite(loss))


def test_rank_default_sampler_path():
    W, b, x = simple_params(C=30, B=4)
    loss = _call_or_skip(
        ms.rank_sampled_softmax_loss, W, b, np.array([[1], [4], [29], [0]]), x, 6, 3, 30, seed=1
    )
    assert loss.shape == (4,) and np.all(np.isfinite(loss))


# ---------------------------------------------------------------------------------------------
# gradients on PyTorch (generic Array API path)


@pytest.fixture
def torch_with_stop_gradient(monkeypatch):
    """Give torch arrays a ``stop_gradient`` (``detach``) when no torch plugin provides one."""
    torch = pytest.importorskip("torch")
    from multisampled import _context, _paddle, _tf_losses, plugin

    original = _context.context

    def context(*arrays, backend=None):
        ctx = original(*arrays, backend=backend)
        if (ctx.backend.module == "torch"
                and type(ctx.backend).stop_gradient is plugin.Backend.stop_gradient):

            class Detaching(type(ctx.backend)):
                def stop_gradient(self, t):
                    return t.detach()

            ctx = _context.Ctx(Detaching(), ctx.xp, ctx.device)
        return ctx

    monkeypatch.setattr(_tf_losses, "context", context)
    monkeypatch.setattr(_paddle, "context", context)
    return torch


def finite_difference(f, arrays, eps=1e-6):
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            hi = f()
            a[idx] = old - eps
            lo = f()
            a[idx] = old
            g[idx] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


@settings(max_examples=5)
@given(
    cases(max_batch=3, max_classes=6, max_shards=1),
    st.booleans(),
    st.sampled_from(["softmax", "nce"]),
)
def test_torch_gradients_match_finite_differences(case, remove, which):
    torch = pytest.importorskip("torch")
    W, b, x, y, cand, tq, sq = (np.array(a) for a in case.ref64())
    fn, ref = (
        (ms.sampled_softmax_loss, ref_sampled_softmax)
        if which == "softmax"
        else (ms.nce_loss, ref_nce)
    )
    tW, tb, tx = (torch.tensor(a, requires_grad=True) for a in (W, b, x))
    loss = fn(
        tW,
        tb,
        torch.tensor(y),
        tx,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=(torch.tensor(cand), torch.tensor(tq), torch.tensor(sq)),
        remove_accidental_hits=remove,
    )
    loss.sum().backward()
    expected = finite_difference(lambda: ref(W, b, x, y, cand, tq, sq, remove).sum(), [W, b, x])
    for got, want in zip((tW.grad, tb.grad, tx.grad), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_torch_paddle_gradient_example(torch_with_stop_gradient):
    torch = torch_with_stop_gradient
    logits = torch.tensor([[-80.0, 80.0, 0.0, 1.0]], requires_grad=True)
    loss = ms.sampled_softmax_with_cross_entropy(
        logits,
        torch.tensor([[0]]),
        3,
        use_customized_samples=True,
        customized_samples=torch.tensor([[0, 1, 2, 3]]),
        customized_probabilities=torch.ones((1, 4)),
    )
    loss.sum().backward()
    assert loss.item() == 64.0
    np.testing.assert_array_equal(
        logits.grad.numpy(), np.array([[-1.0, 1.0, 1.6038109e-28, 1.6038109e-28]], np.float32)
    )


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 4),
    st.integers(2, 7),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_torch_paddle_gradient_is_softmax_minus_label(
    torch_with_stop_gradient, N, T, S, K, remove, seed
):
    torch = torch_with_stop_gradient
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, K)) * 40
    samples = rng.integers(0, K, (N, T + S))
    probs = rng.uniform(0.05, 1.0, (N, T + S))
    t_logits = torch.tensor(logits, requires_grad=True)
    t_probs = torch.tensor(probs, requires_grad=True)
    loss = ms.sampled_softmax_with_cross_entropy(
        t_logits,
        torch.tensor(samples[:, :T]),
        S,
        num_true=T,
        remove_accidental_hits=remove,
        use_customized_samples=True,
        customized_samples=torch.tensor(samples),
        customized_probabilities=t_probs,
    )
    loss.sum().backward()
    expected_loss, expected_grad = ref_paddle(logits, samples, probs, T, remove)
    np.testing.assert_allclose(loss.detach().numpy()[:, 0], expected_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(t_logits.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-12)
    assert t_probs.grad is None or not torch.any(t_probs.grad != 0)


def test_torch_no_gradient_into_sampled_values():
    torch = pytest.importorskip("torch")
    W, b, x = (torch.tensor(a) for a in simple_params(B=2))
    tq = torch.full((2, 1), 0.5, dtype=torch.float64, requires_grad=True)
    sq = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    loss = ms.sampled_softmax_loss(
        W, b, torch.tensor([[0], [3]]), x, 3, 6, sampled_values=(torch.tensor([1, 2, 3]), tq, sq)
    )
    assert loss.dtype == torch.float64
    if loss.requires_grad:
        loss.sum().backward()
        for g in (tq.grad, sq.grad):
            assert g is None or not torch.any(g != 0)


def test_torch_bfloat16_returns_bfloat16():
    torch = pytest.importorskip("torch")
    W, b, x = (torch.tensor(a, dtype=torch.bfloat16) for a in simple_params(B=2))
    loss = ms.sampled_softmax_loss(
        W,
        b,
        torch.tensor([[0], [3]]),
        x,
        3,
        6,
        sampled_values=(torch.tensor([0, 2, 3]), torch.ones((2, 1)), torch.ones(3)),
    )
    assert loss.dtype == torch.bfloat16 and bool(torch.all(torch.isfinite(loss)))


# ---------------------------------------------------------------------------------------------
# the real TensorFlow


def _tf():
    return pytest.importorskip("tensorflow")


def _tf_values(tf, case):
    return (tf.constant(case.cand, tf.int64), tf.constant(case.tq), tf.constant(case.sq))


@settings(max_examples=6)
@given(cases(max_shards=1), st.booleans())
def test_sampled_softmax_loss_matches_tensorflow(case, remove):
    tf = _tf()
    expected = tf.nn.sampled_softmax_loss(
        tf.constant(case.W),
        tf.constant(case.b),
        tf.constant(case.labels),
        tf.constant(case.x),
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=_tf_values(tf, case),
        remove_accidental_hits=remove,
    ).numpy()
    got = ms.sampled_softmax_loss(
        case.W,
        case.b,
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        remove_accidental_hits=remove,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=6)
@given(cases(max_shards=1), st.booleans())
def test_nce_loss_matches_tensorflow(case, remove):
    tf = _tf()
    expected = tf.nn.nce_loss(
        tf.constant(case.W),
        tf.constant(case.b),
        tf.constant(case.labels),
        tf.constant(case.x),
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=_tf_values(tf, case),
        remove_accidental_hits=remove,
    ).numpy()
    got = ms.nce_loss(
        case.W,
        case.b,
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        remove_accidental_hits=remove,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=6)
@given(cases(max_shards=4), st.booleans())
def test_v1_sharded_matches_tensorflow(case, remove):
    tf = _tf()
    W_shards, b_shards = case.shards(case.W), case.shards(case.b)
    expected = tf.compat.v1.nn.sampled_softmax_loss(
        [tf.constant(s) for s in W_shards],
        [tf.constant(s) for s in b_shards],
        tf.constant(case.labels),
        tf.constant(case.x),
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=_tf_values(tf, case),
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    ).numpy()
    got = v1.sampled_softmax_loss(
        W_shards,
        b_shards,
        case.labels,
        case.x,
        case.S,
        case.C,
        num_true=case.T,
        sampled_values=case.sv(),
        remove_accidental_hits=remove,
        partition_strategy=case.strategy,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_sampled_logits_from_rows_takes_pre_gathered_rows():
    """The seam a backend module uses: rows gathered elsewhere, the math here."""
    import array_api_compat.numpy as xp

    from multisampled import kernels

    W, b, x = simple_params(C=8, B=3)
    labels = np.array([[1, 7], [2, 2], [0, 5]])
    cand, tq, sq = np.array([7, 3, 2]), np.full((3, 2), 0.25), np.array([0.5, 1.5, 0.75])
    flat = labels.reshape(-1)
    true_logits, sampled_logits = kernels.sampled_logit_parts(
        xp,
        x,
        W[flat],
        b[flat],
        W[cand],
        b[cand],
        np.log(tq),
        np.log(sq),
        kernels.hit_mask(xp, labels, cand),
        2,
    )
    logits = np.concatenate([true_logits, sampled_logits], axis=1)
    z, y = ref_sampled_logits(W, b, x, labels, cand, tq, sq, True, True)
    close(logits, z, 1e-12, 1e-12)
    # the soft labels are compute_sampled_logits' own (the kernel returns the logits only)
    _, out_labels = ms.compute_sampled_logits(W, b, labels, x, 3, 8, num_true=2,
                                             sampled_values=(cand, tq, sq),
                                             remove_accidental_hits=True)
    np.testing.assert_array_equal(out_labels, y)


def test_torch_paddle_default_path_matches_numpy():
    torch = pytest.importorskip("torch")
    import warnings

    rng = np.random.default_rng(4)
    logits = rng.standard_normal((3, 40)).astype(np.float32)
    label = rng.integers(0, 40, (3, 1))
    expected = ms.sampled_softmax_with_cross_entropy(logits, label, 6, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's warning about read-only NumPy buffers
        got = ms.sampled_softmax_with_cross_entropy(
            torch.tensor(logits), torch.tensor(label), 6, seed=9
        )
        fresh = ms.sampled_softmax_with_cross_entropy(torch.tensor(logits), torch.tensor(label), 6)
    assert bool(torch.all(torch.isfinite(fresh)))
    assert isinstance(got, torch.Tensor) and got.shape == (3, 1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)
