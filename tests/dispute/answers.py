"""``AnswerTable``: a one step for toy games, whose answers the test registers.

Toy records are computed by numpy, not by the binary32 one step, so the toy games ask a
table (tests/dispute/contracts/AnswerTable.sol) that the arena fills with the honest answer
before a one step is sent.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from typing import Any

from agents.devnet.anvil import REPO_ROOT


@cache
def answer_table_artifact() -> dict[str, Any]:
    """ABI and bytecode of tests/dispute/contracts/AnswerTable.sol (solc-js, as the project)."""
    names = [
        "tests/dispute/contracts/AnswerTable.sol",
        "contracts/dispute/OneStepCall.sol",
        "contracts/lib/Types.sol",
    ]
    sources = {name: {"content": (REPO_ROOT / name).read_text()} for name in names}
    request = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    out = subprocess.run(
        ["node", str(REPO_ROOT / "tools" / "solc" / "solc-adapter.js"), "--standard-json"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    result = json.loads(out.stdout)
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    assert not errors, errors
    contract = result["contracts"][names[0]]["AnswerTable"]
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
