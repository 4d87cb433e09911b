"""Quick ad-hoc verifiable draws (快抽): N inspectors or N targets, outside any joint task.

Same contract as a task draw (docs/architecture.md §3): the pool is frozen and hashed, the
seed committed, keys are SHA-256(final seed ‖ draw code ‖ 0x00 ‖ id), the k smallest win, and
the Draw row and its pool are stored so `验证 KC-2026-0001` recomputes it. The draw code doubles as
the "task code" hashed into the keys.

A quick draw is not a re-roll machine (002 二(五) 公开、公正):
- a target draw leaves out what a task draw of the requester's department would: targets not
  drawable, those the department inspected this year and those on the imported list of the
  level above (000 §五.1, 004 第八条);
- its outcome is fixed by two parties. The freeze posts the seed's commitment in the
  requester's department chat; then an officer other than the requester supplies the beacon,
  any number of their choosing (`确认快抽 编号 数字`), or — when a dated public beacon was named
  (`快抽 … 信标 2026年3月3日福彩3D开奖号码`, required by rules.quick_draw_requires_beacon) — its
  published value is entered once it is out. Neither the requester nor the bot alone can steer
  the selection;
- every receipt counts the earlier quick draws with the same parameters that day, so a
  re-roll is visible to everyone who reads it.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from core import codes
from core.changes import Ctx, Notice, record
from core.clock import china_midnight
from core.draws import algorithm, beacon, pool
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.messages import Destination, OutMessage
from core.models import DRAWABLE_STATUSES, Department, Draw, DrawPool, Officer, Target
from core.render import render
from core.states import DRAW, DrawState
from core.workdays import cn_datetime

CODE_PREFIX = "KC"
INSPECTOR_STRATUM = "执法人员"
TARGET_STRATUM = "检查对象"
MAX_COUNT = 200  # a quick draw is for a handful; bigger draws belong in a joint task
STARTER_ROLES = ("liaison", "leader", "admin")  # inspectors are drawn, they do not draw
# The beacon of a quick draw without a dated public one: a number from a second officer.
PEER_SOURCE = "发起人以外的一名人员提供的数字"
PEER_MAX_DIGITS = 20
_DIGITS = re.compile(r"[0-9]+")

Kind = Literal["inspectors", "targets"]


@dataclass(frozen=True)
class Chosen:
    id: str  # pool id: "inspector:<officer code>" or the target's USCC
    name: str
    detail: str  # department, or industry/region


async def draw_inspectors(
    ctx: Ctx, count: int, department: str = "", tag: str = "", beacon_source: str = ""
) -> Draw:
    """Draw `count` active inspectors, optionally of one department (name, short name or code)
    and with one expertise tag."""
    _require_starter(ctx, "inspectors")
    filters = {"department": department, "tag": tag}
    stmt = select(Officer.code, Officer.roles, Officer.expertise).where(Officer.active.is_(True))
    if department:
        dep_id = await ctx.session.scalar(
            select(Department.id).where(
                (Department.name == department)
                | (Department.short_name == department)
                | (Department.code == department)
            )
        )
        if dep_id is None:
            raise NotFound(f"未找到部门“{department}”")
        stmt = stmt.where(Officer.department_id == dep_id)
    rows = (await ctx.session.execute(stmt)).all()
    ids = [
        algorithm.INSPECTOR_PREFIX + code
        for code, roles, tags in rows
        if "inspector" in (roles or []) and (not tag or tag in (tags or []))
    ]
    if not ids:
        raise ValidationFailed("没有符合条件的执法检查人员，请调整部门或标签")
    return await _create(
        ctx, "inspectors", INSPECTOR_STRATUM, ids, count, filters, beacon_source, Counter()
    )


async def draw_targets(
    ctx: Ctx, count: int, industry: str = "", region: str = "", beacon_source: str = ""
) -> Draw:
    """Draw `count` targets whose industry and region contain the words, with a task draw's
    exclusions for the requester's department (the system's: every department's)."""
    _require_starter(ctx, "targets")
    filters = {"industry": industry, "region": region}
    stmt = select(Target.uscc, Target.status.in_(DRAWABLE_STATUSES))
    if industry:
        stmt = stmt.where(Target.industry.contains(industry, autoescape=True))
    if region:
        stmt = stmt.where(Target.region.contains(region, autoescape=True))
    rows = (await ctx.session.execute(stmt)).all()
    year = ctx.clock.today().year
    deps = (
        {ctx.actor.department_id}
        if ctx.actor is not None
        else set(await ctx.session.scalars(select(Department.id)))
    )
    ours = await pool.inspected_this_year(ctx.session, year, deps)
    above = await pool.imported_exclusions(ctx.session, year, deps)
    gone = await pool.gone_by_results(ctx.session)
    live = [uscc for uscc, drawable in rows if drawable and uscc not in gone]
    excluded = Counter(
        {
            pool.NOT_DRAWABLE: len(rows) - len(live),
            pool.INSPECTED_BY_US: len(ours.intersection(live)),
            pool.INSPECTED_ABOVE: len((above - ours).intersection(live)),
        }
    )
    ids = [u for u in live if u not in ours and u not in above]
    if not ids:
        raise ValidationFailed(
            f"没有符合条件的检查对象{pool.excluded_note(excluded, '个')}，请调整行业或区域"
        )
    return await _create(
        ctx, "targets", TARGET_STRATUM, ids, count, filters, beacon_source, excluded
    )


async def _create(
    ctx: Ctx,
    kind: Kind,
    stratum: str,
    ids: list[str],
    count: int,
    filters: dict[str, str],
    beacon_source: str,
    excluded: Counter[str],
) -> Draw:
    if not 1 <= count <= MAX_COUNT:
        raise ValidationFailed(f"快抽数量须在 1 到 {MAX_COUNT} 之间")
    if ctx.rules.quick_draw_requires_beacon and not beacon_source:
        raise ValidationFailed("本系统要求快抽使用公开信标，请在指令末尾写明“信标 信标来源”")
    beacon_day = beacon.future_beacon_day(ctx, beacon_source) if beacon_source else None
    candidates = sorted((i, stratum) for i in ids)
    rule = algorithm.SamplingRule(strata=[algorithm.StratumRule(name=stratum, count=count)])
    seed = algorithm.new_seed()
    now = ctx.clock.now()
    code = await codes.next_code(ctx.session, CODE_PREFIX, ctx.clock.today().year, width=4)
    earlier = await _earlier_same_day(ctx, kind, count, filters)
    row = Draw(
        code=code,
        task_id=None,
        kind=kind,
        task_code=code,
        state=DRAW.start(DrawState.FROZEN),
        freeze_no=1,
        commitment=algorithm.commitment(seed),
        seed_hex=seed.hex(),
        beacon_source=beacon_source or PEER_SOURCE,
        uses_beacon=True,
        pool_hash=algorithm.pool_hash(candidates),
        pool_size=len(candidates),
        parameters={
            "quick": True,
            "count": count,
            "filters": filters,
            "rule": rule.public(),
            "strata": algorithm.stratum_sizes(candidates),
            "exclusions": pool.in_order(excluded),
            "beacon_mode": "public" if beacon_day else "peer",
            **({"beacon_date": beacon_day.isoformat()} if beacon_day else {}),
            "earlier_same_day": earlier,
        },
        algorithm_version=algorithm.ALGORITHM_VERSION,
        selection=[],
        created_by_id=ctx.actor.id if ctx.actor else None,
        frozen_at=now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=row.id, data=pool.encode_pool(candidates)))
    await record(ctx, "quickdraw.frozen", f"draw:{code}", _public(row), await _announce(ctx, row))
    return row


async def _earlier_same_day(ctx: Ctx, kind: Kind, count: int, filters: dict[str, str]) -> list[str]:
    """Codes of today's earlier quick draws of the same kind, count and filters (any requester):
    printed on every receipt so that a re-roll is visible."""
    today = ctx.clock.today()
    rows = await ctx.session.execute(
        select(Draw.code, Draw.parameters)
        .where(
            Draw.task_id.is_(None),
            Draw.kind == kind,
            Draw.frozen_at >= china_midnight(today),
            Draw.frozen_at < china_midnight(today + dt.timedelta(days=1)),
        )
        .order_by(Draw.id)
    )
    return [
        code
        for code, params in rows
        if params.get("count") == count and params.get("filters") == filters
    ]


def peer_number(value: str) -> str:
    """The second officer's number: digits only (spaces allowed, dropped), at most 20."""
    digits = "".join(unicodedata.normalize("NFKC", value or "").split())
    if not _DIGITS.fullmatch(digits) or len(digits) > PEER_MAX_DIGITS:
        raise ValidationFailed(
            f"请提供一个由您自己确定的数字（1 到 {PEER_MAX_DIGITS} 位），例如 4711"
        )
    return digits


async def confirm_quick_draw(ctx: Ctx, code: str, value: str) -> Draw:
    """Supply the beacon of a frozen quick draw, compute the selection once and lock it.

    Without a dated public beacon the number must come from an officer other than the one who
    asked for the draw (two parties, 002 二(五)); a public beacon's published value is entered
    by the requester or an admin once it is out. The row is locked and re-read so two
    concurrent confirms cannot both compute (the second finds it locked)."""
    row = await ctx.session.scalar(
        select(Draw)
        .where(Draw.code == code, Draw.task_id.is_(None))
        .with_for_update(of=Draw)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(f"未找到快抽 {code}")
    actor = ctx.actor
    peer = row.parameters.get("beacon_mode") == "peer"
    if peer and (actor is None or actor.id == row.created_by_id):
        raise PermissionDenied(
            f"快抽 {code} 的信标须由发起人以外的一名人员提供，请同事发送“确认快抽 {code} 数字”",
            action="quickdraw.confirm",
            subject=f"draw:{code}",
        )
    if (
        not peer
        and actor is not None
        and actor.id != row.created_by_id
        and not actor.has_role("admin")
    ):
        raise PermissionDenied(
            f"只有发起快抽 {code} 的人员或管理员可以录入公开信标值",
            action="quickdraw.confirm",
            subject=f"draw:{code}",
        )
    if row.state != DrawState.FROZEN:
        raise InvalidTransition(f"快抽 {code} 已锁定，结果不能再变")
    if peer:
        assert actor is not None
        value = peer_number(value)
        row.parameters = {**row.parameters, "beacon_by": f"{actor.name}（{actor.code}）"}
    else:
        value = beacon.checked_beacon(ctx, row, value)
    data = await ctx.session.scalar(select(DrawPool.data).where(DrawPool.draw_id == row.id))
    assert data is not None, "a frozen draw always has its pool"
    await _lock(ctx, row, pool.decode_pool(data), value)
    return row


def _require_starter(ctx: Ctx, kind: Kind) -> None:
    """Quick draws are started by liaisons, leaders and admins (the system may too)."""
    actor = ctx.actor
    if actor is not None and not any(actor.has_role(r) for r in STARTER_ROLES):
        raise PermissionDenied(
            "只有联络员、分管领导或管理员可以发起快抽",
            action=f"quickdraw.start.{kind}",
            subject=f"officer:{actor.code}",
        )


async def _lock(ctx: Ctx, row: Draw, candidates: list[algorithm.Candidate], value: str) -> None:
    rule = algorithm.SamplingRule.model_validate(row.parameters["rule"])
    seed = bytes.fromhex(row.seed_hex)
    row.beacon = value
    row.selection = algorithm.select(candidates, rule, algorithm.final_seed(seed, value), row.code)
    DRAW.move(row, DrawState.LOCKED)
    row.locked_at = ctx.clock.now()
    await ctx.session.flush()
    await record(
        ctx,
        "quickdraw.locked",
        f"draw:{row.code}",
        {**_public(row), "seed": row.seed_hex, "beacon": value, "selection": row.selection},
        await _announce(ctx, row),
    )


async def receipt(ctx: Ctx, row: Draw) -> OutMessage:
    """The quick draw's receipt as it stands: frozen (commitment, how the beacon comes) or
    locked (the selection, seed and beacon); with the day's earlier draws of the same kind."""
    chosen = await describe(ctx, row) if row.state == DrawState.LOCKED else []
    ready = ""
    if day := row.parameters.get("beacon_date"):
        ready = cn_datetime(beacon.beacon_ready_at(dt.date.fromisoformat(day), ctx.rules))
    requester = await ctx.session.get(Officer, row.created_by_id) if row.created_by_id else None
    return OutMessage.md(
        f"快抽 {row.code}",
        render(
            "messages/cmd_quick_draw.md.j2",
            d=row,
            chosen=chosen,
            requester=requester,
            beacon_ready=ready,
        ),
    )


async def _announce(ctx: Ctx, row: Draw) -> list[Notice]:
    """The requester's department chat sees the freeze (the commitment, before anyone supplies
    a beacon) and the lock; a requester outside that chat gets the lock privately too."""
    if row.created_by_id is None:
        return [Notice(Destination.office(), await receipt(ctx, row))]
    requester = await ctx.session.get(Officer, row.created_by_id)
    assert requester is not None
    msg = await receipt(ctx, row)
    notices = [Notice(Destination.department(requester.department_id), msg)]
    if row.state == DrawState.LOCKED and (ctx.actor is None or ctx.actor.id != requester.id):
        notices.append(Notice(Destination.officer(requester.id), msg))
    return notices


async def describe(ctx: Ctx, row: Draw) -> list[Chosen]:
    """Names for the selected ids, in selection order."""
    if row.kind == "inspectors":
        codes_ = [i.removeprefix(algorithm.INSPECTOR_PREFIX) for i in row.selection]
        officers = {
            o.code: o
            for o in await ctx.session.scalars(select(Officer).where(Officer.code.in_(codes_)))
        }
        return [
            Chosen(algorithm.INSPECTOR_PREFIX + c, officers[c].name, officers[c].department.name)
            for c in codes_
        ]
    targets = {
        t.uscc: t
        for t in await ctx.session.scalars(select(Target).where(Target.uscc.in_(row.selection)))
    }
    return [
        Chosen(
            u, targets[u].name, " ".join(x for x in (targets[u].industry, targets[u].region) if x)
        )
        for u in row.selection
    ]


def _public(row: Draw) -> dict[str, Any]:
    return {
        "code": row.code,
        "kind": row.kind,
        "commitment": row.commitment,
        "pool_hash": row.pool_hash,
        "pool_size": row.pool_size,
        "uses_beacon": row.uses_beacon,
        "beacon_source": row.beacon_source,
        "parameters": row.parameters,
    }
