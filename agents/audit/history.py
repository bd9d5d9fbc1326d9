"""A task's history as the chain tells it: its events, the pool's record and parameters, and
the blocks they point at, read once over JSON-RPC (``eth_getLogs``, ``eth_call``,
``eth_getBlockByNumber``) so that the audit itself runs on plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import event_abi_to_log_topic

from agents.audit.errors import AuditInputError
from agents.audit.record import FOLDED_EVENTS
from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment
from agents.chain.errors import ChainError
from agents.roles.situation import PARAMS_FIELDS, POOL
from agents.roles.tasks import TaskView, fold


@dataclass
class ChainHistory:
    """Everything the chain says about one task."""

    task_id: int
    pool: str
    chain_id: int
    view: TaskView
    events: list[DecodedLog]
    raw_logs: list[dict[str, Any]]  # the pool's logs of this task, as eth_getLogs returned them
    folded_topics: set[bytes]
    stored_record: bytes  # task(id).record
    params: dict[str, int]
    block_times: dict[int, int] = field(default_factory=dict)
    block_hashes: dict[int, bytes] = field(default_factory=dict)


def folded_topics(pool: ContractInterface) -> set[bytes]:
    """topic0 of every folded event of the pool's ABI."""
    return {
        event_abi_to_log_topic(dict(entry))  # type: ignore[arg-type]
        for entry in pool.abi
        if entry.get("type") == "event" and entry.get("name") in FOLDED_EVENTS
    }


def read_history(client: ChainClient, deployment: Deployment, task_id: int) -> ChainHistory:
    """Read task ``task_id``'s history; ``AuditInputError`` when the chain cannot give it."""
    pool = deployment.contract(POOL)
    try:
        head = client.block_number()
        raw: list[dict[str, Any]] = []
        start, size = deployment.block, 2000
        while start <= head:
            end = min(head, start + size - 1)
            raw.extend(entry for entry in client.logs([pool.address], start, end))
            start = end + 1
        subject = "0x" + task_id.to_bytes(32, "big").hex()
        mine = [
            e
            for e in raw
            if not e.get("removed")
            and len(e.get("topics", [])) > 1
            and str(e["topics"][1]).lower() == subject
        ]
        mine.sort(key=lambda e: (int(str(e["blockNumber"]), 16), int(str(e["logIndex"]), 16)))
        events = [d for d in (pool.decode_log(e) for e in mine) if d is not None]
        if not events:
            raise AuditInputError(f"no task {task_id} on the pool {pool.address}")
        stored = pool.decode_output(
            "task", client.call(pool.address, pool.encode_call("task", (task_id,)))
        )
        record = _record_field(stored)
        raw_params = pool.decode_output(
            "parameters", client.call(pool.address, pool.encode_call("parameters", ()))
        )
        params = _params(raw_params)
        history = ChainHistory(
            task_id=task_id,
            pool=pool.address,
            chain_id=deployment.chain_id,
            view=fold(task_id, events),
            events=events,
            raw_logs=mine,
            folded_topics=folded_topics(pool),
            stored_record=record,
            params=params,
        )
        blocks = {e.block_number for e in events}
        for e in events:
            if e.name == "RandomnessDrawn" and "sourceBlock" in e.args:
                blocks.add(int(e.args["sourceBlock"]))
        for number in sorted(blocks):
            block = client.block(number)
            history.block_times[number] = block.timestamp
            history.block_hashes[number] = bytes.fromhex(block.hash[2:])
    except ChainError as exc:
        raise AuditInputError(f"the chain at {client.rpc.url} cannot be read: {exc}") from None
    return history


def _record_field(stored: Any) -> bytes:
    """The ``record`` of a decoded ``Task`` (its last field)."""
    task = stored[0] if isinstance(stored, (list, tuple)) and len(stored) == 1 else stored
    value = task["record"] if isinstance(task, dict) else task[-1]
    return bytes.fromhex(str(value)[2:]) if isinstance(value, str) else bytes(value)


def _params(raw: Any) -> dict[str, int]:
    if isinstance(raw, (list, tuple)) and len(raw) == 1 and isinstance(raw[0], (list, tuple)):
        raw = raw[0]
    if isinstance(raw, dict):
        return {k: int(v) for k, v in raw.items()}
    return {name: int(v) for name, v in zip(PARAMS_FIELDS, raw, strict=True)}
