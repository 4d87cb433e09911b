"""Every rule of result entry holds alike on the chat path and the form path (#9): both reach
core.result_entry.enter_result, the chat's `提交` with the case as it loads it
(result_entry.load_entry_state), the result form with the state built from the sheet it showed
(case_forms.entry_state), so no rule is checked against a look-up one path skips. Each test
runs both paths and fails if enter_result stops checking its rule; a refused entry stores
nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import case_forms
from core.changes import Ctx
from core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from core.models import Case, CasePart, CaseResult, Item, Officer, TaskItem
from core.referrals import refer
from core.result_entry import enter_result, result_fields, submit_result
from core.results import case_codes, needs_visit
from tests.case_factories import (
    World,
    acting,
    at_day,
    build_world,
    other_department_finds_a_problem,
    snapshot,
)

D = dt.date
PATHS = ("chat", "form")
CLEAN: dict[str, Any] = {
    "codes": ["1"],
    "methods": ["实地检查"],
    "followups": ["无需后续处置"],
    "inspected_on": D(2026, 3, 10),
}


async def enter(path: str, ctx: Ctx, w: World, actor: Officer, **fields: Any) -> CaseResult:
    """`actor` enters a result by `path`; on the form path the sheet is loaded by a group
    member of the actor's department (or a1), as the form loads it before submitting."""
    if path == "chat":
        return await submit_result(acting(ctx, actor), w.case.code, **fields)
    viewer = actor if actor.id in (w.a1.id, w.a2.id, w.b1.id) else w.a1
    sheet = await case_forms.entry_sheet(
        acting(ctx, viewer), w.case.id, "case.result.submit", for_update=True
    )
    loaded = case_forms.entry_state(sheet)
    return await enter_result(
        acting(ctx, actor),
        loaded,
        result_fields(
            fields["codes"],
            fields["methods"],
            fields["followups"],
            fields.get("followup_done", False),
            fields.get("followup_done_on"),
            fields.get("inspected_on"),
            fields.get("item_results", ()),
            fields.get("remarks", ""),
        ),
    )


async def refused(
    session: AsyncSession, error: type[Exception], call: Any, match: str
) -> Exception:
    """`call` raises `error` (its text containing `match`) and, rolled back, leaves the
    stored rows as they were."""
    await session.commit()
    before = await snapshot(session)
    with pytest.raises(error) as caught:
        await call
    assert match in str(caught.value)
    await session.rollback()
    assert await snapshot(session) == before
    return caught.value


@pytest.mark.parametrize("path", PATHS)
async def test_only_a_group_member_enters_a_result(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    err = await refused(
        session,
        PermissionDenied,
        enter(path, ctx, w, w.outsider, **CLEAN),
        "只有本案检查组成员可以提交结果",
    )
    assert isinstance(err, PermissionDenied) and err.action == "case.result.submit.denied"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("state", "why"), [("submitted", "正在审核中"), ("approved", "不能重新提交")]
)
async def test_a_result_under_review_or_approved_is_not_entered_again(
    ctx: Ctx, session: AsyncSession, path: str, state: str, why: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await session.execute(update(Case).where(Case.id == w.case.id).values(state=state))
    await refused(session, InvalidTransition, enter(path, ctx, w, w.a1, **CLEAN), why)


@pytest.mark.parametrize("path", PATHS)
async def test_an_item_outside_the_task_is_refused(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    stray = Item(department_id=w.lead.id, code="SJ-99", name="不在任务中的事项")
    session.add(stray)
    await session.flush()
    entry = {**CLEAN, "item_results": [{"item_id": stray.id, "codes": ["1"]}]}
    await refused(
        session, ValidationFailed, enter(path, ctx, w, w.a1, **entry), "不属于本次抽查任务"
    )


@pytest.mark.parametrize("path", PATHS)
async def test_another_departments_item_is_theirs_to_enter_000_s9_10(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    theirs = {"item_id": w.items[1].id, "codes": ["1"]}
    await refused(
        session,
        ValidationFailed,
        enter(path, ctx, w, w.a1, **CLEAN, item_results=[theirs]),
        "谁检查、谁录入",
    )


@pytest.mark.parametrize("path", PATHS)
async def test_another_departments_finding_rules_out_no_problem_000_s9_10(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await other_department_finds_a_problem(ctx, w)
    await refused(
        session,
        ValidationFailed,
        enter(path, ctx, w, w.a1, **CLEAN),
        "案件结论不能为“未发现问题”",
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("day", "why"), [(D(2026, 3, 13), "不能晚于今天"), (D(2026, 3, 1), "早于任务检查时间")]
)
async def test_the_inspection_date_is_checked(
    ctx: Ctx, session: AsyncSession, path: str, day: dt.date, why: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await refused(
        session, ValidationFailed, enter(path, ctx, w, w.a1, **{**CLEAN, "inspected_on": day}), why
    )


@pytest.mark.parametrize("path", PATHS)
async def test_parts_decide_between_part_entered_and_review_000_s9_10(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """The first department's part leaves the case 部分录入 (version 1); the other's completes
    it and sends it to review as version 2, the first part carried over."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    lead_item = {"item_id": w.items[0].id, "codes": ["1"]}
    v1 = await enter(path, ctx, w, w.a1, **CLEAN, item_results=[lead_item])
    await session.commit()
    assert (v1.version, v1.state) == (1, "part_entered")
    their_item = {"item_id": w.items[1].id, "codes": ["1"]}
    v2 = await enter(path, ctx, w, w.b1, **CLEAN, item_results=[their_item])
    await session.commit()
    assert (v2.version, v2.state) == (2, "submitted")
    case = await session.scalar(select(Case).where(Case.id == w.case.id))
    assert case is not None and case.state == "submitted"
    parts = await session.execute(select(CasePart.department_id, CasePart.version))
    assert sorted(parts.all()) == sorted([(w.lead.id, 1), (w.other.id, 2)])


@pytest.mark.parametrize("path", PATHS)
async def test_a_task_without_the_other_departments_items_goes_to_review_at_once(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await session.execute(delete(TaskItem).where(TaskItem.department_id == w.other.id))
    result = await enter(path, ctx, w, w.a1, **CLEAN)
    assert result.state == "submitted"


@pytest.mark.parametrize("path", PATHS)
async def test_a_departments_entry_changes_nothing_another_entered_000_s9_10(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """谁检查、谁录入: 卫健委 entered its part (E, two methods, a follow-up, a remark); the
    lead's entry of its own item (未发现问题, 实地检查, 无需后续处置 and a remark of its own),
    by either path, changes none of 卫健委's: the version merges both departments' parts, the
    follow-up rule is checked on the lead's own codes, and each part keeps its own fields."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(
        acting(ctx, w.b1),
        w.case.code,
        codes=["E"],
        methods=["实地检查", "检验检测"],
        followups=["责令改正并跟踪"],
        inspected_on=D(2026, 3, 10),
        item_results=[{"item_id": w.items[1].id, "codes": ["E"], "problems": "健康证过期"}],
        remarks="已责令整改",
    )
    lead_item = {"item_id": w.items[0].id, "codes": ["1"]}
    entry = {**CLEAN, "codes": ["E"], "item_results": [lead_item], "remarks": "负责人在场"}
    result = await enter(path, ctx, w, w.a1, **entry)
    await session.commit()
    assert (result.codes, result.methods, result.followups, result.remarks) == (
        ["E"],
        ["实地检查", "检验检测"],
        ["责令改正并跟踪"],
        "县市场监督管理局：负责人在场\n县卫生健康委员会：已责令整改",
    )
    parts = {
        p.department_id: (p.methods, p.followups, p.remarks)
        for p in await session.scalars(select(CasePart))
    }
    assert parts == {
        w.lead.id: (["实地检查"], ["无需后续处置"], "负责人在场"),
        w.other.id: (["实地检查", "检验检测"], ["责令改正并跟踪"], "已责令整改"),
    }


def _part(item: Item, codes: list[str], *others: list[str]) -> dict[str, Any]:
    """A department's part entering `codes` on its item, with what they require: a method
    when they need a visit, a follow-up when they need one (8: 004 第二十一条); the case
    conclusion merged with the `others`' items, as both paths merge it."""
    return {
        "codes": case_codes([codes, *others]),
        "methods": ["实地检查"] if needs_visit(codes) else [],
        "followups": ["其他"] if "8" in codes else ["无需后续处置"],
        "inspected_on": D(2026, 3, 10),
        "item_results": [{"item_id": item.id, "codes": codes}],
    }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("first", "second", "named"),
    [
        (["9"], ["1"], "“注销”（9）"),  # the tester's LJ-2026-001-007
        (["8"], ["1"], "“不配合检查情节严重”（8）"),  # and -006
        (["1"], ["9"], "“未发现问题”（1）"),  # whichever department enters second
        (["9"], ["10"], "“注销”（9）"),  # two different situations
        (["7"], ["F"], "“已关闭停业或正在组织清算”（7）"),
    ],
)
async def test_a_part_contradicting_another_departments_situation_is_refused_004_art18(
    ctx: Ctx, session: AsyncSession, path: str, first: list[str], second: list[str], named: str
) -> None:
    """004 第十八条: 无法联系, 不配合检查情节严重, 注销 … are the target's own situation, which
    the result is formed from without a visit; one joint visit checks every department's
    items (004 第十四条). So a part saying one contradicts a part that inspected, or one
    saying another situation: the second entry is refused, naming the first department's
    entry and what to do, instead of being merged into the first's words and published."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.a1), w.case.code, **_part(w.items[0], first))
    err = await refused(
        session,
        ValidationFailed,
        enter(path, ctx, w, w.b1, **_part(w.items[1], second, first)),
        f"县市场监督管理局2026年3月12日录入的结果为{named}",
    )
    assert "相互矛盾" in str(err) and "004 第十八条" in str(err)
    assert "请县市场监督管理局重新录入本部门结果" in str(err)


@pytest.mark.parametrize("path", PATHS)
async def test_parts_saying_the_same_situation_go_to_review_004_art18(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """Both departments say 注销: no contradiction, the case goes to review as 注销."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await submit_result(acting(ctx, w.a1), w.case.code, **_part(w.items[0], ["9"]))
    result = await enter(path, ctx, w, w.b1, **_part(w.items[1], ["9"]))
    assert (result.state, result.codes, result.methods) == ("submitted", ["9"], [])


async def _referred(ctx: Ctx, session: AsyncSession) -> World:
    """The lead's inspector has referred a clue of the case to 卫健委 (移送办案机构)."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await refer(acting(ctx, w.a1), w.case.code, "卫健委", "未取得公共场所卫生许可证")
    return w


@pytest.mark.parametrize("path", PATHS)
async def test_no_follow_up_is_refused_from_a_department_that_referred_the_case_001_art17(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """001 第十七条, 004 第二十一条: a referral is a follow-up; the lead's part saying
    无需后续处置 would publish none for the referral it made, so it is refused, saying to
    choose the referral's kind."""
    w = await _referred(ctx, session)
    lead_item = {"item_id": w.items[0].id, "codes": ["1"]}
    await refused(
        session,
        ValidationFailed,
        enter(path, ctx, w, w.a1, **CLEAN, item_results=[lead_item]),
        "本部门已就本案登记移送（移送办案机构：县卫生健康委员会），"
        "后续处置不能选择“无需后续处置”，请选择“移送办案机构”",
    )


@pytest.mark.parametrize("path", PATHS)
async def test_the_referral_as_follow_up_is_entered_and_others_need_none_001_art17(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """The lead's part naming its referral's kind is entered; 卫健委, which referred nothing,
    still says 无需后续处置 of its own part, and the case's follow-up is the referral."""
    w = await _referred(ctx, session)
    lead_item = {"item_id": w.items[0].id, "codes": ["1"]}
    referred = {**CLEAN, "followups": ["移送办案机构"], "item_results": [lead_item]}
    assert (await enter(path, ctx, w, w.a1, **referred)).followups == ["移送办案机构"]
    their_item = {"item_id": w.items[1].id, "codes": ["1"]}
    result = await enter(path, ctx, w, w.b1, **CLEAN, item_results=[their_item])
    assert (result.state, result.followups) == ("submitted", ["移送办案机构"])


@pytest.mark.parametrize("path", PATHS)
async def test_a_departments_own_items_saying_different_situations_are_refused_004_art18(
    ctx: Ctx, session: AsyncSession, path: str
) -> None:
    """004 第十八条, 第十四条: the target's situation is one for all its items, so the lead's
    entry of 注销 on one item and 未发现问题 on another is refused, naming both items — it
    was merged into 注销 as two departments' parts were."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    second = Item(department_id=w.lead.id, code="SJ-02", name="广告发布检查")
    session.add(second)
    await session.flush()
    session.add(TaskItem(task_id=w.task.id, item_id=second.id, department_id=w.lead.id))
    entry = {
        **CLEAN,
        "codes": ["9"],
        "item_results": [
            {"item_id": w.items[0].id, "codes": ["9"]},
            {"item_id": second.id, "codes": ["1"]},
        ],
    }
    await refused(
        session,
        ValidationFailed,
        enter(path, ctx, w, w.a1, **entry),
        "事项“企业公示信息检查”的结果为“注销”（9），与事项“广告发布检查”的结果"
        "“未发现问题”（1）相互矛盾",
    )
