"""An approved 回避 is a conflict of interest with the target (000 §八: 执法检查人员与被抽查对象有
利害关系应依法回避): once the department leader agreed (001 第十四条), the officer is never put on
that target again — not by a 更换 of the case's group, not offered as a choice for one, and not
by a later task's matching. The approval registers the conflict, with the recusal's reason."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from core import replacements
from core.changes import Ctx
from core.clock import china_noon
from core.draws import targets
from core.errors import ValidationFailed
from core.groups import matching
from core.models import AuditEvent, Case, GroupMember, OfficerConflict
from core.rules import Rules
from tests import factories as f
from tests.case_factories import at_time
from tests.factories import as_actor

REASON = "本人与该企业法定代表人系同学"
ONE = {"strata": [{"name": "全部", "count": 1}]}


async def _lock(lead: Ctx, task_code: str, day: dt.date) -> None:
    """Freeze on `day`'s 福彩3D, confirm the next noon."""
    await targets.freeze_pool(
        lead, task_code, f"{day.year}年{day.month}月{day.day}日福彩3D开奖号码"
    )
    at_time(lead, china_noon(day + dt.timedelta(days=1)))
    await targets.confirm_draw(lead, task_code, "4 1 7")


@pytest.fixture
async def recused(ctx: Ctx) -> tuple[f.World, Case, GroupMember, GroupMember]:
    """One target, two inspectors a department: the partner's member recused (approved), the
    other took over. Returns the world, the case, who left and who took over."""
    w = await f.world(ctx.session, partners=1, inspectors=2, n_targets=1)
    task = await f.ready_task(ctx, w, rule=ONE)
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task.code, dt.date(2026, 3, 3))
    [case] = await matching.match_inspectors(lead, task.code)
    members = list(
        await ctx.session.scalars(select(GroupMember).where(GroupMember.case_id == case.id))
    )
    old = next(m for m in members if m.department_id == w.partners[0].dep.id)
    await replacements.request(
        as_actor(ctx, old.officer), case.code, old.officer.code, REASON, kind="recusal"
    )
    await replacements.decide(as_actor(ctx, w.partners[0].leader), case.code, old.officer.code)
    new = await ctx.session.scalar(
        select(GroupMember)
        .where(GroupMember.case_id == case.id, GroupMember.active.is_(True))
        .where(GroupMember.department_id == w.partners[0].dep.id)
    )
    assert new is not None and new.officer_id != old.officer_id
    return w, case, old, new


async def test_an_approved_recusal_registers_the_conflict_with_its_reason_000_s8(
    ctx: Ctx, recused
) -> None:
    """000 §八: the recusal is for a conflict of interest with the target; approved (001 第十四条)
    it stands as one, with the recusal's reason, audited naming the case."""
    _, case, old, _ = recused
    conflict = await ctx.session.scalar(
        select(OfficerConflict).where(
            OfficerConflict.officer_id == old.officer_id,
            OfficerConflict.target_id == case.target_id,
        )
    )
    assert conflict is not None and conflict.reason == REASON
    [event] = await ctx.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "officer.conflict_declared")
    )
    assert event.subject == f"officer:{old.officer.code}"
    assert event.data["case"] == case.code and event.data["reason"] == REASON


async def test_a_recused_officer_is_not_put_back_by_a_replacement_000_s8_001_art14(
    ctx: Ctx, recused
) -> None:
    """The tester's way back: 更换 the one who took over, naming the recused officer. Refused
    for the conflict, and the refusal's list of whom the leader may name leaves them out (004
    第十三条: 在具备执法资格的其他执法人员中选派) — here nobody is left to name."""
    w, case, old, new = recused
    leader = as_actor(ctx, w.partners[0].leader)
    with pytest.raises(ValidationFailed) as refused:
        await replacements.request(
            leader, case.code, new.officer.code, "临时抽调参加专项行动", kind="replacement"
        )
        await replacements.decide(
            leader, case.code, new.officer.code, new_officer_code=old.officer.code
        )
    text = str(refused.value)
    assert f"{old.officer.name}与该检查对象有利害关系" in text
    assert old.officer.code not in text.split("。", 1)[1]  # not offered as a choice
    assert "没有其他可指定的在岗执法检查人员" in text
    active = set(
        await ctx.session.scalars(
            select(GroupMember.officer_id).where(
                GroupMember.case_id == case.id, GroupMember.active.is_(True)
            )
        )
    )
    assert old.officer_id not in active and new.officer_id in active


async def test_a_later_task_does_not_match_a_recused_officer_to_the_target_000_s8(
    ctx: Ctx, recused
) -> None:
    """A complaint-driven task may inspect the target again this year (001 第十四条, under
    same_year_exclusion = except_key_items); its matching never sends the officer who recused
    from it (000 §八). With the partner's other inspector gone, nobody is left to send."""
    w, _, _, new = recused
    relaxed = dataclasses.replace(ctx, rules=Rules(same_year_exclusion="except_key_items"))
    new.officer.active = False  # the one who took over leaves (离岗)
    task = await f.ready_task(
        relaxed, w, rule=ONE, scope={"complaint_driven": True}, title="投诉举报引发的联合抽查"
    )
    lead = as_actor(relaxed, w.lead.liaison)
    at_time(lead, china_noon(dt.date(2026, 3, 9)))
    await _lock(lead, task.code, dt.date(2026, 3, 9))
    with pytest.raises(ValidationFailed, match="其余人员均需回避"):
        await matching.match_inspectors(lead, task.code)
