"""Decoders of node answers: each checks the shape of what a JSON-RPC method answered and
raises ``ValueError`` (or ``TypeError``/``LookupError``) for anything else.

An endpoint is not trusted to answer well-formed values: a flaky gateway or a lying node may
answer a quantity that is not hex, a field of the wrong type, or none at all. The client runs
these decoders inside its retry policy (:meth:`agents.chain.rpc.JsonRpc.request`), so such an
answer counts as the endpoint being unusable for that call, never as a value.
"""

from __future__ import annotations

import re
from typing import Any

_QUANTITY = re.compile(r"0x[0-9a-fA-F]{0,64}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def quantity(value: Any) -> int:
    """A JSON-RPC quantity (``0x``-prefixed hex, ``0x`` read as 0; an int as it is), never
    negative."""
    if isinstance(value, bool):
        raise TypeError(f"quantity expected, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative quantity {value}")
        return value
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise ValueError(f"quantity expected, got {_shown(value)}")
    return int(value, 16) if value != "0x" else 0


def optional_quantity(value: Any) -> int | None:
    """A quantity, or ``None`` where the field is absent or null."""
    return None if value is None else quantity(value)


def data(value: Any) -> bytes:
    """``0x``-prefixed hex bytes (an even number of digits)."""
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise ValueError(f"hex data expected, got {_shown(value)}")
    return bytes.fromhex(value[2:])


def hash32(value: Any) -> str:
    """A 32-byte hash as ``0x`` and 64 hex digits."""
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValueError(f"32-byte hash expected, got {_shown(value)}")
    return value


def obj(value: Any, what: str) -> dict[str, Any]:
    """An answer that must be a JSON object."""
    if not isinstance(value, dict):
        raise TypeError(f"{what} expected as an object, got {_shown(value)}")
    return value


def log_entry(value: Any) -> dict[str, Any]:
    """One ``eth_getLogs`` (or receipt) log, its fields checked; returned as it came."""
    entry = obj(value, "log")
    if not isinstance(entry.get("address"), str) or not _ADDRESS.fullmatch(entry["address"]):
        raise ValueError(f"log address expected, got {_shown(entry.get('address'))}")
    topics = entry.get("topics")
    if not isinstance(topics, list):
        raise TypeError(f"log topics expected as a list, got {_shown(topics)}")
    for topic in topics:
        hash32(topic)
    data(entry.get("data"))
    if entry.get("removed"):
        return entry  # a log a reorg removed: skipped by its readers, its block may be gone
    quantity(entry.get("blockNumber"))
    quantity(entry.get("logIndex"))
    hash32(entry.get("blockHash"))
    hash32(entry.get("transactionHash"))
    return entry


def log_list(value: Any) -> list[dict[str, Any]]:
    """An ``eth_getLogs`` answer: a list of logs (``null`` read as none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"list of logs expected, got {_shown(value)}")
    return [log_entry(v) for v in value]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
