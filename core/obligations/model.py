"""Across stages: an open obligation (what, about what, whose, due when, how many working days
left) and the people a department's reminders name (its liaisons and leaders).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.obligations.rows import OFFICER
from core.workdays import Deadline, WorkCalendar

KIND_LABELS = {
    "draw_confirm": "确认抽取（信标已公布）",
    "invitation_reply": "答复联合抽查邀请",
    "result_entry": "录入检查结果",
    "review": "审核检查结果",
    "objection_recheck": "异议复查",
    "objection_correction": "更正公示结果",
    "objection_reply": "答复异议",
    "publication": "公示检查结果",
    "referral_ack": "签收移送线索",
}


class Obligation(NamedTuple):
    """Immutable, as a named tuple rather than a frozen dataclass: a tick over a county's year
    builds thousands, and a frozen dataclass's __init__ sets each field through
    object.__setattr__ (twice the time of the whole tuple)."""

    key: str  # "case:12", "invitation:3", "review:7:department:2", "objection:4:recheck", "draw:5"
    kind: str  # a KIND_LABELS key
    subject: str  # what it is about, for people: "LJ-2026-001-003 某某公司"
    department_id: int  # whose digest carries it (and whose leaders it escalates to)
    officer_ids: tuple[int, ...]  # who should act (mentioned in the digest)
    due: dt.date
    provisional: bool
    days_left: int  # working days; 0 = due today, negative = overdue
    page: str = ""  # page reference (core.links.page_ref) where the officers act on it

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def what(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def due_label(self) -> str:
        return Deadline(self.due, self.provisional).label()

    def nudge_key(self, today: dt.date) -> str:
        when = "overdue" if self.overdue else f"T-{self.days_left}"
        return f"nudge:{self.key}:{today.isoformat()}:{when}"


@dataclass
class People:
    liaisons: dict[int, list[int]]
    leaders: dict[int, list[int]]

    def staff(self, department_id: int) -> tuple[int, ...]:
        return tuple(self.liaisons.get(department_id, []) + self.leaders.get(department_id, []))


async def department_people(session: AsyncSession) -> People:
    people = People(defaultdict(list), defaultdict(list))
    # plain rows: every officer of the county
    for officer_id, department_id, roles in await session.execute(
        select(OFFICER.id, OFFICER.department_id, OFFICER.roles)
        .where(OFFICER.active.is_(True))
        .order_by(OFFICER.id)
    ):
        if "liaison" in (roles or []):
            people.liaisons[department_id].append(officer_id)
        if "leader" in (roles or []):
            people.leaders[department_id].append(officer_id)
    return people


def make(
    cal: WorkCalendar,
    today: dt.date,
    key: str,
    kind: str,
    subject: str,
    department_id: int,
    officer_ids: Sequence[int],
    due: Deadline,
    page: str = "",
) -> Obligation:
    return Obligation(
        key,
        kind,
        subject,
        department_id,
        tuple(officer_ids),
        due.day,
        due.provisional,
        cal.workdays_between(today, due.day),
        page,
    )
