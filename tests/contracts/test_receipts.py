"""brownie judges a transaction dropped only once the node has forgotten it.

anvil raises a sender's nonce before the block's receipts can be read. brownie reads the
nonce, then the receipt, and took a mined transaction caught between the two for one dropped
without replacement (``TransactionError``), more often on a loaded machine. Here a relay in
front of the devnet widens that moment: it answers a transaction's send once the transaction
is mined and hides its receipt for a while after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from agents.devnet.anvil import Anvil
from scripts.network import receipt_or_forgotten
from tests.contracts.driver import Parties
from tests.relay import ReceiptLagRelay

RECEIPT_LAG = 0.6


@pytest.fixture
def lagging(devnet: Anvil, project: Any) -> Iterator[ReceiptLagRelay]:
    """brownie attached through the relay for the test, then straight to the devnet again."""
    from brownie import chain, web3
    from web3 import HTTPProvider

    direct = web3.provider
    with ReceiptLagRelay(devnet.url, RECEIPT_LAG) as relay:
        web3.provider = HTTPProvider(relay.url)
        try:
            yield relay
        finally:
            # brownie's threads note each transaction for its undo; let them finish first.
            deadline = time.monotonic() + 30
            while len(chain._undo_buffer) < len(relay.mined) and time.monotonic() < deadline:
                time.sleep(0.01)
            with chain._undo_lock:
                web3.provider = direct


def test_a_deployment_mined_before_its_receipt_is_readable_is_not_dropped(
    lagging: ReceiptLagRelay, project: Any, parties: Parties
) -> None:
    started = time.monotonic()
    jackpot = project.Jackpot.deploy(parties.verifier, {"from": parties.deployer})
    assert jackpot.arbitration() == parties.verifier
    assert jackpot.tx.status == 1
    assert time.monotonic() - started >= RECEIPT_LAG
    # A call as well: every transaction brownie sends is confirmed the same way.
    tx = jackpot.fund({"from": parties.stranger, "value": 10**9})
    assert tx.status == 1
    assert len(lagging.mined) == 2


def test_a_transaction_the_node_does_not_know_is_forgotten(project: Any) -> None:
    started = time.monotonic()
    assert receipt_or_forgotten("0x" + "5a" * 32) is False
    assert time.monotonic() - started < 1.0


def test_a_mined_transaction_has_its_receipt(project: Any, parties: Parties) -> None:
    tx = parties.deployer.transfer(parties.stranger, 1)
    assert receipt_or_forgotten(tx.txid) is True
