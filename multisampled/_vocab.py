"""TF's FixedUnigramSampler weights: from ``unigrams`` or a vocabulary file (SEMANTICS 5.5)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

def vocab_values(vocab_file: str, keep):
    """``(values, line_numbers)``: the last comma field of the non-empty lines ``keep`` selects.

    ``keep(j)`` says whether the ``j``-th non-empty line belongs to this shard.
    """
    values, line_numbers = [], []
    with open(vocab_file, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    word = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if keep(word):  # like TensorFlow, lines of other shards are not parsed
            field = line.split(b",")[-1]
            try:
                if b"_" in field:
                    raise ValueError
                values.append(float(field))
                line_numbers.append(lineno)
            except ValueError:
                raise ValueError(
                    f"vocab_file={vocab_file!r}: wrong vocabulary format at line {lineno}: "
                    f"{line.decode('utf-8', 'replace')!r}; expected the last comma-separated "
                    "field to be a number"
                ) from None
        word += 1
    return values, line_numbers


def fixed_unigram_weights(range_max, vocab_file, distortion, num_reserved_ids, num_shards,
                           shard, unigrams):
    """TF's FixedUnigramSampler weights ``wv`` (float32) for this shard (SEMANTICS.md 5.5)."""
    import numpy as np

    reserved = len(range(shard, num_reserved_ids, num_shards))  # reserved ids of this shard
    start = reserved  # TF's running word id starts at len(wv) (quirk 13.13)
    keep = lambda j: (start + j) % num_shards == shard  # noqa: E731
    if vocab_file:
        source = "vocab_file"
        parsed, line_numbers = vocab_values(vocab_file, keep)
        values = np.asarray(parsed, dtype=np.float64).astype(np.float32)
        where = lambda i: f"line {line_numbers[i]}"  # noqa: E731
    else:
        source = "unigrams"
        allv = unigrams  # float32 host array (TF's list(float) attribute)
        positions = np.nonzero((start + np.arange(allv.shape[0])) % num_shards == shard)[0]
        values = allv[positions]
        where = lambda i: f"index {int(positions[i])}"  # noqa: E731
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{source} weights must be finite and >= 0, got {values[i]} at {where(i)}")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        powered = np.power(values, np.float32(distortion), dtype=np.float32)
    if not np.all(np.isfinite(powered)):
        i = int(np.argmax(~np.isfinite(powered)))
        raise ValueError(
            f"distortion={distortion} turns the {source} weight {values[i]} at {where(i)} into "
            f"{powered[i]}; expected finite weights (a negative distortion needs positive weights)"
        )
    wv = np.concatenate([np.zeros(reserved, dtype=np.float32), powered])
    if wv.shape[0] != range_max:
        raise ValueError(
            f"range_max={range_max} must equal the number of weights of shard {shard}, which is "
            f"{wv.shape[0]} ({reserved} reserved ids + {powered.shape[0]} {source} entries)"
        )
    return wv


def unigram_array(unigrams: Any):
    """``unigrams`` as a 1-D float32 NumPy array (TensorFlow stores the attribute as floats)."""
    import numpy as np

    if isinstance(unigrams, (str, bytes)):
        raise TypeError(f"unigrams must be a sequence of floats, got {unigrams!r}")
    try:
        arr = np.asarray(unigrams, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"unigrams must be a sequence of floats, got {type(unigrams).__name__} "
            f"{str(unigrams)[:80]}"
        ) from None
    if len(arr.shape) != 1:
        raise ValueError(f"unigrams must be a flat sequence of floats, got shape {arr.shape}")
    with np.errstate(over="ignore"):  # too large for float32: inf, rejected with the weights
        return arr.astype(np.float32)


def source_key(vocab_file: str, unigrams: Any) -> tuple:
    """A hashable name of the weights' source: the file's path, time and size, or a digest."""
    if vocab_file:
        if os.path.isdir(vocab_file):
            raise IsADirectoryError(
                f"vocab_file={vocab_file!r} is a directory; expected a vocabulary file (one "
                "entry a line, its weight the last comma-separated field)"
            )
        try:
            st = os.stat(vocab_file)
        except OSError as exc:
            raise FileNotFoundError(f"vocab_file={vocab_file!r} cannot be read: {exc}") from None
        return ("file", os.path.abspath(vocab_file), st.st_mtime_ns, st.st_size)
    digest = hashlib.blake2b(unigrams.tobytes(), digest_size=16).hexdigest()
    return ("unigrams", digest)
