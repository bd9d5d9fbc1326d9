"""Spec admission: what an agent checks about a task's spec before it stakes anything on it.

``examine_spec`` turns a task's spec into ``SpecFacts`` (its size for pricing, or
the problem that makes it unusable); decisions never claim, profile or verify a
task whose facts name a problem. ``check_submittable`` is the submitter's side:
whether the pool would get a verifiable task from a spec. ``should_examine`` says
when a spec is looked at (again).
"""

from __future__ import annotations

import json

from agents.commitment import Root
from agents.errors import VeritrainError
from agents.exact.float32 import from_bits32, to_bits
from agents.learning.opcount import op_count
from agents.learning.spec import TaskSpec, spec_from_bytes
from agents.roles.situation import PoolParameters, ProfileReview, SpecFacts
from agents.roles.tasks import TaskView
from agents.store import ArtifactStore, Retrieval

# Seconds a solver waits for a task's dataset or parent model to be retrieved (from its node
# or the node's peers) before it declines the task for now (it looks again later).
ADMISSION_RETRIEVAL_S = 30.0

# The largest profile artifact a submitter reads (a profile is a few kilobytes of JSON).
PROFILE_MAX_BYTES = 1 << 20

# A spec that could not be used (not yet in the store, say) is examined again after this long.
SPEC_RETRY_S = 15.0
# The states in which a task's spec matters to some role's next decision.
EXAMINED_IN = ("Submitted", "Open", "Committed")


def should_examine(view: TaskView, known: SpecFacts | None, examined_at: float, now: float) -> bool:
    """Whether to examine the spec of ``view`` now: never examined, or found unusable at
    ``examined_at`` and ``SPEC_RETRY_S`` have passed since (monotonic seconds). A usable
    spec is not examined again; tasks past the states in ``EXAMINED_IN`` need no facts."""
    if view.status not in EXAMINED_IN or view.final:
        return False
    if known is None:
        return True
    return known.problem is not None and now - examined_at >= SPEC_RETRY_S


def examine_spec(store: ArtifactStore, view: TaskView, params: PoolParameters) -> SpecFacts:
    """What the spec of ``view`` asks for, or why it cannot be worked on.

    Checks that the spec artifact exists and hashes to the spec hash on chain,
    parses, matches the task's mode, can be trained here (its dataset and any
    parent model are available), samples at least the pool's minimum, and that the
    terms the task recorded on chain (S, s, the program root) are its spec's.
    """
    if view.spec_cid is None:
        return SpecFacts(problem="no spec CID")
    try:
        data = store.get_bytes(view.spec_cid)
    except VeritrainError as exc:
        return SpecFacts(problem=f"spec {view.spec_cid} unreadable: {exc}")
    try:
        spec = spec_from_bytes(data, f"spec {view.spec_cid}")
    except VeritrainError as exc:
        return SpecFacts(problem=str(exc))
    if view.spec_hash is None or spec.spec_hash() != bytes(view.spec_hash):
        return SpecFacts(problem="the spec does not hash to the spec hash on chain")
    exact = spec.verification.tolerance == "exact"
    if exact != (view.mode == "exact"):
        return SpecFacts(
            problem=f"the task is {view.mode} on chain, the spec {spec.verification.tolerance}"
        )
    # Training needs the dataset (or the recipe to rebuild it) and any parent model: a task
    # that cannot be trained must not be claimed, or the stake is lost at its deadline.
    # Available means retrievable, from the store or its node's peers, within a timeout
    # short enough that tasks naming content nobody serves cannot stall the agent long.
    dataset = spec.dataset
    retrieval = Retrieval(timeout=ADMISSION_RETRIEVAL_S)
    if dataset.source is None and not store.available(dataset.cid, retrieval):
        return SpecFacts(problem=f"dataset {dataset.cid} is not available and has no source")
    if spec.parent is not None and not store.available(spec.parent, retrieval):
        return SpecFacts(problem=f"parent model {spec.parent} is not available")
    problem = check_submittable(spec, params) or terms_problem(view, spec, store)
    if problem is not None:
        return SpecFacts(problem=problem)
    return SpecFacts(
        ops=op_count(spec).task,
        steps=spec.steps,
        segments=spec.segment_count,
        exact=exact,
        problem=None,
    )


def examine_profile(store: ArtifactStore, view: TaskView) -> ProfileReview:
    """A submitter's checks of the profile under review on its task ``view``: τ is not +0
    (which fails every honest tolerant proof, so no solver would claim), and the profile
    artifact the profiler published is retrievable, is a profile of this task's spec, and
    proposes the τ posted on chain. A profiler that does not stand behind a readable profile
    of the task is rejected (it gets its stake back, the submitter's rejection fee goes to the
    jackpot; the task waits for another)."""
    cid = view.profile_cid or ""
    if view.threshold == 0:
        return ProfileReview(cid, "τ = +0 fails every honest tolerant proof")
    if not cid:
        return ProfileReview(cid, "no profile CID")
    retrieval = Retrieval(timeout=ADMISSION_RETRIEVAL_S, max_bytes=PROFILE_MAX_BYTES)
    try:
        if not store.available(cid, retrieval):
            return ProfileReview(cid, f"profile {cid} is not available")
        document = json.loads(store.get_bytes(cid))
    except (VeritrainError, ValueError) as exc:
        return ProfileReview(cid, f"profile {cid} unreadable: {exc}")
    if not isinstance(document, dict):
        return ProfileReview(cid, f"profile {cid} is not a profile")
    if document.get("spec") != view.spec_cid:
        named = document.get("spec")
        return ProfileReview(cid, f"profile {cid} is of spec {named}, not {view.spec_cid}")
    tau = document.get("tau")
    if not isinstance(tau, int | float) or isinstance(tau, bool):
        return ProfileReview(cid, f"profile {cid} states no τ")
    if to_bits(float(tau)) != view.threshold:
        posted = from_bits32(view.threshold)
        return ProfileReview(cid, f"the profile proposes τ = {tau}, the profiler posted {posted}")
    return ProfileReview(cid)


# Program roots by spec hash: derived from the spec alone (a traced run), so kept.
_PROGRAM_ROOTS: dict[bytes, Root] = {}


def program_root(spec: TaskSpec, store: ArtifactStore) -> Root:
    """The program root a task of ``spec`` records at submission: the root of its program in
    the pinpoint game's format (``agents.dispute.programs.program_of``, docs/dispute.md), which
    every game of the task checks op records against; agents refuse a task whose recorded
    root is not this one. The spec's dataset must be in ``store`` (or buildable there)."""
    key = spec.spec_hash()
    if key not in _PROGRAM_ROOTS:
        from agents.dispute.programs import program_root_of
        from agents.learning.task import open_task

        _PROGRAM_ROOTS[key] = Root(program_root_of(open_task(spec, store)))
    return _PROGRAM_ROOTS[key]


def check_submittable(spec: TaskSpec, params: PoolParameters) -> str | None:
    """Why the pool would not get a verifiable task from ``spec`` (``None``: it would)."""
    if spec.verification.segments < params.min_sampled_segments:
        return (
            f"the spec samples {spec.verification.segments} random segments "
            f"(verification.segments), this pool at least {params.min_sampled_segments}"
        )
    return None


class TermsMismatchError(VeritrainError):
    """The task's terms on chain contradict its spec: the submitter's inconsistency.

    No verdict on a solver's proof may rest on it: a proof follows the spec, and the
    chain's S and s decide which segments a report covers; neither party can satisfy both.
    """


def sample_terms_problem(segments: int, sampled: int, spec: TaskSpec) -> str | None:
    """Why the segment count S and sample size s recorded on chain are not ``spec``'s
    (``None``: they are). The submitter records both at submission."""
    if (segments, sampled) != (spec.segment_count, spec.verification.segments):
        return (
            f"the task records S={segments}, s={sampled}; its spec has "
            f"S={spec.segment_count}, s={spec.verification.segments} (the submitter's "
            "inconsistency)"
        )
    return None


def terms_problem(view: TaskView, spec: TaskSpec, store: ArtifactStore) -> str | None:
    """Why the terms the task recorded on chain are not its spec's (``None``: they are).

    Solvers and verifiers decline such a task (``SpecFacts.problem``), so a submitter's
    inconsistency is never judged as a fault of the solver's proof."""
    problem = sample_terms_problem(view.segments, view.sampled_segments, spec)
    if problem is not None:
        return problem
    if view.program_root != program_root(spec, store):
        return "the task's program root is not its spec's"
    return None
