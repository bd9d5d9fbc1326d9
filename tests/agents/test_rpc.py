"""The JSON-RPC client against a scripted loopback HTTP server: what is retried and what is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from agents.chain.abi import ContractInterface, RevertDecoder
from agents.chain.client import ChainClient
from agents.chain.errors import (
    MalformedAnswerError,
    RpcError,
    RpcUnavailableError,
    WrongChainError,
)
from agents.chain.events import read_events
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
    script.answers = [404] * 4
    client, sleeps = rpc(url)
    with pytest.raises(MalformedAnswerError, match=r"did not answer JSON \(HTTP 404\)"):
        client.request("eth_chainId")
    assert len(script.requests) == 4 and sleeps == [0.5, 1.0, 1.0]


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


def quick(url: str, attempts: int = 3) -> ChainClient:
    return ChainClient(url, retry=RetryPolicy(attempts=attempts, initial_delay=0.0))


def test_a_malformed_answer_is_asked_again(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [{"result": "0xzz"}, {"result": "0x2a"}]
    assert quick(url).block_number() == 42
    assert len(script.requests) == 2


GOOD_HASH = "0x" + "ab" * 32
ADDRESS = "0x" + "11" * 20
GOOD_LOG: dict[str, Any] = {
    "address": ADDRESS,
    "topics": [GOOD_HASH],
    "data": "0x",
    "blockNumber": "0x5",
    "logIndex": "0x0",
    "blockHash": GOOD_HASH,
    "transactionHash": GOOD_HASH,
}
GOOD_RECEIPT: dict[str, Any] = {
    "transactionHash": GOOD_HASH,
    "blockNumber": "0x5",
    "blockHash": GOOD_HASH,
    "status": "0x1",
    "gasUsed": "0x5208",
    "logs": [GOOD_LOG],
}


def _read(client: ChainClient, what: str) -> object:
    if what == "nonce":
        return client.nonce("0x" + "11" * 20)
    if what == "balance":
        return client.balance("0x" + "11" * 20)
    if what == "block":
        return client.block("latest")
    if what == "receipt":
        return client.receipt(GOOD_HASH)
    if what == "logs":
        return client.logs(["0x" + "11" * 20], 0, 10)
    if what == "call":
        return client.call("0x" + "11" * 20, b"")
    if what == "send":
        return client.send_raw(b"\x01")
    raise AssertionError(what)


@pytest.mark.parametrize(
    ("what", "result"),
    [
        ("nonce", "0xzz"),
        ("nonce", "-0x1"),
        ("nonce", "12"),
        ("nonce", 1.5),
        ("nonce", ["0x1"]),
        ("nonce", None),
        ("balance", True),
        ("block", None),
        ("block", "0x1"),
        ("block", {"number": "0x1", "timestamp": "0x1"}),
        ("block", {"number": "0x1", "hash": 7, "timestamp": "0x1"}),
        ("block", {"number": "0x1", "hash": GOOD_HASH, "timestamp": "0x1", "baseFeePerGas": "x"}),
        ("receipt", []),
        ("receipt", {**GOOD_RECEIPT, "gasUsed": None}),
        ("receipt", {**GOOD_RECEIPT, "status": "0xq"}),
        ("receipt", {**GOOD_RECEIPT, "logs": "0x"}),
        ("receipt", {key: v for key, v in GOOD_RECEIPT.items() if key != "blockHash"}),
        ("logs", {"0": GOOD_LOG}),
        ("logs", [{**GOOD_LOG, "topics": GOOD_HASH}]),
        ("logs", [{**GOOD_LOG, "data": "0xabc"}]),
        ("logs", [{**GOOD_LOG, "logIndex": None}]),
        ("logs", [{**GOOD_LOG, "address": None}]),
        ("logs", ["0x"]),
        ("call", "0xabc"),
        ("call", 7),
        ("send", None),
        ("send", "0x12"),
    ],
)
def test_a_malformed_answer_on_every_try_is_the_endpoint_unusable(
    server: tuple[str, Script], what: str, result: object
) -> None:
    """An answer no decoder accepts (a quantity that is not hex, a field missing or of the
    wrong type) is never a value nor a crash of the caller: it is asked again under the retry
    policy, then raised as MalformedAnswerError, which is an RpcUnavailableError (what an
    agent's loop waits out)."""
    url, script = server
    script.answers = [{"result": result}] * 3
    with pytest.raises(MalformedAnswerError, match=f"RPC endpoint {url} answered eth_\\w+ malf"):
        _read(quick(url), what)
    assert len(script.requests) == 3
    assert issubclass(MalformedAnswerError, RpcUnavailableError)


@pytest.mark.parametrize("what", ["nonce", "block", "receipt", "logs", "call", "send"])
def test_well_formed_answers_are_read(server: tuple[str, Script], what: str) -> None:
    url, script = server
    good: object = {
        "nonce": "0x0",
        "block": {"number": "0x1", "hash": GOOD_HASH, "timestamp": "0x2"},
        "receipt": GOOD_RECEIPT,
        "logs": [
            GOOD_LOG,
            {"address": GOOD_LOG["address"], "topics": [], "data": "0x", "removed": True},
        ],
        "call": "0x",
        "send": GOOD_HASH,
    }[what]
    script.answers = [{"result": good}]
    assert _read(quick(url), what) is not None
    assert len(script.requests) == 1


def test_a_receipt_not_yet_mined_is_none(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [{"result": None}, {"result": {**GOOD_RECEIPT, "blockNumber": None}}]
    client = quick(url)
    assert client.receipt(GOOD_HASH) is None and client.receipt(GOOD_HASH) is None


def test_a_malformed_error_object_is_the_endpoint_unusable(server: tuple[str, Script]) -> None:
    url, script = server
    oops: dict[str, Any] = {"error": {"code": "oops", "message": "x"}}
    script.answers = [oops, oops, {"result": "0x7"}]
    assert quick(url).block_number() == 7
    script.answers = [{"error": {"code": [], "message": "x"}}] * 3
    with pytest.raises(MalformedAnswerError, match="error object with code"):
        quick(url).block_number()


def test_undecodable_revert_data_is_a_reason_not_a_crash() -> None:
    assert RevertDecoder([]).decode("0xnothex") == "malformed revert data '0xnothex'"


PING = {
    "type": "event",
    "name": "Ping",
    "anonymous": False,
    "inputs": [{"name": "x", "type": "uint256", "indexed": False}],
}


def test_a_log_its_event_does_not_decode_is_a_malformed_answer(
    server: tuple[str, Script],
) -> None:
    """A log at a contract's address with its event's topic but data that event does not
    decode (too short): the node's answer is wrong; never read as an event, never a crash."""
    url, script = server
    ping = ContractInterface("Ping", ADDRESS, [PING])
    good = {**GOOD_LOG, "topics": ping.event_topics, "data": "0x" + "00" * 31 + "07"}
    script.answers = [{"result": [good]}]
    (event,) = read_events(quick(url), [ping], 0, 10)
    assert event.name == "Ping" and event.args == {"x": 7}
    script.answers = [{"result": [{**good, "data": "0x07"}]}]
    with pytest.raises(
        MalformedAnswerError, match=f"{url} answered eth_getLogs with a log of Ping"
    ):
        read_events(quick(url), [ping], 0, 10)


def test_a_request_is_not_prepared_again_by_the_session(
    server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent's idle tick is one request: ``requests.Session.post`` prepared the request
    and merged the session's settings into it again on every call, about half of its CPU;
    the client prepares it once and sends each body through the session's adapter."""
    url, script = server
    client, _ = rpc(url, attempts=1)
    calls: list[str] = []
    for name in ("prepare_request", "merge_environment_settings", "request"):
        original = getattr(requests.Session, name)

        def counted(
            self: requests.Session, *args: Any, _name: str = name, _f: Any = original, **kwargs: Any
        ) -> Any:
            calls.append(_name)
            return _f(self, *args, **kwargs)

        monkeypatch.setattr(requests.Session, name, counted)
    for _ in range(3):
        assert client.request("eth_blockNumber") == "0x1"
    assert calls == []
    assert [r["method"] for r in script.requests] == ["eth_blockNumber"] * 3
