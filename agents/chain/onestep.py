"""Calling the one-step adjudicator (``OneStep``, ``IOneStep``) with a witness.

``agents.arbiter.witness`` builds the arguments offline; this module sends them by
``eth_call`` (the adjudicator is a view), decodes the ``Ruling``, measures the gas a
transaction calling it would use, and turns reverts into readable errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.arbiter.witness import OneStepCall, TensorWitness
from agents.chain.abi import ContractInterface, RevertDecoder
from agents.chain.answers import data as hex_data
from agents.chain.client import ChainClient
from agents.chain.errors import RevertedError, RpcError

CALL_GAS = 30_000_000


@dataclass(frozen=True)
class Ruling:
    """``IOneStep.Ruling``, decoded."""

    defined: bool
    value: int
    terms: int
    output_header: bytes
    state_root: bytes
    correct: tuple[bool, bool]
    proven: tuple[bool, bool]
    records: tuple[bytes, bytes]

    @classmethod
    def decode(cls, raw: Any) -> Ruling:
        defined, value, terms, header, state_root, correct, proven, records = raw

        def as_bytes(value: Any) -> bytes:
            return bytes.fromhex(str(value)[2:]) if isinstance(value, str) else bytes(value)

        return cls(
            defined=bool(defined),
            value=int(value),
            terms=int(terms),
            output_header=as_bytes(header),
            state_root=as_bytes(state_root),
            correct=(bool(correct[0]), bool(correct[1])),
            proven=(bool(proven[0]), bool(proven[1])),
            records=(as_bytes(records[0]), as_bytes(records[1])),
        )


class OneStepClient:
    """The deployed ``OneStep`` router, reached through ``client``."""

    def __init__(
        self,
        client: ChainClient,
        contract: ContractInterface,
        errors_from: Iterable[ContractInterface] = (),
    ) -> None:
        """``errors_from``: more contracts whose custom errors may come back (the family
        adjudicators the router forwards to revert with theirs)."""
        self.client = client
        self.contract = contract
        self._decoder = RevertDecoder([contract, *errors_from])

    def _call(self, name: str, args: list[Any]) -> Any:
        data = self.contract.encode_call(name, args)
        tx = {"to": self.contract.address, "data": "0x" + data.hex(), "gas": hex(CALL_GAS)}
        try:
            return self.client.rpc.request(
                "eth_call",
                [tx, "latest"],
                lambda raw: self.contract.decode_output(name, hex_data(raw)),
            )
        except RpcError as exc:
            raise RevertedError(
                f"OneStep.{name}", self._decoder.decode(exc.data), exc.data
            ) from exc

    def adjudicate(self, call: OneStepCall) -> Ruling:
        """The chain's ruling on ``call``'s claims."""
        return Ruling.decode(self._call("adjudicate", call.arguments()))

    def adjudicate_state(self, tensor_roots: list[bytes], outputs: list[bytes]) -> Ruling:
        """The ruling on a ``STATE`` record's two output roots (``adjudicateState``)."""
        return Ruling.decode(self._call("adjudicateState", [tensor_roots, outputs]))

    def state_gas(self, tensor_roots: list[bytes], outputs: list[bytes]) -> int:
        """Gas of a transaction calling ``adjudicateState``."""
        data = self.contract.encode_call("adjudicateState", [tensor_roots, outputs])
        return self.client.estimate_gas({"to": self.contract.address, "data": "0x" + data.hex()})

    def compute(self, call: OneStepCall) -> tuple[bool, int, int]:
        """``(defined, value, terms)`` of ``call``'s query."""
        defined, value, terms = self._call("compute", call.compute_arguments())
        return bool(defined), int(value), int(terms)

    def element_of(self, tensor: bytes, element: int, proof: TensorWitness) -> tuple[int, bytes]:
        """One element of a committed tensor, proved (``IOneStep.elementOf``): value and header."""
        value, header = self._call("elementOf", [tensor, element, proof.abi()])
        return int(value), bytes.fromhex(str(header)[2:])

    def adjudicator_of(self, op: int) -> str:
        """The family contract that adjudicates op code ``op``."""
        return str(self._call("adjudicatorOf", [op]))

    def max_terms(self) -> int:
        return int(self._call("maxTerms", []))

    def gas(self, call: OneStepCall) -> int:
        """Gas of a transaction calling ``adjudicate`` with ``call`` (intrinsic and calldata
        included), as ``eth_estimateGas`` finds it."""
        data = self.contract.encode_call("adjudicate", call.arguments())
        tx = {"to": self.contract.address, "data": "0x" + data.hex()}
        try:
            return self.client.estimate_gas(tx)
        except RpcError as exc:
            reason = self._decoder.decode(exc.data)
            raise RevertedError("OneStep.adjudicate", reason, exc.data) from exc
