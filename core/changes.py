"""The one way state changes: audit event + outgoing messages in the caller's transaction.

Every core service calls `record` after mutating rows, inside the same session; the caller
commits once, so either the change, its audit row and its messages all land, or none does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import audit, outbox
from core.clock import Clock
from core.messages import Destination, OutMessage
from core.models import Officer
from core.rules import Rules
from core.workdays import WorkCalendar, load_calendar


@dataclass
class Ctx:
    """What every service needs: the session (one transaction), the clock, who acts, the rules.

    Calling convention: every public core service, reads included, takes a Ctx as its first
    argument, so callers never choose between a session and a context. Only the storage layer
    Ctx and the workers are built on takes a bare session (`audit`, `outbox`, `inbox`,
    `leases`, `codes`, `workdays.load_calendar`, `draws.pool.fetch_plain`), as does the
    synthetic data generator; pure functions take neither."""

    session: AsyncSession
    clock: Clock
    actor: Officer | None = None  # None = the system (scheduler, CLI as admin)
    rules: Rules = field(default_factory=Rules)
    actor_label: str = "system"
    calendar: WorkCalendar | None = None  # loaded on first use from holiday_year

    async def work_calendar(self) -> WorkCalendar:
        if self.calendar is None:
            self.calendar = await load_calendar(self.session)
        return self.calendar

    @property
    def actor_name(self) -> str:
        return self.actor.code if self.actor is not None else self.actor_label


@dataclass(frozen=True)
class Notice:
    dest: Destination
    msg: OutMessage
    key: str | None = None  # idempotency key


async def record(
    ctx: Ctx,
    action: str,
    subject: str,
    data: dict[str, Any] | None = None,
    notices: Iterable[Notice] = (),
) -> None:
    now = ctx.clock.now()
    # the messages first: the audit append locks the chain's head, the one row every writing
    # transaction of every process waits for, until commit; a notice to twenty departments
    # no longer holds it (on PostgreSQL the only lock two serve processes were seen waiting on)
    await outbox.enqueue_many(ctx.session, [(n.dest, n.msg, n.key) for n in notices], now=now)
    await audit.append(
        ctx.session, at=now, actor=ctx.actor_name, action=action, subject=subject, data=data
    )
