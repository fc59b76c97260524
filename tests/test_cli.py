"""The command line: `multisampled --version`, `backends`, `check` and `bench`."""

import json
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from multisampled import cli


def run(*args, env=None):
    # outside the checkout, so the installed package is imported, not the source folder
    return subprocess.run(
        [sys.executable, "-m", "multisampled", *args], capture_output=True, text=True, env=env,
        cwd=tempfile.gettempdir(),
    )


def test_backends_lists_numpy_with_version_and_marks_the_default(capsys):
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if " numpy " in f" {l} ")
    assert line.startswith("*") and np.__version__ in line and "cpu" in line


def test_backends_json():
    r = run("backends", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["numpy"]["available"] and rows["numpy"]["devices"] == ["cpu"]


def test_check_passes_on_every_installed_backend():
    r = run("check", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["passed"]
    backends = {name for row in report["matrix"].values() for name in row}
    assert "numpy" in backends
    assert "sampled_softmax_loss" in report["matrix"]
    assert all(status == "pass" for row in report["matrix"].values() for status in row.values())


def test_check_reports_a_wrong_backend_as_failed(monkeypatch):
    """A backend whose results differ from NumPy's must show as FAIL, not pass."""
    pytest.importorskip("torch")
    import multisampled as ms

    real = ms.sampled_softmax_loss

    def off_by_a_bit(*args, **kwargs):
        out = real(*args, **kwargs)
        return out + 1e-3 if type(out).__module__.startswith("torch") else out

    monkeypatch.setattr(ms, "sampled_softmax_loss", off_by_a_bit)
    matrix, ok = cli.run_check(["numpy", "torch"])
    assert not ok
    assert matrix["sampled_softmax_loss"]["numpy"] == "pass"
    assert matrix["sampled_softmax_loss"]["torch"].startswith("FAIL")


def test_check_unknown_backend_is_a_clear_error():
    r = run("check", "--backend", "nosuch")
    assert r.returncode == 2
    assert "nosuch" in r.stderr and "numpy" in r.stderr


def test_env_var_with_unknown_backend_is_reported(monkeypatch):
    import os

    r = run("backends", env={**os.environ, "MULTISAMPLED_BACKEND": "nosuch"})
    assert r.returncode == 2
    assert "MULTISAMPLED_BACKEND='nosuch'" in r.stderr


# --version, --help, --debug


def test_version_prints_the_name_and_the_version():
    import importlib.metadata

    import multisampled

    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"multisampled {multisampled.__version__}\n"
    assert multisampled.__version__ == importlib.metadata.version("multisampled")


@pytest.mark.parametrize("command", [[], ["backends"], ["check"], ["bench"]])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: multisampled")
    for markup in ("``", ":func:", ":class:", ".. "):
        assert markup not in out, (markup, out)


def test_bench_help_names_the_workloads_and_the_anchor(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "cpu-small" in out and "cpu-medium" in out and "B=512 D=128 C=100,000 S=1,024" in out
    assert "tf.nn.sampled_softmax_loss" in out


@pytest.mark.parametrize("command", ["backends", "check", "bench"])
def test_every_command_defines_debug_and_quiet(command):
    args = cli.build_parser().parse_args([command])
    assert args.debug is False and args.quiet is False
    assert cli.build_parser().parse_args([command, "--debug"]).debug is True


def test_debug_prints_the_traceback_and_plain_errors_do_not(capsys):
    assert cli.main(["check", "--backend", "nosuch", "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "multisampled: error: --backend='nosuch' is not a known backend" in err
    assert cli.main(["check", "--backend", "nosuch", "-q", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "nosuch" in err


# a reader that goes away (`multisampled check --json | head -1`)


def test_a_closed_stdout_pipe_ends_quietly():
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        r = subprocess.run(
            [sys.executable, "-m", "multisampled", "check", "--json", "--backend", "numpy"],
            stdout=write_end,
            stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    assert "Exception ignored" not in r.stderr, r.stderr
    assert r.returncode == 1  # as Python's own documentation of SIGPIPE recommends


def test_check_json_piped_into_head():
    cmd = f"'{sys.executable}' -m multisampled check --json --backend numpy | head -1"
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    assert r.returncode == 0
    assert r.stdout == "{\n"
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr


# progress on stderr


def test_check_shows_progress_on_stderr_and_keeps_json_clean(capsys):
    assert cli.main(["check", "--backend", "numpy", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["passed"]
    total = len(report["matrix"])
    assert f"multisampled check: [1/{total}] numpy: " in captured.err


def test_quiet_turns_progress_off(capsys):
    assert cli.main(["check", "--backend", "numpy", "--json", "--quiet"]) == 0
    assert "multisampled check:" not in capsys.readouterr().err


def test_backends_shows_progress_per_backend(capsys):
    assert cli.main(["backends", "--json"]) == 0
    captured = capsys.readouterr()
    names = [row["name"] for row in json.loads(captured.out)]
    for i, name in enumerate(names, 1):
        assert f"multisampled backends: [{i}/{len(names)}] {name}: devices" in captured.err


def test_progress_on_a_terminal_is_a_tqdm_bar(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    assert cli.main(["check", "--backend", "numpy", "--json"]) == 0
    err = capsys.readouterr().err
    assert "multisampled check:" in err and "step/s" in err  # tqdm's rate
    assert "[1/" not in err  # not the plain lines


def test_progress_without_tqdm_falls_back_to_plain_lines(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    assert cli.main(["check", "--backend", "numpy", "--json"]) == 0
    err = capsys.readouterr().err
    assert "multisampled check: [1/" in err and "step/s" not in err


# check with NumPy alone


def test_check_of_numpy_alone_says_it_compares_numpy_with_itself(capsys):
    assert cli.main(["check", "--backend", "numpy", "-q"]) == 0
    out = capsys.readouterr().out
    assert "compares NumPy with itself" in out
    assert out.rstrip().endswith("all passed")


def test_check_on_a_numpy_only_install_says_so(monkeypatch, capsys):
    import multisampled as ms

    numpy_only = [i for i in ms.backends() if i.name == "numpy"]
    monkeypatch.setattr(ms, "backends", lambda: numpy_only)
    assert cli.main(["check", "--json", "-q"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert set(report["matrix"]["sampled_softmax_loss"]) == {"numpy"}
    assert "numpy is the only installed backend" in report["note"]
    assert "compares NumPy with itself" in captured.err


def test_check_of_several_backends_has_no_numpy_only_note():
    assert cli.numpy_only_note(["numpy", "torch"], ["numpy", "torch"]) is None
    assert "leave out --backend" in cli.numpy_only_note(["numpy"], ["numpy", "torch"])


# bench: the shape of the output only (no timing is asserted)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["bench", "--workload", "cpu-small", "--repeats", "2", "--warmup", "1"]


def _main_captured(args):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """Every installed backend at the tiny workload, once: (exit code, stdout, stderr, report)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        pass
    code, out, err = _main_captured([*TINY, "--json", str(path)])
    if threads is not None:
        assert torch.get_num_threads() == threads, "bench changed torch's thread count"
    return code, out, err, json.loads(path.read_text())


def _installed_bench_backends():
    import multisampled as ms

    return [i.name for i in ms.backends() if i.available and i.name in cli._bench.BACKENDS]


def test_bench_prints_a_table_and_ends_with_the_ratios(tiny_bench):
    code, out, err, report = tiny_bench
    assert code == 0, out + err
    lines = out.rstrip("\n").splitlines()
    assert any(l.startswith("row") and "median ms" in l and "ratio" in l for l in lines)
    backends = _installed_bench_backends()
    for name in backends:
        assert any(l.startswith(f"{name} ") for l in lines), name
    last = lines[-1]
    assert last.startswith("ratios vs tensorflow-native: ")
    if report["anchor"] is None:
        assert "TensorFlow is not installed" in last
    else:
        for name in backends:
            assert re.search(rf"\b{name} \d+\.\d\dx", last), (name, last)
        assert "numpy" not in backends or re.search(r"numpy \d+\.\d\dx \(forward\)", last)


def test_bench_json_report(tiny_bench):
    _, _, err, report = tiny_bench
    assert report["workload"] == {"name": "cpu-small", "B": 64, "D": 32, "C": 5000, "S": 128,
                                  "dtype": "float32"}
    assert report["repeats"] == 2
    assert isinstance(report["loadavg_1m_before"], float)
    assert isinstance(report["loadavg_1m_after"], float)
    rows = {r["name"]: r for r in report["rows"]}
    for name in _installed_bench_backends():
        row = rows[name]
        assert row["error"] is None, row
        assert len(row["times_ms"]) == 2 and row["median_ms"] > 0
        assert row["what"] == ("forward" if name == "numpy" else "forward+backward")
    assert report["summary"].startswith("ratios vs tensorflow-native")
    assert "multisampled bench: [1/" in err  # progress lines on stderr


def test_bench_rows_say_how_they_ran(tiny_bench):
    rows = {r["name"]: r for r in tiny_bench[3]["rows"]}
    if "numpy" in rows:
        assert "forward only" in rows["numpy"]["note"]
    if "jax" in rows:
        note = rows["jax"]["note"]
        assert "jax.jit(jax.value_and_grad" in note
        assert "outside jit" in note or "inside jit" in note
    if "torch" in rows:
        note = rows["torch"]["note"]
        assert re.search(r"\d+ threads? \((torch default|OMP_NUM_THREADS=\d+)\)", note), note
    if tiny_bench[3]["anchor"]:
        native = rows["tensorflow-native"]
        assert native["ratio"] == 1.0 and "tf.function" in native["note"]
        assert rows["tensorflow-native-forward"]["what"] == "forward"


def test_bench_json_to_stdout_is_clean_and_the_table_goes_to_stderr():
    code, out, err = _main_captured([*TINY, "--backend", "numpy", "--json", "-"])
    assert code == 0, err
    report = json.loads(out)
    assert [r["name"] for r in report["rows"]][0] == "numpy"
    assert err.rstrip("\n").splitlines()[-1].startswith("ratios vs tensorflow-native")


@pytest.mark.parametrize(
    "sweep", [["--sweep-values", "32,64"], ["--sweep", "C", "--sweep-values", "1000,2000"]]
)
def test_bench_plot_writes_a_png(sweep, tmp_path):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "bench.png", tmp_path / "bench.json"
    code, out, err = _main_captured(
        [*TINY, "--backend", "numpy", "--plot", str(png), "--json", str(js), *sweep]
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC
    report = json.loads(js.read_text())
    axis = "C" if "C" in sweep else "S"
    values = [int(v) for v in sweep[-1].split(",")]
    assert report["sweep"] == {"axis": axis, "values": values}
    assert sorted({r[axis] for r in report["rows"] if r["name"] == "numpy"}) == values
    assert out.rstrip("\n").splitlines()[-1].startswith("ratios vs tensorflow-native")


def test_bench_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = _main_captured([*TINY, "--plot", str(tmp_path / "b.png")])
    assert code == 2
    assert "--plot needs matplotlib" in err and "pip install 'multisampled[plot]'" in err
    assert "multisampled bench: [" not in err  # refused before anything ran
    assert not (tmp_path / "b.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--repeats", "0"], "argument --repeats: expected a positive integer, got '0'"),
        (["--warmup", "x"], "argument --warmup: expected an integer >= 0, got 'x'"),
        (["--plot", "b.jpg"], "argument --plot: expected a file name ending in .png, got 'b.jpg'"),
        (["--sweep-values", "0,8"], "argument --sweep-values: expected comma-separated positive"),
        (["--workload", "huge"], "argument --workload: invalid choice: 'huge'"),
    ],
)
def test_bench_argument_errors_name_the_argument_and_the_value(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "nosuch"], "--backend='nosuch' is not a known backend"),
        (["--sweep-values", "100,9000"], "--sweep S value 9,000: S=9,000 must not exceed C=5,000"),
    ],
)
def test_bench_value_errors_name_the_argument_and_the_value(args, message):
    code, out, err = _main_captured([*TINY, *args])
    assert code == 2 and message in err, err


def test_ratios_divide_by_the_anchor_of_the_same_kind_and_size():
    from multisampled import _bench

    small, big = _bench.WORKLOADS["cpu-small"], _bench.WORKLOADS["cpu-medium"]
    rows = [
        _bench.Row("numpy", small, _bench.FORWARD, "", [3.0]),
        _bench.Row("torch", small, _bench.FORWARD_BACKWARD, "", [8.0]),
        _bench.Row("torch", big, _bench.FORWARD_BACKWARD, "", [50.0]),
        _bench.Row(_bench.ANCHOR, small, _bench.FORWARD_BACKWARD, "", [4.0]),
        _bench.Row(_bench.ANCHOR_FORWARD, small, _bench.FORWARD, "", [2.0]),
        _bench.Row(_bench.ANCHOR, big, _bench.FORWARD_BACKWARD, "", [25.0]),
    ]
    _bench.add_ratios(rows)
    assert [(r.ratio, r.ratio_to) for r in rows[:3]] == [
        (1.5, _bench.ANCHOR_FORWARD), (2.0, _bench.ANCHOR), (2.0, _bench.ANCHOR)]


def test_ratio_line_without_tensorflow_says_why():
    from multisampled import _bench

    report = {"workload": {"name": "cpu-small", "B": 64, "D": 32, "C": 5000, "S": 128,
                           "dtype": "float32"}, "anchor": None, "rows": []}
    line = _bench.ratio_line(report)
    assert line.startswith("ratios vs tensorflow-native: none (TensorFlow is not installed")
    assert "multisampled[tensorflow]" in line
