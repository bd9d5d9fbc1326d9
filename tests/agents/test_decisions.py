"""Decision functions, driven by tables of situations: no chain, no store, no torch."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils.crypto import keccak

from agents.chain.abi import ContractInterface
from agents.chain.journal import Failure
from agents.commitment import Digest, Root
from agents.errors import VeritrainError
from agents.exact.float32 import to_bits
from agents.learning.drift import DriftModel
from agents.node.config import SolverPolicy, VerifierPolicy
from agents.roles import solver, submitter, verifier
from agents.roles.jobs import (
    DriftJob,
    DriftResult,
    JobResult,
    ProfileResult,
    ReplayJob,
    ReplayResult,
    TrainJob,
    TrainResult,
)
from agents.roles.shares import commitment, forced_roots, seal
from agents.roles.situation import Action, PoolParameters, Send, Situation, SpecFacts, WorkState
from agents.roles.tasks import TaskView, TimelineEntry

ME = "0x00000000000000000000000000000000000000Aa"
SUBMITTER = "0x0000000000000000000000000000000000000051"
OTHER = "0x00000000000000000000000000000000000000B0"
PARAMS = PoolParameters(
    solver_stake_bps=20_000,
    verifier_stake_bps=5_000,
    profiler_stake_bps=1_000,
    min_sampled_segments=3,
    forced_error_ppm=0,
    reveal_window=50,
)
# Every report that may be forced is forced.
FORCING = dataclasses.replace(PARAMS, forced_error_ppm=1_000_000)
NOW = 1_000
GOOD = SpecFacts(ops=10**9, steps=100, segments=10)
ROOT = "0x" + "ab" * 32
# Trace roots of a report of three sampled segments and one extra.
ROOTS = ["0x" + f"{i:02x}" * 32 for i in (0xA1, 0xA2, 0xA3, 0xA4)]


def parsed(roots: list[str]) -> list[Root]:
    return [Root.parse(r) for r in roots]


def chain_roots(roots: list[str]) -> list[str]:
    return [Root.parse(r).chain for r in roots]


def sealed(roots: list[str], task_id: int = 1, rnd: int = 0) -> str:
    return seal(secret_of(task_id, rnd), [Root.parse(r) for r in roots]).chain


def task(task_id: int = 1, status: str = "Open", **fields: Any) -> TaskView:
    base: dict[str, Any] = {
        "submitter": SUBMITTER,
        "bounty": 1000,
        "deadline": NOW + 100,
        "spec_cid": "QmSpec",
        "spec_hash": Digest.parse("0x" + "11" * 32),
        "segments": 10,
        "sampled_segments": 5,
        "timeline": [TimelineEntry(7, 0, "X", {}, "0x")],
    }
    if status not in ("Submitted", "Open", "Training"):  # a proof was committed
        base.update(proof_cid="QmProof", checkpoint_root=Root.parse(ROOT))
    if isinstance(fields.get("randomness"), str):
        fields["randomness"] = Digest.parse(fields["randomness"])
    if fields.get("randomness") is not None:
        # The draw records the hash of the claim's block with the randomness.
        fields.setdefault("claim_block_hash", Digest.parse("0x" + "cb" * 32))
    base.update(fields)
    return TaskView(task_id=task_id, status=status, **base)


@dataclass
class Case:
    name: str
    tasks: list[TaskView]
    expected: list[str]
    journal: dict[str, str] = field(default_factory=dict)
    work: dict[str, WorkState] = field(default_factory=dict)
    specs: dict[int, SpecFacts] = field(default_factory=lambda: {1: GOOD, 2: GOOD})
    now: float = NOW
    head: int = 10
    params: PoolParameters = PARAMS
    failures: dict[str, Failure] = field(default_factory=dict)

    def situation(self, pool: ContractInterface | None = None) -> Situation:
        return Situation(
            me=ME,
            now=self.now,
            head=self.head,
            tasks={t.task_id: t for t in self.tasks},
            journal=self.journal,
            work=self.work,
            params=self.params,
            specs=self.specs,
            margin=1,
            seed=seed_of,
            secret=secret_of,
            pool=pool,
            failures=self.failures,
        )


def seed_of(task_id: int) -> bytes:
    return bytes([task_id]) + b"\x5e" * 31


def secret_of(task_id: int, rnd: int) -> bytes:
    return bytes([task_id, rnd]) + bytes(30)


def show(actions: list[Action]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Send):
            i = a.intent
            value = f" value={i.value}" if i.value else ""
            out.append(f"send {i.key} {i.function}{tuple(i.args)!r}{value}")
        else:
            out.append(f"start {a.kind} {a.key}")
    return out


def done(key: str, **fields: Any) -> dict[str, WorkState]:
    kind = key.split("/")[0]
    result: JobResult
    if kind == "train":
        root = Root.parse(fields["checkpoint_root"])
        result = TrainResult(fields["proof_cid"], root, fields["segments"])
    elif kind == "replay":
        roots = tuple(Root.parse(r) for r in fields["trace_roots"])
        result = ReplayResult(
            tuple(fields["distances"]),
            roots,
            fields.get("verdict", "pass"),
            extra_segments=tuple(fields.get("extra_segments", ())),
            extra_distances=tuple(fields.get("extra_distances", ())),
        )
    elif kind == "drift":
        result = DriftResult(fields["max_drift"], fields.get("model", SOLVER_DRIFT))
    else:
        result = ProfileResult(fields["threshold"], fields["profile_cid"], tau=0.0)
    return {key: WorkState(key, "done", result)}


# A solver whose honest segments drift by about 1e-5 (log spread 1.0): at τ = 1e-2 a segment
# exceeds τ with probability about 1e-10, at τ = 1e-4 about 2 %.
SOLVER_DRIFT = DriftModel(samples=5, log_mean=math.log(1e-5), log_spread=1.0, growth=1.0)


def tolerant(tau: float, **fields: Any) -> TaskView:
    return task(mode="tolerant", threshold=to_bits(tau), **fields)


SOLVER_CASES = [
    Case("claims an open task that fits", [task()], ["send claim/1 claim(1,) value=2000"]),
    Case("no spec facts yet: waits", [task()], [], specs={}),
    Case("unusable spec: skips", [task()], [], specs={1: SpecFacts(problem="bad hash")}),
    Case("too big: skips", [task()], [], specs={1: SpecFacts(ops=10**16)}),
    Case("too cheap: skips", [task(bounty=10)], []),
    Case("claim window about to close: skips", [task(deadline=NOW)], []),
    Case("claim already in flight: not again", [task()], [], journal={"claim/1": "sent"}),
    Case("claim reverted earlier: not again", [task()], [], journal={"claim/1": "reverted"}),
    Case(
        "one at a time: the second waits", [task(1), task(2)], ["send claim/1 claim(1,) value=2000"]
    ),
    Case(
        "busy with a claim in flight: waits",
        [task(1), task(2)],
        [],
        journal={"claim/1": "sent"},
    ),
    Case(
        "tolerant task: measures its own drift before claiming",
        [tolerant(1e-2)],
        ["start drift drift/1"],
    ),
    Case(
        "measuring its drift: waits",
        [tolerant(1e-2)],
        [],
        work={"drift/1": WorkState("drift/1", "running")},
    ),
    Case(
        "restarted while measuring its drift: measures again",
        [tolerant(1e-2)],
        ["start drift drift/1"],
        work={"drift/1": WorkState("drift/1", "interrupted")},
    ),
    Case(
        "τ far above its drift: claims",
        [tolerant(1e-2)],
        ["send claim/1 claim(1,) value=2000"],
        work=done("drift/1", max_drift=3e-5),
    ),
    Case(
        "τ within its drift's spread (rejection risk 12 %): does not claim",
        [tolerant(1e-4)],
        [],
        work=done("drift/1", max_drift=3e-5),
    ),
    Case(
        "τ below a drift it measured: does not claim",
        [tolerant(2e-5)],
        [],
        work=done("drift/1", max_drift=3e-5, model=None),
    ),
    Case(
        "its training diverges where the replay does not (drift +inf): does not claim",
        [tolerant(3.4e38)],
        [],
        work=done("drift/1", max_drift=math.inf, model=SOLVER_DRIFT),
    ),
    Case(
        "bit-identical to the replay: any τ will do",
        [tolerant(1e-9)],
        ["send claim/1 claim(1,) value=2000"],
        work=done("drift/1", max_drift=0.0, model=None),
    ),
    Case(
        "its drift could not be measured: does not claim",
        [tolerant(1e-2)],
        [],
        work={"drift/1": WorkState("drift/1", "failed", error="spec unreadable")},
    ),
    Case("claimed: starts training", [task(status="Training", solver=ME)], ["start train train/1"]),
    Case(
        "training: nothing to do",
        [task(status="Training", solver=ME)],
        [],
        work={"train/1": WorkState("train/1", "running")},
    ),
    Case(
        "interrupted training (restart): resumes",
        [task(status="Training", solver=ME)],
        ["start train train/1"],
        work={"train/1": WorkState("train/1", "interrupted")},
    ),
    Case(
        "trained: commits the proof and its seed's hash",
        [task(status="Training", solver=ME)],
        [f"send commit/1 commit(1, 'QmProof', '{ROOT}', '{commitment(seed_of(1)).chain}')"],
        work=done("train/1", proof_cid="QmProof", checkpoint_root=ROOT, segments=20),
    ),
    Case(
        "commit in flight: not again",
        [task(status="Training", solver=ME)],
        [],
        work=done("train/1", proof_cid="QmProof", checkpoint_root=ROOT, segments=20),
        journal={"commit/1": "signed"},
    ),
    Case(
        "trained too late: nothing (the deadline passed)",
        [task(status="Training", solver=ME, deadline=NOW - 5)],
        [],
        work=done("train/1", proof_cid="QmProof", checkpoint_root=ROOT, segments=20),
    ),
    Case("someone else's training: ignored", [task(status="Training", solver=OTHER)], []),
    Case(
        "unverified proof past its deadline: timeout frees the stake",
        [task(status="Committed", solver=ME, deadline=NOW - 5)],
        ["send timeout/1/Committed/0 timeout(1,)"],
    ),
    Case(
        "silent verifier: timeout reopens verification",
        [task(status="Verifying", solver=ME, verifier=OTHER, randomness=ROOT, deadline=NOW - 5)],
        ["send timeout/1/Verifying/0 timeout(1,)"],
    ),
    Case(
        "never times out its own withheld seed",
        [task(status="Verifying", solver=ME, verifier=OTHER, deadline=NOW - 5)],
        [],
    ),
    Case(
        "never times out its own training",
        [task(status="Training", solver=ME, deadline=NOW - 5)],
        [],
    ),
    Case(
        "passed verdict after the window: withdraws (settling it)",
        [
            task(
                status="ChallengeWindow",
                solver=ME,
                verifier=OTHER,
                verdict="Pass",
                deadline=NOW - 2,
            )
        ],
        ["send withdraw/1 withdraw([1],)"],
    ),
    Case(
        "failed verdict: never settles its own slashing",
        [
            task(
                status="ChallengeWindow",
                solver=ME,
                verifier=OTHER,
                verdict="Fail",
                deadline=NOW - 2,
            )
        ],
        [],
    ),
    Case(
        "window not over (margin): waits",
        [task(status="ChallengeWindow", solver=ME, verdict="Pass", deadline=NOW - 1)],
        [],
    ),
    Case(
        "window over by the margin to the sub-second: settles",
        [task(status="ChallengeWindow", solver=ME, verdict="Pass", deadline=NOW - 1)],
        ["send withdraw/1 withdraw([1],)"],
        now=NOW + 0.25,
    ),
    Case(
        "settled with a payout: withdraws",
        [task(status="Settled", solver=ME, payouts={"solver": 2900, "submitter": 0})],
        ["send withdraw/1 withdraw([1],)"],
    ),
    Case(
        "already withdrawn: nothing",
        [task(status="Settled", solver=ME, payouts={"solver": 2900}, withdrawn={ME: 2900})],
        [],
    ),
    Case("settled, nothing owed: nothing", [task(status="Settled", solver=ME, payouts={})], []),
]


@pytest.mark.parametrize("case", SOLVER_CASES, ids=lambda c: c.name)
def test_solver(case: Case) -> None:
    assert (
        show(solver.decide(case.situation(), SolverPolicy(min_bounty_per_gop=100))) == case.expected
    )


def test_solver_parallel_policy() -> None:
    case = Case("", [task(1), task(2)], [])
    assert show(solver.decide(case.situation(), SolverPolicy(max_parallel=2))) == [
        "send claim/1 claim(1,) value=2000",
        "send claim/2 claim(2,) value=2000",
    ]


def test_solver_throughput_policy() -> None:
    # 10^9 ops at 0.01 Gop/s need 100 s, with margin 125 s.
    short = Case("", [task(training_window=120)], [])
    long = Case("", [task(training_window=125)], [])
    policy = SolverPolicy(throughput_gops=0.01)
    assert show(solver.decide(short.situation(), policy)) == []
    assert show(solver.decide(long.situation(), policy)) == ["send claim/1 claim(1,) value=2000"]


def test_solver_rejection_risk_policy() -> None:
    measured = done("drift/1", max_drift=3e-5)
    risky = Case("", [tolerant(1e-4)], [], work=measured)
    # About 12 % for the 7 verified segments (5 random, the first and the last): taken by a
    # solver that accepts 15 %.
    assert show(solver.decide(risky.situation(), SolverPolicy(max_rejection_risk=0.15))) == [
        "send claim/1 claim(1,) value=2000"
    ]
    assert show(solver.decide(risky.situation(), SolverPolicy(max_rejection_risk=0.1))) == []
    # Without the check, a tolerant task is claimed at once, measured or not.
    unmeasured = Case("", [tolerant(1e-9)], [])
    assert show(solver.decide(unmeasured.situation(), SolverPolicy(max_rejection_risk=None))) == [
        "send claim/1 claim(1,) value=2000"
    ]
    (start,) = solver.decide(unmeasured.situation(), SolverPolicy(drift_budget=0.2))
    assert not isinstance(start, Send) and start.inputs == DriftJob("QmSpec", budget=0.2)


def test_solver_stake_cap() -> None:
    case = Case("", [task()], [])
    assert show(solver.decide(case.situation(), SolverPolicy(max_stake_wei=1999))) == []


def test_training_inputs_carry_the_adversary_setting() -> None:
    case = Case("", [task(status="Training", solver=ME)], [])
    (start,) = solver.decide(case.situation(), SolverPolicy(adversary="fake-half"))
    assert not isinstance(start, Send)
    assert start.inputs == TrainJob(spec_cid="QmSpec", adversary="fake-half")


def test_replay_inputs_come_from_the_view() -> None:
    view = task(
        status="Verifying",
        solver=OTHER,
        verifier=ME,
        randomness=ROOT,
        segments=20,
        sampled_segments=4,
        threshold=123,
    )
    (start,) = verifier.decide(Case("", [view], []).situation(), VerifierPolicy())
    assert not isinstance(start, Send)
    assert start.inputs == ReplayJob(
        spec_cid="QmSpec",
        proof_cid="QmProof",
        checkpoint_root=Root.parse(ROOT),
        randomness=Digest.parse(ROOT),
        segments=20,  # S and s as the task's terms on chain fix them
        sampled=4,
        threshold=123,
    )


VERIFIER_CASES = [
    Case(
        "committed proof: claims verification with its secret hash",
        [task(status="Committed", solver=OTHER)],
        [
            "send claim-verification/1/0 claimVerification"
            f"(1, '{commitment(secret_of(1, 0)).chain}') value=500"
        ],
    ),
    Case(
        "reopened round: a new claim key and secret",
        [task(status="Committed", solver=OTHER, verification_round=1)],
        [
            "send claim-verification/1/1 claimVerification"
            f"(1, '{commitment(secret_of(1, 1)).chain}') value=500"
        ],
        journal={"claim-verification/1/0": "mined"},
    ),
    Case("own proof: never verifies it", [task(status="Committed", solver=ME)], []),
    Case(
        "own task: never verifies it",
        [task(status="Committed", solver=OTHER, submitter=ME)],
        [],
    ),
    Case(
        "claim in flight: not again",
        [task(status="Committed", solver=OTHER)],
        [],
        journal={"claim-verification/1/0": "sent"},
    ),
    Case(
        "claimed, the solver's seed not revealed yet: waits",
        [task(status="Verifying", solver=OTHER, verifier=ME)],
        [],
    ),
    Case(
        "the solver withheld its seed past the deadline: timeout gives back the stake",
        [task(status="Verifying", solver=OTHER, verifier=ME, deadline=NOW - 5)],
        ["send timeout/1/Verifying/0 timeout(1,)"],
    ),
    Case(
        "randomness known: replays",
        [task(status="Verifying", solver=OTHER, verifier=ME, randomness=ROOT, segments=20)],
        ["start replay replay/1"],
    ),
    Case(
        "replayed: reports the distances, the extra segments, the trace roots and their seal",
        [task(status="Verifying", solver=OTHER, verifier=ME, randomness=ROOT, segments=20)],
        [
            "send report/1/0 reportVerification(1, ([0, 0, 1065353216], [4], [0], "
            f"{chain_roots(ROOTS)!r}, '{sealed(ROOTS)}'))"
        ],
        work=done(
            "replay/1",
            distances=[0, 0, 1065353216],
            trace_roots=ROOTS,
            verdict="fail",
            extra_segments=[4],
            extra_distances=[0],
        ),
    ),
    Case(
        "forced to err: reports another root, seals the true one",
        [
            task(
                status="Verifying",
                solver=OTHER,
                verifier=ME,
                randomness=ROOT,
                segments=20,
                forceable=True,
            )
        ],
        [
            "send report/1/0 reportVerification(1, ([0, 0, 0], [], [], "
            f"{[r.chain for r in forced_roots(parsed(ROOTS[:3]), secret_of(1, 0))]!r}, "
            f"'{sealed(ROOTS[:3])}'))"
        ],
        work=done("replay/1", distances=[0, 0, 0], trace_roots=ROOTS[:3]),
        params=FORCING,
    ),
    Case(
        "a re-verification is never forced",
        [task(status="Verifying", solver=OTHER, verifier=ME, randomness=ROOT, segments=20)],
        [
            "send report/1/0 reportVerification(1, ([0, 0, 0], [], [], "
            f"{chain_roots(ROOTS[:3])!r}, '{sealed(ROOTS[:3])}'))"
        ],
        work=done("replay/1", distances=[0, 0, 0], trace_roots=ROOTS[:3]),
        params=FORCING,
    ),
    Case(
        "replayed after its deadline: nothing (and no self-timeout)",
        [task(status="Verifying", solver=OTHER, verifier=ME, randomness=ROOT, deadline=NOW - 5)],
        [],
        work=done("replay/1", distances=[0], trace_roots=ROOTS[:1]),
    ),
    Case(
        "tolerant task submitted: profiles it",
        [task(status="Submitted", mode="tolerant")],
        ["start profile profile/1"],
    ),
    Case(
        "profile measured: posts it with the profiler stake",
        [task(status="Submitted", mode="tolerant")],
        ["send profile/1 profile(1, 1017370378, 'QmProfile') value=100"],
        work=done("profile/1", threshold=1017370378, profile_cid="QmProfile"),
    ),
    Case(
        "as profiler of an unclaimed task: timeout frees the stake",
        [task(status="Open", profiler=ME, deadline=NOW - 5)],
        ["send timeout/1/Open/0 timeout(1,)"],
    ),
    Case(
        "failed verdict after the window: withdraws its share of the slash (settling it)",
        [
            task(
                status="ChallengeWindow",
                solver=OTHER,
                verifier=ME,
                verdict="Fail",
                deadline=NOW - 2,
            )
        ],
        ["send withdraw/1 withdraw([1],)"],
    ),
    Case(
        "paid: withdraws",
        [task(status="Settled", solver=OTHER, verifier=ME, payouts={"verifier": 600})],
        ["send withdraw/1 withdraw([1],)"],
    ),
]


@pytest.mark.parametrize("case", VERIFIER_CASES, ids=lambda c: c.name)
def test_verifier(case: Case) -> None:
    assert show(verifier.decide(case.situation(), VerifierPolicy())) == case.expected


def test_verifier_policy_switches() -> None:
    case = Case(
        "",
        [task(1, status="Submitted", mode="tolerant"), task(2, status="Committed", solver=OTHER)],
        [],
    )
    assert (
        show(verifier.decide(case.situation(), VerifierPolicy(profile=False, verify=False))) == []
    )
    assert show(verifier.decide(case.situation(), VerifierPolicy(max_stake_wei=10))) == []


SUBMITTER_CASES = [
    Case(
        "nobody claimed: timeout refunds",
        [task(submitter=ME, deadline=NOW - 5)],
        ["send timeout/1/Open/0 timeout(1,)"],
    ),
    Case(
        "solver silent: timeout slashes it",
        [task(status="Training", submitter=ME, solver=OTHER, deadline=NOW - 5)],
        ["send timeout/1/Training/0 timeout(1,)"],
    ),
    Case(
        "failed verdict: withdraws the bounty (settling it)",
        [
            task(
                status="ChallengeWindow",
                submitter=ME,
                solver=OTHER,
                verdict="Fail",
                deadline=NOW - 5,
            )
        ],
        ["send withdraw/1 withdraw([1],)"],
    ),
    Case(
        "passed verdict: leaves settling to those it pays",
        [
            task(
                status="ChallengeWindow",
                submitter=ME,
                solver=OTHER,
                verdict="Pass",
                deadline=NOW - 5,
            )
        ],
        [],
    ),
    Case(
        "refund owed: withdraws",
        [task(status="Settled", submitter=ME, payouts={"submitter": 1400})],
        ["send withdraw/1 withdraw([1],)"],
    ),
    Case("another submitter's task: ignored", [task(deadline=NOW - 5)], []),
    Case("deadline not passed: waits", [task(submitter=ME)], []),
]


@pytest.mark.parametrize("case", SUBMITTER_CASES, ids=lambda c: c.name)
def test_submitter(case: Case) -> None:
    assert show(submitter.decide(case.situation())) == case.expected


# Who triggers a timeout, by the state whose deadline passed and the role the agent holds
# (the table of agents.roles.deadlines, written out here): a party triggers it only if the
# timeout pays it or frees its stake, and never one that penalises it.
TIMEOUT_TABLE = {
    "Submitted": {"submitter": True, "profiler": True},
    "Open": {"submitter": True, "profiler": True},
    "Training": {"submitter": True, "profiler": True, "solver": False},
    "Committed": {"submitter": True, "profiler": True, "solver": True},
    "Verifying": {"submitter": True, "profiler": True, "solver": True, "verifier": False},
    # The solver has not revealed its seed: the timeout slashes it and returns the verifier's stake.
    "Verifying, no seed": {"submitter": True, "profiler": True, "solver": False, "verifier": True},
}
ROWS = [
    (status, role, sends)
    for status, roles in TIMEOUT_TABLE.items()
    for role, sends in roles.items()
]


@pytest.mark.parametrize(("row", "role", "sends"), ROWS)
def test_every_timeout_gainer_row(row: str, role: str, sends: bool) -> None:
    from agents.roles.deadlines import deadline_actions

    status = row.split(",")[0]
    parties: dict[str, Any] = dict.fromkeys(("solver", "verifier", "profiler"))
    parties["submitter"] = OTHER
    if status in ("Training", "Committed", "Verifying"):
        parties["solver"] = OTHER
    if status == "Verifying":
        parties["verifier"] = OTHER
        if row == "Verifying":
            parties["randomness"] = ROOT
    parties[role] = ME
    view = task(status=status, deadline=NOW - 5, verification_round=2, **parties)
    actions = deadline_actions(Case("", [view], []).situation())
    expected = [f"send timeout/1/{status}/2 timeout(1,)"] if sends else []
    assert show(actions) == expected
    # In time, nobody moves the task on.
    on_time = task(status=status, deadline=NOW + 5, **parties)
    assert deadline_actions(Case("", [on_time], []).situation()) == []


def test_no_role_no_timeout() -> None:
    from agents.roles.deadlines import deadline_actions

    view = task(status="Open", deadline=NOW - 5, submitter=OTHER)
    assert deadline_actions(Case("", [view], []).situation()) == []


def test_a_fractional_deadline_margin_is_kept() -> None:
    # chain.deadline_margin = 0.5: the deadline is acted on half a second after it passed.
    view = task(status="Open", submitter=ME, deadline=NOW)
    early = dataclasses.replace(Case("", [view], []).situation(), now=NOW + 0.4, margin=0.5)
    late = dataclasses.replace(early, now=NOW + 0.6)
    assert not early.expired(view) and late.expired(view)


def test_a_malformed_cycle_takes_each_craft_once_in_as_many_tasks() -> None:
    from agents.learning.malformed import CRAFTS
    from agents.roles.connection import check_adversary
    from agents.roles.solver import adversary

    played = [adversary("malformed:cycle", task_id) for task_id in range(1, len(CRAFTS) + 1)]
    names = [name for name in played if name is not None]
    assert len(names) == len(played)
    assert sorted(names) == sorted(f"malformed:{name}" for name in CRAFTS)
    assert adversary("fake-half", 3) == "fake-half" and adversary(None, 3) is None
    for mode in (None, "fake-half", "malformed:cycle", "malformed:step-nan"):
        check_adversary(mode)
    with pytest.raises(VeritrainError, match="no craft"):
        check_adversary("malformed:step-nothing")


def test_a_solver_policy_takes_only_known_adversary_modes() -> None:
    assert SolverPolicy(adversary="malformed:cycle").adversary == "malformed:cycle"
    for bad in ("fake-all", "malformed:", "Malformed:x", "malformed:a b"):
        with pytest.raises(ValueError, match="adversary"):
            SolverPolicy(adversary=bad)


def test_the_verifier_is_forced_by_the_claim_blocks_hash() -> None:
    """At p = 25 % the same secret and randomness are forced under one claim block's hash and
    not under another: the verifier errs exactly when the pool's rule says so, and waits while
    the hash is not known."""
    from agents.rules import forced_error

    quarter = dataclasses.replace(PARAMS, forced_error_ppm=250_000)
    secret, randomness = secret_of(1, 0), bytes(Digest.parse(ROOT))
    hashes = [keccak(b"claim block %d" % i) for i in range(64)]
    outcome = {h: forced_error(secret, randomness, h, 250_000) for h in hashes}
    forced = next(h for h in hashes if outcome[h])
    unforced = next(h for h in hashes if not outcome[h])
    honest = [
        "send report/1/0 reportVerification(1, ([0, 0, 0], [], [], "
        f"{chain_roots(ROOTS[:3])!r}, '{sealed(ROOTS[:3])}'))"
    ]
    wrong = [r.chain for r in forced_roots(parsed(ROOTS[:3]), secret)]
    erred = [
        f"send report/1/0 reportVerification(1, ([0, 0, 0], [], [], {wrong!r}, "
        f"'{sealed(ROOTS[:3])}'))"
    ]
    work = done("replay/1", distances=[0, 0, 0], trace_roots=ROOTS[:3])
    for claimed, expected in ((forced, erred), (unforced, honest), (None, [])):
        view = task(
            status="Verifying",
            solver=OTHER,
            verifier=ME,
            randomness=ROOT,
            segments=20,
            forceable=True,
            claim_block_hash=None if claimed is None else Digest(claimed),
        )
        case = Case("", [view], [], work=work, params=quarter)
        assert show(verifier.decide(case.situation(), VerifierPolicy())) == expected
