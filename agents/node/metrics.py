"""Prometheus metrics of one agent, served at ``/metrics`` on a loopback port by default.

Names (all prefixed ``veritrain_``):

=================================  =======  ==============================================
``tasks{state}``                   gauge    tasks this agent follows, by protocol state
``transactions_sent_total{action}`` counter transactions broadcast, by action
``transactions_failed_total{action,reason}`` counter  reverted, rejected or dropped
``fee_bumps_total{action}``        counter  pending transactions replaced with raised fees
``training_progress{task}``        gauge    fraction of the steps trained (solver)
``training_steps_total``           counter  steps trained (solver)
``replay_segments_total``          counter  segments replayed (verifier)
``balance_wei``                    gauge    the agent account's balance
``withdrawable_wei``               gauge    what the contracts hold for the account
``head_block`` / ``cursor_block``  gauge    chain head, and the event cursor
``reaction_seconds``               histogram  from an event's block to the agent's transaction
``rpc_errors_total``               counter  ticks that failed on an unreachable RPC
=================================  =======  ==============================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agents.errors import VeritrainError


class MetricsError(VeritrainError):
    """The metrics endpoint cannot be started."""


class AgentMetrics:
    """The metrics of one agent, in a registry of its own."""

    def __init__(self, role: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"role": role}
        r = self.registry
        self.tasks = Gauge("veritrain_tasks", "Tasks followed, by state", ["state"], registry=r)
        self.sent = Counter(
            "veritrain_transactions_sent", "Transactions broadcast", ["action"], registry=r
        )
        self.failed = Counter(
            "veritrain_transactions_failed",
            "Transactions reverted, rejected or dropped",
            ["action", "reason"],
            registry=r,
        )
        self.fee_bumps = Counter(
            "veritrain_fee_bumps",
            "Pending transactions replaced with raised fees",
            ["action"],
            registry=r,
        )
        self.training_progress = Gauge(
            "veritrain_training_progress", "Fraction of steps trained", ["task"], registry=r
        )
        self.training_steps = Counter("veritrain_training_steps", "Steps trained", registry=r)
        self.replayed = Counter("veritrain_replay_segments", "Segments replayed", registry=r)
        self.balance = Gauge("veritrain_balance_wei", "Account balance (wei)", registry=r)
        self.withdrawable = Gauge(
            "veritrain_withdrawable_wei",
            "Balance held for the account by the contracts",
            registry=r,
        )
        self.head = Gauge("veritrain_head_block", "Chain head block", registry=r)
        self.cursor = Gauge("veritrain_cursor_block", "First block not yet read", registry=r)
        self.reaction = Histogram(
            "veritrain_reaction_seconds",
            "From the block of an event to the agent's responding transaction",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.rpc_errors = Counter(
            "veritrain_rpc_errors", "Agent ticks that failed on an unreachable RPC", registry=r
        )
        self.games = Gauge(
            "veritrain_games",
            "Pinpoint games of this account, by standing (playing, won, lost, both_lost)",
            ["standing"],
            registry=r,
        )
        self.game_errors = Counter(
            "veritrain_game_errors", "Game steps that failed (and were retried)", registry=r
        )
        self.traced_segments = Gauge(
            "veritrain_traced_segments",
            "Single segments this agent replayed exactly (proof checks, challenges, answers), "
            "by result (pass, fail, running, error)",
            ["result"],
            registry=r,
        )
        self.info = Gauge("veritrain_agent_info", "Agent identity", ["role"], registry=r)
        self.info.labels(**labels).set(1)

    def set_task_states(self, counts: dict[str, int], known_states: list[str]) -> None:
        """Set the ``tasks`` gauge for every state (states with no task read 0)."""
        for state in known_states:
            self.tasks.labels(state=state).set(counts.get(state, 0))

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint in a daemon thread; returns the bound port (``0`` picks one)."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        return int(server.server_address[1])
