"""Entry points of kubestellar-py (``python -m cmd.<name>``).

Installed (``pip install .``, ``make venv``) this directory is the package ``kubestellar_cmd``
(see setup.py), so that nothing named ``cmd`` lands in site-packages; its console scripts are
``kubestellar``, ``kubectl-kubestellar``, ``mailbox-controller``, ``where-resolver`` and
``placement-translator``.  The modules here import one another relatively, so that they work under
either name.

This package is named ``cmd`` as the user asked, which shadows the standard library's ``cmd``
module whenever the repository root is first on ``sys.path`` (``python -m pytest``, ``python -m
cmd.x``).  ``pdb`` (and so pytest) does ``import cmd`` and subclasses ``cmd.Cmd``.  To keep both
working, this package loads the standard library module under a private name and re-exports its
public names, so ``cmd.Cmd`` is the real ``cmd.Cmd``.
"""

from __future__ import annotations

import importlib.util as _ilu
import sysconfig as _sysconfig
from pathlib import Path as _Path
from typing import Any as _Any


def _load_stdlib_cmd() -> _Any:
    path = _Path(_sysconfig.get_paths()["stdlib"]) / "cmd.py"
    spec = _ilu.spec_from_file_location("_stdlib_cmd", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a broken Python install
        raise ImportError(f"cannot load the standard library's cmd module from {path}")
    module = _ilu.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_stdlib_cmd = _load_stdlib_cmd()
Cmd = _stdlib_cmd.Cmd
PROMPT = _stdlib_cmd.PROMPT
IDENTCHARS = _stdlib_cmd.IDENTCHARS
__all__ = ["IDENTCHARS", "PROMPT", "Cmd"]
