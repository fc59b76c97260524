"""Typed use of the public API; ``tests/test_typing.py`` runs mypy on it (it is not a test)."""

from __future__ import annotations

from typing import Optional

import numpy as np

import multisampled as ms
from multisampled import CandidateSamples
from multisampled.plugin import Backend


def draw(labels: np.ndarray, num_classes: int) -> CandidateSamples:
    return ms.log_uniform_candidate_sampler(labels, 1, 16, True, num_classes, seed=1)


def loss(weights: np.ndarray, biases: np.ndarray, labels: np.ndarray, inputs: np.ndarray) -> object:
    sampled = draw(labels, weights.shape[0])
    candidates = sampled.sampled_candidates
    out = ms.sampled_softmax_loss(
        weights, biases, labels, inputs, 16, weights.shape[0], sampled_values=sampled
    )
    return out, candidates


def installed() -> list[str]:
    infos: list[ms.BackendInfo] = ms.backends()
    versions: dict[str, Optional[str]] = {info.name: info.version for info in infos}
    return [name for name, version in versions.items() if version is not None]


def streams() -> ms.Generator:
    ms.reset_streams()
    return ms.Generator(7)


def backend_name(backend: Backend) -> str:
    return backend.name


VERSION: str = ms.__version__
