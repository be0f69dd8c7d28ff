"""The current time, and Kubernetes' two timestamp forms (``metav1.Time``, ``metav1.MicroTime``).

``Time`` (conditions' ``lastTransitionTime``, an Event's ``firstTimestamp``) has whole seconds;
``MicroTime`` (a Lease's ``renewTime``, an Event's ``eventTime``) has six fractional digits.
Both are UTC with a ``Z``.  Every timestamp the controllers write comes from :func:`now` and
is written by :func:`time_string` or :func:`micro_time_string`, so tests have one place to look.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current wall-clock time, in UTC."""
    return datetime.now(UTC)


def whole_seconds(t: datetime) -> datetime:
    """``t`` truncated to the precision of ``metav1.Time``."""
    return t.replace(microsecond=0)


def time_string(t: datetime | None = None) -> str:
    """``t`` (default: now) as ``metav1.Time`` writes it: ``2026-12-01T23:12:05Z``."""
    return (t or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time_string(t: datetime | None = None) -> str:
    """``t`` (default: now) as ``metav1.MicroTime`` writes it: ``2026-12-01T23:12:05.123456Z``."""
    return (t or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
