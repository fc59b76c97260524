"""``BackendConformance``: the whole conformance suite as one subclassable pytest base class.

A backend author writes::

    from multisampled.conformance import BackendConformance

    class TestMine(BackendConformance):
        backend = "mine"

and pytest runs every group below on that backend (in the style of pandas' extension tests and
zarr's ``StoreTests``). Hooks a subclass may override are documented on
:class:`~multisampled.conformance._kit.KitBase`: ``backend``, ``devices``,
``supported_dtypes``, ``value_checks``, ``to_backend``, ``to_numpy`` and ``grad``.
"""

from __future__ import annotations

from ._errors import ErrorTests
from ._golden import GoldenTests
from ._gradients import GradientTests
from ._kit import KitBase
from ._rules import DeviceTests, DtypeTests, HitConventionTests
from ._sampler_truth import SamplerTruthTests
from ._samplers import SamplerTests
from ._tracing import TracingTests
from ._values import ValueTests

__all__ = [
    "BackendConformance",
    "DeviceTests",
    "DtypeTests",
    "ErrorTests",
    "GoldenTests",
    "GradientTests",
    "HitConventionTests",
    "KitBase",
    "SamplerTests",
    "TracingTests",
    "SamplerTruthTests",
    "ValueTests",
]


class BackendConformance(
    ValueTests,
    GradientTests,
    GoldenTests,
    SamplerTests,
    SamplerTruthTests,
    HitConventionTests,
    DtypeTests,
    ErrorTests,
    DeviceTests,
    TracingTests,
):
    """Every conformance test group. Set ``backend`` to a registered backend name.

    The groups are also importable on their own (``ValueTests``, ``GradientTests``,
    ``GoldenTests``, ``SamplerTests``, ``SamplerTruthTests``, ``HitConventionTests``,
    ``DtypeTests``, ``ErrorTests``, ``DeviceTests``) for a suite that wants only some of them.
    """

    backend = None
