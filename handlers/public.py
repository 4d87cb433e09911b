"""The public pages (一公开, no login): index, results search, draw receipts.

Each function takes the session, the clock or rules it needs and the parsed request values, calls
core.public and renders a template; bot.public_pages only speaks HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from core import public
from core.changes import Ctx
from core.draws.algorithm import rule_lines
from core.messages import encodable_text
from core.models import Draw
from core.plan import plan_entries
from core.render import render

_YEAR = re.compile(r"[0-9]{4}")
BAD_YEAR = "年份应为四位数字（如 2026），"
_PAGE = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class RawQuery:
    """Request values as typed by the visitor (strings; absent = "")."""

    q: str = ""
    year: str = ""
    page: str = ""


def _year(text: str) -> tuple[int | None, bool]:
    """(the year typed, or None; whether something that is no year was typed)."""
    text = text.strip()
    year = int(text) if _YEAR.fullmatch(text) else None
    return year, bool(text) and year is None


def parse_results_query(raw: RawQuery) -> tuple[public.ResultQuery, str]:
    """The query and a Chinese note on what was ignored ("" when everything was understood)."""
    year, bad = _year(raw.year)
    note = f"{BAD_YEAR}已按全部年份查询。" if bad else ""
    page = int(raw.page) if _PAGE.fullmatch(raw.page.strip()) else 1
    text = encodable_text(raw.q).strip()  # NUL and lone surrogates cannot be searched for
    if len(text) > public.MAX_QUERY_CHARS:
        note = f"查询内容过长，只按前 {public.MAX_QUERY_CHARS} 个字查询。"
    return public.ResultQuery(text=text[: public.MAX_QUERY_CHARS], year=year, page=page), note


async def results_page(ctx: Ctx, raw: RawQuery) -> str:
    query, note = parse_results_query(raw)
    found = await public.search_results(ctx, query, publish_inspectors=ctx.rules.publish_inspectors)
    return render("web/public_results.html", page=found, note=note, raw=raw, rules=ctx.rules)


async def index_page(ctx: Ctx, raw_year: str) -> str:
    """The year's plan, tasks and items; a year that is no year says so and shows this one."""
    today = ctx.clock.today()
    typed, bad = _year(raw_year)
    year = typed if typed is not None else today.year
    note = f"{BAD_YEAR}已显示 {year} 年。" if bad else ""
    index = await public.public_index(ctx, year)
    return render(
        "web/public_index.html",
        index=index,
        task_state=partial(public.public_task_state, today=today),
        plan=await plan_entries(ctx, year),
        note=note,
        rules=ctx.rules,
    )


def record_file(d: Draw) -> str:
    """The name the draw record downloads under; the page's recipe opens it by this name."""
    return f"{d.code}.json"


def pool_file(d: Draw) -> str:
    return f"{d.code}-pool.csv"


async def draw_page(ctx: Ctx, code: str) -> str:
    pd = await public.public_draw(ctx, code)
    d = pd.draw
    return render(
        "web/public_draw.html",
        draw=d,
        data=public.public_record(pd),
        task=pd.task,
        withheld_until=pd.withheld_until,
        withheld_basis=public.WITHHELD_BASIS,
        rules=rule_lines(d.parameters.get("rule")),
        sizes=d.parameters.get("strata", {}),
        in_browser=d.pool_size <= public.RECOMPUTE_IN_BROWSER_MAX,
        limit=public.RECOMPUTE_IN_BROWSER_MAX,
        record_file=record_file(d),
        pool_file=pool_file(d),
    )


async def draw_json(ctx: Ctx, code: str) -> tuple[str, dict[str, object]]:
    """(file name, the draw record as public today)."""
    pd = await public.public_draw(ctx, code)
    return record_file(pd.draw), public.public_record(pd)


async def draw_pool(ctx: Ctx, code: str) -> tuple[str, str]:
    """(file name, the exported pool file) — the same bytes as `lianjian draw export-pool`, once
    the inspection window has opened."""
    pd = await public.public_draw(ctx, code)
    return pool_file(pd.draw), await public.public_pool(ctx, pd)
