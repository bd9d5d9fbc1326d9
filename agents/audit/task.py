"""``veritrain audit task``: a task's whole story re-executed offline, claim by claim.

From the chain's history (``agents.audit.history``) and a store, the audit checks, in order:

1. **events**: the task record rebuilt from the logs equals the record the pool stores, so
   the logs are the whole story and untouched;
2. **spec**: the spec's CID gives a spec whose hash is the one submitted, in the task's mode;
3. **proof**: the manifest the solver committed reads, and its checkpoint root and segment
   count are the committed ones;
4. **randomness**: it is ``keccak256(abi.encode(seed, secretHash, taskId))`` of the seed the
   solver revealed (whose hash it committed with its proof) and the secret hash the verifier
   committed at its claim;
5. **report**: the auditor verifies the proof itself, exactly as a verifier does (the same
   sample from the same randomness, replays of the sampled segments with the exact binary32
   kernels, traced, and the segments screening flags), encodes its report and compares it
   with the verifier's distances, extra segments and trace roots (the true ones a forced
   verifier revealed), bit for bit;
6. **verdict**: the chain's verdict follows from the reported distances and τ;
7. **outcome and payouts**: the settlement follows from the verdict (or the timeout), pays
   what the settlement table says after the task's challenges (the marks its events leave in
   ``Task.flags``, which the stored flags must carry: ``agents.audit.money``), pays out
   exactly what the task held, and nobody withdrew more than it was owed;
8. **credits**: every stake a challenge moved was credited as the rules say (a defeated
   report's, a failed proof's, a returned deposit), every caught forced error's award was
   paid by the jackpot, and each credited account holds and withdrew exactly what the pool
   ever credited it.

Each check is a :class:`Finding`: what the chain says, what the auditor found, whether it
holds. The audit's answer is ``DIFFERS`` if any finding does not hold. An input the auditor
cannot use (its store lacks an artifact or holds it corrupt, the spec cannot be read)
raises ``AuditInputError`` instead: the auditor cannot judge what it cannot read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.audit.disputes import ChallengeAudit, GameSource, check_challenges, rounds_of
from agents.audit.errors import AuditInputError
from agents.audit.findings import Checked, Finding
from agents.audit.history import ChainHistory
from agents.audit.money import (
    check_credit_balances,
    check_credits,
    check_jackpot_awards,
    check_marks,
    marks_of,
)
from agents.audit.payouts import (
    PARTIES,
    Marks,
    expected_payouts,
    outcome_of_verdict,
    verdict_of,
)
from agents.audit.record import record_of
from agents.audit.store import WatchedStore
from agents.commitment import Root
from agents.errors import VeritrainError
from agents.exact.float32 import from_bits32
from agents.learning import faults
from agents.learning.proof import Manifest, artifact_limits, parse_manifest, read_artifact
from agents.learning.spec import TaskSpec, spec_from_bytes
from agents.learning.task import Task, open_task
from agents.learning.verifier import Fault, Replayer, Verdict, verify
from agents.roles.jobs import ReplayResult
from agents.roles.report import encode_report, rejected
from agents.roles.tasks import TaskView
from agents.rules import CLAIM_BLOCK_REACH, commitment, randomness
from agents.store import ArtifactStore

Progress = Callable[[int, int], None]


@dataclass
class SegmentAudit:
    """One sampled segment as the verifier reported it and as the auditor replayed it."""

    index: int
    sampled: bool
    reported: int | None  # the distance's bit pattern on chain, in report order
    replayed: int | None  # the auditor's, encoded as a report encodes it
    claimed_root: str
    replay_root: str
    trace_root: str | None
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "sampled": self.sampled,
            "reported": _float_json(self.reported),
            "reported_bits": _bits_json(self.reported),
            "replayed": _float_json(self.replayed),
            "replayed_bits": _bits_json(self.replayed),
            "claimed_root": self.claimed_root,
            "replay_root": self.replay_root,
            "trace_root": self.trace_root,
            "pass": self.passed,
        }


@dataclass
class TaskAudit(Checked):
    """The audit of one task."""

    history: ChainHistory
    findings: list[Finding] = field(default_factory=list)
    segments: list[SegmentAudit] = field(default_factory=list)
    spec: TaskSpec | None = None
    manifest: Manifest | None = None
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)
    challenges: list[ChallengeAudit] = field(default_factory=list)

    @property
    def view(self) -> TaskView:
        return self.history.view

    def to_json(self) -> dict[str, Any]:
        v = self.view
        return {
            "task": v.task_id,
            "pool": self.history.pool,
            "chain_id": self.history.chain_id,
            "holds": self.holds,
            "exit_code": self.exit_code,
            "status": v.status,
            "mode": v.mode,
            "outcome": v.outcome,
            "verdict": v.verdict,
            "parties": v.parties(),
            "artifacts": {
                "spec": v.spec_cid,
                "profile": v.profile_cid,
                "proof": v.proof_cid,
            },
            "threshold": _float_json(v.threshold) if v.profiler else 0.0,
            "sample": [s.index for s in self.segments if s.sampled],
            "segments": [s.to_json() for s in self.segments],
            "findings": [f.to_json() for f in self.findings],
            "differences": [f.to_json() for f in self.differences()],
            "payouts": v.payouts,
            "withdrawn": v.withdrawn,
            "notes": list(self.notes),
            "timeline": [
                {
                    "block": e.block,
                    "time": self.history.block_times.get(e.block),
                    "event": e.name,
                    "args": e.args,
                    "tx": e.tx_hash,
                }
                for e in v.timeline
            ],
        }


def audit_task(
    history: ChainHistory,
    store: ArtifactStore,
    replayer: Replayer,
    *,
    workers: int = 1,
    games: GameSource | None = None,
    cache: Path | None = None,
) -> TaskAudit:
    """Audit the task of ``history`` against the artifacts in ``store`` (see the module doc);
    ``workers`` sampled segments are replayed side by side; ``games`` exports the transcript
    of a game its challenges opened (without it, games are not replayed), ``cache`` keeps
    the games' segment replays."""
    audit = TaskAudit(history)
    watched = WatchedStore(store)
    _check_events(audit)
    spec, task = _check_spec(audit, watched)
    view = audit.view
    if view.proof_cid is not None and view.checkpoint_root is not None:
        manifest, rejection = _read_proof(audit, watched, spec)
        _check_randomness(audit)
        if view.verdict != "None" and rejection is not None:
            _compare_report(audit, rejected(faults.record(*rejection), [], _expected_count(audit)))
        elif view.verdict != "None" and manifest is not None and view.randomness is not None:
            _check_report(audit, watched, task, manifest, replayer, workers)
    else:
        audit.notes.append("no proof was committed: nothing to replay")
    if view.verdict != "None":
        audit.add(
            "verdict",
            "the verdict follows from the distances and τ",
            view.verdict,
            verdict_of([*view.distances, *view.extra_distances], view.threshold),
            view.verdict == verdict_of([*view.distances, *view.extra_distances], view.threshold),
        )
    if view.challenges or any(e.name == "DistanceDisproved" for e in history.events):
        sample = [s.index for s in audit.segments if s.sampled] if audit.segments else None
        audit.challenges = check_challenges(
            view, history.events, audit.add, watched, sample, games, pool=history.pool, cache=cache
        )
        _set_aside_defeated_report(audit)
    marks = _check_marks(audit)
    _check_settlement(audit, marks)
    _check_credits(audit)
    _raise_for_own_store(audit, watched)
    return audit


def audit_payouts(history: ChainHistory) -> TaskAudit:
    """The money part of the audit alone, from the chain's history (no store, no replay): the
    flags challenges left, the settlement, the credits and the jackpot's awards."""
    audit = TaskAudit(history)
    _check_settlement(audit, _check_marks(audit))
    _check_credits(audit)
    return audit


def _set_aside_defeated_report(audit: TaskAudit) -> None:
    """A report the chain voided (it lost a challenge), or one a failed proof overrode, is not
    the chain's word any more: where it differs from the auditor's, that is noted, not held
    against the chain (the challenges' games, audited above, are what decided it)."""
    rounds, _ = rounds_of(audit.history.events)
    if not rounds[-1].defeats and not audit.view.proof_failed:
        return
    kept = []
    for f in audit.findings:
        if f.area in ("report", "verdict") and not f.holds:
            audit.notes.append(f"the overridden report: {f.claim}: no ({f.chain} vs {f.audit})")
        else:
            kept.append(f)
    audit.findings = kept


def _check_events(audit: TaskAudit) -> None:
    h = audit.history
    rebuilt = record_of(h.raw_logs, h.folded_topics, h.task_id)
    audit.add(
        "events",
        "the task record rebuilt from the logs is the one the pool stores",
        "0x" + h.stored_record.hex(),
        "0x" + rebuilt.hex(),
        rebuilt == h.stored_record,
    )


def _check_spec(audit: TaskAudit, store: WatchedStore) -> tuple[TaskSpec, Task]:
    view = audit.view
    cid = view.spec_cid
    if cid is None:
        raise AuditInputError(f"task {view.task_id} has no TaskSubmitted event")
    try:
        spec = spec_from_bytes(store.get_bytes(cid), f"spec {cid}")
    except VeritrainError as exc:
        raise AuditInputError(f"the spec {cid} of task {view.task_id}: {exc}") from None
    audit.spec = spec
    audit.add(
        "spec",
        "the spec's hash is the one submitted",
        view.spec_hash,
        "0x" + spec.spec_hash().hex(),
        view.spec_hash is not None and bytes(view.spec_hash) == spec.spec_hash(),
    )
    mode = "exact" if spec.verification.tolerance == "exact" else "tolerant"
    audit.add("spec", "the task's mode is the spec's", view.mode, mode, view.mode == mode)
    try:
        task = open_task(spec, store, keep=False)
    except VeritrainError as exc:
        raise AuditInputError(f"the dataset of spec {cid}: {exc}") from None
    return spec, task


def _read_proof(
    audit: TaskAudit, store: WatchedStore, spec: TaskSpec
) -> tuple[Manifest | None, tuple[Fault, str] | None]:
    """The committed manifest, or the fault a verifier must reject the proof with before any
    replay (an unreadable manifest; a checkpoint root other than the committed one), as
    ``(fault, manifest CID)``."""
    view = audit.view
    cid = view.proof_cid
    assert cid is not None and view.checkpoint_root is not None
    limit = artifact_limits(spec).manifest
    what = f"proof {cid}"
    try:
        manifest = parse_manifest(read_artifact(store, cid, limit, what), what, limit=limit)
    except VeritrainError as exc:
        if store.corrupt or (store.missing and cid not in store.missing):
            _raise_for_own_store(audit, store, force=True)
        audit.notes.append(f"the committed proof cannot be read: {exc}")
        return None, (Fault("manifest"), cid)
    audit.manifest = manifest
    if Root.parse(manifest.checkpoint_root) != view.checkpoint_root:
        audit.notes.append("the proof's checkpoint root is not the one committed on chain")
        return manifest, (Fault("structure"), cid)
    if view.segments != len(manifest.segments):
        audit.notes.append(
            f"the solver committed {view.segments} segments, its manifest lists "
            f"{len(manifest.segments)}"
        )
    return manifest, None


def _check_randomness(audit: TaskAudit) -> None:
    view = audit.view
    drawn = [i for i, e in enumerate(view.timeline) if e.name == "RandomnessDrawn"]
    if not drawn or view.randomness is None or view.seed is None:
        audit.notes.append("the randomness was never drawn")
        return
    claims = [e for e in view.timeline[: drawn[-1]] if e.name == "VerificationClaimed"]
    if not claims:
        audit.add("randomness", "a verifier claimed before the draw", "no claim", "", False)
        return
    seed = bytes(view.seed)
    secret_hash = bytes.fromhex(str(claims[-1].args["secretHash"])[2:])
    audit.add(
        "randomness",
        "the revealed seed is the one the solver committed",
        view.seed_hash,
        "0x" + commitment(seed).hex(),
        view.seed_hash is not None and bytes(view.seed_hash) == commitment(seed),
    )
    expected = randomness(seed, secret_hash, audit.history.task_id)
    audit.add(
        "randomness",
        "the randomness is keccak256(seed, the verifier's secret hash, task)",
        view.randomness,
        "0x" + expected.hex(),
        bytes(view.randomness) == expected,
    )
    _check_claim_block(audit)


def _check_claim_block(audit: TaskAudit) -> None:
    """The claim the seed answered names the block that holds it, and the draw records that
    block's hash (which decides, with the secret, whether the verifier was forced to err)."""
    events = audit.history.events
    drawn = [i for i, e in enumerate(events) if e.name == "RandomnessDrawn"]
    claims = [e for e in events[: drawn[-1]] if e.name == "VerificationClaimed"] if drawn else []
    if not claims:
        return
    claim, draw = claims[-1], events[drawn[-1]]
    audit.add(
        "randomness",
        "the claim names the block that holds it",
        int(claim.args["claimBlock"]),
        claim.block_number,
        int(claim.args["claimBlock"]) == claim.block_number,
    )
    recorded = str(draw.args["claimBlockHash"]).lower()
    if draw.block_number - claim.block_number > CLAIM_BLOCK_REACH:
        # The chain no longer gave the claim block's hash: the draw records none, and the claim
        # could not be forced (its verifier still pays the forced-error tax).
        audit.add(
            "randomness",
            f"a seed revealed more than {CLAIM_BLOCK_REACH} blocks after the claim records no "
            "claim block hash (the claim is not forceable)",
            recorded,
            "0x" + "00" * 32,
            int(recorded, 16) == 0,
        )
        audit.notes.append(
            f"the seed was revealed {draw.block_number - claim.block_number} blocks after the "
            "claim, past the chain's reach of its block hash: the claim was not forceable"
        )
        return
    audit.add(
        "randomness",
        "the draw records the hash of the claim's block",
        recorded,
        claim.block_hash.lower(),
        recorded == claim.block_hash.lower(),
    )


def _expected_count(audit: TaskAudit) -> int:
    return min(audit.view.segments, audit.view.sampled_segments + 2)


def _check_report(
    audit: TaskAudit,
    store: WatchedStore,
    task: Task,
    manifest: Manifest,
    replayer: Replayer,
    workers: int,
) -> None:
    view = audit.view
    assert view.randomness is not None and view.proof_cid is not None
    exact = task.spec.verification.tolerance == "exact"
    tau = 0.0 if exact else from_bits32(view.threshold)
    verdict = verify(
        task,
        manifest,
        store,
        bytes(view.randomness),
        replayer,
        spec_cid=view.spec_cid or "",
        tau=tau,
        manifest_cid=view.proof_cid,
        trace=True,
        workers=workers,
    )
    audit.verdict = verdict
    expected = _expected_count(audit)
    report = encode_report(verdict, expected)
    reported = {}
    replayed = {}
    sample = [seg.index for seg in verdict.segments if seg.sampled]
    for position, index in enumerate(sample):
        if position < len(view.distances):
            reported[index] = view.distances[position]
        if position < len(report.distances):
            replayed[index] = report.distances[position]
    reported.update(zip(view.extra_segments, view.extra_distances, strict=False))
    replayed.update(zip(report.extra_segments, report.extra_distances, strict=False))
    for segment in verdict.segments:
        audit.segments.append(
            SegmentAudit(
                index=segment.index,
                sampled=segment.sampled,
                reported=reported.get(segment.index),
                replayed=replayed.get(segment.index),
                claimed_root=segment.claimed_root,
                replay_root=segment.replay_root,
                trace_root=segment.trace_root,
                passed=segment.passed,
            )
        )
    _compare_report(audit, report)
    for reason in verdict.reasons:
        audit.notes.append(f"auditor's replay: {reason}")


def _compare_report(audit: TaskAudit, report: ReplayResult) -> None:
    """The verifier's report against the one the auditor's own verification encodes."""
    view = audit.view
    audit.add(
        "report",
        f"the {len(report.distances)} reported distances are the auditor's",
        _bits_list(list(view.distances)),
        _bits_list(list(report.distances)),
        list(view.distances) == list(report.distances),
    )
    audit.add(
        "report",
        "the extra segments and their distances are the auditor's",
        f"{list(view.extra_segments)} {_bits_list(list(view.extra_distances))}",
        f"{list(report.extra_segments)} {_bits_list(list(report.extra_distances))}",
        (list(view.extra_segments), list(view.extra_distances))
        == (list(report.extra_segments), list(report.extra_distances)),
    )
    audit.add(
        "report",
        "the trace roots are the auditor's",
        [r.chain for r in view.trace_roots],
        [r.chain for r in report.trace_roots],
        list(view.trace_roots) == list(report.trace_roots),
    )
    own = "Pass" if report.verdict == "pass" else "Fail"
    audit.add("report", "the verdict is the auditor's", view.verdict, own, view.verdict == own)


def _check_marks(audit: TaskAudit) -> Marks:
    """The marks challenges (and the verifier's reveal) left in ``Task.flags``, derived from the
    events and held to the pool's stored flags."""
    h = audit.history
    if h.flags is None:
        return marks_of(h.events, int(h.params.get("forcedErrorPpm", 0)))
    return check_marks(h.events, h.params, h.flags, audit.add)


def _check_settlement(audit: TaskAudit, marks: Marks) -> None:
    view, h = audit.view, audit.history
    if not view.final:
        audit.notes.append(f"the task is not settled yet ({view.status})")
        return
    if view.proof_failed:
        pass  # a proof that lost a challenge fails the task, whatever the report said
    elif view.verdict != "None" and view.outcome in ("Passed", "Failed"):
        audit.add(
            "payouts",
            "the outcome follows from the verdict",
            view.outcome,
            outcome_of_verdict(view.verdict),
            view.outcome == outcome_of_verdict(view.verdict),
        )
    elif view.outcome in ("Passed", "Failed"):
        audit.add("payouts", "a verdict precedes the outcome", view.outcome, "no report", False)
    profiled = view.profiler is not None
    # Only the first claim comes before the randomness: its report alone may be forced and pays
    # the forced-error tax.
    taxed = sum(1 for e in h.events if e.name == "VerificationClaimed") == 1
    expected = expected_payouts(
        h.params, view.outcome, view.bounty, profiled, marks=marks, taxed=taxed
    )
    if expected is None:
        audit.add("payouts", "the outcome is one the pool settles", view.outcome, "unknown", False)
        return
    after = f" (after challenges: {marks.names()})" if marks != Marks() else ""
    for party in PARTIES:
        paid = view.payouts.get(party, 0)
        audit.add(
            "payouts",
            f"the {party}'s payout follows the settlement table{after}",
            paid,
            expected[party],
            paid == expected[party],
        )
    held = view.bounty + view.solver_stake + view.profiler_stake
    if view.outcome == "SeedWithheld" or (
        view.outcome in ("Passed", "Failed") and not marks.void and not marks.stake_taken
    ):
        held += view.verifier_stake  # a slashed or taken stake left the task before settlement
    if marks.slash_awarded:
        held -= sum(int(e.args["award"]) for e in h.events if e.name == "ProofFailed")
    total = sum(view.payouts.values())
    audit.add(
        "payouts",
        "settlement pays out exactly what the task held",
        total,
        held,
        total == held,
    )
    for account, amount in view.withdrawn.items():
        owed = sum(view.payouts.get(role, 0) for role in view.roles_of(account))
        audit.add(
            "payouts",
            f"{account} withdrew no more than it was owed",
            amount,
            owed,
            amount <= owed,
        )


def _check_credits(audit: TaskAudit) -> None:
    """What the task's challenges credited, and the jackpot's awards for its forced errors."""
    h = audit.history
    moved = (
        "ProfileRejected",
        "ReportDefeated",
        "ProofFailed",
        "ChallengeResolved",
        "ForcedErrorCaught",
        "ForcedErrorUncaught",
    )
    if not any(e.name in moved for e in h.events):
        return
    bounty = audit.view.bounty
    credited = check_credits(h.events, h.params, bounty, h.bond, audit.add)
    check_credit_balances(credited, h.credit_events, h.credits, h.bond, audit.add)
    check_jackpot_awards(
        h.events,
        h.awards,
        h.params,
        bounty,
        audit.add,
        h.award_reserves,
        reserves_from_events=h.reserves_from_events,
    )


def _raise_for_own_store(audit: TaskAudit, store: WatchedStore, *, force: bool = False) -> None:
    """Blocks the auditor's store holds corrupt make the audit unusable; blocks it lacks only
    when the audit then disagrees with the chain (the solver may have withheld them)."""
    if store.corrupt:
        cid, message = next(iter(store.corrupt.items()))
        raise AuditInputError(f"the store's copy of {cid} is corrupt ({message})")
    if store.missing and (force or not audit.holds):
        cid, message = next(iter(store.missing.items()))
        raise AuditInputError(
            f"the store lacks {cid} ({message}); the audit cannot tell the chain wrong without it"
        )


def _float_json(bits: int | None) -> float | str | None:
    if bits is None:
        return None
    value = from_bits32(bits)
    return value if math.isfinite(value) else str(value)


def _bits_json(bits: int | None) -> str | None:
    return None if bits is None else f"0x{bits:08x}"


def _bits_list(values: list[int]) -> str:
    return "[" + ", ".join(f"0x{b:08x}" for b in values) + "]"
