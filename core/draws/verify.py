"""Recompute a draw from what is public after lock (docs/architecture.md §3): the pool file,
the revealed seed, the beacon and the rule. Used by `lianjian draw verify` and the public results
page."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from core.cases import sees_inside
from core.changes import Ctx
from core.draws import algorithm
from core.draws.pool import decode_pool
from core.errors import NotFound
from core.jointtask import task_by_id
from core.models import Case, Draw, DrawPool, JointTask, Officer, Recusal
from core.models.cases import CHANGE_LABELS
from core.states import DrawState

PUBLIC_DRAW_KIND = "targets"  # inspector draws hold officer codes: not published


@dataclass(frozen=True)
class Check:
    label: str  # Chinese, shown as is
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    draw_code: str
    locked: bool
    checks: list[Check] = field(default_factory=list)
    replaced_by: str = ""  # a voided freeze: the draw frozen in its place
    # an inspector draw: the group changes since its lock, by kind's label (回避, 更换)
    changed: dict[str, int] = field(default_factory=dict)
    task_code: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


async def pool_csv_text(ctx: Ctx, draw_id: int) -> str:
    """The exported pool file ("id,stratum" header, one line per candidate, sorted by id)."""
    stored = await ctx.session.get(DrawPool, draw_id)
    if stored is None:
        raise NotFound(f"抽取记录（编号 {draw_id}）没有冻结的抽取范围文件")
    return zlib.decompress(stored.data).decode()


def _same(label: str, expected: Any, got: Any) -> Check:
    return Check(
        label, expected == got, "一致" if expected == got else f"记录值 {expected}，复算值 {got}"
    )


def no_draw(ref: str) -> NotFound:
    """A draw reference that names no draw (or none the asker may see: the same words)."""
    return NotFound(f"未找到抽取记录 {ref}，请核对抽取编号（形如 LJ-2026-001-T1）")


async def verify_draw(ctx: Ctx, draw_id: int) -> VerifyReport:
    d = await ctx.session.get(Draw, draw_id)
    if d is None:
        raise NotFound(f"未找到抽取记录（编号 {draw_id}）")
    report = VerifyReport(d.code, d.state == "locked", task_code=d.task_code)
    stored = await ctx.session.get(DrawPool, d.id)
    if stored is None:
        report.checks.append(Check("抽取范围文件", False, "缺少冻结的抽取范围文件"))
        return report
    pool = decode_pool(stored.data)
    report.checks.append(_same("抽取范围哈希", d.pool_hash, algorithm.pool_hash(pool)))
    report.checks.append(_same("抽取范围数量", d.pool_size, len(pool)))
    if d.state == DrawState.SUPERSEDED:
        report.replaced_by = await _replacement(ctx, d)
        return report
    if d.state != DrawState.LOCKED:
        report.checks.append(Check("种子承诺值", True, "尚未锁定，种子未公开，待锁定后核对"))
        return report
    seed = bytes.fromhex(d.seed_hex)
    report.checks.append(_same("种子承诺值", d.commitment, algorithm.commitment(seed)))
    if d.uses_beacon:
        report.checks.append(Check(_beacon_label(d), bool(d.beacon), d.beacon or "缺少信标值"))
    rule = algorithm.parse_rule(d.parameters["rule"])
    recomputed = algorithm.select(
        pool, rule, algorithm.final_seed(seed, d.beacon or None), d.task_code
    )
    same = recomputed == list(d.selection)
    report.checks.append(
        Check(
            "抽取结果",
            same,
            f"{len(recomputed)} 个，与锁定结果一致"
            if same
            else f"锁定 {len(d.selection)} 个，复算 {len(recomputed)} 个，不一致",
        )
    )
    if d.kind == "inspectors" and d.task_id is not None:
        report.changed = await _group_changes(ctx, d)
    return report


async def _group_changes(ctx: Ctx, d: Draw) -> dict[str, int]:
    """The approved 回避 and 更换 in the task's groups since the inspector draw was locked
    (000 §八, 001 第十四条): the recomputation checks the draw as locked, so a reader must be
    told the groups are no longer all of its making."""
    rows = await ctx.session.execute(
        select(Recusal.kind, func.count())
        .join(Case, Case.id == Recusal.case_id)
        .where(Case.task_id == d.task_id, Recusal.created_at >= d.locked_at)
        .group_by(Recusal.kind)
    )
    return {CHANGE_LABELS[kind]: n for kind, n in sorted(rows.all())}


def _beacon_label(d: Draw) -> str:
    """Only that the stored value was used can be checked here; whether it is the right value
    is for the reader to compare: a public beacon against its source's own announcement, a
    quick draw's colleague number (no publication) against the lock receipt posted in the
    requester's department chat, which names who supplied it."""
    if d.parameters.get("beacon_mode") == "peer":
        by = d.parameters.get("beacon_by", "发起人以外的一名人员")
        return f"信标值（{by} 提供的数字，已用于计算；请对照锁定时发到牵头部门群的快抽回执核对）"
    return f"信标值（已用于计算；请对照{d.beacon_source}的官方公布核对）"


async def _replacement(ctx: Ctx, d: Draw) -> str:
    """The code of the freeze that voided `d` (the task's next one)."""
    code = await ctx.session.scalar(
        select(Draw.code).where(
            Draw.task_id == d.task_id, Draw.kind == d.kind, Draw.freeze_no == d.freeze_no + 1
        )
    )
    assert code is not None  # only a new freeze supersedes one
    return code


def draw_public_json(d: Draw) -> dict[str, Any]:
    """What anyone may see: the seed and the selection only once the draw is locked."""
    locked = d.state == DrawState.LOCKED
    return {
        "code": d.code,
        "task_code": d.task_code,
        "kind": d.kind,
        "state": d.state,
        "freeze_no": d.freeze_no,
        "algorithm_version": d.algorithm_version,
        "commitment": d.commitment,
        "seed": d.seed_hex if locked else None,
        "beacon_source": d.beacon_source,
        "beacon": d.beacon if locked else None,
        "uses_beacon": d.uses_beacon,
        "pool_hash": d.pool_hash,
        "pool_size": d.pool_size,
        "rule": d.parameters.get("rule"),
        "selection": list(d.selection) if locked else [],
    }


async def draws_for(ctx: Ctx, ref: str) -> list[Draw]:
    """A draw by its code, or every current (not superseded) draw of a task by task code;
    only those the actor may see (`may_see`), so another department's officer verifies what
    /public/draws shows and no more."""
    found = list(await ctx.session.scalars(select(Draw).where(Draw.code == ref)))
    if not found:
        found = list(
            await ctx.session.scalars(
                select(Draw)
                .join(JointTask, JointTask.id == Draw.task_id)
                .where(JointTask.code == ref, Draw.state != DrawState.SUPERSEDED)
                .order_by(Draw.id)
            )
        )
    return [d for d in found if await may_see(ctx, d)]


async def may_see(ctx: Ctx, d: Draw) -> bool:
    """Target draws are public (/public/draws). An inspector draw names officers and is not
    (002 二(六): before publication a task's groups belong to its departments): a task's
    inspector draw is shown to the task's departments, a quick one to its starter's department
    and the drawn officers' departments; the system and admins see every draw."""
    actor = ctx.actor
    if d.kind == PUBLIC_DRAW_KIND or actor is None or actor.has_role("admin"):
        return True
    if d.task_id is not None:
        return await sees_inside(ctx, await task_by_id(ctx, d.task_id))
    drawn = [i.removeprefix(algorithm.INSPECTOR_PREFIX) for i in d.selection]
    departments = set(
        await ctx.session.scalars(
            select(Officer.department_id).where(
                (Officer.id == d.created_by_id) | Officer.code.in_(drawn)
            )
        )
    )
    return actor.department_id in departments


async def all_draws(ctx: Ctx) -> list[Draw]:
    """Every draw, task and quick draws alike, oldest first (`lianjian draw list`)."""
    return list(await ctx.session.scalars(select(Draw).order_by(Draw.id)))


async def find_draw(ctx: Ctx, ref: str) -> Draw:
    """A draw by id, by its code (LJ-2026-001-T1, KC-2026-0001), or by task code (its newest
    target draw, locked ones first)."""
    if ref.isdigit():
        cond = Draw.id == int(ref)
    else:
        cond = (Draw.code == ref) | ((Draw.task_code == ref) & (Draw.kind == "targets"))
    found = await ctx.session.scalar(
        select(Draw)
        .where(cond)
        .order_by((Draw.state == DrawState.LOCKED).desc(), Draw.id.desc())
        .limit(1)
    )
    if found is None:
        raise no_draw(ref)
    return found
