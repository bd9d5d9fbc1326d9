"""``AnswerTable``: a one step for toy games, whose answers the test registers.

Toy records are computed by numpy, not by the binary32 one step, so the toy games ask a
table (tests/dispute/contracts/AnswerTable.sol) that the arena fills with the honest answer
before a one step is sent.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from agents.devnet.anvil import REPO_ROOT
from scripts.network import compile_sources


@cache
def answer_table_artifact() -> dict[str, Any]:
    """ABI and bytecode of tests/dispute/contracts/AnswerTable.sol (solc-js, as the project)."""
    names = [
        "tests/dispute/contracts/AnswerTable.sol",
        "contracts/dispute/OneStepCall.sol",
        "contracts/lib/Types.sol",
    ]
    contracts = compile_sources({name: (REPO_ROOT / name).read_text() for name in names})
    contract = contracts[names[0]]["AnswerTable"]
    return {"abi": contract["abi"], "bytecode": contract["evm"]["bytecode"]["object"]}


def deploy_answer_table(account: Any) -> Any:
    """Deploy an ``AnswerTable`` from ``account``; returns a brownie ``Contract``."""
    from brownie import Contract, web3

    artifact = answer_table_artifact()
    factory = web3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor().transact({"from": account.address})
    receipt = web3.eth.wait_for_transaction_receipt(tx)
    make: Any = Contract.from_abi  # brownie's stubs want its own name and address types
    return make("AnswerTable", receipt["contractAddress"], artifact["abi"])
