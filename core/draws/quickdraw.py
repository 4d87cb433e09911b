"""Quick ad-hoc verifiable draws (快抽): N inspectors or N targets, outside any joint task.

Same contract as a task draw (docs/architecture.md §3): the pool is frozen and hashed, the
seed committed, keys are SHA-256(final seed ‖ draw code ‖ 0x00 ‖ id), the k smallest win, and
the Draw row and its pool are stored so `验证 KC-2026-0001` recomputes it. The draw code doubles as
the "task code" hashed into the keys. Without a required beacon
(rules.quick_draw_requires_beacon False) the draw
is computed and locked at once and the receipt says no public beacon was used; with it, the draw
is frozen with its beacon source and `confirm_quick_draw` locks it once the beacon is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from core import codes
from core.changes import Ctx, record
from core.draws import algorithm, pool
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.models import DRAWABLE_STATUSES, Department, Draw, DrawPool, Officer, Target
from core.states import DRAW, DrawState

CODE_PREFIX = "KC"
INSPECTOR_STRATUM = "执法人员"
TARGET_STRATUM = "检查对象"
MAX_COUNT = 200  # a quick draw is for a handful; bigger draws belong in a joint task
STARTER_ROLES = ("liaison", "leader", "admin")  # inspectors are drawn, they do not draw
NO_BEACON_NOTE = "本次快抽未使用公开信标"

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
    return await _create(ctx, "inspectors", INSPECTOR_STRATUM, ids, count, filters, beacon_source)


async def draw_targets(
    ctx: Ctx, count: int, industry: str = "", region: str = "", beacon_source: str = ""
) -> Draw:
    """Draw `count` drawable targets (存续/停业) whose industry and region contain the words."""
    _require_starter(ctx, "targets")
    filters = {"industry": industry, "region": region}
    stmt = select(Target.uscc).where(Target.status.in_(DRAWABLE_STATUSES))
    if industry:
        stmt = stmt.where(Target.industry.contains(industry, autoescape=True))
    if region:
        stmt = stmt.where(Target.region.contains(region, autoescape=True))
    ids = list(await ctx.session.scalars(stmt))
    if not ids:
        raise ValidationFailed("没有符合条件的检查对象，请调整行业或区域")
    return await _create(ctx, "targets", TARGET_STRATUM, ids, count, filters, beacon_source)


async def _create(
    ctx: Ctx,
    kind: Kind,
    stratum: str,
    ids: list[str],
    count: int,
    filters: dict[str, str],
    beacon_source: str,
) -> Draw:
    if not 1 <= count <= MAX_COUNT:
        raise ValidationFailed(f"快抽数量须在 1 到 {MAX_COUNT} 之间")
    needs_beacon = ctx.rules.quick_draw_requires_beacon
    if needs_beacon and not beacon_source:
        raise ValidationFailed("本系统要求快抽使用公开信标，请在指令末尾写明信标来源")
    candidates = sorted((i, stratum) for i in ids)
    rule = algorithm.SamplingRule(strata=[algorithm.StratumRule(name=stratum, count=count)])
    seed = algorithm.new_seed()
    now = ctx.clock.now()
    code = await codes.next_code(ctx.session, CODE_PREFIX, ctx.clock.today().year, width=4)
    row = Draw(
        code=code,
        task_id=None,
        kind=kind,
        task_code=code,
        state=DRAW.start(DrawState.FROZEN),
        freeze_no=1,
        commitment=algorithm.commitment(seed),
        seed_hex=seed.hex(),
        beacon_source=beacon_source if needs_beacon else "",
        uses_beacon=needs_beacon,
        pool_hash=algorithm.pool_hash(candidates),
        pool_size=len(candidates),
        parameters={
            "quick": True,
            "count": count,
            "filters": filters,
            "rule": rule.public(),
            "strata": algorithm.stratum_sizes(candidates),
        },
        algorithm_version=algorithm.ALGORITHM_VERSION,
        selection=[],
        created_by_id=ctx.actor.id if ctx.actor else None,
        frozen_at=now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=row.id, data=pool.encode_pool(candidates)))
    await record(ctx, "quickdraw.frozen", f"draw:{code}", _public(row))
    if not needs_beacon:
        await _lock(ctx, row, candidates, beacon="")
    return row


async def confirm_quick_draw(ctx: Ctx, code: str, beacon: str) -> Draw:
    """Enter the public beacon of a frozen quick draw, compute the selection once and lock it.

    Only the draw's creator or an admin may enter the beacon. The row is locked and re-read
    so two concurrent confirms cannot both compute (the second finds it locked)."""
    row = await ctx.session.scalar(
        select(Draw)
        .where(Draw.code == code, Draw.task_id.is_(None))
        .with_for_update(of=Draw)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(f"未找到快抽 {code}")
    actor = ctx.actor
    if actor is not None and actor.id != row.created_by_id and not actor.has_role("admin"):
        raise PermissionDenied(
            f"只有发起快抽 {code} 的人员或管理员可以确认抽取",
            action="quickdraw.confirm",
            subject=f"draw:{code}",
        )
    if row.state != DrawState.FROZEN:
        raise InvalidTransition(f"快抽 {code} 已锁定，结果不能再变")
    if not beacon.strip():
        raise ValidationFailed("请填写信标值")
    data = await ctx.session.scalar(select(DrawPool.data).where(DrawPool.draw_id == row.id))
    assert data is not None, "a frozen draw always has its pool"
    await _lock(ctx, row, pool.decode_pool(data), beacon=beacon.strip())
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


async def _lock(ctx: Ctx, row: Draw, candidates: list[algorithm.Candidate], beacon: str) -> None:
    rule = algorithm.SamplingRule.model_validate(row.parameters["rule"])
    seed = bytes.fromhex(row.seed_hex)
    row.beacon = beacon
    row.selection = algorithm.select(
        candidates, rule, algorithm.final_seed(seed, beacon or None), row.code
    )
    DRAW.move(row, DrawState.LOCKED)
    row.locked_at = ctx.clock.now()
    await ctx.session.flush()
    await record(
        ctx,
        "quickdraw.locked",
        f"draw:{row.code}",
        {**_public(row), "seed": row.seed_hex, "beacon": beacon, "selection": row.selection},
    )


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
