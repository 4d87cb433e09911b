"""Across stages, the daily summary for leaders: tasks, invitations, cases, timeliness, objections,
dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import referrals
from core.cases import OPEN_FOR_ENTRY, OWN_PART_IN, message, per_group_department
from core.changes import Ctx, Notice, record
from core.errors import NotFound, ValidationFailed
from core.inspection import entry_deadline, entry_deadline_sql, window_deadline
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    CaseResult,
    Department,
    Invitation,
    JointTask,
    Objection,
    Officer,
    OutboxMessage,
    PlanEntry,
)
from core.obligations.cases import overdue_reviews
from core.obligations.due import objection_step
from core.obligations.model import KIND_LABELS
from core.plan import overdue_entries
from core.rules import Rules
from core.states import (
    CASE,
    TASK,
    TASKS_IN_PROGRESS,
    CaseState,
    InvitationState,
    ObjectionState,
    OutboxState,
    ResultState,
)
from core.timeliness import returned_past_deadline
from core.workdays import Deadline, WorkCalendar, cn_date


@dataclass
class TaskSummary:
    code: str
    title: str
    state: str
    accepted: int = 0
    pending: int = 0
    declined: list[tuple[str, str]] = field(default_factory=list)  # (department, reason)
    unanswered: list[str] = field(default_factory=list)  # 逾期未答复: silent, not refused (000 §七)
    cases_by_state: dict[str, int] = field(default_factory=dict)
    on_time: int = 0  # first submission by the deadline
    late: int = 0  # first submission after it (rule 7: counts as not completed)
    overdue: int = 0  # nothing submitted and the deadline has passed
    returned: int = 0  # currently returned to the group
    objections_open: int = 0
    # open objection steps past their deadline, by what is late (异议复查, 更正公示结果, 答复异议)
    objections_overdue: Counter[str] = field(default_factory=Counter)
    reviews_late: int = 0  # results under review past Rules.review_workdays
    # of those, per department whose approval is missing (004 第十九条): name -> cases
    reviews_overdue: Counter[str] = field(default_factory=Counter)

    @property
    def state_label(self) -> str:
        return TASK.label(self.state)

    def case_states(self) -> list[tuple[str, int]]:
        return [
            (CASE.label(s), self.cases_by_state[s]) for s in CaseState if s in self.cases_by_state
        ]


@dataclass
class Summary:
    day: dt.date
    department_name: str  # "全部部门" when not filtered
    tasks: list[TaskSummary]
    dead_letters: int
    referrals_open: int = 0  # 移送 not yet acknowledged by the receiving department
    referrals_late: int = 0  # of those, past their deadline (Rules.referral_ack_workdays)
    # plan rows whose month passed without a task (003 三(七): tasks follow the plan)
    plans_not_started: list[tuple[str, str, int, int]] = field(
        default_factory=list
    )  # code, title, year, month

    @property
    def has_news(self) -> bool:
        """Something in scope for a leader to follow: a task in progress, a referral awaiting
        acknowledgement or a plan row past its month. Without any, the daily tick sends
        nothing (暂无进行中的联合抽查任务 every working day is noise); 汇总 still answers."""
        return bool(self.tasks or self.referrals_open or self.plans_not_started)


async def _invitations(session: AsyncSession, ts: TaskSummary, task: JointTask) -> None:
    for inv in await session.scalars(
        select(Invitation).where(Invitation.task_id == task.id).order_by(Invitation.id)
    ):
        if inv.state == InvitationState.ACCEPTED:
            ts.accepted += 1
        elif inv.state == InvitationState.DECLINED:
            ts.declined.append((inv.department.name, inv.reason))
        elif inv.state == InvitationState.PENDING:
            ts.pending += 1
        elif inv.state == InvitationState.EXPIRED:
            ts.unanswered.append(inv.department.name)


def _china_day(session: AsyncSession, at: ColumnElement[dt.datetime]) -> ColumnElement[dt.date]:
    """The China calendar day of a stored UTC time, in SQL (China keeps +8 all year)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(at + literal_column("interval '8 hours'"))
    return func.date(at, "+8 hours")


async def _cases(
    session: AsyncSession,
    cal: WorkCalendar,
    rules: Rules,
    today: dt.date,
    ts: TaskSummary,
    task: JointTask,
) -> None:
    """Counted in SQL per state and deadline (5,000 cases a task, every leader, daily): a
    result is on time when its first entry's China day is not after the case's deadline
    (core.inspection.entry_deadline: the stored one, an extension and a result without a
    visit accounted for)."""
    first_entry = (
        select(CaseResult.case_id, func.min(CaseResult.entered_at).label("first"))
        .join(Case, Case.id == CaseResult.case_id)
        # a result is entered once every department's part is (000 §九–十), not at the first part
        .where(Case.task_id == task.id, CaseResult.state != ResultState.PART_ENTERED)
        .group_by(CaseResult.case_id)
        .subquery()
    )
    window_due = window_deadline(cal, rules, task.window_last_day).day
    day = _china_day(session, first_entry.c.first)
    in_time = day <= entry_deadline_sql(window_due)
    rows = await session.execute(
        # grouped by plain columns: a bound value in GROUP BY differs from the SELECT's
        select(
            Case.state,
            Case.result_due_on,
            func.count(),
            func.count(first_entry.c.first),
            func.sum(case((in_time, 1), else_=0)),
        )
        .outerjoin(first_entry, first_entry.c.case_id == Case.id)
        .where(Case.task_id == task.id)
        .group_by(Case.state, Case.result_due_on)
    )
    by_state: Counter[str] = Counter()
    for state, due_on, n, entered, on_time in rows:
        due = entry_deadline(cal, rules, task.window_last_day, due_on, False).day
        by_state[state] += n
        if state in OPEN_FOR_ENTRY and today > due:
            ts.overdue += n - entered
        ts.on_time += on_time or 0
        ts.late += entered - (on_time or 0)
    ts.cases_by_state = {s: by_state[s] for s in CaseState if s in by_state}
    ts.returned = ts.cases_by_state.get(CaseState.RETURNED, 0)
    if ts.cases_by_state.get(CaseState.SUBMITTED):
        await _reviews(session, cal, rules, today, ts, task)
    await _objections(session, cal, rules, today, ts, task)


async def _reviews(
    session: AsyncSession,
    cal: WorkCalendar,
    rules: Rules,
    today: dt.date,
    ts: TaskSummary,
    task: JointTask,
) -> None:
    """Results under review past their turnaround, and who has still to approve them (as the
    review nudges and 逾期事项报告 say)."""
    late = await overdue_reviews(session, cal, rules, today, task)
    ts.reviews_late = len(late)
    missing = Counter(d for departments in late.values() for d in departments)
    if missing:
        rows = await session.execute(
            select(Department.id, Department.name).where(Department.id.in_(missing))
        )
        names = {department_id: name for department_id, name in rows}
        ts.reviews_overdue = Counter({names[d]: n for d, n in missing.items()})


async def _objections(
    session: AsyncSession,
    cal: WorkCalendar,
    rules: Rules,
    today: dt.date,
    ts: TaskSummary,
    task: JointTask,
) -> None:
    """Objections not yet replied to, and which of their steps are overdue (as the nudges say)."""
    rows = await session.execute(
        select(
            Objection.state,
            Objection.recheck_due_on,
            Objection.recheck_due_provisional,
            Objection.rechecked_on,
        )
        .join(Case, Case.id == Objection.case_id)
        .where(Case.task_id == task.id, Objection.state != ObjectionState.REPLIED)
    )
    for state, recheck_due_on, provisional, rechecked_on in rows:
        ts.objections_open += 1
        step = objection_step(
            cal, rules, state, Deadline(recheck_due_on, provisional), rechecked_on
        )
        if step is not None and cal.workdays_between(today, step[1].day) < 0:
            ts.objections_overdue[KIND_LABELS[f"objection_{step[0]}"]] += 1


async def _tasks_in_scope(
    session: AsyncSession, department_id: int | None
) -> tuple[str, list[JointTask]]:
    """Tasks in progress, all or those the department leads or takes part in (invited and
    not declined: 000 §七, a department that declined has no part in the task); with the
    scope's name ("全部部门" when not filtered)."""
    query = select(JointTask).where(JointTask.state.in_(TASKS_IN_PROGRESS))
    name = "全部部门"
    if department_id is not None:
        invited = select(Invitation.task_id).where(
            Invitation.department_id == department_id,
            Invitation.state.in_((InvitationState.PENDING, InvitationState.ACCEPTED)),
        )
        query = query.where(
            or_(JointTask.lead_department_id == department_id, JointTask.id.in_(invited))
        )
        department = await session.get(Department, department_id)
        name = department.name if department else name
    return name, list(await session.scalars(query.order_by(JointTask.code)))


@dataclass
class SummaryRun:
    """What the scopes of one run share (a task is in several leaders' scopes): each task's
    figures and chart counts, the dead letters and the plan rows not started."""

    tasks: dict[int, TaskSummary] = field(default_factory=dict)
    charts: dict[int, dict[str, Counter[str]]] = field(default_factory=dict)  # task -> dept ->
    dead_letters: int | None = None
    late_plans: list[PlanEntry] | None = None


async def daily_summary(
    ctx: Ctx,
    today: dt.date,
    department_id: int | None = None,
    *,
    run: SummaryRun | None = None,
) -> Summary:
    """Tasks in progress (where the department leads or is invited, when given)."""
    cal, rules = await ctx.work_calendar(), ctx.rules
    run = SummaryRun() if run is None else run
    name, in_scope = await _tasks_in_scope(ctx.session, department_id)
    for task in in_scope:
        if task.id not in run.tasks:
            run.tasks[task.id] = TaskSummary(task.code, task.title, task.state)
            await _invitations(ctx.session, run.tasks[task.id], task)
            await _cases(ctx.session, cal, rules, today, run.tasks[task.id], task)
    if run.dead_letters is None:
        run.dead_letters = (
            await ctx.session.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.state == OutboxState.DEAD)
            )
            or 0
        )
    if run.late_plans is None:
        run.late_plans = await overdue_entries(ctx, today)
    late_plans = [
        (e.code, e.title, e.year, e.month)
        for e in run.late_plans
        if department_id is None or e.lead_department_id == department_id
    ]
    open_referrals, late_referrals = await referrals.open_counts(ctx, department_id, today)
    return Summary(
        today,
        name,
        [run.tasks[task.id] for task in in_scope],
        run.dead_letters,
        referrals_open=open_referrals,
        referrals_late=late_referrals,
        plans_not_started=late_plans,
    )


def summary_message(summary: Summary, chart: ChartData | None = None) -> OutMessage:
    overdue = chart.overdue_by_department() if chart else []
    day = summary.day
    return message(
        "summary_daily",
        f"双随机联合抽查日报（{cn_date(day)}）",  # the body's heading
        s=summary,
        overdue_by_department=overdue,
    )


@dataclass
class ScopeSummary:
    """What one leader (or the office, unscoped) reads: the text and the picture's figures."""

    summary: Summary
    chart: ChartData

    def message(self) -> OutMessage:
        return summary_message(self.summary, self.chart)


async def scope_summary(
    ctx: Ctx,
    today: dt.date,
    department_id: int | None = None,
    *,
    run: SummaryRun | None = None,
) -> ScopeSummary:
    run = SummaryRun() if run is None else run
    summary = await daily_summary(ctx, today, department_id, run=run)
    return ScopeSummary(summary, await chart_data(ctx, today, department_id, run=run))


async def active_leaders(ctx: Ctx) -> list[Officer]:
    query = select(Officer).where(Officer.active.is_(True)).order_by(Officer.id)
    return [o for o in await ctx.session.scalars(query) if o.has_role("leader")]


async def leader_named(ctx: Ctx, who: str) -> Officer:
    """The leader in post `who` names: a code in any case (sj002), or a name one leader has;
    a refusal lists the leaders in post, the names the operator may use."""
    leaders, key = await active_leaders(ctx), who.strip()
    found = [o for o in leaders if o.code.upper() == key.upper()] or [
        o for o in leaders if o.name == key
    ]
    if len(found) > 1:
        raise ValidationFailed(
            f"有 {len(found)} 位在岗的领导名为“{key}”：{_labels(found)}；请改用人员编号"
        )
    if not found:
        raise NotFound(
            f"没有在岗的领导“{key}”（人员编号或姓名）。在岗的领导：{_labels(leaders) or '无'}"
        )
    return found[0]


def _labels(officers: list[Officer]) -> str:
    return "、".join(f"{o.code} {o.name}（{o.department.name}）" for o in officers)


@dataclass
class DrawnSummaries:
    """A day's summaries, read and drawn but not yet stored or queued: the texts and charts
    per department and which leader gets which."""

    day: dt.date
    leaders: list[tuple[int, int]]  # (leader id, department id), not yet sent today
    texts: dict[int, OutMessage]  # department id -> the summary text
    charts: dict[int, tuple[str, bytes]]  # department id -> (title, PNG)


async def draw_daily_summaries(ctx: Ctx, today: dt.date) -> DrawnSummaries:
    """The reads and the drawing of the daily tick, and no write: on SQLite the scheduler runs
    this before its claim opens the write transaction, so a second of chart drawing holds no
    callback's ack behind SQLite's one writer (docs/architecture.md, scheduler)."""
    leaders = await active_leaders(ctx)
    done = set(
        await ctx.session.scalars(
            select(OutboxMessage.idempotency_key).where(
                OutboxMessage.idempotency_key.in_([_summary_key(o.id, today) for o in leaders])
            )
        )
    )
    due = [(o.id, o.department_id) for o in leaders if _summary_key(o.id, today) not in done]
    scopes: dict[int, ScopeSummary] = {}
    run = SummaryRun()
    for _, department_id in due:
        if department_id not in scopes:
            scopes[department_id] = await scope_summary(ctx, today, department_id, run=run)
    scopes = {key: scoped for key, scoped in scopes.items() if scoped.summary.has_news}
    due = [
        (leader_id, department_id) for leader_id, department_id in due if department_id in scopes
    ]
    texts = {key: scoped.message() for key, scoped in scopes.items()}
    return DrawnSummaries(today, due, texts, await _drawn_charts(scopes))


async def queue_daily_summaries(ctx: Ctx, drawn: DrawnSummaries) -> int:
    """The writes of the daily tick: the charts stored, each leader's text and chart queued
    (idempotent per leader and day). Returns how many leaders were queued."""
    pictures = await _stored_pictures(ctx, drawn.charts)
    day = drawn.day.isoformat()
    notices = []
    for leader_id, department_id in drawn.leaders:
        dest = Destination.officer(leader_id)
        notices.append(Notice(dest, drawn.texts[department_id], _summary_key(leader_id, drawn.day)))
        if (picture := pictures.get(department_id)) is not None:
            notices.append(Notice(dest, picture, f"summary-chart:{leader_id}:{day}"))
    if notices:
        await record(
            ctx,
            "summary.queued",
            f"summary:{day}",
            {"leaders": [leader_id for leader_id, _ in drawn.leaders], "charts": len(pictures)},
            notices,
        )
    return len(drawn.leaders)


async def enqueue_daily_summaries(ctx: Ctx, today: dt.date) -> int:
    """One summary per active leader per day (idempotent): the text and, when a CJK font is
    installed, the chart of the leader's department right after it. Returns how many leaders
    were queued."""
    return await queue_daily_summaries(ctx, await draw_daily_summaries(ctx, today))


def _summary_key(leader_id: int, day: dt.date) -> str:
    return f"summary:{leader_id}:{day.isoformat()}"


async def requested_summary(
    ctx: Ctx, today: dt.date, department_id: int | None = None
) -> list[OutMessage]:
    """What a leader asking for the summary (汇总) gets: the daily tick's text and, right
    after it, its chart (no chart without a CJK font), built and stored the same way."""
    scoped = await scope_summary(ctx, today, department_id)
    pictures = await _stored_pictures(ctx, await _drawn_charts({0: scoped}))
    return [scoped.message(), *pictures.values()]


async def _drawn_charts(scopes: dict[int, ScopeSummary]) -> dict[int, tuple[str, bytes]]:
    """Each scope's chart, drawn in a worker thread (the event loop keeps serving); none
    without a CJK font (core.charts logs the warning once per run), and none for a scope
    without tasks in progress (`ChartData.drawn`)."""
    from core import charts

    shown = {key: s for key, s in scopes.items() if s.chart.drawn}
    pngs = await asyncio.to_thread(charts.render_charts, [s.chart for s in shown.values()])
    return {
        key: (chart_title(scoped.chart), png)
        for key, scoped, png in zip(shown, shown.values(), pngs, strict=True)
        if png is not None
    }


async def _stored_pictures(ctx: Ctx, charts: dict[int, tuple[str, bytes]]) -> dict[int, OutMessage]:
    """Each chart stored by its content hash, as the image message that names it."""
    from core import images

    found: dict[int, OutMessage] = {}
    for key, (title, png) in charts.items():
        image = await images.store(ctx.session, png, now=ctx.clock.now())
        found[key] = OutMessage.picture(title, image)
    return found


def chart_title(data: ChartData) -> str:
    return f"双随机联合抽查日报图表 {cn_date(data.day)} · {data.scope}"


# ---------------------------------------------------------------- per-department picture

BUCKETS = ("未到期", "本周到期", "已逾期", "已提交")  # the order of the stacked bars


@dataclass
class ChartData:
    day: dt.date
    scope: str  # "全部部门" or the leader's department
    departments: dict[str, Counter[str]] = field(default_factory=dict)  # name -> bucket -> n
    tasks_by_state: Counter[str] = field(default_factory=Counter)  # state label -> n

    @property
    def drawn(self) -> bool:
        """A scope without tasks in progress gets no picture: its text says so, and an empty
        chart every day would only be noise."""
        return bool(self.tasks_by_state)

    def overdue_by_department(self) -> list[tuple[str, int]]:
        return [(name, c["已逾期"]) for name, c in self.departments.items() if c["已逾期"]]


def _bucket(state: str, due: dt.date, today: dt.date) -> str:
    if state not in OPEN_FOR_ENTRY:
        return "已提交"
    if due < today:
        return "已逾期"
    week_end = today + dt.timedelta(days=6 - today.weekday())
    return "本周到期" if due <= week_end else "未到期"


async def chart_data(
    ctx: Ctx, today: dt.date, department_id: int | None = None, *, run: SummaryRun | None = None
) -> ChartData:
    """Cases of the live tasks in scope (tasks the department leads or was invited to), counted
    per department that has inspectors in them; each task counted once per run."""
    run = SummaryRun() if run is None else run
    scope, in_scope = await _tasks_in_scope(ctx.session, department_id)
    live = {t.id: t for t in in_scope}
    data = ChartData(
        today, scope, tasks_by_state=Counter(TASK.label(t.state) for t in live.values())
    )
    missing = {tid: t for tid, t in live.items() if tid not in run.charts}
    if missing:
        run.charts.update(await _task_chart_counts(ctx, today, missing))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for tid in live:
        for name, buckets in run.charts[tid].items():
            counts[name].update(buckets)
    # most overdue first (what needs the leader), then by name: the chart's rows, the text's list
    data.departments = dict(sorted(counts.items(), key=lambda kv: (-kv[1]["已逾期"], kv[0])))
    return data


async def _task_chart_counts(
    ctx: Ctx, today: dt.date, tasks: dict[int, JointTask]
) -> dict[int, dict[str, Counter[str]]]:
    """Per task, per department with inspectors in its cases: the cases in each bucket."""
    found: dict[int, dict[str, Counter[str]]] = {tid: defaultdict(Counter) for tid in tasks}
    rows = await ctx.session.execute(
        # a department whose own part is in has done its entry; the overdue bar shows whose
        # part is still missing
        per_group_department(
            select(
                Department.name,
                Case.task_id,
                Case.state,
                Case.result_due_on,
                OWN_PART_IN,
                func.count(func.distinct(Case.id)),
            )
        )
        .where(Case.task_id.in_(list(tasks)))
        .group_by(Department.name, Case.task_id, Case.state, Case.result_due_on, OWN_PART_IN)
    )
    cal = await ctx.work_calendar()
    for name, task_id, state, due_on, entered, n in rows:
        last_day = tasks[task_id].window_last_day
        due = entry_deadline(cal, ctx.rules, last_day, due_on, False).day
        found[task_id][name]["已提交" if entered else _bucket(state, due, today)] += n
    # a returned part is bucketed by its re-entry window, not the passed result deadline
    # (core.timeliness)
    last_days = {tid: t.window_last_day for tid, t in tasks.items()}
    for r in await returned_past_deadline(ctx.session, cal, ctx.rules, last_days, today):
        if r.window.day >= today:
            found[r.task_id][r.department]["已逾期"] -= 1
            found[r.task_id][r.department][_bucket(CaseState.RETURNED, r.window.day, today)] += 1
    return found
