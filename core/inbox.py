"""Durable, de-duplicated incoming events (docs/architecture.md §2).

The callback route stores each verified Event before it acknowledges; a worker handles the row
later. The unique (platform, event_id) makes a platform's retry a no-op across processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy import Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.leases import claim_due
from core.messages import Event
from core.models import InboxEvent
from core.states import INBOX, InboxState

EVENT_ID_MAX = 128  # the column width


def stored_event_id(event_id: str) -> str:
    """Ids longer than the column (e.g. a WeCom card event with a long task_id) are hashed, so
    the same retry still maps to the same key."""
    if len(event_id) <= EVENT_ID_MAX:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()


STORE_CHUNK = 500  # rows per INSERT, well inside SQLite's bound-parameter limit


async def store(session: AsyncSession, event: Event, *, now: dt.datetime) -> bool:
    """Insert the event; False (and nothing changed) when the same event is already stored."""
    (new,) = await store_many(session, [event], now=now)
    return new


async def store_many(session: AsyncSession, events: list[Event], *, now: dt.datetime) -> list[bool]:
    """Insert a burst of events with one statement per chunk; for each event, whether it is
    new. A duplicate — of a stored event or of an earlier one in `events` — changes nothing."""
    keys, items = _unique(events)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(items), STORE_CHUNK):
        rows = [
            {
                "platform": platform,
                "event_id": event_id,
                "payload": event.model_dump(mode="json"),
                **dict(zip(BATCH_COLUMNS, _batch_values(now), strict=True)),
            }
            for (platform, event_id), event in items[start : start + STORE_CHUNK]
        ]
        # executemany form: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
        # with one cached compilation, whatever the burst size. On the table, not the ORM
        # class: the ORM bulk-insert layer costs ~0.5 ms of event-loop CPU per burst.
        table = cast(Table, InboxEvent.__table__)
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
            .returning(table.c.platform, table.c.event_id)
        )
        inserted.update((p, e) for p, e in (await session.execute(stmt, rows)).all())
    return _new_flags(keys, inserted)


Key = tuple[str, str]  # (platform, stored event id)


# the columns every new row of a burst shares (besides platform, event_id, payload)
BATCH_COLUMNS = ("state", "attempts", "next_attempt_at", "received_at", "error")


def _batch_values(now: dt.datetime) -> tuple[Any, ...]:
    return (INBOX.start(InboxState.PENDING), 0, now, now, "")


def _unique(events: list[Event]) -> tuple[list[Key], list[tuple[Key, Event]]]:
    """Each event's key, and the events to insert: the first occurrence of each key."""
    keys: list[Key] = [(e.platform, stored_event_id(e.event_id)) for e in events]
    return keys, list(dict(zip(keys, events, strict=True)).items())


def _new_flags(keys: list[Key], inserted: set[Key]) -> list[bool]:
    """Per event: inserted now, and not a repeat of an earlier event of the same burst."""
    seen: set[Key] = set()
    result = []
    for key in keys:
        result.append(key in inserted and key not in seen)
        seen.add(key)
    return result


SQLITE_BUSY_TIMEOUT_MS = 10000
THREAD_CHUNK = 256  # rows per statement on the writer thread: 2,048 bound values
KEY_COLUMNS = ("platform", "event_id")
ROW_COLUMNS = (*KEY_COLUMNS, "payload")  # the values that differ row by row


class SqliteFileInbox:
    """`store_many` for an SQLite file in ONE trip to a dedicated writer thread: the inserts
    and the commit run there back to back, where the SQLAlchemy path costs several event-loop
    round trips per commit (each statement, the commit, the connection checkout). Values are
    converted with SQLAlchemy's own bind processors for the engine's dialect, so the rows are
    what `store_many` writes, except the payload: pydantic writes the event's JSON in one step
    (`model_dump_json`, compact UTF-8) where `store_many` builds a dict for the JSON column to
    dump (ASCII escapes) — the same JSON, at well under half the cost per event. The caller
    serialises writers (Services.write_gate) as for any other write; the connection's
    busy_timeout covers other processes."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        table = cast(Table, InboxEvent.__table__)
        columns = (*ROW_COLUMNS, *BATCH_COLUMNS)
        self._bind = {
            name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in columns
        }
        # keys go to sqlite3 as they are when their columns bind them unchanged (plain
        # strings): binding each row's key was ~0.6 us of a long-connection frame's intake
        self._keys_plain = all(self._bind[name] is None for name in KEY_COLUMNS)
        self._head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
        self._row = f"({', '.join('?' for _ in columns)})"
        self._tail = " ON CONFLICT (platform, event_id) DO NOTHING RETURNING platform, event_id"
        self._sql: dict[int, str] = {}  # rows per statement -> its text
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-sqlite")
        self._conn: sqlite3.Connection | None = None  # opened and used on that thread only

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> SqliteFileInbox | None:
        """The fast path when `engine` is a plain SQLite file; None otherwise (PostgreSQL,
        in-memory databases a second connection could not see, URI options)."""
        url = engine.url
        if (
            engine.dialect.name != "sqlite"
            or not url.database
            or url.database == ":memory:"
            or url.query
        ):
            return None
        return cls(url.database, engine.dialect)

    async def store_many(self, events: list[Event], *, now: dt.datetime) -> list[bool]:
        """As `store_many`: for each event whether it is new; committed when this returns."""
        keys, items = _unique(events)
        batch = self._bound(BATCH_COLUMNS, _batch_values(now))
        plain = self._keys_plain
        rows = [
            (*(key if plain else self._bound(KEY_COLUMNS, key)), event.model_dump_json(), *batch)
            for key, event in items
        ]
        loop = asyncio.get_running_loop()
        return _new_flags(keys, await loop.run_in_executor(self._thread, self._insert, rows))

    def _bound(self, columns: tuple[str, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The values as SQLAlchemy binds them (JSON text, naive UTC datetime text)."""
        return tuple(
            value if (bind := self._bind[name]) is None else bind(value)
            for name, value in zip(columns, values, strict=True)
        )

    def _insert(self, rows: list[tuple[Any, ...]]) -> set[Key]:
        """On the writer thread: one transaction of multi-row INSERTs (a statement per row
        held the interpreter lock for each call); the keys of the rows inserted. Statements
        take a power of two of rows, so a handful of texts serve every burst size."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserted: set[Key] = set()
            start = 0
            while start < len(rows):
                n = min(THREAD_CHUNK, 1 << ((len(rows) - start).bit_length() - 1))
                params = [value for row in rows[start : start + n] for value in row]
                inserted.update(conn.execute(self._statement(n), params).fetchall())
                start += n
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return inserted

    def _statement(self, n: int) -> str:
        if (sql := self._sql.get(n)) is None:
            sql = self._sql[n] = self._head + ", ".join([self._row] * n) + self._tail
        return sql

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # autocommit mode: the transaction is exactly the BEGIN … COMMIT of `_insert`
            conn = sqlite3.connect(self._path, isolation_level=None)
            # the journal and durability of the engine's connections (core.db)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def claim_pending(
    session: AsyncSession, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[InboxEvent]:
    """Lease due pending events for this worker, in id order; the caller commits straight
    away."""
    return await claim_due(session, InboxEvent, limit=limit, now=now, lease=lease)


def event_of(row: InboxEvent) -> Event:
    return Event.model_validate(row.payload)


async def mark_done(session: AsyncSession, inbox_id: int, now: dt.datetime) -> bool:
    """Called in the handler's own transaction. False when the row is no longer pending (another
    worker finished it after our lease ran out): the caller must roll back, so the handling
    takes effect once."""
    return bool(await mark_done_many(session, [inbox_id], now))


async def mark_done_many(session: AsyncSession, inbox_ids: list[int], now: dt.datetime) -> set[int]:
    """`mark_done` for the events handled in one transaction: the ids marked now (one missing
    was finished by another worker: the caller rolls back)."""
    result = await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(inbox_ids), InboxEvent.state == InboxState.PENDING)
        .values(
            state=INBOX.edge(InboxState.PENDING, InboxState.DONE),
            processed_at=now,
            claimed_until=None,
            error="",
        )
        .returning(InboxEvent.id)
        .execution_options(synchronize_session=False)  # no ORM objects to refresh
    )
    return set(result.scalars().all())


async def mark_failed(
    session: AsyncSession,
    inbox_id: int,
    error: str,
    *,
    now: dt.datetime,
    retry_at: dt.datetime,
    max_attempts: int,
) -> str:
    """Count a failed attempt; the row is retried at `retry_at`, or becomes "dead" once it has
    failed `max_attempts` times. Returns the new state."""
    row = await session.get(InboxEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None or row.state != InboxState.PENDING:
        return row.state if row is not None else "missing"
    row.attempts += 1
    row.error = error[:2000]
    row.claimed_until = None
    if row.attempts >= max_attempts:
        INBOX.move(row, InboxState.DEAD)
        row.processed_at = now
    else:
        row.next_attempt_at = retry_at
    await session.flush()
    return row.state


async def release(session: AsyncSession, inbox_id: int) -> None:
    """Give a claimed but unhandled row back (graceful shutdown) without counting an attempt."""
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == inbox_id, InboxEvent.state == InboxState.PENDING)
        .values(claimed_until=None)
    )
