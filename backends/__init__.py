"""Built-in backend plugins, installed as ``multisampled.backends``.

Each module is declared in the ``multisampled.backends`` entry-point group in pyproject.toml,
exactly as a third-party backend declares itself, and imports its framework only lazily.
"""
