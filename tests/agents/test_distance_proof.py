"""The one-shot proof of what a trace ends with, on a real segment: every part checks against
the trace root, the program and the checkpoint tree as the pool's DistanceProof says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from agents.commitment import state_root
from agents.commitment.tree import verify_merkle_proof
from agents.dispute.replay import ReplayProvider
from agents.dispute.tree import MerkleLevels
from agents.roles.gameplay import distance_proof
from tests.dispute.segments import checkpoints, program, small_task

SEGMENT = 1
STATE_RECORD = bytes.fromhex("0040000000")


def _b(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _replay(cache: Path, claimed_index: int) -> ReplayProvider:
    states = checkpoints("mlp")
    return ReplayProvider(
        small_task("mlp"),
        program("mlp"),
        SEGMENT,
        states[SEGMENT],
        states[claimed_index],
        cache=cache,
    )


def _common(provider: ReplayProvider, proof: tuple[object, ...], step: int) -> bytes:
    """Checks the program, the node and the record; returns the record's bytes."""
    header, node, node_proof, record, record_proof = proof[:5]
    assert isinstance(header, str) and isinstance(node, str) and isinstance(record, str)
    assert isinstance(node_proof, list) and isinstance(record_proof, list)
    assert hashlib.sha256(_b(header)).digest() == provider.program.root()
    siblings = [_b(p) for p in node_proof]
    assert verify_merkle_proof(_b(node), step, siblings, provider.trace_root)
    last = len(provider.records(step)) - 1
    leaf = hashlib.sha256(_b(record)).digest()
    assert verify_merkle_proof(leaf, last, [_b(p) for p in record_proof], _b(node))
    return _b(record)


def test_exact_the_last_state_record_and_the_claimed_checkpoint(tmp_path: Path) -> None:
    roots = [state_root(s) for s in checkpoints("mlp")]
    for claimed_index in (SEGMENT + 1, SEGMENT + 2):  # the honest end, and another state
        provider = _replay(tmp_path, claimed_index)
        proof = distance_proof(provider, roots, SEGMENT, exact=True)
        record = _common(provider, proof, provider.step_count - 1)
        assert record[:5] == STATE_RECORD
        # The trace's end state is the honest replay's, whatever the claimed state is.
        assert record[5:] == roots[SEGMENT + 1]
        claimed, claimed_proof = proof[7], proof[8]
        assert isinstance(claimed, str) and isinstance(claimed_proof, list)
        tree = MerkleLevels(roots)
        assert _b(claimed) == roots[SEGMENT + 1]
        assert verify_merkle_proof(
            _b(claimed), SEGMENT + 1, [_b(p) for p in claimed_proof], tree.root
        )


def test_tolerant_the_distance_computations_last_value(tmp_path: Path) -> None:
    roots = [state_root(s) for s in checkpoints("mlp")]
    seen = []
    for claimed_index in (SEGMENT + 1, SEGMENT + 2):
        provider = _replay(tmp_path, claimed_index)
        proof = distance_proof(provider, roots, SEGMENT, exact=False)
        _common(provider, proof, provider.step_count)
        header, leaf = proof[5], proof[6]
        assert isinstance(header, str) and isinstance(leaf, str)
        assert len(_b(leaf)) == 1024
        last = len(provider.records(provider.step_count)) - 1
        value = provider.tensors(provider.step_count, last).output.reshape(-1)[0]
        assert _b(leaf)[:4] == np.float32(value).tobytes()  # little-endian binary32
        seen.append(float(value))
    assert seen[0] == 0.0 and seen[1] > 0.0  # the honest end, then a state it does not reach
