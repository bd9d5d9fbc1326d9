"""Structured log lines: logfmt and JSON, fields included and quoted where needed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from agents.node.logs import configure_logging, event


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging rewires the root logger; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines() -> None:
    out = io.StringIO()
    configure_logging("json", "info", out)
    event(logging.getLogger("veritrain.test"), "tx sent", intent="claim/1", nonce=3)
    line = json.loads(out.getvalue().strip())
    assert line["msg"] == "tx sent" and line["intent"] == "claim/1" and line["nonce"] == 3
    assert (
        line["level"] == "info" and line["logger"] == "veritrain.test" and line["ts"].endswith("Z")
    )


def test_logfmt_quotes_what_needs_it_and_levels_filter() -> None:
    out = io.StringIO()
    configure_logging("logfmt", "warning", out)
    log = logging.getLogger("veritrain.test")
    event(log, "hidden", level=logging.INFO)
    event(
        log, "tx reverted", level=logging.WARNING, error="WrongStatus(taskId=1, status=4)", ok=False
    )
    (line,) = out.getvalue().strip().splitlines()
    assert 'msg="tx reverted"' in line and "level=warning" in line
    assert 'error="WrongStatus(taskId=1, status=4)"' in line and "ok=false" in line
