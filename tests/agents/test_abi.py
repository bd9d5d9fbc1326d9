"""ABI bindings without a chain: call encoding, log decoding and revert reasons, table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import abi as eth_abi
from eth_utils.crypto import keccak

from agents.chain.abi import ContractInterface, RevertDecoder, abi_type
from agents.chain.errors import ChainError

ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "submit",
        "stateMutability": "payable",
        "inputs": [
            {"name": "specCid", "type": "string"},
            {"name": "specHash", "type": "bytes32"},
            {"name": "steps", "type": "uint64"},
        ],
        "outputs": [{"name": "taskId", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "task",
        "stateMutability": "view",
        "inputs": [{"name": "id", "type": "uint256"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "components": [
                    {"name": "owner", "type": "address"},
                    {"name": "roots", "type": "bytes32[]"},
                ],
            }
        ],
    },
    {
        "type": "event",
        "name": "Submitted",
        "anonymous": False,
        "inputs": [
            {"name": "taskId", "type": "uint256", "indexed": True},
            {"name": "submitter", "type": "address", "indexed": True},
            {"name": "specCid", "type": "string", "indexed": False},
            {"name": "bounty", "type": "uint256", "indexed": False},
        ],
    },
    {
        "type": "event",
        "name": "Tagged",
        "anonymous": False,
        "inputs": [{"name": "tag", "type": "string", "indexed": True}],
    },
    {
        "type": "error",
        "name": "NotOpen",
        "inputs": [{"name": "taskId", "type": "uint256"}, {"name": "state", "type": "uint8"}],
    },
    {"type": "error", "name": "BadRoot", "inputs": [{"name": "root", "type": "bytes32"}]},
]
ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SUBMITTER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def pool() -> ContractInterface:
    return ContractInterface("TaskPool", ADDRESS, ABI)


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_encode_call_matches_the_abi(pool: ContractInterface) -> None:
    data = pool.encode_call("submit", ("Qm123", "0x" + "ab" * 32, 5))
    assert data[:4] == selector("submit(string,bytes32,uint64)")
    assert eth_abi.decode(["string", "bytes32", "uint64"], data[4:]) == ("Qm123", b"\xab" * 32, 5)


def test_encode_call_rejects_wrong_arity_and_unknown_functions(pool: ContractInterface) -> None:
    with pytest.raises(ChainError, match="takes 3 arguments, 1 given"):
        pool.encode_call("submit", ("Qm",))
    with pytest.raises(ChainError, match="has no function 'claim'"):
        pool.encode_call("claim", ())


def test_decode_output_of_a_tuple(pool: ContractInterface) -> None:
    raw = eth_abi.encode(["(address,bytes32[])"], [(SUBMITTER, [b"\x01" * 32])])
    assert pool.decode_output("task", raw) == [SUBMITTER, ["0x" + "01" * 32]]


def test_tuple_types_are_spelled_out() -> None:
    assert abi_type(ABI[1]["outputs"][0]) == "(address,bytes32[])"


def _log(topics: list[bytes], data: bytes) -> dict[str, Any]:
    return {
        "address": ADDRESS.lower(),
        "topics": ["0x" + t.hex() for t in topics],
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "cd" * 32,
        "logIndex": "0x2",
        "transactionHash": "0x" + "ef" * 32,
    }


def test_decode_log(pool: ContractInterface) -> None:
    topic0 = keccak(text="Submitted(uint256,address,string,uint256)")
    log = _log(
        [topic0, (7).to_bytes(32, "big"), bytes(12) + bytes.fromhex(SUBMITTER[2:])],
        eth_abi.encode(["string", "uint256"], ["bafy", 10**18]),
    )
    event = pool.decode_log(log)
    assert event is not None
    assert (event.name, event.args) == (
        "Submitted",
        {"taskId": 7, "submitter": SUBMITTER, "specCid": "bafy", "bounty": 10**18},
    )
    assert (event.block_number, event.log_index, event.address) == (16, 2, ADDRESS)


def test_indexed_dynamic_values_stay_hashes(pool: ContractInterface) -> None:
    digest = keccak(text="hello")
    event = pool.decode_log(_log([keccak(text="Tagged(string)"), digest], b""))
    assert event is not None and event.args == {"tag": "0x" + digest.hex()}


def test_unknown_logs_are_ignored(pool: ContractInterface) -> None:
    assert pool.decode_log(_log([keccak(text="Other()")], b"")) is None
    assert pool.decode_log(_log([], b"")) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            selector("NotOpen(uint256,uint8)") + eth_abi.encode(["uint256", "uint8"], [7, 3]),
            "NotOpen(taskId=7, state=3)",
        ),
        (selector("BadRoot(bytes32)") + b"\x11" * 32, "BadRoot(root=0x11111111…111111)"),
        (selector("Error(string)") + eth_abi.encode(["string"], ["nope"]), "nope"),
        (
            selector("Panic(uint256)") + eth_abi.encode(["uint256"], [0x11]),
            "panic 0x11: arithmetic overflow or underflow",
        ),
        (
            selector("Panic(uint256)") + eth_abi.encode(["uint256"], [0x99]),
            "panic 0x99: unknown panic code",
        ),
        (
            selector("Mystery()"),
            "unknown custom error 0x" + selector("Mystery()").hex() + " (data 0x)",
        ),
        (
            selector("NotOpen(uint256,uint8)") + b"\x01",
            "malformed revert data 0x" + (selector("NotOpen(uint256,uint8)") + b"\x01").hex(),
        ),
        (b"", "no revert data (out of gas, or a revert without a reason)"),
        (None, "no revert data (out of gas, or a revert without a reason)"),
    ],
)
def test_revert_reasons(pool: ContractInterface, data: bytes | None, reason: str) -> None:
    decoder = RevertDecoder([pool])
    assert decoder.decode(data) == reason
    if data is not None:
        assert decoder.decode("0x" + data.hex()) == reason
