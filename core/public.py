"""What the public side shows (一公开): the year's tasks and item lists, published results with
their corrections, and target draws. No login, so nothing here names an officer unless
`Rules.publish_inspectors` says the rules publish the group (names and 执法证号 only).

Attachments, remarks and review reasons are never public; of an objection, only that one is
being handled (received when, at which stage: 004 第二十条), never who objected or what.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import active_members, department_categories
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.draws.verify import PUBLIC_DRAW_KIND, draw_public_json, pool_csv_text
from core.errors import NotFound
from core.imports.reading import nfkc
from core.models import (
    Case,
    CaseResult,
    Department,
    Draw,
    Invitation,
    Item,
    JointTask,
    Objection,
    Target,
    TaskItem,
)
from core.objections import objection_last_day
from core.results import Category, label
from core.states import TASK, InvitationState, ObjectionState, ResultState, TaskState
from core.workdays import Deadline, cn_date

PER_PAGE = 20
MAX_QUERY_CHARS = 100
# Matches counted exactly up to here (the page says 超过 N 条 beyond; all of them are listed):
# counting a fragment most names share walks the published results, ~10 per match
COUNT_LIMIT = 500
# A name fragment shared by more targets is matched along the published results instead
MAX_TARGETS = 1000
PUBLIC_TASK_STATES = tuple(s for s in TaskState if s not in (TaskState.DRAFT, TaskState.WITHDRAWN))


def public_tasks() -> ColumnElement[bool]:
    """The tasks the public side lists: not drafts; a withdrawn task (已撤销) only if it was
    public before (its consultation opened, so its commitment was announced)."""
    return or_(
        JointTask.state.in_(PUBLIC_TASK_STATES),
        and_(JointTask.state == TaskState.WITHDRAWN, JointTask.commitment != ""),
    )


_USCC = re.compile(r"[0-9A-Z]{15}|[0-9A-Z]{18}")
_Found = Select[CaseResult, Case, Target, JointTask]


@dataclass(frozen=True)
class Version:
    edition: int  # 第 N 版: 1, +1 per correction
    published_on: dt.date
    labels: list[str]
    is_correction: bool
    current: bool


@dataclass
class PublicResult:
    case_code: str
    target_name: str
    uscc: str
    task_code: str
    task_title: str
    lead_department: str
    inspected_on: dt.date | None
    versions: list[Version] = field(default_factory=list)  # newest first
    inspectors: list[tuple[str, str]] = field(default_factory=list)  # (name, 执法证号)
    # the target's last day to object to the current version (004 第二十条), and whether it
    # has not passed yet: the page tells the target its right while it lasts
    objection_until: Deadline | None = None
    objection_open: bool = False
    # an objection being handled (004 第二十条): the day the lead received it and its stage
    # (received: 复查中; error_found: 待更正), nothing of the objector or the content
    handling: tuple[dt.date, ObjectionState] | None = None


@dataclass(frozen=True)
class ResultQuery:
    text: str = ""  # a name fragment or a 统一社会信用代码
    year: int | None = None
    page: int = 1


@dataclass
class ResultPage:
    query: ResultQuery
    results: list[PublicResult]
    has_next: bool
    total: int  # matching published results, or COUNT_LIMIT when more were not counted
    more: bool = False  # more than COUNT_LIMIT match

    @property
    def pages(self) -> int:
        return -(-self.total // PER_PAGE)


def _china_day(at: dt.datetime | None) -> dt.date:
    assert at is not None  # published rows carry their publication time
    return at.astimezone(CHINA_TZ).date()


def _target_filter(text: str) -> ColumnElement[bool]:
    """Exact 统一社会信用代码 (or 15-digit registration number), else a name fragment. A phone's
    input method types full-width (９１３３…, ＡＢＣ): the code is read as NFKC makes it, as
    the importer stores it; a name as typed or so (names keep their full-width （）)."""
    code = nfkc(text).upper()
    if _USCC.fullmatch(code):
        return Target.uscc == code
    half = unicodedata.normalize("NFKC", text)
    return or_(*(Target.name.contains(t, autoescape=True) for t in dict.fromkeys((text, half))))


async def _matching(session: AsyncSession, query: ResultQuery) -> _Found | None:
    """The query's published results with their case, target and task, as a query to page or
    count; None when no target can match.

    A code or a fragment of few targets' names looks its targets up first and their results
    through the case index; the state test is wrapped so SQLite (without statistics) does not
    walk the publication-order index over every published result instead. Without a name, or
    with a fragment most names share, walking that index in publication order fills a page
    soonest."""
    stmt = (
        select(CaseResult, Case, Target, JointTask)
        .join(Case, Case.id == CaseResult.case_id)
        .join(Target, Target.id == Case.target_id)
        .join(JointTask, JointTask.id == Case.task_id)
    )
    if query.year is not None:
        stmt = stmt.where(JointTask.year == query.year)
    text = query.text.strip()[:MAX_QUERY_CHARS]
    if not text:
        return stmt.where(CaseResult.state == ResultState.PUBLISHED)
    ids = list(
        await session.scalars(select(Target.id).where(_target_filter(text)).limit(MAX_TARGETS + 1))
    )
    if not ids:
        return None
    if len(ids) > MAX_TARGETS:
        return stmt.where(CaseResult.state == ResultState.PUBLISHED, _target_filter(text))
    return stmt.where(
        Case.target_id.in_(ids), func.coalesce(CaseResult.state, "") == ResultState.PUBLISHED
    )


async def _page(
    session: AsyncSession, query: ResultQuery
) -> tuple[list[tuple[CaseResult, Case, Target, JointTask]], bool, int, bool]:
    """The page's rows newest publication first, whether a next page exists, how many match
    and whether more than COUNT_LIMIT do (then the total says COUNT_LIMIT); the last page
    tells the total without counting."""
    stmt = await _matching(session, query)
    if stmt is None:
        return [], False, 0, False
    start = (max(query.page, 1) - 1) * PER_PAGE
    shown = [
        (current, case, target, task)
        for current, case, target, task in await session.execute(
            stmt.order_by(CaseResult.published_at.desc(), CaseResult.id.desc())
            .offset(start)
            .limit(PER_PAGE + 1)
        )
    ]
    if shown and len(shown) <= PER_PAGE:  # the last page tells the total
        return shown, False, start + len(shown), False
    counted = stmt.with_only_columns(CaseResult.id).limit(COUNT_LIMIT + 1).subquery()
    matched = await session.scalar(select(func.count()).select_from(counted)) or 0
    more = matched > COUNT_LIMIT
    return shown[:PER_PAGE], len(shown) > PER_PAGE, COUNT_LIMIT if more else matched, more


async def search_results(
    ctx: Ctx, query: ResultQuery, *, publish_inspectors: bool = False
) -> ResultPage:
    """Every matching published result, newest publication first, PER_PAGE a page; each with
    its versions."""
    session = ctx.session
    shown, has_next, total, more = await _page(session, query)
    older = await _older_versions(session, [case.id for _, case, _, _ in shown])
    handling = await _objections_handled(session, [case.id for _, case, _, _ in shown])
    extras = await _categories_by_task(session, {task.id: task for *_, task in shown})
    cal = await ctx.work_calendar()
    today = ctx.clock.today()
    results = []
    for current, case, target, task in shown:
        extra = extras[task.id]
        entry = PublicResult(
            case.code,
            target.name,
            target.uscc,
            task.code,
            task.title,
            task.lead_department.name,
            current.inspected_on or case.inspected_on,
        )
        entry.objection_until = objection_last_day(_china_day(current.published_at), ctx.rules, cal)
        entry.objection_open = today <= entry.objection_until.day
        entry.handling = handling.get(case.id)
        for r in [current, *older[case.id]]:
            entry.versions.append(
                Version(
                    r.edition,
                    _china_day(r.published_at),
                    [label(c, extra) for c in r.codes],
                    r.is_correction,
                    r is current,
                )
            )
        if publish_inspectors:
            entry.inspectors = [
                (m.officer.name, m.officer.cert_no) for m in await active_members(ctx, case)
            ]
        results.append(entry)
    return ResultPage(query, results, has_next, total, more)


async def _categories_by_task(
    session: AsyncSession, tasks: dict[int, JointTask]
) -> dict[int, list[Category]]:
    """Per task, the result categories of its participating departments (as
    core.cases.participating_departments: the lead, accepted invitations, departments with
    items), for a whole page in two queries instead of one per task."""
    members: dict[int, set[int]] = {t.id: {t.lead_department_id} for t in tasks.values()}
    accepted = select(Invitation.task_id, Invitation.department_id).where(
        Invitation.task_id.in_(list(tasks)), Invitation.state == InvitationState.ACCEPTED
    )
    with_items = select(TaskItem.task_id, TaskItem.department_id).where(
        TaskItem.task_id.in_(list(tasks))
    )
    for task_id, department_id in (await session.execute(accepted.union(with_items))).all():
        members[task_id].add(department_id)
    wanted = set().union(*members.values()) if members else set()
    departments = {
        d.id: d for d in await session.scalars(select(Department).where(Department.id.in_(wanted)))
    }
    return {
        task_id: department_categories([departments[i] for i in sorted(ids)])
        for task_id, ids in members.items()
    }


_HANDLED = (ObjectionState.RECEIVED, ObjectionState.ERROR_FOUND)


async def _objections_handled(
    session: AsyncSession, case_ids: Sequence[int]
) -> dict[int, tuple[dt.date, ObjectionState]]:
    """Each case's objection still being re-checked or corrected: (received on, state)."""
    if not case_ids:
        return {}
    rows = await session.execute(
        select(Objection.case_id, Objection.received_on, Objection.state).where(
            Objection.case_id.in_(case_ids), Objection.state.in_(_HANDLED)
        )
    )
    return {case_id: (received, ObjectionState(state)) for case_id, received, state in rows}


async def _older_versions(
    session: AsyncSession, case_ids: Sequence[int]
) -> dict[int, list[CaseResult]]:
    """Superseded published versions (corrected by a later one, 004 第二十条), newest first."""
    older: dict[int, list[CaseResult]] = defaultdict(list)
    if not case_ids:
        return older
    for r in await session.scalars(
        select(CaseResult)
        .where(
            CaseResult.case_id.in_(case_ids),
            CaseResult.state == ResultState.SUPERSEDED,
            CaseResult.published_at.is_not(None),
        )
        .order_by(CaseResult.version.desc())
    ):
        older[r.case_id].append(r)
    return older


# ---------------------------------------------------------------- index


@dataclass
class PublicTask:
    task: JointTask
    draws: list[Draw]


@dataclass
class PublicIndex:
    year: int
    years: list[int]
    tasks: list[PublicTask]
    items: list[tuple[Department, list[Item]]]


async def public_index(ctx: Ctx, year: int) -> PublicIndex:
    """The year's joint tasks (not drafts) with their target draws, and every current item
    list."""
    session = ctx.session
    tasks = list(
        await session.scalars(
            select(JointTask).where(JointTask.year == year, public_tasks()).order_by(JointTask.code)
        )
    )
    draws: dict[int | None, list[Draw]] = defaultdict(list)
    for d in await session.scalars(
        select(Draw)
        .where(
            Draw.task_id.in_([t.id for t in tasks]),
            Draw.kind == PUBLIC_DRAW_KIND,
            Draw.state != "superseded",
        )
        .order_by(Draw.id)
    ):
        draws[d.task_id].append(d)
    years = sorted(
        set(await session.scalars(select(JointTask.year).where(public_tasks()))) | {year},
        reverse=True,
    )
    items: dict[int, list[Item]] = defaultdict(list)
    for item in await session.scalars(
        select(Item).where(Item.current.is_(True)).order_by(Item.department_id, Item.code)
    ):
        items[item.department_id].append(item)
    departments = await session.scalars(
        select(Department).where(Department.id.in_(list(items))).order_by(Department.id)
    )
    return PublicIndex(
        year,
        years,
        [PublicTask(t, draws[t.id]) for t in tasks],
        [(d, items[d.id]) for d in departments],
    )


# ---------------------------------------------------------------- draws

RECOMPUTE_IN_BROWSER_MAX = 100_000  # WebCrypto hashes ~100,000 candidates in a few seconds


# 004 第十六条(二): who is drawn is not told before the inspection window opens
WITHHELD_BASIS = (
    "《玉溪市工业和信息化局市场监管领域部门联合“双随机、一公开”抽查工作细则》第十六条第（二）项："
    "检查活动或检查事项不宜告知的，不得向被检查对象透露相关信息"
)


@dataclass(frozen=True)
class PublicDraw:
    draw: Draw
    task: JointTask | None  # None for a quick draw
    # The task's first inspection day while that is still ahead: until then the seed, the
    # selection and the pool file are not public (WITHHELD_BASIS). The commitment, pool hash,
    # beacon and rule are, so the draw is still fixed and checkable in time.
    withheld_until: dt.date | None


def before_window(task: JointTask, today: dt.date) -> bool:
    """Nobody inspects before the window opens, and who is drawn is not told before it
    (004 第十六条(二))."""
    return today < task.window_start


def public_task_state(task: JointTask, today: dt.date) -> str:
    """A task's state as the public reads it: drawn but before its window nobody inspects yet
    (检查中 would say otherwise)."""
    if task.state == TaskState.INSPECTING and before_window(task, today):
        return "已抽取，待检查"
    return TASK.label(task.state)


async def public_draw(ctx: Ctx, code: str) -> PublicDraw:
    """A target draw by its code; inspector draws are not public."""
    d = await ctx.session.scalar(
        select(Draw).where(Draw.code == code, Draw.kind == PUBLIC_DRAW_KIND)
    )
    if d is None:
        raise NotFound(f"没有公开的抽取记录 {code}")
    task = await ctx.session.get(JointTask, d.task_id) if d.task_id is not None else None
    ahead = task is not None and before_window(task, ctx.clock.today())
    return PublicDraw(d, task, task.window_start if ahead and task is not None else None)


def public_record(pd: PublicDraw) -> dict[str, Any]:
    """The draw record as the public may see it today."""
    data = draw_public_json(pd.draw)
    if pd.withheld_until is None:
        return {**data, "withheld_until": None}
    return {**data, "seed": None, "selection": [], "withheld_until": pd.withheld_until.isoformat()}


async def public_pool(ctx: Ctx, pd: PublicDraw) -> str:
    """The exported pool file, once the inspection window has opened."""
    if pd.withheld_until is not None:
        raise NotFound(
            f"抽取记录 {pd.draw.code} 的抽取范围文件将于{cn_date(pd.withheld_until)}"
            f"（检查开始之日）起公开。依据{WITHHELD_BASIS}。"
        )
    return await pool_csv_text(ctx, pd.draw.id)
