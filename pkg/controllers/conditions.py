"""Status conditions of edge objects, built and compared in one place.

A controller says what a condition should be (type, status, reason, message, generation);
:func:`desired_condition` keeps the ``lastTransitionTime`` of the current condition of that type
when its status is unchanged (as ``meta.SetStatusCondition`` does), and :func:`unchanged` says
whether applying it would change anything a reader sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from apis.edge.v2alpha1 import Condition
from apis.machinery import timestamps

Status = Literal["True", "False", "Unknown"]


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """The condition of ``type_`` among ``conditions``, if any."""
    return next((c for c in conditions or () if c.type == type_), None)


def desired_condition(
    current: Condition | None,
    type_: str,
    status: Status,
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Condition:
    """The condition to apply: its transition time moves only when its status changes."""
    if current is not None and current.status == status:
        since = current.last_transition_time
    else:
        since = timestamps.whole_seconds(now or timestamps.now())
    return Condition(
        type=type_,
        status=status,
        observed_generation=generation,
        last_transition_time=since,
        reason=reason,
        message=message,
    )


def unchanged(current: Condition | None, wanted: Condition, *, generation: bool = True) -> bool:
    """Whether ``current`` already says what ``wanted`` says (status, reason, message, and, unless
    ``generation`` is False, the observed generation)."""
    if current is None:
        return False
    same = (current.status, current.reason, current.message) == (wanted.status, wanted.reason, wanted.message)
    return same and (not generation or current.observed_generation == wanted.observed_generation)
