"""Folding a task's events into its view: pure, order-independent input, every event kind."""

from __future__ import annotations

from typing import Any

from agents.chain.abi import DecodedLog
from agents.commitment import Digest
from agents.roles.tasks import fold, fold_all

SUBMITTER = "0x0000000000000000000000000000000000000051"
SOLVER = "0x0000000000000000000000000000000000000052"
VERIFIER = "0x0000000000000000000000000000000000000053"
OTHER_VERIFIER = "0x0000000000000000000000000000000000000054"
ROOT = "0x" + "ab" * 32


_INDEX = iter(range(1000))


def ev(block: int, name: str, **args: Any) -> DecodedLog:
    """An event of task 7; log indices are unique, as on chain."""
    return DecodedLog(
        contract="TaskPool",
        name=name,
        args={"taskId": 7, **args},
        address="0xPool",
        block_number=block,
        block_hash="0xb",
        log_index=next(_INDEX),
        tx_hash="0xt",
    )


SUBMITTED = ev(1, "TaskSubmitted", submitter=SUBMITTER, mode=1, bounty=1000, protocolFee=10,
               specHash=ROOT, programRoot=ROOT, segments=10, sampledSegments=1,
               thresholdBound=9, specCid="QmSpec", trainingWindow=60, deadline=100)  # fmt: skip
HISTORY = [
    SUBMITTED,
    ev(2, "TaskProfiled", profiler=VERIFIER, threshold=5, profileCid="QmProf", stake=50,
       deadline=200),
    ev(3, "TaskClaimed", solver=SOLVER, stake=2000, deadline=300),
    ev(4, "ProofCommitted", solver=SOLVER, proofCid="QmProof", checkpointRoot=ROOT,
       seedHash=ROOT, deadline=400),
    ev(5, "VerificationClaimed", verifier=VERIFIER, secretHash=ROOT, stake=1000, deadline=450,
       claimBlock=5),
    ev(6, "RandomnessDrawn", solver=SOLVER, randomness=ROOT, seed=ROOT, deadline=500,
       claimBlockHash=ROOT),
    ev(9, "TaskTimedOut", status=5, penalised=VERIFIER, slashed=1000),
    ev(9, "VerificationReopened", deadline=600),
    ev(10, "VerificationClaimed", verifier=OTHER_VERIFIER, secretHash=ROOT, stake=1000,
       deadline=700, claimBlock=10),
    ev(11, "VerificationReported", verifier=OTHER_VERIFIER, distances=[0, 3, 9],
       extraSegments=[4], extraDistances=[7], traceRoots=[ROOT] * 4, sealedTraceRoots=ROOT,
       verdict=2, challengeDeadline=800),
    ev(12, "TaskSettled", outcome=2, toSubmitter=1500, toSolver=0, toVerifier=1400,
       toProfiler=70, toJackpot=500),
    ev(13, "PayoutWithdrawn", account=SUBMITTER, amount=1500),
]  # fmt: skip


def test_a_whole_history_with_a_reopened_verification() -> None:
    view = fold(7, HISTORY)
    assert view.status == "Settled" and view.outcome == "Failed" and view.verdict == "Fail"
    assert view.mode == "tolerant" and view.threshold == 5 and view.profile_cid == "QmProf"
    assert view.verifier == OTHER_VERIFIER and view.verification_round == 1
    assert view.penalised == [(VERIFIER, 1000)]
    assert view.distances == [0, 3, 9] and view.randomness == Digest.parse(ROOT)
    assert (view.extra_segments, view.extra_distances) == ([4], [7])
    assert (view.segments, view.sampled_segments, view.threshold_bound) == (10, 1, 9)
    # The second verifier claimed once the randomness was fixed: its report cannot be forced.
    assert not view.forceable
    assert view.roles_of(VERIFIER) == ["profiler"]
    assert view.due_to(SUBMITTER) == 0 and view.has_withdrawn(SUBMITTER)
    assert view.due_to(OTHER_VERIFIER) == 1400 and view.due_to(VERIFIER) == 70
    assert view.due_to(SOLVER) == 0
    assert [e.name for e in view.timeline][:2] == ["TaskSubmitted", "TaskProfiled"]


def test_fold_does_not_depend_on_input_order() -> None:
    assert fold(7, reversed(HISTORY)) == fold(7, HISTORY)


def test_states_along_the_way() -> None:
    expected = [
        "Submitted", "Open", "Training", "Committed", "Verifying", "Verifying", "Verifying",
        "Committed", "Verifying", "ChallengeWindow", "Settled", "Settled",
    ]  # fmt: skip
    assert [fold(7, HISTORY[: i + 1]).status for i in range(len(HISTORY))] == expected
    # Exact tasks skip profiling: open at once.
    exact = ev(1, "TaskSubmitted", submitter=SUBMITTER, mode=0, bounty=1, protocolFee=0,
               specHash=ROOT, programRoot=ROOT, segments=1, sampledSegments=1, thresholdBound=0,
               specCid="Qm", trainingWindow=1, deadline=1)  # fmt: skip
    assert fold(7, [exact]).status == "Open"


def test_a_first_verification_may_be_forced_until_its_verifier_reveals() -> None:
    first = HISTORY[:6]  # claimed before the randomness, then the seed
    assert fold(7, first).forceable and fold(7, HISTORY[:5]).forceable
    reported = ev(7, "VerificationReported", verifier=VERIFIER, distances=[0], extraSegments=[],
                  extraDistances=[], traceRoots=[ROOT], sealedTraceRoots=ROOT, verdict=1,
                  challengeDeadline=550)  # fmt: skip
    assert fold(7, [*first, reported]).forceable
    true_root = "0x" + "cd" * 32
    revealed = ev(8, "VerificationRevealed", verifier=VERIFIER, secret=ROOT, forced=True,
                  traceRoots=[true_root], challengeDeadline=900)  # fmt: skip
    view = fold(7, [*first, reported, revealed])
    assert not view.forceable and view.revealed and view.forced
    assert view.deadline == 900 and [str(r) for r in view.trace_roots] == [true_root]


def test_a_forced_error_award_goes_to_its_catchers_or_to_its_verifier() -> None:
    """The jackpot's award for a forced error: each catcher's share, or, caught by nobody, the
    verifier's whole award (which the verifier then withdraws from the jackpot)."""
    first = HISTORY[:6]
    true_root = "0x" + "cd" * 32
    revealed = ev(8, "VerificationRevealed", verifier=VERIFIER, secret=ROOT, forced=True,
                  traceRoots=[true_root], challengeDeadline=900)  # fmt: skip
    alone = fold(7, [*first, revealed, ev(8, "ForcedErrorUncaught", verifier=VERIFIER, award=30)])
    assert alone.jackpot_awards == [(VERIFIER, 30)] and alone.awards == [(VERIFIER, 30)]
    caught = ev(8, "ForcedErrorCaught", verifier=VERIFIER, catchers=[SOLVER, OTHER_VERIFIER],
                award=15)  # fmt: skip
    assert fold(7, [*first, revealed, caught]).jackpot_awards == [
        (SOLVER, 15),
        (OTHER_VERIFIER, 15),
    ]
    # An empty reserve awards nothing: nothing to withdraw.
    empty = fold(7, [*first, revealed, ev(8, "ForcedErrorUncaught", verifier=VERIFIER, award=0)])
    assert empty.jackpot_awards == []


def test_the_reveal_deadline_follows_the_end_of_the_challenges() -> None:
    """Challenges that outlast the challenge window restart the reveal window; the view's
    deadline (what the verifier's reveal and everyone's settlement wait for) follows."""
    first = HISTORY[:6]
    reported = ev(7, "VerificationReported", verifier=VERIFIER, distances=[0], extraSegments=[],
                  extraDistances=[], traceRoots=[ROOT], sealedTraceRoots=ROOT, verdict=1,
                  challengeDeadline=550)  # fmt: skip
    opened = ev(8, "ChallengeOpened", challengeId=3, challenger=SOLVER, claim=1, segment=0,
                position=0, defenderTrace=ROOT, challengerTrace=ROOT, game=1,
                deadline=0)  # fmt: skip
    resolved = ev(20, "ChallengeResolved", challengeId=3, challenger=SOLVER, claim=1, state=4,
                  ruling=1)  # fmt: skip
    scheduled = ev(20, "RevealScheduled", verifier=VERIFIER, challengeDeadline=2000,
                   revealDeadline=2900)  # fmt: skip
    assert fold(7, [*first, reported, opened, resolved]).deadline == 550
    view = fold(7, [*first, reported, opened, resolved, scheduled])
    assert view.deadline == 2000 and view.forceable and view.status == "ChallengeWindow"


def test_events_of_other_tasks_and_unknown_events_are_ignored() -> None:
    other = DecodedLog(
        contract="TaskPool",
        name="TaskClaimed",
        args={"taskId": 8, "solver": SOLVER, "stake": 1, "deadline": 1},
        address="0xPool",
        block_number=3,
        block_hash="0xb",
        log_index=999,
        tx_hash="0xt",
    )
    unknown = ev(3, "JackpotSwept", amount=5)
    assert fold(7, [*HISTORY[:2], other, unknown]) == fold(7, HISTORY[:2])
    assert set(fold_all([*HISTORY, other])) == {7, 8}
