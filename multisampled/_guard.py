"""The decorator every public array function wears: a compiler's trace is left first, unless
the call is keyed.

A framework compiler that traces Python code (``torch.compile``) would otherwise trace into the
seed streams, whose call counters are host state: the compiled code would replay the negatives
it saw while tracing, or recompile each time a counter changes. While such a trace is in
progress, a call WITHOUT a key runs eagerly through the backend's runner
(:meth:`multisampled.plugin.Backend.outside_trace`) on every run of the compiled code: one
graph break per call. A call with a key (``seed=<array of two words>``) is a pure function of
its arguments and is traced like any other code (``fullgraph=True``, CUDA graphs), where the
function allows it (``traceable=True``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, TypeVar, overload

from . import _registry

F = TypeVar("F", bound=Callable[..., Any])


@overload
def public(fn: F) -> F: ...


@overload
def public(*, traceable: bool = True) -> Callable[[F], F]: ...


def public(fn: Optional[F] = None, *, traceable: bool = True) -> Any:
    """``fn`` behind the check for a compiler's trace (one lock-free probe per backend that has
    one; nothing else when no compiler is tracing). ``traceable=False``: even keyed calls leave
    the trace (host work that no compiler can trace: a vocabulary file, a learned state)."""
    if fn is None:
        return functools.partial(public, traceable=traceable)
    params = list(inspect.signature(fn).parameters)
    seed_at = params.index("seed") if "seed" in params else None

    def keyed(args: tuple, kwargs: dict) -> bool:
        if not traceable or seed_at is None:
            return False
        seed = kwargs.get("seed", args[seed_at] if len(args) > seed_at else None)
        from ._seeds import is_key

        return is_key(seed)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        # loading the plugins (the first call only) is no place for a probe: a compiler would
        # break its graph there and run that code, probe included, outside its trace
        for probe in _registry.trace_probes():
            runner = probe()
            if runner is not None and not keyed(args, kwargs):
                return runner(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    return call
