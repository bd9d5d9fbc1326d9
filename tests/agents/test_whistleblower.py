"""Re-checks and challenges, driven by tables of situations: the whistleblower's decisions, the
solver's challenge of a Fail, and the comparison of a replay with a report."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agents.chain.abi import ContractInterface
from agents.commitment import Root
from agents.exact.float32 import POSITIVE_INFINITY_BITS, to_bits
from agents.learning.selection import sample_segments
from agents.node.config import SolverPolicy, VerifierPolicy, WhistleblowerPolicy
from agents.roles import challenges, solver, verifier, whistleblower
from agents.roles.challenges import Disagreement, challenge_duties, disagreements, recheck_draw
from agents.roles.games import GameRecord
from agents.roles.jobs import OpeningJob, OpeningResult, ReplayJob, ReplayResult
from agents.roles.situation import PoolParameters, Send, Start, WorkState
from agents.roles.tasks import ChallengeView, TaskView
from tests.agents.test_decisions import ME, NOW, OTHER, PARAMS, Case, secret_of, show, task

BOND = 300
WITH_BOND = dataclasses.replace(PARAMS, challenge_bond=BOND)
FORCING = dataclasses.replace(WITH_BOND, forced_error_ppm=1_000_000)
RANDOMNESS = "0x" + "5a" * 32
VERIFIER = "0x00000000000000000000000000000000000000Ee"
FAIL = POSITIVE_INFINITY_BITS
# Six segments, two drawn: the sample is the first, the last and two drawn between them.
SAMPLE = sample_segments(bytes.fromhex(RANDOMNESS[2:]), 6, 2)
UNSAMPLED = [s for s in range(6) if s not in SAMPLE]


def root(i: int) -> Root:
    return Root(bytes([i]) * 32)


HONEST = [root(0x10 + s) for s in range(6)]  # the trace root of each segment's honest replay


def reported(
    status: str = "ChallengeWindow",
    *,
    roots: dict[int, Root] | None = None,
    distances: dict[int, int] | None = None,
    extra: tuple[int, ...] = (),
    **fields: Any,
) -> TaskView:
    """Task 1 with a report of its sample (honest roots and +0 distances unless overridden)."""
    roots = roots or {}
    distances = distances or {}
    segments = [*SAMPLE, *extra]
    base: dict[str, Any] = {
        "segments": 6,
        "sampled_segments": 2,
        "verifier": VERIFIER,
        "randomness": RANDOMNESS,
    }
    if status == "ChallengeWindow":
        base.update(
            distances=[distances.get(s, 0) for s in SAMPLE],
            extra_segments=list(extra),
            extra_distances=[distances.get(s, 0) for s in extra],
            trace_roots=[roots.get(s, HONEST[s]) for s in segments],
            verdict="Fail" if any(d > 0 for d in distances.values()) else "Pass",
        )
    base.update(fields)
    return task(1, status, **base)


def replayed(
    key: str = "recheck/1/0",
    *,
    distances: dict[int, int] | None = None,
    extra: tuple[int, ...] = (),
) -> dict[str, WorkState]:
    """A finished honest re-check (its distances +0 unless overridden)."""
    distances = distances or {}
    segments = [*SAMPLE, *extra]
    result = ReplayResult(
        distances=tuple(distances.get(s, 0) for s in SAMPLE),
        trace_roots=tuple(HONEST[s] for s in segments),
        verdict="fail" if any(d > 0 for d in distances.values()) else "pass",
        extra_segments=extra,
        extra_distances=tuple(distances.get(s, 0) for s in extra),
    )
    return {key: WorkState(key, "done", result)}


def opening(segment: int, distance: int = 0) -> OpeningResult:
    """This agent's trace of ``segment``: the honest root, and a stand-in opening."""
    return OpeningResult(
        segment=segment,
        trace_root=HONEST[segment],
        distance=distance,
        program_header=b"\x01\x02",
        start_state=root(0x30 + segment),
        start_proof=(root(0x40),),
        claimed_state=root(0x31 + segment),
        claimed_proof=(root(0x41),),
        distance_proof=("0xd157", segment, distance),  # a stand-in, carried as it is
    )


def traced(segment: int, distance: int = 0, task_id: int = 1) -> dict[str, WorkState]:
    key = f"opening/{task_id}/{segment}"
    return {key: WorkState(key, "done", opening(segment, distance))}


def report_line(segment: int) -> str:
    position = SAMPLE.index(segment)
    args: tuple[Any, ...] = (1, position, HONEST[segment].chain, [], opening(segment).opening())
    return f"send challenge/1/0/{segment} challengeReport{args!r} value={BOND}"


def distance_line(segment: int, distance: int = 0) -> str:
    position = SAMPLE.index(segment)
    claim: tuple[object, ...] = (1, position, [], ("0xd157", segment, distance))
    return f"send challenge/1/0/{segment} disproveReport{claim!r}"


def proof_line(segment: int) -> str:
    args = (1, segment, HONEST[segment].chain)
    return f"send challenge/1/0/{segment} challengeProof{args!r} value={BOND}"


MIDDLE = SAMPLE[1]  # a drawn segment
ALL = WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0)
NONE = WhistleblowerPolicy(proof_share=0.0, recheck_share=0.0)
LIE: dict[str, Any] = {
    "roots": {MIDDLE: root(0xEE)}
}  # the report's root of MIDDLE is not the replay's


def rechecked_and_traced(*segments: int, **distances: int) -> dict[str, WorkState]:
    work = replayed()
    for segment in segments:
        work.update(traced(segment))
    return work


WHISTLEBLOWER_CASES: list[tuple[Case, WhistleblowerPolicy]] = [
    (
        Case(
            "a report that may be forced: re-checked even at share 0",
            [reported("Verifying", forceable=True)],
            ["start replay recheck/1/0"],
            params=FORCING,
        ),
        NONE,
    ),
    (
        Case(
            "claimed after the randomness (not forceable), share 0: left alone",
            [reported("Verifying")],
            [],
            params=FORCING,
        ),
        NONE,
    ),
    (
        Case(
            "share 1: every report re-checked",
            [reported("Verifying")],
            ["start replay recheck/1/0"],
        ),
        ALL,
    ),
    (Case("randomness not drawn yet: waits", [reported("Verifying", randomness=None)], []), ALL),
    (
        Case(
            "re-check running: waits",
            [reported()],
            [],
            work={"recheck/1/0": WorkState("recheck/1/0", "running")},
        ),
        ALL,
    ),
    (
        Case(
            "restarted mid re-check: starts it again",
            [reported()],
            ["start replay recheck/1/0"],
            work={"recheck/1/0": WorkState("recheck/1/0", "interrupted")},
        ),
        ALL,
    ),
    (Case("the report agrees with the re-check: nothing", [reported()], [], work=replayed()), ALL),
    (
        Case(
            "re-checked before the report is in: waits for it",
            [reported("Verifying")],
            [],
            work=replayed(),
        ),
        ALL,
    ),
    (
        Case(
            "a reported root differs (a forced error): traces that segment first",
            [reported(**LIE, forceable=True)],
            [f"start opening opening/1/{MIDDLE}"],
            work=replayed(),
            params=FORCING,
        ),
        NONE,
    ),
    (
        Case(
            "... then challenges the report at its position with its trace and the opening",
            [reported(**LIE, forceable=True)],
            [report_line(MIDDLE)],
            work=rechecked_and_traced(MIDDLE),
            params=FORCING,
        ),
        NONE,
    ),
    (
        Case(
            "tracing the segment: waits",
            [reported(**LIE)],
            [],
            work={
                **replayed(),
                f"opening/1/{MIDDLE}": WorkState(f"opening/1/{MIDDLE}", "running"),
            },
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "a Pass over a segment that fails with the same root: disproves the distance",
            [reported()],
            [distance_line(MIDDLE, FAIL)],
            work={**replayed(distances={MIDDLE: FAIL}), **traced(MIDDLE, FAIL)},
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "... unless its own trace of the segment passes after all",
            [reported()],
            [],
            work={**replayed(distances={MIDDLE: FAIL}), **traced(MIDDLE, 0)},
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "a lying root and a failing proof: the root is challenged, first",
            [reported(roots={SAMPLE[-1]: root(0xEE)})],
            [report_line(SAMPLE[-1])],
            work={
                **replayed(distances={MIDDLE: FAIL, SAMPLE[-1]: FAIL}),
                **traced(SAMPLE[-1]),
            },
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "screening flags a segment the report skipped, and it fails: challenges the proof",
            [reported()],
            [proof_line(UNSAMPLED[0])],
            work={
                **replayed(extra=(UNSAMPLED[0],), distances={UNSAMPLED[0]: FAIL}),
                **traced(UNSAMPLED[0], FAIL),
            },
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "a flagged segment the report skipped that passes: nothing",
            [reported()],
            [],
            work=replayed(extra=(UNSAMPLED[0],)),
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "challenged this round already: not again",
            [reported(**LIE)],
            [],
            work=rechecked_and_traced(MIDDLE),
            journal={f"challenge/1/0/{SAMPLE[0]}": "mined"},
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "challenge window over: too late",
            [reported(**LIE, deadline=999)],
            [],
            work=rechecked_and_traced(MIDDLE),
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "this account solved the task: not its business",
            [reported(**LIE, solver=ME)],
            [],
            work=rechecked_and_traced(MIDDLE),
            params=WITH_BOND,
        ),
        ALL,
    ),
    (
        Case(
            "its own tasks too when the policy says so",
            [reported(**LIE, submitter=ME)],
            [report_line(MIDDLE)],
            work=rechecked_and_traced(MIDDLE),
            params=WITH_BOND,
        ),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, own_tasks=True),
    ),
    (
        Case("a submitter it does not watch: left alone", [reported("Verifying")], []),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, submitters=OTHER),
    ),
    (
        Case("a spec above max_ops: left alone", [reported("Verifying")], []),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, max_ops=10),
    ),
    (
        Case(
            "a bond above max_bond_wei: no challenge",
            [reported(**LIE)],
            [],
            work=rechecked_and_traced(MIDDLE),
            params=WITH_BOND,
        ),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, max_bond_wei=BOND - 1),
    ),
    (
        Case(
            "another challenge of an unsettled task holds the budget: no challenge",
            [reported(**LIE), task(2, "ChallengeWindow")],
            [],
            work=rechecked_and_traced(MIDDLE),
            journal={"challenge/2/0/3": "mined"},
            params=WITH_BOND,
        ),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, budget_wei=BOND),
    ),
    (
        Case(
            "the bond of a settled task's challenge is free again",
            [reported(**LIE), task(2, "Settled")],
            [report_line(MIDDLE)],
            work=rechecked_and_traced(MIDDLE),
            journal={"challenge/2/0/3": "mined"},
            params=WITH_BOND,
        ),
        WhistleblowerPolicy(proof_share=0.0, recheck_share=1.0, budget_wei=BOND),
    ),
    (
        Case(
            "a new verification round is a new re-check",
            [reported("Verifying", verification_round=1)],
            ["start replay recheck/1/1"],
            work=replayed(),
        ),
        ALL,
    ),
]


@pytest.mark.parametrize(
    ("case", "policy"), WHISTLEBLOWER_CASES, ids=[c.name for c, _ in WHISTLEBLOWER_CASES]
)
def test_whistleblower(
    case: Case, policy: WhistleblowerPolicy, pool_interface: ContractInterface
) -> None:
    assert show(whistleblower.decide(case.situation(pool_interface), policy)) == case.expected


def test_the_recheck_replays_what_the_verifier_replays() -> None:
    case = Case("", [reported("Verifying", threshold=to_bits(0.5))], [])
    (action,) = whistleblower.decide(case.situation(), ALL)
    view = case.tasks[0]
    assert isinstance(action, Start) and isinstance(action.inputs, ReplayJob)
    job = action.inputs
    assert (job.spec_cid, job.proof_cid, job.checkpoint_root) == (
        view.spec_cid,
        view.proof_cid,
        view.checkpoint_root,
    )
    assert (job.randomness, job.segments, job.sampled, job.threshold) == (
        view.randomness,
        6,
        2,
        to_bits(0.5),
    )


def test_the_segment_is_traced_from_the_committed_proof() -> None:
    case = Case("", [reported(**LIE)], [], work=replayed(), params=WITH_BOND)
    (action,) = whistleblower.decide(case.situation(), ALL)
    assert isinstance(action, Start)
    assert action.inputs == OpeningJob(spec_cid="QmSpec", proof_cid="QmProof", segment=MIDDLE)


def test_the_recheck_share_is_kept_and_unpredictable_without_the_key() -> None:
    """Over many reports the share drawn is the policy's; another key draws other reports."""
    share, n = 0.25, 4000
    mine = [recheck_draw(secret_of(t % 250, t // 250), t, 0) < share for t in range(n)]
    other = [recheck_draw(b"\x01" * 32 + bytes([t % 7]), t, 0) < share for t in range(n)]
    assert abs(sum(mine) / n - share) < 0.03
    agree = sum(a == b for a, b in zip(mine, other, strict=True)) / n
    # Independent draws agree with probability share² + (1 − share)² = 0.625.
    assert abs(agree - 0.625) < 0.04


def test_decisions_survive_a_restart(pool_interface: ContractInterface) -> None:
    """The same situation gives the same decisions; once the journal holds the challenge it
    is not sent again."""
    case = Case("", [reported(**LIE)], [], work=rechecked_and_traced(MIDDLE), params=WITH_BOND)
    first = show(whistleblower.decide(case.situation(pool_interface), ALL))
    assert first == [report_line(MIDDLE)]
    assert first == show(whistleblower.decide(case.situation(pool_interface), ALL))
    again = dataclasses.replace(case, journal={first[0].split()[1]: "signed"})
    assert show(whistleblower.decide(again.situation(pool_interface), ALL)) == []


def test_disagreements_name_every_differing_segment_in_order() -> None:
    view = reported(roots={SAMPLE[-1]: root(0xEE), MIDDLE: root(0xEF)})
    (work,) = replayed(extra=(UNSAMPLED[1],), distances={UNSAMPLED[1]: FAIL}).values()
    assert isinstance(work.result, ReplayResult)
    found = disagreements(view, work.result)
    assert [(d.kind, d.segment, d.position) for d in found] == [
        ("report", MIDDLE, 1),
        ("report", SAMPLE[-1], len(SAMPLE) - 1),
        ("proof", UNSAMPLED[1], None),
    ]
    assert found[0] == Disagreement("report", MIDDLE, HONEST[MIDDLE], 0, 1, root(0xEF), 0)
    assert challenges.first_challenge(found[::-1]) == found[0]


def test_a_report_that_is_not_the_pools_shape_is_not_compared() -> None:
    view = reported(**LIE)
    view.trace_roots = view.trace_roots[:-1]
    (work,) = replayed().values()
    assert isinstance(work.result, ReplayResult)
    assert disagreements(view, work.result) == []


def test_a_replay_that_rejected_before_replaying_is_not_compared() -> None:
    view = reported(**LIE)
    result = ReplayResult((FAIL,) * 4, (root(0x99),), "fail")
    assert disagreements(view, result) == []


# -- the solver's challenge of a Fail -------------------------------------------------------

LYING_FAIL: dict[str, Any] = {
    "roots": {MIDDLE: root(0xEE)},
    "distances": {MIDDLE: FAIL},
    "solver": ME,
}
SOLVER_CASES = [
    Case(
        "a Fail on its proof: re-checks",
        [reported(**LYING_FAIL)],
        ["start replay recheck/1/0"],
        params=WITH_BOND,
    ),
    Case(
        "its replay passes where the Fail's root differs: traces the segment",
        [reported(**LYING_FAIL)],
        [f"start opening opening/1/{MIDDLE}"],
        work=replayed(),
        params=WITH_BOND,
    ),
    Case(
        "... and challenges the report there",
        [reported(**LYING_FAIL)],
        [report_line(MIDDLE)],
        work=rechecked_and_traced(MIDDLE),
        params=WITH_BOND,
    ),
    Case(
        "a Fail with its own roots but a failing distance: disproves the distance",
        [reported(distances={MIDDLE: FAIL}, solver=ME)],
        [distance_line(MIDDLE)],
        work=rechecked_and_traced(MIDDLE),
        params=WITH_BOND,
    ),
    Case(
        "its own replay fails too: does not challenge",
        [reported(**LYING_FAIL)],
        [],
        work={**replayed(distances={MIDDLE: FAIL}), **traced(MIDDLE)},
        params=WITH_BOND,
    ),
    Case("a Pass: nothing to contest", [reported(solver=ME)], [], work=replayed()),
    Case(
        "someone else's task: not the solver's business",
        [reported(**{**LYING_FAIL, "solver": OTHER})],
        [],
        work=rechecked_and_traced(MIDDLE),
        params=WITH_BOND,
    ),
    Case(
        "challenged already: not again",
        [reported(**LYING_FAIL)],
        [],
        work=rechecked_and_traced(MIDDLE),
        journal={f"challenge/1/0/{MIDDLE}": "sent"},
        params=WITH_BOND,
    ),
    Case(
        "the challenge window closed: too late",
        [reported(**{**LYING_FAIL, "deadline": 999})],
        [],
        work=rechecked_and_traced(MIDDLE),
        params=WITH_BOND,
    ),
]


def _challenge_actions(lines: list[str]) -> list[str]:
    return [a for a in lines if "withdraw/" not in a and "timeout/" not in a]


@pytest.mark.parametrize("case", SOLVER_CASES, ids=lambda c: c.name)
def test_solver_challenges_a_fail_it_disproves(
    case: Case, pool_interface: ContractInterface
) -> None:
    actions = solver.decide(case.situation(pool_interface), SolverPolicy())
    assert _challenge_actions(show(actions)) == case.expected


def test_a_cheating_solver_does_not_contest() -> None:
    case = Case("", [reported(**LYING_FAIL)], [], work=replayed(), params=WITH_BOND)
    actions = solver.decide(case.situation(), SolverPolicy(adversary="fake-half"))
    assert not [a for a in show(actions) if "challenge" in a or "opening" in a]


def test_the_bond_comes_from_the_pools_parameters() -> None:
    raw = {name: 0 for name in ("solverStakeBps", "verifierStakeBps", "profilerStakeBps")}
    raw.update(minSampledSegments=1, forcedErrorPpm=0, revealWindow=0, maxThreshold=0, minBounty=0)
    assert PoolParameters.from_chain(raw).challenge_bond == 0
    assert PoolParameters.from_chain({**raw, "challengeBond": 7}).challenge_bond == 7


# -- every role's challenge duties: answers, resolutions, credit ----------------------------

CHALLENGER = "0x00000000000000000000000000000000000000Cc"


def challenge_of(state: str, *, game: int = 0, challenger: str = CHALLENGER, **fields: Any) -> Any:
    base: dict[str, Any] = {
        "challenge_id": 4,
        "challenger": challenger,
        "claim": "Proof",
        "segment": MIDDLE,
        "position": 0,
        "defender_trace": root(0),
        "challenger_trace": root(0xCC),
        "game": game,
        "deadline": NOW + 50,
        "round": 0,
        "state": state,
    }
    base.update(fields)
    return ChallengeView(**base)


def game_record(game_id: int, defender: str, challenger: str, ruling: str) -> GameRecord:
    return GameRecord(
        game_id, defender, challenger, "0xpool", root(1), root(2), MIDDLE, 5, ruling=ruling
    )


def with_challenge(c: ChallengeView, **fields: Any) -> TaskView:
    view = reported(**fields)
    view.challenges = {c.challenge_id: c}
    return view


def answer_line(segment: int, distance: int = 0) -> str:
    got = opening(segment, distance)
    args: tuple[Any, ...] = (4, got.trace_root.chain, distance, [], got.opening())
    return f"send answer/1/4 answerChallenge{args!r}"


DUTY_CASES: list[
    tuple[
        str, TaskView, dict[str, WorkState], dict[str, str], dict[int, GameRecord], int, list[str]
    ]
] = [
    (
        "a challenge of its proof: traces the segment",
        with_challenge(challenge_of("Answering"), solver=ME),
        {},
        {},
        {},
        0,
        [f"start opening opening/1/{MIDDLE}"],
    ),
    (
        "... and answers with its trace when it passes",
        with_challenge(challenge_of("Answering"), solver=ME),
        traced(MIDDLE),
        {},
        {},
        0,
        [answer_line(MIDDLE)],
    ),
    (
        "its own trace fails: no answer",
        with_challenge(challenge_of("Answering"), solver=ME),
        traced(MIDDLE, FAIL),
        {},
        {},
        0,
        [],
    ),
    (
        "the answer window closed: no answer",
        with_challenge(challenge_of("Answering", deadline=NOW - 5), solver=ME),
        traced(MIDDLE),
        {},
        {},
        0,
        [],
    ),
    (
        "answered already: not again",
        with_challenge(challenge_of("Answering"), solver=ME),
        traced(MIDDLE),
        {"answer/1/4": "mined"},
        {},
        0,
        [],
    ),
    (
        "a challenge of someone else's proof: not its to answer",
        with_challenge(challenge_of("Answering"), solver=OTHER),
        traced(MIDDLE),
        {},
        {},
        0,
        [],
    ),
    (
        "its challenge went unanswered past the deadline: resolves it",
        with_challenge(challenge_of("Answering", challenger=ME, deadline=NOW - 5), solver=OTHER),
        {},
        {},
        {},
        0,
        ["send resolve/1/4 resolve(4,)"],
    ),
    (
        "its challenge's game won: resolves it",
        with_challenge(challenge_of("Playing", challenger=ME, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, VERIFIER, ME, "CHALLENGER_WINS")},
        0,
        ["send resolve/1/4 resolve(4,)"],
    ),
    (
        "both lost: the challenger resolves (the claim lost)",
        with_challenge(challenge_of("Playing", challenger=ME, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, VERIFIER, ME, "BOTH_LOSE")},
        0,
        ["send resolve/1/4 resolve(4,)"],
    ),
    (
        "the defender won: the defender resolves, not the challenger",
        with_challenge(challenge_of("Playing", challenger=ME, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, VERIFIER, ME, "DEFENDER_WINS")},
        0,
        [],
    ),
    (
        "it defended and won: resolves",
        with_challenge(challenge_of("Playing", challenger=OTHER, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, ME, OTHER, "DEFENDER_WINS")},
        0,
        ["send resolve/1/4 resolve(4,)"],
    ),
    (
        "the game is still on: waits",
        with_challenge(challenge_of("Playing", challenger=ME, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, VERIFIER, ME, "None")},
        0,
        [],
    ),
    (
        "resolved already: not again",
        with_challenge(challenge_of("Upheld", challenger=ME, game=9), solver=OTHER),
        {},
        {},
        {9: game_record(9, VERIFIER, ME, "CHALLENGER_WINS")},
        0,
        [],
    ),
    (
        "credit waiting: takes it",
        reported(solver=OTHER),
        {},
        {},
        {},
        500,
        ["send withdraw-credit/2 withdrawCredit()"],
    ),
    (
        "its credit withdrawal in flight: not again",
        reported(solver=OTHER),
        {},
        {"withdraw-credit/2": "sent"},
        {},
        500,
        [],
    ),
]


@pytest.mark.parametrize(
    ("name", "view", "work", "journal", "games", "credit", "expected"),
    DUTY_CASES,
    ids=[c[0] for c in DUTY_CASES],
)
def test_challenge_duties(
    name: str,
    view: TaskView,
    work: dict[str, WorkState],
    journal: dict[str, str],
    games: dict[int, GameRecord],
    credit: int,
    expected: list[str],
    pool_interface: ContractInterface,
) -> None:
    case = Case(name, [view], [], work=work, journal=journal, params=WITH_BOND)
    situation = dataclasses.replace(
        case.situation(pool_interface), games=games, credit=credit, credit_withdrawals=2
    )
    assert show(challenge_duties(situation)) == expected
    # Every role takes these duties the same way.
    for actions in (
        solver.decide(situation, SolverPolicy()),
        verifier.decide(situation, VerifierPolicy()),
        whistleblower.decide(situation, NONE),
    ):
        lines = show(actions)
        assert [x for x in lines if x in expected] == expected


# -- the devnet adversaries that the demos play against -------------------------------------


def verifying(**fields: Any) -> TaskView:
    return reported("Verifying", verifier=ME, **fields)


def lie_of(segment: int, lie_root: Root) -> dict[str, WorkState]:
    key = f"opening/1/{segment}"
    got = dataclasses.replace(opening(segment), trace_root=lie_root, fault={"kind": "value"})
    return {key: WorkState(key, "done", got)}


def report_of(view: TaskView, line: str) -> tuple[Any, ...]:
    """The report tuple of a ``reportVerification`` line."""
    assert "reportVerification" in line
    report: tuple[Any, ...] = eval(line.split("reportVerification", 1)[1].split(" value=")[0])[1]
    return report


def test_a_lying_fail_verifier_traces_its_lie_then_reports_it(
    pool_interface: ContractInterface,
) -> None:
    policy = VerifierPolicy(adversary="fail")
    work = replayed("replay/1")
    case = Case("", [verifying()], [], work=work, params=WITH_BOND)
    (action,) = [a for a in verifier.decide(case.situation(pool_interface), policy)]
    assert isinstance(action, Start)
    assert action.inputs == OpeningJob("QmSpec", "QmProof", SAMPLE[0], lie="fail")
    lied = dataclasses.replace(case, work={**work, **lie_of(SAMPLE[0], root(0xEE))})
    (line,) = show(verifier.decide(lied.situation(pool_interface), policy))
    distances, extra, extra_distances, roots, _ = report_of(lied.tasks[0], line)
    assert distances == [FAIL, *[0] * (len(SAMPLE) - 1)]
    assert roots == [root(0xEE).chain, *[HONEST[s].chain for s in SAMPLE[1:]]]
    assert (extra, extra_distances) == ([], [])


def test_a_colluding_verifier_passes_every_failing_segment_behind_a_lie(
    pool_interface: ContractInterface,
) -> None:
    policy = VerifierPolicy(adversary="pass")
    work = replayed("replay/1", distances={MIDDLE: FAIL, SAMPLE[-1]: FAIL})
    case = Case("", [verifying()], [], work=work, params=WITH_BOND)
    starts = verifier.decide(case.situation(pool_interface), policy)
    assert [a.inputs for a in starts if isinstance(a, Start)] == [
        OpeningJob("QmSpec", "QmProof", MIDDLE, lie="pass"),
        OpeningJob("QmSpec", "QmProof", SAMPLE[-1], lie="pass"),
    ]
    lies = {**lie_of(MIDDLE, root(0xE1)), **lie_of(SAMPLE[-1], root(0xE2))}
    lied = dataclasses.replace(case, work={**work, **lies})
    (line,) = show(verifier.decide(lied.situation(pool_interface), policy))
    distances, _, _, roots, _ = report_of(lied.tasks[0], line)
    assert distances == [0] * len(SAMPLE)
    expected = {MIDDLE: root(0xE1).chain, SAMPLE[-1]: root(0xE2).chain}
    assert roots == [expected.get(s, HONEST[s].chain) for s in SAMPLE]


def test_no_settlement_while_a_challenge_of_the_report_is_open(
    pool_interface: ContractInterface,
) -> None:
    def settles(state: str) -> bool:
        view = with_challenge(
            challenge_of(state, claim="Report", game=9), solver=ME, deadline=NOW - 10
        )
        case = Case("", [view], [], params=WITH_BOND)
        lines = show(solver.decide(case.situation(pool_interface), SolverPolicy()))
        return any(line.startswith("send withdraw/1 ") for line in lines)

    assert not settles("Playing") and not settles("Answering")
    assert settles("Rejected")


def test_jackpot_awards_are_taken_once_per_award_seen(pool_interface: ContractInterface) -> None:
    view = reported(solver=OTHER)
    view.jackpot_awards = [(ME, 40), (OTHER, 40)]
    case = Case("", [view], [], params=WITH_BOND)
    owed = dataclasses.replace(case.situation(pool_interface), jackpot_owed=40)
    assert show(challenge_duties(owed)) == ["send withdraw-award/1 withdraw()"]
    (action,) = challenge_duties(owed)
    assert isinstance(action, Send) and action.intent.contract == "Jackpot"
    sent = dataclasses.replace(owed, journal={"withdraw-award/1": "mined"})
    assert challenge_duties(sent) == []
    assert challenge_duties(dataclasses.replace(owed, jackpot_owed=0)) == []


def test_a_devnet_liar_reports_honestly_once_its_first_report_lost(
    pool_interface: ContractInterface,
) -> None:
    view = verifying(verification_round=1)
    case = Case("", [view], [], work=replayed("replay/1"), params=WITH_BOND)
    (line,) = show(
        verifier.decide(case.situation(pool_interface), VerifierPolicy(adversary="fail"))
    )
    distances, _, _, roots, _ = report_of(view, line)
    assert distances == [0] * len(SAMPLE)
    assert roots == [HONEST[s].chain for s in SAMPLE]
