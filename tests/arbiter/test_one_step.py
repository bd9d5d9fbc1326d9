"""The one-step adjudicators against the CPU path, on op records of real traces.

For every op code of the op table: records from one training step (and the distance) of each
example model and from a trace that runs every op on edge values; per record its first, last
and some random elements; reductions longer than the one step's bound in chunks of at most
``MAX_TERMS`` terms from agreed partial results. The chain must compute the CPU path's bits,
rule the honest claim (the recorded output, proved against its root) correct and a claim one
ulp off wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from agents.arbiter.elements import MAX_TERMS, REDUCTIONS, Element, partial, terms
from agents.arbiter.execute import state_root_of
from agents.arbiter.witness import OneStepCall, one_step, record_prefix, state_step
from agents.chain.deployment import Deployment
from agents.chain.errors import RevertedError
from agents.chain.onestep import OneStepClient
from agents.exact.optable import OPS
from agents.exact.trace import Op, OpRecord
from tests.arbiter.traces import Traced, every_op_trace, example_trace

ROOT = Path(__file__).resolve().parents[2]
TRACES = ("every-op", "mlp", "cnn", "transformer")
RECORDS_PER_OP = 3  # sampled records per op code and trace


def traced(name: str) -> Traced:
    return every_op_trace() if name == "every-op" else example_trace(name)


def term_count(record: OpRecord, tensors: dict[bytes, np.ndarray], element: int) -> int:
    shapes = tuple(tuple(tensors[r].shape) for r in record.inputs)
    return terms(Element(record, shapes, tuple(tensors[record.output].shape), element))


def queries(
    record: OpRecord, tensors: dict[bytes, np.ndarray], element: int
) -> list[tuple[int, int]]:
    """Term ranges to check: the whole element, or its first, a middle and its last chunk."""
    if record.op not in REDUCTIONS:
        return [(0, 0)]
    count = term_count(record, tensors, element)
    if count <= MAX_TERMS:
        return [(0, count)]
    middle = (count // 2 // MAX_TERMS) * MAX_TERMS
    return [(0, MAX_TERMS), (middle, middle + MAX_TERMS), (count - MAX_TERMS, count)]


def check_ruling(client: OneStepClient, call: OneStepCall) -> None:
    ruling = client.adjudicate(call)
    element_claim = call.term_to == call.terms
    assert ruling.defined
    assert ruling.value == call.expected, f"{ruling.value:08x} != {call.expected:08x}"
    assert ruling.terms == call.terms
    assert ruling.correct == (True, False)
    assert ruling.proven == (element_claim, False)
    for claim, digest in zip(call.claims, ruling.records, strict=True):
        assert digest == hashlib.sha256(call.record + claim.output).digest()


def sample(traced: Traced, seed: int) -> dict[Op, list[int]]:
    rng = np.random.default_rng(seed)
    by_op: dict[Op, list[int]] = defaultdict(list)
    for j, record in enumerate(traced.records):
        by_op[record.op].append(j)
    return {op: sorted(rng.permutation(js)[:RECORDS_PER_OP].tolist()) for op, js in by_op.items()}


@pytest.mark.parametrize("name", TRACES)
def test_records_of_real_traces_are_adjudicated_as_the_cpu_path_computes(
    one_step_client: OneStepClient, name: str
) -> None:
    trace = traced(name)
    rng = np.random.default_rng(len(name))
    checked = 0
    for op, js in sample(trace, seed=len(name)).items():
        if op is Op.STATE:
            continue
        for j in js:
            record = trace.records[j]
            size = trace.tensors[record.output].size
            if size == 0:
                continue
            for element in sorted({0, size - 1, int(rng.integers(size))}):
                for term_from, term_to in queries(record, trace.tensors, element):
                    call = one_step(
                        record, trace.tensors, element, term_from=term_from, term_to=term_to
                    )
                    check_ruling(one_step_client, call)
                    checked += 1
    assert checked >= 20


def covered_ops() -> set[Op]:
    """Op codes whose records the differential test above adjudicates (STATE: below)."""
    ops: set[Op] = set()
    for name in TRACES:
        ops.update(op for op in sample(traced(name), seed=len(name)) if op is not Op.STATE)
    return ops | {Op.STATE}


def test_every_op_code_of_the_table_has_a_one_step_and_a_differential_test(
    one_step_client: OneStepClient, arbiter_deployment: Deployment
) -> None:
    families = {
        arbiter_deployment.contract(name).address
        for name in ("ElementwiseAdjudicator", "ReductionAdjudicator", "MovementAdjudicator")
    }
    solidity = dict(
        re.findall(
            r"uint16 internal constant (\w+) = (0x[0-9A-F]+);",
            (ROOT / "contracts" / "arbiter" / "OpCode.sol").read_text(),
        )
    )
    covered = covered_ops()
    for spec in OPS:
        assert int(solidity[spec.op.name], 16) == spec.code, spec.name
        assert one_step_client.adjudicator_of(spec.code) in families, spec.name
        assert spec.op in covered, f"{spec.name} has no differential test of its one step"
    assert len(solidity) == len(OPS)


@pytest.mark.parametrize("name", ["every-op", "mlp", "transformer"])
def test_state_records_are_judged_by_the_state_root_of_their_tensors(
    one_step_client: OneStepClient, name: str
) -> None:
    trace = traced(name)
    record = next(r for r in trace.records if r.op is Op.STATE)
    assert record.inputs == () and state_root_of(trace.state_roots) == record.output
    wrong = state_root_of(trace.state_roots[::-1])
    ruling = one_step_client.adjudicate_state(
        *state_step(record, trace.state_roots, [wrong, record.output])
    )
    assert ruling.defined and ruling.correct == (False, True)
    assert ruling.state_root == record.output
    assert ruling.records[1] == record.digest()
    with pytest.raises(RevertedError, match="NoElements"):
        one_step_client.adjudicate(
            dataclasses.replace(one_step(*some_call(trace)), record=record_prefix(record))
        )


def some_call(trace: Traced) -> tuple[OpRecord, dict[bytes, np.ndarray], int]:
    record = next(r for r in trace.records if r.op is Op.MUL)
    return record, trace.tensors, 0


def test_a_long_reduction_is_walked_chunk_by_chunk_from_agreed_partial_results(
    one_step_client: OneStepClient,
) -> None:
    """What the game does after bisecting: every chunk of a 64-term dot product, each from the
    partial result before it, gives the partial result after it; the last one the element."""
    trace = example_trace("mlp")
    record = next(
        r
        for r in trace.records
        if r.op is Op.MATMUL_NT and term_count(r, trace.tensors, 0) > 2 * MAX_TERMS
    )
    tensors = trace.tensors
    element = tensors[record.output].size - 1
    count = term_count(record, tensors, element)
    shapes = tuple(tuple(tensors[r].shape) for r in record.inputs)
    item = Element(record, shapes, tuple(tensors[record.output].shape), element)
    inputs = [tensors[r] for r in record.inputs]
    for start in range(0, count, MAX_TERMS):
        stop = min(count, start + MAX_TERMS)
        call = one_step(record, tensors, element, term_from=start, term_to=stop)
        assert call.agreed == (partial(item, inputs, start) if start else 0)
        defined, value, reported = one_step_client.compute(call)
        assert defined and reported == count
        assert value == partial(item, inputs, stop)
    assert partial(item, inputs, count) == int(
        tensors[record.output].reshape(-1).view(np.uint32)[element]
    )
