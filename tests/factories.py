"""Small typed builders of test data, shared by all test modules.

They add and flush (never commit), so a test decides where its transaction ends. Codes and names
come from one counter, so builders can be called any number of times in one database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.consultation import answers, creation, opening
from core.models import (
    Base,
    Department,
    GroupMember,
    Invitation,
    Item,
    JointTask,
    Officer,
    Target,
)
from core.uscc import check_char

_serial = count(1)

RULE_5PCT: dict[str, Any] = {"strata": [{"name": "全部", "ratio": "0.05"}]}
WINDOW = (dt.date(2026, 3, 16), dt.date(2026, 6, 30))


def _next() -> int:
    return next(_serial)


def valid_uscc(n: int, region: str = "330424") -> str:
    """A valid 18-character USCC numbered n (enterprise '91', 9-digit organisation code)."""
    body = f"91{region}{n:09d}"
    return body + check_char(body)


def group_members(case_id: int, members: Sequence[Officer]) -> list[GroupMember]:
    """A case's inspection group (检查组) as rows to add: `members`, the first its leader."""
    return [
        GroupMember(
            case_id=case_id,
            officer_id=o.id,
            department_id=o.department_id,
            is_leader=o is members[0],
        )
        for o in members
    ]


async def department(
    session: AsyncSession, name: str | None = None, *, code: str | None = None, market: bool = False
) -> Department:
    n = _next()
    dep = Department(
        code=code or f"D{n:03d}",
        name=name or f"测试部门{n}",
        short_name=f"部门{n}",
        is_market_regulator=market,
    )
    session.add(dep)
    await session.flush()
    return dep


async def officer(
    session: AsyncSession,
    dep: Department,
    *roles: str,
    name: str | None = None,
    active: bool = True,
) -> Officer:
    n = _next()
    off = Officer(
        code=f"P{n:05d}",
        name=name or f"人员{n}",
        department_id=dep.id,
        roles=list(roles or ("inspector",)),
        cert_no=f"ZF{n:06d}",
        active=active,
    )
    session.add(off)
    await session.flush()
    return off


async def item(
    session: AsyncSession, dep: Department, *, key: bool = False, name: str | None = None
) -> Item:
    n = _next()
    it = Item(
        department_id=dep.id,
        code=f"SX{n:04d}",
        name=name or f"抽查事项{n}",
        category="key" if key else "general",
    )
    session.add(it)
    await session.flush()
    return it


async def targets(session: AsyncSession, n: int, **columns: Any) -> list[Target]:
    """n targets with valid USCCs; `columns` (status,
    risk_level, flags, kind, region…) apply to all."""
    if n == 0:
        return []  # an empty executemany would insert one row of defaults
    # blocks of 100,000 numbers, wrapped within the USCC's 9 digits: a worker of a long run
    # passes serial 10,000, which made a 10-digit number and an 18-character body
    first = _next() * 100_000 % 10**9
    rows = [
        {
            "uscc": valid_uscc(first + i),
            "name": f"测试企业{first + i}有限公司",
            "address": f"测试路{i + 1}号",
            **columns,
        }
        for i in range(n)
    ]
    await session.execute(insert(Target), rows)
    found = await session.scalars(
        select(Target).where(Target.uscc.in_([r["uscc"] for r in rows])).order_by(Target.uscc)
    )
    return list(found)


@dataclass
class Dept:
    """A member department with its people and items."""

    dep: Department
    liaison: Officer
    leader: Officer
    inspectors: list[Officer]
    items: list[Item]


@dataclass
class World:
    lead: Dept
    partners: list[Dept]
    targets: list[Target] = field(default_factory=list)
    admin: Officer | None = None


async def dept(
    session: AsyncSession,
    *,
    inspectors: int = 3,
    key_items: int = 0,
    general_items: int = 1,
    name: str | None = None,
) -> Dept:
    dep = await department(session, name)
    items = [await item(session, dep, key=True) for _ in range(key_items)]
    items += [await item(session, dep) for _ in range(general_items)]
    return Dept(
        dep,
        await officer(session, dep, "liaison"),
        await officer(session, dep, "leader"),
        [await officer(session, dep, "inspector") for _ in range(inspectors)],
        items,
    )


async def world(
    session: AsyncSession,
    *,
    partners: int = 2,
    inspectors: int = 3,
    n_targets: int = 40,
    **target_columns: Any,
) -> World:
    lead = await dept(session, inspectors=inspectors, name="县市场监督管理局")
    others = [await dept(session, inspectors=inspectors) for _ in range(partners)]
    w = World(lead, others, await targets(session, n_targets, **target_columns))
    w.admin = await officer(session, lead.dep, "admin")
    return w


def as_actor(ctx: Ctx, actor: Officer | None) -> Ctx:
    """The same session and clock, acting as `actor`."""
    return Ctx(
        session=ctx.session, clock=ctx.clock, actor=actor, rules=ctx.rules, calendar=ctx.calendar
    )


async def draft_task(
    ctx: Ctx,
    w: World,
    *,
    rule: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    title: str = "2026年食品经营者联合抽查",
    again: bool = False,
) -> JointTask:
    return await creation.create_task(
        as_actor(ctx, w.lead.liaison),
        title=title,
        lead_department_id=w.lead.dep.id,
        window_start=WINDOW[0],
        window_end=WINDOW[1],
        item_ids=[i.id for i in w.lead.items],
        scope=scope or {},
        rule=rule or RULE_5PCT,
        again=again,
    )


async def invite_first_partner(ctx: Ctx, w: World) -> tuple[JointTask, Invitation]:
    """A draft task of `w` sent for consultation to its first partner alone (by the lead's
    liaison): the task and that partner's pending invitation."""
    task = await draft_task(ctx, w)
    [inv] = await opening.open_consultation(
        as_actor(ctx, w.lead.liaison), task, [w.partners[0].dep.id]
    )
    return task, inv


async def ready_task(
    ctx: Ctx,
    w: World,
    *,
    rule: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    accept: Sequence[Dept] | None = None,
    title: str = "2026年食品经营者联合抽查",
) -> JointTask:
    """A task ready to draw: consulted, every partner in `accept` (default all) accepted, the
    others declined with a reason."""
    task = await draft_task(ctx, w, rule=rule, scope=scope, title=title)
    lead_ctx = as_actor(ctx, w.lead.liaison)
    invitations = await opening.open_consultation(
        lead_ctx, task, [p.dep.id for p in w.partners], single_department=not w.partners
    )
    accepting = w.partners if accept is None else accept
    for inv, p in zip(invitations, w.partners, strict=True):
        if p in accepting:
            await answers.accept_invitation(as_actor(ctx, p.liaison), inv.id)
        else:
            await answers.decline_invitation(
                as_actor(ctx, p.liaison), inv.id, "本部门本季度执法力量已全部投入专项整治"
            )
    assert task.state == "ready"
    return task


async def snapshot(
    session: AsyncSession, tables: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Every row of every table (as text), to prove a refused operation changed nothing."""
    await session.flush()
    wanted = set(tables) if tables is not None else None
    out: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        if wanted is None or table.name in wanted:
            rows = (await session.execute(select(table))).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out
