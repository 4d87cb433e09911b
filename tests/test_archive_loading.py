"""立卷归档 (004 第二十五条) of a task of many cases: the archive loads the cases' documents per
task in a fixed number of statements, and files exactly what it filed when it built each case's
documents one case (and one result version) at a time."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import documents, referrals, replacements
from core.archive import closing, contents
from core.changes import Ctx, record
from core.documents import DOC_TITLES, case_document_context, render_docx, served_notices
from core.exports import csv_bytes
from core.models import Case, CaseResult, JointTask
from tests.case_factories import World, acting, add_case, at_day, build_world
from tests.test_public import publish_and_correct

D = dt.date
TASK_CODE = "LJ-2026-001"  # build_world's; the task row is expired by each archive undone


async def inspect_and_publish(ctx: Ctx, w: World, n: int) -> None:
    """A case's life with what its documents show varying by case: notices served (one
    before the group was stored with it, one re-issued after a replacement), a return before
    publication, a correction (第二十条: a new version), a referral."""
    at_day(ctx, D(2026, 3, 5))
    if n % 3 == 1:
        # a notice served before the notice's group was kept in its audit event
        await record(ctx, "case.notified", f"case:{w.case.code}", {"via": "test"})
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


async def task_of(ctx: Ctx, session: AsyncSession, count: int) -> World:
    w = await build_world(session)
    await inspect_and_publish(ctx, w, 1)
    for n in range(2, count + 1):
        await inspect_and_publish(ctx, await add_case(session, w, n), n)
    return w


async def documents_case_by_case(
    ctx: Ctx, task: JointTask, cases: Sequence[Case], files: contents.Files
) -> None:
    """What the archive filed before it loaded per task: each case's documents built from the
    one-case look-ups (the documents pages'), every record version with its own."""
    served_rows: list[tuple[Any, ...]] = []
    for case in cases:
        folder = f"04-检查文书/{case.code}"
        context = await case_document_context(ctx, case.code)
        served = await served_notices(ctx, case)
        names = await contents.officer_codes_names(ctx.session, [s.actor for s in served])
        for n, notice in enumerate(served, 1):
            name = f"{case.code}-{DOC_TITLES['notice']}-第{n}次送达.docx"
            files.add(
                f"{folder}/{name}", render_docx("notice", notice.context(context), ctx.clock.now())
            )
            served_rows.append(
                (
                    case.code,
                    n,
                    contents.china_time(notice.at),
                    names.get(notice.actor, notice.actor),
                    contents.group_names(notice.inspectors),
                    "送达时记录" if notice.kept else "据检查组人员变更记录还原",
                    f"{folder}/{name}",
                )
            )
        if not served:
            served_rows.append((case.code, "", "", "", "", "", "未在系统中登记送达"))
        versions = select(CaseResult).where(CaseResult.case_id == case.id)
        for result in await ctx.session.scalars(versions.order_by(CaseResult.version)):
            name = (
                f"{case.code}-{DOC_TITLES['record']}-第{result.edition}版-第{result.version}次录入"
            )
            record_context = await case_document_context(ctx, case.code, result)
            files.add(
                f"{folder}/{name}.docx", render_docx("record", record_context, ctx.clock.now())
            )
    files.add(
        "04-检查文书/通知书送达.csv",
        csv_bytes(
            ("案件号", "送达次序", "送达时间", "领取人", "检查组", "检查组来源", "归档位置"),
            served_rows,
        ),
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
    at_day(ctx, D(2026, 6, 2))
    batched = await archived(ctx, session, w)
    monkeypatch.setattr(contents, "documents", documents_case_by_case)
    one_by_one = await archived(ctx, session, w)
    assert sorted(batched) == sorted(one_by_one)
    assert [n for n in batched if batched[n] != one_by_one[n]] == []
    # the task's cases are all there, each with its versions and notices
    for n in range(1, 6):
        code = f"{TASK_CODE}-{n:03d}"
        assert f"04-检查文书/{code}/{code}-联合抽查通知书-第1次送达.docx" in batched
        assert any(f"{code}-联合抽查情况记录表-第2版" in name for name in batched)
    served = batched["04-检查文书/通知书送达.csv"].decode("utf-8-sig")
    assert "据检查组人员变更记录还原" in served and "吴局外" in served


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
