"""A child process for the driver's crash tests: plays one party of a toy game to its end.

Run as ``python -m tests.dispute.player_child URL GAME ABI_FILE DB KEY GAME_ID FAULT``
(``FAULT``: ``honest`` or a JSON ``Fault``); crash points come from ``VERITRAIN_FAILPOINTS``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account import Account

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.executor import RejectionPolicy, TransactionExecutor
from agents.chain.journal import TransactionJournal
from agents.dispute.driver import GamePlayer
from agents.dispute.game import GAME
from agents.node.database import open_database
from tests.dispute.toy import Fault, ToyClaims, ToyTrace

SEGMENT = 1


def main(argv: list[str]) -> int:
    url, address, abi_file, db, key, game_id, fault_text = argv
    game = ContractInterface(GAME, address, json.loads(Path(abi_file).read_text()))
    executor = TransactionExecutor(
        ChainClient(url),
        Account.from_key(key),
        TransactionJournal(open_database(Path(db))),
        {GAME: game},
        rejections=RejectionPolicy(attempts=50, delay=0.05),
    )
    claims = ToyClaims()
    fault = None if fault_text == "honest" else Fault(**json.loads(fault_text))
    trace = ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], fault)
    GamePlayer(executor, game, lambda state: trace).play(int(game_id), poll=0.05, timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
