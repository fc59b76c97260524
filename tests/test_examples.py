"""The scripts in ``examples/`` run and do what their docstrings say."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_next_token_learns_under_the_full_softmax(capsys):
    pytest.importorskip("torch")
    example = load("torch_next_token")
    out = example.main(["--vocab", "5000", "--steps", "120", "--batch", "128"])
    # held-out pairs, scored by the full softmax over all 5000 classes: log(5000) = 8.5 before
    assert out["eval_loss_before"] > 8.0
    assert out["eval_loss_after"] < out["eval_loss_before"] - 2.0
    assert '"eval_loss_after"' in capsys.readouterr().out


def test_flax_next_token_learns_under_the_full_softmax(capsys):
    pytest.importorskip("flax")
    pytest.importorskip("optax")
    example = load("flax_next_token")
    out = example.main(["--vocab", "5000", "--steps", "120", "--batch", "128"])
    assert out["eval_loss_before"] > 8.0
    assert out["eval_loss_after"] < out["eval_loss_before"] - 2.0
    assert '"eval_loss_after"' in capsys.readouterr().out


def test_keras_next_token_learns_under_the_full_softmax(capsys):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() not in ("tensorflow", "jax", "torch"):
        pytest.skip(f"Keras runs on {keras.backend.backend()} here")
    example = load("keras_next_token")
    out = example.main(["--vocab", "5000", "--examples", "12000", "--epochs", "3",
                        "--batch", "128"])
    assert out["eval_loss_before"] > 8.0
    assert out["eval_loss_after"] < out["eval_loss_before"] - 2.0
    assert '"eval_loss_after"' in capsys.readouterr().out
