"""Contract bindings from ABIs alone: call encoding, log decoding, revert-reason decoding.

Nothing here is specific to veritrain's contracts; the agents know them only
through the ABIs of the deployment manifest. Decoded values are plain JSON
data: integers, ``0x`` hex strings for bytes, checksummed addresses, lists for
arrays and tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import abi_to_signature, event_abi_to_log_topic, function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.chain.errors import ChainError

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialized internal function",
}


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type string of one parameter, tuples spelled out."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def plain(value: Any, kind: str) -> Any:
    """A decoded ABI value as plain JSON data."""
    if kind.endswith("]"):
        element = kind[: kind.rindex("[")]
        return [plain(v, element) for v in value]
    if kind.startswith("("):
        kinds = _split_tuple(kind)
        return [plain(v, k) for v, k in zip(value, kinds, strict=True)]
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


def _split_tuple(kind: str) -> list[str]:
    inner, depth, parts, current = kind[1:-1], 0, [], ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        parts.append(current)
    return parts


@dataclass(frozen=True)
class DecodedLog:
    """One contract event, decoded."""

    contract: str
    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


class ContractInterface:
    """One deployed contract: its name, address and ABI."""

    def __init__(self, name: str, address: str, abi: Sequence[Mapping[str, Any]]) -> None:
        self.name = name
        self.address = to_checksum_address(address)
        self.abi = list(abi)
        self._functions: dict[str, Mapping[str, Any]] = {}
        self._events: dict[bytes, Mapping[str, Any]] = {}
        self._errors: dict[bytes, Mapping[str, Any]] = {}
        for entry in self.abi:
            kind = entry.get("type")
            if kind == "function":
                # Overloads are not used by veritrain's contracts; the last one would win.
                self._functions[str(entry["name"])] = entry
            elif kind == "event" and not entry.get("anonymous"):
                self._events[event_abi_to_log_topic(dict(entry))] = entry  # type: ignore[arg-type]
            elif kind == "error":
                selector = keccak(text=abi_to_signature(dict(entry)))[:4]  # type: ignore[arg-type]
                self._errors[selector] = entry

    # -- functions --------------------------------------------------------------------------

    def function(self, name: str) -> Mapping[str, Any]:
        try:
            return self._functions[name]
        except KeyError:
            raise ChainError(f"contract {self.name} has no function {name!r}") from None

    def has_function(self, name: str) -> bool:
        return name in self._functions

    def encode_call(self, name: str, args: Sequence[Any] = ()) -> bytes:
        """Calldata for ``name(args...)``."""
        fn = self.function(name)
        types = [abi_type(p) for p in fn.get("inputs", [])]
        if len(types) != len(args):
            raise ChainError(f"{self.name}.{name} takes {len(types)} arguments, {len(args)} given")
        selector = function_abi_to_4byte_selector(dict(fn))  # type: ignore[arg-type]
        return selector + abi_encode(
            types, [_abi_input(a, t) for a, t in zip(args, types, strict=True)]
        )

    def decode_output(self, name: str, data: bytes) -> Any:
        """The return value(s) of ``name``: one value, or a list for several outputs."""
        outputs = self.function(name).get("outputs", [])
        types = [abi_type(p) for p in outputs]
        values = [plain(v, t) for v, t in zip(abi_decode(types, data), types, strict=True)]
        return values[0] if len(values) == 1 else values

    def describe_call(self, name: str, args: Sequence[Any]) -> str:
        """``Contract.fn(name=value, ...)`` for logs and journals."""
        inputs = self.function(name).get("inputs", [])
        shown = ", ".join(
            f"{p.get('name') or i}={_short(a)}"
            for i, (p, a) in enumerate(zip(inputs, args, strict=False))
        )
        return f"{self.name}.{name}({shown})"

    # -- events -----------------------------------------------------------------------------

    @property
    def event_topics(self) -> list[str]:
        return ["0x" + t.hex() for t in self._events]

    def decode_log(self, log: Mapping[str, Any]) -> DecodedLog | None:
        """The decoded event, or ``None`` for a log this ABI does not describe."""
        topics = [bytes.fromhex(str(t)[2:]) for t in log.get("topics", [])]
        if not topics or topics[0] not in self._events:
            return None
        event = self._events[topics[0]]
        inputs = list(event.get("inputs", []))
        indexed = [p for p in inputs if p.get("indexed")]
        unindexed = [p for p in inputs if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=False):
            kind = abi_type(param)
            if _is_dynamic(kind):  # only the hash of a dynamic indexed value is logged
                args[str(param["name"])] = "0x" + topic.hex()
            else:
                args[str(param["name"])] = plain(abi_decode([kind], topic)[0], kind)
        data = bytes.fromhex(str(log.get("data", "0x"))[2:])
        kinds = [abi_type(p) for p in unindexed]
        for param, value, kind in zip(unindexed, abi_decode(kinds, data), kinds, strict=True):
            args[str(param["name"])] = plain(value, kind)
        return DecodedLog(
            contract=self.name,
            name=str(event["name"]),
            args=args,
            address=to_checksum_address(str(log["address"])),
            block_number=int(str(log["blockNumber"]), 16),
            block_hash=str(log["blockHash"]),
            log_index=int(str(log["logIndex"]), 16),
            tx_hash=str(log["transactionHash"]),
        )

    def event_topic(self, name: str) -> bytes:
        """topic0 of event ``name``: the keccak256 of its signature."""
        for topic, entry in self._events.items():
            if entry.get("name") == name:
                return topic
        raise ChainError(f"contract {self.name} has no event {name!r}")

    def event_data(self, name: str, args: Mapping[str, Any]) -> bytes:
        """The data of a log of event ``name`` with decoded ``args``, as the contract logged
        it: the ABI encoding of its unindexed fields (the encoding is canonical, so decoding
        then encoding gives back the logged bytes)."""
        entry = self._events[self.event_topic(name)]
        unindexed = [p for p in entry.get("inputs", []) if not p.get("indexed")]
        kinds = [abi_type(p) for p in unindexed]
        values = [
            _abi_input(args[str(p["name"])], k) for p, k in zip(unindexed, kinds, strict=True)
        ]
        return bytes(abi_encode(kinds, values))

    # -- errors -----------------------------------------------------------------------------

    def error_entries(self) -> dict[bytes, Mapping[str, Any]]:
        return dict(self._errors)


class RevertDecoder:
    """Turns revert data into a readable reason using every known contract's custom errors."""

    def __init__(self, contracts: Iterable[ContractInterface]) -> None:
        self._errors: dict[bytes, Mapping[str, Any]] = {}
        for contract in contracts:
            self._errors.update(contract.error_entries())

    def decode(self, data: str | bytes | None) -> str:
        """A one-line reason such as ``NotClaimable(taskId=7, state=3)``."""
        if data is None:
            return "no revert data (out of gas, or a revert without a reason)"
        try:
            raw = (
                bytes.fromhex(data[2:] if data.startswith("0x") else data)
                if isinstance(data, str)
                else data
            )
        except ValueError:  # a node's error object carrying data that is not hex
            return f"malformed revert data {data[:80]!r}"
        if len(raw) < 4:
            return "no revert data (out of gas, or a revert without a reason)"
        selector, body = raw[:4], raw[4:]
        try:
            if selector == ERROR_STRING_SELECTOR:
                return str(abi_decode(["string"], body)[0])
            if selector == PANIC_SELECTOR:
                code = int(abi_decode(["uint256"], body)[0])
                return f"panic 0x{code:02x}: {PANIC_CODES.get(code, 'unknown panic code')}"
            entry = self._errors.get(selector)
            if entry is None:
                return f"unknown custom error 0x{selector.hex()} (data 0x{body.hex()})"
            inputs = list(entry.get("inputs", []))
            kinds = [abi_type(p) for p in inputs]
            values = abi_decode(kinds, body)
            shown = ", ".join(
                f"{p.get('name') or i}={_short(plain(v, k))}"
                for i, (p, v, k) in enumerate(zip(inputs, values, kinds, strict=True))
            )
            return f"{entry['name']}({shown})"
        except DecodingError:
            return f"malformed revert data 0x{raw.hex()}"


def _abi_input(value: Any, kind: str) -> Any:
    """``value`` as eth_abi encodes it for ``kind``: hex strings become bytes for bytes types."""
    if kind.endswith("]") and isinstance(value, list | tuple):
        element = kind[: kind.rindex("[")]
        return [_abi_input(v, element) for v in value]
    if kind.startswith("(") and isinstance(value, list | tuple):
        return tuple(_abi_input(v, k) for v, k in zip(value, _split_tuple(kind), strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    return value


def _is_dynamic(kind: str) -> bool:
    return kind in ("string", "bytes") or kind.endswith("[]") or kind.startswith("(")


def _short(value: Any) -> str:
    """Long hex strings (hashes, roots) shortened for one-line messages; numbers kept whole."""
    text = str(value)
    if isinstance(value, str) and value.startswith("0x") and len(text) > 20:
        return text[:10] + "…" + text[-6:]
    return text
