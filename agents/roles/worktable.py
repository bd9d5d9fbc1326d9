"""The agent's record of its local work and of the specs it examined, in its database.

Every job's key, kind, status, attempts and result is committed before the job
starts and when it ends, so a restarted agent knows what it has (a result it
acts on), what was cut short (run again, resuming from disk) and what failed.
A failed job is run ``WORK_ATTEMPTS`` times in all, the n-th retry after
``n × WORK_RETRY_S`` seconds; then its task is given up. The facts of a usable
spec are kept; an unusable one is examined again (``agents.roles.admission``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping

from agents.node.database import transaction
from agents.roles.jobs import result_from_json
from agents.roles.situation import SpecFacts, WorkState

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
WORK_ATTEMPTS = 3
WORK_RETRY_S = 10.0

Clock = Callable[[], float]


class WorkTable:
    """Jobs and spec facts of one agent (see the module docstring); ``clock`` is wall time."""

    def __init__(self, db: sqlite3.Connection, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        db.executescript(WORK_SCHEMA)

    # -- jobs -------------------------------------------------------------------------------

    def started(self, key: str, task_id: int, kind: str) -> None:
        """Record that ``key`` runs (once more)."""
        with transaction(self.db):
            self.db.execute(
                """INSERT INTO work (key, task_id, kind, status, attempts, updated_at)
                   VALUES (?, ?, ?, 'running', 1, ?)
                   ON CONFLICT (key) DO UPDATE SET status = 'running', attempts = attempts + 1,
                       updated_at = excluded.updated_at""",
                (key, task_id, kind, self.clock()),
            )

    def finished(self, state: WorkState) -> None:
        """Record a job's final state (``done`` with its result, or ``failed``)."""
        result = None
        if state.status == "done" and state.result is not None:
            result = json.dumps(state.result.to_json())
        with transaction(self.db):
            self.db.execute(
                "UPDATE work SET status = ?, result = ?, error = ?, updated_at = ? WHERE key = ?",
                (state.status, result, state.error, self.clock(), state.key),
            )

    def states(self, live: Mapping[str, WorkState]) -> dict[str, WorkState]:
        """Every job's state: ``done`` with its result, ``running`` (in ``live``), ``failed``
        (no attempt left, or waiting for its retry), or ``interrupted`` (run it again)."""
        out: dict[str, WorkState] = {}
        now = self.clock()
        for row in self.db.execute("SELECT * FROM work"):
            key = row["key"]
            if row["status"] == "done":
                result = result_from_json(row["kind"], json.loads(row["result"]))
                out[key] = WorkState(key, "done", result)
            elif key in live:
                out[key] = live[key]
            elif row["status"] == "failed" and (
                row["attempts"] >= WORK_ATTEMPTS
                or now < row["updated_at"] + WORK_RETRY_S * row["attempts"]
            ):
                out[key] = WorkState(key, "failed", error=row["error"])
            else:
                # Running when the process died, or failed with attempts left: run it again.
                out[key] = WorkState(key, "interrupted", error=row["error"])
        return out

    # -- spec facts -------------------------------------------------------------------------

    def load_facts(self) -> dict[int, SpecFacts]:
        """The facts of every usable spec examined so far."""
        out = {}
        for row in self.db.execute("SELECT task_id, facts FROM spec_facts"):
            out[int(row["task_id"])] = SpecFacts(**json.loads(row["facts"]))
        return out

    def save_facts(self, task_id: int, facts: SpecFacts) -> None:
        """Keep the facts of a usable spec (unusable ones are examined again)."""
        with transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO spec_facts (task_id, facts) VALUES (?, ?)",
                (task_id, json.dumps(facts.__dict__)),
            )
