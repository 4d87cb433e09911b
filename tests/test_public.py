"""The public side (一公开, no login) over real HTTP: index, results search with corrections as
versions, draw receipts with their pool file; no officer data unless a setting publishes it."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pages import public as public_pages
from bot.services import Services
from core import objections, public
from core.changes import Ctx
from core.clock import china_noon
from core.draws import targets
from core.draws.verify import find_draw, verify_draw
from core.models import Case, CaseResult, Draw, JointTask, PlanEntry
from core.publication import correct_result
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from core.states import ResultState
from core.workdays import cn_date
from tests import factories as f
from tests.case_factories import ResultFields, World, acting, at_day, build_world, enter_other_parts
from tests.server_helpers import make_services, page_text, pages_app

D = dt.date
CASE = "LJ-2026-001-001"
NO_PROBLEM: ResultFields = {"codes": ["1"], "methods": ["实地检查"], "followups": ["无需后续处置"]}
PROBLEM: ResultFields = {
    "codes": ["A", "2", "B"],
    "methods": ["实地检查"],
    "followups": ["责令改正并跟踪"],
}


async def publish_and_correct(
    ctx: Ctx, w: World, *, returned_first: bool = False, item_content: str = ""
) -> None:
    """One published result (problem found) and its correction (004 第二十条); with
    `returned_first`, the lead returns the first entry and the group enters it again (004
    第十九条) before it is published; with `item_content`, the entry names the lead's items
    (检查内容 and the problem found)."""
    at_day(ctx, D(2026, 3, 12))
    for again in [False, True] if returned_first else [False]:
        if again:
            await review_result(acting(ctx, w.lead_liaison), w.case.code, False, "缺少现场照片")
        await enter_other_parts(ctx.session, w.case.code, w.a1, ctx.clock.now())
        await submit_result(
            acting(ctx, w.a1),
            w.case.code,
            **PROBLEM,
            inspected_on=D(2026, 3, 10),
            item_results=[
                {
                    "item_id": item.id,
                    "codes": ["A", "2", "B"],
                    "content": item_content,
                    "problems": "年报未公示",
                }
                for item in w.items
                if item_content and item.department_id == w.lead.id
            ],
        )
    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    at_day(ctx, D(2026, 3, 20))
    # the closing approval publishes (rules.auto_publish, the default; 004 第十九条)
    await review_result(acting(ctx, w.other_liaison), w.case.code, approve=True)
    at_day(ctx, D(2026, 4, 2))
    await correct_result(
        acting(ctx, w.lead_liaison),
        w.case.code,
        reason="复查后更正",
        **NO_PROBLEM,
        inspected_on=D(2026, 3, 10),
    )
    await ctx.session.commit()


def _client_factory(rules: Rules | None = None):
    async def make(sessionmaker, clock, aiohttp_client) -> TestClient:
        services: Services = make_services(sessionmaker, clock)
        if rules is not None:
            services.rules = rules
        return await aiohttp_client(pages_app(services, public_pages.routes(services)))

    return make


@pytest.fixture
async def client(sessionmaker, clock, aiohttp_client) -> TestClient:
    return await _client_factory()(sessionmaker, clock, aiohttp_client)


@pytest.fixture
async def published(ctx: Ctx, session: AsyncSession) -> World:
    w = await build_world(session)
    await publish_and_correct(ctx, w)
    return w


async def test_results_search_by_name_code_and_year_shows_corrections_as_versions(
    client: TestClient, published: World
) -> None:
    """000 §十一, 002 二(六): results are published to society under the target's name and
    code; a correction shows with the version it replaced (004 第二十条)."""
    for params in ({"q": "某某食品"}, {"q": "91330424ma28aqaqxu"}, {"year": "2026"}, {}):
        resp = await client.get("/public/results", params=params)
        assert resp.status == 200, params
        text = page_text(await resp.text())
        assert "嘉善县某某食品有限公司" in text, params
        assert "第 2 版（更正）" in text and "未发现问题" in text
        assert "原公示结果（已更正）" in text and "第 1 版" in text
    for params in ({"q": "不存在的企业"}, {"year": "2025"}, {"q": "91330424MA28AQAQX0"}):
        text = page_text(await (await client.get("/public/results", params=params)).text())
        assert "没有找到符合条件的已公示检查结果" in text, params
        assert "请核对企业名称" in text and "换一个年度" in text  # and what to try next


@pytest.mark.parametrize(
    "typed",
    [
        "９１３３０４２４ＭＡ２８ＡＱＡＱＸＵ",
        "９１３３０４２４ｍａ２８ａｑａｑｘｕ",
        "91330424\u3000MA28AQAQXU ",
    ],
)
async def test_results_search_reads_a_code_typed_in_full_width(
    client: TestClient, published: World, typed: str
) -> None:
    """A phone's Chinese input method types the 统一社会信用代码 in full-width digits and letters
    (９１３３…), which found nothing: the query's code is read as NFKC makes it."""
    text = page_text(await (await client.get("/public/results", params={"q": typed})).text())
    assert "嘉善县某某食品有限公司" in text and "没有找到" not in text


async def _more_published(session: AsyncSession, w: World, n: int) -> None:
    """n more published results in w's task, for targets named 嘉善县某某食品第 i 分店, published
    after w's correction (newest first: they come before it). Written as rows: the search only
    reads them, publishing is tested in test_publication."""
    shops = await f.targets(session, n)
    for i, shop in enumerate(shops, 1):
        shop.name = f"嘉善县某某食品第{i}分店"
    cases = [
        Case(code=f"{w.task.code}-{100 + i}", task_id=w.task.id, target_id=shop.id)
        for i, shop in enumerate(shops, 1)
    ]
    session.add_all(cases)
    await session.flush()
    first = dt.datetime(2026, 5, 1, 2, tzinfo=dt.UTC)
    session.add_all(
        CaseResult(
            case_id=case.id,
            version=1,
            state=ResultState.PUBLISHED,
            **NO_PROBLEM,
            entered_by_id=w.a1.id,
            entered_at=first,
            published_at=first + dt.timedelta(minutes=i),
        )
        for i, case in enumerate(cases)
    )
    await session.commit()


def _shown(html: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", html)


async def _search(client: TestClient, q: str, page: int = 1) -> str:
    return await (await client.get("/public/results", params={"q": q, "page": str(page)})).text()


async def test_a_name_fragment_pages_through_every_published_result_with_the_total(
    client: TestClient, session: AsyncSession, ctx: Ctx
) -> None:
    """000 §十一: the results are published to society, so a fragment of the name finds every
    published result, however many targets in the library share the fragment; 20 a page, the
    total and a link to the next page shown."""
    await f.targets(session, 600, name="嘉善县某某食品经营部")  # in the library, never inspected
    w = await build_world(session)
    await publish_and_correct(ctx, w)
    await _more_published(session, w, 24)
    first = await _search(client, "某某食品")
    assert len(_shown(first)) == public.PER_PAGE and "嘉善县某某食品第24分店" in _shown(first)
    assert "共 25 条" in page_text(first) and "很多" not in page_text(first)
    assert "page=2" in first and "下一页" in first
    assert re.search(r"共 2 页(</span>)?\s+<a", first)  # the pager's words and link apart
    second = await _search(client, "某某食品", 2)
    assert _shown(second)[-1] == "嘉善县某某食品有限公司" and len(_shown(second)) == 5
    assert "第 2 版（更正）" in page_text(second) and "下一页" not in second
    past = await _search(client, "某某食品", 3)
    assert "第 3 页没有结果" in page_text(past) and "page=1" in past
    for fragment in ("食品有限公司", "某某食品有限"):
        found = await _search(client, fragment)
        assert _shown(found) == ["嘉善县某某食品有限公司"] and "共 1 条" in page_text(found)


async def test_a_search_matching_more_than_it_counts_still_pages_through_all(
    client: TestClient, session: AsyncSession, ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COUNT_LIMIT results the page says 超过 N 条 and still lists them all, newest first,
    also for a fragment shared by more than MAX_TARGETS targets (matched along the results)."""
    monkeypatch.setattr(public, "COUNT_LIMIT", 10)
    monkeypatch.setattr(public, "MAX_TARGETS", 10)
    w = await build_world(session)
    await publish_and_correct(ctx, w)
    await _more_published(session, w, 24)
    seen: list[str] = []
    for page in (1, 2):
        html = await _search(client, "某某", page)
        assert ("超过 10 条" if page == 1 else "共 25 条") in page_text(html)  # the last page knows
        assert ("下一页" in html) == (page == 1)
        seen += _shown(html)
    newest_first = [f"嘉善县某某食品第{i}分店" for i in range(24, 0, -1)]
    assert seen == [*newest_first, "嘉善县某某食品有限公司"]


async def test_results_never_show_officers_unless_the_rules_publish_them(
    client: TestClient, published: World, sessionmaker, clock, aiohttp_client
) -> None:
    text = page_text(await (await client.get("/public/results")).text())
    for private in ("张检查", "ZFA1", "赵联络", "复查后更正"):
        assert private not in text
    publishing = await _client_factory(Rules(publish_inspectors=True))(
        sessionmaker, clock, aiohttp_client
    )
    text = page_text(await (await publishing.get("/public/results")).text())
    assert "张检查（执法证号 ZFA1）" in text and "赵联络" not in text


async def test_each_result_tells_the_target_how_and_until_when_to_object_004_art20(
    client: TestClient, published: World, ctx: Ctx
) -> None:
    """004 第二十条: 被检查对象对检查结果有异议的，应当自检查结果公示之日起 60 日内，向牵头部门
    提交书面申请和相关证明材料. Each published result says so with its own last day (from the
    current version's publication, 2026-04-02: 2026-06-01) and the lead department, no
    officer; once the day has passed, that it has; the index says the rule."""
    text = page_text(await (await client.get("/public/results")).text())
    assert (
        "被检查对象对本检查结果有异议的，可于 2026年6月1日（含当日）前，"
        "向牵头部门县市场监督管理局提交书面申请和相关证明材料" in text
    ), text
    assert "20 个工作日内组织复查" in text and "行政复议" in text
    for private in ("张检查", "赵联络", "ZFA1"):
        assert private not in text
    at_day(ctx, D(2026, 6, 2))
    text = page_text(await (await client.get("/public/results")).text())
    assert "异议期限（自公示之日起 60 日）已于 2026年6月1日 届满" in text
    assert "可于" not in text
    index = page_text(await (await client.get("/public/")).text())
    assert "对检查结果有异议" in index
    assert (
        "可自检查结果公示之日起 60 日内" in index and "向该抽查任务的牵头部门提交书面申请" in index
    )


async def test_each_result_says_whether_an_objection_is_being_handled_004_art20(
    client: TestClient, published: World, ctx: Ctx, session: AsyncSession
) -> None:
    """004 第二十条: a result whose objection is being handled said only that the objection
    period had passed. It says the lead department received an objection and where its
    handling stands (复查中, 经复查确有错误、待更正), naming no objector and no content; once
    answered, nothing of it stays."""
    w = published
    at_day(ctx, D(2026, 5, 20))
    lead = acting(ctx, w.lead_liaison)
    filed = await objections.file_objection(
        lead, CASE, "某某法定代表人", "不服结论", D(2026, 5, 19)
    )
    await session.commit()
    text = page_text(await (await client.get("/public/results")).text())
    assert "异议处理中：牵头部门已于 2026年5月19日 收到对本检查结果的异议，正在复查" in text, text
    at_day(ctx, D(2026, 6, 2))
    await objections.record_recheck(lead, filed.id, "经复查原结论有误", True)
    await session.commit()
    text = page_text(await (await client.get("/public/results")).text())
    assert "经复查确有错误，正在更正" in text and "已于 2026年6月1日 届满" in text, text
    for private in ("某某法定代表人", "不服结论", "经复查原结论有误"):
        assert private not in text
    await correct_result(lead, CASE, reason="复查确有错误", **PROBLEM, inspected_on=D(2026, 3, 10))
    await objections.reply_objection(lead, filed.id)
    await session.commit()
    assert "异议处理中" not in page_text(await (await client.get("/public/results")).text())


async def test_a_passed_objection_period_is_not_marked_provisional(
    client: TestClient, published: World, ctx: Ctx, session: AsyncSession
) -> None:
    """A last day to object in a year without holiday data is provisional while it is ahead;
    once it has passed the note (暂按周一至周五计算…) said nothing of use and is left out. The
    task and case numbers keep on one line on a phone (`.id`)."""
    current = await session.scalar(select(CaseResult).where(CaseResult.is_correction))
    assert current is not None
    current.published_at = china_noon(D(2026, 12, 1))  # its last day is in 2027
    await session.commit()
    at_day(ctx, D(2026, 12, 2))
    text = page_text(await (await client.get("/public/results")).text())
    assert "可于 2027年2月1日" in text and "暂按" in text, text
    at_day(ctx, D(2027, 2, 10))
    html = await (await client.get("/public/results")).text()
    assert "已于 2027年2月1日 届满" in page_text(html) and "暂按" not in page_text(html)
    assert '<span class="id">LJ-2026-001</span>' in html and "white-space: nowrap" in html


@pytest.mark.parametrize(
    "params",
    [{"year": "二〇二六"}, {"page": "x" * 5000}, {"q": "%_\\'\"<script>" * 30}, {"page": "9999"}],
)
async def test_odd_queries_get_a_page_never_a_500(
    client: TestClient, published: World, params: dict[str, str]
) -> None:
    resp = await client.get("/public/results", params=params)
    assert resp.status == 200
    html = await resp.text()
    assert "<script>" not in html
    if "year" in params:
        assert "年份应为四位数字" in page_text(html)


async def _locked_task(ctx: Ctx, session: AsyncSession, *, window_open: bool = True) -> str:
    """A task's target draw locked on 2026-03-04; the clock then at the first day of the
    inspection window (f.WINDOW), or left before it."""
    w = await f.world(session, partners=1, inspectors=2, n_targets=30)
    task = await f.ready_task(ctx, w)
    lead = f.as_actor(ctx, w.lead.liaison)
    at_day(ctx, D(2026, 3, 2))
    frozen = await targets.freeze_pool(lead, task.code, "2026年3月3日福彩3D开奖号码")
    at_day(ctx, D(2026, 3, 4))
    await targets.confirm_draw(lead, task.code, "417")
    await session.commit()
    if window_open:
        at_day(ctx, f.WINDOW[0])
    return frozen.code


async def test_index_lists_the_years_tasks_items_and_draws(
    client: TestClient, ctx: Ctx, session: AsyncSession
) -> None:
    code = await _locked_task(ctx, session)
    text = page_text(await (await client.get("/public/", params={"year": "2026"})).text())
    assert "2026年食品经营者联合抽查" in text and "已锁定" in text and code in text
    assert "县市场监督管理局" in text and "抽查事项" in text
    other_year = page_text(await (await client.get("/public/", params={"year": "2020"})).text())
    assert "2020 年尚无公布的联合抽查任务" in other_year and "本年度" not in other_year
    # a year that is no year is said so, as /public/results does, with the year shown instead
    at_day(ctx, D(2026, 3, 2))
    bad = page_text(await (await client.get("/public/", params={"year": "abc"})).text())
    assert "年份应为四位数字（如 2026），已显示 2026 年。" in bad


async def test_the_draw_page_shows_the_window_as_extended_000_5_3(
    client: TestClient, ctx: Ctx, session: AsyncSession
) -> None:
    """000 §五.3, 002 二(六): the draw's task information shows its window to the new last day,
    saying it was extended, as the index does."""
    code = await _locked_task(ctx, session)
    task = await session.scalar(
        select(JointTask).join(Draw, Draw.task_id == JointTask.id).where(Draw.code == code)
    )
    assert task is not None
    task.window_extended_to = task.window_end + dt.timedelta(days=10)
    await session.commit()
    text = page_text(await (await client.get(f"/public/draws/{code}")).text())
    assert f"{cn_date(task.window_start)} 至 {cn_date(task.window_extended_to)}（已延期）" in text


async def test_a_task_drawn_before_its_window_is_not_yet_inspecting(
    client: TestClient, ctx: Ctx, session: AsyncSession
) -> None:
    """The index said 检查中 on 2 Dec for a task whose window starts 15 Dec: by the service's
    clock it is drawn and waiting until the window opens."""
    await build_world(session, window_start=D(2026, 12, 15), window_end=D(2026, 12, 31))
    await session.commit()
    shown = {}
    for day in (D(2026, 12, 2), D(2026, 12, 15)):
        at_day(ctx, day)
        html = await (await client.get("/public/", params={"year": "2026"})).text()
        shown[day.day] = page_text(html)
    assert "已抽取，待检查" in shown[2] and "检查中" not in shown[2]
    assert "检查中" in shown[15] and "待检查" not in shown[15]


async def test_draw_page_publishes_seed_beacon_pool_and_selection(
    client: TestClient, ctx: Ctx, session: AsyncSession, tmp_path: Path
) -> None:
    code = await _locked_task(ctx, session)
    page = await client.get(f"/public/draws/{code}")
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    data = await (await client.get(f"/public/draws/{code}.json")).json()
    assert data["seed"] and data["seed"] in html and data["commitment"] in html
    assert "417" in html and "2026年3月3日福彩3D开奖号码" in page_text(html)
    assert (
        all(i in html for i in data["selection"]) and 'src="/public/static/draw_verify.js"' in html
    )
    pool = await client.get(f"/public/draws/{code}/pool.csv")
    body = (await pool.text()).removeprefix("id,stratum\n").removesuffix("\n")
    assert hashlib.sha256(body.encode()).hexdigest() == data["pool_hash"]
    assert (await client.get("/public/static/draw_verify.js")).status == 200
    inspectors = f"{data['task_code']}-I1"
    for missing in (
        f"/public/draws/{inspectors}",
        "/public/draws/LJ-1999-001.json",
        "/public/draws/LJ-1999-001/pool.csv",
    ):
        resp = await client.get(missing)
        assert resp.status == 404 and "没有公开的抽取记录" in page_text(await resp.text())


async def test_the_drawn_targets_are_public_only_from_the_first_inspection_day(
    client: TestClient, ctx: Ctx, session: AsyncSession
) -> None:
    """004 第十六条(二) 检查活动或检查事项不宜告知的，不得向被检查对象透露相关信息: before the
    window opens the page shows the commitment, pool hash, beacon and rule (the draw is fixed
    and checkable in time) and says when and why the rest comes; the seed, the selection and
    the pool file come on the window's first day. Officers verify at any time."""
    code = await _locked_task(ctx, session, window_open=False)
    selection = (await session.scalar(select(Draw.selection).where(Draw.code == code))) or []
    at_day(ctx, f.WINDOW[0] - dt.timedelta(days=1))
    html = await (await client.get(f"/public/draws/{code}")).text()
    data = await (await client.get(f"/public/draws/{code}.json")).json()
    assert data["commitment"] in html and data["pool_hash"] in html and "417" in html
    assert data["seed"] is None and data["selection"] == []
    assert data["withheld_until"] == "2026-03-16"
    assert not any(i in html for i in selection) and "draw_verify.js" not in html
    assert "pool.csv" not in html
    text = page_text(html)
    assert "将于2026年3月16日（检查开始之日）起在本页公开" in text and "第十六条第（二）项" in text
    pool = await client.get(f"/public/draws/{code}/pool.csv")
    assert pool.status == 404
    assert "2026年3月16日（检查开始之日）起公开" in page_text(await pool.text())
    index = await (await client.get("/public/", params={"year": "2026"})).text()
    assert not any(i in index for i in selection)
    report = await verify_draw(ctx, (await find_draw(ctx, code)).id)
    assert report.ok and report.locked

    at_day(ctx, f.WINDOW[0])
    html = await (await client.get(f"/public/draws/{code}")).text()
    data = await (await client.get(f"/public/draws/{code}.json")).json()
    assert data["selection"] == selection and data["seed"] in html
    assert all(i in html for i in selection) and "将于" not in page_text(html)
    assert (await client.get(f"/public/draws/{code}/pool.csv")).status == 200


def _saved_as(resp: ClientResponse) -> str:
    """The name a browser saves a download under (RFC 6266 filename*)."""
    found = re.search(r"attachment; filename\*=UTF-8''(\S+)", resp.headers["Content-Disposition"])
    assert found is not None, "served as a download"
    return unquote(found.group(1))


async def _run_recipe(recipe: str, where: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", recipe],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_pages_recipe_verifies_the_downloads_as_saved_even_from_windows(
    client: TestClient, ctx: Ctx, session: AsyncSession, tmp_path: Path
) -> None:
    """004 第四条 (全程留痕): anyone can recompute a draw. The page's Python recipe runs on the
    two downloads under the names they are saved as, and on a pool file saved again with CRLF
    line ends and a BOM (the hash covers the candidate lines, not how the file ends them); a
    changed candidate still fails."""
    code = await _locked_task(ctx, session)
    html = await (await client.get(f"/public/draws/{code}")).text()
    record = await client.get(f"/public/draws/{code}.json")
    pool = await client.get(f"/public/draws/{code}/pool.csv")
    names = (_saved_as(record), _saved_as(pool))
    assert names == (f"{code}.json", f"{code}-pool.csv")
    for name in names:
        assert f'download="{name}"' in html, name  # the links say the same names
    (tmp_path / names[0]).write_bytes(await record.read())
    found = re.search(r'<pre class="recipe">(.*?)</pre>', html, re.S)
    assert found is not None, "the page shows its recipe"
    recipe = unescape(found.group(1))
    # the public reads the recipe: its comments are in Chinese
    assert all(re.search("[\u4e00-\u9fff]", c) for c in re.findall(r"#.*", recipe)), recipe
    text = await pool.text()
    chosen = (await record.json())["selection"][0]
    for saved, passes in (
        (text.encode(), True),
        (b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(), True),
        (text.replace(f"{chosen},", "91330424000000000X,").replace("\n", "\r\n").encode(), False),
    ):
        (tmp_path / names[1]).write_bytes(saved)
        run = await _run_recipe(recipe, tmp_path)
        assert (run.returncode == 0 and "验证通过" in run.stdout) == passes, run.stderr


async def test_index_publishes_the_years_plan(client: TestClient, session: AsyncSession) -> None:
    """004 第七条: 年度计划…制订并公布 — the plan rows with lead, participants, ratio and month."""
    lead = await f.department(session, "县市场监督管理局")
    partner = await f.department(session, "县卫生健康委员会")
    session.add_all(
        [
            PlanEntry(
                year=2026,
                code="JH-2026-01",
                title="校园周边食品安全联合抽查",
                lead_department_id=lead.id,
                participant_ids=[partner.id],
                ratio="0.05",
                month=4,
            ),
            PlanEntry(
                year=2027,
                code="JH-2027-01",
                title="明年的计划",
                lead_department_id=lead.id,
                count=30,
                month=3,
            ),
        ]
    )
    await session.commit()
    text = page_text(await (await client.get("/public/", params={"year": "2026"})).text())
    assert "年度抽查计划" in text and "4 月 · 校园周边食品安全联合抽查" in text
    assert "JH-2026-01" in text and "县卫生健康委员会" in text and "5%" in text
    assert "明年的计划" not in text
    empty = page_text(await (await client.get("/public/", params={"year": "2020"})).text())
    assert "2020 年的抽查计划尚未公布" in empty
