"""brownie judges a transaction dropped only once the node has forgotten it.

anvil raises a sender's nonce before the block's receipts can be read. brownie reads the
nonce, then the receipt, and took a mined transaction caught between the two for one dropped
without replacement (``TransactionError``), more often on a loaded machine. Here a relay in
front of the devnet widens that moment: it answers a transaction's send once the transaction
is mined and hides its receipt for a while after.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from agents.devnet.anvil import Anvil
from scripts.network import receipt_or_forgotten
from tests.contracts.driver import Parties

RECEIPT_LAG = 0.6


class LaggingRelay:
    """JSON-RPC relay to ``upstream`` whose receipts appear ``lag`` seconds after mining."""

    def __init__(self, upstream: str, lag: float) -> None:
        self.upstream = upstream
        self.lag = lag
        self.mined: dict[str, float] = {}
        self.session = requests.Session()
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = relay.answer(json.loads(body))
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            reply: dict[str, Any] = self.session.post(self.upstream, json=request).json()
        return reply

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request["method"]
        if method == "eth_getTransactionReceipt":
            mined = self.mined.get(str(request["params"][0]).lower())
            if mined is not None and time.monotonic() < mined + self.lag:
                return {"jsonrpc": "2.0", "id": request["id"], "result": None}
        reply = self.forward(request)
        if method in ("eth_sendTransaction", "eth_sendRawTransaction") and "result" in reply:
            txid = str(reply["result"]).lower()
            receipt = {"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionReceipt"}
            receipt["params"] = [txid]
            while self.forward(receipt).get("result") is None:
                time.sleep(0.005)
            self.mined[txid] = time.monotonic()
        return reply

    def __enter__(self) -> LaggingRelay:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lagging(devnet: Anvil, project: Any) -> Iterator[LaggingRelay]:
    """brownie attached through the relay for the test, then straight to the devnet again."""
    from brownie import chain, web3
    from web3 import HTTPProvider

    direct = web3.provider
    with LaggingRelay(devnet.url, RECEIPT_LAG) as relay:
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
    lagging: LaggingRelay, project: Any, parties: Parties
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
