"""The verifier's decisions: profile tolerant tasks, claim verifications, replay, report, collect.

Pure: ``decide(situation, policy)`` looks only at its arguments. Forced errors
are not acted on (that comes with arbitration); deployments meant for these
agents set the forced-error probability to 0, and a verifier never fakes.
"""

from __future__ import annotations

from agents.node.config import VerifierPolicy
from agents.roles import intents
from agents.roles.deadlines import deadline_actions
from agents.roles.jobs import ProfileJob, ProfileResult, ReplayJob, ReplayResult
from agents.roles.payouts import withdrawals
from agents.roles.situation import Action, Situation, SpecFacts, Start, send
from agents.roles.tasks import TaskView


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
            if situation.is_me(view.solver):
                continue  # the pool refuses a solver verifying itself
            stake = params.verifier_stake(view.bounty)
            key = intents.claim_verification(task_id, view.verification_round)
            if key in situation.journal or skip_reason(facts, policy, stake) is not None:
                continue
            secret_hash = situation.secret_hash(task_id, view.verification_round)
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
            actions.extend(_replay_or_report(situation, view))
    actions.extend(deadline_actions(situation))
    actions.extend(withdrawals(situation))
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


def _replay_or_report(situation: Situation, view: TaskView) -> list[Action]:
    rnd = view.verification_round
    if view.randomness is None:
        key = intents.draw(view.task_id, rnd)
        if situation.head > view.randomness_block and not situation.pending(key):
            return [send(view, key, "drawRandomness", (view.task_id,), "randomness block sealed")]
        return []
    work_key = intents.replay(view.task_id)
    work = situation.work.get(work_key)
    if work is None or work.status == "interrupted":
        if view.spec_cid is None or view.proof_cid is None or view.checkpoint_root is None:
            return []
        job = ReplayJob(
            spec_cid=view.spec_cid,
            proof_cid=view.proof_cid,
            checkpoint_root=view.checkpoint_root,
            randomness=view.randomness,
            samples=situation.params.sample_count(view.segments),
            threshold=view.threshold,
        )
        return [Start(work_key, view.task_id, job, "verification claimed")]
    if work.status != "done" or situation.expired(view):
        return []
    if not isinstance(work.result, ReplayResult):
        return []
    key = intents.report(view.task_id, rnd)
    if situation.pending(key):
        return []
    result = work.result
    return [
        send(
            view,
            key,
            "reportVerification",
            (view.task_id, list(result.distances), result.trace_roots_root.chain),
            f"replayed: {result.verdict}",
        )
    ]
