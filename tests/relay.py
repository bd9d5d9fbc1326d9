"""A JSON-RPC relay in front of a devnet that makes receipts readable only ``lag`` seconds
after a transaction was mined, as anvil does for a moment after it raised the sender's nonce
(longer on a loaded machine): the tests of what brownie and the agents' executor make of
that moment."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import requests

SENDS = ("eth_sendTransaction", "eth_sendRawTransaction")
MINING_TIMEOUT_S = 60.0  # a relayed transaction not mined by then fails the test, not hangs it


class ReceiptLagRelay:
    """Relay to ``upstream`` answering a send once its transaction is mined and hiding its
    receipt for ``lag`` seconds after (``mined``: transaction hash → when it was mined).
    Subclasses change an answer in ``relay_reply``; ``None`` answers with HTTP 502."""

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
                if answer is None:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
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

    def hidden(self, txid: str) -> bool:
        """Whether ``txid`` was mined less than ``lag`` seconds ago."""
        mined = self.mined.get(txid.lower())
        return mined is not None and time.monotonic() < mined + self.lag

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        method = request["method"]
        if method == "eth_getTransactionReceipt" and self.hidden(str(request["params"][0])):
            return {"jsonrpc": "2.0", "id": request["id"], "result": None}
        reply = self.forward(request)
        if method in SENDS and "result" in reply:
            txid = str(reply["result"]).lower()
            receipt = {"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionReceipt"}
            receipt["params"] = [txid]
            deadline = time.monotonic() + MINING_TIMEOUT_S
            while self.forward(receipt).get("result") is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{txid} not mined {MINING_TIMEOUT_S:.0f} s after")
                time.sleep(0.005)
            self.mined.setdefault(txid, time.monotonic())
        return self.relay_reply(method, request, reply)

    def relay_reply(
        self, method: str, request: dict[str, Any], reply: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The answer to ``request`` given the node's ``reply`` (here: the reply itself)."""
        return reply

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
