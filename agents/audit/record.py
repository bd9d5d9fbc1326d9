"""The task record: the pool's hash chain over a task's folded events (docs/contracts.md).

``record_n = keccak256(record_{n-1} ‖ topic0 ‖ topic1 [‖ topic2] ‖ keccak256(data))`` over the
task's folded events in log order. Rebuilt from the logs an RPC endpoint returned and compared
with the record the pool stores, it shows whether those logs are the whole, untouched story.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents.rules import fold_record


def record_of(logs: Iterable[Mapping[str, Any]], folded_topics: set[bytes], task_id: int) -> bytes:
    """The record of ``task_id`` over raw logs (``topics``/``data`` as ``eth_getLogs`` gives
    them, hex strings, or as bytes, as web3 decodes them; in chain order); logs of other tasks
    and events that are not folded are skipped."""
    subject = task_id.to_bytes(32, "big")
    record = bytes(32)
    for log in logs:
        topics = [_raw(t) for t in log.get("topics", [])]
        if len(topics) < 2 or topics[0] not in folded_topics or topics[1] != subject:
            continue
        record = fold_record(record, topics, _raw(log.get("data", "0x")))
    return record


def _raw(value: Any) -> bytes:
    """A log's topic or data as bytes: a ``0x`` hex string, or bytes already."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return bytes.fromhex(str(value)[2:])
