"""The project's ``cmd`` package shadows the standard library's ``cmd``; pdb and pytest still work.

Each check runs in a fresh interpreter from the repository root, where ``python -m`` and
``python -c`` put the root first on ``sys.path``, so ``import cmd`` finds the project's package.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=120
    )


def test_cmd_is_the_project_package() -> None:
    done = _run("-c", "import cmd; print(cmd.__file__)")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == REPO / "cmd" / "__init__.py"


def test_import_pdb() -> None:
    done = _run("-c", "import pdb")
    assert done.returncode == 0, done.stderr


def test_pytest_runs() -> None:
    done = _run("-m", "pytest", "--version")
    assert done.returncode == 0, done.stderr
    assert "pytest" in done.stdout + done.stderr


def test_pdb_subclasses_the_standard_library_cmd() -> None:
    stdlib_cmd = Path(sysconfig.get_paths()["stdlib"]) / "cmd.py"
    check = (
        "import cmd, pdb; "
        "assert pdb.Pdb.__mro__[2] is cmd.Cmd, pdb.Pdb.__mro__; "
        "print(cmd.Cmd.cmdloop.__code__.co_filename)"
    )
    done = _run("-c", check)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == stdlib_cmd


@pytest.mark.parametrize("command", ["help", "p 6 * 7", "continue"])
def test_pdb_works_as_a_debugger(command: str) -> None:
    # Drive a real pdb session: it must read commands through cmd.Cmd.
    done = subprocess.run(
        [sys.executable, "-c", "import pdb; pdb.Pdb(nosigint=True).run('x = 1'); print('ran')"],
        cwd=REPO,
        input=f"{command}\ncontinue\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ran" in done.stdout
    if command.startswith("p "):
        assert "42" in done.stdout
