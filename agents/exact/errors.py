"""Errors of the exact kernels that a user can cause."""

from __future__ import annotations

from agents.errors import VeritrainError


class ExactError(VeritrainError):
    """An exact-kernel operation was given inputs it does not define (shape, dtype, index)."""


class ExactEnvironmentError(ExactError):
    """The machine or process cannot compute the exact kernels bit for bit (e.g. flush-to-zero)."""
