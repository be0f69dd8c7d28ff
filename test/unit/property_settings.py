"""Settings profiles and coverage floors for the desired-state property tests.

Two Hypothesis settings profiles, chosen by ``$KS_PROPERTY_PROFILE``:

* ``kubestellar-ci`` (the default; ``make test``): 1,000 examples of the isolation property;
* ``kubestellar-slow`` (``KS_PROPERTY_PROFILE=slow``): ten times as many, for a long local run.

They are not loaded globally (Hypothesis has its own ``ci`` profile, and the other property tests
keep their own sizes): a test takes ``examples(share)`` as its settings, ``share`` being its size
relative to the isolation property.

A property that passes on examples that never reach a branch proves nothing about that branch, so
each property test counts, per example, the branches it reached (:class:`Coverage`) and fails when
one of them is reached in fewer examples than its floor.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import HealthCheck, settings

PROFILE_ENV = "KS_PROPERTY_PROFILE"
PROFILES = {"ci": "kubestellar-ci", "slow": "kubestellar-slow"}

for _name, _examples in ((PROFILES["ci"], 1000), (PROFILES["slow"], 10000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        # the coverage fixture is meant to outlive the examples: it counts over all of them
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def profile() -> settings:
    name = os.environ.get(PROFILE_ENV, "ci")
    if name not in PROFILES:
        raise ValueError(f"${PROFILE_ENV}={name!r}: expected one of {sorted(PROFILES)}")
    return settings.get_profile(PROFILES[name])


def examples(share: float = 1.0) -> settings:
    """The selected profile, with ``share`` times its number of examples."""
    base = profile()
    return settings(base, max_examples=max(1, round(base.max_examples * share)))


class Coverage:
    """Counts, over the examples of one test run, how many reached each branch."""

    def __init__(self) -> None:
        self.examples = 0
        self.reached: Counter[str] = Counter()

    def example(self, reached: Mapping[str, bool]) -> None:
        """Record one passing example and the branches it reached."""
        self.examples += 1
        self.reached.update(name for name, yes in reached.items() if yes)

    def share(self, name: str) -> float:
        return self.reached[name] / self.examples if self.examples else 0.0

    def report(self) -> str:
        return ", ".join(f"{name} {self.share(name):.1%}" for name in sorted(self.reached))

    def check(self, floors: Mapping[str, float]) -> None:
        low = {
            name: f"{self.share(name):.1%} < {floor:.0%}"
            for name, floor in floors.items()
            if self.share(name) < floor
        }
        assert not low, f"branches reached too rarely in {self.examples} examples: {low}"


def coverage_fixture(floors: Mapping[str, float]) -> Iterator[Coverage]:
    """The body of a test's ``coverage`` fixture: floors are checked once all examples have run
    (a failure shows as an error at teardown), and the shares are printed (``pytest -s``)."""
    cov = Coverage()
    yield cov
    if cov.examples == 0:
        pytest.fail("no example was recorded")
    print(f"\n{cov.examples} examples; reached: {cov.report()}")
    cov.check(floors)
