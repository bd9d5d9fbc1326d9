"""The agent runtime: event source → decision function → executor, in one loop, crash-safe.

Each tick: follow in-flight transactions (journal), read new events (cursor),
refold the views of the tasks they touch, collect finished local work,
examine specs not yet examined, ask the role's decision function what to do,
and do it. Everything a tick learns is committed to the agent's database
before anything is sent, so a process killed at any point restarts into the
same decisions without repeating a transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.errors import ChainError, RpcUnavailableError
from agents.chain.events import EventSource
from agents.chain.executor import ExecutorObserver, FeePolicy, RejectionPolicy, TransactionExecutor
from agents.chain.journal import JournalEntry, TransactionJournal
from agents.chain.rpc import RetryPolicy
from agents.errors import VeritrainError
from agents.node.config import AgentConfig
from agents.node.database import DataDirectory, bind_identity, transaction
from agents.node.keys import DEVNET_CHAIN_IDS, load_account
from agents.node.logs import event
from agents.node.metrics import AgentMetrics
from agents.node.progress import ProgressDisplay
from agents.roles.situation import (
    POOL,
    Action,
    PoolParameters,
    Send,
    Situation,
    SpecFacts,
    Start,
    WorkState,
)
from agents.roles.tasks import STATUSES, TaskView, fold, task_subject
from agents.roles.work import (
    Hardware,
    WorkRunner,
    examine_spec,
    profile_job,
    replay_job,
    train_job,
    warm_up,
)
from agents.store import ArtifactStore, open_store

log = logging.getLogger(__name__)

WORK_SCHEMA = """
CREATE TABLE IF NOT EXISTS work (
    key TEXT PRIMARY KEY,
    task_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spec_facts (task_id INTEGER PRIMARY KEY, facts TEXT NOT NULL);
"""
# A failed job is run this many times in all before its task is given up, the n-th retry
# after n × WORK_RETRY_S seconds.
WORK_ATTEMPTS = 3
WORK_RETRY_S = 10.0
# A spec that could not be read (not yet in the store, say) is looked at again after this long.
SPEC_RETRY_S = 15.0
# The wait before the tick after one that sent a transaction (at most the poll interval).
FOLLOW_UP_S = 0.05

Decide = Callable[[Situation], list[Action]]


@dataclass
class Connection:
    """Everything an agent (or a command) needs to act on the chain for one account."""

    config: AgentConfig
    deployment: Deployment
    client: ChainClient
    account: LocalAccount | None  # None for read-only commands
    store: ArtifactStore
    params: PoolParameters
    data: DataDirectory | None = None
    executor: TransactionExecutor | None = None
    metrics: AgentMetrics | None = None
    _blocks: dict[int, int] = field(default_factory=dict)

    @property
    def me(self) -> str:
        return str(self.signer.address)

    @property
    def signer(self) -> LocalAccount:
        if self.account is None:
            raise VeritrainError("this command was connected without a key")
        return self.account

    def block_time(self, number: int) -> int:
        """A block's timestamp (cached)."""
        if number not in self._blocks:
            self._blocks[number] = self.client.block(number).timestamp
        return self._blocks[number]


def connect(
    config: AgentConfig,
    role: str,
    *,
    rpc_attempts: int = 3,
    with_data: bool = True,
    with_key: bool = True,
) -> Connection:
    """Load the deployment, reach the chain, check it, load the key, open the data directory.

    Every failure is a :class:`VeritrainError` with one clear line: missing
    manifest, unreachable RPC, wrong chain id, missing contracts, bad keystore,
    data directory in use or made for another chain or account.
    """
    deployment = load_deployment(config.require_deployment())
    client = ChainClient(
        config.chain.rpc_url,
        timeout=config.chain.rpc_timeout,
        retry=RetryPolicy(attempts=rpc_attempts, initial_delay=0.25, max_delay=2.0),
    )
    deployment.check(client)
    account: LocalAccount | None = None
    if with_key:
        account = load_account(config.key, deployment.chain_id)
        if config.solver.adversary is not None and deployment.chain_id not in DEVNET_CHAIN_IDS:
            raise VeritrainError(
                f"solver.adversary is for devnets only (chain id {deployment.chain_id})"
            )
    store = open_store(config.store.location)
    pool = deployment.contract(POOL)
    raw_params = pool.decode_output(
        "parameters", client.call(pool.address, pool.encode_call("parameters", ()))
    )
    params = PoolParameters.from_chain(raw_params)
    conn = Connection(config, deployment, client, account, store, params)
    if with_data and account is not None:
        data = DataDirectory(config.require_data_dir())
        bind_identity(
            data.db,
            {
                "chain_id": str(deployment.chain_id),
                "pool": pool.address,
                "account": conn.me,
                "role": role,
            },
        )
        conn.data = data
        max_fee = config.chain.max_fee_gwei
        conn.executor = TransactionExecutor(
            client,
            account,
            TransactionJournal(data.db),
            deployment.contracts,
            fees=FeePolicy(max_fee_per_gas=int(max_fee * 10**9) if max_fee else None),
            rejections=RejectionPolicy(attempts=8, delay=1.0),
        )
    return conn


def forced_error_secret(account: LocalAccount, pool: str, task_id: int, rnd: int) -> bytes:
    """The verifier's forced-error secret for (task, round), derived from its key.

    Deterministic, so a restarted verifier commits and (later) reveals the same
    secret without storing it: HMAC-SHA256(key, "veritrain/forced-error-secret" ‖
    pool ‖ task id ‖ round). The chain gets ``keccak256(secret)``.
    """
    message = (
        b"veritrain/forced-error-secret"
        + bytes.fromhex(pool[2:])
        + task_id.to_bytes(32, "big")
        + rnd.to_bytes(32, "big")
    )
    return hmac.new(bytes(account.key), message, hashlib.sha256).digest()


class Agent:
    """One role's loop over one connection (see the module docstring)."""

    def __init__(
        self,
        conn: Connection,
        role: str,
        decide: Decide,
        *,
        hardware: Hardware | None = None,
        metrics: AgentMetrics | None = None,
        progress: ProgressDisplay | None = None,
    ) -> None:
        assert conn.data is not None and conn.executor is not None
        self.conn = conn
        self.role = role
        self.decide = decide
        self.db: sqlite3.Connection = conn.data.db
        self.executor: TransactionExecutor = conn.executor
        self.hardware = hardware or Hardware()
        self.metrics = metrics or AgentMetrics(role)
        self.progress = progress or ProgressDisplay("never")
        self._sent_last_tick = False
        self._wake = threading.Event()  # a finished job or stop() ends the wait between ticks
        self.runner = WorkRunner(on_finished=self._wake.set)
        self.work_dir = conn.data.path / "work"
        pool = conn.deployment.contract(POOL)
        self.events = EventSource(
            conn.client,
            [pool],
            self.db,
            start_block=conn.deployment.block,
            confirmations=conn.config.chain.confirmations,
            reorg_window=conn.config.chain.reorg_window,
            subject=task_subject,
        )
        self.db.executescript(WORK_SCHEMA)
        self.tasks: dict[int, TaskView] = {}
        self._facts: dict[int, tuple[SpecFacts, float]] = self._load_facts()
        self._stop = threading.Event()
        self._head = 0
        self.executor.observer = ExecutorObserver(
            sent=self._on_sent, confirmed=self._on_confirmed, failed=self._on_failed
        )
        for task_id in {task_subject(e) for e in self.events.all_events()}:
            if task_id is not None:
                self._refold(task_id)

    # -- the loop ---------------------------------------------------------------------------

    def run(self, until: Callable[[Agent], bool] | None = None) -> None:
        """Tick every ``poll_interval`` until stopped (SIGTERM, SIGINT) or ``until(self)``."""
        interval = self.conn.config.chain.poll_interval
        backoff = interval
        self._install_signals()
        event(
            log,
            "agent started",
            role=self.role,
            account=self.conn.me,
            pool=self.conn.deployment.contract(POOL).address,
            cursor=self.events.cursor,
        )
        if self.conn.config.agent.warm_up:
            threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        while not self._stop.is_set():
            self._wake.clear()  # a job that ends during the tick wakes the wait after it
            try:
                self.tick()
                backoff = interval
            except RpcUnavailableError as exc:
                self.metrics.rpc_errors.inc()
                event(
                    log,
                    "rpc unavailable; retrying",
                    level=logging.WARNING,
                    error=str(exc),
                    retry_in=round(backoff, 2),
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if (until is not None and until(self)) or self._stop.is_set():
                break
            # After sending, look again soon: on a node that mines at once the receipt and
            # the events that answer it are there within milliseconds.
            self._wake.wait(min(FOLLOW_UP_S, interval) if self._sent_last_tick else interval)
        event(log, "agent stopped", role=self.role)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _warm_up(self) -> None:
        started = time.monotonic()
        try:
            warm_up(self.hardware, trace=self.role == "verifier")
        except Exception as exc:  # only ever a delay for the first job: never stop the agent
            event(
                log, "warm-up failed", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}"
            )
            return
        event(log, "engine warm", seconds=round(time.monotonic() - started, 3))

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def tick(self) -> list[Action]:
        """One round of observe → decide → act; returns the actions taken."""
        self._sent_last_tick = False
        # Transactions mined within the reorg window are checked to still be on chain.
        window = self.conn.config.chain.reorg_window
        self.executor.reconcile(recheck_from=max(0, self._head - window) if self._head else None)
        polled = self.events.poll()
        self._head = polled.head
        touched = {task_subject(e) for e in [*polled.added, *polled.removed]}
        for task_id in touched:
            if task_id is not None:
                self._refold(task_id)
        for e in polled.added:
            event(log, "event", name=e.name, task=task_subject(e), block=e.block_number)
        self._collect_work()
        self._examine_specs()
        situation = self.situation()
        actions = self.decide(situation)
        for action in actions:
            self._act(action)
        self._update_metrics(situation)
        return actions

    def situation(self) -> Situation:
        latest = self.conn.client.block("latest")
        pool = self.conn.deployment.contract(POOL).address
        account = self.conn.signer

        def secret_hash(task_id: int, rnd: int) -> str:
            return "0x" + keccak(forced_error_secret(account, pool, task_id, rnd)).hex()

        return Situation(
            me=self.conn.me,
            now=max(float(latest.timestamp), time.time()),
            head=max(self._head, latest.number),
            tasks=dict(self.tasks),
            journal=self.executor.journal.statuses(),
            work=self._work_states(),
            params=self.conn.params,
            specs={k: v for k, (v, _) in self._facts.items()},
            margin=int(self.conn.config.chain.deadline_margin),
            secret_hash=secret_hash,
        )

    # -- views ------------------------------------------------------------------------------

    def _refold(self, task_id: int) -> None:
        events = self.events.events_of(task_id)
        if events:
            self.tasks[task_id] = fold(task_id, events)
        else:
            self.tasks.pop(task_id, None)

    # -- specs ------------------------------------------------------------------------------

    def _load_facts(self) -> dict[int, tuple[SpecFacts, float]]:
        out = {}
        for row in self.db.execute("SELECT task_id, facts FROM spec_facts"):
            out[int(row["task_id"])] = (SpecFacts(**json.loads(row["facts"])), 0.0)
        return out

    def _examine_specs(self) -> None:
        now = time.monotonic()
        for task_id, view in self.tasks.items():
            if view.status not in ("Submitted", "Open", "Committed") or view.final:
                continue
            known = self._facts.get(task_id)
            if known is not None and (known[0].problem is None or now - known[1] < SPEC_RETRY_S):
                continue
            facts = examine_spec(self.conn.store, view, self.conn.params)
            self._facts[task_id] = (facts, now)
            if facts.problem is None:
                with transaction(self.db):
                    self.db.execute(
                        "INSERT OR REPLACE INTO spec_facts (task_id, facts) VALUES (?, ?)",
                        (task_id, json.dumps(facts.__dict__)),
                    )
            else:
                event(
                    log, "spec unusable", level=logging.WARNING, task=task_id, problem=facts.problem
                )

    # -- work -------------------------------------------------------------------------------

    def _work_states(self) -> dict[str, WorkState]:
        live = self.runner.states()
        out: dict[str, WorkState] = {}
        for row in self.db.execute("SELECT * FROM work"):
            key = row["key"]
            if row["status"] == "done":
                out[key] = WorkState(key, "done", json.loads(row["result"]))
            elif key in live:
                out[key] = live[key]
            elif row["status"] == "failed" and (
                row["attempts"] >= WORK_ATTEMPTS
                or time.time() < row["updated_at"] + WORK_RETRY_S * row["attempts"]
            ):
                out[key] = WorkState(key, "failed", error=row["error"])
            else:
                # Running when the process died, or failed with attempts left: run it again.
                out[key] = WorkState(key, "interrupted", error=row["error"])
        return out

    def _collect_work(self) -> None:
        for key, state in self.runner.states().items():
            if state.status == "running":
                continue
            with transaction(self.db):
                self.db.execute(
                    "UPDATE work SET status = ?, result = ?, error = ?, updated_at = ? "
                    "WHERE key = ?",
                    (
                        state.status,
                        json.dumps(dict(state.result)) if state.status == "done" else None,
                        state.error,
                        time.time(),
                        key,
                    ),
                )
            elapsed = round(self.runner.elapsed(key), 3)
            self.runner.forget(key)
            event(log, f"work {state.status}", key=key, seconds=elapsed, error=state.error or "")

    def _start(self, action: Start) -> None:
        with transaction(self.db):
            self.db.execute(
                """INSERT INTO work (key, task_id, kind, status, attempts, updated_at)
                   VALUES (?, ?, ?, 'running', 1, ?)
                   ON CONFLICT (key) DO UPDATE SET status = 'running', attempts = attempts + 1,
                       updated_at = excluded.updated_at""",
                (action.key, action.task_id, action.kind, time.time()),
            )
        store, hardware, inputs = self.conn.store, self.hardware, dict(action.inputs)
        label = f"{action.kind} task {action.task_id}"

        def progress(done: int, total: int) -> None:
            self.metrics.training_progress.labels(task=str(action.task_id)).set(
                done / max(1, total)
            )
            self.progress.update(label, done, total)

        job: Callable[[], dict[str, Any]]
        if action.kind == "train":
            workdir = self.work_dir / f"task-{action.task_id}"
            job = lambda: train_job(store, inputs, workdir, hardware, progress)  # noqa: E731
        elif action.kind == "replay":
            job = lambda: replay_job(store, inputs, hardware, progress)  # noqa: E731
        elif action.kind == "profile":
            job = lambda: profile_job(store, inputs)  # noqa: E731
        else:
            raise VeritrainError(f"unknown work kind {action.kind!r}")
        self.runner.start(action.key, job)

    # -- acting -----------------------------------------------------------------------------

    def _act(self, action: Action) -> None:
        if isinstance(action, Start):
            if action.key in self.runner.running():
                return
            event(log, "start work", kind=action.kind, task=action.task_id, reason=action.reason)
            self._start(action)
            return
        self._send(action)

    def _send(self, action: Send) -> None:
        intent = action.intent
        if not self.executor.may_submit(intent):
            return
        try:
            self.executor.submit(intent)
        except RpcUnavailableError:
            raise
        except ChainError as exc:
            event(log, "cannot send", level=logging.ERROR, intent=intent.key, error=str(exc))

    def _on_sent(self, entry: JournalEntry) -> None:
        self._sent_last_tick = True
        action = entry.intent.split("/", 1)[0]
        self.metrics.sent.labels(action=action).inc()
        fields: dict[str, Any] = {
            "intent": entry.intent,
            "hash": entry.tx_hash,
            "nonce": entry.nonce,
        }
        if entry.trigger_block is not None and entry.sent_at is not None:
            try:
                reaction = entry.sent_at - self.conn.block_time(entry.trigger_block)
                self.metrics.reaction.observe(max(0.0, reaction))
            except ChainError:
                pass
        event(log, "tx sent", **fields)

    def _on_confirmed(self, entry: JournalEntry) -> None:
        event(log, "tx mined", intent=entry.intent, block=entry.block_number, gas=entry.gas_used)

    def _on_failed(self, entry: JournalEntry) -> None:
        action = entry.intent.split("/", 1)[0]
        self.metrics.failed.labels(action=action, reason=entry.status).inc()
        event(
            log,
            f"tx {entry.status}",
            level=logging.WARNING,
            intent=entry.intent,
            error=entry.error or "",
        )

    # -- metrics ----------------------------------------------------------------------------

    def _update_metrics(self, situation: Situation) -> None:
        counts: dict[str, int] = {}
        for view in situation.tasks.values():
            counts[view.status] = counts.get(view.status, 0) + 1
        self.metrics.set_task_states(counts, [s for s in STATUSES if s != "None"])
        self.metrics.head.set(situation.head)
        self.metrics.cursor.set(self.events.cursor)
        self.metrics.balance.set(self.conn.client.balance(self.conn.me))
        self.metrics.withdrawable.set(sum(v.due_to(self.conn.me) for v in situation.tasks.values()))
