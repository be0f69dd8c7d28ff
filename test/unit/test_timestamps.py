"""The one source of timestamps (apis.machinery.timestamps) and Kubernetes' two forms of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from apis.machinery import timestamps


def test_time_and_micro_time_forms() -> None:
    t = datetime(2026, 12, 1, 23, 12, 5, 123456, tzinfo=UTC)
    assert timestamps.time_string(t) == "2026-12-01T23:12:05Z"
    assert timestamps.micro_time_string(t) == "2026-12-01T23:12:05.123456Z"
    assert timestamps.whole_seconds(t) == datetime(2026, 12, 1, 23, 12, 5, tzinfo=UTC)


def test_an_aware_time_in_another_zone_is_written_in_utc() -> None:
    t = datetime(2026, 12, 2, 1, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert timestamps.time_string(t) == "2026-12-01T23:00:00Z"


def test_now_is_utc_and_the_default_of_both_forms() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = datetime.strptime(timestamps.time_string(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    micro = datetime.strptime(timestamps.micro_time_string(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    after = datetime.now(UTC)
    assert timestamps.now().tzinfo is UTC
    assert before <= written <= after and before <= micro <= after
