"""A JSON-RPC client for an EVM node that retries transient failures and nothing else.

Transient means the request may not have reached the node or the node could
not serve it right now: refused or reset connections, timeouts, HTTP 429 and
5xx. Those are retried with exponential backoff; a JSON-RPC error object is an
answer and is raised at once as :class:`RpcError`. A malformed answer (not JSON, a
malformed error object, or a result its decoder refuses: :mod:`agents.chain.answers`)
is the endpoint being unusable for that call: logged, retried the same way, and raised
as :class:`MalformedAnswerError` once every retry is spent.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi.exceptions import DecodingError

from agents.chain.answers import quantity
from agents.chain.errors import MalformedAnswerError, RpcError, RpcUnavailableError

log = logging.getLogger(__name__)

# HTTP statuses after which the same request can be sent again unchanged.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
# JSON-RPC codes some nodes use for "try again": rate limits and resource limits.
TRANSIENT_RPC_CODES = frozenset({-32005, 429})
# What a decoder of an answer raises for one it refuses (agents.chain.answers, eth_abi).
MALFORMED = (ValueError, TypeError, LookupError, AttributeError, DecodingError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``attempts`` counts tries in all (1 means no retry); the delay before retry
    ``i`` (from 0) is ``min(max_delay, initial_delay * 2**i)``.
    """

    attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 5.0

    def delays(self) -> list[float]:
        """The sleeps between tries, one fewer than ``attempts``."""
        return [
            min(self.max_delay, self.initial_delay * 2**i) for i in range(max(0, self.attempts - 1))
        ]


def hex_int(value: int) -> str:
    """An integer as a JSON-RPC quantity (``0x``-prefixed, no leading zeros)."""
    return hex(value)


def to_int(value: Any) -> int:
    """A JSON-RPC quantity as an int (``None`` and ``0x`` read as 0); raises ``ValueError``
    or ``TypeError`` for anything else (``agents.chain.answers.quantity``)."""
    return 0 if value is None else quantity(value)


class JsonRpc:
    """One endpoint; every request retried on transient failures per ``retry``."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._session = _session(url)
        # Every request but its body, prepared once (headers, credentials) and sent through
        # the session's adapter: ``Session.post`` prepares and merges it all again on each
        # call, which was half of a request's CPU (an idle agent tick is one request).
        self._template = self._session.prepare_request(
            requests.Request("POST", url, headers={"Content-Type": "application/json"})
        )
        self._adapter = self._session.get_adapter(url)
        verify = self._session.verify  # as ``Session.request`` passes it: None checks too
        self._verify: bool | str = True if verify is None else verify
        self._ids = itertools.count(1)

    def request(
        self,
        method: str,
        params: list[Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Send one request and return its ``result``, or what ``decode`` makes of it.

        Raises :class:`RpcError` for a JSON-RPC error answer, :class:`RpcUnavailableError`
        once every retry of a transient failure is spent, and :class:`MalformedAnswerError`
        (an :class:`RpcUnavailableError`) where the last try got a malformed answer: one
        ``decode`` refused (``ValueError``, ``TypeError``, ``LookupError``, ``AttributeError``,
        ``eth_abi``'s ``DecodingError``).
        """
        delays = self.retry.delays()
        last: Exception | None = None
        malformed = False
        for attempt in range(len(delays) + 1):
            try:
                result = self._request_once(method, params or [])
                return result if decode is None else decode(result)
            except _TransientError as exc:
                last, malformed = exc.cause, False
                if attempt < len(delays):
                    log.debug("rpc %s transient failure (%s); retrying", method, exc.cause)
            except MALFORMED as exc:
                last, malformed = exc, True
                log.warning(
                    "RPC endpoint %s answered %s malformed (%s)%s",
                    self.url,
                    method,
                    exc,
                    "; asking again" if attempt < len(delays) else "",
                )
            if attempt < len(delays):
                self._sleep(delays[attempt])
        if malformed:
            raise MalformedAnswerError(
                f"RPC endpoint {self.url} answered {method} malformed ({last})"
            ) from last
        raise RpcUnavailableError(
            f"RPC endpoint {self.url} is unreachable ({method}: {_describe(last)})"
        ) from last

    def _request_once(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            encoded = json.dumps(body, allow_nan=False).encode()
        except ValueError as exc:  # a NaN or an infinity: no JSON to send
            raise RpcUnavailableError(f"RPC endpoint {self.url}: {exc}") from exc
        request = self._template.copy()
        request.prepare_body(encoded, None)
        try:
            response = self._adapter.send(
                request,
                timeout=self.timeout,
                verify=self._verify,
                proxies=self._session.proxies,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _TransientError(exc) from exc
        except requests.RequestException as exc:
            raise RpcUnavailableError(f"RPC endpoint {self.url}: {exc}") from exc
        if response.status_code in TRANSIENT_HTTP:
            raise _TransientError(requests.HTTPError(f"HTTP {response.status_code}"))
        try:
            answer = response.json()
        except ValueError as exc:
            raise ValueError(f"it did not answer JSON (HTTP {response.status_code})") from exc
        if not isinstance(answer, dict):
            raise TypeError(f"it answered a JSON {type(answer).__name__}, not an object")
        error = answer.get("error")
        if error is not None:
            code = error.get("code", 0) if isinstance(error, dict) else 0
            if isinstance(code, bool) or not isinstance(code, int):
                raise TypeError(f"error object with code {code!r}")
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if code in TRANSIENT_RPC_CODES:
                raise _TransientError(RpcError(method, code, message))
            data = error.get("data") if isinstance(error, dict) else None
            if isinstance(data, dict):  # some nodes nest the revert data one level down
                data = data.get("data")
            raise RpcError(method, code, message, data if isinstance(data, str) else None)
        return answer.get("result")

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()


def _session(url: str) -> requests.Session:
    """An HTTP session for ``url`` with the environment's settings for it (proxies, CA bundle,
    ``.netrc`` credentials) read once, here: a session that trusts the environment reads all
    of ``os.environ`` again on every request, which was most of an idle agent tick's CPU."""
    session = requests.Session()
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
    return session


class _TransientError(Exception):
    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no answer"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or reset"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return str(exc)
