#!/usr/bin/env bash
# The CUDA device check in one script, within 8 minutes on one GPU: tests/test_torch_cuda.py,
# then benchmarks/bench_torch_cuda.py for every row (both loss paths, the Triton sampler kernels
# on and off, the sampler rows), with JSON and logs under $OUT:
#
#   env.json                  torch, triton, CUDA device, commit
#   pytest_cuda.log/.xml      the CUDA tests (log and JUnit XML)
#   bench_torch_cuda.json     the benchmark's rows, rewritten after every row
#   bench_torch_cuda.log      its progress (one JSON row a line) and final report
#   summary.json              each stage's exit status and seconds
#
# Usage:
#   benchmarks/device_check.sh            on the GPU machine ($OUT set; a temp dir otherwise)
#   benchmarks/device_check.sh --dry-run  on a CPU: the same stages, tiny benchmark shapes,
#                                         CUDA-only tests and fields skipped, Triton kernels
#                                         under TRITON_INTERPRET=1 (in the benchmark only)
#   --shim                                import the working tree through a temporary package
#                                         folder even where multisampled is installed
# Environment: PYTHON (default python3); PYTEST_BUDGET and BENCH_BUDGET (seconds, default 250
# and 160: with the set-up and the grace after each budget, at most 7.5 minutes); BENCH_COMMIT
# (recorded; default: git's HEAD where .git exists). Wheels in .whl/ (a package the machine
# lacks, array-api-compat say) are installed into a temporary folder first.
# Exit status: 0 when every stage passed, 2 when it could not start, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY_RUN=0
SHIM=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        --shim) SHIM=1 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "device_check.sh: unknown argument '$arg' (expected --dry-run, --shim)" >&2
           exit 2 ;;
    esac
done
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
PYTEST_BUDGET=${PYTEST_BUDGET:-250}
BENCH_BUDGET=${BENCH_BUDGET:-160}
export PYTHONUNBUFFERED=1
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
echo "device_check: OUT=$OUT dry_run=$DRY_RUN python=$PY"

# ---------------------------------------------------------------- set-up
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SCRATCH/site" .whl/*.whl || exit 2
    export PYTHONPATH="$SCRATCH/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$SHIM" = 1 ] || ! "$PY" -c "import multisampled.backends.torch" 2>/dev/null; then
    # the installed layout (pyproject's package-dir) as links, and a dist-info holding the
    # entry points, so the working tree imports without pip
    pkg="$SCRATCH/shim/multisampled"
    mkdir -p "$pkg"
    for f in multisampled/*; do ln -s "$ROOT/$f" "$pkg/"; done
    ln -s "$ROOT/backends" "$pkg/backends"
    ln -s "$ROOT/conformance" "$pkg/conformance"
    "$PY" - "$SCRATCH/shim" <<'PYEOF' || exit 2
import pathlib, sys, tomllib
meta = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
info = pathlib.Path(sys.argv[1]) / f"multisampled-{meta['version']}.dist-info"
info.mkdir()
(info / "METADATA").write_text(
    f"Metadata-Version: 2.1\nName: multisampled\nVersion: {meta['version']}\n")
lines = []
for group, entries in meta.get("entry-points", {}).items():
    lines.append(f"[{group}]")
    lines += [f"{name} = {target}" for name, target in entries.items()]
(info / "entry_points.txt").write_text("\n".join(lines) + "\n")
PYEOF
    export PYTHONPATH="$SCRATCH/shim${PYTHONPATH:+:$PYTHONPATH}"
    # the repository root (the current directory) must not shadow the folder: its
    # multisampled/ lacks the backends and the kit
    export PYTHONSAFEPATH=1
fi
export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if ! "$PY" - > "$OUT/env.json" <<'PYEOF'
import json, os, platform
import numpy, torch
import multisampled
import multisampled.backends.torch  # noqa: F401  (the package and its torch backend import)
try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = None
cuda = torch.cuda.is_available()
print(json.dumps({
    "python": platform.python_version(), "numpy": numpy.__version__,
    "torch": torch.__version__, "torch_cuda": torch.version.cuda, "triton": triton_version,
    "cuda_available": cuda, "device": torch.cuda.get_device_name() if cuda else None,
    "commit": os.environ.get("BENCH_COMMIT"), "multisampled": multisampled.__file__},
    indent=1))
PYEOF
then
    echo "device_check: the environment lacks a package (see above); no stage ran" >&2
    echo '{"error": "set-up failed: torch or multisampled does not import"}' > "$OUT/summary.json"
    exit 2
fi
cat "$OUT/env.json"
if [ "$DRY_RUN" = 0 ] && ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"
then
    echo "device_check: CUDA is not available (use --dry-run on a CPU)" >&2
    echo '{"error": "CUDA is not available", "dry_run": false}' > "$OUT/summary.json"
    exit 2
fi

# ---------------------------------------------------------------- the CUDA tests
t0=$SECONDS
timeout --signal=INT --kill-after=15 "$PYTEST_BUDGET" \
    "$PY" -m pytest tests/test_torch_cuda.py -q -rfEs -p no:cacheprovider \
    --junitxml="$OUT/pytest_cuda.xml" 2>&1 | tee "$OUT/pytest_cuda.log"
pytest_rc=${PIPESTATUS[0]}
pytest_s=$((SECONDS - t0))

# ---------------------------------------------------------------- the benchmark, every row
t0=$SECONDS
bench_args=(--path both --sampler both --out "$OUT/bench_torch_cuda.json")
bench_env=()
if [ "$DRY_RUN" = 1 ]; then
    bench_args+=(--dry-run)
    bench_env=(TRITON_INTERPRET=1)  # the Triton kernels on CPU tensors, this process only
fi
env ${bench_env[@]+"${bench_env[@]}"} timeout --signal=TERM --kill-after=10 "$BENCH_BUDGET" \
    "$PY" benchmarks/bench_torch_cuda.py "${bench_args[@]}" > "$OUT/bench_torch_cuda.log" 2>&1
bench_rc=$?
bench_s=$((SECONDS - t0))
tail -n 3 "$OUT/bench_torch_cuda.log"

cat > "$OUT/summary.json" <<JSON
{"dry_run": $([ "$DRY_RUN" = 1 ] && echo true || echo false), "commit": "$BENCH_COMMIT",
 "pytest_rc": $pytest_rc, "pytest_s": $pytest_s, "pytest_budget_s": $PYTEST_BUDGET,
 "bench_rc": $bench_rc, "bench_s": $bench_s, "bench_budget_s": $BENCH_BUDGET}
JSON
cat "$OUT/summary.json"
[ "$pytest_rc" = 0 ] && [ "$bench_rc" = 0 ]
