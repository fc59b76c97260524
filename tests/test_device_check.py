"""benchmarks/device_check.sh, the one script of the CUDA device check: its dry run on the CPU
(the same stages, tiny benchmark shapes, CUDA-only parts skipped) runs to the end, within a
bounded time, and leaves the JSON and logs the GPU run would leave under $OUT."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils' timeout")


def _run(out, *args, timeout=240):
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable)
    for name in ("TRITON_INTERPRET", "MULTISAMPLED_BACKEND"):
        env.pop(name, None)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is the CPU's stand-in")
def test_device_check_dry_run_leaves_the_json_and_logs(tmp_path):
    # --shim: the working tree imported through the script's own package folder, as on a GPU
    # machine where multisampled is not installed
    result = _run(tmp_path, "--dry-run", "--shim")
    log = result.stdout[-4000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    files = {p.name for p in tmp_path.iterdir()}
    assert {"env.json", "pytest_cuda.log", "pytest_cuda.xml", "bench_torch_cuda.json",
            "bench_torch_cuda.log", "summary.json"} <= files, files
    assert len(files) <= 8  # what the device tool brings back

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert summary["pytest_rc"] == 0 and summary["bench_rc"] == 0
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["cuda_available"] is False
    assert "shim" in env["multisampled"], env  # not the installed copy

    pytest_log = (tmp_path / "pytest_cuda.log").read_text()
    assert "skipped" in pytest_log and "needs a CUDA device" in pytest_log
    assert " passed" not in pytest_log and "failed" not in pytest_log  # nothing ran on a CPU

    report = json.loads((tmp_path / "bench_torch_cuda.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu (dry run)"
    steps = [r for r in report["rows"] if r["kind"] == "step"]
    samplers = [r for r in report["rows"] if r["kind"] == "sampler"]
    assert not [r for r in report["rows"] if "error" in r], report["rows"]
    # every row: 2 dtypes x dense/sparse x 2 loss paths x Triton kernels on/off
    assert len(steps) == 16
    assert {(r["dtype"], r["grads"], r["path"], r["sampler"]) for r in steps} == {
        (d, g, p, s) for d in ("float32", "bfloat16") for g in ("dense", "sparse")
        for p in ("core", "fused") for s in ("routed", "portable")}
    for r in steps:
        assert r["step_ms"] > 0 and r["sampler_ms"] > 0
        assert r["triton_routed"] is False  # CPU tensors keep their path
        assert r["peak_extra_mib"] == "skipped: needs CUDA"
        if r["grads"] == "dense":
            assert r["graph_ms"] == "skipped: needs CUDA"
    (row,) = samplers
    assert row["routed_matches_portable"] is True
    if importlib.util.find_spec("triton") is None:  # not imported here (see .ci/constraints.txt)
        assert row["triton_fused_ms"] == "skipped: triton is not installed"
        return
    # the fused Triton sampler ran under the interpreter and gave the core's candidates
    assert row["triton_fused_matches_portable"] is True and row["triton_fused_ms"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_device_check_without_cuda_refuses_to_start(tmp_path):
    result = _run(tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CUDA is not available" in result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["dry_run"] is False
    assert not (tmp_path / "pytest_cuda.log").exists()


def test_device_check_rejects_an_unknown_argument(tmp_path):
    result = _run(tmp_path, "--dryrun", timeout=30)
    assert result.returncode == 2 and "unknown argument '--dryrun'" in result.stderr
