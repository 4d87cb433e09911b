"""Rule 7, publication follows approval (004 第十九条: 审核通过后…自动公示; 002 二(六): within
20 working days of the result)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.models import AuditEvent
from core.obligations.due import due_items
from core.publication import publish_case
from core.rules import Rules
from tests.case_factories import ResultFields, acting, approved_world

D = dt.date
CLEAN: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}


async def test_closing_approval_publishes_at_once_004_art19(ctx, session) -> None:
    """004 第十九条: with rules.auto_publish the participant's closing approval publishes."""
    ctx, w = await approved_world(ctx, session, Rules(auto_publish=True))
    assert w.case.state == "published"
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "case.published"))
    assert event is not None and event.data == {"version": 1, "auto": True}
    assert [o for o in await due_items(ctx, D(2026, 3, 12)) if o.kind == "publication"] == []


async def test_unpublished_result_is_overdue_after_20_workdays_002_2_6(ctx, session) -> None:
    """002 二(六): when the lead publishes (auto_publish off), an approved result not published
    20 working days after the approval is an overdue obligation of the lead department."""
    ctx, w = await approved_world(ctx, session, Rules(auto_publish=False))
    assert w.case.state == "approved"
    [due] = [o for o in await due_items(ctx, D(2026, 3, 13)) if o.kind == "publication"]
    assert (due.due, due.department_id, due.overdue) == (D(2026, 4, 10), w.lead.id, False)
    assert set(due.officer_ids) == {w.lead_liaison.id, w.lead_leader.id}
    [late] = [o for o in await due_items(ctx, D(2026, 4, 13)) if o.kind == "publication"]
    assert late.overdue and late.what == "公示检查结果"
    await publish_case(acting(ctx, w.lead_liaison), w.case.code)
    assert [o for o in await due_items(ctx, D(2026, 4, 13)) if o.kind == "publication"] == []
