"""Structured log lines: logfmt (``ts=… level=info msg="…" task=7``) or one JSON object per line.

Fields travel in ``extra={"fields": {...}}``; :func:`event` is the short way to
log a message with fields. On a terminal the lines go through the same rich
console as the progress bars, so bars and logs do not garble each other.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal, TextIO

from rich.console import Console

LogFormat = Literal["logfmt", "json"]
_CONSOLE: Console | None = None


def event(
    logger: logging.Logger, message: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``message`` with structured ``fields``."""
    logger.log(level, message, extra={"fields": fields})


class StructuredFormatter(logging.Formatter):
    """Formats a record as logfmt or JSON with its ``fields``."""

    def __init__(self, fmt: LogFormat = "logfmt") -> None:
        super().__init__()
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.levelno >= logging.ERROR:
            fields["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        if self.fmt == "json":
            return json.dumps(fields, default=str, separators=(",", ":"))
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


def _logfmt_value(value: Any) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        return json.dumps(text)
    return text


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def configure_logging(
    fmt: LogFormat = "logfmt", level: str = "info", stream: TextIO | None = None
) -> None:
    """Send every veritrain log line to ``stream`` (stderr by default) in format ``fmt``."""
    global _CONSOLE
    stream = stream or sys.stderr
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    sink: logging.Handler
    if stream.isatty():
        _CONSOLE = Console(file=stream)
        sink = _ConsoleHandler(_CONSOLE)
    else:
        _CONSOLE = None
        sink = logging.StreamHandler(stream)
    sink.setFormatter(StructuredFormatter(fmt))
    root.addHandler(sink)
    root.setLevel(level.upper())
    # Third-party chatter stays at warning.
    for noisy in ("urllib3", "requests", "web3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def console() -> Console | None:
    """The terminal console logs go to, if stderr is a terminal (for progress bars)."""
    return _CONSOLE
