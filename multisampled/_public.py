"""The decorator every public array function wears: it leaves a compiler's trace first.

A framework compiler that traces Python code (``torch.compile``) would otherwise trace into the
core, where the seed streams' call counters are host state: the compiled code would replay the
negatives it saw while tracing, or recompile each time a counter changes. While such a trace is
in progress the backend's runner (:attr:`multisampled.plugin.Backend.outside_trace`) calls the
function eagerly instead, on every run of the compiled code: one graph break per call.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from . import _registry

F = TypeVar("F", bound=Callable[..., Any])


def public(fn: F) -> F:
    """``fn`` behind the check for a compiler's trace (one lock-free probe per backend that has
    one; nothing else when no compiler is tracing)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        # loading the plugins (the first call only) is no place for a probe: a compiler would
        # break its graph there and run that code, probe included, outside its trace
        probes = _registry.trace_probes()
        for probe in probes:
            runner = probe()
            if runner is not None:
                return runner(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    return call  # type: ignore[return-value]
