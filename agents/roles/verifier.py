"""The verifier's decisions: profile tolerant tasks, claim verifications, replay, report,
reveal, collect.

Pure: ``decide(situation, policy)`` looks only at its arguments. A verifier claims with
the hash of its secret (``agents.roles.shares``), waits for the solver's seed, replays the
task's sample and the segments screening flags, and reports. When its report may be a
forced error (it claimed before the randomness existed) it checks whether it is forced:
if so it reports one trace root that is not its replay's, as the protocol requires;
either way it seals its true trace roots with its secret and, once the challenge window is
over, reveals them (which settles the task and pays every party, or puts its true roots
up for challenge when it was forced). A proof that a check rejected (it cannot be read,
parsed or checked: the fault record of ``agents.learning.faults``) is reported with
``reportFault``, on which no game is played: a solver that publishes a sampled start
state voids it and the verifier is credited its stake, so there is nothing to defend. It
defends its other reports in the games challenges open (played by the runtime,
``agents.roles.gameplay``), ends the ones it won with ``resolve`` and takes the pool's
credit (``agents.roles.challenges.challenge_duties``).
"""

from __future__ import annotations

from agents.commitment import Root
from agents.node.config import VerifierPolicy
from agents.roles import intents, reverts
from agents.roles.challenges import challenge_duties, passes, recheck_job, replay_segments
from agents.roles.deadlines import deadline_actions
from agents.roles.jobs import (
    OpeningJob,
    OpeningResult,
    ProfileJob,
    ProfileResult,
    ReplayResult,
)
from agents.roles.payouts import withdrawals
from agents.roles.record import RecordError, proof
from agents.roles.report import UNREPLAYABLE, fault_root, true_roots
from agents.roles.shares import commitment, forced_roots, seal
from agents.roles.situation import Action, Situation, SpecFacts, Start, send, trigger
from agents.roles.tasks import TaskView
from agents.rules import forced_error


def skip_reason(facts: SpecFacts | None, policy: VerifierPolicy, stake: int) -> str | None:
    """Why the policy turns down a profiling or verification job (``None``: take it)."""
    if facts is None:
        return "spec not examined yet"
    if facts.problem is not None:
        # An unusable spec cannot be trained either: nothing will be committed to verify.
        return f"unusable spec: {facts.problem}"
    if facts.ops > policy.max_ops:
        return f"{facts.ops} ops exceed max_ops {policy.max_ops}"
    if policy.max_stake_wei is not None and stake > policy.max_stake_wei:
        return f"stake {stake} wei above max_stake_wei {policy.max_stake_wei}"
    return None


def decide(situation: Situation, policy: VerifierPolicy) -> list[Action]:
    """The verifier's next actions (see the module docstring)."""
    actions: list[Action] = []
    params = situation.params
    for task_id, view in sorted(situation.tasks.items()):
        facts = situation.specs.get(task_id)
        if view.status == "Submitted" and policy.profile and situation.in_time(view):
            stake = params.profiler_stake(view.bounty)
            if skip_reason(facts, policy, stake) is None:
                actions.extend(_profile(situation, view, stake, policy))
        elif view.status == "Committed" and policy.verify and situation.in_time(view):
            if situation.is_me(view.solver) or situation.is_me(view.submitter):
                continue  # the pool refuses a solver or submitter verifying its own task
            stake = params.verifier_stake(view.bounty)
            key = intents.claim_verification(task_id, view.verification_round)
            if key in situation.journal or skip_reason(facts, policy, stake) is not None:
                continue
            secret_hash = commitment(situation.secret(task_id, view.verification_round))
            actions.append(
                send(
                    view,
                    key,
                    "claimVerification",
                    (task_id, secret_hash.chain),
                    "proof committed",
                    stake,
                )
            )
        elif view.status == "Verifying" and situation.is_me(view.verifier):
            actions.extend(_replay_or_report(situation, view, policy))
        elif (
            view.status == "ChallengeWindow"
            and situation.is_me(view.verifier)
            and situation.must_reveal(view)
        ):
            actions.extend(_reveal(situation, view))
    actions.extend(deadline_actions(situation))
    actions.extend(withdrawals(situation))
    actions.extend(challenge_duties(situation))
    return actions


def _profile(
    situation: Situation, view: TaskView, stake: int, policy: VerifierPolicy
) -> list[Action]:
    key = intents.profile(view.task_id)
    work = situation.work.get(key)
    if work is None or work.status == "interrupted":
        if view.spec_cid is None:
            return []
        job = ProfileJob(spec_cid=view.spec_cid, budget=policy.profile_budget)
        return [Start(key, view.task_id, job, "tolerant task submitted")]
    if work.status != "done" or situation.pending(key) or key in situation.journal:
        return []
    if not isinstance(work.result, ProfileResult):
        return []
    result = work.result
    return [
        send(
            view,
            key,
            "profile",
            (view.task_id, result.threshold, result.profile_cid),
            "profile measured",
            stake,
        )
    ]


def _replay_or_report(situation: Situation, view: TaskView, policy: VerifierPolicy) -> list[Action]:
    rnd = view.verification_round
    if view.randomness is None:
        return []  # the solver reveals its seed (or is slashed at the deadline)
    work_key = intents.replay(view.task_id)
    work = situation.work.get(work_key)
    if work is None or work.status == "interrupted":
        job = recheck_job(view)  # the replay any checker runs: the same inputs
        return [] if job is None else [Start(work_key, view.task_id, job, "randomness fixed")]
    if work.status != "done" or situation.expired(view):
        return []
    if not isinstance(work.result, ReplayResult):
        return []
    key = intents.report(view.task_id, rnd)
    if situation.pending(key):
        return []
    result = work.result
    if policy.adversary is not None and view.verification_round == 0:
        # A devnet adversary lies in the first verification only: once slashed, its later
        # reports of the task are honest (so a demo's re-verification ends).
        return _lie(situation, view, result, policy.adversary)
    secret = situation.secret(view.task_id, rnd)
    must_reveal = situation.must_reveal(view)
    if must_reveal and view.claim_block_hash is None:
        return []  # the draw records the claim block's hash with the randomness
    forced = must_reveal and forced_error(
        secret,
        bytes(view.randomness),
        bytes(view.claim_block_hash or b""),
        situation.params.forced_error_ppm,
    )
    faulted = fault_root(result)
    if faulted is not None:
        return [_report_fault(view, key, result, faulted, secret, forced)]
    true_roots = result.trace_roots
    reported = forced_roots(true_roots, secret) if forced else true_roots
    report = (
        list(result.distances),
        list(result.extra_segments),
        list(result.extra_distances),
        [r.chain for r in reported],
        seal(secret, true_roots).chain,
    )
    why = f"replayed: {result.verdict}"
    if forced:
        why += " (forced to err: one trace root is not the replay's)"
    return [send(view, key, "reportVerification", (view.task_id, report), why)]


def _report_fault(
    view: TaskView, key: str, result: ReplayResult, root: Root, secret: bytes, forced: bool
) -> Action:
    """A Fail that rests on the fault record a check wrote: ``reportFault`` with the record's
    commitment (no game can be played on it; docs/operators.md). A forced verifier reports
    another root and seals the true ones, as with any report."""
    sealed = true_roots(result)
    reported = forced_roots((root,), secret)[0] if forced else root
    why = f"proof rejected by a check ({'; '.join(result.reasons[:1]) or 'fault record'})"
    if forced:
        why += " (forced to err: the reported root is not the record's)"
    return send(
        view, key, "reportFault", (view.task_id, reported.chain, seal(secret, sealed).chain), why
    )


def _lie(situation: Situation, view: TaskView, result: ReplayResult, mode: str) -> list[Action]:
    """A devnet adversary's report: ``fail`` reports Fail on the first sampled segment behind a
    lying trace; ``pass`` reports Pass on every segment that fails, behind traces whose
    distance is +0. Each lie is traced first (an opening job), so its games are played by it."""
    assert view.spec_cid is not None and view.proof_cid is not None
    segments = replay_segments(view, result)
    distances = [*result.distances, *result.extra_distances]
    if len(segments) != len(distances) or len(segments) != len(result.trace_roots):
        return []  # a proof rejected before any replay: nothing to lie about
    positions = (
        [0]
        if mode == "fail"
        else [i for i, d in enumerate(distances) if not passes(d, view.threshold)]
    )
    roots = list(result.trace_roots)
    starts: list[Action] = []
    for i in positions:
        key = intents.opening(view.task_id, segments[i])
        work = situation.work.get(key)
        if work is None or work.status == "interrupted":
            job = OpeningJob(view.spec_cid, view.proof_cid, segments[i], lie=mode)
            starts.append(Start(key, view.task_id, job, f"devnet adversary: a lie ({mode})"))
        elif work.status == "done" and isinstance(work.result, OpeningResult):
            roots[i] = work.result.trace_root
            distances[i] = UNREPLAYABLE if mode == "fail" else 0
        elif work.status != "failed":
            return []
    if starts:
        return starts
    key = intents.report(view.task_id, view.verification_round)
    if situation.pending(key):
        return []
    count = len(result.distances)
    secret = situation.secret(view.task_id, view.verification_round)
    report = (
        distances[:count],
        list(result.extra_segments),
        distances[count:],
        [r.chain for r in roots],
        seal(secret, roots).chain,
    )
    why = f"devnet adversary: reports {'Fail' if mode == 'fail' else 'Pass'} whatever it replayed"
    return [send(view, key, "reportVerification", (view.task_id, report), why)]


def _reveal(situation: Situation, view: TaskView) -> list[Action]:
    """After the challenge window, within the reveal window: the secret and the true root."""
    if view.revealed or situation.now <= view.deadline + situation.margin:
        return []
    if any(c.open for c in view.challenges.values()):
        return []  # the reveal waits for the report's challenges to end
    if situation.now > view.deadline + situation.params.reveal_window:
        return []  # too late: the report settles without it (and the verifier forfeits)
    work = situation.work.get(intents.replay(view.task_id))
    if work is None or not isinstance(work.result, ReplayResult):
        return []
    # One transaction per try, judged as the seed's reveal is (agents.roles.solver): a passing
    # revert is followed by the next try, a lasting one ends them as the task stands.
    key = reverts.next_try(
        situation.journal,
        situation.failures,
        lambda attempt: intents.reveal(view.task_id, view.verification_round, attempt),
        trigger(view),
    )
    if key is None:
        return []
    if situation.pool is None:
        return []
    try:
        before, (claim, drawn, report) = proof(
            view, situation.pool, ["VerificationClaimed", "RandomnessDrawn", "VerificationReported"]
        )
    except RecordError:
        return []
    secret = situation.secret(view.task_id, view.verification_round)
    args = (
        view.task_id,
        "0x" + secret.hex(),
        [r.chain for r in true_roots(work.result)],
        "0x" + before.hex(),
        claim,
        drawn,
        report,
    )
    reason = "challenge window over: reveal"
    return [send(view, key, "revealVerification", args, reason, persistent=True)]
