"""The error hierarchy every veritrain package raises for failures a user can cause.

The command line prints such an error as one line (``error: <message>``) and
exits with its ``exit_code``; anything else is a bug and keeps its traceback
when ``VERITRAIN_DEBUG=1`` is set.
"""


class VeritrainError(Exception):
    """A failure with a message meant for the user (bad input, unreachable service, ...)."""

    exit_code: int = 2


class ConfigError(VeritrainError):
    """A configuration file, flag or environment variable is invalid."""
