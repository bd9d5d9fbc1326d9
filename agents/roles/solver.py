"""The solver's decisions: which open tasks to claim, when to train, commit and collect.

Pure: ``decide(situation, policy)`` looks only at its arguments. The runtime
trains (``Start("train")``) and sends (``Send``) what it returns.

When a verifier reports Fail on its proof, the solver replays what the verifier
replayed (``Start("recheck")``) and, if that replay passes, challenges the report on
the first segment where the two disagree (``agents.roles.challenges``). When anyone
challenges its proof it answers with its own trace of the segment, if that passes. The
games either opens are played by the runtime (``agents.roles.gameplay``).

A tolerant task is verified against the τ its profiler posted, which the solver
sees before it claims. Unless ``max_rejection_risk`` is unset, the solver first
measures its own drift on the spec (``Start("drift")``: the profile's window with
its own training as the only variant) and claims only when the chance that a
verification rejects its honest proof at that τ, under the drift model of
docs/proof.md, is at most ``max_rejection_risk``; a τ below a drift it measured
is never taken. It claims once the task's submitter has accepted the profile, or once
the submitter's review window has passed without a rejection (claims revert before).
"""

from __future__ import annotations

from agents.exact.float32 import from_bits32
from agents.node.config import SolverPolicy
from agents.roles import intents, reverts
from agents.roles.challenges import (
    challenge,
    challenge_duties,
    challenged,
    disagreements,
    first_challenge,
    publication,
    recheck_job,
    solver_disproves,
)
from agents.roles.deadlines import deadline_actions
from agents.roles.jobs import DriftJob, DriftResult, ReplayResult, TrainJob, TrainResult
from agents.roles.payouts import withdrawals
from agents.roles.record import RecordError, proof
from agents.roles.shares import commitment
from agents.roles.situation import (
    Action,
    Situation,
    SpecFacts,
    Start,
    WorkState,
    send,
    trigger,
)
from agents.roles.tasks import TaskView


def skip_reason(
    view: TaskView, facts: SpecFacts | None, policy: SolverPolicy, stake: int
) -> str | None:
    """Why the policy turns down an open task (``None``: take it)."""
    if facts is None:
        return "spec not examined yet"
    if facts.problem is not None:
        return f"unusable spec: {facts.problem}"
    if facts.ops > policy.max_ops:
        return f"{facts.ops} ops exceed max_ops {policy.max_ops}"
    # bounty / (ops / 1e9) >= min_bounty_per_gop, in integers.
    if view.bounty * 10**9 < policy.min_bounty_per_gop * facts.ops:
        return f"bounty {view.bounty} wei below {policy.min_bounty_per_gop} wei per 10^9 ops"
    if policy.max_stake_wei is not None and stake > policy.max_stake_wei:
        return f"stake {stake} wei above max_stake_wei {policy.max_stake_wei}"
    if policy.throughput_gops is not None:
        needed = 1.25 * facts.ops / (policy.throughput_gops * 1e9)
        if view.training_window < needed:
            return f"training window {view.training_window} s, this solver needs {needed:.0f} s"
    return None


def drift_reason(
    view: TaskView, work: WorkState, facts: SpecFacts, policy: SolverPolicy, sampled: int
) -> str | None:
    """Why this solver's measured drift turns down a tolerant task (``None``: take it)."""
    if work.status != "done" or not isinstance(work.result, DriftResult):
        return f"own drift {work.status}"
    if policy.max_rejection_risk is None:
        return None
    tau = from_bits32(view.threshold)
    risk = work.result.rejection_risk(tau, sampled)
    if risk > policy.max_rejection_risk:
        return (
            f"τ {tau:.3g} risks rejecting an honest proof with probability {risk:.2g} "
            f"(this solver's drift, {facts.segments} segments, {sampled} verified)"
        )
    return None


def decide(situation: Situation, policy: SolverPolicy) -> list[Action]:
    """The solver's next actions (see the module docstring)."""
    actions: list[Action] = []
    # Tasks given up (their training failed for good) no longer hold capacity.
    training = sum(
        1
        for view in situation.tasks.values()
        if view.status == "Training"
        and situation.is_me(view.solver)
        and getattr(situation.work.get(intents.train(view.task_id)), "status", None) != "failed"
    )
    # Claims sent but not yet visible in the events count against capacity too.
    training += sum(
        1
        for view in situation.tasks.values()
        if view.status == "Open" and situation.pending(intents.claim(view.task_id))
    )
    for task_id, view in sorted(situation.tasks.items()):
        if view.status == "Open":
            if training >= policy.max_parallel or not situation.in_time(view):
                continue
            key = intents.claim(task_id)
            if key in situation.journal:
                continue  # claimed (in flight, mined or failed): never decided twice
            stake = situation.params.solver_stake(view.bounty)
            facts = situation.specs.get(task_id)
            if facts is None or skip_reason(view, facts, policy, stake) is not None:
                continue
            if view.mode == "tolerant" and policy.max_rejection_risk is not None:
                drift = situation.work.get(intents.drift(task_id))
                if drift is None or drift.status == "interrupted":
                    actions.extend(_measure_drift(view, policy))
                    continue
                sampled = situation.params.sample_count(view.segments, view.sampled_segments)
                if drift_reason(view, drift, facts, policy, sampled) is not None:
                    continue
            if situation.under_review(view):
                continue  # its submitter may still reject the profile: claims wait
            actions.append(send(view, key, "claim", (task_id,), "open task fits the policy", stake))
            training += 1
        elif view.status == "Training" and situation.is_me(view.solver):
            actions.extend(_train_or_commit(situation, view, policy))
        elif view.status == "Verifying" and situation.is_me(view.solver):
            actions.extend(_reveal_seed(situation, view))
        elif view.status == "ChallengeWindow" and situation.is_me(view.solver):
            actions.extend(_contest(situation, view, policy))
    actions.extend(deadline_actions(situation))
    actions.extend(withdrawals(situation))
    actions.extend(challenge_duties(situation))
    return actions


def _measure_drift(view: TaskView, policy: SolverPolicy) -> list[Action]:
    if view.spec_cid is None:
        return []
    return [
        Start(
            key=intents.drift(view.task_id),
            task_id=view.task_id,
            inputs=DriftJob(spec_cid=view.spec_cid, budget=policy.drift_budget),
            reason="tolerant task: measuring this solver's drift against its τ",
        )
    ]


def adversary(mode: str | None, task_id: int) -> str | None:
    """The adversary a devnet solver plays on ``task_id``: ``malformed:cycle`` takes the
    crafts of ``agents.learning.malformed`` in name order, one task after another."""
    if mode != "malformed:cycle":
        return mode
    from agents.learning.malformed import CRAFTS

    names = sorted(CRAFTS)
    return f"malformed:{names[task_id % len(names)]}"


def _train_or_commit(situation: Situation, view: TaskView, policy: SolverPolicy) -> list[Action]:
    if situation.expired(view):
        return []  # too late to commit: training now would be wasted
    key = intents.train(view.task_id)
    work = situation.work.get(key)
    if work is None or work.status == "interrupted":
        if view.spec_cid is None:
            return []
        return [
            Start(
                key=key,
                task_id=view.task_id,
                inputs=TrainJob(
                    spec_cid=view.spec_cid, adversary=adversary(policy.adversary, view.task_id)
                ),
                reason="claimed; training" if work is None else "resuming interrupted training",
            )
        ]
    if work.status != "done" or not isinstance(work.result, TrainResult):
        return []
    commit = intents.commit(view.task_id)
    if situation.pending(commit):
        return []
    result = work.result
    seed_hash = commitment(situation.seed(view.task_id))
    return [
        send(
            view,
            commit,
            "commit",
            (view.task_id, result.proof_cid, result.checkpoint_root.chain, seed_hash.chain),
            "proof written",
        )
    ]


def _contest(situation: Situation, view: TaskView, policy: SolverPolicy) -> list[Action]:
    """A Fail reported on this solver's proof: replay what the verifier replayed and challenge
    the report where the replay disproves it (a devnet adversary knows better than to). A
    fault report (the verifier could not read the proof) is answered by publishing a sampled
    start state when the re-check reads and passes the proof; a devnet adversary with
    ``adversary_publishes`` publishes whatever its proof is."""
    if view.verdict != "Fail":
        return []
    if policy.adversary is not None:
        if view.fault_report and policy.adversary_publishes:
            return publication(situation, view, "fault report on a malformed proof")
        return []
    key = intents.recheck(view.task_id, view.verification_round)
    work = situation.work.get(key)
    if work is None or work.status == "interrupted":
        job = recheck_job(view)
        return [] if job is None else [Start(key, view.task_id, job, "Fail reported: re-check")]
    if work.status != "done" or not isinstance(work.result, ReplayResult):
        return []
    if not situation.in_time(view) or challenged(situation, view):
        return []
    if view.fault_report:
        if work.result.verdict != "pass":
            return []  # this proof fails its own re-check too: nothing to show
        return publication(situation, view, "fault report on a proof the re-check reads")
    found = disagreements(view, work.result)
    pick = first_challenge([d for d in found if d.kind in ("report", "distance")])
    if pick is None or not solver_disproves(view, work.result, found):
        return []
    return challenge(situation, view, pick, "the replay of this proof passes")


def _reveal_seed(situation: Situation, view: TaskView) -> list[Action]:
    """A verifier has claimed: reveal the seed committed with the proof, which fixes the
    randomness (withholding it would forfeit the stake). However late: past 256 blocks after the
    claim the pool still takes it (the claim is then not forceable).

    Each try is one transaction (``reveal-seed/<task>/<try>``), chosen by
    ``reverts.next_try``: the next once the one before reverted on chain for a passing reason
    (mined in the claim's own block, ``ClaimBlockOutOfReach``; a record read before a reorg;
    out of gas), at most ``reverts.MAX_TRIES``; the same again, after the executor's backoff
    (``persistent``), when it was rejected at gas estimation, however often, until the view
    ends it here (the randomness drawn, the seed window over). A lasting revert mined on chain
    (the seed is not the committed one, the task moved on, the window closed) ends the tries
    while the task's events stay as they were when it was judged, and the runtime logs it
    once. Only the journal and the view decide, so a restarted agent resumes the same try and
    never has two in flight."""
    if view.randomness is not None or situation.expired(view) or situation.pool is None:
        return []
    key = reverts.next_try(
        situation.journal,
        situation.failures,
        lambda attempt: intents.reveal_seed(view.task_id, attempt),
        trigger(view),
    )
    if key is None:
        return []
    try:
        before, (commit, claim) = proof(
            view, situation.pool, ["ProofCommitted", "VerificationClaimed"]
        )
    except RecordError:
        return []
    seed = situation.seed(view.task_id)
    args = (view.task_id, "0x" + seed.hex(), "0x" + before.hex(), commit, claim)
    reason = "a verifier claimed: reveal the seed"
    return [send(view, key, "revealSeed", args, reason, persistent=True)]
