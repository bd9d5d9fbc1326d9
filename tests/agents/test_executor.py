"""The transaction executor on a real anvil: journal, nonces, revert reasons, crashes."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.errors import (
    InsufficientFundsError,
    MalformedAnswerError,
    RevertedError,
    RpcUnavailableError,
)
from agents.chain.executor import (
    DropPolicy,
    ExecutorObserver,
    FeePolicy,
    Intent,
    RejectionPolicy,
    TransactionExecutor,
    bumped,
    offer_of,
)
from agents.chain.journal import JournalEntry, TransactionJournal
from agents.chain.rpc import RetryPolicy
from agents.devnet.anvil import DEV_KEYS, REPO_ROOT, Anvil, start_anvil
from agents.node.database import open_database
from tests.relay import ReceiptLagRelay

from .conftest import deploy

pytestmark = pytest.mark.chain

KEY = DEV_KEYS[1]
ADDRESS = Account.from_key(KEY).address


def make_executor(
    client: ChainClient,
    probe: ContractInterface,
    db: Path,
    key: str = KEY,
    clock: Callable[[], float] = time.time,
    fees: FeePolicy | None = None,
    rejections: RejectionPolicy | None = None,
) -> TransactionExecutor:
    return TransactionExecutor(
        client,
        Account.from_key(key),
        TransactionJournal(open_database(db)),
        {"Probe": probe},
        fees=fees,
        rejections=rejections or RejectionPolicy(attempts=3, delay=0.0),
        clock=clock,
    )


def pokes(executor: TransactionExecutor) -> int:
    return int(executor.call("Probe", "pokes"))


@dataclass(frozen=True)
class ManualMining:
    """A node started with ``--no-mining``, a client of it and the probe deployed on it (mined
    at once), after which transactions wait in the pool until a test mines them
    (``evm_mine``)."""

    node: Anvil
    client: ChainClient
    probe: ContractInterface


@pytest.fixture
def manual(probe_artifact: dict[str, Any]) -> Iterator[ManualMining]:
    node = start_anvil(extra_args=["--no-mining"])
    try:
        client = ChainClient(node.url)
        yield ManualMining(node, client, _probe_then_manual_mining(client, probe_artifact))
    finally:
        node.stop()


def _probe_then_manual_mining(
    client: ChainClient, probe_artifact: dict[str, Any]
) -> ContractInterface:
    """The probe deployed on a node started with ``--no-mining`` (mined at once), after which
    transactions wait in the pool until a test mines them (``evm_mine``)."""
    client.rpc.request("evm_setAutomine", [True])
    probe = ContractInterface("Probe", deploy(client, probe_artifact), probe_artifact["abi"])
    client.rpc.request("evm_setAutomine", [False])
    return probe


def test_submit_is_journaled_then_mined(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "hello"), value=7, task_id=1))
    assert entry is not None and entry.status == "sent" and entry.nonce == 0
    mined = ex.wait("poke/1")
    assert mined.status == "mined" and mined.gas_used and mined.block_number
    receipt = client.receipt(mined.tx_hash or "")
    assert receipt is not None and receipt.succeeded
    assert pokes(ex) == 1
    assert client.balance(probe.address) == 7
    assert mined.description == "Probe.poke(id=1, note=hello)"


def test_one_intent_never_yields_two_transactions(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    assert ex.submit(Intent("poke/1", "Probe", "poke", (1, "a"))) is not None
    assert ex.submit(Intent("poke/1", "Probe", "poke", (1, "a"))) is None
    ex.wait("poke/1")
    # A restarted agent (new executor, same database) refuses it too.
    again = make_executor(client, probe, tmp_path / "a.db")
    assert again.submit(Intent("poke/1", "Probe", "poke", (1, "a"))) is None
    assert client.nonce(ADDRESS) == 1
    assert pokes(again) == 1


def test_nonces_are_one_sequence(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    entries = [ex.submit(Intent(f"poke/{i}", "Probe", "poke", (i, "n"))) for i in range(5)]
    assert [e.nonce for e in entries if e is not None] == [0, 1, 2, 3, 4]
    for i in range(5):
        ex.wait(f"poke/{i}")
    assert pokes(ex) == 5


def test_custom_error_at_estimation_is_decoded_and_spends_no_nonce(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    entry = ex.submit(Intent("least/1", "Probe", "atLeast", (1, 5)))
    assert entry is not None and entry.status == "rejected"
    assert entry.error == "Probe.atLeast reverted: TooSmall(given=1, minimum=5)"
    assert entry.nonce is None
    with pytest.raises(RevertedError, match=r"TooSmall\(given=1, minimum=5\)"):
        ex.submit(Intent("least/2", "Probe", "atLeast", (1, 5)), strict=True)
    assert client.nonce(ADDRESS) == 0
    # Retried per the policy (delay 0 here), then given up.
    assert ex.may_submit(Intent("least/1", "Probe", "atLeast", (1, 5)))
    ex.submit(Intent("least/1", "Probe", "atLeast", (1, 5)))
    ex.submit(Intent("least/1", "Probe", "atLeast", (1, 5)))
    final = ex.journal.get("least/1")
    assert final is not None and final.attempts == 3
    assert not ex.may_submit(Intent("least/1", "Probe", "atLeast", (1, 5)))


def test_a_persistent_intent_is_tried_until_its_decision_stops_asking(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    """A rejection of a persistent intent waits its backoff (capped at ``max_delay``) and
    comes back, past the attempts that end an ordinary intent; still no nonce is spent."""
    now = [1_000.0]
    policy = RejectionPolicy(attempts=2, delay=1.0, max_delay=4.0)
    ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0], rejections=policy)
    ordinary = Intent("least/1", "Probe", "atLeast", (1, 5))
    waits = []
    for block in range(6):
        # Each try answers a later event: the journal keeps the latest one it answered.
        persistent = Intent(
            "least/2", "Probe", "atLeast", (1, 5), persistent=True, trigger_block=block
        )
        for intent in (ordinary, persistent):
            if ex.may_submit(intent):
                ex.submit(intent)
        entry = ex.journal.get("least/2")
        assert entry is not None
        waits.append(entry.retry_after - now[0])
        now[0] = entry.retry_after  # the backoff has passed
    assert ex.journal.get("least/1").attempts == 2  # type: ignore[union-attr]
    assert ex.journal.get("least/2").attempts == 6  # type: ignore[union-attr]
    assert ex.may_submit(persistent) and not ex.may_submit(ordinary)
    assert ex.journal.failures()["least/2"] == (
        "Probe.atLeast reverted: TooSmall(given=1, minimum=5)",
        5,
        6,
    )
    # By the executor's clock: waits of 1, 2, 4 s, then capped at 4 s.
    assert waits == [1, 2, 4, 4, 4, 4]
    assert client.nonce(ADDRESS) == 0


def test_a_rejection_waits_its_backoff_by_the_executors_clock_across_a_restart(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    """``retry_after`` is stamped by the clock the executor compares it with (a clock far from
    the wall clock here): the intent may go out again exactly its backoff later, and so it
    may for an executor restarted on the same journal."""
    now = [1_000.0]
    policy = RejectionPolicy(attempts=5, delay=2.0)

    def executor() -> TransactionExecutor:
        return make_executor(
            client, probe, tmp_path / "a.db", clock=lambda: now[0], rejections=policy
        )

    ex = executor()
    intent = Intent("least/1", "Probe", "atLeast", (1, 5))
    rejected = ex.submit(intent)
    assert rejected is not None and rejected.status == "rejected"
    assert rejected.retry_after == 1_002.0
    now[0] = 1_001.5
    assert not ex.may_submit(intent) and not executor().may_submit(intent)
    now[0] = 1_002.0
    assert ex.may_submit(intent) and executor().may_submit(intent)


def test_a_rejection_is_not_held_back_by_a_clock_set_back(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    """A ``retry_after`` further ahead than the longest backoff was stamped before the clock
    was set back (an hour here): the intent may go out again at once, not an hour later."""
    now = [10_000.0]
    policy = RejectionPolicy(attempts=5, delay=2.0, max_delay=64.0)
    ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0], rejections=policy)
    intent = Intent("least/1", "Probe", "atLeast", (1, 5))
    rejected = ex.submit(intent)
    assert rejected is not None and rejected.retry_after == 10_002.0
    now[0] = 10_002.0 - 64.0  # within the longest backoff of its retry: still waits
    assert not ex.may_submit(intent)
    now[0] = 10_001.0 - 3_600.0
    assert ex.may_submit(intent)
    assert client.nonce(ADDRESS) == 0


@pytest.mark.parametrize(
    ("function", "args", "reason"),
    [
        ("failWithString", (), "plain reason"),
        ("divide", (1, 0), "panic 0x12: division by zero"),
        ("atLeast", (0, 2), "TooSmall(given=0, minimum=2)"),
    ],
)
def test_revert_reasons_of_calls(
    client: ChainClient,
    probe: ContractInterface,
    tmp_path: Path,
    function: str,
    args: tuple[Any, ...],
    reason: str,
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    with pytest.raises(RevertedError) as caught:
        ex.call("Probe", function, args)
    assert caught.value.reason == reason


def test_revert_in_a_block_is_decoded_from_the_receipt(
    manual: ManualMining, tmp_path: Path
) -> None:
    # Without automine the agent's transaction passes estimation and waits in the mempool;
    # another one with a higher tip is mined before it in the same block and makes it revert.
    client, probe = manual.client, manual.probe
    ex = make_executor(client, probe, tmp_path / "a.db", DEV_KEYS[2])
    ex.submit(Intent("once/1", "Probe", "once", (1, "0x" + "22" * 32)))
    front = Account.from_key(DEV_KEYS[1])
    signed = front.sign_transaction(
        {
            "type": 2,
            "chainId": client.chain_id(),
            "nonce": client.nonce(front.address),
            "to": probe.address,
            "value": 0,
            "data": probe.encode_call("once", (1, "0x" + "11" * 32)),
            "gas": 200_000,
            "maxFeePerGas": 10**12,
            "maxPriorityFeePerGas": 10**11,
        }
    )
    client.send_raw(bytes(signed.raw_transaction))
    client.rpc.request("evm_mine", [])
    with pytest.raises(RevertedError, match=r"AlreadyDone\(id=1, by=0x70997970…"):
        ex.wait("once/1")
    entry = ex.journal.get("once/1")
    assert entry is not None and entry.status == "reverted" and entry.gas_used
    assert entry.nonce == 0 and client.nonce(ex.address, "latest") == 1


def test_insufficient_funds(client: ChainClient, probe: ContractInterface, tmp_path: Path) -> None:
    poor = Account.create()
    ex = make_executor(client, probe, tmp_path / "a.db", poor.key.hex())
    with pytest.raises(InsufficientFundsError, match=poor.address):
        ex.submit(Intent("poke/1", "Probe", "poke", (1, "x"), value=1), strict=True)
    entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "x"), value=1))
    assert entry is not None and entry.status == "rejected"
    assert poor.address in (entry.error or "") and entry.nonce is None


def _child(
    anvil: Anvil, probe: ContractInterface, tmp_path: Path, failpoint: str, intent: str = "poke/9"
) -> int:
    abi_file = tmp_path / "probe.abi.json"
    abi_file.write_text(json.dumps(probe.abi))
    env = dict(os.environ, VERITRAIN_FAILPOINTS=failpoint, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.agents.executor_child",
            anvil.url,
            probe.address,
            str(abi_file),
            str(tmp_path / "a.db"),
            KEY,
            intent,
            "9",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    return done.returncode


def test_crash_after_signing_rebroadcasts_the_same_bytes(
    anvil: Anvil, client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    assert _child(anvil, probe, tmp_path, "tx-signed:poke/") == -9
    journal = TransactionJournal(open_database(tmp_path / "a.db"))
    entry = journal.get("poke/9")
    assert entry is not None and entry.status == "signed" and entry.tx_hash
    assert client.nonce(ADDRESS) == 0  # never broadcast
    ex = make_executor(client, probe, tmp_path / "a.db")
    ex.reconcile()
    mined = ex.wait("poke/9")
    assert mined.tx_hash == entry.tx_hash
    assert client.nonce(ADDRESS) == 1 and pokes(ex) == 1


def test_crash_after_broadcast_finds_the_transaction_mined(
    anvil: Anvil, client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    assert _child(anvil, probe, tmp_path, "tx-sent:poke/") == -9
    ex = make_executor(client, probe, tmp_path / "a.db")
    assert ex.submit(Intent("poke/9", "Probe", "poke", (9, "again"))) is None
    finished = ex.reconcile()
    assert [e.intent for e in finished] == ["poke/9"] and finished[0].status == "mined"
    assert client.nonce(ADDRESS) == 1 and pokes(ex) == 1


def test_nonce_taken_by_another_sender_of_the_key_is_dropped(
    anvil: Anvil, client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    assert _child(anvil, probe, tmp_path, "tx-signed:poke/") == -9
    # Someone else uses the key (nonce 0) before the agent comes back.
    other = make_executor(client, probe, tmp_path / "other.db")
    other.send_and_wait(Intent("elsewhere", "Probe", "poke", (1, "other")))
    now = [1_000.0]
    ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0])
    # Judged dropped only once the account's nonce has passed it for DropPolicy.grace seconds
    # with no receipt of it: a node of the endpoint may not have seen it yet.
    for step in (0.0, 30.0, DropPolicy().grace - 30.0 - 0.5):
        now[0] += step
        assert ex.reconcile() == []
        assert ex.journal.get("poke/9").status == "sent"  # type: ignore[union-attr]
    now[0] += 0.5
    assert [e.intent for e in ex.reconcile()] == ["poke/9"]
    entry = ex.journal.get("poke/9")
    assert entry is not None and entry.status == "dropped"
    assert "nonce 0 used by another transaction" in (entry.error or "")
    assert pokes(ex) == 1
    # The next intent gets a fresh nonce from the chain.
    nxt = ex.send_and_wait(Intent("poke/10", "Probe", "poke", (10, "next")))
    assert nxt.nonce == 1


def test_lost_mempool_is_rebroadcast_after_a_node_restart(
    probe_artifact: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "anvil-state.json"
    node = start_anvil(state_path=state, extra_args=["--no-mining"])
    try:
        client = ChainClient(node.url, retry=RetryPolicy(attempts=2, initial_delay=0.05))
        probe = _probe_then_manual_mining(client, probe_artifact)
        ex = make_executor(client, probe, tmp_path / "a.db")
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "pending")))
        assert sent is not None and sent.status == "sent"
        node.stop()
        with pytest.raises(RpcUnavailableError):
            ex.reconcile()
        node = start_anvil(port=node.port, state_path=state)  # automine again, mempool empty
        assert not client.transaction_known(sent.tx_hash or "")
        ex.reconcile()
        mined = ex.wait("poke/1")
        assert mined.tx_hash == sent.tx_hash
        assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1
    finally:
        node.stop()


def test_a_transaction_reorged_away_is_sent_again(
    client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    ex = make_executor(client, probe, tmp_path / "a.db")
    snapshot = client.rpc.request("evm_snapshot", [])
    mined = ex.send_and_wait(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert pokes(ex) == 1
    client.rpc.request("evm_revert", [snapshot])  # the block holding it is gone
    assert pokes(ex) == 0 and client.receipt(mined.tx_hash or "") is None
    ex.reconcile(recheck_from=0)
    again = ex.wait("poke/1")
    assert again.tx_hash == mined.tx_hash  # the same signed bytes, mined anew
    assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1


class LostAnswerRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that loses the answer to the first transaction it relays (HTTP
    502 once the node has mined it: the client sends it again) and hides each transaction's
    receipt for ``lag`` seconds after it was mined, as anvil does for a moment after it raised
    the sender's nonce, longer on a loaded machine."""

    def __init__(
        self, upstream: str, lag: float, refusal: str | None = None, behind: bool = False
    ) -> None:
        super().__init__(upstream, lag)
        self.refusal = refusal  # the message of every refused send, where given
        # During the lag, a mined transaction read as pending (a node of the endpoint behind
        # the one that refused it).
        self.behind = behind
        self.lost = 0

    def relay_reply(
        self, method: str, request: dict[str, Any], reply: dict[str, Any]
    ) -> dict[str, Any] | None:
        pending = method == "eth_getTransactionByHash" and self.behind and reply.get("result")
        if pending and self.hidden(str(request["params"][0])):
            reply["result"].update(blockHash=None, blockNumber=None, transactionIndex=None)
        if method == "eth_sendRawTransaction" and "error" in reply and self.refusal is not None:
            reply["error"]["message"] = self.refusal
        if method == "eth_sendRawTransaction" and "result" in reply and self.lost == 0:
            self.lost += 1
            return None
        return reply


@pytest.mark.parametrize("behind", [False, True])
def test_a_transaction_mined_before_its_receipt_is_readable_is_not_dropped(
    anvil: Anvil, probe: ContractInterface, tmp_path: Path, behind: bool
) -> None:
    """The node mined the transaction but its answer was lost; sent again, it is refused
    (nonce too low) while its receipt cannot be read yet (``behind``: and the transaction
    reads as pending): it is the transaction that took the nonce, followed to its receipt,
    neither dropped nor sent under a new nonce."""
    # The receipt stays hidden until the test shows it (an hour's lag, then none), so that
    # no pause of a loaded machine can let it show before the checks of the hidden state.
    with LostAnswerRelay(anvil.url, lag=3600.0, behind=behind) as relay:
        client = ChainClient(relay.url, retry=RetryPolicy(attempts=3, initial_delay=0.05))
        ex = make_executor(client, probe, tmp_path / "a.db")
        entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "once")))
        assert relay.lost == 1
        assert entry is not None and entry.status == "sent", entry
        assert ex.reconcile() == []
        assert ex.journal.get("poke/1").status == "sent"  # type: ignore[union-attr]
        relay.lag = 0.0
        mined = ex.wait("poke/1", timeout=30)
        assert mined.status == "mined" and mined.nonce == 0 and mined.tx_hash == entry.tx_hash
        assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1


@pytest.mark.parametrize(
    "refusal", ["OldNonce, Current nonce: 1, nonce of rejected tx: 0", "AlreadyKnown"]
)
def test_a_transaction_the_node_holds_is_followed_whatever_its_refusal_says(
    anvil: Anvil, probe: ContractInterface, tmp_path: Path, refusal: str
) -> None:
    """A node that words its refusal of a transaction it already has in its own way (these
    are another client's): the transaction it holds is followed, its nonce not given to
    another transaction of the same intent."""
    with LostAnswerRelay(anvil.url, lag=3.0, refusal=refusal) as relay:
        client = ChainClient(relay.url, retry=RetryPolicy(attempts=3, initial_delay=0.05))
        ex = make_executor(client, probe, tmp_path / "a.db")
        entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "once")))
        assert relay.lost == 1
        assert entry is not None and entry.status == "sent", entry
        assert ex.submit(Intent("poke/1", "Probe", "poke", (1, "once"))) is None
        mined = ex.wait("poke/1", timeout=30)
        assert mined.status == "mined" and mined.nonce == 0
        assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1


class RefusingRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that refuses the sends of the raw transactions in ``refused``
    (as a node with a full pool words it)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.refused: set[str] = set()
        self.refusals = 0

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_sendRawTransaction" and request["params"][0] in self.refused:
            self.refusals += 1
            error = {"code": -32000, "message": "transaction underpriced"}
            return {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return self.forward(request)


def test_a_forgotten_transaction_refused_below_a_later_nonce_keeps_its_nonce(
    manual: ManualMining, tmp_path: Path
) -> None:
    """Two transactions sent (nonces 0 and 1); the node forgets the first (its pool lost or
    evicted it) and refuses it when it is sent again: rejected, its nonce would stay unused
    and the second, and every later one, would wait behind it for ever (the first's intent
    signed anew under nonce 2). It is kept and sent again, as it is, until a node takes it."""
    direct, probe = manual.client, manual.probe
    with RefusingRelay(manual.node.url) as relay:
        ex = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db")
        first = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        second = ex.submit(Intent("poke/2", "Probe", "poke", (2, "b")))
        assert first is not None and second is not None
        assert (first.nonce, second.nonce) == (0, 1) and first.raw_tx is not None
        direct.rpc.request("anvil_dropTransaction", [first.tx_hash])
        relay.refused.add("0x" + first.raw_tx.hex())
        ex.reconcile()
        assert relay.refusals == 1
        ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))  # a decision asking again
        relay.refused.clear()  # the pool has room again
        ex.reconcile()
        direct.rpc.request("evm_mine", [])
        ex.wait("poke/1", timeout=20)
        ex.wait("poke/2", timeout=20)
        rows = {e.intent: (e.status, e.nonce, e.tx_hash) for e in ex.journal.all()}
        assert rows["poke/1"] == ("mined", 0, first.tx_hash), rows
        assert rows["poke/2"] == ("mined", 1, second.tx_hash), rows
        assert pokes(ex) == 2 and direct.nonce(ADDRESS) == 2


def test_a_refused_transaction_gives_its_nonce_back_in_the_commit_that_rejects_it(
    manual: ManualMining, tmp_path: Path
) -> None:
    """A forgotten transaction holding the last nonce handed out, refused when sent again, is
    journaled rejected and its nonce given back in one commit: a write that fails between
    (as a kill would stop it; here the database refuses the rejection) leaves the row as it
    was, its nonce held, never a row still signed whose nonce the next intent takes too."""
    direct, probe = manual.client, manual.probe
    with RefusingRelay(manual.node.url) as relay:
        ex = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db")
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert sent is not None and sent.nonce == 0 and sent.raw_tx is not None
        direct.rpc.request("anvil_dropTransaction", [sent.tx_hash])
        relay.refused.add("0x" + sent.raw_tx.hex())
        ex.journal.conn.execute(
            "CREATE TRIGGER killed BEFORE UPDATE OF status ON tx_journal "
            "WHEN NEW.status = 'rejected' BEGIN SELECT RAISE(ABORT, 'killed'); END"
        )
        with pytest.raises(sqlite3.DatabaseError, match="killed"):
            ex.reconcile()
        assert relay.refusals == 1
        assert ex.journal.get("poke/1").status == "sent"  # type: ignore[union-attr]
        assert ex.journal.next_nonce(ADDRESS) == 1  # still held by the row
        ex.journal.conn.execute("DROP TRIGGER killed")
        again = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db")
        assert [e.status for e in again.reconcile()] == ["rejected"]
        assert again.journal.next_nonce(ADDRESS) == 0
        relay.refused.clear()
        retry = again.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert retry is not None and retry.nonce == 0
        direct.rpc.request("evm_mine", [])
        assert again.wait("poke/1", timeout=20).status == "mined"
        assert pokes(again) == 1 and direct.nonce(ADDRESS) == 1


class OtherNodeRelay(LostAnswerRelay):
    """An endpoint of several nodes: the first transaction's answer is lost (the client sends
    it again, and the node that mined it refuses it: nonce too low) while the node that
    answers reads is one that has not seen the block holding it. While ``hide`` is set, the
    transactions it relayed have no receipt and are unknown; where ``latest_nonce`` is given,
    it is the account's mined nonce as answered (a node behind the block), else the true one
    (a node with the block that has not indexed its transactions yet)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, lag=0.0)
        self.hide = True
        self.latest_nonce: int | None = None

    def relay_reply(
        self, method: str, request: dict[str, Any], reply: dict[str, Any]
    ) -> dict[str, Any] | None:
        lookups = ("eth_getTransactionReceipt", "eth_getTransactionByHash")
        if self.hide and method in lookups and str(request["params"][0]).lower() in self.mined:
            reply["result"] = None
        count = method == "eth_getTransactionCount" and request["params"][1] == "latest"
        if self.hide and count and self.latest_nonce is not None:
            reply["result"] = hex(self.latest_nonce)
        return super().relay_reply(method, request, reply)


@pytest.mark.parametrize("behind", [True, False])
def test_a_transaction_the_answering_node_has_not_seen_is_not_dropped(
    anvil: Anvil, probe: ContractInterface, tmp_path: Path, behind: bool
) -> None:
    """Mined by one node of the endpoint, refused when sent again (its answer was lost), and
    neither its receipt nor the transaction known to the node asked next: followed as sent,
    never under a new nonce. Behind the block (the account's nonce not passed), for as long as
    it takes; with the block but no trace of it, for DropPolicy.grace seconds of checks."""
    now = [1_000.0]
    with OtherNodeRelay(anvil.url) as relay:
        relay.latest_nonce = 0 if behind else None
        client = ChainClient(relay.url, retry=RetryPolicy(attempts=3, initial_delay=0.05))
        ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0])
        entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "once")))
        assert relay.lost == 1
        assert entry is not None and entry.status == "sent", entry
        step = 10 * DropPolicy().grace if behind else (DropPolicy().grace - 1.0) / 3
        for _ in range(3):
            now[0] += step
            assert ex.reconcile() == []
            assert ex.journal.get("poke/1").status == "sent"  # type: ignore[union-attr]
        assert ex.submit(Intent("poke/1", "Probe", "poke", (1, "once"))) is None
        relay.hide = False
        assert [e.status for e in ex.reconcile()] == ["mined"]
        mined = ex.journal.get("poke/1")
        assert mined is not None and mined.nonce == 0 and mined.tx_hash == entry.tx_hash
        assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1


class PhantomRelay(ReceiptLagRelay):
    """A broken endpoint: it answers the first transaction sent through it with its hash but
    loses it, and calls it pending whenever asked."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, lag=0.0)
        self.phantom: str | None = None

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        method, params = request["method"], request.get("params") or []
        if method == "eth_sendRawTransaction" and self.phantom is None:
            self.phantom = "0x" + keccak(hexstr=str(params[0])).hex()
            return {"jsonrpc": "2.0", "id": request["id"], "result": self.phantom}
        if method == "eth_getTransactionByHash" and str(params[0]).lower() == self.phantom:
            pending = {"hash": self.phantom, "blockHash": None, "blockNumber": None}
            return {"jsonrpc": "2.0", "id": request["id"], "result": pending}
        return super().answer(request)


@pytest.mark.parametrize("restarts", [False, True])
@pytest.mark.parametrize("taken", [False, True])
def test_a_transaction_the_node_calls_pending_for_ever_is_not_waited_for_ever(
    anvil: Anvil,
    client: ChainClient,
    probe: ContractInterface,
    tmp_path: Path,
    taken: bool,
    restarts: bool,
) -> None:
    """A node that keeps calling a lost transaction pending is believed for DropPolicy.grace
    seconds after it was sent; then the same bytes go out again (mined: one nonce, one poke)
    and, if another transaction of the account took its nonce meanwhile (``taken``), it is
    judged dropped DropPolicy.grace seconds later. Both times count from journaled ones (the
    send, the nonce seen passed): an agent restarted before every look (``restarts``) waits
    no longer."""
    now = [1_000.0]
    grace = DropPolicy().grace
    with PhantomRelay(anvil.url) as relay:
        through = ChainClient(relay.url, retry=RetryPolicy(attempts=3, initial_delay=0.05))
        ex = make_executor(through, probe, tmp_path / "a.db", clock=lambda: now[0])
        entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "once")))
        assert entry is not None and entry.status == "sent" and entry.tx_hash == relay.phantom
        if taken:
            other = make_executor(client, probe, tmp_path / "other.db")
            other.send_and_wait(Intent("elsewhere", "Probe", "poke", (2, "other")))

        def look() -> list[JournalEntry]:
            if not restarts:
                return ex.reconcile()
            return make_executor(
                through, probe, tmp_path / "a.db", clock=lambda: now[0]
            ).reconcile()

        for _ in range(3):
            now[0] += (grace - 1.0) / 3
            assert look() == []
        now[0] += 1.0
        if not taken:
            assert [e.status for e in look()] == ["mined"]
            assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1
            return
        assert look() == []  # the nonce passed it: DropPolicy.grace from now
        now[0] += grace
        assert [e.status for e in look()] == ["dropped"]
        assert pokes(ex) == 1 and client.nonce(ADDRESS) == 1


GWEI = 10**9


def _raise_base_fee(client: ChainClient, gwei: int) -> None:
    """The next block's base fee set to ``gwei`` (no block mined: anvil would drop from its
    pool the transactions priced below it, where geth keeps them waiting)."""
    client.rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(gwei * GWEI)])
    assert client.next_base_fee() == gwei * GWEI


def test_a_transaction_priced_below_a_risen_base_fee_is_replaced_and_mined_once(
    manual: ManualMining, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two transactions sent; the base fee rises above what they offer: they wait for ever,
    each nonce behind the one before. FeePolicy.bump_after seconds after they were sent, each
    is signed again at its nonce with fees raised by more than 10 % and above the base fee,
    journaled (the first kept as replaced), broadcast, and mined once."""
    caplog.set_level(logging.WARNING, logger="agents.chain.executor")
    client, probe = manual.client, manual.probe
    now = [1_000.0]
    ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0])
    replacements: list[str] = []
    ex.observer = ExecutorObserver(replaced=lambda e: replacements.append(e.intent))
    first = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    second = ex.submit(Intent("poke/2", "Probe", "poke", (2, "b")))
    assert first is not None and second is not None and first.raw_tx is not None
    _raise_base_fee(client, 50)
    bump_after = FeePolicy().bump_after
    assert bump_after is not None
    now[0] += bump_after - 1.0
    assert ex.reconcile() == [] and ex.journal.replaced("poke/1") == []
    now[0] += 1.0
    assert ex.reconcile() == []
    rows = {key: ex.journal.get(key) for key in ("poke/1", "poke/2")}
    base = client.next_base_fee()
    assert base is not None and base > 40 * GWEI
    for key, sent in (("poke/1", first), ("poke/2", second)):
        row = rows[key]
        assert row is not None and sent is not None and sent.raw_tx is not None
        assert row.status == "sent" and row.nonce == sent.nonce and row.raw_tx is not None
        assert [r.tx_hash for r in ex.journal.replaced(key)] == [sent.tx_hash]
        old, new = offer_of(sent.raw_tx), offer_of(row.raw_tx)
        assert new.max_fee >= max(bumped(old.max_fee), 2 * base) and new.max_fee > base
        assert new.tip >= bumped(old.tip) and new.gas == old.gas
        assert client.transaction_known(row.tx_hash or "")
    assert "fee bump of Probe.poke(id=1, note=a)" in caplog.text
    assert replacements == ["poke/1", "poke/2"]
    # Not replaced again before FeePolicy.bump_after has passed since.
    assert ex.reconcile() == [] and len(ex.journal.replaced("poke/1")) == 1
    client.rpc.request("evm_mine", [])
    assert [e.status for e in ex.reconcile()] == ["mined", "mined"]
    for key, sent in (("poke/1", first), ("poke/2", second)):
        row = ex.journal.get(key)
        bumped_row = rows[key]
        assert row is not None and sent is not None and bumped_row is not None
        assert row.tx_hash == bumped_row.tx_hash
        assert client.receipt(sent.tx_hash or "") is None
    assert pokes(ex) == 2 and client.nonce(ADDRESS, "latest") == 2


def test_a_transaction_priced_below_the_base_fee_is_outbid_after_the_clock_is_set_back(
    manual: ManualMining, tmp_path: Path
) -> None:
    """A send stamped ahead of the clock (set back an hour after it) does not hold the fee
    bump back by the hour: the transaction is outbid at its nonce at the next look, once."""
    client, probe = manual.client, manual.probe
    now = [10_000.0]
    ex = make_executor(client, probe, tmp_path / "a.db", clock=lambda: now[0])
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.status == "sent"
    _raise_base_fee(client, 50)
    now[0] -= 3_600.0
    assert ex.reconcile() == []
    assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [sent.tx_hash]
    assert ex.reconcile() == [] and len(ex.journal.replaced("poke/1")) == 1
    client.rpc.request("evm_mine", [])
    assert [e.status for e in ex.reconcile()] == ["mined"]
    assert pokes(ex) == 1 and client.nonce(ADDRESS, "latest") == 1


@pytest.mark.parametrize("old_mined", [False, True])
def test_a_fee_bump_killed_before_its_broadcast_sends_no_other_transaction(
    manual: ManualMining, tmp_path: Path, old_mined: bool
) -> None:
    """Killed after the replacement was journaled, before it was broadcast: the restart
    broadcasts the journaled replacement (the same bytes, no third transaction), or, if the
    transaction it replaces was mined meanwhile (``old_mined``), records that one mined and
    sends nothing. One nonce, one poke."""
    client, probe = manual.client, manual.probe
    ex = make_executor(client, probe, tmp_path / "a.db")
    sent = ex.submit(Intent("poke/9", "Probe", "poke", (9, "x")))
    assert sent is not None and sent.status == "sent"
    _raise_base_fee(client, 50)
    assert _child(manual.node, probe, tmp_path, "tx-replaced:poke/", intent="reconcile") == -9
    journal = TransactionJournal(open_database(tmp_path / "a.db"))
    row = journal.get("poke/9")
    assert row is not None and row.status == "signed" and row.tx_hash != sent.tx_hash
    assert [r.tx_hash for r in journal.replaced("poke/9")] == [sent.tx_hash]
    assert not client.transaction_known(row.tx_hash or "")  # never broadcast
    assert client.transaction_known(sent.tx_hash or "")
    if old_mined:
        client.rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(1)])
        client.rpc.request("evm_mine", [])
        assert client.receipt(sent.tx_hash or "") is not None
    again = make_executor(client, probe, tmp_path / "a.db")
    finished = again.reconcile()
    if not old_mined:
        assert finished == [] and client.transaction_known(row.tx_hash or "")
        client.rpc.request("evm_mine", [])
        finished = again.reconcile()
    assert [e.status for e in finished] == ["mined"]
    mined = again.journal.get("poke/9")
    assert mined is not None
    expected = sent.tx_hash if old_mined else row.tx_hash
    assert mined.tx_hash == expected
    assert {r.tx_hash for r in again.journal.replaced("poke/9")} == (
        {row.tx_hash} if old_mined else {sent.tx_hash}
    )
    assert pokes(again) == 1 and client.nonce(ADDRESS, "latest") == 1


def _capped(manual: ManualMining, db: Path, now: list[float], cap: int) -> TransactionExecutor:
    """An executor on ``manual``'s node, on the clock ``now``, whose max fees never pass
    ``cap`` (FeePolicy.max_fee_per_gas: chain.max_fee_gwei)."""
    fees = FeePolicy(max_fee_per_gas=cap)
    return make_executor(manual.client, manual.probe, db, clock=lambda: now[0], fees=fees)


def test_a_fee_bump_never_bids_above_the_cap(
    manual: ManualMining, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With FeePolicy.max_fee_per_gas (chain.max_fee_gwei) below the risen base fee, the bump
    is refused, said once at error level, and the transaction is kept as it is; once the base
    fee is under the cap again, the replacement bids the cap, not above."""
    caplog.set_level(logging.WARNING, logger="agents.chain.executor")
    client = manual.client
    now = [1_000.0]
    cap = 10 * GWEI
    ex = _capped(manual, tmp_path / "a.db", now, cap)
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.raw_tx is not None
    _raise_base_fee(client, 50)
    for _ in range(2):
        now[0] += 60.0
        assert ex.reconcile() == []
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["ERROR"], caplog.text
    assert "chain.max_fee_gwei 10.000 gwei" in refusals[0].getMessage()
    row = ex.journal.get("poke/1")
    assert row is not None and row.tx_hash == sent.tx_hash and row.status == "sent"
    assert ex.journal.replaced("poke/1") == []
    _raise_base_fee(client, 6)  # under the cap, above what the transaction offers
    now[0] += 60.0
    ex.reconcile()
    row = ex.journal.get("poke/1")
    assert row is not None and row.raw_tx is not None and row.tx_hash != sent.tx_hash
    assert offer_of(row.raw_tx).max_fee == cap
    client.rpc.request("evm_mine", [])
    assert [e.status for e in ex.reconcile()] == ["mined"]
    assert pokes(ex) == 1 and client.nonce(ADDRESS, "latest") == 1


class RefuseNextRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that refuses the next ``refuse`` sends as a node refuses a
    replacement it finds underpriced."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.refuse = 0
        self.message = "replacement transaction underpriced"

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_sendRawTransaction" and self.refuse > 0:
            self.refuse -= 1
            error = {"code": -32000, "message": self.message}
            return {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return self.forward(request)


def test_a_refused_replacement_keeps_its_nonce_and_is_outbid_in_turn(
    manual: ManualMining, tmp_path: Path
) -> None:
    """A replacement the node refuses, at the last nonce handed out, is neither rejected nor
    its nonce given back (the transaction it replaces is still pending and may be mined): it
    is sent again, and after FeePolicy.bump_after replaced in turn with fees raised above its
    own; one of the three is mined, once."""
    direct, probe = manual.client, manual.probe
    with RefuseNextRelay(manual.node.url) as relay:
        now = [1_000.0]
        ex = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db", clock=lambda: now[0])
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert sent is not None and sent.status == "sent" and sent.nonce == 0
        _raise_base_fee(direct, 50)
        relay.refuse = 2
        now[0] += 30.0
        assert ex.reconcile() == []  # replaced; the replacement refused
        assert ex.reconcile() == []  # sent again: refused again
        assert relay.refuse == 0
        first = ex.journal.get("poke/1")
        assert first is not None and first.status == "signed" and first.raw_tx is not None
        assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [sent.tx_hash]
        assert ex.journal.next_nonce(ADDRESS) == 1 and direct.transaction_known(sent.tx_hash or "")
        now[0] += 30.0
        assert ex.reconcile() == []
        second = ex.journal.get("poke/1")
        assert second is not None and second.status == "sent" and second.raw_tx is not None
        assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [
            sent.tx_hash,
            first.tx_hash,
        ]
        assert offer_of(second.raw_tx).max_fee >= bumped(offer_of(first.raw_tx).max_fee)
        direct.rpc.request("evm_mine", [])
        assert [e.status for e in ex.reconcile()] == ["mined"]
        mined = ex.journal.get("poke/1")
        assert mined is not None and mined.tx_hash == second.tx_hash and mined.nonce == 0
        assert pokes(ex) == 1 and direct.nonce(ADDRESS, "latest") == 1


class UnreachableSendRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that answers the next ``unreachable`` sends with HTTP 502 (the
    node not reached: nothing broadcast)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.unreachable = 0

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_sendRawTransaction" and self.unreachable > 0:
            self.unreachable -= 1
            return None
        return self.forward(request)


def _first_send_lost(
    relay: UnreachableSendRelay, manual: ManualMining, db: Path, now: list[float]
) -> tuple[ChainClient, TransactionExecutor, JournalEntry]:
    """An executor through ``relay`` whose first transaction (``poke/1``, nonce 0) is
    journaled but never broadcast (the node out of reach at its send): the client through the
    relay, the executor and that row (``signed``)."""
    through = ChainClient(relay.url, retry=RetryPolicy(attempts=2, initial_delay=0.01))
    ex = make_executor(through, manual.probe, db, clock=lambda: now[0])
    relay.unreachable = 2
    with pytest.raises(RpcUnavailableError):
        ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert relay.unreachable == 0
    first = ex.journal.get("poke/1")
    assert first is not None and first.status == "signed" and first.nonce == 0
    return through, ex, first


def test_a_transaction_never_broadcast_and_refused_below_a_later_nonce_is_outbid(
    manual: ManualMining, tmp_path: Path
) -> None:
    """A transaction journaled but never broadcast (the node out of reach at its send) while a
    later one of the key was sent (nonce 1); when it is broadcast at last, the base fee has
    outgrown it and the node refuses it. It keeps its nonce (a later one was handed out), and
    FeePolicy.bump_after seconds later it is outbid like any transaction priced below the base
    fee: both are mined, the later one no longer waiting behind a nonce that never fills."""
    direct = manual.client
    with UnreachableSendRelay(manual.node.url) as relay:
        now = [1_000.0]
        _, ex, first = _first_send_lost(relay, manual, tmp_path / "a.db", now)
        second = ex.submit(Intent("poke/2", "Probe", "poke", (2, "b")))
        assert second is not None and second.status == "sent" and second.nonce == 1
        _raise_base_fee(direct, 50)
        assert ex.reconcile() == []  # refused: max fee below the base fee; nonce kept
        assert not direct.transaction_known(first.tx_hash or "")
        bump_after = FeePolicy().bump_after
        assert bump_after is not None
        for _ in range(2):
            now[0] += bump_after
            assert ex.reconcile() == []
        row = ex.journal.get("poke/1")
        assert row is not None and row.nonce == 0 and row.tx_hash != first.tx_hash
        assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [first.tx_hash]
        assert row.status == "sent" and direct.transaction_known(row.tx_hash or "")
        direct.rpc.request("evm_mine", [])
        assert sorted(e.status for e in ex.reconcile()) == ["mined", "mined"]
        assert pokes(ex) == 2 and direct.nonce(ADDRESS, "latest") == 2


def test_the_wait_before_a_refused_transaction_is_outbid_survives_restarts(
    manual: ManualMining, tmp_path: Path
) -> None:
    """When a node first refused a transaction that keeps its nonce is journaled: an agent in a
    crash loop, restarted more often than FeePolicy.bump_after, still outbids it
    FeePolicy.bump_after after that first refusal (before, each restart started the wait
    again at its own first refusal: never outbid, and the key's later nonces waited for ever
    behind it)."""
    direct, probe = manual.client, manual.probe
    with UnreachableSendRelay(manual.node.url) as relay:
        now = [1_000.0]
        through, ex, first = _first_send_lost(relay, manual, tmp_path / "a.db", now)
        assert ex.submit(Intent("poke/2", "Probe", "poke", (2, "b"))) is not None
        _raise_base_fee(direct, 50)
        assert ex.reconcile() == []  # refused: its nonce kept (the first refusal)
        bump_after = FeePolicy().bump_after
        assert bump_after is not None
        for _ in range(2):
            now[0] += bump_after / 2
            restarted = make_executor(through, probe, tmp_path / "a.db", clock=lambda: now[0])
            assert restarted.reconcile() == []
        row = restarted.journal.get("poke/1")
        assert row is not None and row.nonce == 0 and row.status == "sent"
        assert [r.tx_hash for r in restarted.journal.replaced("poke/1")] == [first.tx_hash]
        direct.rpc.request("evm_mine", [])
        assert sorted(e.status for e in restarted.reconcile()) == ["mined", "mined"]
        assert pokes(restarted) == 2 and direct.nonce(ADDRESS, "latest") == 2


class LyingTipRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that answers ``eth_maxPriorityFeePerGas`` with ``tip`` once it is
    set (a lying node's suggested tip); everything else is forwarded."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.tip: int | None = None

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_maxPriorityFeePerGas" and self.tip is not None:
            return {"jsonrpc": "2.0", "id": request["id"], "result": hex(self.tip)}
        return self.forward(request)


def test_a_lying_tip_raises_fee_bumps_no_further_than_the_bump_limit(
    manual: ManualMining, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After the first send the node suggests a tip of 1,000 gwei, then a base fee far above
    what the transaction offers: the suggestion is not taken (each replacement raises the tip
    by the least step a node accepts, so the max fee keeps following the base fee), no
    replacement tips more than FeePolicy.bump_limit × the first tip, the bump past it is
    refused (said once at error level, with the limit, also after more looks), and the
    transaction mined pays at most the base fee plus that (before, the 1,000 gwei tip was
    paid: no cap by default; then the first bump took the tip to the limit and no later bump
    could follow the base fee)."""
    caplog.set_level(logging.WARNING, logger="agents.chain.executor")
    direct, probe = manual.client, manual.probe
    limit = 10  # FeePolicy's default bump_limit
    with LyingTipRelay(manual.node.url) as relay:
        now = [1_000.0]
        ex = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db", clock=lambda: now[0])
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert sent is not None and sent.status == "sent" and sent.raw_tx is not None
        first_tip = offer_of(sent.raw_tx).tip
        relay.tip = 1_000 * GWEI
        for base in (5, 50, 500, *[500] * 30):
            _raise_base_fee(direct, base)
            now[0] += 30.0
            assert ex.reconcile() == []
        row = ex.journal.get("poke/1")
        assert row is not None and row.raw_tx is not None
        tips = [offer_of(r.raw_tx).tip for r in ex.journal.replaced("poke/1")]
        tips.append(offer_of(row.raw_tx).tip)
        assert tips[0] == first_tip and len(tips) > 20
        assert all(t == bumped(p) for p, t in itertools.pairwise(tips)), tips
        assert tips[-1] <= limit * first_tip < bumped(tips[-1])
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert [r.levelname for r in refusals] == ["ERROR"], caplog.text
        assert f"bump limit of {limit:g} × its first transaction's tip" in refusals[0].getMessage()
        # The base fee falls back (the next block's, 1 gwei): it is mined as it is.
        _raise_base_fee(direct, 1)
        direct.rpc.request("evm_mine", [])
        assert [e.status for e in ex.reconcile()] == ["mined"]
        mined = ex.journal.get("poke/1")
        assert mined is not None and mined.tx_hash == row.tx_hash
        receipt = direct.rpc.request("eth_getTransactionReceipt", [mined.tx_hash])
        assert int(receipt["effectiveGasPrice"], 16) <= GWEI + limit * first_tip
        assert pokes(ex) == 1


def test_a_zero_first_tip_still_leaves_room_for_fee_bumps(
    manual: ManualMining, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction first sent with no tip (``priority_fee=0``, as some chains take) is
    outbid each time the base fee rises above what it offers, a dozen times over: its first
    tip counts as 1 gwei for the bump limit (counted as 1 wei, the eleventh bump's tip of 12
    wei was refused)."""
    caplog.set_level(logging.WARNING, logger="agents.chain.executor")
    now = [1_000.0]
    fees = FeePolicy(priority_fee=0)
    ex = make_executor(
        manual.client, manual.probe, tmp_path / "a.db", clock=lambda: now[0], fees=fees
    )
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.raw_tx is not None and offer_of(sent.raw_tx).tip == 0
    for rise in range(1, 13):  # each past the last bump's max fee (2 × its base fee + tip)
        _raise_base_fee(manual.client, 3**rise)
        now[0] += 30.0
        assert ex.reconcile() == []
    assert len(ex.journal.replaced("poke/1")) == 12
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [], caplog.text
    manual.client.rpc.request("evm_mine", [])
    assert [e.status for e in ex.reconcile()] == ["mined"]
    assert pokes(ex) == 1


def test_a_transaction_at_the_cap_above_the_base_fee_is_not_called_stuck(
    manual: ManualMining, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction signed at the cap (chain.max_fee_gwei) whose tip the risen base fee eats
    into, yet still above it: no replacement under the cap can offer more, and it can be mined
    as it is; no error says it waits for the base fee to fall, and it is mined as it is."""
    caplog.set_level(logging.INFO, logger="agents.chain.executor")
    client = manual.client
    now = [1_000.0]
    cap = 5 * GWEI // 2
    ex = _capped(manual, tmp_path / "a.db", now, cap)
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.raw_tx is not None
    assert offer_of(sent.raw_tx).max_fee == cap
    _raise_base_fee(client, 2)  # under the cap; the base fee plus the tip is above it
    now[0] += 60.0
    assert ex.reconcile() == []
    assert [r.levelname for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "not made" in caplog.text
    row = ex.journal.get("poke/1")
    assert row is not None and row.tx_hash == sent.tx_hash and row.status == "sent"
    client.rpc.request("evm_mine", [])
    assert [e.status for e in ex.reconcile()] == ["mined"]
    assert pokes(ex) == 1


@pytest.mark.parametrize("restarts", [False, True])
def test_a_replacement_refused_for_want_of_funds_is_not_outbid_again_and_again(
    manual: ManualMining, tmp_path: Path, restarts: bool
) -> None:
    """A replacement the node refuses for a reason no higher fee cures (the account cannot
    pay its gas at the raised max fee) is sent again as it is, not outbid every
    FeePolicy.bump_after: each bump would raise the tip by another 10 %, compounding for as
    long as the account stays short (and paid once the node takes one), and keep one more
    transaction to look up at every look. The node's words are journaled: an agent restarted
    before every look (``restarts``) does not outbid it either. Once the node takes it, it
    is mined once."""
    direct, probe = manual.client, manual.probe
    with RefuseNextRelay(manual.node.url) as relay:
        now = [1_000.0]
        through = ChainClient(relay.url)
        ex = make_executor(through, probe, tmp_path / "a.db", clock=lambda: now[0])
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert sent is not None and sent.status == "sent" and sent.raw_tx is not None
        _raise_base_fee(direct, 50)
        relay.message = "insufficient funds for gas * price + value"
        relay.refuse = 1_000
        for _ in range(6):
            now[0] += 30.0
            if restarts:
                ex = make_executor(through, probe, tmp_path / "a.db", clock=lambda: now[0])
            assert ex.reconcile() == []
        row = ex.journal.get("poke/1")
        assert row is not None and row.status == "signed" and row.raw_tx is not None
        assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [sent.tx_hash]
        assert offer_of(row.raw_tx).tip < bumped(bumped(offer_of(sent.raw_tx).tip))
        relay.refuse = 0  # the account topped up
        assert ex.reconcile() == []
        assert direct.transaction_known(row.tx_hash or "")
        direct.rpc.request("evm_mine", [])
        assert [e.status for e in ex.reconcile()] == ["mined"]
        mined = ex.journal.get("poke/1")
        assert mined is not None and mined.tx_hash == row.tx_hash
        assert pokes(ex) == 1 and direct.nonce(ADDRESS, "latest") == 1


class NoFeeHistoryRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that answers ``eth_feeHistory`` with HTTP 502, as a gateway that
    does not pass that method on may (every other request forwarded)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.asked = 0

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_feeHistory":
            self.asked += 1
            return None
        return self.forward(request)


def test_an_endpoint_without_fee_history_neither_stalls_the_executor_nor_stops_fee_bumps(
    manual: ManualMining, tmp_path: Path
) -> None:
    """An endpoint whose eth_feeHistory never answers (the rest does): a transaction pending
    FeePolicy.bump_after is judged by the latest block's base fee instead, replaced and mined;
    the executor's look at its transactions does not fail with the endpoint called unreachable
    (an agent would stop reading the chain and deciding for as long as one is pending), and
    eth_feeHistory is not asked again and again."""
    direct, probe = manual.client, manual.probe
    with NoFeeHistoryRelay(manual.node.url) as relay:
        now = [1_000.0]
        through = ChainClient(relay.url, retry=RetryPolicy(attempts=2, initial_delay=0.01))
        ex = make_executor(through, probe, tmp_path / "a.db", clock=lambda: now[0])
        sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
        assert sent is not None and sent.status == "sent" and sent.raw_tx is not None
        # A block at a base fee above what it offers (anvil leaves it out of that block
        # and drops it from its pool).
        _raise_base_fee(direct, 50)
        direct.rpc.request("evm_mine", [])
        assert direct.receipt(sent.tx_hash or "") is None
        now[0] += 30.0
        assert ex.reconcile() == []
        row = ex.journal.get("poke/1")
        assert row is not None and row.raw_tx is not None and row.tx_hash != sent.tx_hash
        assert offer_of(row.raw_tx).max_fee > 50 * GWEI
        assert direct.transaction_known(row.tx_hash or "")
        direct.rpc.request("evm_mine", [])
        assert [e.status for e in ex.reconcile()] == ["mined"]
        assert pokes(ex) == 1 and relay.asked <= 2


class GarbleRelay(ReceiptLagRelay):
    """Relay to ``upstream`` that answers the next ``garbled`` requests of ``method`` with a
    malformed result, as a broken gateway or a lying node may: a quantity that is not hex
    (in an object's ``number``/``blockNumber``), or the whole answer so for a send."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, 0.0)
        self.method = ""
        self.garbled = 0

    def relay_reply(
        self, method: str, request: dict[str, Any], reply: dict[str, Any]
    ) -> dict[str, Any] | None:
        if method != self.method or self.garbled <= 0:
            return reply
        self.garbled -= 1
        result = reply.get("result")
        if isinstance(result, dict):
            garbled: object = {**result, "number": "0xzz", "blockNumber": "0xzz"}
        else:
            garbled = "0xzz"
        return {"jsonrpc": "2.0", "id": request["id"], "result": garbled}


@pytest.fixture
def garble(anvil: Anvil) -> Iterator[tuple[GarbleRelay, ChainClient]]:
    with GarbleRelay(anvil.url) as relay:
        yield relay, ChainClient(relay.url, retry=RetryPolicy(attempts=2, initial_delay=0.0))


@pytest.mark.parametrize(
    "method",
    [
        "eth_estimateGas",
        "eth_getBalance",
        "eth_getBlockByNumber",
        "eth_maxPriorityFeePerGas",
        "eth_getTransactionCount",
        "eth_chainId",
    ],
)
def test_a_malformed_answer_before_signing_journals_nothing(
    client: ChainClient,
    probe: ContractInterface,
    tmp_path: Path,
    garble: tuple[GarbleRelay, ChainClient],
    method: str,
) -> None:
    """A malformed answer on every try of a request a send needs before it is journaled:
    MalformedAnswerError (the endpoint unusable, an agent's loop waits it out), no row, no
    nonce taken; the same intent goes out once the endpoint answers well again."""
    relay, through = garble
    ex = make_executor(through, probe, tmp_path / "a.db")
    relay.method, relay.garbled = method, 1_000
    with pytest.raises(MalformedAnswerError, match=f"answered {method} malformed"):
        ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert ex.journal.get("poke/1") is None and ex.journal.next_nonce(ADDRESS) == 0
    relay.garbled = 0
    entry = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert entry is not None and entry.status == "sent" and entry.nonce == 0
    assert [e.status for e in ex.reconcile()] == ["mined"]
    assert pokes(ex) == 1 and client.nonce(ADDRESS, "latest") == 1


def test_a_malformed_answer_to_a_send_leaves_the_row_to_follow(
    client: ChainClient,
    probe: ContractInterface,
    tmp_path: Path,
    garble: tuple[GarbleRelay, ChainClient],
) -> None:
    """The node took the transaction but every answer to its send (the retry's too) was
    malformed: the row stays journaled as signed, and the next look finds that very
    transaction mined; nothing is sent twice."""
    relay, through = garble
    ex = make_executor(through, probe, tmp_path / "a.db")
    relay.method, relay.garbled = "eth_sendRawTransaction", 2
    with pytest.raises(MalformedAnswerError):
        ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    row = ex.journal.get("poke/1")
    assert row is not None and row.status == "signed" and row.nonce == 0
    assert [e.status for e in ex.reconcile()] == ["mined"]
    mined = ex.journal.get("poke/1")
    assert mined is not None and mined.tx_hash == row.tx_hash
    assert pokes(ex) == 1 and client.nonce(ADDRESS, "latest") == 1


def test_a_malformed_receipt_is_asked_again_and_never_recorded(
    client: ChainClient,
    probe: ContractInterface,
    tmp_path: Path,
    garble: tuple[GarbleRelay, ChainClient],
) -> None:
    """A receipt whose block number is not hex: asked again (one malformed try of two is
    ridden out), and on every try MalformedAnswerError with the row untouched; the next
    look records it mined."""
    relay, through = garble
    ex = make_executor(through, probe, tmp_path / "a.db")
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.status == "sent"
    relay.method, relay.garbled = "eth_getTransactionReceipt", 2
    with pytest.raises(MalformedAnswerError, match="eth_getTransactionReceipt malformed"):
        ex.reconcile()
    assert ex.journal.get("poke/1") == sent
    relay.garbled = 1
    assert [e.status for e in ex.reconcile()] == ["mined"] and relay.garbled == 0
    assert pokes(ex) == 1 and client.nonce(ADDRESS, "latest") == 1


def test_a_row_signed_again_after_a_rejection_starts_its_clocks_anew(
    manual: ManualMining, tmp_path: Path
) -> None:
    """A sent transaction the node lost and then refused is rejected (its nonce given back);
    its intent signed again later is a new send: its ``sent_at`` is the new send's (said
    sent again), and its fee bump waits FeePolicy.bump_after from then, not from the first
    send."""
    direct, probe = manual.client, manual.probe
    with RefuseNextRelay(manual.node.url) as relay:
        now = [1_000.0]
        ex = make_executor(ChainClient(relay.url), probe, tmp_path / "a.db", clock=lambda: now[0])
        sends: list[float | None] = []
        ex.observer = ExecutorObserver(sent=lambda e: sends.append(e.sent_at))
        intent = Intent("poke/1", "Probe", "poke", (1, "a"))
        first = ex.submit(intent)
        assert first is not None and first.status == "sent" and first.sent_at == 1_000.0
        direct.rpc.request("anvil_dropTransaction", [first.tx_hash])
        relay.refuse, relay.message = 1, "txpool is full"
        assert [e.status for e in ex.reconcile()] == ["rejected"]
        now[0] = 5_000.0  # past the rejection's backoff
        again = ex.submit(intent)
        assert again is not None and again.status == "sent" and again.nonce == 0
        assert again.sent_at == 5_000.0 and sends == [1_000.0, 5_000.0]
        _raise_base_fee(direct, 50)
        bump_after = FeePolicy().bump_after
        assert bump_after is not None
        now[0] += bump_after - 1.0
        assert ex.reconcile() == [] and ex.journal.replaced("poke/1") == []
        now[0] += 1.0
        assert ex.reconcile() == []
        assert [r.tx_hash for r in ex.journal.replaced("poke/1")] == [again.tx_hash]
        direct.rpc.request("evm_mine", [])
        assert [e.status for e in ex.reconcile()] == ["mined"]
        assert pokes(ex) == 1 and direct.nonce(ADDRESS, "latest") == 1


def _hidden_receipt_row(
    relay: ReceiptLagRelay, probe: ContractInterface, db: Path, now: list[float]
) -> TransactionExecutor:
    """An executor through ``relay`` (which hides every receipt) with one transaction sent,
    mined at once, then called pending past DropPolicy.grace: the account's nonce is seen
    past it (the grace starts)."""
    ex = make_executor(ChainClient(relay.url), probe, db, clock=lambda: now[0])
    sent = ex.submit(Intent("poke/1", "Probe", "poke", (1, "a")))
    assert sent is not None and sent.status == "sent"
    now[0] += DropPolicy().grace
    assert ex.reconcile() == []  # overdue: sent again, nonce past it, no receipt
    return ex


def test_the_drop_grace_survives_a_restart(
    anvil: Anvil, client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    """The time the account's nonce was first seen past a row's is journaled: an agent
    restarted within the grace judges the row at its first look once the grace has passed,
    not a grace after its restart (restarting more often than the grace: never)."""
    grace = DropPolicy().grace
    with ReceiptLagRelay(anvil.url, lag=10**9) as relay:
        now = [1_000.0]
        _hidden_receipt_row(relay, probe, tmp_path / "a.db", now)
        restarted = make_executor(
            ChainClient(relay.url), probe, tmp_path / "a.db", clock=lambda: now[0]
        )
        now[0] += grace
        assert [e.status for e in restarted.reconcile()] == ["dropped"]


def test_a_dropped_row_that_shows_mined_takes_that_outcome(
    anvil: Anvil, client: ChainClient, probe: ContractInterface, tmp_path: Path
) -> None:
    """A row judged dropped (its receipt hidden for longer than the grace) whose receipt
    shows within DropPolicy.recheck after, even after a restart: recorded mined; nothing
    is sent again. Past DropPolicy.recheck it is no longer looked for."""
    policy = DropPolicy()
    with ReceiptLagRelay(anvil.url, lag=10**9) as relay:
        now = [1_000.0]
        ex = _hidden_receipt_row(relay, probe, tmp_path / "a.db", now)
        now[0] += policy.grace
        assert [e.status for e in ex.reconcile()] == ["dropped"]
        sent = ex.journal.get("poke/1")
        assert sent is not None
        restarted = make_executor(
            ChainClient(relay.url), probe, tmp_path / "a.db", clock=lambda: now[0]
        )
        now[0] += policy.recheck
        assert restarted.reconcile() == []
        relay.lag = 0.0
        finished = restarted.reconcile()
        assert [(e.intent, e.status) for e in finished] == [("poke/1", "mined")]
        row = restarted.journal.get("poke/1")
        assert row is not None and row.tx_hash == sent.tx_hash and row.block_number
        assert pokes(restarted) == 1 and client.nonce(ADDRESS, "latest") == 1
        assert restarted.reconcile() == []
    with ReceiptLagRelay(anvil.url, lag=10**9) as relay:
        now = [1_000.0]
        ex = _hidden_receipt_row(relay, probe, tmp_path / "b.db", now)
        now[0] += policy.grace
        assert [e.status for e in ex.reconcile()] == ["dropped"]
        now[0] += policy.recheck + 0.5
        relay.lag = 0.0
        assert ex.reconcile() == []
        assert ex.journal.get("poke/1").status == "dropped"  # type: ignore[union-attr]
