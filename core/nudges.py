"""Across stages: the daily nudges — each department's digest of what is due or overdue
(core.obligations), the escalation of overdue items to its leaders, and each officer's own items
with their page links (docs/architecture.md §4).

Nudges go out at T-3, T-1 and T-0 working days and on every working day overdue; overdue ones
also go to the department's leaders (escalation). Each department gets at most one digest per
run, and an obligation is nudged at most once per day: the obligation keys a digest carried are
kept in its audit event, so a second run (another process, a restart) skips them.

The same tick tells a task's lead liaisons, and the groups concerned, once when its inspection
window ended with cases never inspected (000 §五.3); the window's end is kept in that event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import message
from core.changes import Ctx, Notice, record
from core.messages import Destination, OutMessage
from core.models import AuditEvent, Case, GroupMember, JointTask, Target
from core.obligations.due import due_items
from core.obligations.model import Obligation, People, department_people
from core.states import CaseState, TaskState
from core.workdays import PROVISIONAL_COUNT, WorkCalendar


def _digest_subject(department_id: int, today: dt.date) -> str:
    return f"nudge:{today.isoformat()}:department:{department_id}"


async def _nudged_today(
    session: AsyncSession, today: dt.date, department_ids: Sequence[int]
) -> set[str]:
    """Obligation nudge keys already sent today (kept in the digests' audit events)."""
    rows = await session.scalars(
        select(AuditEvent.data).where(
            AuditEvent.action == "nudge.digest",
            AuditEvent.subject.in_([_digest_subject(d, today) for d in department_ids]),
        )
    )
    return {k for data in rows for k in data["keys"]}


def _digest_key(prefix: str, today: dt.date, keys: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"{prefix}:{today.isoformat()}:{digest}"


@dataclass(frozen=True)
class Digest:
    """One department's digest of the day, ready to record: the obligations' nudge keys (kept
    in its audit event), how many are overdue, and its messages."""

    department_id: int
    keys: list[str]
    overdue: int
    notices: list[Notice]


@dataclass(frozen=True)
class EndedWindow:
    """A task whose inspection window ended with cases never inspected, ready to record: the
    case codes (kept in its audit event) and its messages."""

    task_code: str
    window_end: dt.date
    cases: list[str]
    notices: list[Notice]


@dataclass(frozen=True)
class PlannedNudges:
    day: dt.date
    digests: list[Digest]
    windows: list[EndedWindow] = field(default_factory=list)


async def plan_nudges(ctx: Ctx, today: dt.date) -> PlannedNudges:
    """The reads of the nudge tick and its messages, and no write: the scheduler runs this
    before its claim opens the write transaction, so the tick's queries hold no callback's
    ack behind SQLite's one writer (as the summaries do)."""
    cal = await ctx.work_calendar()
    if not cal.is_workday(today):
        return PlannedNudges(today, [])  # nudges and "every working day overdue" count working days
    schedule = set(ctx.rules.nudge_before_workdays)
    horizon = cal.add_workdays(today, max(schedule, default=0)).day
    people = await department_people(ctx.session)
    # each obligation's nudge key once: a tick over a county's year carries thousands
    due = {
        o.nudge_key(today): o
        for o in await due_items(ctx, today, horizon=horizon, people=people)
        if o.overdue or o.days_left in schedule
    }
    sent = await _nudged_today(ctx.session, today, sorted({o.department_id for o in due.values()}))
    by_department: dict[int, dict[str, Obligation]] = defaultdict(dict)
    for key, o in due.items():
        if key not in sent:
            by_department[o.department_id][key] = o
    return PlannedNudges(
        today,
        [
            Digest(
                department_id,
                list(items),
                sum(o.overdue for o in items.values()),
                _digest_notices(department_id, items, people, today, _overdue_note(cal, today)),
            )
            for department_id, items in sorted(by_department.items())
        ],
        await ended_windows(ctx, today, people),
    )


async def queue_nudges(ctx: Ctx, planned: PlannedNudges) -> int:
    """The writes of the nudge tick: each digest's audit event and messages (idempotent per
    message key). Returns how many messages were queued."""
    day = planned.day.isoformat()
    for digest in planned.digests:
        await record(
            ctx,
            "nudge.digest",
            _digest_subject(digest.department_id, planned.day),
            {"day": day, "keys": digest.keys, "overdue": digest.overdue},
            digest.notices,
        )
    for window in planned.windows:
        await record(
            ctx,
            WINDOW_ENDED,
            f"task:{window.task_code}",
            {"window_end": window.window_end.isoformat(), "uninspected": window.cases},
            window.notices,
        )
    told = [*(d.notices for d in planned.digests), *(w.notices for w in planned.windows)]
    return sum(len(notices) for notices in told)


async def enqueue_nudges(ctx: Ctx, today: dt.date) -> int:
    """Queue today's digests; returns how many messages were queued (0 on a second run)."""
    return await queue_nudges(ctx, await plan_nudges(ctx, today))


SHOWN = 30  # lines a nudge lists: about what a chat message shows (WeCom app markdown 2 KB)


def _overdue_note(cal: WorkCalendar, today: dt.date) -> str:
    """Overdue working days counted into a year without holiday data take its lunar holidays
    (春节) for working days: a list that reports them so says it."""
    if cal.knows(today.year):
        return ""
    return f"注：{today.year} 年节假日安排尚未导入，逾期天数{PROVISIONAL_COUNT}，导入后重算。"


def _listing(
    template: str, title: str, items: list[Obligation], today: dt.date, note: str
) -> OutMessage:
    """The most urgent items (overdue first) and how many more there are, rather than a list
    the platform would cut off mid-line; each item's key is nudged either way. `note`: the
    overdue count's (_overdue_note), shown when an item is overdue."""
    shown = items[:SHOWN]
    return message(
        template,
        title,
        items=shown,
        more=len(items) - SHOWN,
        today=today,
        note=note if any(o.overdue for o in shown) else "",
    )


def _digest_notices(
    department_id: int, keyed: dict[str, Obligation], people: People, today: dt.date, note: str
) -> list[Notice]:
    """`keyed`: the department's obligations by nudge key, soonest first."""
    items = list(keyed.values())
    mentions = sorted({i for o in items for i in o.officer_ids})
    msg = _listing("nudge_digest", "待办提醒", items, today, note).model_copy(
        update={"mention_officer_ids": mentions}
    )
    notices = [
        Notice(
            Destination.department(department_id),
            msg,
            _digest_key(f"nudge:department:{department_id}", today, keyed),
        )
    ]
    overdue = [o for o in items if o.overdue]
    if overdue:
        escalation = _listing("nudge_escalation", "逾期事项", overdue, today, note)
        notices += [
            Notice(
                Destination.officer(leader),
                escalation,
                _digest_key(f"nudge:leader:{leader}", today, keyed),
            )
            for leader in people.leaders.get(department_id, [])
        ]
    return notices + _personal_notices(keyed, today, note)


def _personal_notices(keyed: dict[str, Obligation], today: dt.date, note: str) -> list[Notice]:
    """Each officer who acts on a page gets their own items privately, with the signed links
    a group digest must not carry."""
    mine: dict[int, dict[str, Obligation]] = defaultdict(dict)
    for key, o in keyed.items():
        for officer_id in o.officer_ids if o.page else ():
            mine[officer_id][key] = o
    return [
        Notice(
            Destination.officer(officer_id),
            _listing("nudge_personal", "我的待办", list(own.values()), today, note),
            _digest_key(f"nudge:officer:{officer_id}", today, own),
        )
        for officer_id, own in sorted(mine.items())
    ]


# ---------------------------------------------------------------- the inspection window's end

WINDOW_ENDED = "task.window_ended"
_NOT_INSPECTED = (CaseState.ASSIGNED, CaseState.NOTIFIED)


class Unvisited(NamedTuple):
    """A case its window ended on without an inspection, and its group's active members."""

    code: str
    target: str
    members: list[int]


async def ended_windows(ctx: Ctx, today: dt.date, people: People) -> list[EndedWindow]:
    """Tasks whose inspection window (or the lead's extension, 000 §五.3) ended before today
    with cases never inspected, not yet told for that end: else the first word of them was
    the result deadline's nudge, weeks later."""
    rows = (
        await ctx.session.execute(
            select(
                JointTask.code,
                JointTask.title,
                JointTask.lead_department_id,
                JointTask.window_last_day,
                Case.id,
                Case.code,
                Target.name,
            )
            .join(Case, Case.task_id == JointTask.id)
            .join(Target, Target.id == Case.target_id)
            .where(
                JointTask.state.in_((TaskState.LOCKED, TaskState.INSPECTING)),
                JointTask.window_last_day < today,
                Case.state.in_(_NOT_INSPECTED),
            )
            .order_by(JointTask.id, Case.code)
        )
    ).all()
    told = await _told_ends(ctx.session, {f"task:{row[0]}" for row in rows})
    members = await _members(ctx.session, [row[4] for row in rows])
    by_task: dict[tuple[str, str, int, dt.date], list[Unvisited]] = defaultdict(list)
    for code, title, lead, end, case_id, case_code, target in rows:
        if (f"task:{code}", end.isoformat()) not in told:
            by_task[code, title, lead, end].append(Unvisited(case_code, target, members[case_id]))
    return [
        EndedWindow(
            code,
            end,
            [case.code for case in cases],
            _window_notices(code, title, end, cases, people.liaisons.get(lead, [])),
        )
        for (code, title, lead, end), cases in by_task.items()
    ]


async def _told_ends(session: AsyncSession, subjects: set[str]) -> set[tuple[str, str]]:
    """(task subject, window end) pairs already told."""
    rows = await session.execute(
        select(AuditEvent.subject, AuditEvent.data["window_end"].as_string()).where(
            AuditEvent.action == WINDOW_ENDED, AuditEvent.subject.in_(subjects)
        )
    )
    return {(subject, end) for subject, end in rows}


async def _members(session: AsyncSession, case_ids: list[int]) -> dict[int, list[int]]:
    """Each case's active group members (officer ids)."""
    members: dict[int, list[int]] = defaultdict(list)
    for case_id, officer_id in await session.execute(
        select(GroupMember.case_id, GroupMember.officer_id)
        .where(GroupMember.case_id.in_(case_ids), GroupMember.active.is_(True))
        .order_by(GroupMember.officer_id)
    ):
        members[case_id].append(officer_id)
    return members


def _window_notices(
    code: str, title: str, end: dt.date, cases: list[Unvisited], liaisons: list[int]
) -> list[Notice]:
    """The lead's liaisons hear every case not inspected; each group member, their own."""
    own: dict[int, list[Unvisited]] = defaultdict(list)
    for case in cases:
        for officer_id in case.members:
            own[officer_id].append(case)
    own.update({liaison: cases for liaison in liaisons})

    def listing(of: list[Unvisited]) -> OutMessage:
        return message(
            "window_ended",
            f"{code} 检查时间已结束，{len(of)} 户未检查",
            task_code=code,
            task_title=title,
            end=end,
            total=len(of),
            cases=of[:SHOWN],
            more=len(of) - SHOWN,
        )

    return [
        Notice(
            Destination.officer(officer_id),
            listing(of),
            f"window-ended:{code}:{end.isoformat()}:officer:{officer_id}",
        )
        for officer_id, of in sorted(own.items())
    ]
