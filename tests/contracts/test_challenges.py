"""Challenges (PROTOCOL.md §9): anyone disputes a verifier's report on any reported segment, in
either direction, or the solver's proof on any segment; the pool opens a pinpoint game on the
task's committed program and checkpoints, and applies its ruling once the task's last open
challenge has ended. The games here are decided by their clocks (a party that does not move
loses), which is all the pool reads; the games themselves are tested in tests/dispute.

Each attack of the issue that made the market trustless is played here and shown not to pay:
a lying Fail, a self-verified fake on a segment the sample missed, a forced error challenged by
the verifier's own second address, draining the jackpot; and every wei stays accounted for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from eth_utils.crypto import keccak

from agents.commitment import merkle_root, state_root, tensor_root
from agents.dispute.program import Program, ProgramEntry, Source, SourceKind, StepConstants
from agents.dispute.tree import MerkleLevels
from agents.exact.trace import Op
from agents.learning.selection import sample_segments
from scripts.deploy import DEFAULT_GAME_PARAMETERS, Deployment, ProtocolParameters
from scripts.protocol import (
    FOLDED_EVENTS,
    Flag,
    Mode,
    Outcome,
    Status,
    forced_error_award,
    payouts,
)
from tests.contracts.driver import (
    SEGMENTS,
    Clock,
    Driver,
    Parties,
    balance,
    held,
    hexed,
    plain,
    reverts,
)

REPORT, PROOF = 1, 2
UPHELD, REJECTED = 3, 4
DEFENDER_WINS, CHALLENGER_WINS, BOTH_LOSE = 1, 2, 3


INTERVAL = 3
F32 = np.float32


def program(segments: int = SEGMENTS) -> Program:
    """A small program of ``segments`` segments of ``INTERVAL`` steps (a one-tensor state that
    grows by one per step): a valid header, which is all a game reads when it is created."""
    step = [
        ProgramEntry(Op.ADD, (1, F32(1.0)), (Source(SourceKind.STATE, 0),), 0, ()),
        ProgramEntry(Op.STATE, (), (Source(SourceKind.OP, 0),), 0, None),
    ]
    distance = [
        ProgramEntry(
            Op.SUB, (), (Source(SourceKind.STATE, 0), Source(SourceKind.CLAIMED, 0)), 0, ()
        ),
        ProgramEntry(Op.ABS, (), (Source(SourceKind.OP, 0),), 0, ()),
    ]
    steps = segments * INTERVAL
    return Program(
        steps=steps,
        interval=INTERVAL,
        segments=segments,
        samples=1,
        metric="l2",
        epsilon=F32(1e-12),
        state_tensors=1,
        initial_state=merkle_root([tensor_root(np.zeros((), F32))]),
        datasets=(),
        step_template=step,
        distance_template=distance,
        constants=[StepConstants((), ()) for _ in range(steps)],
    )


def checkpoint(index: int) -> dict[str, np.ndarray]:
    """Checkpoint ``index`` of the solver's proof: a state of three tensors (one spread over two
    leaves, its last one padded; one empty; a scalar), so that it can be published on chain."""
    rng = np.random.default_rng(index)
    return {
        "param/w": rng.standard_normal((5, 70)).astype(F32),
        "opt/empty": np.zeros((0,), F32),
        "step": np.array(index * INTERVAL, F32),
    }


PROGRAM = program()
CHECKPOINTS = [checkpoint(i) for i in range(SEGMENTS + 1)]
STATES = [state_root(c) for c in CHECKPOINTS]
TREE = MerkleLevels(STATES)


class Trace:
    """A party's trace of a segment: the leaves it reveals in the game's first round (the step
    roots and the distance root), and their root."""

    def __init__(self, tag: bytes) -> None:
        self.leaves = [keccak(tag + bytes([i])) for i in range(INTERVAL + 1)]
        self.root = merkle_root(self.leaves)

    @property
    def hex(self) -> str:
        return hexed(self.root)


def traces(count: int, tag: bytes) -> list[Trace]:
    return [Trace(tag + i.to_bytes(2, "big")) for i in range(count)]


def opening(segment: int) -> tuple[Any, ...]:
    return (
        PROGRAM.header().encode(),
        hexed(STATES[segment]),
        [hexed(p) for p in TREE.proof(segment)],
        hexed(STATES[segment + 1]),
        [hexed(p) for p in TREE.proof(segment + 1)],
    )


def history(pool: Any, task_id: int) -> list[tuple[str, str, str]]:
    """The task's folded events as the pool takes them: (topic0, party, data), in log order."""
    from brownie import web3

    names = {e["name"]: e for e in pool.abi if e["type"] == "event"}

    def signature(entry: dict[str, Any]) -> bytes:
        def kind(p: dict[str, Any]) -> str:
            t = str(p["type"])
            if t.startswith("tuple"):
                return "(" + ",".join(kind(c) for c in p["components"]) + ")" + t[5:]
            return t

        return keccak(f"{entry['name']}({','.join(kind(i) for i in entry['inputs'])})".encode())

    folded = {signature(names[n]) for n in FOLDED_EVENTS}
    logs = web3.eth.get_logs(
        {
            "address": pool.address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
        }
    )
    out = []
    for log in logs:
        topic0 = bytes(log["topics"][0])
        if topic0 in folded:
            party = "0x" + bytes(log["topics"][2])[-20:].hex()
            out.append((hexed(topic0), party, hexed(bytes(log["data"]))))
    return out


def conserved(pool: Any, task_ids: list[int]) -> None:
    """The pool holds exactly its tasks' money, the jackpot's accrual, credits and deposits."""
    credits, deposits = pool.challengeFunds()
    expected = sum(sum(held(pool, t)) for t in task_ids)
    expected += int(pool.jackpotAccrued()) + int(credits) + int(deposits)
    assert int(pool.balance()) == expected


@pytest.fixture
def real(driver: Driver) -> Driver:
    """The driver, submitting tasks on a real program and committing a real checkpoint tree."""
    driver.program_root = hexed(PROGRAM.root())
    driver.checkpoint_root = hexed(TREE.root)
    return driver


@pytest.fixture
def whistleblower() -> Any:
    from brownie import accounts

    return accounts[6]


def reported(driver: Driver, task_id: int, passed: bool, roots: list[Trace]) -> None:
    driver.report(task_id, passed, secret=driver.secrets[task_id], roots=[r.hex for r in roots])


def segment_of(driver: Driver, task_id: int, position: int) -> int:
    return sample_segments(driver.randomness(task_id), SEGMENTS, 4)[position]


def challenge_report(
    pool: Any, task_id: int, position: int, trace: Trace, by: Any, segment: int
) -> tuple[int, int, Any]:
    tx = pool.challengeReport(
        task_id,
        position,
        trace.hex,
        history(pool, task_id),
        opening(segment),
        {"from": by, "value": pool.challengeBond()},
    )
    event = tx.events["ChallengeOpened"]
    return int(event["challengeId"]), int(event["game"]), tx


def move(game: Any, game_id: int, trace: Trace, by: Any) -> None:
    """The party's first dissection: the leaves of its trace."""
    game.dissect(
        game_id, [hexed(x) for x in trace.leaves], [], {"from": by, "value": game.requiredBond()}
    )


def run_out(game: Any, game_id: int, clock: Clock) -> None:
    """Let the clock of whoever owes a move run out, and end the game."""
    clock.advance(DEFAULT_GAME_PARAMETERS.clock + DEFAULT_GAME_PARAMETERS.extension + 10)
    game.timeout(game_id, {"from": clock_caller()})


def clock_caller() -> Any:
    from brownie import accounts

    return accounts[9]


def test_the_pool_computes_each_reported_segment_as_the_agents_do(
    pool: Any, real: Driver, parties: Parties, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    roots = traces(count + 1, b"verifier")
    real.report(
        task_id,
        secret=real.secrets[task_id],
        roots=[r.hex for r in roots],
        extras=([7], [0]),
    )
    expected = sample_segments(real.randomness(task_id), SEGMENTS, 4)
    assert expected[0] == 0 and expected[-1] == SEGMENTS - 1 and len(expected) == count
    for position in range(count + 1):
        segment = expected[position] if position < count else 7
        _, game_id, tx = challenge_report(
            pool, task_id, position, Trace(b"other" + bytes([position])), whistleblower, segment
        )
        assert int(tx.events["GameCreated"]["gameId"]) == game_id
        opened = plain(tx.events["ChallengeOpened"])
        assert opened["segment"] == segment
        assert opened["position"] == position
        assert opened["defenderTrace"] == roots[position].hex
        assert opened["claim"] == REPORT
        # The game records the pool as its creator and the verifier as the defender.
        created = tx.events["GameCreated"]
        assert created["creator"] == pool.address
        assert created["defender"] == parties.verifier
        assert created["challenger"] == whistleblower


def test_a_lying_fail_loses_its_stake_and_the_task_is_verified_again_and_paid(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    """The attack: a verifier reports Fail on an honest proof to take a share of the solver's
    stake. The solver challenges the failing segment and wins; the verifier's stake is the
    solver's; a new verifier verifies with the same randomness and the solver is paid."""
    from brownie import accounts

    task_id = real.to_status(Status.VERIFYING)
    randomness = real.randomness(task_id)
    count = int(pool.sampleCount(task_id))
    lies = traces(count, b"lie")
    reported(real, task_id, False, lies)
    amounts = real.amounts()
    position = count - 1  # the distance above τ
    truth = Trace(b"truth")
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, position, truth, parties.solver, segment_of(real, task_id, position)
    )
    conserved(pool, [task_id])
    # Nothing the challenge can change is paid while it is open.
    real.clock.next_at(int(real.task(task_id)["deadline"]) + 1)
    with reverts("ChallengesOpen", task_id):
        pool.settle(task_id, {"from": parties.stranger})
    with reverts("NothingToWithdraw", parties.verifier.address):
        pool.withdraw([task_id], {"from": parties.verifier})
    with reverts("GameNotResolved", game_id):
        pool.resolve(challenge_id, {"from": parties.stranger})
    move(game, game_id, truth, parties.solver)
    run_out(game, game_id, clock)
    assert int(game.game(game_id)["ruling"]) == CHALLENGER_WINS
    tx = pool.resolve(challenge_id, {"from": parties.stranger})
    assert tx.events["ChallengeResolved"]["state"] == UPHELD
    # The verifier claimed before the randomness existed: its reveal says whether it was forced.
    assert "ReportDefeated" not in tx.events
    assert real.flags(task_id) & Flag.DEFEATED
    tx = real.finish(task_id)
    assert plain(tx.events["ReportDefeated"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "winner": parties.solver,
        "slashed": amounts.verifier_stake,
    }
    assert real.status(task_id) == Status.COMMITTED
    assert int(pool.credit(parties.solver)) == amounts.verifier_stake
    conserved(pool, [task_id])
    with reverts("WrongChallengeState", challenge_id, UPHELD):
        pool.resolve(challenge_id, {"from": parties.stranger})

    # Verified again, with the same randomness (no new seed), by someone else.
    honest = accounts[7]
    real.claim_verification(task_id, by=honest)
    assert real.status(task_id) == Status.VERIFYING
    assert real.randomness(task_id) == randomness
    real.report(task_id, True, by=honest, roots=[t.hex for t in traces(count, b"honest")])
    real.settle(task_id)
    assert real.task(task_id)["outcome"] == Outcome.PASSED
    solver_before = balance(parties.solver)
    pool.withdraw([task_id], {"from": parties.solver})
    paid = payouts(Outcome.PASSED, amounts, False, params)
    assert balance(parties.solver) == solver_before + paid.solver
    pool.withdrawCredit({"from": parties.solver})
    assert balance(parties.solver) == solver_before + paid.solver + amounts.verifier_stake
    with reverts("NothingToWithdraw", parties.verifier.address):
        pool.withdraw([task_id], {"from": parties.verifier})
    conserved(pool, [task_id])


def test_a_challenge_the_defender_wins_changes_nothing(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    honest = traces(count, b"honest")
    reported(real, task_id, True, honest)
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, 1, Trace(b"wrong"), whistleblower, segment_of(real, task_id, 1)
    )
    move(game, game_id, honest[1], parties.verifier)
    run_out(game, game_id, clock)
    tx = pool.resolve(challenge_id, {"from": whistleblower})
    assert tx.events["ChallengeResolved"]["state"] == REJECTED
    assert int(tx.events["ChallengeResolved"]["ruling"]) == DEFENDER_WINS
    assert "ReportDefeated" not in tx.events
    assert real.flags(task_id) & (Flag.DEFEATED | Flag.VOID) == 0
    real.finish(task_id)
    assert real.status(task_id) == Status.SETTLED
    assert real.task(task_id)["outcome"] == Outcome.PASSED
    conserved(pool, [task_id])


def test_a_self_verified_fake_is_caught_on_a_segment_the_sample_missed(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any,
    params: ProtocolParameters,
) -> None:  # fmt: skip
    """The attack: a solver verifies its own fake through a second address (a Pass whatever the
    sample). A whistleblower challenges the proof on a faked segment outside the sample; the
    solver cannot defend a trace that ends within τ, loses, and the task fails."""
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    reported(real, task_id, True, traces(count, b"sybil"))
    sample = sample_segments(real.randomness(task_id), SEGMENTS, 4)
    unsampled = next(s for s in range(SEGMENTS) if s not in sample)
    truth = Trace(b"truth")
    tx = pool.challengeProof(
        task_id, unsampled, truth.hex, {"from": whistleblower, "value": pool.challengeBond()}
    )
    challenge_id = int(tx.events["ChallengeOpened"]["challengeId"])
    assert tx.events["ChallengeOpened"]["claim"] == PROOF
    conserved(pool, [task_id])
    # The solver answers with a trace that ends within τ (exact: +0) and plays nothing more.
    fake = Trace(b"fake")
    with reverts("DistanceAboveThreshold", 1, 0):
        pool.answerChallenge(
            challenge_id, fake.hex, 1, history(pool, task_id), opening(unsampled),
            {"from": parties.solver},
        )  # fmt: skip
    with reverts("NotAuthorized", task_id, whistleblower.address):
        pool.answerChallenge(
            challenge_id, fake.hex, 0, history(pool, task_id), opening(unsampled),
            {"from": whistleblower},
        )  # fmt: skip
    tx = pool.answerChallenge(
        challenge_id, fake.hex, 0, history(pool, task_id), opening(unsampled),
        {"from": parties.solver},
    )  # fmt: skip
    game_id = int(tx.events["ChallengeAnswered"]["game"])
    assert tx.events["GameCreated"]["defender"] == parties.solver
    conserved(pool, [task_id])
    move(game, game_id, truth, whistleblower)
    run_out(game, game_id, clock)
    tx = pool.resolve(challenge_id, {"from": parties.stranger})
    amounts = real.amounts()
    award = amounts.solver_stake - amounts.solver_stake * params.slashToSubmitterBps // 10_000
    assert plain(tx.events["ProofFailed"]) == {
        "taskId": task_id,
        "solver": parties.solver,
        "winner": whistleblower,
        "award": award,
    }
    assert tx.events["TaskSettled"]["outcome"] == Outcome.FAILED
    assert tx.events["TaskSettled"]["toSolver"] == 0
    # The jackpot's part of the solver's stake went to the winner; the report's verifier (the
    # first claim, whose report may have been forced) pays the forced-error tax.
    assert tx.events["TaskSettled"]["toJackpot"] == amounts.forced_error_tax
    assert int(pool.credit(whistleblower)) == award
    conserved(pool, [task_id])
    with reverts("NothingToWithdraw", parties.solver.address):
        pool.withdraw([task_id], {"from": parties.solver})


def test_a_solver_that_does_not_answer_fails_and_the_deposit_returns(
    pool: Any, real: Driver, parties: Parties, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    reported(real, task_id, True, traces(int(pool.sampleCount(task_id)), b"x"))
    bond = int(pool.challengeBond())
    tx = pool.challengeProof(task_id, 3, Trace(b"t").hex, {"from": whistleblower, "value": bond})
    challenge_id = int(tx.events["ChallengeOpened"]["challengeId"])
    assert pool.challengeFunds()[1] == bond
    deadline = int(tx.events["ChallengeOpened"]["deadline"])
    with reverts("DeadlineNotReached", task_id, deadline):
        pool.resolve(challenge_id, {"from": parties.stranger})
    real.clock.next_at(deadline + 1)
    tx = pool.resolve(challenge_id, {"from": parties.stranger})
    assert tx.events["TaskSettled"]["outcome"] == Outcome.FAILED
    assert int(pool.credit(whistleblower)) > bond
    assert pool.challengeFunds()[1] == 0
    conserved(pool, [task_id])
    before = balance(whistleblower)
    owed = int(pool.credit(whistleblower))
    pool.withdrawCredit({"from": whistleblower})
    assert balance(whistleblower) == before + owed
    with reverts("NothingToWithdraw", whistleblower.address):
        pool.withdrawCredit({"from": whistleblower})


def test_who_may_challenge_what_and_when(
    pool: Any, real: Driver, parties: Parties, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    roots = traces(count, b"r")
    reported(real, task_id, True, roots)
    segment = segment_of(real, task_id, 0)
    bond = int(pool.challengeBond())
    args = (task_id, 0, Trace(b"c").hex, history(pool, task_id), opening(segment))
    with reverts("WrongValue", bond, bond - 1):
        pool.challengeReport(*args, {"from": whistleblower, "value": bond - 1})
    with reverts("SameParty", parties.verifier.address):
        pool.challengeReport(*args, {"from": parties.verifier, "value": bond})
    with reverts("InvalidTraces"):
        pool.challengeReport(
            task_id, 0, roots[0].hex, history(pool, task_id), opening(segment),
            {"from": whistleblower, "value": bond},
        )  # fmt: skip
    with reverts("InvalidPosition", count, count):
        pool.challengeReport(
            task_id, count, Trace(b"c").hex, history(pool, task_id), opening(segment),
            {"from": whistleblower, "value": bond},
        )  # fmt: skip
    forged = history(pool, task_id)
    forged[-1] = (forged[-1][0], forged[-1][1], forged[-1][2][:-2] + "ff")
    with reverts("RecordMismatch", task_id):
        pool.challengeReport(
            task_id,
            0,
            Trace(b"c").hex,
            forged,
            opening(segment),
            {"from": whistleblower, "value": bond},
        )
    with reverts("NotAuthorized", task_id, parties.solver.address):
        pool.challengeProof(task_id, 1, Trace(b"c").hex, {"from": parties.solver, "value": bond})
    with reverts("InvalidPosition", SEGMENTS, SEGMENTS):
        pool.challengeProof(
            task_id, SEGMENTS, Trace(b"c").hex, {"from": whistleblower, "value": bond}
        )
    # After the window nothing can be challenged.
    deadline = int(real.task(task_id)["deadline"])
    real.clock.next_at(deadline + 1)
    with reverts("DeadlinePassed", task_id, deadline):
        pool.challengeProof(task_id, 1, Trace(b"c").hex, {"from": whistleblower, "value": bond})
    # Plain transfers to the pool are still refused.
    from brownie.exceptions import VirtualMachineError

    with pytest.raises(VirtualMachineError):
        whistleblower.transfer(pool.address, 1)


def _forced_report(
    real: Driver, pool: Any, task_id: int, positions: list[int]
) -> tuple[bytes, list[Any]]:
    """A forced verifier's report: wrong roots at ``positions``, its true ones sealed. Returns the
    secret and the true roots."""
    secret = real.verify_with(task_id, forced=True)
    real.secrets[task_id] = secret
    count = int(pool.sampleCount(task_id))
    true = traces(count, b"true")
    shown = list(true)
    for position in positions:
        shown[position] = Trace(b"forced" + bytes([position]))
    real.report(
        task_id, True, secret=secret, roots=[t.hex for t in shown], true_roots=[t.hex for t in true]
    )
    return secret, true


def _win(pool: Any, game: Any, clock: Clock, task_id: int, real: Driver, position: int,
         root: Any, by: Any) -> int:  # fmt: skip
    """``by`` challenges the report at ``position`` standing behind ``root`` and wins (the verifier
    does not play). Returns the game id."""
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, position, root, by, segment_of(real, task_id, position)
    )
    move(game, game_id, root, by)
    run_out(game, game_id, clock)
    pool.resolve(challenge_id, {"from": by})
    return int(game_id)


def test_a_forced_error_caught_is_paid_from_the_jackpot_and_the_verifier_is_not_slashed(
    pool: Any, game: Any, jackpot: Any, real: Driver, parties: Parties, clock: Clock,
    whistleblower: Any,
) -> None:  # fmt: skip
    """A forced verifier reports one wrong root; a whistleblower catches it and is paid from the
    jackpot (the verifier's stake, capped at a third of the reserve); the verifier gets its stake
    back whole and its fee less the forced-error tax."""
    # A jackpot with a reserve, from earlier tasks' fees.
    jackpot.fund({"from": parties.deployer, "value": 30 * 10**18})
    task_id = real.submit()
    real.claim(task_id)
    real.commit(task_id)
    forced_position = 2
    secret, true = _forced_report(real, pool, task_id, [forced_position])
    _win(pool, game, clock, task_id, real, forced_position, true[forced_position], whistleblower)
    assert real.flags(task_id) & Flag.DEFEATED
    assert real.status(task_id) == Status.CHALLENGE_WINDOW  # the reveal decides
    amounts = real.amounts()
    verifier_before = balance(parties.verifier)
    real.past_deadline(task_id)
    reserve = int(jackpot.reserve())
    tx = real.reveal(task_id, secret, roots=[t.hex for t in true])
    award = forced_error_award(amounts, reserve + int(tx.events["JackpotSwept"]["amount"]), 1)
    assert award == amounts.verifier_stake
    assert plain(tx.events["ForcedErrorCaught"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "catchers": [whistleblower],
        "award": award,
    }
    assert "ForcedErrorUncaught" not in tx.events
    assert int(jackpot.owed(whistleblower)) == award
    assert int(jackpot.owed(parties.verifier)) == 0
    assert real.flags(task_id) & (Flag.DEFEATED | Flag.STAKE_TAKEN) == 0
    assert "ReportDefeated" not in tx.events
    assert (
        sum(held(pool, task_id)) == amounts.bounty + amounts.solver_stake + amounts.verifier_stake
    )
    # The true roots stand, open to challenge anew; the verifier is not slashed.
    settled = real.settle(task_id).events["TaskSettled"]
    assert settled["toJackpot"] == amounts.forced_error_tax
    pool.withdraw([task_id], {"from": parties.verifier})
    paid = amounts.verification_fee - amounts.forced_error_tax + amounts.verifier_stake
    assert balance(parties.verifier) == verifier_before + paid
    assert paid >= amounts.verifier_stake
    conserved(pool, [task_id])


def test_a_forced_verifier_challenging_itself_gains_nothing(
    pool: Any, game: Any, jackpot: Any, real: Driver, parties: Parties, clock: Clock
) -> None:
    """Caught by its own second address, the forced verifier's pair takes the same award the
    verifier alone gets when nobody catches it: the award moves, it does not grow."""
    from brownie import accounts

    sybil = accounts[8]
    jackpot.fund({"from": parties.deployer, "value": 30 * 10**18})
    amounts = real.amounts()

    def play(self_challenge: bool) -> int:
        task_id = real.submit()
        real.claim(task_id)
        real.commit(task_id)
        secret, true = _forced_report(real, pool, task_id, [0])
        both = balance(parties.verifier) + balance(sybil)
        game_id = _win(pool, game, clock, task_id, real, 0, true[0], sybil) if self_challenge else 0
        real.past_deadline(task_id)
        tx = real.reveal(task_id, secret, roots=[t.hex for t in true])
        assert ("ForcedErrorCaught" in tx.events) == self_challenge
        assert ("ForcedErrorUncaught" in tx.events) != self_challenge
        real.settle(task_id)
        pool.withdraw([task_id], {"from": parties.verifier})
        if self_challenge:
            game.withdraw([game_id], {"from": sybil})
            jackpot.withdraw({"from": sybil})
        else:
            jackpot.withdraw({"from": parties.verifier})
        return balance(parties.verifier) + balance(sybil) - both

    # The reserve (30 ETH) caps neither award: both are the verifier's stake.
    alone = play(self_challenge=False)
    caught = play(self_challenge=True)
    assert alone == amounts.verification_fee - amounts.forced_error_tax + amounts.verifier_stake + (
        amounts.verifier_stake
    )
    assert caught <= alone


def test_a_forced_report_that_also_lies_is_slashed_to_its_winner_and_its_catcher_is_awarded(
    pool: Any, game: Any, jackpot: Any, real: Driver, parties: Parties, clock: Clock,
    whistleblower: Any,
) -> None:  # fmt: skip
    """A game lost on a root the forced verifier stands by (its sealed root) is a real defeat: its
    stake goes to that game's winner and the task is verified again; the forced root's catcher is
    still paid from the jackpot, and the verifier gets no award."""
    from brownie import accounts

    other = accounts[9]
    jackpot.fund({"from": parties.deployer, "value": 30 * 10**18})
    task_id = real.submit()
    real.claim(task_id)
    real.commit(task_id)
    secret, true = _forced_report(real, pool, task_id, [1])
    # Position 3's reported root is also the sealed one: the verifier stands by it, and loses it.
    # Both challenges open within the window (once the last game ends after it, the window closes).
    games = [
        (challenge_report(pool, task_id, p, root, by, segment_of(real, task_id, p)), root, by)
        for p, root, by in ((1, true[1], whistleblower), (3, Trace(b"the real trace"), other))
    ]
    for (_, game_id, _), root, by in games:
        move(game, game_id, root, by)
    for (challenge_id, game_id, _), _root, by in games:
        run_out(game, game_id, clock)
        pool.resolve(challenge_id, {"from": by})
    amounts = real.amounts()
    real.past_deadline(task_id)
    tx = real.reveal(task_id, secret, roots=[t.hex for t in true])
    assert tx.events["ForcedErrorCaught"]["catchers"] == [whistleblower]
    assert "ForcedErrorUncaught" not in tx.events
    assert plain(tx.events["ReportDefeated"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "winner": other,
        "slashed": amounts.verifier_stake,
    }
    assert int(pool.credit(other)) == amounts.verifier_stake
    assert int(jackpot.owed(whistleblower)) == tx.events["ForcedErrorCaught"]["award"] > 0
    assert int(jackpot.owed(parties.verifier)) == 0
    assert real.status(task_id) == Status.COMMITTED
    conserved(pool, [task_id])


def test_the_reveal_window_restarts_when_the_last_challenge_ends_and_an_event_says_when(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any,
    params: ProtocolParameters,
) -> None:  # fmt: skip
    """A report that may be forced waits for its verifier's reveal; challenges that outlast the
    challenge window restart the reveal window when the last one ends, and `RevealScheduled` is
    the only place an observer learns the new deadline."""
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    honest = traces(count, b"honest")
    reported(real, task_id, True, honest)
    first_deadline = int(real.task(task_id)["deadline"])
    segment = segment_of(real, task_id, 1)
    early, early_game, _ = challenge_report(pool, task_id, 1, Trace(b"a"), whistleblower, segment)
    late, late_game, _ = challenge_report(pool, task_id, 1, Trace(b"b"), parties.stranger, segment)
    for game_id in (early_game, late_game):
        move(game, game_id, honest[1], parties.verifier)
    run_out(game, early_game, clock)
    game.timeout(late_game, {"from": clock_caller()})
    tx = pool.resolve(early, {"from": whistleblower})
    assert "RevealScheduled" not in tx.events  # another challenge is still open
    # Both challenges ended long after the original reveal window closed.
    assert clock.now() > first_deadline + params.revealWindow
    tx = pool.resolve(late, {"from": parties.stranger})
    ended = int(tx.timestamp)
    assert plain(tx.events["RevealScheduled"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "challengeDeadline": ended,
        "revealDeadline": ended + params.revealWindow,
    }
    assert int(real.task(task_id)["deadline"]) == ended
    # The verifier reveals within the announced window, not the original one, and is paid.
    real.clock.next_at(ended + params.revealWindow)
    tx = real.reveal(task_id, real.secrets[task_id])
    assert tx.events["TaskSettled"]["outcome"] == Outcome.PASSED
    conserved(pool, [task_id])


def test_a_report_that_loses_with_both_parties_wrong_slashes_to_the_jackpot(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    reported(real, task_id, True, traces(count, b"v"))
    challenge_id, game_id, _ = challenge_report(
        pool, task_id, 0, Trace(b"w"), whistleblower, segment_of(real, task_id, 0)
    )
    accrued = int(pool.jackpotAccrued())
    run_out(game, game_id, clock)  # nobody moves: both run out
    assert int(game.game(game_id)["ruling"]) == BOTH_LOSE
    pool.resolve(challenge_id, {"from": parties.stranger})
    # The verifier never reveals: at the end of its reveal window the report is slashed (to the
    # jackpot: nobody won), not merely forfeited, and the task verified again.
    tx = real.settle(task_id)
    assert tx.events["ReportDefeated"]["winner"] == "0x" + "00" * 20
    assert int(pool.jackpotAccrued()) == accrued + real.amounts().verifier_stake
    assert real.status(task_id) == Status.COMMITTED
    conserved(pool, [task_id])


def test_several_challenges_wait_for_the_last_and_the_first_winner_takes_the_stake(
    pool: Any, game: Any, real: Driver, parties: Parties, clock: Clock, whistleblower: Any
) -> None:
    """A cheater cannot shield its report with a challenge it loses on purpose: every challenge
    counts, consequences wait for the last one, and the first winner takes the stake."""
    from brownie import accounts

    accomplice = accounts[8]
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    lies = traces(count, b"lies")
    reported(real, task_id, True, lies)
    segment = segment_of(real, task_id, 1)
    shield, shield_game, _ = challenge_report(pool, task_id, 1, Trace(b"s"), accomplice, segment)
    honest, honest_game, _ = challenge_report(pool, task_id, 1, Trace(b"h"), whistleblower, segment)
    move(game, shield_game, lies[1], parties.verifier)
    move(game, honest_game, Trace(b"h"), whistleblower)
    run_out(game, shield_game, clock)
    game.timeout(honest_game, {"from": clock_caller()})
    tx = pool.resolve(shield, {"from": parties.stranger})
    assert tx.events["ChallengeResolved"]["state"] == REJECTED
    assert "ReportDefeated" not in tx.events
    assert real.task(task_id)["disputes"] == 1
    pool.resolve(honest, {"from": parties.stranger})
    assert real.task(task_id)["disputes"] == 0
    tx = real.finish(task_id)
    assert tx.events["ReportDefeated"]["winner"] == whistleblower
    assert real.status(task_id) == Status.COMMITTED
    conserved(pool, [task_id])


def test_the_jackpot_pays_only_through_the_pool(
    jackpot: Any, pool: Any, parties: Parties, deployment: Deployment
) -> None:
    assert jackpot.arbitration() == pool.address
    jackpot.fund({"from": parties.deployer, "value": 9 * 10**18})
    for account in (parties.deployer, parties.verifier, parties.stranger):
        with reverts("NotArbitration", account.address):
            jackpot.award(account, 1, "0x" + "00" * 32, {"from": account})
    assert int(jackpot.awardCap()) == 3 * 10**18


# --- one-shot claims: a distance that is not what its trace ends with ---------------------------

STATE_PREFIX = bytes.fromhex("0040000000")
SCALAR_HEADER = (1).to_bytes(8, "big") + (0).to_bytes(4, "big")


def sha(data: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(data).digest()


class TracedSegment:
    """A trace of a segment whose tree is real: step roots over op records (the last step ends
    with a STATE record of ``end``), then the distance computation ending in ``distance``."""

    def __init__(self, tag: bytes, end: bytes, distance: float) -> None:
        import struct

        self.state_record = STATE_PREFIX + end
        self.step_records = [tag + b"/op0", self.state_record]
        steps = [merkle_root([sha(tag + bytes([i])), sha(tag + b"x")]) for i in range(INTERVAL - 1)]
        self.last_step_tree = MerkleLevels([sha(r) for r in self.step_records])
        steps.append(self.last_step_tree.root)
        self.leaf = struct.pack("<f", distance) + bytes(1020)
        output = sha(SCALAR_HEADER + sha(self.leaf))
        self.distance_records = [tag + b"/sub", b"\x00\x13\x00\x00\x01" + bytes(32) + output]
        self.distance_tree = MerkleLevels([sha(r) for r in self.distance_records])
        self.tree = MerkleLevels([*steps, self.distance_tree.root])
        self.root = self.tree.root

    @property
    def hex(self) -> str:
        return hexed(self.root)

    def tolerant_proof(self) -> tuple[Any, ...]:
        return (
            PROGRAM.header().encode(),
            hexed(self.distance_tree.root),
            [hexed(x) for x in self.tree.proof(INTERVAL)],
            self.distance_records[-1],
            [hexed(x) for x in self.distance_tree.proof(1)],
            SCALAR_HEADER,
            self.leaf,
            hexed(bytes(32)),
            [],
        )

    def exact_proof(self, segment: int) -> tuple[Any, ...]:
        return (
            PROGRAM.header().encode(),
            hexed(self.last_step_tree.root),
            [hexed(x) for x in self.tree.proof(INTERVAL - 1)],
            self.state_record,
            [hexed(x) for x in self.last_step_tree.proof(1)],
            b"",
            b"",
            hexed(STATES[segment + 1]),
            [hexed(p) for p in TREE.proof(segment + 1)],
        )


def test_a_lying_fail_with_a_true_trace_is_disproved_in_one_call(
    pool: Any, real: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    """The attack a game cannot see: the verifier reports the true trace (nobody can play a game
    against it) with a Fail distance. The solver shows that the trace ends in the claimed state."""
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    segment = segment_of(real, task_id, count - 1)
    true = TracedSegment(b"true", STATES[segment + 1], 0.0)
    first = TracedSegment(b"first", STATES[1], 0.0)  # segment 0, reported as passing: right
    roots = [first.hex] + [t.hex for t in traces(count - 2, b"ok")] + [true.hex]
    real.report(task_id, False, secret=real.secrets[task_id], roots=roots)  # the last one fails
    hist = history(pool, task_id)
    with reverts("NothingProven"):
        pool.disproveReport(task_id, 0, hist, first.exact_proof(0), {"from": parties.solver})
    with reverts("InvalidMerkleProof"):
        pool.disproveReport(task_id, 1, hist, true.exact_proof(segment), {"from": parties.solver})
    deadline = int(real.task(task_id)["deadline"])
    tx = pool.disproveReport(
        task_id, count - 1, hist, true.exact_proof(segment), {"from": parties.solver}
    )
    # No challenge is open and the window still runs: the reveal comes after it, as scheduled.
    assert plain(tx.events["RevealScheduled"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "challengeDeadline": deadline,
        "revealDeadline": deadline + params.revealWindow,
    }
    assert int(real.task(task_id)["deadline"]) == deadline
    assert plain(tx.events["DistanceDisproved"]) == {
        "taskId": task_id,
        "prover": parties.solver,
        "challengeId": 0,
        "position": count - 1,
        "stated": 1,
        "traced": 0,
    }
    tx = real.finish(task_id)  # the verifier's reveal (it was not forced)
    assert tx.events["ReportDefeated"]["winner"] == parties.solver
    assert real.status(task_id) == Status.COMMITTED
    conserved(pool, [task_id])


def test_a_reported_distance_must_be_what_its_trace_ends_with(
    pool: Any, real: Driver, parties: Parties, whistleblower: Any
) -> None:
    task_id = real.to_status(Status.VERIFYING, mode=Mode.TOLERANT)
    count = int(pool.sampleCount(task_id))
    segment = segment_of(real, task_id, 1)
    faked = TracedSegment(b"faked", STATES[segment + 1], 0.75)  # far above τ, reported as 0
    honest = TracedSegment(b"honest", STATES[1], 0.0)
    roots = [honest.hex, faked.hex] + [t.hex for t in traces(count - 2, b"ok")]
    real.report(task_id, True, secret=real.secrets[task_id], roots=roots)
    hist = history(pool, task_id)
    with reverts("NothingProven"):
        pool.disproveReport(task_id, 0, hist, honest.tolerant_proof(), {"from": whistleblower})
    broken = list(faked.tolerant_proof())
    broken[6] = struct_leaf(0.5)
    with reverts("InvalidMerkleProof"):
        pool.disproveReport(task_id, 1, hist, tuple(broken), {"from": whistleblower})
    wrong_program = list(faked.tolerant_proof())
    wrong_program[0] = program(SEGMENTS + 1).header().encode()
    with reverts("ProgramMismatch", PROGRAM.root(), sha(wrong_program[0])):
        pool.disproveReport(task_id, 1, hist, tuple(wrong_program), {"from": whistleblower})
    tx = pool.disproveReport(task_id, 1, hist, faked.tolerant_proof(), {"from": whistleblower})
    assert tx.events["DistanceDisproved"]["traced"] == f32_bits(0.75)
    assert real.flags(task_id) & Flag.DEFEATED


def struct_leaf(value: float) -> bytes:
    import struct

    return struct.pack("<f", value) + bytes(1020)


def f32_bits(value: float) -> int:
    import struct

    return int(struct.unpack("<I", struct.pack("<f", value))[0])


def test_a_solver_answer_must_end_in_the_distance_it_states(
    pool: Any, real: Driver, parties: Parties, whistleblower: Any, params: ProtocolParameters
) -> None:
    task_id = real.to_status(Status.VERIFYING)
    count = int(pool.sampleCount(task_id))
    reported(real, task_id, True, traces(count, b"p"))
    segment = 4
    tx = pool.challengeProof(
        task_id, segment, Trace(b"c").hex, {"from": whistleblower, "value": pool.challengeBond()}
    )
    challenge_id = int(tx.events["ChallengeOpened"]["challengeId"])
    # The solver's trace really replays to another state than the one it committed.
    answer = TracedSegment(b"solver", keccak(b"elsewhere"), 0.0)
    pool.answerChallenge(
        challenge_id, answer.hex, 0, history(pool, task_id), opening(segment),
        {"from": parties.solver},
    )  # fmt: skip
    tx = pool.disproveAnswer(
        challenge_id, history(pool, task_id), answer.exact_proof(segment), {"from": whistleblower}
    )
    assert tx.events["DistanceDisproved"]["challengeId"] == challenge_id
    assert tx.events["ChallengeResolved"]["state"] == UPHELD
    assert tx.events["TaskSettled"]["outcome"] == Outcome.FAILED
    assert tx.events["ProofFailed"]["winner"] == whistleblower
    with reverts("WrongChallengeState", challenge_id, UPHELD):
        pool.resolve(challenge_id, {"from": whistleblower})
    conserved(pool, [task_id])
