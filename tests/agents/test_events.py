"""The event source on a real anvil: decoding, persisted cursor, confirmations, reorgs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import ChainClient
from agents.chain.events import EventSource, read_events
from agents.chain.executor import Intent, TransactionExecutor
from agents.chain.journal import TransactionJournal
from agents.devnet.anvil import DEV_KEYS
from agents.node.database import open_database

pytestmark = pytest.mark.chain


def poke(client: ChainClient, probe: ContractInterface, db: Path, ident: int, note: str) -> None:
    ex = TransactionExecutor(
        client,
        Account.from_key(DEV_KEYS[1]),
        TransactionJournal(open_database(db)),
        {"Probe": probe},
    )
    ex.send_and_wait(Intent(f"poke/{ident}/{note}", "Probe", "poke", (ident, note), value=ident))


def subject(event: DecodedLog) -> int | None:
    return int(event.args["id"]) if "id" in event.args else None


def source(client: ChainClient, probe: ContractInterface, db: Path, **kw: Any) -> EventSource:
    return EventSource(client, [probe], open_database(db), start_block=0, subject=subject, **kw)


def test_events_are_decoded_and_the_cursor_persists(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    poke(client, probe, tmp_path / "tx.db", 3, "first")
    events = source(client, probe, tmp_path / "ev.db")
    found = events.poll()
    assert [(e.name, e.args) for e in found.added] == [
        (
            "Poked",
            {"id": 3, "by": Account.from_key(DEV_KEYS[1]).address, "note": "first", "value": 3},
        )
    ]
    assert events.cursor == client.block_number() + 1
    # A restarted agent does not see the same events as new.
    again = source(client, probe, tmp_path / "ev.db")
    assert again.poll().added == []
    poke(client, probe, tmp_path / "tx.db", 4, "second")
    assert [e.args["id"] for e in again.poll().added] == [4]
    assert [e.args["note"] for e in again.events_of(3)] == ["first"]
    assert [e.args["id"] for e in again.all_events()] == [3, 4]


def test_confirmations_hold_back_recent_blocks(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    events = source(client, probe, tmp_path / "ev.db", confirmations=2)
    poke(client, probe, tmp_path / "tx.db", 1, "x")
    assert events.poll().added == []
    client.rpc.request("anvil_mine", ["0x1"])
    assert events.poll().added == []
    client.rpc.request("anvil_mine", ["0x1"])
    assert [e.args["id"] for e in events.poll().added] == [1]


def test_a_reorg_inside_the_window_replaces_events(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    events = source(client, probe, tmp_path / "ev.db", reorg_window=5)
    poke(client, probe, tmp_path / "tx.db", 1, "kept")
    events.poll()
    snapshot = client.rpc.request("evm_snapshot", [])
    poke(client, probe, tmp_path / "tx.db", 2, "orphaned")
    assert [e.args["id"] for e in events.poll().added] == [2]
    client.rpc.request("evm_revert", [snapshot])
    poke(client, probe, tmp_path / "tx2.db", 5, "replacement")
    client.rpc.request("anvil_mine", ["0x2"])  # the new branch is longer than the old one
    result = events.poll()
    assert [e.args["id"] for e in result.removed] == [2]
    assert [e.args["id"] for e in result.added] == [5]
    assert [e.args["id"] for e in events.all_events()] == [1, 5]
    assert events.events_of(2) == []


def test_small_batches_read_the_same_events(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    for i in range(6):
        poke(client, probe, tmp_path / "tx.db", i, "b")
    whole = read_events(client, [probe], 0)
    assert [e.args["id"] for e in whole] == list(range(6))
    assert read_events(client, [probe], 0, batch_blocks=1) == whole
    assert [
        e.args["id"] for e in source(client, probe, tmp_path / "ev.db", batch_blocks=2).poll().added
    ] == list(range(6))
