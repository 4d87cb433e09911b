"""Human-readable codes from named counters (task LJ-2026-001, quick draw KC-2026-0001).

The counter row is bumped with a single INSERT … ON CONFLICT DO UPDATE … RETURNING, so two
processes never hand out the same number and no row lock is held across statements.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Sequence


async def next_value(session: AsyncSession, name: str) -> int:
    """The next value of counter `name` (1 for a new counter), in the caller's transaction."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Sequence).values(name=name, value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Sequence.name], set_={"value": Sequence.value + 1}
    )
    value = await session.scalar(stmt.returning(Sequence.value))
    assert value is not None
    return int(value)


async def next_code(session: AsyncSession, prefix: str, year: int, width: int = 3) -> str:
    """`PREFIX-YEAR-NNN`, numbered per prefix and year (LJ-2026-001, LJ-2026-002, …)."""
    n = await next_value(session, f"{prefix}-{year}")
    return f"{prefix}-{year}-{n:0{width}d}"
