"""Witness building offline: every tensor of a trace from its sources, the positions a step
reads, partial results of long reductions, and the Merkle proofs of the leaves it carries."""

from __future__ import annotations

import numpy as np
import pytest

from agents.arbiter.elements import REDUCTIONS, Element, partial, reads, terms
from agents.arbiter.execute import execute, segment_tensors
from agents.arbiter.witness import TensorTree, claim_of, one_step, record_at
from agents.commitment import tensor_root
from agents.commitment.tree import LeafProof
from agents.exact.errors import ExactError
from agents.exact.trace import Op, SegmentTrace, StepTrace
from tests.arbiter.traces import Traced, every_op_trace, example_trace, sources_of

NAMES = ("every-op", "mlp", "cnn", "transformer")


def traced(name: str) -> Traced:
    return every_op_trace() if name == "every-op" else example_trace(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_tensor_of_a_trace_is_recomputed_from_its_sources(name: str) -> None:
    trace = traced(name)
    sources = sources_of(trace)
    tensors = segment_tensors(trace.records, sources)
    for record in trace.records:
        if record.op is not Op.STATE:
            assert tensor_root(tensors[record.output]) == record.output
    assert set(tensors) >= {r.output for r in trace.records if r.op is not Op.STATE}
    assert len(sources) < len(tensors)


def test_a_wrong_source_is_named() -> None:
    trace = every_op_trace()
    sources = sources_of(trace)
    first = next(iter(sources))
    changed = dict(sources)
    del changed[first]
    with pytest.raises(ExactError, match="reads unknown tensors"):
        segment_tensors(trace.records, changed)
    record = trace.records[0]
    wrong = {**sources, record.inputs[0]: sources[record.inputs[0]] + np.float32(1)}
    with pytest.raises(ExactError, match=r"record 0 .* recomputes to another root"):
        segment_tensors(trace.records, wrong)


def test_records_are_counted_over_steps_then_the_distance() -> None:
    trace = example_trace("mlp")
    segment = SegmentTrace([StepTrace(trace.records[:5])], StepTrace(trace.records[5:7]))
    assert record_at(segment, 6) == trace.records[6]
    with pytest.raises(ExactError, match="no op 7"):
        record_at(segment, 7)


@pytest.mark.parametrize("name", NAMES)
def test_partial_results_end_at_the_element(name: str) -> None:
    """The fold over all terms is the CPU path's element, for every reduction record."""
    trace = traced(name)
    rng = np.random.default_rng(9)
    for record in trace.records:
        if record.op not in REDUCTIONS:
            continue
        inputs = [trace.tensors[r] for r in record.inputs]
        output = trace.tensors[record.output]
        shapes = tuple(x.shape for x in inputs)
        for element in {0, output.size - 1, int(rng.integers(output.size))}:
            item = Element(record, shapes, output.shape, element)
            want = int(np.ascontiguousarray(output).reshape(-1).view(np.uint32)[element])
            assert partial(item, inputs, terms(item)) == want, (record.op.name, element)


def test_a_step_reads_only_what_its_element_needs() -> None:
    trace = example_trace("mlp")
    record = next(r for r in trace.records if r.op is Op.MATMUL_NT)
    inputs = [trace.tensors[r] for r in record.inputs]
    output = trace.tensors[record.output]
    item = Element(record, tuple(x.shape for x in inputs), output.shape, output.size - 1)
    depth = inputs[0].shape[-1]
    a, b = reads(item, inputs, 0, 3)
    assert sorted(a) == [inputs[0].size - depth + t for t in range(3)]
    assert sorted(b) == [inputs[1].size - depth + t for t in range(3)]


def test_leaf_witnesses_verify_as_the_commitment_module_checks_them() -> None:
    values = np.random.default_rng(4).standard_normal((7, 300)).astype(np.float32)
    tree = TensorTree(values)
    witness = tree.witness([0, 256 * 5 + 3, values.size - 1])
    assert [leaf.index for leaf in witness.leaves] == [0, 5, 8]
    for leaf in witness.leaves:
        proof = LeafProof(values.shape, leaf.index, leaf.values, leaf.path)
        assert proof.verify(tensor_root(values))
    assert witness.root == tensor_root(values)
    claim = claim_of(values, 1503)
    assert claim.value == int(values.reshape(-1).view(np.uint32)[1503])
    assert claim.output == tensor_root(values)


def test_a_reduction_longer_than_the_bound_needs_a_term_range() -> None:
    trace = every_op_trace()
    record = next(
        r for r in trace.records if r.op is Op.SUM and trace.tensors[r.inputs[0]].shape == (3, 40)
    )
    with pytest.raises(ExactError, match="at most 8 at a time"):
        one_step(record, trace.tensors, 0)
    call = one_step(record, trace.tensors, 0, term_from=32, term_to=40)
    assert call.terms == 40 and call.agreed != 0
    assert execute(record, [trace.tensors[record.inputs[0]]]).shape == (3, 1)
