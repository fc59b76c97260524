"""The hooks every conformance test group shares, and the glue between host data and a backend.

A subclass of :class:`KitBase` names a backend (``backend = "mine"``) and may override the hooks
``devices``, ``supported_dtypes``, ``to_backend``, ``to_numpy`` and ``grad``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from . import testing
from ._backend_calls import _DEFAULT_GRADS, _Compiled
from .strategies import FLOAT_DTYPES, round_to_dtype

__all__ = ["KitBase", "kit_given"]

_HEALTH_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def kit_given(*args: Any, fraction: float = 1.0, **kwargs: Any) -> Callable:
    """``hypothesis.given`` whose settings are resolved when the test RUNS.

    The example count follows the hypothesis profile loaded at run time (``HYPOTHESIS_PROFILE``;
    a plugin or conftest may load it after this module is imported), scaled by ``fraction`` for
    the expensive tests; deadlines are off (first calls of a framework compile kernels).

    Args:
        *args: ``hypothesis.given``'s positional strategies.
        fraction: The share of the profile's ``max_examples`` to run (at least 2 examples).
        **kwargs: ``hypothesis.given``'s strategies by name.

    Returns:
        A decorator of a test method ``test(self, ...)`` that pytest sees as ``test(self)``.
    """

    def decorate(fn: Callable) -> Callable:
        wrapped_by_profile: dict = {}

        @functools.wraps(fn)
        def run(self):
            profile = settings.default
            test = wrapped_by_profile.get(id(profile))
            if test is None:
                examples = max(2, int(round(profile.max_examples * fraction)))
                test = settings(
                    parent=profile,
                    max_examples=examples,
                    deadline=None,
                    suppress_health_check=list(profile.suppress_health_check) + _HEALTH_CHECKS,
                )(given(*args, **kwargs)(fn))
                wrapped_by_profile[id(profile)] = test
            return test(self)

        # pytest must see ``run(self)``, not the strategy-filled parameters of ``fn``
        del run.__wrapped__
        run.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        )
        return run

    return decorate


class KitBase:
    """Hooks and helpers of the conformance kit.

    Class attributes a subclass sets or overrides:

    - ``backend``: the registered backend name (required).
    - ``devices``: list of devices to run the device tests on; None (default) asks the
      Backend's ``devices()``; ``[None]`` means "the backend's default device only".
    - ``supported_dtypes``: floating dtype names to test; None (default) takes the Backend's
      floating dtypes its ``has_dtype`` accepts.
    - ``value_checks``: whether bad VALUES (labels out of range, non-positive expected counts)
      are expected to raise; None (default) follows the Backend (``may_read_values`` on the
      test device, or ``async_checks``).

    Methods a subclass may override: :meth:`to_backend`, :meth:`to_numpy`, :meth:`grad`.
    """

    backend: Optional[str] = None
    devices: Optional[Sequence[Any]] = None
    supported_dtypes: Optional[Sequence[str]] = None
    value_checks: Optional[bool] = None

    # ------------------------------------------------------------------ backend and namespace

    @property
    def backend_spec(self) -> Any:
        """The registered :class:`multisampled.plugin.Backend` under test.

        Raises:
            TypeError: ``backend`` is not set.
        """
        if not self.backend:
            raise TypeError(
                f"{type(self).__name__} must set the class attribute `backend` to a registered "
                f"backend name (see multisampled.backends())"
            )
        return testing.get_backend(self.backend)

    @property
    def xp(self) -> Any:
        """The Array API namespace of the backend under test."""
        return self.backend_spec.namespace()

    @property
    def ms(self) -> Any:
        """The :mod:`multisampled` package."""
        import multisampled

        return multisampled

    #: run the value, gradient and golden tests' calls through the backend's compiler
    #: (``Backend.compiler()``: ``jax.jit`` on JAX, where eager calls compile every primitive
    #: for every new shape); the error tests always call eagerly
    compile_calls: bool = False

    @property
    def api(self) -> Any:
        """``multisampled`` whose functions run compiled when :attr:`compile_calls` is set and
        the backend has a compiler (array arguments traced, the others static)."""
        compiler = self.backend_spec.compiler() if self.compile_calls else None
        if compiler is None:
            return self.ms
        return _Compiled(self.ms, compiler, self.backend_spec)

    @property
    def reference(self) -> Any:
        """The float64 reference model (:mod:`multisampled.conformance.reference`)."""
        from . import reference

        return reference

    def device_list(self) -> list:
        """The devices the device tests run on (``[None]``: the default device only).

        Returns:
            ``devices`` if set, else the Backend's ``devices()``; ``[None]`` for none.
        """
        if self.devices is not None:
            return list(self.devices) or [None]
        return list(self.backend_spec.devices()) or [None]

    def dtype_list(self) -> list:
        """The floating dtypes under test, in FLOAT_DTYPES order.

        Returns:
            The names of ``supported_dtypes`` if set, else those the Backend's ``has_dtype``
            accepts.
        """
        if self.supported_dtypes is not None:
            return [d for d in FLOAT_DTYPES if d in self.supported_dtypes]
        spec = self.backend_spec
        return [d for d in FLOAT_DTYPES if spec.has_dtype(d)]

    def require_dtype(self, dtype: str) -> None:
        """Skip the test unless ``dtype`` is under test (:meth:`dtype_list`).

        Args:
            dtype: A floating dtype name.
        """
        if dtype not in self.dtype_list():
            pytest.skip(f"backend {self.backend!r} does not support {dtype}")

    def host_checks_on(self, device: Any = "default") -> bool:
        """The Backend's ``may_read_values`` for ``device``.

        Args:
            device: A device, None for the backend's default, or ``"default"`` for
                :meth:`dev`.

        Returns:
            Whether value checks read that device's arrays on the host.
        """
        probe = self.arr(np.zeros(1, dtype=np.float32), "float32", device)
        return bool(self.backend_spec.may_read_values(self.backend_spec.device_of(probe)))

    def checks_values(self) -> bool:
        """Whether bad VALUES raise on the test device (eagerly or through ``check_async``).

        Returns:
            ``value_checks`` if set, else whether the Backend checks values on the host or
            asynchronously.
        """
        if self.value_checks is not None:
            return bool(self.value_checks)
        return self.host_checks_on() or self.backend_spec.async_checks

    # ------------------------------------------------------------------ conversions (hooks)

    def to_backend(self, value: Any, dtype: Optional[str] = None, device: Any = None) -> Any:
        """A backend array holding ``value`` (NumPy) as ``dtype`` (a name; None keeps the
        NumPy dtype), on ``device`` (None: the backend's default).

        Args:
            value: Host data (a NumPy array, a list, a scalar).
            dtype: The dtype name of the result (``"bfloat16"`` included), or None.
            device: The device of the result, or None.

        Returns:
            An array of the backend under test.
        """
        spec = self.backend_spec
        if dtype == "bfloat16":
            # NumPy has no bfloat16: send float32 (the values are bfloat16-exact) and cast
            arr = spec.asarray(np.asarray(value, dtype=np.float32), dtype="float32", device=device)
            xp = self.xp
            return xp.astype(arr, xp.bfloat16)
        return spec.asarray(np.asarray(value), dtype=dtype, device=device)

    def to_numpy(self, arr: Any) -> np.ndarray:
        """A NumPy copy of a backend array (bfloat16 comes back as float32).

        Args:
            arr: An array of the backend under test.

        Returns:
            The NumPy array.
        """
        return testing.to_numpy(arr, self.backend_spec)

    def grad(self, fn: Callable, *arrays: Any) -> Optional[list]:
        """Gradients of the scalar ``fn(*arrays)`` with respect to each of ``arrays``.

        Returns one entry per array (a backend array, or None where no gradient flows), or
        None when the backend has no autodiff (the gradient tests then skip). Defaults exist
        for the backends named "torch", "jax" and "tensorflow".

        Args:
            fn: A function of the arrays returning a 0-d backend array.
            *arrays: The backend arrays to differentiate with respect to.

        Returns:
            The gradients, or None without autodiff.
        """
        impl = _DEFAULT_GRADS.get(self.backend)
        if impl is None:
            return None
        return impl(fn, *arrays)

    # ------------------------------------------------------------------ helpers for tests

    def dev(self) -> Any:
        """The device the value tests run on (the first of :meth:`device_list`).

        Returns:
            A device, or None for the backend's default.
        """
        return self.device_list()[0]

    def arr(self, value: Any, dtype: Optional[str] = None, device: Any = "default") -> Any:
        """:meth:`to_backend` on the test device by default.

        Args:
            value: Host data.
            dtype: The dtype name of the result, or None (NumPy's).
            device: A device, None for the backend's default, or ``"default"`` for
                :meth:`dev`.

        Returns:
            An array of the backend under test.
        """
        if device == "default":
            device = self.dev()
        return self.to_backend(value, dtype, device)

    def params(self, value: Any, dtype: str, device: Any = "default") -> Any:
        """A parameter (array or list of shards) on the backend.

        Args:
            value: A NumPy array, or a list of them (shards).
            dtype: The dtype name of the result.
            device: As for :meth:`arr`.

        Returns:
            A backend array, or a list of them.
        """
        if isinstance(value, list):
            return [self.arr(v, dtype, device) for v in value]
        return self.arr(value, dtype, device)

    def problem_arrays(self, p: dict, device: Any = "default") -> dict:
        """The backend arrays of a :func:`~.strategies.sampled_softmax_problem`.

        Args:
            p: The problem dict.
            device: As for :meth:`arr`.

        Returns:
            ``weights``, ``biases``, ``labels``, ``inputs`` and ``sampled_values`` as backend
            arrays, keyword arguments of the TF losses.
        """
        dt = p["dtype"]
        return dict(
            weights=self.params(p["weights"], dt, device),
            biases=self.params(p["biases"], dt, device),
            labels=self.arr(p["labels"], None, device),
            inputs=self.arr(p["inputs"], dt, device),
            sampled_values=(
                self.arr(p["sampled_candidates"], None, device),
                self.arr(p["true_expected_count"], dt, device),
                self.arr(p["sampled_expected_count"], dt, device),
            ),
        )

    @staticmethod
    def f64(value: Any) -> Any:
        """Host float64 copy (lists of shards stay lists).

        Args:
            value: Host data, or a list of arrays.

        Returns:
            A float64 NumPy array, or a list of them.
        """
        if isinstance(value, list):
            return [np.asarray(v, dtype=np.float64) for v in value]
        return np.asarray(value, dtype=np.float64)

    def reference_args(self, p: dict) -> tuple:
        """Positional arguments of the reference's TF-style functions for problem ``p``.

        Args:
            p: A :func:`~.strategies.sampled_softmax_problem` dict.

        Returns:
            ``(weights, biases, labels, inputs, sampled_values)`` in float64 NumPy.
        """
        return (
            self.f64(p["weights"]),
            self.f64(p["biases"]),
            p["labels"],
            self.f64(p["inputs"]),
            (p["sampled_candidates"], self.f64(p["true_expected_count"]),
             self.f64(p["sampled_expected_count"])),
        )

    def assert_close(self, actual: Any, desired: Any, *, dtype: Optional[str],
                     rtol: Optional[float] = None, atol: Optional[float] = None,
                     device: Any = None, err_msg: str = "") -> None:
        """:func:`~multisampled.conformance.testing.assert_close` on the backend under test.

        Args:
            actual: The result under test.
            desired: The expected values (NumPy, or the backend's).
            dtype: The expected dtype name, or None.
            rtol: The relative tolerance; None: that of ``dtype``.
            atol: The absolute tolerance; None: that of ``dtype``.
            device: The expected device, an array on it, or None.
            err_msg: Text added to a failure's message.
        """
        testing.assert_close(actual, desired, backend=self.backend_spec, dtype=dtype, rtol=rtol,
                             atol=atol, device=device, err_msg=err_msg)

    def assert_equal(self, actual: Any, desired: Any, *, dtype: Optional[str] = None,
                     device: Any = None, err_msg: str = "") -> None:
        """:func:`~multisampled.conformance.testing.assert_equal` on the backend under test.

        Args:
            actual: The result under test.
            desired: The expected values (NumPy, or the backend's).
            dtype: The expected dtype name, or None.
            device: The expected device, an array on it, or None.
            err_msg: Text added to a failure's message.
        """
        testing.assert_equal(actual, desired, backend=self.backend_spec, dtype=dtype,
                             device=device, err_msg=err_msg)

    @staticmethod
    def logit_bound(p: dict) -> float:
        """An upper bound on the magnitude of any unmasked logit of problem ``p``.

        Args:
            p: A :func:`~.strategies.sampled_softmax_problem` dict.

        Returns:
            ``D * max|x| * max|w| + max|b| + max|ln Q|``.
        """
        x = float(np.max(np.abs(p["inputs"]), initial=0.0))
        w = float(np.max(np.abs(p["full_weights"]), initial=0.0))
        b = float(np.max(np.abs(p["full_biases"]), initial=0.0))
        counts = np.concatenate([np.ravel(p["true_expected_count"]),
                                 np.ravel(p["sampled_expected_count"])]).astype(np.float64)
        log_q = float(np.max(np.abs(np.log(counts)), initial=0.0))
        return p["inputs"].shape[1] * x * w + b + log_q

    def loss_tolerance(self, dtype: str, p: dict) -> tuple:
        """(rtol, atol) for a loss or gradient computed in ``dtype``: rounding errors of the
        logits grow with their magnitude, so atol does too (losses near 0 have no rtol slack).

        Args:
            dtype: The dtype name the result is computed in.
            p: A :func:`~.strategies.sampled_softmax_problem` dict.

        Returns:
            ``(rtol, atol)``.
        """
        rtol, atol = testing.tolerances(dtype)
        return rtol, atol + 8.0 * testing.eps(dtype) * (1.0 + self.logit_bound(p))

    def tolerances_paddle(self, dtype: str, p: dict) -> tuple:
        """(rtol, atol) for the Paddle API on :func:`~.strategies.paddle_problem` ``p``.

        Args:
            dtype: The dtype name the result is computed in.
            p: A :func:`~.strategies.paddle_problem` dict.

        Returns:
            ``(rtol, atol)``.
        """
        rtol, atol = testing.tolerances(dtype)
        log_q = np.log(np.asarray(p["customized_probabilities"], np.float64))
        scale = float(np.max(np.abs(p["logits"]), initial=0.0))
        scale += float(np.max(np.abs(log_q), initial=0.0))
        return rtol, atol + 8.0 * testing.eps(dtype) * (1.0 + scale)

    def grad_or_skip(self, fn: Callable, *arrays: Any) -> list:
        """:meth:`grad`, skipping the test when the backend has no autodiff.

        Args:
            fn: A function of the arrays returning a 0-d backend array.
            *arrays: The backend arrays to differentiate with respect to.

        Returns:
            The gradients (None entries where no gradient flows).
        """
        grads = self.grad(fn, *arrays)
        if grads is None:
            pytest.skip(f"backend {self.backend!r} has no autodiff (grad() returned None)")
        return list(grads)

    def grad_to_numpy(self, g: Any, like: Any) -> np.ndarray:
        """A gradient as float64 NumPy; None (no gradient flowed) becomes zeros like ``like``.

        Args:
            g: A gradient (a backend array) or None.
            like: An array of the gradient's shape.

        Returns:
            The float64 NumPy gradient.
        """
        if g is None:
            return np.zeros(np.shape(like), dtype=np.float64)
        return np.asarray(self.to_numpy(g), dtype=np.float64)

    def weighted_sum(self, values: Any, upstream: np.ndarray, dtype: str) -> Any:
        """``sum(values * upstream)`` on the backend: the scalar to differentiate.

        Args:
            values: A backend array.
            upstream: NumPy weights of ``values``' shape.
            dtype: The dtype name ``upstream`` is sent as.

        Returns:
            A 0-d backend array.
        """
        xp = self.xp
        up = self.arr(upstream, dtype)
        return xp.sum(values * up)

    def rounded(self, value: Any, dtype: str) -> np.ndarray:
        """:func:`~.strategies.round_to_dtype`.

        Args:
            value: Host data.
            dtype: A floating dtype name.

        Returns:
            The values rounded to ``dtype`` (held in float32 for bfloat16).
        """
        return round_to_dtype(value, dtype)
