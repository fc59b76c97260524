"""Built-in backend plugins, installed as ``multisampled.backends``.

Each module is declared in the ``multisampled.backends`` entry-point group in pyproject.toml,
exactly as a third-party backend declares itself, and imports its framework only lazily.

``multisampled.backends()`` is also the public function that lists the registered backends.
Importing this sub-package rebinds the attribute ``multisampled.backends`` to the package, so
the package itself is callable and does what the function does.
"""

import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    def __call__(self):
        """The registered backends, with framework version and availability."""
        from multisampled._registry import backends

        return backends()


_sys.modules[__name__].__class__ = _CallableModule
