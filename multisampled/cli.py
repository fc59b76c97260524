"""The ``multisampled`` command: ``backends``, ``check`` and ``bench``.

``check`` runs every public API with the same seed on every installed backend and prints a
pass/fail matrix against the NumPy result: sampled candidates must be bit-identical, values
must agree to float32 precision. ``bench`` times the sampled softmax loss on every installed
backend against TensorFlow's own ``tf.nn.sampled_softmax_loss``.

Progress goes to stderr (a tqdm bar on a terminal when tqdm is installed, plain lines
otherwise), so that ``--json`` output on stdout stays clean.

This module parses the arguments and runs the commands; ``check``'s cases and its matrix live
in ``_cli_check``, ``bench``'s options and its report in ``_cli_bench``, its workloads and
timing in ``_bench``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import traceback
from typing import Any, Callable, Optional

import numpy as np

import multisampled as ms

from . import _bench
from ._cli_bench import _BENCH_DESCRIPTION, _require_matplotlib, add_arguments, write_report
from ._cli_check import _cases, _print_matrix, _problem, _status, numpy_only_note

ENV_VAR = "MULTISAMPLED_BACKEND"

DESCRIPTION = """\
TensorFlow's and Paddle's sampled softmax, NCE and candidate samplers on NumPy, PyTorch,
JAX, TensorFlow and plugin backends.
"""

EPILOG = """\
examples:
  multisampled backends
  multisampled check --backend torch
  multisampled check --json > check.json
  multisampled bench --workload cpu-small --repeats 5
  multisampled bench --json bench.json --plot bench.png --sweep C
"""


# registry access: the only places the CLI reaches behind the public API


def _get_backend(name: str) -> Any:
    """The registered backend object ``name``; an error naming ``--backend`` if unknown."""
    from . import _registry

    return _registry.get_backend(name, source="--backend")


def _default_backend_name() -> str:
    """The backend host data goes to (validates ``$MULTISAMPLED_BACKEND``)."""
    from . import _registry

    return str(_registry.default_backend().name)


def _installed_backend_names() -> list[str]:
    return [info.name for info in ms.backends() if info.available]


# progress on stderr


def _stderr_is_tty() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _tqdm_bar(desc: str, total: int) -> Any:
    """A tqdm bar on stderr, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="step",
                dynamic_ncols=True)


class Progress:
    """Progress of ``total`` steps on stderr.

    On a terminal with tqdm installed: a bar. Otherwise one plain line per phase (a phase is
    a group of steps, such as all the APIs on one backend), which reads well in logs too.
    """

    def __init__(self, desc: str, total: int, enabled: bool = True) -> None:
        self.desc, self.total, self.count = desc, total, 0
        self._bar = _tqdm_bar(desc, total) if enabled and _stderr_is_tty() else None
        self._plain = enabled and self._bar is None
        self._phase: Optional[str] = None

    def advance(self, label: str, phase: Optional[str] = None) -> None:
        """Report that the step ``label`` starts."""
        self.count += 1
        if self._bar is not None:
            if self.count > 1:
                self._bar.update(1)
            self._bar.set_postfix_str(label)
        elif self._plain and (phase is None or phase != self._phase):
            self._phase = phase
            print(f"{self.desc}: [{self.count}/{self.total}] {label}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self.total - self._bar.n)
            self._bar.close()


# check


def _run_backend(name: str, cases: dict, progress: Progress) -> dict[str, Any]:
    """Every case on backend ``name``: {api: tuple of NumPy arrays, or the error text}."""
    b = _get_backend(name)

    def to(a: Any, b: Any = b) -> Any:
        return b.asarray(a, dtype=str(np.asarray(a).dtype))

    results: dict[str, Any] = {}
    for api, fn in cases.items():
        progress.advance(f"{name}: {api}", phase=name)
        try:
            ms.reset_streams()
            results[api] = tuple(b.to_numpy(o) for o in fn(to))
        except Exception as exc:  # report, do not stop the matrix
            results[api] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return results


def run_check(
    backend_names: Optional[list[str]] = None, progress: Optional[Progress] = None
) -> tuple[dict, bool]:
    """Run every API on each backend; returns ({api: {backend: status}}, all_passed)."""
    names = list(backend_names or _installed_backend_names())
    if "numpy" not in names:
        names = ["numpy", *names]
    names = list(dict.fromkeys(names))
    for name in names:
        _get_backend(name)  # an unknown name fails before anything runs
    cases = _cases(_problem())
    progress = progress or Progress("multisampled check", 0, enabled=False)
    results = {name: _run_backend(name, cases, progress) for name in names}
    matrix = {
        api: {name: _status(name, results["numpy"][api], results[name][api]) for name in names}
        for api in cases
    }
    ok = all(status == "pass" for row in matrix.values() for status in row.values())
    return matrix, ok


def _devices(name: str) -> list[str]:
    b = _get_backend(name)
    try:
        return list(b.devices()) if b.devices else []
    except Exception as exc:
        return [f"error: {exc}"]


def _cmd_backends(args: argparse.Namespace) -> int:
    infos = ms.backends()
    progress = Progress("multisampled backends", len(infos), enabled=not args.quiet)
    rows: list[dict[str, Any]] = []
    for info in infos:
        progress.advance(f"{info.name}: devices")
        rows.append(dict(
            name=info.name, version=info.version, available=info.available,
            devices=_devices(info.name) if info.available else [],
            install=f"pip install 'multisampled[{info.extra}]'" if info.extra
            else "pip install multisampled",
        ))
    progress.close()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    default = _default_backend_name()
    for r in rows:
        mark = "*" if r["name"] == default else " "
        if r["available"]:
            print(f"{mark} {r['name']:<12} {r['version']:<16} devices: {', '.join(r['devices'])}")
        else:
            print(f"{mark} {r['name']:<12} {'not installed':<16} {r['install']}")
    print(f"(* = default for host data; set with {ENV_VAR} or use_backend())")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    installed = _installed_backend_names()
    names = list(dict.fromkeys(["numpy", *(args.backend or installed)]))
    progress = Progress("multisampled check", len(names) * len(_cases(_problem())),
                        enabled=not args.quiet)
    matrix, ok = run_check(names, progress)
    progress.close()
    note = numpy_only_note(names, installed)
    if args.json:
        report: dict[str, Any] = {"passed": ok, "matrix": matrix}
        if note:
            report["note"] = note
            print(note, file=sys.stderr)
        print(json.dumps(report, indent=1))
    else:
        _print_matrix(matrix)
        if note:
            print("\n" + note)
        print("\nall passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


# bench


def _bench_backends(requested: Optional[list[str]]) -> list[str]:
    """The backends to time: those asked for (validated), else every installed one bench knows."""
    if not requested:
        return [n for n in _installed_backend_names() if n in _bench.BACKENDS]
    for name in requested:
        _get_backend(name)
        if name not in _bench.BACKENDS:
            raise ValueError(
                f"--backend {name!r}: bench has steps for {', '.join(_bench.BACKENDS)} only"
            )
    return list(dict.fromkeys(requested))


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.plot:
        _require_matplotlib()
    workload = _bench.WORKLOADS[args.workload]
    backends = _bench_backends(args.backend)
    anchor = importlib.util.find_spec("tensorflow") is not None
    axis = args.sweep or ("S" if args.plot or args.sweep_values else None)
    points = _bench.sweep_points(workload, axis, args.sweep_values)
    names = _bench.row_names(backends, anchor)
    progress = Progress("multisampled bench", len(points) * len(names), enabled=not args.quiet)
    report = _bench.run(workload, backends, args.repeats, args.warmup, anchor, points,
                        progress.advance)
    progress.close()
    return write_report(report, args, axis, points)


# arguments


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output on stderr")
    common.add_argument("--debug", action="store_true",
                        help="print the full traceback of an error")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multisampled", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"multisampled {ms.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options()]

    pb = sub.add_parser("backends", parents=common,
                        help="list the registered backends, their versions and devices",
                        description="List the registered backends, their framework versions "
                        "and devices; * marks the default for host data.")
    pb.add_argument("--json", action="store_true", help="print JSON on stdout")
    pb.set_defaults(func=_cmd_backends)

    pc = sub.add_parser("check", parents=common,
                        help="run every API on every installed backend and compare with NumPy",
                        description="Run every public API with the same seed on every installed "
                        "backend and compare with NumPy: sampled candidates must be "
                        "bit-identical, values must agree to float32 precision.")
    pc.add_argument("--backend", action="append", metavar="NAME",
                    help="check only this backend besides numpy (repeatable)")
    pc.add_argument("--json", action="store_true", help="print JSON on stdout")
    pc.set_defaults(func=_cmd_check)

    pn = sub.add_parser(
        "bench", parents=common, help="time the sampled softmax loss against TensorFlow's own",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_BENCH_DESCRIPTION,
    )
    add_arguments(pn)
    pn.set_defaults(func=_cmd_bench)
    return parser


# entry point


def _detach_stdout() -> None:
    """Point stdout and stderr at devnull, so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def _dispatch(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ValueError, ImportError, TypeError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"multisampled: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        finally:
            sys.stdout.flush()  # --help and --version have printed
        code = _dispatch(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (`multisampled check --json | head -1`): stop quietly
        _detach_stdout()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
