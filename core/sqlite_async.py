"""aiosqlite with one trip to the connection's thread per statement, or none.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes
four such calls per statement: open a cursor, execute, fetch all, close. Each trip wakes the
thread and then the event loop (a queue put, a self-pipe write, an epoll round): measured in
the inbox worker at ~70 trips per handled command, most of its CPU on SQLite. Here a statement
is one trip: the cursor is opened, the statement executed and its first rows fetched together;
fetches are served from those rows, and only a cursor left with rows unread (a streamed
result) goes back to the thread for more or to be closed. Everything else (the thread, commit,
rollback, errors) is aiosqlite's.

Inside `inline()` (the web pages' transactions) a statement skips the trip: it runs on the
event loop's own thread, as a plain sqlite3 call does. The trip cost about as much CPU as
SQLAlchemy's own work for a small statement, and a small statement on a local file takes
microseconds; what must not happen is the loop stalling. So an inline statement never waits
for a lock (busy timeout 0: a locked database sends it to the thread, which waits as before),
and a SELECT that runs past a budget of SQLite VM steps is interrupted and run again on the
thread (an interrupted read undoes nothing; writes are never interrupted, as that would roll
back the whole transaction). Ending a transaction (commit, rollback, RELEASE), PRAGMAs and
streamed fetches always use the thread, and the thread's statements wait for locks again.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import aiosqlite

T = TypeVar("T")
PREFETCH = 256  # rows fetched with the statement; a longer result is fetched on demand
# VM steps an inline SELECT may take (~ a few ms) before it is interrupted and sent to the thread
INLINE_STEPS = 100_000
BUSY_TIMEOUT_MS = 10_000  # the thread's wait for a lock (core.db sets the same at connect)
_inline: ContextVar[bool] = ContextVar("sqlite_inline", default=False)


@contextlib.contextmanager
def inline() -> Iterator[None]:
    """Run this task's statements on the event loop's thread (see the module docstring)."""
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


class _Deferred(Exception):
    """An inline statement that must run on the thread instead (locked, or too long)."""


_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


_THREAD_ONLY = re.compile(r"\s*(PRAGMA|RELEASE|COMMIT|END|ROLLBACK)\b", re.IGNORECASE)


def _thread_only(sql: str) -> bool:
    """Statements that always take the trip: a PRAGMA may change the busy timeout the inline
    path relies on, and one that ends a transaction may checkpoint the WAL (file I/O, kept off
    the loop). pysqlite opens no transaction before a SAVEPOINT, so releasing the outermost
    savepoint is the commit."""
    return _THREAD_ONLY.match(sql) is not None


def _reads_only(sql: str) -> bool:
    """A SELECT, or a WITH … SELECT naming no write (a false "no" only costs the interrupt)."""
    head = sql.lstrip()[:6].upper()
    return head == "SELECT" or (head[:4] == "WITH" and not _WRITES.search(sql))


def _stop() -> int:
    return 1  # the progress handler's answer: interrupt the statement


class Cursor(aiosqlite.Cursor):
    """A cursor created on the connection's thread by its first `execute`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = self._owner = conn
        self.iter_chunk_size = conn._iter_chunk_size
        self._cursor: sqlite3.Cursor | None = None  # type: ignore[assignment]
        self._rows: list[Any] = []
        self._more = False  # rows may remain unread on the sqlite3 cursor

    async def __aenter__(self) -> Cursor:  # SQLAlchemy enters the cursor it asked for
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        def run() -> tuple[sqlite3.Cursor, list[Any]]:
            cursor = self._cursor if self._cursor is not None else self._owner._conn.cursor()
            cursor.execute(sql, () if parameters is None else parameters)
            rows = cursor.fetchmany(PREFETCH) if cursor.description else []
            return cursor, rows

        done = None
        if _inline.get() and self._owner._connection is not None and not _thread_only(sql):
            with contextlib.suppress(_Deferred):
                done = self._owner.now(run, read=_reads_only(sql))
        self._cursor, self._rows = done if done is not None else await self._owner.run(run)
        self._more = len(self._rows) == PREFETCH
        return self

    async def executemany(self, sql: str, parameters: Any) -> Cursor:
        def run() -> sqlite3.Cursor:
            cursor = self._cursor if self._cursor is not None else self._owner._conn.cursor()
            cursor.executemany(sql, parameters)
            return cursor

        self._cursor, self._rows, self._more = await self._owner.run(run), [], False
        return self

    async def fetchone(self) -> Any:
        rows = await self.fetchmany(1)
        return rows[0] if rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        if len(self._rows) < size and self._more:
            cursor, want = self._cursor, size - len(self._rows)
            assert cursor is not None
            more = await self._owner.run(lambda: cursor.fetchmany(want))
            self._rows, self._more = self._rows + more, len(more) == want
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    async def fetchall(self) -> list[Any]:
        if self._more:
            assert self._cursor is not None
            self._rows += await self._owner.run(self._cursor.fetchall)
            self._more = False
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        """A cursor read to the end holds nothing in SQLite any more: nothing to do."""
        self._rows = []
        if self._cursor is not None and self._more:  # its attributes stay readable
            self._more = False
            await self._owner.run(self._cursor.close)

    @property
    def rowcount(self) -> int:
        return -1 if self._cursor is None else self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return None if self._cursor is None else self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return 1 if self._cursor is None else self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        if self._cursor is not None:
            self._cursor.arraysize = value

    @property
    def description(self) -> Any:
        return None if self._cursor is None else self._cursor.description


class Connection(aiosqlite.Connection):
    # False while the busy timeout is 0, as the last inline statement left it: set back on the
    # next trip to the thread (not after every inline statement: two more calls each)
    _waits = True

    def cursor(self) -> Cursor:  # type: ignore[override]
        return Cursor(self)

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """aiosqlite's trip to the thread, where statements wait for locks again."""
        if self._waits or self._connection is None:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        self._waits = True
        conn = self._connection

        def waiting() -> Any:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return fn(*args, **kwargs)

        return await super()._execute(waiting)  # type: ignore[no-untyped-call]

    async def commit(self) -> None:
        """As sqlite3 does, nothing when no transaction is open (a page that only read), but
        without the trip to the thread to find that out."""
        if self._connection is None or self._connection.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._connection is None or self._connection.in_transaction:
            await super().rollback()

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on the connection's thread."""
        return cast(T, await self._execute(fn))

    def now(self, fn: Callable[[], T], *, read: bool) -> T:
        """`fn()` (one statement) on this thread, without waiting for a lock and, for a read,
        within INLINE_STEPS; _Deferred when it must go to the thread instead. A statement
        refused for a lock or interrupted has changed nothing."""
        conn = self._conn
        if self._waits:
            conn.execute("PRAGMA busy_timeout = 0")
            self._waits = False
        if read:
            conn.set_progress_handler(_stop, INLINE_STEPS)
        try:
            return fn()
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_INTERRUPT):
                raise _Deferred from err
            raise
        finally:
            if read:
                conn.set_progress_handler(None, 0)


def connector(path: str, **kwargs: Any) -> Callable[[], Any]:
    """For create_async_engine(async_creator=…): a connection to the SQLite file at `path`."""

    async def connect() -> Connection:
        conn = Connection(lambda: sqlite3.connect(path, **kwargs), 64)
        conn._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        return cast(Connection, await conn)

    return connect
