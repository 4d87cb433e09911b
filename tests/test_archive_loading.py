"""立卷归档 (004 第二十五条) of a task of many cases: the archive loads the cases' documents per
task in a fixed number of statements, and files exactly what it files when it loads each case's
documents on their own; `lianjian documents … --served` records the serving of a task's notices
in a fixed number of statements besides each case's record."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from functools import partial

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from core import documents, referrals, replacements
from core.archive import closing, contents
from core.changes import Ctx, record
from core.documents import TaskDocuments, task_documents
from core.models import Case, JointTask
from core.result_entry import submit_result
from core.review import review_result
from tests.case_factories import World, acting, add_case, at_day, build_world, enter_other_parts
from tests.test_public import publish_and_correct

D = dt.date
TASK_CODE = "LJ-2026-001"  # build_world's; the task row is expired by each archive undone


async def inspect_and_publish(ctx: Ctx, w: World, n: int) -> None:
    """A case's life with what its documents show varying by case: notices served (one
    before the group was stored with it, one re-issued after a replacement) or none in the
    system (n % 4 == 3: printed and handed over by hand), a return before publication, a
    correction (第二十条: a new version), a referral."""
    at_day(ctx, D(2026, 3, 5))
    if n % 3 == 1 and n % 4 != 3:
        # a notice served before the notice's group was kept in its audit event
        await record(ctx, "case.notified", f"case:{w.case.code}", {"via": "test"})
    if n % 4 != 3:
        await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    if n % 2 == 0:
        at_day(ctx, D(2026, 3, 6))
        await replacements.request(acting(ctx, w.a1), w.case.code, "A2", "临时抽调参加专项整治")
        await replacements.decide(
            acting(ctx, w.lead_leader), w.case.code, "A2", new_officer_code="AX"
        )
        await documents.issue_notice(acting(ctx, w.outsider), w.case.code, via="test")
    await ctx.session.commit()
    await publish_and_correct(ctx, w, returned_first=n % 2 == 1, item_content=f"第{n}户检查内容")
    if n % 3 == 0:
        await referrals.add_referral(
            acting(ctx, w.lead_liaison), w.case.code, "移送办案机构", w.lead.name, "年报未公示"
        )
        await ctx.session.commit()


async def cancelled_without_a_visit(ctx: Ctx, w: World) -> None:
    """A case whose target was found 注销 (a situation entered without a visit): no notice
    was handed over; the result published."""
    at_day(ctx, D(2026, 3, 12))
    await enter_other_parts(ctx.session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1), w.case.code, codes=["9"], methods=[], followups=["无需后续处置"]
    )
    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    at_day(ctx, D(2026, 3, 20))
    await review_result(acting(ctx, w.other_liaison), w.case.code, approve=True)
    await ctx.session.commit()


async def task_of(ctx: Ctx, session: AsyncSession, count: int) -> World:
    w = await build_world(session)
    await inspect_and_publish(ctx, w, 1)
    for n in range(2, count + 1):
        await inspect_and_publish(ctx, await add_case(session, w, n), n)
    return w


async def load_case_by_case(ctx: Ctx, task: JointTask, cases: Sequence[Case]) -> TaskDocuments:
    """What the archive loads when each case's documents are read on their own (the
    documents pages' look-ups, `case_document_context`), merged."""
    one = [await task_documents(ctx, task, [case]) for case in cases]
    return dataclasses.replace(
        one[0],
        groups={k: v for d in one for k, v in d.groups.items()},
        results={k: v for d in one for k, v in d.results.items()},
        item_results={k: v for d in one for k, v in d.item_results.items()},
        served={k: v for d in one for k, v in d.served.items()},
    )


async def archived(ctx: Ctx, session: AsyncSession, w: World) -> dict[str, bytes]:
    """The archive's files (its manifest too), the task left as it was (open: archiving
    closes it)."""
    lead, code = acting(ctx, w.lead_liaison), TASK_CODE
    savepoint = await session.begin_nested()
    data, _, _ = await closing.archive_task(lead, code)
    await savepoint.rollback()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


async def test_archive_of_many_cases_files_what_it_filed_case_by_case(
    ctx: Ctx, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """004 第二十五条 with 第十六条(二) and 第二十条: every case's notices as served and its
    record form of each version, the register of notices served and the manifest are byte for
    byte those the archive built one case and one version at a time."""
    w = await task_of(ctx, session, 5)
    await cancelled_without_a_visit(ctx, await add_case(session, w, 6))
    at_day(ctx, D(2026, 6, 2))
    batched = await archived(ctx, session, w)
    monkeypatch.setattr(contents, "documents", partial(contents.documents, load=load_case_by_case))
    one_by_one = await archived(ctx, session, w)
    assert sorted(batched) == sorted(one_by_one)
    assert [n for n in batched if batched[n] != one_by_one[n]] == []
    # the task's cases are all there, each with its versions and notices
    for n in range(1, 6):
        code = f"{TASK_CODE}-{n:03d}"
        notice = "未登记送达" if n == 3 else "第1次送达"
        assert f"04-检查文书/{code}/{code}-联合抽查通知书-{notice}.docx" in batched
        assert any(f"{code}-联合抽查情况记录表-第2版" in name for name in batched)
    served = batched["04-检查文书/通知书送达.csv"].decode("utf-8-sig")
    assert "据检查组人员变更记录还原" in served and "吴局外" in served
    assert "未在系统中登记送达，按案件数据生成" in served


async def test_a_case_not_visited_has_no_notice_filed_004_art25(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第二十五条: a result entered without a visit (注销, 未找到, 迁出) handed no notice
    to the target: the archive files none for it (a generated 未登记送达 notice would suggest
    one was issued); the register says so, with no file."""
    w = await build_world(session)
    await cancelled_without_a_visit(ctx, w)
    at_day(ctx, D(2026, 6, 2))
    read = await archived(ctx, session, w)
    code = w.case.code
    assert not any(n.startswith(f"04-检查文书/{code}/") and "通知书" in n for n in read)
    assert any(n.startswith(f"04-检查文书/{code}/") and "记录表" in n for n in read)
    [row] = csv.DictReader(io.StringIO(read["04-检查文书/通知书送达.csv"].decode("utf-8-sig")))
    assert row["案件号"] == code and row["归档位置"] == "未在系统中登记送达（未实地检查）"
    assert row["检查组"] == "张检查（组长）、李检查、王检查", row


async def test_archive_statements_do_not_grow_with_the_cases(
    ctx: Ctx, session: AsyncSession
) -> None:
    """A county task has thousands of cases: the archive reads them per task, one statement
    per kind of row, not per case nor per result version."""
    w = await task_of(ctx, session, 2)
    at_day(ctx, D(2026, 6, 2))
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()[:8]))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        await archived(ctx, session, w)
        few = list(seen)
        for n in range(3, 7):
            await inspect_and_publish(ctx, await add_case(session, w, n), n)
        at_day(ctx, D(2026, 6, 2))
        seen.clear()
        await archived(ctx, session, w)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(seen) == len(few), "\n".join(seen)


async def test_serving_printed_notices_statements_do_not_grow_with_the_cases(
    ctx: Ctx, session: AsyncSession
) -> None:
    """`lianjian documents … --served` (004 第十六条(二)) locks a task's cases at once and reads
    their groups and notices served per task: besides each case's own record (its state, its
    audit event) the statements are as many for six cases as for two."""
    w = await build_world(session)
    await add_case(session, w, 2)
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        words = " ".join(statement.split())
        if not words.startswith(("INSERT", "UPDATE")) and "audit_head" not in words:
            seen.append(words[:60])  # not the per-case record

    async def serve() -> list[str]:
        printed = await documents.print_documents(ctx, TASK_CODE, serving=True)
        seen.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            served = await documents.serve_printed(ctx, TASK_CODE, printed)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        await session.commit()
        return served

    engine = session.get_bind()
    assert len(await serve()) == 2
    few = list(seen)
    for n in range(3, 7):
        await add_case(session, w, n)
    assert len(await serve()) == 4
    assert len(seen) == len(few), "\n".join(seen)
