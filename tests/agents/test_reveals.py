"""The reveals: the solver's seed and the verifier's secret, with proofs rebuilt from the view."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.chain.abi import ContractInterface
from agents.chain.journal import Failure
from agents.commitment import Digest, Root
from agents.node.config import SolverPolicy, VerifierPolicy
from agents.roles import reverts, solver, verifier
from agents.roles.deadlines import deadline_actions
from agents.roles.record import folded_events, proof, record_of
from agents.roles.shares import commitment
from agents.roles.situation import Send
from agents.roles.tasks import ChallengeView, TimelineEntry
from tests.agents.test_decisions import (
    ME,
    NOW,
    OTHER,
    PARAMS,
    ROOT,
    SUBMITTER,
    Case,
    done,
    secret_of,
    seed_of,
    show,
    task,
)

H = "0x" + "22" * 32


def entry(block: int, name: str, **args: Any) -> TimelineEntry:
    return TimelineEntry(block, 0, name, {"taskId": 1, **args}, "0x")


SUBMITTED = entry(
    1,
    "TaskSubmitted",
    submitter=SUBMITTER,
    mode=0,
    bounty=1000,
    protocolFee=10,
    specHash=H,
    programRoot=H,
    segments=10,
    sampledSegments=5,
    thresholdBound=0,
    trainingWindow=60,
    specCid="QmSpec",
    deadline=NOW + 10,
)
CLAIMED = entry(2, "TaskClaimed", solver=OTHER, stake=2000, deadline=NOW + 20)
COMMITTED = entry(
    3,
    "ProofCommitted",
    solver=OTHER,
    proofCid="QmProof",
    checkpointRoot=ROOT,
    seedHash=commitment(seed_of(1)).chain,
    deadline=NOW + 30,
)
VERIFYING = entry(
    4,
    "VerificationClaimed",
    verifier=ME,
    secretHash=commitment(secret_of(1, 0)).chain,
    stake=500,
    deadline=NOW + 40,
    claimBlock=4,
)
DRAWN = entry(
    5,
    "RandomnessDrawn",
    solver=OTHER,
    randomness=H,
    seed=H,
    deadline=NOW + 50,
    claimBlockHash=ROOT,
)
REPORTED = entry(
    6,
    "VerificationReported",
    verifier=ME,
    distances=[0, 0, 0],
    extraSegments=[4],
    extraDistances=[0],
    traceRoots=[ROOT] * 4,
    sealedTraceRoots=H,
    verdict=1,
    challengeDeadline=NOW - 5,
)


def independent_record(entries: list[TimelineEntry], signatures: dict[str, str]) -> bytes:
    """The record as docs/contracts.md defines it, with eth_abi and the event signatures."""
    types = {
        "TaskSubmitted": (
            [
                "uint8",
                "uint256",
                "uint256",
                "bytes32",
                "bytes32",
                "uint32",
                "uint16",
                "uint32",
                "uint32",
                "string",
                "uint40",
            ],
            "submitter",
        ),
        "ProofCommitted": (["string", "bytes32", "bytes32", "uint40"], "solver"),
        "VerificationClaimed": (["bytes32", "uint256", "uint40", "uint256"], "verifier"),
    }
    record = bytes(32)
    for e in entries:
        if e.name not in types:
            continue
        kinds, party = types[e.name]
        fields = [v for k, v in e.args.items() if k not in ("taskId", party)]
        values = [
            bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") else v for v in fields
        ]
        data = encode(kinds, values)
        topic0 = keccak(text=signatures[e.name])
        record = keccak(
            record
            + topic0
            + (1).to_bytes(32, "big")
            + bytes.fromhex(e.args[party][2:]).rjust(32, b"\0")
            + keccak(data)
        )
    return record


def test_the_record_follows_from_the_view(pool_interface: ContractInterface) -> None:
    view = task(status="Verifying", timeline=[SUBMITTED, CLAIMED, COMMITTED, VERIFYING])
    signatures = {
        "TaskSubmitted": "TaskSubmitted(uint64,address,uint8,uint256,uint256,bytes32,bytes32,"
        "uint32,uint16,uint32,uint32,string,uint40)",
        "ProofCommitted": "ProofCommitted(uint64,address,string,bytes32,bytes32,uint40)",
        "VerificationClaimed": "VerificationClaimed(uint64,address,bytes32,uint256,uint40,uint256)",
    }
    assert record_of(view, pool_interface) == independent_record(view.timeline, signatures)
    names = [f.name for f in folded_events(view, pool_interface)]
    assert names == ["TaskSubmitted", "ProofCommitted", "VerificationClaimed"]  # not TaskClaimed


def test_the_solver_reveals_its_seed_once_a_verifier_claimed(
    pool_interface: ContractInterface,
) -> None:
    timeline = [SUBMITTED, CLAIMED, COMMITTED, VERIFYING]
    view = task(status="Verifying", solver=ME, verifier=OTHER, timeline=timeline)
    actions = solver.decide(Case("", [view], []).situation(pool_interface), SolverPolicy())
    (action,) = actions
    assert isinstance(action, Send)
    before, (commit, claim) = proof(view, pool_interface, ["ProofCommitted", "VerificationClaimed"])
    assert action.intent.key == "reveal-seed/1/0" and action.intent.function == "revealSeed"
    assert action.intent.args == (1, "0x" + seed_of(1).hex(), "0x" + before.hex(), commit, claim)
    # Sent (or mined): not again; once the randomness is fixed: nothing.
    pending = Case("", [view], [], journal={"reveal-seed/1/0": "sent"})
    assert solver.decide(pending.situation(pool_interface), SolverPolicy()) == []
    drawn = task(status="Verifying", solver=ME, verifier=OTHER, randomness=H, timeline=timeline)
    assert solver.decide(Case("", [drawn], []).situation(pool_interface), SolverPolicy()) == []


def test_the_solver_reveals_however_late_and_again_after_a_revert(
    pool_interface: ContractInterface,
) -> None:
    """The pool takes the seed however many blocks after the claim (past 256 the claim is just
    not forceable), so the solver reveals at any head while the seed window lasts. A try that
    reverted for a passing reason (mined in the claim's own block, whose hash is not known yet)
    is followed by the next; one rejected at estimation is tried again under its key."""
    timeline = [SUBMITTED, CLAIMED, COMMITTED, VERIFYING]
    view = task(status="Verifying", solver=ME, verifier=OTHER, timeline=timeline, claim_block=4)
    for head in (4, 10, 260, 261, 10_000):
        case = Case("", [view], [], head=head)
        (action,) = solver.decide(case.situation(pool_interface), SolverPolicy())
        assert isinstance(action, Send) and action.intent.function == "revealSeed", head
        assert action.intent.persistent
    out_of_reach = "ClaimBlockOutOfReach(taskId=1, claimBlock=4)"
    no_data = "no revert data (out of gas, or a revert without a reason)"
    for status, error, sent in (
        ("reverted", out_of_reach, "reveal-seed/1/1"),
        ("reverted", "RecordMismatch(taskId=1)", "reveal-seed/1/1"),
        ("reverted", no_data, "reveal-seed/1/1"),
        ("dropped", "nonce taken", "reveal-seed/1/1"),
        ("rejected", "node refused the transaction: fee too low", "reveal-seed/1/0"),
        ("rejected", f"TaskPool.revealSeed reverted: {out_of_reach}", "reveal-seed/1/0"),
        ("sent", "", None),
        ("mined", "", None),
    ):
        case = Case(
            "",
            [view],
            [],
            head=5,
            journal={"reveal-seed/1/0": status},
            failures={"reveal-seed/1/0": Failure(error, 4)} if error else {},
        )
        actions = solver.decide(case.situation(pool_interface), SolverPolicy())
        keys = [a.intent.key for a in actions if isinstance(a, Send)]
        assert keys == ([sent] if sent else []) and len(actions) == len(keys), (status, error)


LASTING_ERRORS = [
    "WrongSeed(taskId=1)",
    "TaskPool.revealSeed reverted: WrongSeed(taskId=1)",
    "NotAuthorized(taskId=1, caller=0x1111111111111111111111111111111111111111)",
    "TaskPool.revealSeed reverted: WrongStatus(taskId=1, status=8)",
    "DeadlinePassed(taskId=1, deadline=1700000040)",
    "TaskPool.revealSeed reverted: UnknownTask(taskId=1)",
]


@pytest.mark.parametrize("error", LASTING_ERRORS)
@pytest.mark.parametrize("status", ["reverted", "rejected"])
def test_a_lasting_revert_ends_the_reveal(
    pool_interface: ContractInterface, status: str, error: str
) -> None:
    """A seed the pool refuses for good on chain (not the committed one, not this solver's
    task, the task moved on, the window closed) is not sent again, by this agent or by one
    restarted on its journal: the decision reads only the journal and the view. Rejected at
    estimation (a node's word only), it is tried again under its key, however often it came,
    even WrongSeed, which a lying node may make up. Judged on events that
    a reorg has since moved (the claim now in block 4, the failure answered it in block 3), it
    is tried again."""
    timeline = [SUBMITTED, CLAIMED, COMMITTED, VERIFYING]
    view = task(status="Verifying", solver=ME, verifier=OTHER, timeline=timeline, claim_block=4)
    journal = {"reveal-seed/1/0": "reverted", "reveal-seed/1/1": status}
    passing = "ClaimBlockOutOfReach(taskId=1, claimBlock=4)"
    final = status == "reverted"
    for answered, sent in (
        (4, [] if final else ["reveal-seed/1/1"]),
        (3, ["reveal-seed/1/1" if status == "rejected" else "reveal-seed/1/2"]),
    ):
        failures = {
            "reveal-seed/1/0": Failure(passing, 4),
            "reveal-seed/1/1": Failure(error, answered, 1_000),
        }
        case = Case("", [view], [], head=5, journal=journal, failures=failures)
        actions = solver.decide(case.situation(pool_interface), SolverPolicy())
        assert [a.intent.key for a in actions if isinstance(a, Send)] == sent, answered
        assert len(actions) == len(sent)
    assert reverts.lasting("reveal-seed/1/1", error)
    assert not reverts.lasting("reveal-seed/1/0", passing)
    # Only the seed's reveal is judged: other actions keep the executor's own retry rules.
    assert not reverts.lasting("claim/1", error)


@pytest.mark.parametrize(
    "error",
    [
        "TaskPool.revealSeed reverted: WrongStatus(taskId=1, status=3)",
        "TaskPool.revealSeed reverted: UnknownTask(taskId=1)",
        "TaskPool.revealSeed reverted: NotAuthorized(taskId=1, caller=0x" + "11" * 20 + ")",
        "TaskPool.revealSeed reverted: DeadlinePassed(taskId=1, deadline=1700000040)",
    ],
)
def test_a_rejection_at_estimation_never_ends_the_reveal(
    pool_interface: ContractInterface, error: str
) -> None:
    """A node behind the view the decision read (an endpoint that spreads calls over several
    nodes; a reorg back to a block of the same number, where the claim is again) estimates
    the reveal on a chain without the claim: WrongStatus, or UnknownTask, under the very
    trigger block the view has, for as long as it lags. Taken for a verdict, the solver would
    never reveal and be slashed (SeedWithheld): a rejection costs nothing, so it is tried
    again under its key, after the executor's backoff, however many times it came, and only
    the agent's own view ends the tries (the randomness drawn, the seed window over). Mined on
    chain, the same revert is a verdict at once."""
    timeline = [SUBMITTED, CLAIMED, COMMITTED, VERIFYING]
    view = task(status="Verifying", solver=ME, verifier=OTHER, timeline=timeline, claim_block=4)
    answering = timeline[-1].block
    for attempts in (1, 2, 6, 7, 100, 10_000):
        failure = Failure(error, answering, attempts)
        journal = {"reveal-seed/1/0": "rejected"}
        failures = {"reveal-seed/1/0": failure}
        case = Case("", [view], [], head=5, journal=journal, failures=failures)
        actions = solver.decide(case.situation(pool_interface), SolverPolicy())
        assert [a.intent.key for a in actions if isinstance(a, Send)] == ["reveal-seed/1/0"]
        assert not reverts.holds("reveal-seed/1/0", "rejected", failure)
        assert reverts.looks_lasting("reveal-seed/1/0", "rejected", failure)
        assert reverts.holds("reveal-seed/1/0", "reverted", failure)
        assert not reverts.looks_lasting("reveal-seed/1/0", "reverted", failure)
        # The view ends it: the seed window over, or the randomness drawn meanwhile.
        for ended in (
            dataclasses.replace(view, deadline=NOW - 5),
            dataclasses.replace(view, randomness=Digest.parse(H)),
        ):
            case = Case("", [ended], [], head=5, journal=journal, failures=failures)
            sends = [
                a
                for a in solver.decide(case.situation(pool_interface), SolverPolicy())
                if isinstance(a, Send) and a.intent.function == "revealSeed"
            ]
            assert sends == []
    # Even one the pool raises past the record's check (the seed is not the committed one): a
    # node may make it up; mined on chain, it holds.
    wrong = Failure("TaskPool.revealSeed reverted: WrongSeed(taskId=1)", answering, 1)
    assert not reverts.holds("reveal-seed/1/0", "rejected", wrong)
    assert reverts.looks_lasting("reveal-seed/1/0", "rejected", wrong)
    assert reverts.holds("reveal-seed/1/0", "reverted", wrong)


def test_the_reveal_stops_after_its_last_try(pool_interface: ContractInterface) -> None:
    """Every try reverted for a passing reason: at most reverts.MAX_TRIES transactions' gas."""
    timeline = [SUBMITTED, CLAIMED, COMMITTED, VERIFYING]
    view = task(status="Verifying", solver=ME, verifier=OTHER, timeline=timeline, claim_block=4)
    passing = "no revert data (out of gas, or a revert without a reason)"
    tries = [f"reveal-seed/1/{n}" for n in range(reverts.MAX_TRIES)]
    for count in range(1, len(tries) + 1):
        journal = dict.fromkeys(tries[:count], "reverted")
        failures = dict.fromkeys(journal, Failure(passing, 4))
        case = Case("", [view], [], head=5, journal=journal, failures=failures)
        actions = solver.decide(case.situation(pool_interface), SolverPolicy())
        expected = [tries[count]] if count < len(tries) else []
        assert [a.intent.key for a in actions if isinstance(a, Send)] == expected, count
        assert len(actions) == len(expected)


def test_a_draw_without_the_claim_blocks_hash_forces_nothing(
    pool_interface: ContractInterface,
) -> None:
    """A seed revealed more than 256 blocks after the claim draws a zero claim block hash: the
    view folds the claim as not forceable, the verifier reports its true roots even with a
    secret that a hash would force (p = 1 here), and has nothing to reveal."""
    from agents.chain.abi import DecodedLog
    from agents.roles.tasks import fold
    from agents.rules import forced_error

    def folded(entries: list[TimelineEntry]) -> Any:
        logs = [
            DecodedLog("TaskPool", e.name, e.args, "0xPool", e.block, "0xb", i, "0xt")
            for i, e in enumerate(entries)
        ]
        return fold(1, logs)

    late = dataclasses.replace(DRAWN, args={**DRAWN.args, "claimBlockHash": "0x" + "00" * 32})
    view = folded([SUBMITTED, CLAIMED, COMMITTED, VERIFYING, late])
    assert view.randomness is not None and not view.forceable
    assert not forced_error(secret_of(1, 0), bytes(view.randomness), bytes(32), 1_000_000)
    in_reach = folded([SUBMITTED, CLAIMED, COMMITTED, VERIFYING, DRAWN])
    assert in_reach.forceable
    always = dataclasses.replace(PARAMS, forced_error_ppm=1_000_000)
    work = done("replay/1", distances=[0, 0, 0], trace_roots=[ROOT] * 3)
    for drawn_view, forced in ((view, False), (in_reach, True)):
        case = Case("", [drawn_view], [], work=work, params=always)
        (action,) = verifier.decide(case.situation(pool_interface), VerifierPolicy())
        assert isinstance(action, Send) and action.intent.function == "reportVerification"
        roots = action.intent.args[1][3]
        assert (roots != [ROOT] * 3) == forced
        assert ("forced to err" in action.reason) == forced


# A pool with forced errors: a first verification's report waits for its verifier's reveal.
FORCED = dataclasses.replace(PARAMS, forced_error_ppm=50_000)


def reported(deadline: int, **fields: Any) -> Any:
    base: dict[str, Any] = {
        "solver": OTHER,
        "verifier": ME,
        "randomness": H,
        "verdict": "Pass",
        "forceable": True,
        "timeline": [SUBMITTED, CLAIMED, COMMITTED, VERIFYING, DRAWN, REPORTED],
    }
    return task(status="ChallengeWindow", deadline=deadline, **{**base, **fields})


def test_the_verifier_reveals_after_the_challenge_window(
    pool_interface: ContractInterface,
) -> None:
    view = reported(NOW - 5)
    work = done("replay/1", distances=[0, 0, 0], trace_roots=[ROOT] * 3)
    case = Case("", [view], [], work=work, params=FORCED)
    (action,) = verifier.decide(case.situation(pool_interface), VerifierPolicy())
    assert isinstance(action, Send) and action.intent.function == "revealVerification"
    before, datas = proof(
        view, pool_interface, ["VerificationClaimed", "RandomnessDrawn", "VerificationReported"]
    )
    secret = "0x" + secret_of(1, 0).hex()
    assert action.intent.args == (1, secret, [ROOT] * 3, "0x" + before.hex(), *datas)
    assert action.intent.key == "reveal/1/0/0"


def test_the_verifier_reveals_again_after_a_passing_revert_and_never_after_a_lasting_one(
    pool_interface: ContractInterface,
) -> None:
    """A forced verifier's reveal is tried as the solver's seed is: a revert on chain for a
    passing reason (a challenge opened meanwhile, out of gas) is followed by the next try, a
    rejection at estimation is tried again under its key unless the pool refused its secret or
    seal, and a lasting revert mined on chain (its secret or seal not the committed one,
    nothing to reveal, the window closed) ends the tries while the task's events are those it
    answered."""
    view = reported(NOW - 5)
    answered = REPORTED.block
    work = done("replay/1", distances=[0, 0, 0], trace_roots=[ROOT] * 3)
    first = "reveal/1/0/0"
    for status, error, block, sent in (
        ("reverted", "ChallengesOpen(taskId=1)", answered, "reveal/1/0/1"),
        (
            "reverted",
            "no revert data (out of gas, or a revert without a reason)",
            answered,
            "reveal/1/0/1",
        ),
        (
            "rejected",
            "TaskPool.revealVerification reverted: RecordMismatch(taskId=1)",
            answered,
            first,
        ),
        ("reverted", "WrongSeal(taskId=1)", answered, None),
        (
            "rejected",
            "TaskPool.revealVerification reverted: WrongSecret(taskId=1)",
            answered,
            first,
        ),
        ("reverted", "NothingToReveal(taskId=1)", answered, None),
        # At estimation nothing holds: a node behind the view, or a lying one, gives any of
        # them, and the view ends the tries.
        (
            "rejected",
            "TaskPool.revealVerification reverted: DeadlinePassed(taskId=1, deadline=9)",
            answered,
            first,
        ),
        (
            "rejected",
            "TaskPool.revealVerification reverted: WrongStatus(taskId=1, status=5)",
            answered,
            first,
        ),
        ("rejected", "TaskPool.revealVerification reverted: WrongSeal(taskId=1)", answered, first),
        ("reverted", "DeadlinePassed(taskId=1, deadline=9)", answered, None),
        ("reverted", "WrongSeal(taskId=1)", answered - 1, "reveal/1/0/1"),
        ("sent", None, answered, None),
        ("mined", None, answered, None),
    ):
        failures = {first: Failure(error, block, 1_000)} if error else {}
        case = Case(
            "", [view], [], work=work, params=FORCED, journal={first: status}, failures=failures
        )
        actions = verifier.decide(case.situation(pool_interface), VerifierPolicy())
        keys = [
            a.intent.key
            for a in actions
            if isinstance(a, Send) and a.intent.function == "revealVerification"
        ]
        assert keys == ([sent] if sent else []), (status, error, block)


def test_no_reveal_too_early_too_late_or_when_nothing_may_be_forced(
    pool_interface: ContractInterface,
) -> None:
    work = done("replay/1", distances=[0, 0, 0], trace_roots=[ROOT] * 3)
    for view in (
        reported(NOW),  # the window is not over (by the margin)
        reported(NOW - PARAMS.reveal_window - 1),  # the reveal window is over
        reported(NOW - 5, forceable=False),  # a re-verification: nothing to reveal
        reported(NOW - 5, revealed=True),
    ):
        case = Case("", [view], [], work=work, params=FORCED)
        actions = verifier.decide(case.situation(pool_interface), VerifierPolicy())
        assert not [a for a in actions if isinstance(a, Send) and a.intent.key.startswith("reveal")]


def test_a_report_that_may_be_forced_settles_after_the_reveal_window() -> None:
    """The parties it pays wait for the verifier's reveal, then settle without it; the
    verifier, which forfeits by then, is no longer one of them."""
    solver_view = reported(NOW - 5, solver=ME, verifier=OTHER)
    assert deadline_actions(Case("", [solver_view], [], params=FORCED).situation()) == []
    late = reported(NOW - PARAMS.reveal_window - 2, solver=ME, verifier=OTHER)
    assert show(deadline_actions(Case("", [late], [], params=FORCED).situation())) == [
        "send withdraw/1 withdraw([1],)"
    ]
    own = reported(NOW - PARAMS.reveal_window - 2)
    assert deadline_actions(Case("", [own], [], params=FORCED).situation()) == []
    # Without forced errors in the pool, nothing waits for a reveal.
    plain = Case("", [reported(NOW - 5, solver=ME, verifier=OTHER)], [], params=PARAMS)
    assert show(deadline_actions(plain.situation())) == ["send withdraw/1 withdraw([1],)"]


def test_shares_match_the_contracts_rules() -> None:
    from agents.roles.shares import randomness, seal
    from agents.rules import forced_error

    seed, secret = seed_of(1), secret_of(1, 0)
    r = randomness(seed, bytes(commitment(secret)), 1)
    assert bytes(r) == keccak(seed + keccak(secret) + (1).to_bytes(32, "big"))
    roots = [Root.parse(ROOT), Root.parse(H)]
    encoded = (32).to_bytes(32, "big") + (2).to_bytes(32, "big") + bytes(roots[0]) + bytes(roots[1])
    assert bytes(seal(secret, roots)) == keccak(secret + keccak(encoded))
    claimed = keccak(b"claim block")
    assert forced_error(secret, bytes(r), claimed, 1_000_000)
    assert not forced_error(secret, bytes(r), claimed, 0)
    assert not forced_error(secret, bytes(r), bytes(32), 1_000_000)  # no claim block hash drawn
    hits = sum(
        forced_error(secret, bytes(r), keccak(i.to_bytes(2, "big")), 250_000) for i in range(400)
    )
    assert 60 < hits < 140
    # The rule, written out: keccak256(abi.encode(secret, keccak256(abi.encode(r, claimed)))).
    word = int.from_bytes(keccak(secret + keccak(bytes(r) + claimed)), "big")
    assert forced_error(secret, bytes(r), claimed, 250_000) == (
        word < ((2**256 - 1) // 1_000_000) * 250_000
    )
    assert isinstance(commitment(secret), Digest)


def test_the_reveal_waits_for_the_challenges_of_the_report(
    pool_interface: ContractInterface,
) -> None:
    work = done("replay/1", distances=[0, 0, 0], trace_roots=[ROOT] * 3)

    def reveals(state: str) -> bool:
        view = reported(NOW - 5)
        view.challenges = {
            4: ChallengeView(
                4, OTHER, "Report", 1, 1, Root.parse(ROOT), Root.parse(ROOT), 9, 0, 0, state
            )
        }
        case = Case("", [view], [], work=work, params=FORCED)
        actions = verifier.decide(case.situation(pool_interface), VerifierPolicy())
        return any(isinstance(a, Send) and a.intent.key == "reveal/1/0/0" for a in actions)

    assert not reveals("Playing")
    assert reveals("Upheld") and reveals("Rejected")
