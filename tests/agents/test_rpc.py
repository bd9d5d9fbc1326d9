"""The JSON-RPC client against a scripted loopback HTTP server: what is retried and what is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agents.chain.client import ChainClient
from agents.chain.errors import RpcError, RpcUnavailableError, WrongChainError
from agents.chain.rpc import JsonRpc, RetryPolicy
from agents.devnet.anvil import free_port


class Script:
    """Answers to give, in order: an int is an HTTP status with no body, a dict a JSON body."""

    def __init__(self) -> None:
        self.answers: list[int | dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append(body)
            answer = script.answers.pop(0) if script.answers else {"result": "0x1"}
            if isinstance(answer, int):
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps({"jsonrpc": "2.0", "id": body["id"], **answer}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def rpc(url: str, attempts: int = 4) -> tuple[JsonRpc, list[float]]:
    sleeps: list[float] = []
    return JsonRpc(
        url,
        retry=RetryPolicy(attempts=attempts, initial_delay=0.5, max_delay=1.0),
        sleep=sleeps.append,
    ), sleeps


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_http_statuses_are_retried_with_backoff(
    server: tuple[str, Script], status: int
) -> None:
    url, script = server
    script.answers = [status, status, {"result": "0x2a"}]
    client, sleeps = rpc(url)
    assert client.request("eth_blockNumber") == "0x2a"
    assert len(script.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_retries_run_out(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [503] * 10
    client, sleeps = rpc(url, attempts=3)
    with pytest.raises(RpcUnavailableError, match=r"unreachable \(eth_chainId: HTTP 503\)"):
        client.request("eth_chainId")
    assert len(script.requests) == 3 and sleeps == [0.5, 1.0]


def test_a_json_rpc_error_is_an_answer_and_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [{"error": {"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}}]
    client, sleeps = rpc(url)
    with pytest.raises(RpcError) as caught:
        client.request("eth_call", [{}])
    assert caught.value.code == 3 and caught.value.data == "0xdeadbeef"
    assert len(script.requests) == 1 and sleeps == []


def test_rate_limit_error_codes_are_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [{"error": {"code": -32005, "message": "limit exceeded"}}, {"result": "0x1"}]
    client, _ = rpc(url)
    assert client.request("eth_blockNumber") == "0x1"
    assert len(script.requests) == 2


def test_refused_connection_is_unavailable() -> None:
    client, sleeps = rpc(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(RpcUnavailableError, match="connection refused"):
        client.request("eth_chainId")
    assert sleeps == [0.5]


def test_non_json_answer_is_a_clear_error(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [404]
    client, _ = rpc(url)
    with pytest.raises(RpcUnavailableError, match="did not answer JSON"):
        client.request("eth_chainId")


def test_wrong_chain(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [{"result": "0x1"}]
    with pytest.raises(
        WrongChainError, match="serves chain id 1, but the deployment was made on chain id 31337"
    ):
        ChainClient(url).require_chain(31337)


def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_a_proxy_from_the_environment_is_used(
    server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scripted server plays the proxy of an endpoint that does not resolve.
    url, script = server
    _no_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", url)
    script.answers = [{"result": "0x2a"}]
    client, _ = rpc("http://rpc.invalid:8545", attempts=1)
    assert client.request("eth_blockNumber") == "0x2a"
    assert script.requests[0]["method"] == "eth_blockNumber"


def test_the_environment_is_read_once_not_on_every_request(
    server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy set after the client was made is not used: reading the environment on every
    # request cost most of an idle agent tick's CPU.
    url, script = server
    _no_proxy_settings(monkeypatch)
    client, _ = rpc(url, attempts=1)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    script.answers = [{"result": "0x2a"}]
    assert client.request("eth_blockNumber") == "0x2a"
