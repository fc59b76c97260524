"""How the kit runs a backend's functions beyond a plain call: the default gradients of the
"torch", "jax" and "tensorflow" backends (:meth:`KitBase.grad <._kit.KitBase.grad>`), and the
view of :mod:`multisampled` whose calls go through ``Backend.compiler()``
(:attr:`KitBase.api <._kit.KitBase.api>`).
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any, Callable

import numpy as np


def _torch_grad(fn: Callable, *arrays: Any) -> list:
    import torch

    leaves = [a.detach().clone().requires_grad_(True) for a in arrays]
    out = fn(*leaves)
    return list(torch.autograd.grad(out, leaves, allow_unused=True))


def _jax_grad(fn: Callable, *arrays: Any) -> list:
    import jax

    return list(jax.grad(fn, argnums=tuple(range(len(arrays))))(*arrays))


def _tensorflow_grad(fn: Callable, *arrays: Any) -> list:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        for a in arrays:
            tape.watch(a)
        out = fn(*arrays)
    grads = tape.gradient(out, list(arrays))
    # gathered parameters get IndexedSlices; the dense form is what the kit compares
    return [None if g is None else tf.convert_to_tensor(g) for g in grads]


_DEFAULT_GRADS = {"torch": _torch_grad, "jax": _jax_grad, "tensorflow": _tensorflow_grad}


class _Compiled:
    """A view of a module whose functions run through ``compiler`` (one compiled function per
    function and static arguments)."""

    _cache: dict = {}

    def __init__(self, module: Any, compiler: Callable, spec: Any):
        self._module, self._compiler, self._spec = module, compiler, spec

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if inspect.ismodule(attr):
            return _Compiled(attr, self._compiler, self._spec)
        if not callable(attr) or isinstance(attr, type):
            return attr
        return functools.partial(self._call, attr)

    def _is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray) or (x is not None and self._spec.is_array_type(type(x)))

    #: functions no compiler can trace: a data-dependent output size
    EAGER_ONLY = ("compute_accidental_hits",)

    def _eager(self, fn: Callable, kwargs: dict) -> bool:
        """Calls that must run eagerly: a data-dependent output size, or a seed that is not a
        key (an int's stream is host state; Paddle's default negatives use one)."""
        if getattr(fn, "__name__", "") in self.EAGER_ONLY:
            return True
        if getattr(fn, "__name__", "") == "sampled_softmax_with_cross_entropy":
            return not kwargs.get("use_customized_samples", False)
        seed = kwargs.get("seed")
        return seed is not None and not self._is_array(seed)

    def _call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        if self._eager(fn, kwargs):
            return fn(*args, **kwargs)
        leaves: list = []

        def strip(x: Any) -> Any:  # arrays become slots, everything else stays (static)
            if isinstance(x, (list, tuple)):
                return (type(x).__name__, tuple(strip(v) for v in x))
            if self._is_array(x):
                leaves.append(x)
                return ("array", len(leaves) - 1)
            return ("static", x)

        def fill(node: Any, arrays: tuple) -> Any:
            kind, value = node
            if kind == "array":
                return arrays[value]
            if kind == "static":
                return value
            items = [fill(v, arrays) for v in value]
            return items if kind == "list" else tuple(items)

        structure = (strip(args), tuple(sorted((k, strip(v)) for k, v in kwargs.items())))
        key = (self._spec.name, fn, repr(structure))
        compiled = self._cache.get(key)
        if compiled is None:
            def run(*arrays):
                a = fill(structure[0], arrays)
                kw = {k: fill(v, arrays) for k, v in structure[1]}
                return fn(*a, **kw)

            # a code object of its own per compiled function: compilers that cache per code
            # object (torch.compile) would otherwise count every function as a recompile
            run = types.FunctionType(run.__code__.replace(co_name=f"run_{len(self._cache)}"),
                                     run.__globals__, run.__name__, run.__defaults__,
                                     run.__closure__)
            compiled = self._cache[key] = self._compiler(run)
        return compiled(*leaves)
