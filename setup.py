"""The package list, which pyproject.toml cannot express (the metadata is in pyproject.toml).

``cmd/`` holds the entry points (``python -m cmd.kubestellar`` from the repository root).  An
installed top-level package ``cmd`` would shadow the standard library's ``cmd`` module, which
``pdb`` imports, for every program of the environment; so the wheel (and the editable install of
``make venv``) carries that directory as the package ``kubestellar_cmd``, and the console scripts
of pyproject.toml point into it.  The modules of ``cmd/`` import one another relatively, so they
work under either name.  What ``kubestellar init`` applies (``config/exports``,
``config/kube-exports``) is installed as the data of the package ``kubestellar_config``, where
``pkg.bootstrap`` looks for it when there is no repository around it.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["apis", "apis.*", "pkg", "pkg.*"]), "kubestellar_cmd", "kubestellar_config"],
    package_dir={"kubestellar_cmd": "cmd", "kubestellar_config": "config"},
    package_data={"kubestellar_config": ["exports/*.yaml", "kube-exports/*.yaml"]},
)
