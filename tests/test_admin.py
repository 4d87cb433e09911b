"""绑定: the office admin binds platform accounts; the bound account is then that officer."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.models import ChatPlatform, Officer
from tests import factories as f
from tests.dispatch_support import audit_rows, bodies, make_dispatcher, send, text_event


async def staff(sessionmaker: async_sessionmaker[AsyncSession], *roles: str) -> list[Officer]:
    """One officer per role in `roles`, all of one new department, committed."""
    async with sessionmaker() as s:
        dep = await f.department(s)
        people = [await f.officer(s, dep, role) for role in roles]
        await s.commit()
    return people


async def test_admin_binds_and_the_account_then_speaks_as_the_officer(sessionmaker, clock) -> None:
    admin, inspector = await staff(sessionmaker, "admin", "inspector")
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker, d, text_event(admin.code, f"绑定 {inspector.code} 企业微信 wx-zhang")
    )
    assert "已将企业微信账号" in bodies(rows)
    async with sessionmaker() as s:
        bound = await s.scalar(select(Officer).where(Officer.code == inspector.code))
        assert bound.account(ChatPlatform.WECOM) == "wx-zhang"
    assert len(await audit_rows(sessionmaker, "officer.account_bound")) == 1
    rows = await send(sessionmaker, d, text_event("wx-zhang", "帮助", platform="wecom"))
    assert rows and rows[0].destination["officer_id"] == inspector.id


async def test_non_admin_cannot_bind_and_it_is_audited(sessionmaker, clock) -> None:
    [liaison] = await staff(sessionmaker, "liaison")
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(liaison.code, f"绑定 {liaison.code} 钉钉 me"))
    assert "只有联席会议办公室管理员" in bodies(rows)
    async with sessionmaker() as s:
        assert (await s.get(Officer, liaison.id)).account(ChatPlatform.DINGTALK) is None


async def test_an_account_serves_one_officer_only(sessionmaker, clock) -> None:
    admin, a, b = await staff(sessionmaker, "admin", "inspector", "inspector")
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(admin.code, f"绑定 {a.code} 钉钉 ding-1"))
    rows = await send(sessionmaker, d, text_event(admin.code, f"绑定 {b.code} 钉钉 ding-1"))
    assert "该账号已绑定到" in bodies(rows)
    rows = await send(sessionmaker, d, text_event(admin.code, f"绑定 {b.code} 飞书 x"))
    assert "不认识的平台" in bodies(rows)
    rows = await send(sessionmaker, d, text_event(admin.code, "绑定 only-two"))
    assert "绑定 人员编号" in bodies(rows)


async def test_a_wrong_binding_is_undone_with_unbind_then_bound_to_the_right_officer(
    sessionmaker, clock
) -> None:
    """An account bound to the wrong officer: the refusal to bind it again names 解绑, which
    frees it (audited), and the account then speaks as the right officer."""
    admin, wrong, right = await staff(sessionmaker, "admin", "inspector", "inspector")
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(admin.code, f"绑定 {wrong.code} 钉钉 heping"))
    rows = await send(sessionmaker, d, text_event(admin.code, f"绑定 {right.code} 钉钉 heping"))
    assert f"解绑 {wrong.code} 钉钉" in bodies(rows)

    rows = await send(sessionmaker, d, text_event(admin.code, f"解绑 {wrong.code} 钉钉"))
    assert "已解除" in bodies(rows) and "heping" in bodies(rows)
    (event,) = await audit_rows(sessionmaker, "officer.account_unbound")
    assert event.data == {"platform": "dingtalk", "user_id": "heping"}
    rows = await send(sessionmaker, d, text_event(admin.code, f"解绑 {wrong.code} 钉钉"))
    assert "没有绑定钉钉账号" in bodies(rows)

    await send(sessionmaker, d, text_event(admin.code, f"绑定 {right.code} 钉钉 heping"))
    rows = await send(sessionmaker, d, text_event("heping", "帮助", platform="dingtalk"))
    assert rows and rows[0].destination["officer_id"] == right.id


async def test_only_the_admin_may_unbind_and_the_refusal_is_audited(sessionmaker, clock) -> None:
    admin, liaison = await staff(sessionmaker, "admin", "liaison")
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(admin.code, f"绑定 {liaison.code} 钉钉 ding-l"))
    rows = await send(sessionmaker, d, text_event(liaison.code, f"解绑 {liaison.code} 钉钉"))
    assert "只有联席会议办公室管理员可以解绑账号" in bodies(rows)
    assert [e.data["action"] for e in await audit_rows(sessionmaker, "denied")] == [
        "officer.unbind.denied"
    ]
    async with sessionmaker() as s:
        assert (await s.get(Officer, liaison.id)).account(ChatPlatform.DINGTALK) == "ding-l"


async def test_admin_marks_an_officer_as_left_in_chat(sessionmaker, clock) -> None:
    """001 第十条(二): the inspector library follows staff changes; 离岗 keeps the record."""
    admin, inspector = await staff(sessionmaker, "admin", "inspector")
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(inspector.code, f"离岗 {admin.code}"))
    assert "只有联席会议办公室管理员" in bodies(rows)
    rows = await send(sessionmaker, d, text_event(admin.code, f"离岗 {inspector.code} 调离"))
    assert "登记为调离" in bodies(rows) and "没有未完成的检查" in bodies(rows)
    async with sessionmaker() as s:
        left = await s.get(Officer, inspector.id)
        assert (left.active, left.inactive_reason) == (False, "调离")
    assert len(await audit_rows(sessionmaker, "officer.deactivated")) == 1


@pytest.mark.parametrize("typed", ["我的检查", "帮助", "card"])
async def test_an_officer_marked_as_left_is_told_so_and_whom_to_ask(
    sessionmaker, clock, typed: str
) -> None:
    """001 第十条(二): an officer who left no longer acts, but is not met with silence: the reply
    says they are registered as left and names their department's liaison; a card button
    clicked after leaving is refused and audited alike (it was dropped in silence)."""
    async with sessionmaker() as s:
        dep = await f.department(s)
        admin = await f.officer(s, dep, "admin")
        liaison = await f.officer(s, dep, "liaison", name="赵联络")
        inspector = await f.officer(s, dep, "inspector")
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(admin.code, f"离岗 {inspector.code} 调离"))
    event = text_event(inspector.code, typed)
    if typed == "card":
        event = event.model_copy(update={"kind": "card_action", "text": "", "action_key": "x"})
    text = bodies(await send(sessionmaker, d, event))
    assert f"（{inspector.name}，{inspector.code}）已登记为调离" in text
    assert f"本单位联络员 赵联络（{liaison.code}） 或联席会议办公室管理员" in text
    assert len(await audit_rows(sessionmaker, "auth.officer_left")) == 1


async def test_officer_declares_a_conflict_of_interest_in_chat(sessionmaker, clock) -> None:
    """000 §八: an interest in the target means the inspector is not sent there. The interest
    is kept whole (its column holds 200 characters): a longer one, once cut silently, is
    refused saying what to do, and nothing stored."""
    async with sessionmaker() as s:
        dep = await f.department(s)
        inspector = await f.officer(s, dep, "inspector")
        [target] = await f.targets(s, 1)
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(inspector.code, f"利害关系 {target.uscc}"))
    assert "利害关系 统一社会信用代码" in bodies(rows)
    said = "本人配偶在该企业任职" * 20 + "。"
    rows = await send(sessionmaker, d, text_event(inspector.code, f"利害关系 {target.uscc} {said}"))
    assert "利害关系说明不能超过 200 个字，现有 201 个字，请删减到 200 个字以内" in bodies(rows)
    assert await audit_rows(sessionmaker, "officer.conflict_declared") == []
    rows = await send(
        sessionmaker, d, text_event(inspector.code, f"利害关系 {target.uscc} 本人配偶在该企业任职")
    )
    assert "已登记您与" in bodies(rows)
    assert len(await audit_rows(sessionmaker, "officer.conflict_declared")) == 1


async def test_the_last_liaison_and_leader_leaving_names_the_invitations_nobody_answers(
    sessionmaker, clock
) -> None:
    """A department answers its invitations through its liaison or leader; when the
    last of them leaves, the 离岗 reply names the invitations left waiting and how to appoint
    someone, as `setup check` and task creation say."""
    async with sessionmaker() as s:
        w = await f.world(s, partners=1)
        await s.commit()
        ctx = Ctx(session=s, clock=clock)
        task, _ = await f.invite_first_partner(ctx, w)
        await s.commit()
    partner = w.partners[0]
    assert w.admin is not None
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker, d, text_event(w.admin.code, f"离岗 {partner.liaison.code} 退休")
    )
    assert "没有在岗的联络员或分管领导" not in bodies(rows)  # the leader still answers
    rows = await send(sessionmaker, d, text_event(w.admin.code, f"离岗 {partner.leader.code} 退休"))
    text = bodies(rows)
    assert f"{partner.dep.name}（{partner.dep.code}）已没有在岗的联络员或分管领导" in text, text
    assert f"待答复的邀请 {task.code}" in text and "lianjian import inspectors" in text
