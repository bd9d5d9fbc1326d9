"""The audit's payout checks after challenges, on the chain: challenged tasks played with real
games on anvil (as in test_challenges.py) are read back by the auditor's history reader
(``eth_getLogs``, ``task(id)``, ``credit(account)``, the jackpot's ``Awarded``) and their
settlement, flags, credits and awards audited; an expectation tampered with is caught and
named."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from agents.audit.history import ChainHistory, read_history
from agents.audit.task import TaskAudit, audit_payouts
from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.devnet.anvil import Anvil
from scripts.deploy import Deployment, manifest, write_manifest
from scripts.protocol import Flag, Mode, Outcome, Status
from tests.contracts.driver import Clock, Driver, Parties, hexed
from tests.contracts.test_challenges import (
    PROGRAM,
    TREE,
    Trace,
    challenge_report,
    history,
    move,
    opening,
    reported,
    run_out,
    segment_of,
    traces,
)


@pytest.fixture
def real(driver: Driver) -> Driver:
    driver.program_root = hexed(PROGRAM.root())
    driver.checkpoint_root = hexed(TREE.root)
    return driver


@pytest.fixture
def whistleblower() -> Any:
    from brownie import accounts

    return accounts[6]


@pytest.fixture
def read(devnet: Anvil, project: Any, deployment: Deployment, tmp_path: Path) -> Any:
    """The auditor's reader of a task's history, through the manifest and JSON-RPC only."""
    path = write_manifest(manifest(project, deployment, devnet.url), tmp_path / "deployment.json")
    loaded = load_deployment(path)
    client = ChainClient(devnet.url)

    def read_task(task_id: int) -> ChainHistory:
        return read_history(client, loaded, task_id)

    return read_task


def differences(audit: TaskAudit) -> list[str]:
    return [f"{f.claim}: {f.chain} vs {f.audit}" for f in audit.differences()]


def beaten_report_and_proof(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any
) -> int:
    """A colluding verifier passes a fake proof behind lying roots; one whistleblower beats the
    report and the proof: the report is voided as the proof fails (VOID, SLASH_AWARDED)."""
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    reported(real, task_id, True, traces(count, b"colluding"))
    truth = Trace(b"truth")
    report_challenge, report_game, _ = challenge_report(
        pool, task_id, 1, truth, whistleblower, segment_of(real, task_id, 1)
    )
    tx = pool.challengeProof(
        task_id, 5, truth.hex, {"from": whistleblower, "value": pool.challengeBond()}
    )
    proof_challenge = int(tx.events["ChallengeOpened"]["challengeId"])
    tx = pool.answerChallenge(
        proof_challenge, Trace(b"fake").hex, 0, history(pool, task_id), opening(5),
        {"from": parties.solver},
    )  # fmt: skip
    proof_game = int(tx.events["ChallengeAnswered"]["game"])
    move(game, report_game, truth, whistleblower)
    move(game, proof_game, truth, whistleblower)
    run_out(game, proof_game, clock)
    game.timeout(report_game, {"from": parties.stranger})
    pool.resolve(report_challenge, {"from": parties.stranger})
    tx = pool.resolve(proof_challenge, {"from": parties.stranger})
    assert "ReportDefeated" in tx.events and "ProofFailed" in tx.events
    assert int(tx.events["TaskSettled"]["outcome"]) == Outcome.FAILED
    assert real.flags(task_id) & (Flag.VOID | Flag.SLASH_AWARDED) == Flag.VOID | Flag.SLASH_AWARDED
    pool.withdraw([task_id], {"from": parties.submitter})
    pool.withdrawCredit({"from": whistleblower})
    return task_id


def test_a_voided_report_and_a_failed_proof_audit_clean_and_a_tampered_expectation_is_named(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any,
    read: Any,
) -> None:  # fmt: skip
    task_id = beaten_report_and_proof(pool, game, real, parties, clock, whistleblower)
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    claims = [f.claim for f in audit.findings]
    assert any("VOID | SLASH_AWARDED" in c for c in claims), claims
    assert any("credits: what it holds and withdrew" in c for c in claims), claims
    assert any("jackpot's part of the solver's stake" in c for c in claims), claims

    # The stored flags say the verifier was paid after all (no VOID): named.
    flags = int(chain.flags or 0) & ~Flag.VOID
    first = audit_payouts(dataclasses.replace(chain, flags=flags)).differences()[0]
    assert first.claim == "the task's flags after challenges are the ones its events call for"
    assert (first.chain, first.audit) == ("SLASH_AWARDED", "VOID | SLASH_AWARDED")
    # A verifier stake other than the deployment's: the slashed stake is not what it should be.
    params = {**chain.params, "verifierStakeBps": chain.params["verifierStakeBps"] + 1}
    first = audit_payouts(dataclasses.replace(chain, params=params)).differences()[0]
    assert first.claim.startswith("the defeated report's verifier stake goes to"), first
    # A slash to submitter other than the deployment's: the submitter's payout and the award.
    params = {**chain.params, "slashToSubmitterBps": chain.params["slashToSubmitterBps"] + 1}
    found = differences(audit_payouts(dataclasses.replace(chain, params=params)))
    assert found[0].startswith("the submitter's payout follows the settlement table"), found
    assert any("jackpot's part of the solver's stake" in f for f in found), found
    # A credit that is not there any more (or never was) is named with the account.
    wb = str(whistleblower.address).lower()
    credits = {**chain.credits, wb: chain.credits[wb] + 1}
    first = audit_payouts(dataclasses.replace(chain, credits=credits)).differences()[0]
    assert first.claim.startswith(f"{wb}'s credits"), first


def test_a_lying_fail_defeated_then_verified_again_audits_clean(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, read: Any
) -> None:
    from brownie import accounts

    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    reported(real, task_id, False, traces(count, b"lie"))
    truth = Trace(b"truth")
    position = count - 1
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, position, truth, parties.solver, segment_of(real, task_id, position)
    )
    move(game, game_id, truth, parties.solver)
    run_out(game, game_id, clock)
    pool.resolve(challenge_id, {"from": parties.stranger})
    real.finish(task_id)  # the reveal: not forced, defeated, slashed to the solver
    honest = accounts[7]
    real.claim_verification(task_id, by=honest)
    real.report(task_id, True, by=honest, roots=[t.hex for t in traces(count, b"honest")])
    real.settle(task_id)
    pool.withdraw([task_id], {"from": parties.solver})
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    assert chain.view.outcome == "Passed"
    assert chain.credits == {str(parties.solver.address).lower(): int(pool.credit(parties.solver))}
    # Had the pool credited the solver one wei less than it holds: named.
    events = [
        dataclasses.replace(e, args={**e.args, "slashed": int(e.args["slashed"]) - 1})
        if e.name == "ReportDefeated"
        else e
        for e in chain.events
    ]
    found = differences(audit_payouts(dataclasses.replace(chain, events=events)))
    assert found and found[0].startswith("the defeated report's verifier stake goes to"), found


def forced_report(
    pool: Any, jackpot: Any, real: Driver, parties: Parties, position: int
) -> tuple[int, bytes, list[Trace]]:
    """A task whose forced verifier reported a wrong trace root at ``position`` (its true roots
    sealed), on a jackpot funded with 30 ETH; returns the task, the secret and the true traces."""
    jackpot.fund({"from": parties.deployer, "value": 30 * 10**18})
    task_id = real.submit()
    real.claim(task_id)
    real.commit(task_id)
    secret = real.verify_with(task_id, forced=True)
    real.secrets[task_id] = secret
    true = traces(int(pool.sampleCount(task_id)), b"true")
    shown = list(true)
    shown[position] = Trace(b"forced")
    real.report(
        task_id, True, secret=secret, roots=[t.hex for t in shown], true_roots=[t.hex for t in true]
    )
    return task_id, secret, true


def test_a_caught_forced_error_audits_clean_and_an_unpaid_catcher_is_named(
    pool: Any, game: Any, jackpot: Any, real: Driver, parties: Parties, clock: Clock,
    whistleblower: Any, read: Any,
) -> None:  # fmt: skip
    task_id, secret, true = forced_report(pool, jackpot, real, parties, position=2)
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, 2, true[2], whistleblower, segment_of(real, task_id, 2)
    )
    move(game, game_id, true[2], whistleblower)
    run_out(game, game_id, clock)
    pool.resolve(challenge_id, {"from": whistleblower})
    real.past_deadline(task_id)
    real.reveal(task_id, secret, roots=[t.hex for t in true])
    real.settle(task_id)
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    # Not slashed: the verifier's stake comes back whole, with its fee less the tax.
    assert len(chain.awards) == 1 and chain.view.payouts["verifier"] >= chain.view.verifier_stake
    assert any("(its verifier is not slashed)" in f.claim for f in audit.findings)
    assert any("a third of the jackpot's reserve" in f.claim for f in audit.findings)
    # Had the jackpot held less, the award would have been smaller: named.
    tx = chain.awards[0].tx_hash
    reserves = {tx: chain.award_reserves[tx] // 1000}
    found = differences(audit_payouts(dataclasses.replace(chain, award_reserves=reserves)))
    assert len(found) == 1 and found[0].startswith("a forced error's award is min(V"), found
    # The jackpot's award left out of the history: the catcher is named unpaid.
    found = differences(audit_payouts(dataclasses.replace(chain, awards=[])))
    assert found == [
        "the jackpot awarded each recipient what ForcedErrorCaught states: [] vs "
        f"[('{str(whistleblower.address).lower()}', {int(chain.awards[0].args['amount'])})]"
    ], found


def test_an_uncaught_forced_error_and_the_tax_audit_clean_and_a_wrong_tax_is_named(
    pool: Any, jackpot: Any, real: Driver, parties: Parties, read: Any
) -> None:
    task_id, secret, true = forced_report(pool, jackpot, real, parties, position=1)
    real.past_deadline(task_id)
    tx = real.reveal(task_id, secret, roots=[t.hex for t in true])
    assert "ForcedErrorUncaught" in tx.events
    real.settle(task_id)
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    verifier = str(parties.verifier.address).lower()
    assert [(str(a.args["recipient"]).lower(), int(a.args["amount"])) for a in chain.awards] == [
        (verifier, chain.view.verifier_stake)
    ]
    claims = [f.claim for f in audit.findings]
    assert "the jackpot awarded each recipient what ForcedErrorUncaught states" in claims
    # A tax other than the deployment's: the verifier's payout is named.
    params = {**chain.params, "forcedErrorTaxBps": chain.params["forcedErrorTaxBps"] + 1}
    found = differences(audit_payouts(dataclasses.replace(chain, params=params)))
    assert found and found[0].startswith("the verifier's payout follows the settlement table"), (
        found
    )
    # The award left out: the verifier is named unpaid.
    found = differences(audit_payouts(dataclasses.replace(chain, awards=[])))
    assert len(found) == 1 and "ForcedErrorUncaught" in found[0], found


def test_a_rejected_profile_is_credited_and_audited_with_the_settlement(
    pool: Any, real: Driver, parties: Parties, read: Any
) -> None:
    from brownie import accounts

    task_id = real.submit(Mode.TOLERANT)
    real.profile(task_id)
    real.reject_profile(task_id)
    second = accounts[8]
    real.profile(task_id, by=second)
    real.accept_profile(task_id)
    real.claim(task_id)
    real.commit(task_id)
    real.secrets[task_id] = real.verify_with(task_id, False)
    real.report(task_id, True, secret=real.secrets[task_id])
    real.finish(task_id)
    pool.withdrawCredit({"from": parties.profiler})
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    rejected = str(parties.profiler.address).lower()
    assert chain.credits == {rejected: 0}
    claims = [f.claim for f in audit.findings]
    assert (
        "a rejected profiler is credited its stake back, nothing more; "
        "the rejection fee goes to the jackpot" in claims
    )
    assert (
        f"{rejected}'s credits: what it holds and withdrew is what the pool credited it" in claims
    )
    # The second profiler is the one the settlement pays; the first is owed nothing by the task.
    assert chain.view.payouts["profiler"] > 0 and chain.view.profiler == second.address
    params = {**chain.params, "profileRejectionFeeBps": chain.params["profileRejectionFeeBps"] * 2}
    found = differences(audit_payouts(dataclasses.replace(chain, params=params)))
    assert len(found) == 1 and found[0].startswith("a rejected profiler is credited"), found


def test_a_seed_revealed_past_the_claim_blocks_reach_audits_clean_and_is_explained(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, read: Any
) -> None:
    """A seed revealed more than 256 blocks after the claim draws no claim block hash: the
    audit accepts the zero hash and says why, derives no forfeit from a claim that could not be
    forced (there was nothing to reveal), and holds the taxed settlement; a hash recorded for
    such a draw would be named."""
    from agents.audit.task import _check_randomness

    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    clock.mine(256)
    driver.reveal_seed(task_id)
    driver.report(task_id)
    assert "TaskSettled" in driver.settle(task_id).events
    pool.withdraw([task_id], {"from": parties.solver})
    pool.withdraw([task_id], {"from": parties.verifier})
    chain = read(task_id)
    audit = audit_payouts(chain)
    assert audit.holds, differences(audit)
    assert chain.flags == Flag.RANDOMNESS and int(chain.view.payouts["jackpot"]) > 0  # the tax
    randomness = TaskAudit(chain)
    _check_randomness(randomness)
    assert randomness.holds, differences(randomness)
    assert any("records no claim block hash" in f.claim for f in randomness.findings)
    assert any("not forceable" in note for note in randomness.notes)

    hashed = [
        dataclasses.replace(e, args={**e.args, "claimBlockHash": "0x" + "cb" * 32})
        if e.name == "RandomnessDrawn"
        else e
        for e in chain.events
    ]
    tampered = TaskAudit(dataclasses.replace(chain, events=hashed))
    _check_randomness(tampered)
    found = differences(tampered)
    assert found and "records no claim block hash" in found[0], found
