"""Errors of the dispute package."""

from agents.errors import VeritrainError


class DisputeError(VeritrainError):
    """A dispute game cannot be played as asked (bad input, a game in another state)."""


class ProgramError(DisputeError):
    """A program (or one of its parts) is malformed or does not fit its task."""


class TraceError(DisputeError):
    """A trace provider cannot answer: the segment, step, op or element does not exist."""
