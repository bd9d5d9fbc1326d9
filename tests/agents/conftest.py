"""Fixtures of the agent tests: a fresh anvil per test and the Probe test contract."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.rpc import RetryPolicy
from agents.devnet.anvil import DEV_KEYS, REPO_ROOT, Anvil
from scripts.network import compile_sources

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def probe_artifact() -> dict[str, Any]:
    """ABI and bytecode of tests/agents/contracts/Probe.sol, compiled with the project's solc-js."""
    source = (HERE / "contracts" / "Probe.sol").read_text()
    contract = compile_sources({"Probe.sol": source})["Probe.sol"]["Probe"]
    return {"abi": contract["abi"], "bytecode": contract["evm"]["bytecode"]["object"]}


@pytest.fixture
def client(anvil: Anvil) -> ChainClient:
    return ChainClient(anvil.url, retry=RetryPolicy(attempts=2, initial_delay=0.05))


def deploy(client: ChainClient, artifact: dict[str, Any], key: str = DEV_KEYS[0]) -> str:
    """Deploy ``artifact`` from ``key``; returns the contract address."""
    account = Account.from_key(key)
    block = client.block()
    tx = {
        "type": 2,
        "chainId": client.chain_id(),
        "nonce": client.nonce(account.address),
        "value": 0,
        "data": "0x" + artifact["bytecode"],
        "gas": 2_000_000,
        "maxFeePerGas": (block.base_fee or 0) * 2 + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    signed = account.sign_transaction(tx)
    tx_hash = client.send_raw(bytes(signed.raw_transaction))
    receipt = None
    for _ in range(100):
        receipt = client.receipt(tx_hash)
        if receipt is not None:
            break
        time.sleep(0.05)
    assert receipt is not None and receipt.succeeded
    raw = client.rpc.request("eth_getTransactionReceipt", [tx_hash])
    return str(raw["contractAddress"])


@pytest.fixture
def probe(client: ChainClient, probe_artifact: dict[str, Any]) -> ContractInterface:
    address = deploy(client, probe_artifact)
    return ContractInterface("Probe", address, probe_artifact["abi"])


@pytest.fixture(scope="session")
def pool_interface() -> ContractInterface:
    """The pool's ABI (``ITaskPool``, every function and event), compiled from the project's
    sources with its solc-js; at no address (decisions only encode with it)."""
    path = "contracts/interfaces/ITaskPool.sol"
    sources = {path: (REPO_ROOT / path).read_text()}
    abi = compile_sources(sources, bytecode=False)[path]["ITaskPool"]["abi"]
    return ContractInterface("TaskPool", "0x" + "00" * 20, abi)
