"""The one step against bad input and lying parties: forged proofs, missing leaves, queries
out of range, claims of the wrong shape or value, undefined ops, malformed records.

Anyone may call the adjudicator with anything; a forged proof must never make a wrong claim
correct or a right one wrong, and a caller's mistake must be a revert naming it.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from agents.arbiter.elements import MAX_TERMS
from agents.arbiter.witness import (
    ClaimWitness,
    LeafWitness,
    OneStepCall,
    TensorWitness,
    claim_of,
    one_step,
    stated_claim,
)
from agents.chain.errors import RevertedError
from agents.chain.onestep import OneStepClient
from agents.commitment import tensor_root
from agents.exact.trace import Op, OpRecord
from tests.arbiter.traces import every_op_trace, example_trace

F32 = np.float32


def find(op: Op, predicate: object = None) -> tuple[OpRecord, dict[bytes, np.ndarray]]:
    trace = every_op_trace()
    for record in trace.records:
        if record.op is op and (predicate is None or predicate(record, trace.tensors)):  # type: ignore[operator]
            return record, trace.tensors
    raise AssertionError(f"no {op.name} record")


def two_inputs(record: OpRecord, tensors: dict[bytes, np.ndarray]) -> bool:
    return len(record.inputs) == 2 and tensors[record.inputs[0]].shape == (4, 6)


@pytest.fixture
def mul_call() -> OneStepCall:
    record, tensors = find(Op.MUL, two_inputs)
    return one_step(record, tensors, 7)


def with_input_leaf(call: OneStepCall, leaf: LeafWitness, which: int = 0) -> OneStepCall:
    inputs = list(call.inputs)
    inputs[which] = dataclasses.replace(inputs[which], leaves=(leaf,))
    return dataclasses.replace(call, inputs=tuple(inputs))


def reverts(client: OneStepClient, call: OneStepCall, reason: str) -> None:
    with pytest.raises(RevertedError, match=reason):
        client.adjudicate(call)


def test_an_honest_call_passes(one_step_client: OneStepClient, mul_call: OneStepCall) -> None:
    assert one_step_client.adjudicate(mul_call).correct == (True, False)


def test_a_forged_input_value_is_refused(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    leaf = mul_call.inputs[0].leaves[0]
    forged = bytearray(leaf.values)
    forged[7 * 4] ^= 0x01
    reverts(
        one_step_client,
        with_input_leaf(mul_call, dataclasses.replace(leaf, values=bytes(forged))),
        "InvalidProof",
    )


def test_a_forged_path_or_index_is_refused(one_step_client: OneStepClient) -> None:
    trace = example_trace("mlp")
    record = next(
        r for r in trace.records if r.op is Op.MUL and trace.tensors[r.output].size >= 4096
    )
    call = one_step(record, trace.tensors, 3000)  # leaf 11 of 16
    leaf = call.inputs[0].leaves[0]
    assert leaf.path, "the test needs a tensor of several leaves"
    bent = (bytes(32), *leaf.path[1:])
    reverts(
        one_step_client, with_input_leaf(call, dataclasses.replace(leaf, path=bent)), "InvalidProof"
    )
    reverts(
        one_step_client,
        with_input_leaf(call, dataclasses.replace(leaf, path=leaf.path[:-1])),
        "InvalidProof",
    )
    reverts(
        one_step_client,
        with_input_leaf(call, dataclasses.replace(leaf, index=leaf.index ^ 1)),
        "InvalidProof",
    )


def test_a_header_that_is_not_the_roots_is_refused(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    inputs = list(mul_call.inputs)
    inputs[1] = dataclasses.replace(inputs[1], header=inputs[1].header[:-1] + b"\x07")
    reverts(one_step_client, dataclasses.replace(mul_call, inputs=tuple(inputs)), "InvalidProof")


def test_a_leaf_the_step_reads_must_be_given(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    inputs = list(mul_call.inputs)
    inputs[0] = dataclasses.replace(inputs[0], leaves=())
    reverts(one_step_client, dataclasses.replace(mul_call, inputs=tuple(inputs)), "MissingLeaf")


def test_one_proof_per_input(one_step_client: OneStepClient, mul_call: OneStepCall) -> None:
    reverts(
        one_step_client,
        dataclasses.replace(mul_call, inputs=mul_call.inputs[:1]),
        "WrongInputCount",
    )


def test_queries_out_of_range_are_refused(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    reverts(one_step_client, dataclasses.replace(mul_call, element=24), "ElementOutOfRange")
    reverts(one_step_client, dataclasses.replace(mul_call, term_to=1), "TermsOutOfRange")
    record, tensors = find(Op.SUM, lambda r, t: t[r.inputs[0]].shape == (3, 40))
    call = one_step(record, tensors, 0, term_from=0, term_to=MAX_TERMS)
    reverts(one_step_client, dataclasses.replace(call, term_to=MAX_TERMS + 1), "TermsOutOfRange")
    reverts(
        one_step_client,
        dataclasses.replace(call, term_from=MAX_TERMS + 1, term_to=MAX_TERMS),
        "TermsOutOfRange",
    )
    assert one_step_client.max_terms() == MAX_TERMS


def test_a_lying_party_with_a_proved_output_is_ruled_wrong_in_either_seat(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    record, tensors = find(Op.MUL, two_inputs)
    lie = np.array(tensors[record.output], copy=True)
    lie.reshape(-1)[7] = np.nextafter(lie.reshape(-1)[7], F32(np.inf))
    liar = claim_of(lie, 7)
    honest = claim_of(tensors[record.output], 7)
    ruling = one_step_client.adjudicate(dataclasses.replace(mul_call, claims=(liar, honest)))
    assert ruling.correct == (False, True) and ruling.proven == (True, True)
    both_wrong = one_step_client.adjudicate(dataclasses.replace(mul_call, claims=(liar, liar)))
    assert both_wrong.correct == (False, False)


def test_an_output_of_another_shape_is_wrong_whatever_it_holds(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    record, tensors = find(Op.MUL, two_inputs)
    same_values = np.ascontiguousarray(tensors[record.output]).reshape(6, 4)
    ruling = one_step_client.adjudicate(
        dataclasses.replace(mul_call, claims=(claim_of(same_values, 7), mul_call.claims[0]))
    )
    assert ruling.correct == (False, True) and ruling.proven == (True, True)


def test_a_claim_must_state_what_its_proof_holds(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    honest = mul_call.claims[0]
    inconsistent = dataclasses.replace(honest, value=honest.value ^ 1)
    reverts(
        one_step_client,
        dataclasses.replace(mul_call, claims=(inconsistent, honest)),
        "ClaimMismatch",
    )


def test_a_proof_of_another_root_is_refused(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    honest = mul_call.claims[0]
    elsewhere = dataclasses.replace(honest, output=bytes(32))
    reverts(
        one_step_client, dataclasses.replace(mul_call, claims=(elsewhere, honest)), "InvalidProof"
    )


def test_partial_results_are_judged_as_stated(one_step_client: OneStepClient) -> None:
    record, tensors = find(Op.SUM, lambda r, t: t[r.inputs[0]].shape == (3, 40))
    call = one_step(record, tensors, 1, term_from=MAX_TERMS, term_to=2 * MAX_TERMS)
    wrong = stated_claim(record.output, call.expected ^ 0x80000000)
    right = stated_claim(record.output, call.expected)
    ruling = one_step_client.adjudicate(dataclasses.replace(call, claims=(wrong, right)))
    assert ruling.correct == (False, True) and ruling.proven == (False, False)
    # A proof only opens the element itself, never a partial result.
    reverts(
        one_step_client,
        dataclasses.replace(call, claims=(claim_of(tensors[record.output], 1), right)),
        "TermsOutOfRange",
    )


def _index_select(index: np.ndarray) -> tuple[OpRecord, dict[bytes, np.ndarray]]:
    x = np.arange(12, dtype=F32).reshape(4, 3)
    out = np.zeros((index.size, 3), F32)
    tensors = {tensor_root(x): x, tensor_root(index): index, tensor_root(out): out}
    record = OpRecord(Op.INDEX_SELECT, (0,), (tensor_root(x), tensor_root(index)), tensor_root(out))
    return record, tensors


@pytest.mark.parametrize("bad", [1.5, -1.0, 4.0, np.nan, np.inf])
def test_an_index_that_is_not_a_whole_number_in_range_makes_the_element_undefined(
    one_step_client: OneStepClient, bad: float
) -> None:
    record, tensors = _index_select(np.array([0.0, bad], F32))
    call = one_step(record, tensors, 4, claims=[stated_claim(record.output, 0)] * 2)
    ruling = one_step_client.adjudicate(call)
    assert not ruling.defined and ruling.correct == (False, False)
    fine = one_step_client.adjudicate(one_step(record, tensors, 1))
    assert fine.defined and fine.value == np.float32(1.0).view(np.uint32)


def test_shapes_that_do_not_fit_the_op_make_it_undefined(one_step_client: OneStepClient) -> None:
    a = np.ones((2, 3), F32)
    b = np.ones((4,), F32)
    out = np.ones((2, 3), F32)
    tensors = {tensor_root(v): v for v in (a, b, out)}
    record = OpRecord(Op.ADD, (), (tensor_root(a), tensor_root(b)), tensor_root(out))
    call = one_step(record, tensors, 0, claims=[stated_claim(record.output, 0)] * 2)
    ruling = one_step_client.adjudicate(call)
    assert not ruling.defined and ruling.correct == (False, False)


def test_malformed_records_and_unknown_ops_are_refused(
    one_step_client: OneStepClient, mul_call: OneStepCall
) -> None:
    reverts(
        one_step_client,
        dataclasses.replace(mul_call, record=mul_call.record[:-1]),
        "MalformedRecord",
    )
    record, tensors = find(Op.MUL, lambda r, t: len(r.attributes) == 2)
    with_attribute = one_step(record, tensors, 0)
    bad_tag = bytearray(with_attribute.record)
    bad_tag[3] = ord("x")  # the first attribute's tag
    reverts(
        one_step_client,
        dataclasses.replace(with_attribute, record=bytes(bad_tag)),
        "MalformedRecord",
    )
    unknown = struct.pack(">H", 0x7777) + mul_call.record[2:]
    reverts(one_step_client, dataclasses.replace(mul_call, record=unknown), "UnknownOp")


def test_element_of_opens_one_element(one_step_client: OneStepClient) -> None:
    values = np.arange(600, dtype=F32).reshape(3, 200)
    claim: ClaimWitness = claim_of(values, 517)
    value, header = one_step_client.element_of(claim.output, 517, claim.proof)
    assert value == np.float32(517).view(np.uint32)
    assert header == claim.proof.header == struct.pack(">QIQQ", 600, 2, 3, 200)
    with pytest.raises(RevertedError, match="MissingLeaf"):
        one_step_client.element_of(claim.output, 5, claim.proof)
    with pytest.raises(RevertedError, match="ElementOutOfRange"):
        one_step_client.element_of(claim.output, 600, claim.proof)
    empty = TensorWitness(claim.proof.header, claim.proof.merkle_root)
    with pytest.raises(RevertedError, match="MissingLeaf"):
        one_step_client.element_of(claim.output, 517, empty)
    with pytest.raises(RevertedError, match="InvalidProof"):
        one_step_client.element_of(bytes(32), 517, claim.proof)
