"""The README's commands and examples are true: CI runs its test command, its code runs."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_fresh_machine_commands():
    first_section = README.split("## Quickstart")[0]
    commands = [b.strip() for b in re.findall(r"```bash\n(.*?)```", first_section, flags=re.S)]
    assert len(commands) == 2, commands
    assert commands[0].endswith("multisampled check")
    assert "pip install ." in commands[0]
    assert "pytest" in commands[1] and ".ci/constraints.txt" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_command = ci[ci.index("# README test command:") + 1].strip()
    first_section = README.split("## Quickstart")[0]
    readme_test = re.findall(r"```bash\n(.*?)```", first_section, flags=re.S)[1].strip()
    assert readme_test.endswith(ci_command), (readme_test, ci_command)


def test_constraints_pin_torch():
    pins = (ROOT / ".ci" / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", pins, flags=re.M)


def _runnable_python_blocks():
    # the plugin template needs a framework called "mylib": it is shown, not run
    return [b for b in _blocks("python") if "mylib" not in b]


@pytest.mark.parametrize("index", range(len(_runnable_python_blocks())))
def test_readme_python_blocks_run_and_print_what_they_say(index, tmp_path):
    code = _runnable_python_blocks()[index]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    claimed = [m.strip() for m in re.findall(r"print\(.*\)\s*#\s*(.*)", code)]
    printed = [line.strip() for line in r.stdout.splitlines()]
    for claim in claimed:
        assert claim in printed, (claim, printed)
