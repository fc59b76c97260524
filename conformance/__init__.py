"""The multisampled conformance kit: what a backend author runs to prove a backend right.

- :class:`BackendConformance` (``base``): subclassable pytest tests; ``class TestMine(
  BackendConformance): backend = "mine"`` runs the whole suite on backend ``mine``.
- ``strategies``: hypothesis strategies for every input of the API.
- ``testing``: ``assert_close`` and friends (namespace, dtype, shape, device, then values).
- ``reference``: an independent float64 NumPy model of the TensorFlow and Paddle semantics.
- ``pytest_plugin``: opt-in fixtures and a report header
  (``pytest -p multisampled.conformance.pytest_plugin``).

Importing this package imports pytest and hypothesis (the ``test`` extra).
"""

from .base import BackendConformance

__all__ = ["BackendConformance"]
