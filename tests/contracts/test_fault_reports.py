"""Fault reports (docs/contracts.md, "Fault reports"; docs/threat-model.md, "Proofs nobody can
read"): a verifier that cannot read a proof reports a Fail resting on a fault record; no game is
played on it; whoever disputes it publishes the start state of a sampled segment, which the
pool hashes to the solver's committed checkpoint root, and the report is voided without
slashing. Each property of the threat model is played here with real states and real roots:

(a) an honest verifier that fault-reports never loses its stake, whatever the solver does;
(b) a fault report on a readable proof earns its verifier nothing and costs the honest solver
    neither its stake nor the task, nor (in the last round) its stake: a submitter's sybil that
    fault-reports every round gains nothing;
(c) the solver of an unreadable proof earns nothing: a game is refused, a silent solver fails,
    and publishing buys a verification round, up to ``maxVerificationRounds``, after which the
    task settles Unverified (no bounty, its stake back);
(d) every wei stays accounted for (the stateful money test covers the same calls).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest

from agents.commitment import state_tensors
from agents.devnet.anvil import Anvil
from scripts.deploy import Deployment
from scripts.protocol import Flag, Mode, Outcome, Status, payouts, sealed_roots
from tests.contracts.driver import BOUNTY, SEGMENTS, Driver, Parties, balance, hexed, plain, reverts
from tests.contracts.test_challenges import (
    CHECKPOINTS,
    PROGRAM,
    STATES,
    TREE,
    Trace,
    conserved,
    history,
    opening,
    traces,
)

INFINITY = 0x7F800000
RECORD = (
    b'{"cid":"bafkreiexample","format":"veritrain-fault/1","kind":"malformed",'
    b'"manifest":"bafybeimanifest","position":3}'
)
FAULT_ROOT = "0x" + hashlib.sha256(RECORD).hexdigest()


def published(index: int) -> list[tuple[bytes, bytes]]:
    """Checkpoint ``index`` as ``publishState`` takes it (bytes: brownie reads "0x" as one zero
    byte)."""
    return state_tensors(CHECKPOINTS[index])


def proof(index: int) -> list[str]:
    return [hexed(p) for p in TREE.proof(index)]


@pytest.fixture
def stated(driver: Driver) -> Driver:
    """The driver, committing the checkpoint root of ``STATES``."""
    driver.program_root = hexed(PROGRAM.root())
    driver.checkpoint_root = hexed(TREE.root)
    return driver


@pytest.fixture
def read(devnet: Anvil, project: Any, deployment: Deployment, tmp_path: Path) -> Any:
    """The auditor's reader of a task's history, through the manifest and JSON-RPC only."""
    from agents.audit.history import read_history
    from agents.chain.client import ChainClient
    from agents.chain.deployment import load_deployment
    from scripts.deploy import manifest, write_manifest

    path = write_manifest(manifest(project, deployment, devnet.url), tmp_path / "deployment.json")
    loaded, client = load_deployment(path), ChainClient(devnet.url)
    return lambda task_id: read_history(client, loaded, task_id)


@pytest.fixture
def other() -> Any:
    from brownie import accounts

    return accounts[7]


def report_fault(driver: Driver, task_id: int, by: Any = None, root: str = FAULT_ROOT) -> Any:
    secret = driver.secrets[task_id]
    count = int(driver.pool.sampleCount(task_id))
    true_roots = [bytes.fromhex(FAULT_ROOT[2:])] * count
    return driver.pool.reportFault(
        task_id,
        root,
        hexed(sealed_roots(secret, true_roots)),
        {"from": by or driver.parties.verifier},
    )


def sample(driver: Driver, task_id: int) -> list[int]:
    from agents.learning.selection import sample_segments

    return sample_segments(driver.randomness(task_id), SEGMENTS, 4)


def publish(driver: Driver, task_id: int, position: int, by: Any) -> Any:
    segment = sample(driver, task_id)[position]
    return driver.pool.publishState(
        task_id,
        position,
        history(driver.pool, task_id),
        published(segment),
        proof(segment),
        {"from": by},
    )


def faulted(driver: Driver, by: Any = None) -> int:
    """A task whose verifier (``by``) reported a fault, not forced to err."""
    task_id = driver.to_status(Status.VERIFYING)
    report_fault(driver, task_id, by)
    return task_id


def test_a_fault_report_is_a_fail_at_infinity_resting_on_the_record(
    pool: Any, stated: Driver, parties: Parties
) -> None:
    task_id = stated.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    assert not pool.faultReport(task_id)
    tx = report_fault(stated, task_id)
    reported = plain(tx.events["VerificationReported"])
    assert reported["distances"] == [INFINITY] * count
    assert reported["traceRoots"] == [FAULT_ROOT] * count
    assert reported["extraSegments"] == [] and reported["extraDistances"] == []
    assert reported["verdict"] == 2
    assert plain(tx.events["FaultReported"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "faultRoot": FAULT_ROOT,
    }
    assert stated.status(task_id) == Status.CHALLENGE_WINDOW
    assert stated.task(task_id)["outcome"] == Outcome.FAILED
    assert pool.faultReport(task_id)
    print(f"gas reportFault ({count} positions): {tx.gas_used}")


def test_only_the_verifier_reports_a_fault_once_the_randomness_is_drawn(
    pool: Any, stated: Driver, parties: Parties
) -> None:
    task_id = stated.to_status(Status.COMMITTED)
    stated.secrets[task_id] = stated.verify_with(task_id, False, draw=False)
    with reverts("RandomnessPending", task_id):
        report_fault(stated, task_id)
    stated.reveal_seed(task_id)
    with reverts("NotAuthorized", task_id, parties.solver.address):
        report_fault(stated, task_id, by=parties.solver)
    with reverts("EmptyCommitment"):
        report_fault(stated, task_id, root="0x" + "00" * 32)
    stated.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, int(stated.task(task_id)["deadline"])):
        report_fault(stated, task_id)


def test_a_game_on_a_fault_report_is_refused_and_the_silent_solver_fails(
    pool: Any, stated: Driver, parties: Parties, params: Any
) -> None:
    """(a), (c): the solver of an unreadable proof challenges the fault report: no game opens
    (its verifier names no trace); the report stands and the verifier is paid."""
    task_id = faulted(stated)
    segment = sample(stated, task_id)[1]
    with reverts("FaultReport", task_id):
        pool.challengeReport(
            task_id,
            1,
            Trace(b"solver").hex,
            history(pool, task_id),
            opening(segment),
            {"from": parties.solver, "value": pool.challengeBond()},
        )
    amounts = stated.amounts()
    before = balance(parties.verifier)
    stated.finish(task_id)  # the verifier reveals (it may have been forced), which pays everyone
    assert stated.task(task_id)["outcome"] == Outcome.FAILED
    paid = payouts(Outcome.FAILED, amounts, False, params, taxed=True)
    tax = amounts.forced_error_tax  # its report may have been forced
    assert paid.verifier == amounts.verification_fee - tax + amounts.verifier_stake
    assert balance(parties.verifier) == before + paid.verifier
    conserved(pool, [task_id])


def test_a_published_state_voids_the_report_without_slashing_and_the_task_is_verified_again(
    pool: Any, stated: Driver, parties: Parties, params: Any, other: Any
) -> None:
    """(a), (b): a fault report on a readable proof (a verifier that did not look). The solver
    publishes the start state of a sampled segment; the verifier is credited its stake and no
    fee; another verifier verifies with the same randomness and the solver is paid in full."""
    task_id = faulted(stated)
    randomness = stated.randomness(task_id)
    amounts = stated.amounts()
    position = len(sample(stated, task_id)) - 1
    segment = sample(stated, task_id)[position]
    assert segment == SEGMENTS - 1
    tx = publish(stated, task_id, position, parties.solver)
    assert plain(tx.events["StatePublished"]) == {
        "taskId": task_id,
        "publisher": parties.solver,
        "verifier": parties.verifier,
        "segment": segment,
        "stateRoot": hexed(STATES[segment]),
        "refunded": amounts.verifier_stake,
        "lastRound": False,
    }
    assert plain(tx.events["ReportDefeated"])["slashed"] == 0
    assert "VerificationReopened" in tx.events
    print(f"gas publishState (3 tensors, 1,416 bytes of values): {tx.gas_used}")
    assert stated.status(task_id) == Status.COMMITTED
    assert int(pool.credit(parties.verifier)) == amounts.verifier_stake
    assert not pool.faultReport(task_id)
    conserved(pool, [task_id])

    stated.claim_verification(task_id, by=other)
    assert stated.randomness(task_id) == randomness
    count = int(pool.sampleCount(task_id))
    stated.report(task_id, True, by=other, roots=[t.hex for t in traces(count, b"honest")])
    stated.finish(task_id)
    assert stated.task(task_id)["outcome"] == Outcome.PASSED
    paid = payouts(Outcome.PASSED, amounts, False, params)
    solver_before = balance(parties.solver)
    pool.withdraw([task_id], {"from": parties.solver})
    assert balance(parties.solver) == solver_before + paid.solver
    # The lazy verifier got its stake back and nothing more.
    verifier_before = balance(parties.verifier)
    with reverts("NothingToWithdraw", parties.verifier.address):
        pool.withdraw([task_id], {"from": parties.verifier})
    pool.withdrawCredit({"from": parties.verifier})
    assert balance(parties.verifier) == verifier_before + amounts.verifier_stake
    conserved(pool, [task_id])


def test_a_publication_in_the_last_round_settles_the_task_unverified(
    pool: Any, stated: Driver, parties: Parties, params: Any
) -> None:
    """(b), (c): a solver that publishes against every fault report is verified again up to
    ``maxVerificationRounds``; the last round's publication voids that report the same way and,
    with no round left and nobody able to tell on chain who lied, settles the task Unverified:
    the bounty (less the profile fee) back to the submitter, the stake back to the solver, no
    fee and no slash to anyone, every verifier credited its stake."""
    task_id = stated.to_status(Status.COMMITTED)
    amounts = stated.amounts()
    rounds = params.maxVerificationRounds
    for round_ in range(1, rounds + 1):
        stated.secrets[task_id] = stated.verify_with(task_id, False, draw=round_ == 1)
        report_fault(stated, task_id)
        tx = publish(stated, task_id, 0, parties.solver)
        last = round_ == rounds
        assert plain(tx.events["StatePublished"])["lastRound"] == last
        assert plain(tx.events["ReportDefeated"])["slashed"] == 0
        assert ("VerificationReopened" in tx.events) != last
        conserved(pool, [task_id])
        if not last:
            assert stated.status(task_id) == Status.COMMITTED
    assert "ProofFailed" not in tx.events
    assert stated.status(task_id) == Status.SETTLED
    task = stated.task(task_id)
    assert task["outcome"] == Outcome.UNVERIFIED
    assert int(task["flags"]) & (Flag.PROOF_FAILED | Flag.VOID | Flag.SLASH_AWARDED) == 0
    paid = payouts(Outcome.UNVERIFIED, amounts, False, params, flags=int(task["flags"]))
    assert plain(tx.events["TaskSettled"])["outcome"] == Outcome.UNVERIFIED
    assert (paid.submitter, paid.solver, paid.verifier, paid.jackpot) == (
        BOUNTY,
        amounts.solver_stake,
        0,
        0,
    )
    assert int(pool.credit(parties.verifier)) == rounds * amounts.verifier_stake
    for party, due in ((parties.submitter, paid.submitter), (parties.solver, paid.solver)):
        before = balance(party)
        pool.withdraw([task_id], {"from": party})
        assert balance(party) == before + due
    with reverts("NothingToWithdraw", parties.verifier.address):
        pool.withdraw([task_id], {"from": parties.verifier})
    conserved(pool, [task_id])


@pytest.mark.parametrize("mode", [Mode.EXACT, Mode.TOLERANT], ids=["exact", "tolerant"])
def test_a_submitters_sybil_fault_reporting_a_readable_proof_every_round_gains_nothing(
    pool: Any, stated: Driver, parties: Parties, params: Any, mode: Mode
) -> None:
    """The theft this closes: the submitter's sybil verifier wins every round's claim and
    fault-reports the honest, readable proof each time; the solver publishes each time. The
    task settles Unverified: the submitter and its sybil end with what they started with, less
    the protocol fee and (tolerant) the profile fee, which they paid at submit whatever
    happened; the solver ends with its stake back. Gas is free on the devnet, so every balance
    is exact; the gas each side spent is printed."""
    from brownie import history

    submitter, sybil, solver = parties.submitter, parties.verifier, parties.solver
    amounts = stated.amounts()
    attacker_before = balance(submitter) + balance(sybil)
    solver_before = balance(solver)
    task_id = stated.to_status(Status.COMMITTED, mode=mode)
    profiled = mode == Mode.TOLERANT
    start = len(history)
    publications = []
    for round_ in range(1, params.maxVerificationRounds + 1):
        stated.secrets[task_id] = stated.verify_with(task_id, False, draw=round_ == 1)
        report_fault(stated, task_id, by=sybil)
        position = round_ % int(pool.sampleCount(task_id))
        publications.append(publish(stated, task_id, position, solver))
        conserved(pool, [task_id])
    # The sybil's claims and fault reports; the solver's publications (its seed reveal is part
    # of any verification).
    sent: list[Any] = list(history)[start:]
    gas = {
        "attacker": sum(int(tx.gas_used) for tx in sent if tx.sender == sybil),
        "solver": sum(int(tx.gas_used) for tx in publications),
    }
    task = stated.task(task_id)
    assert task["outcome"] == Outcome.UNVERIFIED
    paid = payouts(Outcome.UNVERIFIED, amounts, profiled, params, flags=int(task["flags"]))
    pool.withdraw([task_id], {"from": submitter})
    pool.withdraw([task_id], {"from": solver})
    pool.withdrawCredit({"from": sybil})
    if profiled:
        pool.withdraw([task_id], {"from": parties.profiler})
    assert int(pool.credit(sybil)) == 0
    conserved(pool, [task_id])

    # What the attack paid: the fees of any submission; it took no share of anyone's stake.
    cost = amounts.protocol_fee + (amounts.profile_fee if profiled else 0)
    attacker_after = balance(submitter) + balance(sybil)
    assert attacker_after == attacker_before - cost
    assert paid.submitter == amounts.bounty - (cost - amounts.protocol_fee)  # B − P back
    assert balance(solver) == solver_before  # its stake back, no bounty
    print(
        f"{mode.name.lower()}: attacker {attacker_after - attacker_before:+} wei "
        f"(B = {amounts.bounty}), solver {balance(solver) - solver_before:+} wei; gas over "
        f"{params.maxVerificationRounds} rounds: attacker {gas['attacker']:,} "
        f"(claimVerification + reportFault), solver {gas['solver']:,} (publishState)"
    )


def test_in_the_last_round_a_silent_solver_fails_and_the_verifier_is_paid(
    pool: Any, stated: Driver, parties: Parties, params: Any
) -> None:
    """(a): the fault report of the last round that nobody answers settles Failed, fee paid."""
    task_id = stated.to_status(Status.COMMITTED)
    amounts = stated.amounts()
    for round_ in range(1, params.maxVerificationRounds + 1):
        stated.secrets[task_id] = stated.verify_with(task_id, False, draw=round_ == 1)
        report_fault(stated, task_id)
        if round_ < params.maxVerificationRounds:
            publish(stated, task_id, 2, parties.solver)
    before = balance(parties.verifier)
    stated.settle(task_id)  # claimed after the randomness was drawn: no reveal
    assert stated.task(task_id)["outcome"] == Outcome.FAILED
    assert int(stated.task(task_id)["flags"]) & Flag.VOID == 0
    pool.withdraw([task_id], {"from": parties.verifier})
    assert balance(parties.verifier) == before + amounts.verification_fee + amounts.verifier_stake
    conserved(pool, [task_id])


def test_a_publication_must_open_to_the_committed_checkpoint(
    pool: Any, stated: Driver, parties: Parties
) -> None:
    task_id = faulted(stated)
    segments = sample(stated, task_id)
    history_ = history(pool, task_id)
    segment = segments[1]
    wrong = published(segment)
    header, data = wrong[1]
    changed = bytearray(data)
    changed[-1] ^= 1
    wrong[1] = (header, bytes(changed))
    with reverts("InvalidCheckpoint", segment):
        pool.publishState(task_id, 1, history_, wrong, proof(segment), {"from": parties.solver})
    # Another checkpoint of the proof is not the sampled segment's start state.
    with reverts("InvalidCheckpoint", segment):
        pool.publishState(
            task_id, 1, history_, published(segment + 1), proof(segment), {"from": parties.solver}
        )
    with reverts("InvalidCheckpoint", segment):
        pool.publishState(
            task_id, 1, history_, published(segment), proof(segment)[:-1], {"from": parties.solver}
        )
    short = published(segment)
    short[1] = (short[1][0], short[1][1][:-1])
    with reverts("InvalidState", 1):
        pool.publishState(task_id, 1, history_, short, proof(segment), {"from": parties.solver})
    with reverts("InvalidState", 0):
        pool.publishState(task_id, 1, history_, [], proof(segment), {"from": parties.solver})
    with reverts("MalformedHeader"):
        bad = published(segment)
        bad[0] = (b"\0", bad[0][1])
        pool.publishState(task_id, 1, history_, bad, proof(segment), {"from": parties.solver})
    count = len(segments)
    with reverts("InvalidPosition", count, count):
        pool.publishState(
            task_id, count, history_, published(segment), proof(segment), {"from": parties.solver}
        )
    with reverts("RecordMismatch", task_id):
        pool.publishState(
            task_id, 1, history_[:-1], published(segment), proof(segment), {"from": parties.solver}
        )
    stated.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, int(stated.task(task_id)["deadline"])):
        publish(stated, task_id, 1, parties.solver)


def test_only_a_fault_report_is_published_against_and_only_once(
    pool: Any, stated: Driver, parties: Parties, params: Any
) -> None:
    """A report that names traces is disputed in games; a fault report is voided once, and an
    open challenge of the proof still decides the task (here the solver does not answer it:
    the task fails on the voided report, whose verifier keeps its stake)."""
    from brownie import accounts

    task_id = stated.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    stated.report(
        task_id, False, secret=stated.secrets[task_id], roots=[t.hex for t in traces(count, b"r")]
    )
    with reverts("NotFaultReport", task_id):
        publish(stated, task_id, 1, parties.solver)
    replayed = task_id

    task_id = faulted(stated)
    amounts = stated.amounts()
    whistleblower = accounts[6]
    bond = int(pool.challengeBond())
    tx = pool.challengeProof(task_id, 4, Trace(b"w").hex, {"from": whistleblower, "value": bond})
    challenge_id = int(tx.events["ChallengeOpened"]["challengeId"])
    publish(stated, task_id, 1, parties.solver)
    assert stated.status(task_id) == Status.CHALLENGE_WINDOW
    with reverts("AlreadyVoided", task_id):
        publish(stated, task_id, 2, parties.solver)
    conserved(pool, [replayed, task_id])
    stated.clock.next_at(int(pool.challenge(challenge_id)["deadline"]) + 1)
    tx = pool.resolve(challenge_id, {"from": whistleblower})
    assert stated.status(task_id) == Status.SETTLED
    assert stated.task(task_id)["outcome"] == Outcome.FAILED
    assert int(pool.credit(parties.verifier)) == amounts.verifier_stake
    assert plain(tx.events["ProofFailed"])["winner"] == whistleblower
    conserved(pool, [replayed, task_id])


def test_a_forced_fault_report_reveals_its_record_and_stays_a_fault_report(
    pool: Any, stated: Driver, parties: Parties
) -> None:
    """A forced verifier reports another root than its record's commitment and seals the true
    ones; its reveal replaces the report by the true fault roots, still a fault report: no game
    on it, and a publication voids it without slashing."""
    task_id = stated.to_status(Status.VERIFYING, forced=True)
    assert stated.forced(task_id, stated.secrets[task_id])
    wrong = "0x" + hashlib.sha256(b"veritrain/forced-error" + RECORD).hexdigest()
    report_fault(stated, task_id, root=wrong)
    stated.past_deadline(task_id)
    count = int(pool.sampleCount(task_id))
    tx = stated.reveal(task_id, stated.secrets[task_id], roots=[FAULT_ROOT] * count)
    assert plain(tx.events["VerificationRevealed"])["forced"] is True
    assert pool.faultReport(task_id)
    segment = sample(stated, task_id)[0]
    with reverts("FaultReport", task_id):
        pool.challengeReport(
            task_id,
            0,
            Trace(b"c").hex,
            history(pool, task_id),
            opening(segment),
            {"from": parties.solver, "value": pool.challengeBond()},
        )
    amounts = stated.amounts()
    publish(stated, task_id, 0, parties.solver)
    assert stated.status(task_id) == Status.COMMITTED
    assert int(pool.credit(parties.verifier)) == amounts.verifier_stake
    conserved(pool, [task_id])


def test_a_forced_fault_report_on_a_readable_proof_earns_its_verifier_nothing(
    pool: Any, jackpot: Any, stated: Driver, parties: Parties
) -> None:
    """Nobody can catch a fault report (no game is played on one), so a forced error awarded
    to its verifier when nobody caught it would be the verifier's for sure: a forced first
    verifier would fault-report a readable proof instead of reporting, reveal, collect the
    award, and have its stake back when the solver publishes (the task then verified again,
    the first claim's forced-error tax never paid). A forced fault report earns no award: the
    verifier ends with its stake back and nothing else, the jackpot owes nobody."""
    verifier = parties.verifier
    before = balance(verifier)
    task_id = stated.to_status(Status.VERIFYING, forced=True)
    secret = stated.secrets[task_id]
    assert stated.forced(task_id, secret)
    wrong = "0x" + hashlib.sha256(b"veritrain/forced-error" + RECORD).hexdigest()
    report_fault(stated, task_id, root=wrong)
    stated.past_deadline(task_id)
    count = int(pool.sampleCount(task_id))
    owed = int(jackpot.owed(verifier))
    tx = stated.reveal(task_id, secret, roots=[FAULT_ROOT] * count)
    assert plain(tx.events["VerificationRevealed"])["forced"] is True
    assert "Awarded" not in tx.events
    assert int(jackpot.owed(verifier)) == owed
    publish(stated, task_id, 0, parties.solver)  # the proof is readable: its state exists
    assert stated.status(task_id) == Status.COMMITTED
    pool.withdrawCredit({"from": verifier})
    assert balance(verifier) == before  # its stake back, no fee, no award
    conserved(pool, [task_id])


def test_publications_audit_clean_and_a_wrong_refund_is_named(
    pool: Any, stated: Driver, parties: Parties, params: Any, read: Any
) -> None:
    """The audit's money checks (agents.audit.money) hold a task whose fault reports were voided
    by publications, the last of them settling the task Unverified: each verifier credited its
    stake back, the settlement's amounts the table's, every credit withdrawn accounted for."""
    from agents.audit.disputes import check_consequences, losses_of
    from agents.audit.task import audit_payouts

    task_id = stated.to_status(Status.COMMITTED)
    for round_ in range(1, params.maxVerificationRounds + 1):
        stated.secrets[task_id] = stated.verify_with(task_id, False, draw=round_ == 1)
        report_fault(stated, task_id)
        publish(stated, task_id, 1, parties.solver)
    pool.withdrawCredit({"from": parties.verifier})
    pool.withdraw([task_id], {"from": parties.submitter})
    pool.withdraw([task_id], {"from": parties.solver})
    chain = read(task_id)
    assert chain.view.outcome == "Unverified"
    audit = audit_payouts(chain)
    assert audit.holds, [f"{f.claim}: {f.chain} vs {f.audit}" for f in audit.differences()]
    claims = [f.claim for f in audit.findings]
    refund = "a fault report voided by a published start state credits its verifier its stake"
    assert claims.count(refund) == params.maxVerificationRounds, claims
    # The challenges' consequences: each round's report lost (no winner), the proof nothing.
    found: list[tuple[str, bool]] = []
    check_consequences(chain.view, chain.events, lambda _a, c, _x, _y, ok: found.append((c, ok)))
    assert found and all(ok for _, ok in found), found
    unverified = "a fault report voided in the task's last round settles it Unverified"
    assert unverified in [c for c, _ in found], found
    assert [x.claim for x in losses_of(chain.events)] == ["Report"] * params.maxVerificationRounds
    # A refund one wei short of the stake: named.
    events = [
        dataclasses.replace(e, args={**e.args, "refunded": int(e.args["refunded"]) - 1})
        if e.name == "StatePublished"
        else e
        for e in chain.events
    ]
    wrong = [
        f.claim for f in audit_payouts(dataclasses.replace(chain, events=events)).differences()
    ]
    assert wrong and wrong[0] == refund, wrong
