"""Who sees a joint task's inside before publication (issue 11 defect 7).

002 二(六): inspection results are made public through publication (公示); before that a task's
invitations, cases, groups and results belong to its own departments. A department outside the
task sees in chat what the public side (/public/) shows, nothing more.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.clock import china_noon
from core.models import Case, Draw, Target
from core.rules import Rules
from tests import factories as f
from tests.dispatch_support import bodies, make_dispatcher, ready_world, send, text_event

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon (3 March's 福彩3D) is out


@pytest.fixture
async def locked(sessionmaker, clock):
    """A task drawn and locked, cases matched; plus an officer of a department outside it."""
    w, code = await ready_world(sessionmaker, clock, inspectors=3, n_targets=40)
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    clock.set(BEACON_OUT)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 4 1 7"))
    async with sessionmaker() as s, s.begin():
        outsider = await f.dept(s, inspectors=1)
        cases = list(await s.scalars(select(Case).where(Case.task_id.is_not(None))))
        names = [(await s.get(Target, c.target_id)).name for c in cases]
    assert cases
    return w, code, d, outsider, cases, names


async def test_task_detail_shows_an_outside_department_only_the_public_side(
    sessionmaker, locked
) -> None:
    """002 二(六): `任务 编号` from a department outside the task shows the public index's entry
    (code, title, lead, window, state) — no items, reply deadline or commitment — while the
    task's own departments see all of it."""
    w, code, d, outsider, cases, names = locked
    inside = bodies(
        await send(sessionmaker, d, text_event(w.partners[0].liaison.code, f"任务 {code}"))
    )
    assert "检查事项：" in inside and "种子承诺值" in inside and "本部门邀请：已接受" in inside
    for who in (outsider.liaison, outsider.leader, outsider.inspectors[0]):
        out = bodies(await send(sessionmaker, d, text_event(who.code, f"任务 {code}")))
        assert f"{code} 2026年食品经营者联合抽查" in out and "县市场监督管理局" in out
        assert "检查中" in out and "本部门未参加该任务" in out
        assert "检查事项：" not in out and "种子承诺值" not in out and "答复期限" not in out
        assert w.lead.items[0].name not in out
        assert not any(c.code in out for c in cases) and not any(n in out for n in names)


async def test_a_draft_task_is_unknown_outside_its_lead_department(sessionmaker, clock) -> None:
    """002 二(六): the public side lists no drafts, so another department is told no such task
    exists, as for a code never used."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=1, n_targets=3)
        task = await f.draft_task(Ctx(session=s, clock=clock, rules=Rules()), w)
        outsider = await f.dept(s, inspectors=1)
    d = make_dispatcher(sessionmaker, clock)
    mine = bodies(
        await send(sessionmaker, d, text_event(w.lead.inspectors[0].code, f"任务 {task.code}"))
    )
    assert "草稿" in mine and "检查事项：" in mine
    for who in (outsider.liaison, w.partners[0].liaison):  # not invited yet: outside too
        out = bodies(await send(sessionmaker, d, text_event(who.code, f"任务 {task.code}")))
        assert out == bodies(
            await send(sessionmaker, d, text_event(who.code, "任务 LJ-2026-999"))
        ).replace("LJ-2026-999", task.code)


async def test_verify_shows_an_outside_department_only_public_draws(sessionmaker, locked) -> None:
    """002 二(六): `验证` from a department outside the task verifies the target draw (public at
    /public/draws) but not the inspector draw, which names the groups before publication; the
    task's departments and the admin verify both."""
    w, code, d, outsider, *_ = locked
    assert w.admin is not None
    for who in (w.partners[0].inspectors[0], w.admin):
        out = bodies(await send(sessionmaker, d, text_event(who.code, f"验证 {code}")))
        assert f"验证 {code}-T1：通过" in out and f"验证 {code}-I1：通过" in out
    out = bodies(await send(sessionmaker, d, text_event(outsider.liaison.code, f"验证 {code}")))
    assert f"验证 {code}-T1：通过" in out and f"{code}-I1" not in out
    out = bodies(await send(sessionmaker, d, text_event(outsider.leader.code, f"验证 {code}-I1")))
    assert out == f"未找到抽取记录 {code}-I1，请核对抽取编号（形如 LJ-2026-001-T1）"
    out = bodies(await send(sessionmaker, d, text_event(outsider.leader.code, f"验证 {code}-T1")))
    assert f"验证 {code}-T1：通过" in out


async def test_verify_of_a_quick_inspector_draw_is_for_the_departments_concerned(
    sessionmaker, clock
) -> None:
    """A quick inspector draw (快抽) is not public either: its starter's department and the drawn
    officers' departments verify it; a department with no part in it is told there is none."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=2, n_targets=3)
    rules = Rules(quick_draw_requires_beacon=False)
    d = make_dispatcher(sessionmaker, clock, rules)
    dep = w.partners[0].dep.name
    receipt = bodies(
        await send(sessionmaker, d, text_event(w.lead.liaison.code, f"快抽 1 名 执法人员 {dep}"))
    )
    found = re.search(r"KC-\d{4}-\d{4}", receipt)
    assert found is not None and w.admin is not None
    kc = found.group(0)
    async with sessionmaker() as s:
        drawn = (await s.scalar(select(Draw).where(Draw.code == kc))).selection
    # the drawn officer's department once the draw is locked (it may wait for a confirmation)
    concerned = [w.lead.inspectors[0], w.admin] + ([w.partners[0].inspectors[1]] if drawn else [])
    for who in concerned:
        out = bodies(await send(sessionmaker, d, text_event(who.code, f"验证 {kc}")))
        assert f"验证 {kc}：" in out
    out = bodies(await send(sessionmaker, d, text_event(w.partners[1].liaison.code, f"验证 {kc}")))
    assert out == f"未找到抽取记录 {kc}，请核对抽取编号（形如 LJ-2026-001-T1）"
