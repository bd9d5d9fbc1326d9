"""A child process for crash tests: submits one Probe intent through a real executor.

Run as ``python -m tests.agents.executor_child URL ADDRESS ABI_FILE DB KEY INTENT ID``; crash
points come from ``VERITRAIN_FAILPOINTS`` in the environment. With ``reconcile`` for INTENT
(and any ID), it reconciles the journal instead, raising the fees of every pending transaction
priced below the next base fee at once (``FeePolicy.bump_after`` 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account import Account

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.executor import FeePolicy, Intent, TransactionExecutor
from agents.chain.journal import TransactionJournal
from agents.node.database import open_database


def main(argv: list[str]) -> int:
    url, address, abi_file, db, key, intent, ident = argv
    probe = ContractInterface("Probe", address, json.loads(Path(abi_file).read_text()))
    executor = TransactionExecutor(
        ChainClient(url),
        Account.from_key(key),
        TransactionJournal(open_database(Path(db))),
        {"Probe": probe},
        fees=FeePolicy(bump_after=0.0),
    )
    if intent == "reconcile":
        executor.reconcile()
        return 0
    executor.submit(Intent(intent, "Probe", "poke", (int(ident), "from child")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
