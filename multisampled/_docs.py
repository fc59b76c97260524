"""The text that several public docstrings share, written once and filled in at import time.

SciPy's ``doccer`` way: a docstring names a shared text with a ``{placeholder}`` inside a
paragraph or an Args/Returns/Raises entry (``backend: {backend}``), and :func:`fill` substitutes
every placeholder of the function's (or class's) ``__doc__`` and re-wraps the entries it filled.
A placeholder with no text here raises ``KeyError`` when the module that uses it is imported.
"""

from __future__ import annotations

import re
import textwrap
from typing import Callable, TypeVar

T = TypeVar("T", bound=Callable[..., object])

WIDTH = 100  # the sources' line length, to which a filled paragraph is re-wrapped

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
ENTRY = re.compile(r"\*{0,2}\w+(?:\.\w+)*: ")  # an Args/Raises entry: "name: text"

# --------------------------------------------------------------------------- fragments

_HOST = "Also, where the backend reads values on the host (NumPy, CPU tensors):"
_README = "(see the README's \"Value checks and accelerators\")"
_FOREIGN = ("arrays of two frameworks, of a type no backend knows, or of another framework than "
            "``backend``; ``backend`` not a str")
_BAD_SEED = "a seed of another type, or a seed that is not a key while a compiler traces the call"
_SEED_VALUES = ("an int seed outside ``[0, 2**64)`` or a key not of two 32-bit words; an unknown "
                "``backend``")
_XLA = ("Under TensorFlow's XLA (``tf.function(jit_compile=True)``) with its value checks on, a "
        "call that needs a value check")
_GENERATOR = "a :class:`~multisampled.Generator` seed whose ``2**32`` calls are used up"
_BAD_INTS = ("An int argument that is not an int (a float, a bool) or a bool argument that is not "
             "a bool")

_SAMPLER_TYPES = ("An int or bool argument of another type; ``true_classes`` ragged, sparse or not "
                  f"of an integer dtype; {_FOREIGN}")
_SAMPLER_COUNTS = "``num_true`` or ``num_sampled`` outside ``[1, 2**31)``"
_SAMPLER_VALUES = (f"{_SAMPLER_COUNTS}; ``range_max`` below 1 or beyond the backend's index dtype; "
                   "``unique=True`` with ``num_sampled > range_max``; ``true_classes`` not "
                   f"``[B, num_true]``; {_SEED_VALUES}")

_WEIGHTS = ("``[C, D]`` floating class embeddings, or a list of shards of it in the "
            "``partition_strategy`` layout.")
_BIASES = "``[C]`` floating class biases, or shards laid out as ``weights``"
_TRIPLE = ("A ``(sampled_candidates [S], true_expected_count [B, T], sampled_expected_count [S])`` "
           "triple (a tuple or list, such as the :class:`~multisampled.CandidateSamples` of a "
           "sampler)")
_MASK = "Whether to mask the sampled classes equal to one of the row's labels"
_LAYOUT = ("the layout of a sharded ``weights`` and ``biases`` (read with more than one shard or "
           "with ``shard_group``)")
_LOSS_ARG_TYPES = (f"{_BAD_INTS}; ``labels`` not of an integer dtype, or ``inputs``, ``weights``, "
                   "``biases`` or the expected counts not floating (floating ``labels`` with "
                   "integer ``inputs``: named as TF 0.x's swapped order); ragged or sparse "
                   "``labels``, ``inputs`` or ``sampled_values`` members")
_LOSS_SHAPES = ("``num_sampled``, ``num_classes`` or ``num_true`` below 1; shapes that do not fit "
                "(``inputs`` not ``[B, D]``, ``labels`` not ``[B, num_true]``, ``weights`` rows "
                "not of width ``D``, fewer than ``num_classes`` rows, shard sizes off the layout, "
                "an unknown ``partition_strategy`` with more than one shard); ``sampled_values`` "
                "not a triple (a ``ValueError`` that is also a ``TypeError``), with no "
                "candidates, or with counts that do not broadcast to ``[B, T]`` and ``[S]``")
_ELSEWHERE = f"elsewhere the framework reports those checks its way {_README}"
_LOSS_HOST = (f"{_HOST} ids outside ``[0, num_classes)`` and expected counts not finite and > 0; "
              f"{_ELSEWHERE}.")

#: placeholder -> its text
TEXT = {
    # shared by the samplers, the losses and Paddle's loss
    "backend": "The backend name for host data (``\"torch\"``, say); None: the innermost "
               ":func:`~multisampled.use_backend`, then ``$MULTISAMPLED_BACKEND``, then NumPy. "
               "Arrays of a framework always run on that framework's backend.",
    "op_name": "Accepted and ignored (TF's op name).",
    "import_error": "``backend`` names a registered backend whose framework is not installed.",
    "foreign_arrays": _FOREIGN,
    "bad_seed": _BAD_SEED,
    "seed_values": _SEED_VALUES,
    "xla_value_check": _XLA,
    "runtime_errors": f"{_XLA}; {_GENERATOR}",
    "bad_ints": _BAD_INTS,
    "values_on_host": _HOST,
    "reported_elsewhere": _ELSEWHERE,
    # the candidate samplers
    "sampler_true_classes": "``[B, num_true]`` integer labels in ``[0, range_max)``.",
    "sampler_num_true": "The labels per example (``true_classes.shape[1]``, in ``[1, 2**31)``).",
    "sampler_num_sampled": "``S``, the number of candidates (in ``[1, 2**31)``).",
    "unique": "Whether the candidates are distinct (TF's rejection loop).",
    "sampler_seed": "A key (an integer array of two 32-bit words, or a JAX key; needed under "
                    "``jax.jit``, ``tf.function`` and ``torch.compile(fullgraph=True)``), None "
                    "(fresh randomness), an int in ``[0, 2**64)`` (the process-wide stream of "
                    "that seed on this backend), or a :class:`~multisampled.Generator`.",
    "candidate_samples": "``CandidateSamples(sampled_candidates [S], true_expected_count [B, "
                         "num_true], sampled_expected_count [S])``: candidates in the index dtype "
                         "(int64; int32 on JAX without x64), expected counts in float32, arrays "
                         "of the labels' backend.",
    "sampler_types": _SAMPLER_TYPES,
    "sampler_counts": _SAMPLER_COUNTS,
    "sampler_values": _SAMPLER_VALUES,
    "labels_on_host": f"{_HOST} labels outside the class range; elsewhere the framework reports "
                      f"them {_README}.",
    "learned_range_max": "The number of classes (in ``[1, 2**31 - 1)``).",
    "learned_types": "``range_max`` not an int; ``backend`` not a str.",
    "learned_values": "``range_max`` below 1, at least ``2**31 - 1``, or beyond the backend's "
                      "index dtype; an unknown ``backend``.",
    "learned_import": "The backend's framework is not installed.",
    # the TF losses
    "weights": f"{_WEIGHTS} With ``shard_group``: this rank's shard of the table (one array).",
    "biases": f"{_BIASES} (with ``shard_group``: this rank's shard).",
    "weights_unsharded": _WEIGHTS,
    "biases_unsharded": f"{_BIASES}.",
    "labels": "``[B, T]`` integer true classes, in ``[0, num_classes)``.",
    "inputs": "``[B, D]`` floating input activations; the result has their dtype.",
    "loss_num_sampled": "The number of classes the default sampler draws (>= 1); with "
                        "``sampled_values`` and ``remove_accidental_hits`` it must equal their "
                        "number of candidates.",
    "num_classes": "The number of classes ``C`` (>= 1); ids lie in ``[0, num_classes)``.",
    "loss_num_true": "The number of true classes per example, ``T = labels.shape[1]`` (>= 1).",
    "sampled_triple": _TRIPLE,
    "sampled_values": f"{_TRIPLE}, or None to draw with ``log_uniform_candidate_sampler(labels, "
                      "num_true, num_sampled, True, num_classes, seed=seed)``.",
    "softmax_hits": f"{_MASK} (TF's default, True).",
    "nce_hits": f"{_MASK} (TF's default for NCE, False).",
    "layout": _LAYOUT,
    "mod_layout": f"``\"mod\"`` (TF 1.x's default) or ``\"div\"``: {_LAYOUT}.",
    "div_layout": f"Keyword only: ``\"div\"`` (TF 2.x's layout) or ``\"mod\"``, {_LAYOUT}.",
    "loss_seed": "The default sampler's seed, read only when ``sampled_values`` is None: None "
                 "(fresh randomness), an int in ``[0, 2**64)`` (that seed's process-wide stream), "
                 "a :class:`~multisampled.Generator`, or a key (a 1-D integer array of two 32-bit "
                 "words, or a JAX key), which ``jax.jit``, ``tf.function`` and "
                 "``torch.compile(fullgraph=True)`` need.",
    "shard_group": "A ``torch.distributed`` process group or a JAX mesh axis name, over which the "
                   "``num_classes``-row class table is sharded (``weights`` and ``biases`` are "
                   "this rank's shard, and every rank gets the whole result); None: one table.",
    "gathered": "Keyword only, an extension. True: ``weights`` and ``biases`` are the rows "
                "``weights[row_ids(labels, sampled_values)]`` and ``biases[...]`` (one array "
                "each, ``sampled_values`` given, no ``shard_group``), so their gradients are "
                "the rows' gradients, TF's ``tf.IndexedSlices`` values (:func:`row_ids`).",
    "loss_returns": "The loss of each example, ``[B]``, in the inputs' dtype and backend.",
    "loss_arg_types": _LOSS_ARG_TYPES,
    "loss_shapes": _LOSS_SHAPES,
    "ids_on_host": _LOSS_HOST,
    "loss_types": f"{_LOSS_ARG_TYPES}; with ``shard_group``, ``weights`` or ``biases`` given as a "
                  f"list; ``biases`` None; {_FOREIGN}; {_BAD_SEED}.",
    "loss_values": f"{_LOSS_SHAPES}; with ``shard_group``: ``seed=None`` without "
                   "``sampled_values``, a shard that is not this rank's size, or fewer classes "
                   "than ranks; ``num_sampled > num_classes`` for the default sampler; "
                   f"{_SEED_VALUES}. {_LOSS_HOST}",
    "loss_runtime": f"{_XLA}; {_GENERATOR}; a torch ``shard_group`` before "
                    "``torch.distributed.init_process_group``.",
}


def _text(name: str) -> str:
    try:
        return TEXT[name]
    except KeyError:
        raise KeyError(f"docstring placeholder {{{name}}} has no text in multisampled._docs") \
            from None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def filled(doc: str) -> str:
    """``doc`` with every placeholder replaced by its text.

    A paragraph holding a placeholder is re-wrapped to :data:`WIDTH`: an entry (``name: text``)
    with its deeper-indented continuation lines, hanging by 4; a prose line with the lines of
    its indent that follow. Paragraphs without one are left as written.

    Args:
        doc: A raw ``__doc__`` (its lines indented as in the source).

    Returns:
        The filled docstring.

    Raises:
        KeyError: A placeholder that :data:`TEXT` does not hold.
    """
    lines = doc.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = _indent(line)
        entry = ENTRY.match(line.lstrip(" ")) is not None
        j = i + 1
        while j < len(lines) and lines[j].strip() and (
                _indent(lines[j]) > indent if entry else
                _indent(lines[j]) == indent and not ENTRY.match(lines[j].lstrip(" "))):
            j += 1
        paragraph = lines[i:j]
        if not any(PLACEHOLDER.search(p) for p in paragraph):
            out += paragraph
        else:
            text = PLACEHOLDER.sub(lambda m: _text(m.group(1)),
                                   " ".join(p.strip() for p in paragraph))
            out += textwrap.wrap(text, WIDTH, initial_indent=" " * indent,
                                 subsequent_indent=" " * (indent + 4 * entry),
                                 break_long_words=False, break_on_hyphens=False)
        i = j
    return "\n".join(out)


def fill(obj: T) -> T:
    """Decorator: ``obj.__doc__`` filled (:func:`filled`); nothing to do under ``python -OO``.

    Put it below ``@public``, so that the wrapper copies the filled docstring.

    Args:
        obj: A function or class.

    Returns:
        ``obj`` itself.

    Raises:
        KeyError: A placeholder that :data:`TEXT` does not hold.
    """
    if obj.__doc__:
        obj.__doc__ = filled(obj.__doc__)
    return obj
