"""Constants and small helpers of the reference model: float64 and int64 conversion,
float32 rounding, a row's log-sum-exp and softmax, shard lists and upstream gradients."""

from __future__ import annotations

import math

import numpy as np

#: Largest finite float32; TF's accidental-hit mask is ``-FLT_MAX`` (section 4).
FLT_MAX = float(np.finfo(np.float32).max)
#: Paddle subtracts this from accidental hits (section 10.3 step 3).
PADDLE_MASK = 1e20
#: Paddle maps +-inf to +-this after the log-Q subtraction (section 10.3 step 4).
PADDLE_CLAMP = 1e20
#: Paddle's softmax clips row-max-shifted logits from below at this value (section 10.3a).
PADDLE_SHIFTED_LOGIT_FLOOR = -64.0


def _f64(x, name):
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real array, got {x!r}") from exc


def _i64(x, name):
    arr = np.asarray(x)
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    # float ids are truncated toward zero, as TF's cast to int64 does
    return arr.astype(np.int64)


def _as_float32_values(x):
    """float64 array holding the float32 rounding of ``x``."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def _logsumexp(row):
    m = np.max(row)
    if not np.isfinite(m):
        return float(m)
    return m + math.log(float(np.sum(np.exp(row - m))))


def _softmax(row):
    m = np.max(row)
    e = np.exp(row - m)
    return e / np.sum(e)


def _is_shard_list(params):
    return isinstance(params, list)


def _shards_of(params, name):
    if _is_shard_list(params):
        if len(params) == 0:
            raise ValueError(f"{name}: expected a non-empty list of shards, got []")
        return [_f64(p, f"{name}[{k}]") for k, p in enumerate(params)]
    return [_f64(params, name)]


def _upstream_vector(upstream, batch):
    if upstream is None:
        return np.ones(batch)
    up = _f64(upstream, "upstream").reshape(-1)
    if up.shape[0] != batch:
        raise ValueError(f"upstream: expected {batch} values, got shape {np.shape(upstream)}")
    return up
