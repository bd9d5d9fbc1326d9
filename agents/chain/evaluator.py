"""Calling the deployed binary32 library in bulk: ``Binary32Evaluator.evaluate`` by ``eth_call``.

One call evaluates a batch of operations (``agents.arbiter.batch`` sizes them so a call stays
far below a node's call gas cap); nothing is sent as a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from agents.arbiter.batch import ElementwiseOp, pack, unpack
from agents.chain.abi import ContractInterface
from agents.chain.answers import data as hex_data
from agents.chain.client import ChainClient
from agents.chain.errors import ChainError

# Gas offered to one evaluation call; anvil and geth cap eth_call at the block gas limit
# unless told otherwise, and the batches stay well below this.
CALL_GAS = 30_000_000


class Binary32Evaluator:
    """The evaluator contract at one address, reached through ``client``."""

    def __init__(self, client: ChainClient, contract: ContractInterface) -> None:
        self.client = client
        self.contract = contract

    def evaluate(self, spec: ElementwiseOp, operands: np.ndarray) -> np.ndarray:
        """Results (uint32 bit patterns) of ``spec`` on operand rows ``(n, arity)``."""
        rows = np.ascontiguousarray(operands, dtype=np.uint32)
        if rows.ndim != 2 or rows.shape[1] != spec.arity:
            raise ChainError(f"{spec.name} takes rows of {spec.arity} operand(s), got {rows.shape}")
        parts = [self._call(spec, chunk) for chunk in _chunks(rows, spec.batch)]
        if not parts:
            return np.empty(0, dtype=np.uint32)
        return np.concatenate(parts)

    def measure(self, spec: ElementwiseOp, operands: np.ndarray) -> np.ndarray:
        """Gas of one library call of ``spec`` per operand row (``Binary32Evaluator.measure``)."""
        rows = np.ascontiguousarray(operands, dtype=np.uint32)
        parts = []
        for chunk in _chunks(rows, spec.batch):
            data = self.contract.encode_call("measure", [int(spec.op), pack(chunk)])
            tx = {"to": self.contract.address, "data": "0x" + data.hex(), "gas": hex(CALL_GAS)}
            used, _digest = self.client.rpc.request(
                "eth_call", [tx, "latest"], lambda raw: self._decode("measure", raw)
            )
            parts.append(np.array(used, dtype=np.int64))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _decode(self, name: str, raw: Any) -> Any:
        """An eth_call's output decoded: a malformed one is the endpoint's (retried)."""
        return self.contract.decode_output(name, hex_data(raw))

    def _call(self, spec: ElementwiseOp, rows: np.ndarray) -> np.ndarray:
        data = self.contract.encode_call("evaluate", [int(spec.op), pack(rows)])
        tx = {"to": self.contract.address, "data": "0x" + data.hex(), "gas": hex(CALL_GAS)}
        output = self.client.rpc.request(
            "eth_call", [tx, "latest"], lambda raw: self._decode("evaluate", raw)
        )
        results = unpack(bytes.fromhex(str(output)[2:]))
        if results.size != rows.shape[0]:
            raise ChainError(f"evaluator returned {results.size} results for {rows.shape[0]} ops")
        return results


def _chunks(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, rows.shape[0], size):
        yield rows[start : start + size]
