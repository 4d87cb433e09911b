"""PostgreSQL's connection pool: a connection the server closed while it sat idle in the pool
is replaced before anyone uses it (core.db pings idle connections, not busy ones)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import db
from core.db import make_engine


async def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_database)
    killer = make_engine(pg_database)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with killer.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "PING_IDLE_S", 0.0)  # as if it had idled past the window
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
        await killer.dispose()
