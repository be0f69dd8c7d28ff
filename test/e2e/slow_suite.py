"""A suite that a plain ``pytest test`` deselects: its own directory, run by its own make target.

Both slow suites (``test/e2e/chaos``, ``test/e2e/edge``) call :func:`mark_and_deselect` from their
``pytest_collection_modifyitems``: every test under the suite's directory gets the suite's marker,
and is dropped unless the run asked for it, by ``-m`` naming the marker or by a path inside the
directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _asked_for(config: pytest.Config, here: Path, marker: str) -> bool:
    if marker in (config.option.markexpr or ""):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == here or here in path.parents:
            return True
    return False


def mark_and_deselect(config: pytest.Config, items: list[pytest.Item], here: Path, marker: str) -> None:
    """Mark the items under ``here`` with ``marker``; deselect them unless the run asked for them."""
    mine = [item for item in items if here in Path(str(item.path)).parents]
    for item in mine:
        item.add_marker(getattr(pytest.mark, marker))
    if mine and not _asked_for(config, here, marker):
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if item not in mine]
