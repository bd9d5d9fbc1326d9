"""A task's history as the chain tells it: its events, the pool's record and parameters, and
the blocks they point at, read once over JSON-RPC (``eth_getLogs``, ``eth_call``,
``eth_getBlockByNumber``) so that the audit itself runs on plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import event_abi_to_log_topic

from agents.audit.errors import AuditInputError
from agents.audit.money import CREDIT_EVENTS
from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment
from agents.chain.errors import ChainError, DeploymentError, RpcError
from agents.roles.challenges import JACKPOT
from agents.roles.situation import PARAMS_FIELDS, POOL
from agents.roles.tasks import TaskView, fold
from agents.rules import FOLDED_EVENTS


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
    flags: int | None = None  # task(id).flags
    bond: int = 0  # challengeBond()
    # The pool's events that move credits, of every task, in chain order (CREDIT_EVENTS).
    credit_events: list[DecodedLog] = field(default_factory=list)
    credits: dict[str, int] = field(default_factory=dict)  # credit(account) of the task's accounts
    awards: list[DecodedLog] = field(default_factory=list)  # the jackpot's Awarded for this task
    # The jackpot's reserve each award transaction of the task computed its cap from (the
    # reserve before the block, moved by the jackpot's events up to that transaction's first award).
    award_reserves: dict[str, int] = field(default_factory=dict)
    reserves_from_events: bool = False  # the node had no past states: summed from events


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
        raw.sort(key=lambda e: (int(str(e["blockNumber"]), 16), int(str(e["logIndex"]), 16)))
        moving = [d for d in (pool.decode_log(e) for e in raw if not e.get("removed")) if d]
        if not events:
            raise AuditInputError(f"no task {task_id} on the pool {pool.address}")
        stored = pool.decode_output(
            "task", client.call(pool.address, pool.encode_call("task", (task_id,)))
        )
        record = _record_field(stored)
        flags = _flags_field(stored)
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
            flags=flags,
            credit_events=[e for e in moving if e.name in CREDIT_EVENTS],
        )
        awarded = ("ForcedErrorCaught", "ForcedErrorUncaught")
        if any(e.name in CREDIT_EVENTS or e.name in awarded for e in events):
            _read_credits(client, deployment, history, head)
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


def _task_struct(stored: Any) -> Any:
    return stored[0] if isinstance(stored, (list, tuple)) and len(stored) == 1 else stored


def _record_field(stored: Any) -> bytes:
    """The ``record`` of a decoded ``Task`` (its last field)."""
    task = _task_struct(stored)
    value = task["record"] if isinstance(task, dict) else task[-1]
    return bytes.fromhex(str(value)[2:]) if isinstance(value, str) else bytes(value)


def _flags_field(stored: Any) -> int | None:
    """The ``flags`` of a decoded ``Task`` (lib/Types.sol: its ninth field)."""
    task = _task_struct(stored)
    if isinstance(task, dict):
        return int(task["flags"]) if "flags" in task else None
    return int(task[8]) if len(task) > 9 else None


def _read_credits(
    client: ChainClient, deployment: Deployment, history: ChainHistory, head: int
) -> None:
    """The challenge bond, the credits the task's accounts hold and the jackpot's awards for
    the task (caught forced errors), all as of block ``head``, the last the logs were read to."""
    pool = deployment.contract(POOL)

    def view(name: str, *args: Any) -> int:
        data = client.call(pool.address, pool.encode_call(name, args), block=head)
        out = pool.decode_output(name, data)
        return int(out[0] if isinstance(out, (list, tuple)) else out)

    history.bond = view("challengeBond")
    accounts = set()
    for e in history.events:
        keys = ("profiler",) if e.name == "ProfileRejected" else ("winner", "challenger", "prover")
        for key in keys:
            if key in e.args and int(str(e.args[key]), 16):
                accounts.add(str(e.args[key]).lower())
    history.credits = {a: view("credit", a) for a in sorted(accounts)}
    if not any(e.name in ("ForcedErrorCaught", "ForcedErrorUncaught") for e in history.events):
        return
    try:
        jackpot = deployment.contract(JACKPOT)
    except DeploymentError:
        return
    reason = "0x" + history.task_id.to_bytes(32, "big").hex()
    logs = [jackpot.decode_log(e) for e in client.logs([jackpot.address], deployment.block, head)]
    jackpot_events = sorted(
        (d for d in logs if d is not None), key=lambda d: (d.block_number, d.log_index)
    )
    for d in jackpot_events:
        if d.name == "Awarded" and _hex32(d.args["reason"]) == reason:
            history.awards.append(d)
    for tx in dict.fromkeys(a.tx_hash for a in history.awards):
        first = next(a for a in history.awards if a.tx_hash == tx)
        try:
            data = client.call(
                jackpot.address, jackpot.encode_call("reserve", ()), block=first.block_number - 1
            )
        except RpcError:
            # A node without past states (a devnet brought back from its state file): the
            # reserve is what the jackpot's events moved into it before this award. Ether forced
            # in without `fund()` is invisible to events, so this can only understate it.
            history.award_reserves[tx] = _moved(jackpot_events, first, since_block=None)
            history.reserves_from_events = True
            continue
        out = jackpot.decode_output("reserve", data)
        reserve = int(out[0] if isinstance(out, (list, tuple)) else out)
        history.award_reserves[tx] = reserve + _moved(
            jackpot_events, first, since_block=first.block_number
        )


def _moved(events: list[DecodedLog], until: DecodedLog, *, since_block: int | None) -> int:
    """What the jackpot's ``Funded`` and ``Awarded`` events before ``until`` moved into (and
    out of) its reserve, counting only events of block ``since_block`` when it is given."""
    moved = 0
    for d in events:
        if (d.block_number, d.log_index) >= (until.block_number, until.log_index):
            break
        if since_block is not None and d.block_number != since_block:
            continue
        if d.name == "Funded":
            moved += int(d.args["amount"])
        elif d.name == "Awarded":
            moved -= int(d.args["amount"])
    return moved


def _hex32(value: Any) -> str:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    return "0x" + raw.rjust(32, b"\0").hex()


def _params(raw: Any) -> dict[str, int]:
    if isinstance(raw, (list, tuple)) and len(raw) == 1 and isinstance(raw[0], (list, tuple)):
        raw = raw[0]
    if isinstance(raw, dict):
        return {k: int(v) for k, v in raw.items()}
    return {name: int(v) for name, v in zip(PARAMS_FIELDS, raw, strict=True)}
