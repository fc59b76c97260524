"""Backend registry: plugin loading, detection by array type, selection rules, errors."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import multisampled
from multisampled import _registry, plugin
from multisampled._context import context


def test_builtin_backends_are_listed_with_versions():
    infos = {i.name: i for i in multisampled.backends()}
    assert infos["numpy"].available and infos["numpy"].version == np.__version__
    assert list(infos)[0] == "numpy"  # the default comes first
    assert set(infos) >= {"numpy", "torch"}
    assert infos["torch"].extra == "torch"


def test_registering_imports_no_framework(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        import multisampled
        names = [b.name for b in multisampled.backends()]
        assert "torch" in names, names
        heavy = [m for m in ("torch", "jax", "tensorflow", "array_api_strict") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    # run outside the checkout, so the installed package is imported, not the source folder
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_host_data_goes_to_numpy_by_default(monkeypatch):
    monkeypatch.delenv(_registry.ENV_VAR, raising=False)
    assert context(np.zeros(3), [1, 2], 3.0).name == "numpy"


def test_env_var_selects_backend_for_host_data(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv(_registry.ENV_VAR, "torch")
    assert context(np.zeros(3)).name == "torch"


def test_env_var_unknown_name_lists_installed_backends(monkeypatch):
    monkeypatch.setenv(_registry.ENV_VAR, "nosuchframework")
    with pytest.raises(ValueError, match=r"MULTISAMPLED_BACKEND='nosuchframework'.*numpy"):
        context(np.zeros(3))


def test_precedence_backend_kwarg_over_use_backend_over_env(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv(_registry.ENV_VAR, "torch")
    with multisampled.use_backend("numpy"):
        assert context(np.zeros(3)).name == "numpy"
        assert context(np.zeros(3), backend="torch").name == "torch"
        with multisampled.use_backend("torch"):
            assert context([1]).name == "torch"
        assert context([1]).name == "numpy"
    assert context([1]).name == "torch"


def test_use_backend_rejects_unknown_name():
    with pytest.raises(ValueError, match="use_backend='bogus'"):
        with multisampled.use_backend("bogus"):
            pass


def test_framework_arrays_pick_their_backend():
    torch = pytest.importorskip("torch")
    assert context(torch.zeros(2), np.zeros(2), [1]).name == "torch"


def test_mixing_frameworks_raises_naming_both():
    torch = pytest.importorskip("torch")
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"torch.*array_api_strict"):
        context(torch.zeros(2), [xs.asarray([1.0])])


def test_backend_kwarg_conflicting_with_arrays_raises():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"backend='numpy'.*torch"):
        context(torch.zeros(2), backend="numpy")


def test_unknown_array_type_raises_naming_type():
    class NotAnArray:
        pass

    with pytest.raises(TypeError, match="NotAnArray"):
        context(NotAnArray())


def test_array_api_arrays_without_plugin_use_generic_backend():
    xs = pytest.importorskip("array_api_strict")
    ctx = context(xs.asarray([1.0, 2.0]))
    assert ctx.name == "array_api:array_api_strict"
    assert ctx.xp.__name__.startswith("array_api_strict")


def test_detection_is_cached_per_type(monkeypatch):
    calls = []
    original = _registry._all()["numpy"]

    class Counting(type(original)):
        def is_array_type(self, tp):
            return calls.append(tp) or original.is_array_type(tp)

    counting = Counting()
    monkeypatch.setitem(_registry._backends, "numpy", counting)
    monkeypatch.setattr(_registry, "_type_cache", {})

    class Sub(np.ndarray):
        pass

    a = np.zeros(2).view(Sub)
    for _ in range(5):
        _registry.backend_of(a, backend="numpy")
        _registry._claim(a)
    assert calls.count(Sub) == 1


def test_third_party_plugin_registers_through_the_hook(monkeypatch):
    monkeypatch.setattr(_registry, "_type_cache", {})

    class Marker:  # a foreign array type (NumPy subclasses are host data by design)
        def __init__(self, a):
            self.a = np.asarray(a)

    class ThirdPartyBackend(plugin.Backend):
        name = "thirdparty"
        module = "numpy"
        extra = "thirdparty"

        def is_array_type(self, tp):
            return issubclass(tp, Marker)

        def namespace(self):
            return _registry._all()["numpy"].namespace()

        def asarray(self, v, dtype=None, device=None):
            return Marker(np.asarray(v, dtype))

        def to_numpy(self, m):
            return m.a

        def version(self):
            return "1.0"

    class ThirdParty:
        @plugin.hookimpl
        def multisampled_register_backends(self, register):
            register(ThirdPartyBackend())

    tp = ThirdParty()
    try:
        _registry.register_plugin(tp)
        assert "thirdparty" in [i.name for i in multisampled.backends()]
        assert context(Marker(np.zeros(2))).name == "thirdparty"
        assert isinstance(context([1.0], backend="thirdparty").asarray([1.0]), Marker)
    finally:
        _registry.plugin_manager().unregister(tp)
        _registry._backends.pop("thirdparty", None)
        _registry._type_cache.clear()


def test_registering_a_non_backend_is_a_type_error():
    with pytest.raises(TypeError, match="Backend"):
        _registry._register(object())


def test_broken_plugin_warns_and_the_rest_still_load(monkeypatch):
    class BrokenEntryPoint:
        name = "broken"
        value = "does_not_exist.module"

        def load(self):
            raise ImportError("no module named does_not_exist")

    import importlib.metadata

    real = importlib.metadata.entry_points

    def fake(group=None, **kw):
        eps = list(real(group=group, **kw))
        return eps + [BrokenEntryPoint()] if group == _registry.ENTRY_POINT_GROUP else eps

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    saved = (_registry._pm, dict(_registry._backends))
    try:
        _registry._reset_for_tests()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = [i.name for i in multisampled.backends()]
        assert "numpy" in names
        assert any("broken" in str(w.message) for w in caught)
    finally:
        _registry._reset_for_tests()
        _registry._pm, _ = saved[0], _registry._backends.update(saved[1])


def test_uninstalled_backend_error_names_the_extra(monkeypatch):
    class Ghost(plugin.Backend):
        name = "ghost"
        module = "ghost_framework"
        extra = "ghost"

        def is_array_type(self, tp):
            return False

        def namespace(self):
            return None

        def version(self):
            return None

    fake = Ghost()
    monkeypatch.setitem(_registry._backends, "ghost", fake)
    with pytest.raises(ImportError, match=r"multisampled\[ghost\]"):
        _registry.get_backend("ghost")
    with pytest.raises(ValueError, match=r"multisampled\[ghost\]"):
        _registry.get_backend("nope")
