"""A task's record rebuilt from its events, and the proofs calls take from it.

The pool keeps a task's commitments as a hash chain over its folded events
(docs/contracts.md, "Task record"):

    record' = keccak256(record ‖ topic0 ‖ taskId ‖ party ‖ keccak256(data))

Calls that need an earlier value (``revealSeed``, ``revealVerification``) take the data
of the events since it and the record before them. A view's timeline holds the decoded
events; the pool's ABI encodes them back into the logged bytes (``event_data``), so the
record and every proof follow from the view alone. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.chain.abi import ContractInterface
from agents.roles.tasks import TaskView
from agents.rules import FOLDED_PARTIES, fold_record


class RecordError(ValueError):
    """The view lacks an event the proof needs."""


@dataclass(frozen=True)
class Folded:
    """One folded event: its name, the record before it, and its data as logged."""

    name: str
    before: bytes
    data: bytes


def _fold(view: TaskView, pool: ContractInterface) -> tuple[list[Folded], bytes]:
    record = bytes(32)
    out: list[Folded] = []
    task = view.task_id.to_bytes(32, "big")
    for entry in view.timeline:
        party_arg = FOLDED_PARTIES.get(entry.name)
        if party_arg is None:
            continue
        data = pool.event_data(entry.name, entry.args)
        party = bytes.fromhex(str(entry.args[party_arg])[2:]).rjust(32, b"\0")
        out.append(Folded(entry.name, record, data))
        record = fold_record(record, (pool.event_topic(entry.name), task, party), data)
    return out, record


def folded_events(view: TaskView, pool: ContractInterface) -> list[Folded]:
    """The task's folded events in order, each with the record it was folded into."""
    return _fold(view, pool)[0]


def record_of(view: TaskView, pool: ContractInterface) -> bytes:
    """The task's record as the pool holds it."""
    return _fold(view, pool)[1]


def proof(
    view: TaskView, pool: ContractInterface, names: Sequence[str]
) -> tuple[bytes, list[bytes]]:
    """The record before the last ``names[0]`` event and the data of it and of the events
    ``names[1:]`` that follow it, which must be the task's last folded events in this order."""
    events = folded_events(view, pool)
    tail = events[-len(names) :]
    if len(tail) != len(names) or [e.name for e in tail] != list(names):
        raise RecordError(f"task {view.task_id}: its last folded events are not {list(names)}")
    return tail[0].before, [e.data for e in tail]


def history(view: TaskView, pool: ContractInterface) -> list[tuple[str, str, str]]:
    """The task's folded events as calls take them (the pool's ``Folded[]``: topic0, party,
    data as logged), from its ``TaskSubmitted`` on."""
    out = []
    for entry in view.timeline:
        party_arg = FOLDED_PARTIES.get(entry.name)
        if party_arg is None:
            continue
        data = pool.event_data(entry.name, entry.args)
        topic = "0x" + bytes(pool.event_topic(entry.name)).hex()
        out.append((topic, str(entry.args[party_arg]), "0x" + data.hex()))
    return out
