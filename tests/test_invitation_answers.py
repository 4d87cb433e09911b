"""Answering an invitation as a department (seed 000 §七): the written reason of a decline, and
what the department's other answerers hear; the chat, card and page paths end to end."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import plan
from core.changes import Ctx
from core.clock import FixedClock
from core.consultation import answers, opening
from core.errors import ValidationFailed
from core.models import Invitation, PlanEntry
from core.rules import Rules
from handlers import invitation_page
from handlers.pages import PageCtx
from tests import factories as f
from tests.dispatch_support import bodies, make_dispatcher, send, text_event

PUNCTUATION_ONLY = "。。。。。。。。。。。。"
PADDED = "人员不足。。。。。。。。。。。。"  # four characters of content


@dataclass
class Scene:
    w: f.World
    task_code: str
    invitation_id: int  # the first partner's invitation
    partner: f.Dept


@pytest.fixture
async def scene(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    """A task out for consultation with two partner departments."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=3, n_targets=0)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        task = await f.draft_task(ctx, w)
        invitations = await opening.open_consultation(
            f.as_actor(ctx, w.lead.liaison), task, [p.dep.id for p in w.partners]
        )
        return Scene(w, task.code, invitations[0].id, w.partners[0])


async def _state(sm: async_sessionmaker[AsyncSession], inv_id: int) -> tuple[str, str]:
    async with sm() as s:
        inv = await s.get(Invitation, inv_id)
        assert inv is not None
        return inv.state, inv.reason


# ---------------------------------------------------------------- defect 4: a real reason


@pytest.mark.parametrize("reason", [PUNCTUATION_ONLY, PADDED, "　 ！？……——   ", "~~~~~~~~~~~~"])
async def test_decline_reason_without_content_is_refused_000_s7(ctx: Ctx, reason: str) -> None:
    """000 §七 (书面函告理由): punctuation, spaces and symbols are no written reason; only
    letters, CJK characters and digits count toward the minimum length."""
    w = await f.world(ctx.session, partners=1, n_targets=0)
    task = await f.draft_task(ctx, w)
    [inv] = await opening.open_consultation(
        f.as_actor(ctx, w.lead.liaison), task, [w.partners[0].dep.id]
    )
    with pytest.raises(ValidationFailed, match="至少需要 10 个字（标点、空格不计）"):
        await answers.decline_invitation(f.as_actor(ctx, w.partners[0].liaison), inv.id, reason)
    assert inv.state == "pending"
    # ten characters of content are enough, punctuation around them or not
    done = await answers.decline_invitation(
        f.as_actor(ctx, w.partners[0].liaison), inv.id, "同期专项，人员无法抽调。"
    )
    assert done.state == "declined"


async def test_punctuation_reason_refused_by_command_and_in_the_reason_step_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the chat command and the step that waits for the reason (the card's 拒绝) both
    refuse a reason of punctuation and keep the invitation pending."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    rows = await send(
        sessionmaker, d, text_event(who, f"拒绝 {scene.task_code} {PUNCTUATION_ONLY}")
    )
    assert "至少需要 10 个字" in bodies(rows) and "已拒绝" not in bodies(rows)
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")

    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    rows = await send(sessionmaker, d, text_event(who, PADDED))
    assert "至少需要 10 个字" in bodies(rows) and "请重新回复拒绝理由" in bodies(rows)
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")


async def test_punctuation_reason_refused_on_the_answer_page_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the answer page refuses it too, the typed reason kept in the form."""
    async with sessionmaker() as s, s.begin():
        liaison = await s.get(type(scene.partner.liaison), scene.partner.liaison.id)
        assert liaison is not None
        pc = PageCtx(session=s, clock=clock, rules=Rules(), officer=liaison, token="t")
        form = invitation_page.AnswerForm(action="decline", reason=PUNCTUATION_ONLY)
        shown = await invitation_page.submit(pc, scene.invitation_id, form)
    assert shown.status == 422 and "至少需要 10 个字" in shown.html
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")


async def test_unplanned_reason_of_punctuation_is_no_reason_003(ctx: Ctx) -> None:
    """003 三(七)1: a task outside the adopted plan needs a written reason, punctuation is none."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    ctx.session.add(
        PlanEntry(year=2026, code="JH-1", title="计划", lead_department_id=w.lead.dep.id, month=5)
    )
    await ctx.session.flush()
    with pytest.raises(ValidationFailed, match="计划外的任务须书面说明理由"):
        await plan.require_plan_or_reason(ctx, 2026, PUNCTUATION_ONLY)
    assert await plan.require_plan_or_reason(ctx, 2026, "上级部署的特种设备专项检查") != ""
