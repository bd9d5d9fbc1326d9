"""Typed access to the few Ethereum JSON-RPC methods veritrain uses.

Only standard methods (no server-side filters, no node-specific extensions)
so any EVM node serves the agents. Every answer is decoded inside the retry policy
(:mod:`agents.chain.answers`): a malformed one is retried and then raised as
:class:`MalformedAnswerError`, never returned as a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.chain.abi import ContractInterface
from agents.chain.answers import data as hex_data
from agents.chain.answers import hash32, log_list, obj, optional_quantity, quantity
from agents.chain.errors import RpcError, RpcUnavailableError, WrongChainError
from agents.chain.rpc import MALFORMED, JsonRpc, RetryPolicy, hex_int

BlockId = int | str  # a number, or "latest" / "pending" / "safe" / "finalized"


@dataclass(frozen=True)
class Block:
    """The parts of a block header the agents read."""

    number: int
    hash: str
    timestamp: int
    base_fee: int | None


@dataclass(frozen=True)
class Receipt:
    """A mined transaction's outcome."""

    tx_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    effective_gas_price: int
    logs: list[dict[str, Any]]

    @property
    def succeeded(self) -> bool:
        return self.status == 1


def _block_param(block: BlockId) -> str:
    return hex_int(block) if isinstance(block, int) else block


def _block(raw: Any) -> Block | None:
    if raw is None:
        return None
    header = obj(raw, "block")
    return Block(
        number=quantity(header["number"]),
        hash=hash32(header["hash"]),
        timestamp=quantity(header["timestamp"]),
        base_fee=optional_quantity(header.get("baseFeePerGas")),
    )


def _receipt(raw: Any) -> Receipt | None:
    if raw is None:
        return None
    fields = obj(raw, "receipt")
    if fields.get("blockNumber") is None:
        return None
    status = fields.get("status")
    return Receipt(
        tx_hash=hash32(fields["transactionHash"]),
        block_number=quantity(fields["blockNumber"]),
        block_hash=hash32(fields["blockHash"]),
        status=1 if status is None else quantity(status),
        gas_used=quantity(fields["gasUsed"]),
        effective_gas_price=optional_quantity(fields.get("effectiveGasPrice")) or 0,
        logs=log_list(fields.get("logs")),
    )


class ChainClient:
    """One EVM node, reached over HTTP JSON-RPC with retries on transient failures."""

    def __init__(self, url: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None):
        self.rpc = JsonRpc(url, timeout=timeout, retry=retry)
        self.url = url
        self._chain_id: int | None = None
        # False once eth_feeHistory failed where the latest block was read at once after: an
        # endpoint that does not serve it (``next_base_fee``).
        self._fee_history = True

    # -- identity ---------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The chain id the node serves (asked once, then remembered)."""
        if self._chain_id is None:
            self._chain_id = int(self.rpc.request("eth_chainId", [], quantity))
        return self._chain_id

    def require_chain(self, expected: int) -> None:
        """Raise :class:`WrongChainError` unless the node serves chain ``expected``."""
        actual = self.chain_id()
        if actual != expected:
            raise WrongChainError(
                f"RPC endpoint {self.url} serves chain id {actual}, "
                f"but the deployment was made on chain id {expected}"
            )

    # -- reading ----------------------------------------------------------------------------

    def block_number(self) -> int:
        return int(self.rpc.request("eth_blockNumber", [], quantity))

    def block(self, block: BlockId = "latest") -> Block:
        """A block header; raises :class:`RpcError` if the node does not know the numbered
        ``block`` (a node that knows no block for a tag such as ``latest`` answered
        malformed)."""

        def decode(raw: Any) -> Block | None:
            header = _block(raw)
            if header is None and not isinstance(block, int):
                raise ValueError(f"no block for {block!r}")
            return header

        found = self.rpc.request("eth_getBlockByNumber", [_block_param(block), False], decode)
        if found is None:
            raise RpcError("eth_getBlockByNumber", 0, f"block {block} not found")
        assert isinstance(found, Block)
        return found

    def next_base_fee(self) -> int | None:
        """The base fee of the block after the latest (``eth_feeHistory``'s last entry; the
        latest block's where the node does not answer that); ``None`` before London.

        An endpoint that fails eth_feeHistory (unreachable for it, a malformed answer) while
        it serves the latest block is not asked it again: a gateway that does not pass it on
        would otherwise cost every look its retries, or fail it as unreachable."""
        failed = False
        if self._fee_history:
            try:
                history = self.rpc.request("eth_feeHistory", [1, "latest", []])
                fees = history.get("baseFeePerGas") if isinstance(history, dict) else None
                if fees:
                    return quantity(fees[-1])
            except RpcError:
                pass
            except (RpcUnavailableError, *MALFORMED):
                failed = True
        base = self.block("latest").base_fee
        if failed:
            self._fee_history = False
        return base

    def logs(
        self, addresses: Sequence[str], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        """Every log of ``addresses`` in ``[from_block, to_block]`` (``eth_getLogs``), each
        one's fields checked (``answers.log_entry``)."""
        result = self.rpc.request(
            "eth_getLogs",
            [
                {
                    "address": list(addresses),
                    "fromBlock": hex_int(from_block),
                    "toBlock": hex_int(to_block),
                }
            ],
            log_list,
        )
        return list(result)

    def call(
        self, to: str, data: bytes, *, sender: str | None = None, block: BlockId = "latest"
    ) -> bytes:
        """``eth_call``; a revert raises :class:`RpcError` carrying the revert data."""
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender is not None:
            tx["from"] = sender
        return bytes(self.rpc.request("eth_call", [tx, _block_param(block)], hex_data))

    def read(
        self,
        contract: ContractInterface,
        function: str,
        args: Sequence[Any] = (),
        *,
        sender: str | None = None,
        block: BlockId = "latest",
    ) -> Any:
        """``contract.function(args)`` called (``eth_call``) and its output decoded; an output
        that does not decode is a malformed answer (retried, then
        :class:`MalformedAnswerError`); a revert raises :class:`RpcError`."""
        tx: dict[str, Any] = {
            "to": contract.address,
            "data": "0x" + contract.encode_call(function, args).hex(),
        }
        if sender is not None:
            tx["from"] = sender
        return self.rpc.request(
            "eth_call",
            [tx, _block_param(block)],
            lambda raw: contract.decode_output(function, hex_data(raw)),
        )

    def code(self, address: str) -> bytes:
        return bytes(self.rpc.request("eth_getCode", [address, "latest"], hex_data))

    def balance(self, address: str, block: BlockId = "latest") -> int:
        return int(self.rpc.request("eth_getBalance", [address, _block_param(block)], quantity))

    def nonce(self, address: str, block: BlockId = "pending") -> int:
        return int(
            self.rpc.request("eth_getTransactionCount", [address, _block_param(block)], quantity)
        )

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of a mined transaction; ``None`` while none shows."""
        found = self.rpc.request("eth_getTransactionReceipt", [tx_hash], _receipt)
        assert found is None or isinstance(found, Receipt)
        return found

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (pending or mined)."""
        return self.rpc.request("eth_getTransactionByHash", [tx_hash]) is not None

    # -- fees and sending -------------------------------------------------------------------

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        """``eth_estimateGas``; a revert raises :class:`RpcError` carrying the revert data."""
        return int(self.rpc.request("eth_estimateGas", [tx], quantity))

    def max_priority_fee(self) -> int:
        """The node's suggested tip; 1 gwei where the node has no opinion."""
        try:
            return int(self.rpc.request("eth_maxPriorityFeePerGas", [], quantity))
        except RpcError:
            return 10**9

    def gas_price(self) -> int:
        return int(self.rpc.request("eth_gasPrice", [], quantity))

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; returns its hash."""
        return str(self.rpc.request("eth_sendRawTransaction", ["0x" + raw.hex()], hash32))
