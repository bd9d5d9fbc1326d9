"""Shared test configuration.

Chain tests start their own devnet (anvil on a free loopback port) through
fixtures and stop it afterwards, also on failure; nothing here dials beyond
loopback.

Property tests draw new inputs on every run (nothing is derandomized, so a run may
find what the last ones did not). The profile below makes such a find usable and
keeps load from failing a test: a failing example is printed with the blob that
replays it (``@reproduce_failure``); no example fails for taking longer than
Hypothesis's default deadline of 200 ms, and no test fails Hypothesis's health check
for slow data generation (more than a second of wall-clock time spent drawing its
first ten examples), both of which a pause of a loaded two-core machine can cause on
correct code. A test's own ``@settings`` still override these.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from agents.devnet.anvil import Anvil, start_anvil

settings.register_profile(
    "veritrain", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("veritrain")


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    """A devnet node of the test's own, stopped afterwards (also on failure)."""
    node = start_anvil(log_path=tmp_path / "anvil.log")
    try:
        yield node
    finally:
        node.stop()
