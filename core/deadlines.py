"""Across stages: recomputing provisional deadlines after new holiday data
(docs/architecture.md §4). A deadline counted before the State Council published a year's
holidays is provisional (weekdays less the holidays fixed by date: 元旦, 劳动节, 国庆节); once
the year is known, every provisional reply, entry and objection deadline is counted again and
each change is audited. Deadlines stored while the provisional count was weekdays only (before
the fixed-date holidays were rest days in it, 2026-11-30) are counted again once on upgrade
(`run_upgrade_steps`, docs/architecture.md §4).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select

from core.changes import Ctx, record
from core.inspection import nothing_entered, window_deadline
from core.models import Case, JointTask, Objection, UpgradeStep
from core.rules import Rules
from core.states import ObjectionState
from core.workdays import FIXED_DATE_HOLIDAYS, Deadline, WorkCalendar

# the provisional count's rest days before 2026-11-30: none, weekdays only (元旦 a working day)
WEEKDAYS_ONLY: frozenset[tuple[int, int]] = frozenset()
# the step migration d4b7e19a3c52 leaves where deadlines may have been stored that way
RECOUNT_WEEKDAYS_ONLY = "recount_weekdays_only_provisional"


def _nth_workday_before(cal: WorkCalendar, day: dt.date, n: int) -> dt.date:
    while n > 0:
        day -= dt.timedelta(days=1)
        if cal.is_workday(day):
            n -= 1
    return day


def _provisional_base(
    cal: WorkCalendar, due: dt.date, n: int, stored_rest: frozenset[tuple[int, int]]
) -> dt.date:
    """The day a provisional deadline `due` was counted n working days from, recovered by
    counting back the way it was counted: the due year and later as a year without data was
    (weekdays less `stored_rest`: 元旦, 劳动节, 国庆节, or none for a deadline stored before
    they were rest days), earlier years as known now. Exact whenever that day was a working
    day."""
    earlier = {y: d for y, d in cal.extra.items() if y < due.year}
    return _nth_workday_before(WorkCalendar(earlier, stored_rest), due, n)


def _reply_base(
    cal: WorkCalendar, task: JointTask, n: int, stored_rest: frozenset[tuple[int, int]]
) -> dt.date:
    """The day invitations went out (JointTask keeps no send date), from the reply deadline."""
    assert task.reply_due_on is not None
    return _provisional_base(cal, task.reply_due_on, n, stored_rest)


async def run_upgrade_steps(ctx: Ctx) -> int:
    """Once after the upgrade that left it (serve's start-up, every CLI command): count every
    provisional deadline again — those counted back to their base as they were stored, on
    weekdays only — with the current rule, audited; returns the changes. The step's row is
    taken first, so of two processes starting together only one runs it. Looked for with a
    read first: a DELETE, even of nothing, would make every CLI command an SQLite writer for
    its whole run, keeping the server's writes waiting while it renders or imports."""
    if (
        await ctx.session.scalar(
            select(UpgradeStep.name).where(UpgradeStep.name == RECOUNT_WEEKDAYS_ONLY)
        )
        is None
    ):
        return 0
    taken = await ctx.session.execute(
        delete(UpgradeStep).where(UpgradeStep.name == RECOUNT_WEEKDAYS_ONLY)
    )
    if cast(CursorResult[Any], taken).rowcount == 0:
        return 0
    changed = await recompute_provisional(ctx, WEEKDAYS_ONLY)
    await record(
        ctx,
        "deadlines.rule_upgraded",
        "calendar",
        {"step": RECOUNT_WEEKDAYS_ONLY, "changes": changed},
    )
    return changed


async def recompute_provisional(
    ctx: Ctx, stored_rest: frozenset[tuple[int, int]] = FIXED_DATE_HOLIDAYS
) -> int:
    """Recompute every provisional deadline with the current calendar; returns changes. Those
    with no base stored are counted back as they were stored: with `stored_rest` as a year
    without data's rest days."""
    cal = await ctx.work_calendar()
    rules, changes = ctx.rules, []
    tasks = await ctx.session.scalars(
        select(JointTask).where(
            JointTask.reply_due_provisional.is_(True), JointTask.reply_due_on.is_not(None)
        )
    )
    for task in tasks:
        new = cal.add_workdays(
            _reply_base(cal, task, rules.invitation_reply_workdays, stored_rest),
            rules.invitation_reply_workdays,
        )
        changes += _apply(f"task:{task.code}", task, "reply_due_on", "reply_due_provisional", new)
    cases = await ctx.session.scalars(
        select(Case).where(Case.result_due_provisional.is_(True), Case.inspected_on.is_not(None))
    )
    for case in cases:
        assert case.inspected_on is not None
        new = cal.add_workdays(case.inspected_on, rules.result_entry_workdays)
        changes += _apply(f"case:{case.code}", case, "result_due_on", "result_due_provisional", new)
    # No inspection date: due from the task window's last day while nothing is entered (延期
    # moves it); an entry in without a visit (注销…, returned since or only a part) keeps the
    # window it was entered against (core.inspection._move_undated_deadlines), so its own
    # deadline is counted again.
    undated = await ctx.session.execute(
        select(Case, JointTask, nothing_entered())
        .join(JointTask, JointTask.id == Case.task_id)
        .where(Case.result_due_provisional.is_(True), Case.inspected_on.is_(None))
    )
    n = rules.result_entry_workdays
    for case, task, follows_window in undated.all():
        if follows_window or case.result_due_on is None:
            new = window_deadline(cal, rules, task.window_last_day)
        else:
            new = cal.add_workdays(_provisional_base(cal, case.result_due_on, n, stored_rest), n)
        changes += _apply(f"case:{case.code}", case, "result_due_on", "result_due_provisional", new)
    open_objections = select(Objection).where(Objection.state != ObjectionState.REPLIED)
    for obj in await ctx.session.scalars(open_objections):
        changes += _recompute_objection(cal, rules, obj)
    if changes:
        await record(ctx, "deadlines.recomputed", "calendar", {"changes": changes})
    return len(changes)


def _apply(
    subject: str, row: Any, day_attr: str, flag_attr: str | None, new: Deadline
) -> list[dict[str, Any]]:
    old_day = getattr(row, day_attr)
    old_flag = getattr(row, flag_attr) if flag_attr else None
    new_flag = new.provisional if flag_attr else None
    if old_day == new.day and old_flag == new_flag:
        return []
    setattr(row, day_attr, new.day)
    if flag_attr:
        setattr(row, flag_attr, new.provisional)
    return [
        {
            "subject": subject,
            "field": day_attr,
            "from": old_day.isoformat(),
            "to": new.day.isoformat(),
            "provisional": new.provisional,
        }
    ]


def _recompute_objection(cal: WorkCalendar, rules: Rules, obj: Objection) -> list[dict[str, Any]]:
    subject = f"objection:{obj.id}"
    changes = []
    if obj.recheck_due_provisional:
        changes += _apply(
            subject,
            obj,
            "recheck_due_on",
            "recheck_due_provisional",
            cal.add_workdays(obj.received_on, rules.recheck_workdays),
        )
    # the reply and an error's correction are both due some working days after the recheck
    # (004 第二十条, core.objections.record_recheck)
    after_recheck = (
        ("reply_due_on", rules.reply_workdays),
        ("correction_due_on", rules.correction_workdays),
    )
    for day_attr, workdays in after_recheck:
        if obj.rechecked_on is not None and getattr(obj, day_attr) is not None:
            new = cal.add_workdays(obj.rechecked_on, workdays)
            changes += _apply(subject, obj, day_attr, None, new)
    return changes
