"""Errors of chain access: every one names the RPC endpoint, contract or transaction at fault."""

from __future__ import annotations

from agents.errors import VeritrainError


class ChainError(VeritrainError):
    """The chain could not be read or written as asked."""


class RpcUnavailableError(ChainError):
    """The RPC endpoint did not answer (connection refused, timeout, 5xx) after every retry."""

    exit_code = 3


class RpcError(ChainError):
    """The RPC endpoint answered a request with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: str | None = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class WrongChainError(ChainError):
    """The endpoint serves another chain than the deployment was made on."""


class DeploymentError(ChainError):
    """The deployment manifest is missing, unreadable or inconsistent."""


class RevertedError(ChainError):
    """A call or transaction reverted; ``reason`` is decoded from the contracts' custom errors."""

    def __init__(self, what: str, reason: str, data: str | None = None) -> None:
        super().__init__(f"{what} reverted: {reason}")
        self.what = what
        self.reason = reason
        self.data = data


class InsufficientFundsError(ChainError):
    """The sending account cannot pay for a transaction's value and gas."""


class MalformedAnswerError(RpcUnavailableError):
    """The RPC endpoint answered a request with something malformed (not JSON, a quantity that
    is not hex, a field missing or of the wrong type) on every try: unusable for that call,
    as an unreachable one is."""
