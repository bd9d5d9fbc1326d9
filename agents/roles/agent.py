"""The agent runtime: event source → decision function → executor, in one loop, crash-safe.

Each tick: follow in-flight transactions (journal), read new events (cursor),
refold the views of the tasks they touch, collect finished local work,
examine specs not yet examined, ask the role's decision function what to do,
and do it. Everything a tick learns is committed to the agent's database
before anything is sent, so a process killed at any point restarts into the
same decisions without repeating a transaction.
"""

from __future__ import annotations

import functools
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import Block
from agents.chain.errors import ChainError, RpcUnavailableError
from agents.chain.events import EventSource
from agents.chain.executor import ExecutorObserver, TransactionExecutor
from agents.chain.journal import Failure, JournalEntry
from agents.errors import VeritrainError
from agents.node.logs import event
from agents.node.metrics import AgentMetrics
from agents.node.progress import ProgressDisplay
from agents.roles import intents, reverts
from agents.roles.admission import examine_profile, examine_spec, should_examine
from agents.roles.challenges import JACKPOT, traced_segments
from agents.roles.connection import Connection
from agents.roles.gameplay import GameDesk, opening_job, publication_job
from agents.roles.hardware import Hardware
from agents.roles.intents import action_of
from agents.roles.jobs import (
    DriftJob,
    JobResult,
    OpeningJob,
    OpeningResult,
    ProfileJob,
    PublicationJob,
    ReplayJob,
    TrainJob,
)
from agents.roles.runner import WorkRunner
from agents.roles.shares import forced_error_secret, seed
from agents.roles.situation import (
    POOL,
    Action,
    ProfileReview,
    Send,
    Situation,
    SpecFacts,
    Start,
)
from agents.roles.tasks import STATUSES, TaskView, fold, task_subject
from agents.roles.work import drift_job, profile_job, replay_job, train_job, warm_up
from agents.roles.worktable import WorkTable

log = logging.getLogger(__name__)

# The wait before the tick after one that sent a transaction (at most the poll interval).
FOLLOW_UP_S = 0.05


def between_ticks(
    interval: float, working_interval: float, *, sent: bool, working: bool, following: bool
) -> float:
    """Seconds to wait before the next tick: soon after a tick that ``sent`` a transaction;
    the larger of ``interval`` and ``working_interval`` while a job is ``working`` and the
    agent is not ``following`` anything on chain (a transaction in flight, a game it plays);
    else ``interval``. A tick costs the job's thread its requests and decisions (they share
    the process); a job's end wakes the loop whatever the wait."""
    if sent:
        return min(FOLLOW_UP_S, interval)
    if working and not following:
        return max(interval, working_interval)
    return interval


Decide = Callable[[Situation], list[Action]]


class JobProgress:
    """The progress callback of one job run: the bar, the ``training_progress`` gauge, and the
    counters of steps trained and segments replayed. A training job's first call reports
    where it starts (steps trained before a restart are not counted again)."""

    def __init__(self, action: Start, metrics: AgentMetrics, display: ProgressDisplay) -> None:
        self.kind = action.kind
        self.label = f"{action.kind} task {action.task_id}"
        self.gauge = metrics.training_progress.labels(task=str(action.task_id))
        self.metrics = metrics
        self.display = display
        self.last: int | None = None

    def __call__(self, done: int, total: int) -> None:
        self.gauge.set(done / max(1, total))
        self.display.update(self.label, done, total)
        if self.kind == "train":
            if self.last is not None and done > self.last:
                self.metrics.training_steps.inc(done - self.last)
            self.last = done
        elif self.kind == "replay":  # a verification's, or a re-check's
            self.metrics.replayed.inc()


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
        self.hardware = hardware or Hardware()
        self.hardware.check()
        self.conn = conn
        self.role = role
        self.decide = decide
        self.db: sqlite3.Connection = conn.data.db
        self.executor: TransactionExecutor = conn.executor
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
        self.work = WorkTable(self.db)
        self.tasks: dict[int, TaskView] = {}
        self._facts: dict[int, tuple[SpecFacts, float]] = {
            task_id: (facts, 0.0) for task_id, facts in self.work.load_facts().items()
        }
        # The submitter's checks of its tasks' profiles (by task), made once per profile.
        self._profiles: dict[int, ProfileReview] = {}
        # Intents whose rejection at estimation this process logged: a lasting-looking one
        # said at error level, and one that only passed (``_on_failed``).
        self._said_lasting: set[str] = set()
        self._said_passing: set[str] = set()
        self._stop = threading.Event()
        self._head = 0
        # The head block (number, hash) at the last complete read of the chain, and the
        # balances read then (pool credit, jackpot award owed): see ``tick``.
        self._read_at: tuple[int, str] | None = None
        self._balances: tuple[int, int] | None = None
        self.executor.observer = ExecutorObserver(
            sent=self._on_sent,
            confirmed=self._on_confirmed,
            failed=self._on_failed,
            replaced=self._on_replaced,
        )
        every = self.events.all_events()
        for task_id in {task_subject(e) for e in every}:
            if task_id is not None:
                self._refold(task_id)
        self._credit_withdrawals = self._withdrawals_in(every)
        # The games this account is a party of, played whatever the role (agents.roles.games).
        # Replays of single segments (games, challenges), cached on disk: a game and the
        # challenge that opened it read the same replay.
        self.segments_dir = conn.data.path / "segments"
        self.games: GameDesk | None = None
        if GameDesk.available(conn):
            self.games = GameDesk(
                conn, self.db, self.executor, self.metrics, self.segments_dir, self._traced
            )

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
            except ChainError as exc:
                # Unreachable, answering malformed values, or an error object where a value is
                # due (logs of a range it cannot serve, a block it does not know): the
                # endpoint's fault for now, waited out; nothing of the tick was stored.
                self.metrics.rpc_errors.inc()
                unreachable = isinstance(exc, RpcUnavailableError)
                event(
                    log,
                    "rpc unavailable; retrying" if unreachable else "chain read failed; retrying",
                    level=logging.WARNING if unreachable else logging.ERROR,
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
            self._wake.wait(
                between_ticks(
                    interval,
                    self.conn.config.chain.working_poll_interval,
                    sent=self._sent_last_tick,
                    working=bool(self.runner.running()),
                    following=self.executor.in_flight() or self._playing(),
                )
            )
        event(log, "agent stopped", role=self.role)

    def _playing(self) -> bool:
        """Whether a pinpoint game this agent is a party to is still being played."""
        if self.games is None:
            return False
        return any(game.standing(self.conn.me) == "playing" for game in self.games.games.values())

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _warm_up(self) -> None:
        started = time.monotonic()
        try:
            warm_up(self.hardware, trace=self.role in ("verifier", "whistleblower"))
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
        """One round of observe → decide → act; returns the actions taken.

        The chain is read again only when its head block changed since the last complete
        read, or a transaction of this agent is in flight: otherwise nothing on chain can
        have changed, and the tick decides on what it read before (with the time of now), at
        the cost of one request. An agent whose job runs (training, replay) ticks mostly so.
        """
        self._sent_last_tick = False
        latest = self.conn.client.block("latest")
        moved = (latest.number, latest.hash) != self._read_at or self.executor.in_flight()
        if moved:
            self._read_at = None
            self._read_chain(latest.number)
        self._collect_work()
        self._examine_specs()
        self._examine_profiles()
        situation = self.situation(latest, fresh=moved)
        actions = self.decide(situation)
        for action in actions:
            self._act(action)
        if self.games is not None and self.games.tick(self.tasks, latest.number, read=moved):
            self._sent_last_tick = True
        self._update_metrics(situation, fresh=moved)
        if moved:
            self._read_at = (latest.number, latest.hash)
        return actions

    def _read_chain(self, head: int) -> None:
        """Follow in-flight transactions and read the events up to ``head``."""
        # Transactions mined within the reorg window are checked to still be on chain.
        window = self.conn.config.chain.reorg_window
        self.executor.reconcile(recheck_from=max(0, self._head - window) if self._head else None)
        polled = self.events.poll(head)
        self._head = polled.head
        self._credit_withdrawals += self._withdrawals_in(polled.added)
        self._credit_withdrawals -= self._withdrawals_in(polled.removed)
        touched = {task_subject(e) for e in [*polled.added, *polled.removed]}
        for task_id in touched:
            if task_id is not None:
                self._refold(task_id)
        for e in polled.added:
            event(log, "event", name=e.name, task=task_subject(e), block=e.block_number)

    def situation(self, latest: Block | None = None, *, fresh: bool = True) -> Situation:
        """What the decision sees, at the ``latest`` block (asked for when not given); without
        ``fresh`` the balances read at the last complete read of the chain."""
        if latest is None:
            latest = self.conn.client.block("latest")
        contract = self.conn.deployment.contract(POOL)
        pool = contract.address
        account = self.conn.signer
        if fresh or self._balances is None:
            self._balances = (self._credit(contract), self._jackpot_owed())
        credit, jackpot_owed = self._balances
        statuses, failures = self.executor.journal.outcomes()
        return Situation(
            me=self.conn.me,
            now=max(float(latest.timestamp), time.time()),
            head=max(self._head, latest.number),
            tasks=dict(self.tasks),
            journal=statuses,
            failures=failures,
            work=self.work.states(self.runner.states()),
            params=self.conn.params,
            specs={k: v for k, (v, _) in self._facts.items()},
            margin=self.conn.config.chain.deadline_margin,
            seed=lambda task_id: seed(account, pool, task_id),
            secret=lambda task_id, rnd: forced_error_secret(account, pool, task_id, rnd),
            pool=contract,
            games=self.games.games if self.games is not None else {},
            credit=credit,
            credit_withdrawals=self._credit_withdrawals,
            jackpot_owed=jackpot_owed,
            profiles=dict(self._profiles),
        )

    def _jackpot_owed(self) -> int:
        """What the jackpot owes this account (0 without a jackpot that keeps awards)."""
        contracts = self.conn.deployment.contracts
        jackpot = contracts.get(JACKPOT)
        if jackpot is None or not jackpot.has_function("owed"):
            return 0
        return int(self.conn.client.read(jackpot, "owed", (self.conn.me,)))

    def _credit(self, pool: ContractInterface) -> int:
        """What the pool credits this account outside any task (0 for a pool without credit)."""
        if not pool.has_function("credit"):
            return 0
        return int(self.conn.client.read(pool, "credit", (self.conn.me,)))

    def _traced(self, task_id: int, segment: int) -> OpeningResult | None:
        """This agent's trace of a segment (an opening job's result), if it made one."""
        state = self.work.states(self.runner.states()).get(intents.opening(task_id, segment))
        result = state.result if state is not None else None
        return result if isinstance(result, OpeningResult) else None

    def _withdrawals_in(self, events: list[DecodedLog]) -> int:
        """How many of ``events`` are this account's withdrawals of its pool credit."""
        me = self.conn.me.lower()
        return sum(
            1
            for e in events
            if e.name == "CreditWithdrawn" and str(e.args.get("account", "")).lower() == me
        )

    # -- views ------------------------------------------------------------------------------

    def _refold(self, task_id: int) -> None:
        events = self.events.events_of(task_id)
        if events:
            self.tasks[task_id] = fold(task_id, events)
        else:
            self.tasks.pop(task_id, None)

    # -- specs ------------------------------------------------------------------------------

    def _examine_specs(self) -> None:
        now = time.monotonic()
        for task_id, view in self.tasks.items():
            known = self._facts.get(task_id)
            facts, examined_at = known if known is not None else (None, 0.0)
            if not should_examine(view, facts, examined_at, now):
                continue
            facts = examine_spec(self.conn.store, view, self.conn.params)
            self._facts[task_id] = (facts, now)
            if facts.problem is None:
                self.work.save_facts(task_id, facts)
            else:
                event(
                    log, "spec unusable", level=logging.WARNING, task=task_id, problem=facts.problem
                )

    def _examine_profiles(self) -> None:
        """Check each profile under review on a task this account submitted, once per profile."""
        for task_id, view in self.tasks.items():
            if not self.conn.me or view.submitter is None:
                continue
            if view.submitter.lower() != self.conn.me.lower() or not view.review_deadline:
                continue
            known = self._profiles.get(task_id)
            if view.status != "Open" or (known and known.profile_cid == view.profile_cid):
                continue
            review = examine_profile(self.conn.store, view)
            self._profiles[task_id] = review
            event(log, "profile checked", task=task_id, problem=review.problem or "")

    # -- work -------------------------------------------------------------------------------

    def _collect_work(self) -> None:
        for key, state in self.runner.states().items():
            if state.status == "running":
                continue
            self.work.finished(state)
            elapsed = round(self.runner.elapsed(key), 3)
            cpu = round(self.runner.cpu(key), 3)
            self.runner.forget(key)
            event(
                log,
                f"work {state.status}",
                key=key,
                seconds=elapsed,
                cpu=cpu,
                error=state.error or "",
            )

    def _start(self, action: Start) -> None:
        self.work.started(action.key, action.task_id, action.kind)
        store, hardware, inputs = self.conn.store, self.hardware, action.inputs
        progress = JobProgress(action, self.metrics, self.progress)
        job: Callable[[], JobResult]
        if isinstance(inputs, TrainJob):
            workdir = self.work_dir / f"task-{action.task_id}"
            job = functools.partial(train_job, store, inputs, workdir, hardware, progress)
        elif isinstance(inputs, ReplayJob):
            job = functools.partial(replay_job, store, inputs, hardware, progress)
        elif isinstance(inputs, ProfileJob):
            job = functools.partial(profile_job, store, inputs, hardware)
        elif isinstance(inputs, DriftJob):
            job = functools.partial(drift_job, store, inputs, hardware)
        elif isinstance(inputs, OpeningJob):
            job = functools.partial(opening_job, store, inputs, self.segments_dir)
        elif isinstance(inputs, PublicationJob):
            job = functools.partial(publication_job, store, inputs)
        else:
            raise VeritrainError(f"unknown work {inputs!r}")
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
        self.metrics.sent.labels(action=action_of(entry.intent)).inc()
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

    def _on_replaced(self, entry: JournalEntry) -> None:
        self.metrics.fee_bumps.labels(action=action_of(entry.intent)).inc()

    def _on_confirmed(self, entry: JournalEntry) -> None:
        event(log, "tx mined", intent=entry.intent, block=entry.block_number, gas=entry.gas_used)

    def _on_failed(self, entry: JournalEntry) -> None:
        action = action_of(entry.intent)
        self.metrics.failed.labels(action=action, reason=entry.status).inc()
        failure = Failure(entry.error or "", entry.trigger_block, entry.attempts)
        if reverts.holds(entry.intent, entry.status, failure):
            # The decision does not send it again (agents.roles.reverts): said once, loudly.
            event(
                log,
                f"tx {entry.status} for good",
                level=logging.ERROR,
                intent=entry.intent,
                error=entry.error or "",
                consequence=reverts.CONSEQUENCE.get(action, "not sent again"),
            )
            return
        if reverts.looks_lasting(entry.intent, entry.status, failure):
            # Maybe the chain's truth, maybe a node behind the agent's view: tried again until
            # the view ends it, and said loudly the first time, also after rejections for a
            # passing reason (the seed refused in the claim's own block, then as wrong).
            first = entry.attempts <= 1 or entry.intent in self._said_passing
            loud = first and entry.intent not in self._said_lasting
            level = logging.ERROR if loud else logging.WARNING
            self._said_lasting.add(entry.intent)
            event(
                log,
                f"tx {entry.status}",
                level=level,
                intent=entry.intent,
                error=entry.error or "",
                consequence="tried again until the task's state or its window ends it",
            )
            return
        if entry.status == "rejected":
            self._said_passing.add(entry.intent)
        event(
            log,
            f"tx {entry.status}",
            level=logging.WARNING,
            intent=entry.intent,
            error=entry.error or "",
        )

    # -- metrics ----------------------------------------------------------------------------

    def _update_metrics(self, situation: Situation, *, fresh: bool = True) -> None:
        counts: dict[str, int] = {}
        for view in situation.tasks.values():
            counts[view.status] = counts.get(view.status, 0) + 1
        self.metrics.set_task_states(counts, [s for s in STATUSES if s != "None"])
        self.metrics.head.set(situation.head)
        self.metrics.cursor.set(self.events.cursor)
        if fresh:
            self.metrics.balance.set(self.conn.client.balance(self.conn.me))
        self.metrics.withdrawable.set(sum(v.due_to(self.conn.me) for v in situation.tasks.values()))
        for result, count in traced_segments(situation).items():
            self.metrics.traced_segments.labels(result=result).set(count)
