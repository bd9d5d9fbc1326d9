"""The agent's one SQLite database: cursor, task views, transaction journal, local work.

Opened in WAL mode with ``synchronous=FULL``, so a committed transaction
survives a crash of the process (and of the machine); every module that keeps
state creates its own tables in this one database, so related changes commit
together.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from agents.errors import VeritrainError


class DatabaseError(VeritrainError):
    """The agent's database cannot be opened or is not the one expected."""


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path``.

    The connection is in autocommit mode; group writes with :func:`transaction`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open agent database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def bind_identity(conn: sqlite3.Connection, identity: dict[str, str]) -> None:
    """Record what this database belongs to (chain, deployment, account) or check it.

    An agent pointed at a data directory made for another chain or key would
    otherwise resume someone else's journal; that is refused with a clear error.
    """
    with transaction(conn):
        for key, value in identity.items():
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            elif row["value"] != value:
                raise DatabaseError(
                    f"the data directory belongs to {key} {row['value']}, not {value}; "
                    "use another data directory"
                )


class DataDirectory:
    """An agent's data directory, held by one process at a time (an exclusive lock file).

    Two agents sharing a directory would share a journal and a nonce counter and
    could send conflicting transactions; the second one is refused instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / "agent.lock", "a+")  # noqa: SIM115 (held for life)
        except OSError as exc:
            raise DatabaseError(f"cannot use data directory {path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DatabaseError(
                f"data directory {path} is in use by another agent process"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        self.db = open_database(path / "agent.sqlite")

    def close(self) -> None:
        self.db.close()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
