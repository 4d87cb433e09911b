"""Engine and session factory. SQLite file by default; any SQLAlchemy async URL otherwise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core import sqlite_async

DEFAULT_SQLITE_FILE = "lianjian.sqlite3"


def database_url(value: str | None) -> str:
    """Accept a file path or an SQLAlchemy URL; plain PostgreSQL and SQLite URLs get the async
    drivers (SQLAlchemy's own `sqlite:///file` names the synchronous one, which fails)."""
    if not value:
        value = DEFAULT_SQLITE_FILE
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + value.split("://", 1)[1]
    if value.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + value.split("://", 1)[1]
    if "://" in value:
        return value
    return f"sqlite+aiosqlite:///{Path(value).expanduser().resolve()}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web page read while the sender writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={sqlite_async.BUSY_TIMEOUT_MS}")
    cur.close()


def make_engine(url: str | None) -> AsyncEngine:
    url = database_url(url)
    if is_sqlite(url):
        file = make_url(url).database
        if file and file != ":memory:" and "?" not in url:
            # a plain file: one trip to the connection's thread per statement (sqlite_async)
            creator = sqlite_async.connector(file, timeout=30, check_same_thread=False)
            engine = create_async_engine(url, async_creator=creator)
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    pool = engine.sync_engine.pool
    event.listen(pool, "connect", _used)
    event.listen(pool, "checkin", _used)
    event.listen(pool, "checkout", _ping_if_idle)
    return engine


# A pooled connection idle this long is pinged before it is handed out (a server restart or an
# idle timeout may have closed it); one in steady use is not: pool_pre_ping's round trip on
# every checkout was ~3 per handled callback. A connection that died within the window fails
# its first statement, and SQLAlchemy then replaces every pooled connection.
PING_IDLE_S = 5.0
_USED = "lianjian.used_at"


def _used(_dbapi_conn: Any, record: Any) -> None:
    record.info[_USED] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get(_USED, 0.0) < PING_IDLE_S:
        return
    try:
        dbapi_conn.ping()
    except Exception as err:  # the pool discards it and checks out another
        raise exc.DisconnectionError("the pooled connection is gone") from err


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_lianjian_database(path: Path) -> bool:
    """An SQLite file with our migration table (checked read-only before anything opens it)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            return (
                con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchone()
                is not None
            )
    except sqlite3.DatabaseError:
        return False
