"""A fake the sample does not contain, passed by a colluding verifier, caught by a whistleblower
that checks the proof itself (``challengeProof``), end to end with agent processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from agents.learning.selection import sample_segments
from agents.node.config import load_config
from agents.node.keys import load_account
from agents.roles.shares import randomness, secret_hash, seed
from agents.roles.situation import POOL
from tests.e2e.conftest import Market, open_market

pytestmark = [pytest.mark.chain, pytest.mark.slow]

SEGMENTS, SAMPLED = 10, 5  # tests/e2e/tiny.yaml


@pytest.fixture
def proof_market(tmp_path: Path) -> Iterator[Market]:
    # The solver must answer a proof challenge within verifyWindow: shorter than the default.
    m = open_market(tmp_path / "devnet", forcedErrorPpm=0, challengeWindow=150, verifyWindow=300)
    try:
        yield m
    finally:
        m.stop()


def first_randomness(market: Market, task_id: int) -> bytes:
    """The randomness the first verification of ``task_id`` will draw: the solver's seed and
    the verifier's secret are derived from their keys (``agents.roles.shares``)."""
    chain_id = market.client.chain_id()
    pool = market.deployment.contract(POOL).address

    def account(role: str) -> LocalAccount:
        return load_account(load_config(market.config(role)).key, chain_id)

    share = seed(account("solver"), pool, task_id)
    secret = secret_hash(account("verifier"), pool, task_id, 0)
    return bytes(randomness(share, bytes(secret), task_id))


def test_a_fake_outside_the_sample_is_caught_by_a_proof_challenge(proof_market: Market) -> None:
    market = proof_market
    task_id = 1  # the first task of a fresh devnet
    drawn = first_randomness(market, task_id)
    sample = sample_segments(drawn, SEGMENTS, SAMPLED)
    faked = min(s for s in range(1, SEGMENTS - 1) if s not in sample)
    market.agent("solver", "--set", f"solver.adversary=fake-segment:{faked}")
    market.agent("verifier", "--set", "verifier.adversary=pass")
    market.agent(
        "whistleblower",
        *("--set", "whistleblower.recheck_share=1"),
        *("--set", "whistleblower.proof_share=1"),
        *("--set", f"whistleblower.proof_segments={SEGMENTS}"),
    )
    assert market.submit() == task_id
    market.wait(
        "the whistleblower to challenge the proof",
        lambda: bool(market.task(task_id).challenges),
        timeout=1200,
    )
    view = market.task(task_id)
    assert view.randomness is not None and bytes(view.randomness) == drawn
    # The verifier passed the task: its sample (and screening) never saw the fake.
    assert view.verdict == "Pass", market.logs()[-4000:]
    (c,) = view.challenges.values()
    whistleblower = market.account("whistleblower").lower()
    assert (c.claim, c.segment, c.challenger.lower()) == ("Proof", faked, whistleblower)
    # The solver cannot answer (its trace of the segment fails): the whistleblower ends the
    # challenge once the answer window (verifyWindow) has passed, which fails the task.
    market.wait("the task to settle", lambda: market.task(task_id).final, timeout=900)
    # The submitter runs no agent here: it takes its refund as `submit --follow` would.
    done = market.cli("withdraw", str(task_id))
    assert done.returncode == 0, done.stdout + done.stderr
    view = market.wait_settled(task_id, timeout=300)
    assert view.outcome == "Failed"
    assert view.proof_failed
    (c,) = view.challenges.values()
    assert c.state == "Upheld"
    assert any(account.lower() == whistleblower and amount > 0 for account, amount in view.awards)
    assert "challengeProof" in market.calls_by("whistleblower")
    # The solver had no passing trace to answer with: no game was played.
    assert "answerChallenge" not in market.calls_by("solver")
    # The proof lost, not the report: no report was defeated.
    assert view.defeats == []
