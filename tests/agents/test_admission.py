"""Spec admission: what examining a spec finds, and when it is examined again."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agents.commitment import Digest, Root
from agents.dispute.programs import program_of
from agents.learning.spec import load_spec
from agents.learning.task import open_task
from agents.roles.admission import SPEC_RETRY_S, examine_spec, program_root, should_examine
from agents.roles.situation import PoolParameters, SpecFacts
from agents.roles.tasks import TaskView
from agents.store import open_store

TINY = Path(__file__).resolve().parents[1] / "e2e" / "tiny.yaml"
PARAMS = PoolParameters(
    solver_stake_bps=20_000,
    verifier_stake_bps=10_000,
    profiler_stake_bps=5_000,
    min_sampled_segments=5,
)
SPEC = load_spec(TINY)


@functools.cache
def _program_root() -> Root:
    """The tiny spec's program root (its dataset is built from its source in a scratch store)."""
    with tempfile.TemporaryDirectory() as scratch:
        return program_root(SPEC, open_store(Path(scratch) / "store"))


def _view(spec_cid: str, spec_hash: Digest, mode: str = "tolerant", **terms: Any) -> TaskView:
    fields: dict[str, Any] = {
        "segments": SPEC.segment_count,
        "sampled_segments": SPEC.verification.segments,
        "program_root": _program_root(),
    }
    fields.update(terms)
    return TaskView(
        task_id=1, status="Open", mode=mode, spec_cid=spec_cid, spec_hash=spec_hash, **fields
    )


def test_examine_spec(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    spec = SPEC
    cid = store.put_bytes(spec.canonical_bytes())
    good_hash = Digest(spec.spec_hash())
    facts = examine_spec(store, _view(cid, good_hash), PARAMS)
    assert facts.problem is None and facts.segments == 10 and facts.steps == 200
    assert facts.ops > 0 and not facts.exact
    problems = {
        "hash": examine_spec(store, _view(cid, Digest(bytes(32))), PARAMS).problem,
        "mode": examine_spec(store, _view(cid, good_hash, "exact"), PARAMS).problem,
        "minimum": examine_spec(
            store, _view(cid, good_hash), PoolParameters(1, 1, 1, min_sampled_segments=6)
        ).problem,
        "terms": examine_spec(store, _view(cid, good_hash, segments=11), PARAMS).problem,
        "sampled": examine_spec(store, _view(cid, good_hash, sampled_segments=4), PARAMS).problem,
        "program": examine_spec(
            store, _view(cid, good_hash, program_root=program_root(load_spec(TINY), store)), PARAMS
        ).problem,
        "other program": examine_spec(
            store, _view(cid, good_hash, program_root=good_hash), PARAMS
        ).problem,
        "missing": examine_spec(
            store, _view("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", good_hash), PARAMS
        ).problem,
        "no cid": examine_spec(store, _view("not a cid", good_hash), PARAMS).problem,
        "garbage": examine_spec(store, _view(store.put_bytes(b"\xff"), good_hash), PARAMS).problem,
    }
    assert "does not hash to the spec hash" in str(problems["hash"])
    assert "exact on chain" in str(problems["mode"])
    assert "this pool at least 6" in str(problems["minimum"])
    assert "records S=11, s=5" in str(problems["terms"])
    assert "records S=10, s=4" in str(problems["sampled"])
    assert problems["program"] is None  # the same spec: the same root
    # The root is the game's: the program every game of the task checks records against.
    assert bytes(_program_root()) == program_of(open_task(SPEC, store)).root()
    assert "program root" in str(problems["other program"])
    assert "unreadable" in str(problems["missing"])
    assert "unreadable" in str(problems["no cid"])
    assert problems["garbage"] is not None


BAD = SpecFacts(problem="not in the store yet")
GOOD = SpecFacts(ops=1, steps=1, segments=1)


@pytest.mark.parametrize(
    ("status", "known", "age", "examine"),
    [
        ("Open", None, 0.0, True),
        ("Submitted", None, 0.0, True),
        ("Committed", None, 0.0, True),
        ("Training", None, 0.0, False),  # a claimed task's spec was examined before claiming
        ("Verifying", None, 0.0, False),
        ("Settled", None, 0.0, False),
        ("Open", GOOD, 10**6, False),  # a usable spec is never examined again
        ("Open", BAD, SPEC_RETRY_S - 0.1, False),
        ("Open", BAD, SPEC_RETRY_S, True),
        ("Committed", BAD, 3 * SPEC_RETRY_S, True),
    ],
)
def test_when_a_spec_is_examined(
    status: str, known: SpecFacts | None, age: float, examine: bool
) -> None:
    view = TaskView(task_id=1, status=status)
    assert should_examine(view, known, 100.0, 100.0 + age) is examine


# (S on chain, s on chain) against the tiny spec's S=10, s=5: whether the task is refused.
TERMS_TABLE = [
    ((10, 5), False),
    ((11, 5), True),
    ((9, 5), True),
    ((1, 5), True),
    ((10, 6), True),
    ((10, 4), True),
    ((10, 9), True),
    ((20, 10), True),
    ((5, 10), True),
]


@pytest.mark.parametrize(("terms", "refused"), TERMS_TABLE, ids=[str(t) for t, _ in TERMS_TABLE])
def test_a_submitters_inconsistent_terms_are_refused_by_solvers_and_verifiers(
    tmp_path: Path, terms: tuple[int, int], refused: bool
) -> None:
    from agents.node.config import SolverPolicy, VerifierPolicy
    from agents.roles import solver, verifier
    from agents.roles.admission import sample_terms_problem

    segments, sampled = terms
    assert (sample_terms_problem(segments, sampled, SPEC) is not None) == refused
    store = open_store(tmp_path / "store")
    cid = store.put_bytes(SPEC.canonical_bytes())
    view = _view(cid, Digest(SPEC.spec_hash()), segments=segments, sampled_segments=sampled)
    facts = examine_spec(store, view, PARAMS)
    assert (facts.problem is not None) == refused
    solver_says = solver.skip_reason(view, facts, SolverPolicy(), 0)
    verifier_says = verifier.skip_reason(facts, VerifierPolicy(), 0)
    if refused:
        assert facts.problem is not None and "the submitter's inconsistency" in facts.problem
        assert f"S={segments}, s={sampled}" in facts.problem
        assert solver_says is not None and "the submitter's inconsistency" in solver_says
        assert verifier_says is not None and "the submitter's inconsistency" in verifier_says
    else:
        assert verifier_says is None
