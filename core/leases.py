"""Claiming due rows with a lease, shared by the inbox and outbox workers.

A row is claimable when it is `pending`, due (`next_attempt_at <= now`) and not leased (or its
lease ran out, e.g. the worker died). One UPDATE … WHERE id IN (SELECT …) claims atomically on
both dialects: on PostgreSQL the inner SELECT locks with FOR UPDATE SKIP LOCKED so concurrent
processes take disjoint rows without waiting; SQLite serialises writers, so the same statement
is already exclusive there. The lease end doubles as a claim token for the later mark calls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import InboxEvent, OutboxMessage
from core.states import InboxState, OutboxState

Leased = type[InboxEvent] | type[OutboxMessage]


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def claim_due(
    session: AsyncSession,
    model: Leased,
    *,
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
    also: ColumnElement[bool] | None = None,
    fifo: bool = False,
) -> list[Any]:
    """Lease up to `limit` due rows (that also meet `also`); returns them in id order, each
    `claimed_until` the lease end, read back by the claiming statement itself (RETURNING: no
    second look-up). `fifo` takes the oldest rows first rather than the longest due.
    The caller commits at once so other workers see the lease."""
    pending = InboxState.PENDING if model is InboxEvent else OutboxState.PENDING
    due: Any = (
        select(model.id)
        .where(
            model.state == pending,
            model.next_attempt_at <= now,
            claimable(model, now),
            *([] if also is None else [also]),
        )
        .order_by(*((model.id,) if fifo else (model.next_attempt_at, model.id)))
        .limit(limit)
    )
    if _is_postgres(session):
        due = due.with_for_update(skip_locked=True)
        await session.execute(_WALK_THE_INDEX)
    claimed = await session.scalars(
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + lease)
        .returning(model)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(claimed.all(), key=lambda row: row.id)


# PostgreSQL, for the rest of the claim's transaction: find due rows by walking the index, never
# by a bitmap scan. Every row that was pending leaves a dead entry under "pending" in the index
# on state until VACUUM; an index walk marks the entries it passes dead, so the next claim skips
# them, while a bitmap scan (the planner's choice before the table's first ANALYZE, or with
# autovacuum off) reads them all again: 3,000 entries and 4 ms per claim in bench/soak.py
_WALK_THE_INDEX = text("SET LOCAL enable_bitmapscan = off")


def claimable(model: Leased, now: dt.datetime) -> ColumnElement[bool]:
    """Not leased, or its lease ran out (the worker died)."""
    return or_(model.claimed_until.is_(None), model.claimed_until < now)


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Capped exponential backoff with "equal jitter": half the delay fixed, half random.
    `attempt` counts from 1; `jitter` is a uniform random number in [0, 1)."""
    delay = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return delay / 2 + delay / 2 * jitter


@dataclass(frozen=True)
class Backlog:
    """What /healthz reports of the two queues."""

    pending_inbox: int
    dead_inbox: int
    pending_outbox: int
    dead_outbox: int


async def backlog(session: AsyncSession) -> Backlog:
    """The pending and dead rows of both queues, in one statement that reads those rows only
    (through the index on state; on PostgreSQL walking it, as a claim does), never the handled
    and sent rows a busy server keeps: a health check every few seconds must not scan them."""
    if _is_postgres(session):
        await session.execute(_WALK_THE_INDEX)

    def count(model: Leased, state: str) -> Any:
        return select(func.count()).select_from(model).where(model.state == state)

    found = await session.execute(
        select(
            count(InboxEvent, InboxState.PENDING).scalar_subquery(),
            count(InboxEvent, InboxState.DEAD).scalar_subquery(),
            count(OutboxMessage, OutboxState.PENDING).scalar_subquery(),
            count(OutboxMessage, OutboxState.DEAD).scalar_subquery(),
        )
    )
    return Backlog(*(int(n) for n in found.one()))
