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

from typing import Optional

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

    Attributes:
        backend: The registered name of the backend under test (required: a test of a
            subclass that leaves it None fails with a ``TypeError`` saying so).
        devices: The devices the device tests run on; None asks the Backend's ``devices()``,
            ``[None]`` means its default device only.
        supported_dtypes: The floating dtype names to test; None: those the Backend's
            ``has_dtype`` accepts.
        value_checks: Whether bad values (labels out of range, expected counts not > 0) are
            expected to raise; None follows the Backend.
        compile_calls: Whether the value, gradient and golden tests call through the
            Backend's ``compiler()``.

    The conversions :meth:`~multisampled.conformance._kit.KitBase.to_backend`,
    :meth:`~multisampled.conformance._kit.KitBase.to_numpy` and
    :meth:`~multisampled.conformance._kit.KitBase.grad` may be overridden too.
    """

    backend: Optional[str] = None
