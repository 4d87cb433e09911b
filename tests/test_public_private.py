"""What the public side (一公开) never shows: the result's attachments, remarks, the reviewers'
reasons and objections stay inside (issue 9: attachments are "shown to reviewers, never on
public pages"), while the published result itself is found."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import create_app
from bot.pages.result import file_store
from core.changes import Ctx
from core.models import Attachment, CaseResult
from core.objections import file_objection
from core.result_entry import submit_result
from core.review import review_result
from tests.case_factories import ResultFields, acting, at_day, build_world, enter_other_parts
from tests.server_helpers import make_services, page_text

D = dt.date
PROBLEM: ResultFields = {
    "codes": ["A", "2", "B"],
    "methods": ["实地检查"],
    "followups": ["责令改正并跟踪"],
}
PHOTO = b"\xff\xd8\xff\xe0 the photo's bytes"
PRIVATE = (
    "现场负责人手机13800000000",
    "请补拍营业执照照片",
    "异议人称检查当日未营业",
    "现场照片甲.jpg",
)


async def test_public_pages_show_the_result_but_no_attachment_remark_reason_or_objection(
    ctx: Ctx, session: AsyncSession, sessionmaker, clock, aiohttp_client, tmp_path
) -> None:
    """000 §十一, 002 二(六): the result is published under the target's name; 004 第二十条:
    an objection is handled with the objector, not published."""
    w = await build_world(session)
    lead, other = acting(ctx, w.lead_liaison), acting(ctx, w.other_liaison)
    at_day(ctx, D(2026, 3, 12))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1), w.case.code, **PROBLEM, inspected_on=D(2026, 3, 10), remarks=PRIVATE[0]
    )
    await review_result(lead, w.case.code, approve=False, reason=PRIVATE[1])
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())  # all parts reopened
    result = await submit_result(
        acting(ctx, w.a1), w.case.code, **PROBLEM, inspected_on=D(2026, 3, 10), remarks=PRIVATE[0]
    )
    services = make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})
    sha = file_store(services).put(PHOTO)
    session.add(
        Attachment(
            result_id=result.id,
            sha256=sha,
            name=PRIVATE[3],
            mime="image/jpeg",
            size=len(PHOTO),
            uploaded_by_id=w.a1.id,
            uploaded_at=ctx.clock.now(),
        )
    )
    await review_result(lead, w.case.code, approve=True)
    at_day(ctx, D(2026, 3, 20))
    await review_result(other, w.case.code, approve=True)  # the closing approval publishes
    at_day(ctx, D(2026, 3, 25))
    await file_objection(lead, w.case.code, "某某食品有限公司", PRIVATE[2], D(2026, 3, 25))
    await session.commit()
    attachment = await session.scalar(select(Attachment.id))
    assert await session.scalar(select(CaseResult.state).where(CaseResult.id == result.id)) == (
        "published"
    )

    client: TestClient = await aiohttp_client(create_app(services, workers=()))
    pages = [
        await (await client.get(path, params=params)).text()
        for path, params in (
            ("/public/results", {"q": "某某食品"}),
            ("/public/results", {"q": w.target.uscc, "year": "2026"}),
            ("/public/", {"year": "2026"}),
        )
    ]
    found = page_text(pages[0])
    assert "嘉善县某某食品有限公司" in found and "未按规定公示应当公示的信息" in found
    for html in pages:
        for private in (*PRIVATE, sha, "/h5/result/file"):
            assert private not in html, private
    for query in ({"a": str(attachment)}, {"a": str(attachment), "t": "forged"}):
        resp = await client.get("/h5/result/file", params=query)
        assert resp.status >= 400 and PHOTO not in await resp.read()
