"""Errors of the swarm package."""

from __future__ import annotations

from pydantic import ValidationError

from agents.errors import VeritrainError


class SwarmError(VeritrainError):
    """A devices file, model file or plan is invalid or cannot be scheduled."""


SHOWN = 3


def validation_problems(exc: ValidationError) -> str:
    """A pydantic validation error's problems as ``where: what; ...`` (the first three, and
    how many more), in the file's own terms: a top-level problem has no ``where``."""
    problems = []
    for error in exc.errors()[:SHOWN]:
        where = ".".join(str(p) for p in error["loc"])
        what = str(error["msg"]).removeprefix("Value error, ")
        if not where and error["type"] in ("model_type", "dict_type"):
            what = "expected a JSON object"
        problems.append(f"{where}: {what}" if where else what)
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
