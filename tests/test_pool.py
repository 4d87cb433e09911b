"""Target and inspector pools: scope, exclusions by reason, strata, the repeat-check exception."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx
from core.draws import algorithm
from core.draws.pool import (
    INSPECTED_ABOVE,
    INSPECTED_BY_US,
    NO_STRATUM,
    NOT_DRAWABLE,
    OUT_OF_SCOPE,
    build_inspector_pool,
    build_target_pool,
    decode_pool,
    encode_pool,
)
from core.models import Case, Exclusion, Invitation, JointTask, Target, TaskItem
from core.rules import Rules
from tests import factories as f

RULE = {
    "strata": [
        {"name": "高风险", "risk_levels": ["D"], "flags": ["投诉举报"], "ratio": "0.1"},
        {"name": "一般", "risk_levels": ["B", "C"], "ratio": "0.05"},
    ]
}


async def _past_task(
    session: AsyncSession,
    lead_id: int,
    year: int,
    inspected: list[Target],
    accepted: Sequence[int] = (),
    inspected_on: dt.date | None = None,
) -> list[Case]:
    """An earlier task whose draw was locked: its cases (inspected on `inspected_on`) and
    accepted invitations."""
    n = f._next()
    task = JointTask(
        code=f"OLD-{n}",
        year=year,
        title="往期任务",
        lead_department_id=lead_id,
        window_start=dt.date(year, 1, 5),
        window_end=dt.date(year, 2, 5),
        state="inspecting",
        created_at=dt.datetime(year, 1, 1, tzinfo=dt.UTC),
    )
    session.add(task)
    await session.flush()
    session.add_all(
        Invitation(task_id=task.id, department_id=d, state="accepted") for d in accepted
    )
    cases = [
        Case(
            code=f"OLD-{n}-{i}",
            task_id=task.id,
            target_id=t.id,
            state="published",
            inspected_on=inspected_on,
        )
        for i, t in enumerate(inspected)
    ]
    session.add_all(cases)
    await session.flush()
    return cases


async def _scenario(ctx: Ctx) -> tuple[f.World, JointTask, dict[str, list[Target]]]:
    s = ctx.session
    w = await f.world(ctx.session, partners=1, n_targets=20, risk_level="D")
    lead, partner = w.lead.dep.id, w.partners[0].dep.id
    stranger = await f.department(s)
    groups = {
        "out_of_scope": await f.targets(s, 5, kind="个体工商户", risk_level="D")
        + await f.targets(s, 2, kind="个体工商户", status="注销"),
        "gone": await f.targets(s, 2, status="注销", risk_level="D")
        + await f.targets(s, 1, status="吊销")
        + await f.targets(s, 1, status="迁出"),
        "by_partner": await f.targets(s, 3, risk_level="C"),
        "by_stranger": await f.targets(s, 2, risk_level="C"),
        "last_year": await f.targets(s, 1, risk_level="B"),
        "above": await f.targets(s, 3, flags="投诉举报"),
        "not_above": await f.targets(s, 2, risk_level="B"),
        "no_stratum": await f.targets(s, 4, risk_level="A"),
        "paused": await f.targets(s, 1, status="停业", risk_level="D"),
    }
    other = await f.department(s)
    await _past_task(s, other.id, 2026, groups["by_partner"], accepted=[partner])
    await _past_task(s, stranger.id, 2026, groups["by_stranger"])
    await _past_task(s, lead, 2025, groups["last_year"])
    above = groups["above"]
    s.add_all(
        [
            Exclusion(year=2026, uscc=above[0].uscc, department_id=None, source="市局"),
            Exclusion(year=2026, uscc=above[1].uscc, department_id=None, source="省局"),
            Exclusion(year=2026, uscc=above[2].uscc, department_id=partner, source="市局"),
            Exclusion(
                year=2026,
                uscc=groups["not_above"][0].uscc,
                department_id=stranger.id,
                source="市局",
            ),
            Exclusion(
                year=2025, uscc=groups["not_above"][1].uscc, department_id=None, source="市局"
            ),
        ]
    )
    await s.flush()
    task = await f.ready_task(ctx, w, rule=RULE, scope={"kinds": ["企业"]})
    return w, task, groups


async def test_exclusions_are_counted_by_reason(ctx: Ctx) -> None:
    _, task, groups = await _scenario(ctx)
    report = await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    assert report.exclusions_in_order() == {
        OUT_OF_SCOPE: 7,
        NOT_DRAWABLE: 4,
        INSPECTED_BY_US: 3,
        INSPECTED_ABOVE: 3,
        NO_STRATUM: 4,
    }
    assert not report.repeat_check_allowed
    ids = [i for i, _ in report.candidates]
    assert ids == sorted(ids) and len(ids) == 20 + 2 + 1 + 2 + 1
    strata = dict(report.candidates)
    assert strata[groups["paused"][0].uscc] == "高风险"  # 停业 stays drawable
    assert all(strata[t.uscc] == "一般" for t in groups["by_stranger"] + groups["not_above"])
    assert report.strata_sizes() == {"高风险": 21, "一般": 5}


async def test_key_items_alone_do_not_reopen_targets_inspected_this_year(ctx: Ctx) -> None:
    """000 §五.1, 004 第八条: by default a target is drawn at most once a year, whatever the
    items (a participant's one-tap 接受 of its key items must not reopen every target)."""
    w, task, _ = await _scenario(ctx)
    key = await f.item(ctx.session, w.lead.dep, key=True)
    ctx.session.add(TaskItem(task_id=task.id, item_id=key.id, department_id=w.lead.dep.id))
    task.scope = {**task.scope, "repeat_check": True}
    await ctx.session.flush()
    report = await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    assert not report.repeat_check_allowed
    assert report.exclusions[INSPECTED_BY_US] == 3 and report.exclusions[INSPECTED_ABOVE] == 3


async def test_except_key_items_reopens_only_when_the_plan_says_so_and_all_items_are_key(
    ctx: Ctx,
) -> None:
    """001 第十四条 under rules.same_year_exclusion = "except_key_items": a re-check of key items
    that the 工作方案 asks for; the imported higher-level list stays excluded (000 §五.1)."""
    ctx = dataclasses.replace(ctx, rules=Rules(same_year_exclusion="except_key_items"))
    w, task, groups = await _scenario(ctx)
    key = await f.item(ctx.session, w.lead.dep, key=True)
    await ctx.session.execute(delete(TaskItem).where(TaskItem.task_id == task.id))
    ctx.session.add(TaskItem(task_id=task.id, item_id=key.id, department_id=w.lead.dep.id))
    await ctx.session.flush()
    assert not (
        await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    ).repeat_check_allowed
    task.scope = {**task.scope, "repeat_check": True}
    report = await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    assert report.repeat_check_allowed and "重点检查事项" in report.repeat_check_reason
    assert INSPECTED_BY_US not in report.exclusions and report.exclusions[INSPECTED_ABOVE] == 3
    drawn = {i for i, _ in report.candidates}
    assert {t.uscc for t in groups["by_partner"]} <= drawn
    assert not {t.uscc for t in groups["above"]} & drawn
    general = await f.item(ctx.session, w.lead.dep)  # one general item: no re-check
    ctx.session.add(TaskItem(task_id=task.id, item_id=general.id, department_id=w.lead.dep.id))
    await ctx.session.flush()
    assert not (
        await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    ).repeat_check_allowed


async def test_complaint_driven_scope_allows_repeat_checks_only_when_the_rule_allows(
    ctx: Ctx,
) -> None:
    """001 第十四条: 投诉举报 may justify a second inspection in a year, if the county's rule
    setting allows exceptions at all (004 第八条 原则上不超过一次)."""
    w = await f.world(ctx.session, partners=0, n_targets=3, risk_level="D")
    await _past_task(ctx.session, w.lead.dep.id, 2026, w.targets[:2])
    task = await f.ready_task(ctx, w, rule=RULE, scope={"complaint_driven": True})
    strict = await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    assert strict.repeat_check_reason == "" and len(strict.candidates) == 1
    relaxed = dataclasses.replace(ctx, rules=Rules(same_year_exclusion="except_key_items"))
    report = await build_target_pool(relaxed, task, algorithm.parse_rule(task.rule))
    assert "投诉举报" in report.repeat_check_reason and len(report.candidates) == 3
    plain = await f.ready_task(relaxed, w, rule=RULE, title="不含投诉举报的联合抽查")
    assert (
        len((await build_target_pool(relaxed, plain, algorithm.parse_rule(plain.rule))).candidates)
        == 1
    )


async def test_scope_filters_on_industry_and_region(ctx: Ctx) -> None:
    w = await f.world(
        ctx.session, partners=0, n_targets=2, risk_level="D", industry="餐饮", region="城关镇"
    )
    await f.targets(ctx.session, 3, risk_level="D", industry="餐饮", region="新街镇")
    await f.targets(ctx.session, 4, risk_level="D", industry="零售", region="城关镇")
    task = await f.ready_task(
        ctx, w, rule=RULE, scope={"industries": ["餐饮"], "regions": ["城关镇"]}
    )
    report = await build_target_pool(ctx, task, algorithm.parse_rule(task.rule))
    assert [i for i, _ in report.candidates] == sorted(t.uscc for t in w.targets)
    assert report.exclusions_in_order() == {OUT_OF_SCOPE: 7}


async def test_inspector_pool_takes_active_inspectors_only(ctx: Ctx) -> None:
    d = await f.dept(ctx.session, inspectors=2)
    await f.officer(ctx.session, d.dep, "inspector", active=False)
    both = await f.officer(ctx.session, d.dep, "inspector", "liaison")
    empty = await f.department(ctx.session)
    pools = await build_inspector_pool(ctx, [d.dep.id, empty.id])
    assert sorted(o.id for o in pools[d.dep.id]) == sorted([*(o.id for o in d.inspectors), both.id])
    assert pools[empty.id] == []


def test_pool_file_round_trip() -> None:
    pool = [("B2", "一般"), ("A1", "高风险,含逗号")]
    assert decode_pool(encode_pool(pool)) == sorted(pool)
    assert algorithm.pool_hash(decode_pool(encode_pool(pool))) == algorithm.pool_hash(pool)
