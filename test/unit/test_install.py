"""``pip install .`` into a fresh environment: console scripts that work anywhere, no ``cmd`` shadowing.

The wheel is built from a scratch copy of the sources (the repository stays clean) without build
isolation, with the project venv's setuptools, and installed into a fresh venv with ``--no-deps
--no-index``: no network.  The fresh venv reaches the dependencies (kubernetes, pydantic, ...)
through a ``.pth`` line naming the project venv's site-packages; a path added that way is not
scanned for ``.pth`` files itself, so the project's editable install there stays inactive and
everything of ours that imports comes from the wheel (checked below).  Every command runs in a
directory outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [
    "kubestellar",
    "kubectl-kubestellar",
    "mailbox-controller",
    "where-resolver",
    "placement-translator",
]


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the wheel, the fresh venv, a directory outside the repository)."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("apis", "pkg", "cmd", "config"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    dist = root / "dist"
    _ok(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(dist),
                ".",
            ],
            cwd=src,
            timeout=300,
        )
    )
    (wheel,) = dist.glob("kubestellar_py-*.whl")
    venv = root / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root))
    py = venv / "bin" / "python"
    purelib = Path(
        _ok(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root)).strip()
    )
    (purelib / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _ok(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(py),
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                str(wheel),
            ],
            cwd=root,
            timeout=300,
        )
    )
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return wheel, venv, elsewhere


def test_the_wheel_has_no_cmd_package(installed: tuple[Path, Path, Path]) -> None:
    wheel, _, _ = installed
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/", 1)[0] for n in z.namelist() if not n.split("/", 1)[0].endswith(".dist-info")}
        names = set(z.namelist())
    assert tops == {"apis", "pkg", "kubestellar_cmd", "kubestellar_config"}, tops
    assert "kubestellar_config/kube-exports/index.yaml" in names
    assert "kubestellar_cmd/kubectl_kubestellar.py" in names


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_runs_from_anywhere(installed: tuple[Path, Path, Path], script: str) -> None:
    _, venv, elsewhere = installed
    out = _ok(_run([str(venv / "bin" / script), "--help"], cwd=elsewhere))
    assert out.startswith("usage: "), out


def test_plugin_verbs_and_one_line_errors(installed: tuple[Path, Path, Path]) -> None:
    _, venv, elsewhere = installed
    plugin = str(venv / "bin" / "kubectl-kubestellar")
    out = _ok(_run([plugin, "--help"], cwd=elsewhere))
    assert out.startswith("usage: kubectl kubestellar")
    for verb in ("init", "ensure", "remove"):
        assert f"    {verb} " in out, out
    done = _run([plugin, "ensure", "wmw", "Not_Valid"], cwd=elsewhere)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "kubectl kubestellar: error: invalid workspace name 'Not_Valid': use at most 63 lowercase letters, "
        "digits and '-', starting and ending with a letter or digit"
    ]
    missing = elsewhere / "no-such-kubeconfig"
    done = _run([plugin, "init", "--kubeconfig", str(missing)], cwd=elsewhere)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"kubectl kubestellar: error: cannot read kubeconfig {missing}: No such file or directory"
    ]


def test_our_code_comes_from_the_wheel(installed: tuple[Path, Path, Path]) -> None:
    _, venv, elsewhere = installed
    check = (
        "import apis, pkg, kubestellar_cmd.kubestellar as k; from pkg import bootstrap; "
        "print(pkg.__file__); print(k.__file__); print(bootstrap.CONFIG_DIR); "
        "print(len(bootstrap.kube_export_names()))"
    )
    lines = _ok(_run([str(venv / "bin" / "python"), "-c", check], cwd=elsewhere)).split()
    for path in lines[:3]:
        assert Path(path).is_relative_to(venv), lines
        assert not Path(path).is_relative_to(REPO), lines
    assert int(lines[3]) > 0


def test_standard_library_cmd_is_not_shadowed(installed: tuple[Path, Path, Path]) -> None:
    _, venv, elsewhere = installed
    check = "import cmd, pdb; assert pdb.Pdb.__mro__[2] is cmd.Cmd; print(cmd.__file__)"
    out = _ok(_run([str(venv / "bin" / "python"), "-c", check], cwd=elsewhere)).strip()
    assert Path(out) == Path(sysconfig.get_paths()["stdlib"]) / "cmd.py"


def test_the_repository_root_still_runs_python_m_cmd(installed: tuple[Path, Path, Path]) -> None:
    _, venv, _ = installed
    out = _ok(_run([str(venv / "bin" / "python"), "-m", "cmd.kubestellar", "--help"], cwd=REPO))
    assert out.startswith("usage: kubestellar")
