"""Errors of the swarm package."""

from __future__ import annotations

from pydantic import ValidationError

from agents.errors import VeritrainError


class SwarmError(VeritrainError):
    """A devices file, model file or plan is invalid or cannot be scheduled."""


def first_error(exc: ValidationError) -> str:
    """The first of a pydantic validation error's problems, as ``where: what (and N more)``."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {error['msg']}{more}"
