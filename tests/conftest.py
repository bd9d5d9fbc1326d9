"""Shared test configuration.

Chain tests start their own devnet (anvil on a free loopback port) through
fixtures and stop it afterwards, also on failure; nothing here dials beyond
loopback.

Property tests draw new inputs on every run (nothing is derandomized, so a run may
find what the last ones did not). The profile below makes such a find usable and
keeps load from failing a test: a failing example is printed with the blob that
replays it (``@reproduce_failure``), and no example fails for taking longer than
Hypothesis's default deadline of 200 ms, which a loaded two-core machine can pass on
correct code. A test's own ``@settings`` still override both.
"""

from hypothesis import settings

settings.register_profile("veritrain", deadline=None, print_blob=True)
settings.load_profile("veritrain")
