"""Driving Dispatcher.handle the way the inbox worker does, for the dispatcher and handler tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.services import Services
from core.changes import Ctx
from core.clock import Clock, FixedClock
from core.consultation import opening
from core.messages import Event
from core.models import AuditEvent, Officer, OutboxMessage
from core.rules import REASON_MAX_CHARS, Rules
from tests import factories as f

_ids = itertools.count(1)

LONG_REASON = "因" * (REASON_MAX_CHARS + 1)  # one character over any written reason's limit


def too_long(what: str) -> str:
    """The refusal of LONG_REASON as `what` (延期理由, 退回理由 …): its length, what to do."""
    return f"{what}不能超过 2000 个字，现有 2001 个字，请删减到 2000 个字以内"


def make_dispatcher(
    sm: async_sessionmaker[AsyncSession], clock: Clock, rules: Rules | None = None
) -> Dispatcher:
    services = Services(
        settings=Settings(),
        sessionmaker=sm,
        clock=clock,
        rules=rules or Rules(),
        link_secret=b"k" * 32,
        public_base_url="http://127.0.0.1:8080",
    )
    return Dispatcher(services)


def text_event(user_id: str, text: str, platform: str = "sim", **extra: Any) -> Event:
    return Event(
        platform=platform,
        event_id=f"e{next(_ids)}",
        kind="text",
        user_id=user_id,
        text=text,
        **extra,
    )


async def send(
    sm: async_sessionmaker[AsyncSession], d: Dispatcher, event: Event
) -> list[OutboxMessage]:
    """Handle one event in its own committed transaction, as the inbox worker does; return the
    outbox rows it added."""
    async with sm() as s:
        last = (
            await s.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)) or 0
        )
    async with sm() as s, s.begin():
        await d.handle(s, event)
    async with sm() as s:
        return list(
            await s.scalars(
                select(OutboxMessage).where(OutboxMessage.id > last).order_by(OutboxMessage.id)
            )
        )


def bodies(rows: list[OutboxMessage]) -> str:
    return "\n".join(r.message.get("body", "") for r in rows)


async def chat(sm: async_sessionmaker[AsyncSession], clock: FixedClock, who: str, text: str) -> str:
    """What the simulator answers (and notifies) when officer code `who` sends `text`."""
    return bodies(await send(sm, make_dispatcher(sm, clock), text_event(who, text)))


def told(rows: list[OutboxMessage], officer: Officer) -> str:
    """What `officer` was sent, of `rows`."""
    return bodies([r for r in rows if r.destination.get("officer_id") == officer.id])


async def audit_rows(sm: async_sessionmaker[AsyncSession], action: str) -> list[AuditEvent]:
    async with sm() as s:
        return list(await s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


async def ready_world(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, *, inspectors: int, n_targets: int
) -> tuple[f.World, str]:
    """One partner, a task ready to draw (consulted, accepted); returns the world and task code."""
    async with sm() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=inspectors, n_targets=n_targets)
        task = await f.ready_task(Ctx(session=s, clock=clock, rules=Rules()), w)
        return w, task.code


async def chat_world(sm: async_sessionmaker[AsyncSession]) -> f.World:
    """One partner, three inspectors each (two of the lead's with expertise tags), twelve
    餐饮服务 and five 食品生产 targets in 城关镇: the dispatcher and quick-draw tests' county."""
    async with sm() as s, s.begin():
        w = await f.world(
            s, partners=1, inspectors=3, n_targets=12, industry="餐饮服务", region="城关镇"
        )
        await f.targets(s, 5, industry="食品生产", region="城关镇")
        w.lead.inspectors[0].expertise = ["食品"]
        w.lead.inspectors[1].expertise = ["食品", "特种设备"]
    return w


@dataclass
class Scene:
    w: f.World
    task_code: str
    invitation_id: int  # the first partner's invitation
    partner: f.Dept


async def consultation_scene(session: AsyncSession, clock: FixedClock, *, n_targets: int) -> Scene:
    """A task out for consultation with two partner departments (the caller's transaction)."""
    w = await f.world(session, partners=2, inspectors=3, n_targets=n_targets)
    ctx = Ctx(session=session, clock=clock, rules=Rules())
    task = await f.draft_task(ctx, w)
    invitations = await opening.open_consultation(
        f.as_actor(ctx, w.lead.liaison), task, [p.dep.id for p in w.partners]
    )
    return Scene(w, task.code, invitations[0].id, w.partners[0])
