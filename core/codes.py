"""Human-readable codes from named counters (task LJ-2026-001, quick draw KC-2026-0001).

The counter row is bumped with a single INSERT … ON CONFLICT DO UPDATE … RETURNING, so two
processes never hand out the same number and no row lock is held across statements.
"""

from __future__ import annotations

import re

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


# a task's number, as next_code writes it (LJ-2026-001)
TASK_NUMBER = re.compile(r"LJ-\d{4}-\d+")
# a case's number: its task's and then the case's, three digits (core.draws.targets) — written
# with fewer (LJ-2026-001-7), the zeros before them were left out
_SHORT_CASE_NUMBER = re.compile(r"([A-Z]+-\d{4}-\d+)-(\d{1,2})")
CASE_NUMBER_WIDTH = 3


def case_number(code: str) -> str:
    """The code upper-cased; a case's number written without its leading zeros
    (LJ-2026-001-7) in full (LJ-2026-001-007). Any other code is only upper-cased."""
    code = code.strip().upper()
    short = _SHORT_CASE_NUMBER.fullmatch(code)
    if short is None:
        return code
    return f"{short.group(1)}-{short.group(2).zfill(CASE_NUMBER_WIDTH)}"


async def next_code(session: AsyncSession, prefix: str, year: int, width: int = 3) -> str:
    """`PREFIX-YEAR-NNN`, numbered per prefix and year (LJ-2026-001, LJ-2026-002, …)."""
    n = await next_value(session, f"{prefix}-{year}")
    return f"{prefix}-{year}-{n:0{width}d}"
