"""What stops an audit before it can judge anything."""

from __future__ import annotations

from agents.errors import VeritrainError

# Exit statuses of the audit commands.
HOLDS = 0
DIFFERS = 1
UNUSABLE = 2


class AuditInputError(VeritrainError):
    """The audit's input is unusable: an unreachable endpoint, a task that does not exist, an
    artifact the store lacks or holds corrupt, a malformed transcript. Not a verdict."""

    exit_code = UNUSABLE
