"""Declared states of every stateful entity and the moves allowed between them.

One `StrEnum` per entity (the stored values are the enum values) and one `Machine` per entity.
Every state change goes through its machine: `start` for a new row, `move` for a loaded row,
`edge` for a compare-and-set UPDATE whose WHERE clause pins the source state. A move missing
from the table is an `InvalidTransition` with a Chinese message. The README shows each table;
tests/test_states.py keeps the README and these tables identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from core.errors import InvalidTransition


class TaskState(StrEnum):
    DRAFT = "draft"
    CONSULTING = "consulting"
    READY = "ready"
    LOCKED = "locked"
    INSPECTING = "inspecting"
    REVIEWING = "reviewing"
    PUBLISHED = "published"
    CLOSED = "closed"  # filed (立卷归档): nothing changes any more
    WITHDRAWN = "withdrawn"  # 撤销: created by mistake, withdrawn before its draw was frozen


class InvitationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the task was withdrawn (撤销) before the department answered


class ReplacementState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class DrawState(StrEnum):
    FROZEN = "frozen"
    LOCKED = "locked"
    SUPERSEDED = "superseded"


class CaseState(StrEnum):
    ASSIGNED = "assigned"
    NOTIFIED = "notified"
    INSPECTED = "inspected"
    # some departments entered their part, others not yet (谁检查、谁录入, 000 §九–十)
    PART_ENTERED = "part_entered"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    RETURNED = "returned"
    PUBLISHED = "published"
    OBJECTED = "objected"
    CORRECTED = "corrected"


class ResultState(StrEnum):
    PART_ENTERED = "part_entered"  # a version entered while other departments' parts are missing
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"


class PartState(StrEnum):
    """One department's part of a case result (CasePart)."""

    ENTERED = "entered"
    RETURNED = "returned"  # a reviewer sent it back: the department enters it again


class ObjectionState(StrEnum):
    RECEIVED = "received"
    UPHELD = "upheld"  # the re-check found no error
    ERROR_FOUND = "error_found"  # the re-check found an error: a correction is due
    CORRECTED = "corrected"
    REPLIED = "replied"


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class InboxState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


# tasks the daily summary and the nudges look at
TASKS_IN_PROGRESS = (
    TaskState.CONSULTING,
    TaskState.READY,
    TaskState.LOCKED,
    TaskState.INSPECTING,
    TaskState.REVIEWING,
    TaskState.PUBLISHED,
)

S = TypeVar("S", bound=StrEnum)

# Who may make a move. The permission checks live in the services; these names are what the
# README tables show, so a reader sees the rule beside the move.
LEAD = "lead liaison, leader"
LEAD_ADMIN = "lead liaison, leader, admin"
INVITED = "invited liaison, leader"
GROUP = "group member"
REVIEWERS = "lead or participant liaison, leader"
QUICK_START = "liaison, leader, admin"
QUICK_OWNER = "an officer other than its starter, or with a public beacon its starter or an admin"
SCHEDULER = "scheduler"
SYSTEM = "system"
SENDER = "sender"
WORKER = "inbox worker"
CALLBACK = "platform callback"
ADMIN = "admin"


class Stateful(Protocol):
    state: Any


@dataclass(frozen=True)
class Move(Generic[S]):
    src: S | None  # None: the row is created in `dst`
    dst: S
    who: str


class Machine(Generic[S]):
    """The states of one entity, their Chinese labels and the allowed moves."""

    def __init__(
        self,
        entity: str,
        noun: str,
        labels: Mapping[S, str],
        moves: Iterable[tuple[S | None, S, str]],
    ) -> None:
        self.entity = entity  # the README heading
        self.noun = noun  # Chinese name of the entity in messages
        self.labels = dict(labels)
        self._labels: dict[str, str] = {str(s): text for s, text in labels.items()}
        self.moves = [Move(src, dst, who) for src, dst, who in moves]
        self._allowed = {(m.src, m.dst) for m in self.moves}
        assert len(self._allowed) == len(self.moves), f"{entity}: a move is listed twice"

    @property
    def states(self) -> list[S]:
        return list(self.labels)

    def label(self, state: str) -> str:
        return self._labels.get(state, state)

    def allows(self, src: str | None, dst: S) -> bool:
        return (src, dst) in self._allowed

    def refusal(self, src: str, what: str, subject: str = "") -> InvalidTransition:
        who = f"{self.noun} {subject} " if subject else self.noun
        return InvalidTransition(f"{who}当前状态为“{self.label(src)}”，不能{what}")

    def check(self, row: Stateful, dst: S, *, what: str = "", subject: str = "") -> None:
        """Raise the Chinese refusal unless the row may move to `dst` (nothing is changed)."""
        if not self.allows(row.state, dst):
            raise self.refusal(row.state, what or f"改为“{self.label(dst)}”", subject)

    def move(self, row: Stateful, dst: S, *, what: str = "", subject: str = "") -> None:
        self.check(row, dst, what=what, subject=subject)
        row.state = dst

    def start(self, dst: S) -> S:
        """The state a new row is created in."""
        if not self.allows(None, dst):
            raise InvalidTransition(f"{self.noun}不能以“{self.label(dst)}”状态新建")
        return dst

    def edge(self, src: S, dst: S) -> S:
        """For an UPDATE … WHERE state = src: the table must allow the move; returns `dst`."""
        if not self.allows(src, dst):
            raise self.refusal(src, f"改为“{self.label(dst)}”")
        return dst


def _task() -> Machine[TaskState]:
    s = TaskState
    return Machine(
        "task",
        "任务",
        {
            s.DRAFT: "草稿",
            s.CONSULTING: "征询中",
            s.READY: "待抽取",
            s.LOCKED: "已锁定",
            s.INSPECTING: "检查中",
            s.REVIEWING: "审核中",
            s.PUBLISHED: "已公示",
            s.CLOSED: "已归档",
            s.WITHDRAWN: "已撤销",
        },
        [
            (None, s.DRAFT, LEAD_ADMIN),
            (s.DRAFT, s.CONSULTING, LEAD_ADMIN),
            (s.DRAFT, s.READY, LEAD_ADMIN),  # a single-department task has nobody to consult
            (s.CONSULTING, s.READY, SYSTEM),  # the last answer, or the reply deadline
            (s.READY, s.LOCKED, LEAD),
            (s.LOCKED, s.INSPECTING, LEAD),
            (s.INSPECTING, s.REVIEWING, SYSTEM),  # the stage follows the cases
            (s.INSPECTING, s.PUBLISHED, SYSTEM),
            (s.REVIEWING, s.PUBLISHED, SYSTEM),
            (s.PUBLISHED, s.CLOSED, LEAD_ADMIN),  # 立卷归档 (001 第二十条, 004 第二十五条)
            # 撤销 a task created by mistake, before its draw is frozen (consultation.withdrawal)
            (s.DRAFT, s.WITHDRAWN, LEAD_ADMIN),
            (s.CONSULTING, s.WITHDRAWN, LEAD_ADMIN),
            (s.READY, s.WITHDRAWN, LEAD_ADMIN),
        ],
    )


def _invitation() -> Machine[InvitationState]:
    s = InvitationState
    return Machine(
        "invitation",
        "邀请",
        {
            s.PENDING: "待答复",
            s.ACCEPTED: "已接受",
            s.DECLINED: "已拒绝",
            s.EXPIRED: "逾期未答复",
            s.WITHDRAWN: "任务已撤销",
        },
        [
            (None, s.PENDING, LEAD_ADMIN),
            (s.PENDING, s.ACCEPTED, INVITED),
            (s.PENDING, s.DECLINED, INVITED),
            (s.PENDING, s.EXPIRED, SCHEDULER),
            (s.PENDING, s.WITHDRAWN, LEAD_ADMIN),  # the task was withdrawn
        ],
    )


def _draw() -> Machine[DrawState]:
    s = DrawState
    return Machine(
        "draw",
        "抽取",
        {s.FROZEN: "已冻结", s.LOCKED: "已锁定", s.SUPERSEDED: "已作废"},
        [
            (None, s.FROZEN, f"{LEAD} (task); {QUICK_START} (quick draw)"),
            (None, s.LOCKED, LEAD),  # the inspector draw is computed and locked at once
            (s.FROZEN, s.LOCKED, f"{LEAD} (task); {QUICK_OWNER} (quick draw)"),
            (s.FROZEN, s.SUPERSEDED, LEAD),  # a new freeze replaces it
        ],
    )


def _case() -> Machine[CaseState]:
    s = CaseState
    return Machine(
        "case",
        "案件",
        {
            s.ASSIGNED: "待检查",
            s.NOTIFIED: "已通知",
            s.INSPECTED: "已检查",
            s.PART_ENTERED: "部分录入",
            s.SUBMITTED: "待审核",
            s.APPROVED: "审核通过",
            s.RETURNED: "审核退回",
            s.PUBLISHED: "已公示",
            s.OBJECTED: "异议处理中",
            s.CORRECTED: "已更正",
        },
        [
            (None, s.ASSIGNED, LEAD),
            (s.ASSIGNED, s.NOTIFIED, GROUP),
            (s.ASSIGNED, s.INSPECTED, GROUP),
            (s.NOTIFIED, s.INSPECTED, GROUP),
            (s.INSPECTED, s.INSPECTED, GROUP),  # the inspection date is corrected
            # a department enters its part while another department's part is still missing
            (s.ASSIGNED, s.PART_ENTERED, GROUP),
            (s.NOTIFIED, s.PART_ENTERED, GROUP),
            (s.INSPECTED, s.PART_ENTERED, GROUP),
            (s.RETURNED, s.PART_ENTERED, GROUP),
            (s.PART_ENTERED, s.PART_ENTERED, GROUP),
            # the last missing part is entered (or the only department's): review starts
            (s.ASSIGNED, s.SUBMITTED, GROUP),
            (s.NOTIFIED, s.SUBMITTED, GROUP),
            (s.INSPECTED, s.SUBMITTED, GROUP),
            (s.PART_ENTERED, s.SUBMITTED, GROUP),
            (s.RETURNED, s.SUBMITTED, GROUP),
            (s.SUBMITTED, s.APPROVED, REVIEWERS),
            (s.SUBMITTED, s.RETURNED, REVIEWERS),
            (s.APPROVED, s.PUBLISHED, f"{LEAD}; {SYSTEM} (rules.auto_publish)"),
            (s.PUBLISHED, s.OBJECTED, LEAD),
            (s.CORRECTED, s.OBJECTED, LEAD),
            (s.OBJECTED, s.PUBLISHED, LEAD),  # the re-check upheld the published result
            # a correction; or the lead's re-check upheld a result that was itself a correction
            (s.OBJECTED, s.CORRECTED, REVIEWERS),
            (s.PUBLISHED, s.CORRECTED, REVIEWERS),
            (s.CORRECTED, s.CORRECTED, REVIEWERS),
        ],
    )


def _result() -> Machine[ResultState]:
    s = ResultState
    return Machine(
        "result",
        "结果",
        {
            s.PART_ENTERED: "部分录入",
            s.SUBMITTED: "待审核",
            s.RETURNED: "已退回",
            s.APPROVED: "审核通过",
            s.PUBLISHED: "已公示",
            s.SUPERSEDED: "已被更正",
        },
        [
            (None, s.PART_ENTERED, GROUP),  # kept as entered: the next part makes a new version
            (None, s.SUBMITTED, GROUP),
            (None, s.PUBLISHED, REVIEWERS),  # a correction is published as it is entered
            (s.SUBMITTED, s.RETURNED, REVIEWERS),
            (s.SUBMITTED, s.APPROVED, REVIEWERS),
            (s.APPROVED, s.PUBLISHED, f"{LEAD}; {SYSTEM} (rules.auto_publish)"),
            (s.PUBLISHED, s.SUPERSEDED, REVIEWERS),
        ],
    )


def _part() -> Machine[PartState]:
    s = PartState
    return Machine(
        "case part",
        "部门检查结果",
        {s.ENTERED: "已录入", s.RETURNED: "已退回"},
        [
            (None, s.ENTERED, GROUP),  # by an inspector of the department (000 §十)
            (s.ENTERED, s.ENTERED, GROUP),  # entered again while the case is open for entry
            (s.ENTERED, s.RETURNED, REVIEWERS),  # a return naming the department, or all parts
            (s.RETURNED, s.ENTERED, GROUP),
        ],
    )


def _objection() -> Machine[ObjectionState]:
    s = ObjectionState
    return Machine(
        "objection",
        "异议",
        {
            s.RECEIVED: "待复查",
            s.UPHELD: "维持原结果",
            s.ERROR_FOUND: "待更正",
            s.CORRECTED: "已更正",
            s.REPLIED: "已答复",
        },
        [
            (None, s.RECEIVED, LEAD),
            (s.RECEIVED, s.UPHELD, LEAD),
            (s.RECEIVED, s.ERROR_FOUND, LEAD),
            (s.ERROR_FOUND, s.CORRECTED, REVIEWERS),
            (s.UPHELD, s.REPLIED, LEAD),
            (s.CORRECTED, s.REPLIED, LEAD),
        ],
    )


def _replacement() -> Machine[ReplacementState]:
    s = ReplacementState
    return Machine(
        "replacement request",
        "更换或回避申请",
        {s.PENDING: "待批准", s.APPROVED: "已批准", s.REFUSED: "不批准"},
        [
            # 回避: the officer, or a liaison or leader of their department or of the lead
            (None, s.PENDING, f"{GROUP}, liaison, leader"),
            (s.PENDING, s.APPROVED, "department leader, admin"),
            (s.PENDING, s.REFUSED, "department leader, admin"),
        ],
    )


def _outbox() -> Machine[OutboxState]:
    s = OutboxState
    return Machine(
        "outbox row",
        "消息",
        {s.PENDING: "待发送", s.SENT: "已发送", s.DEAD: "死信"},
        [
            (None, s.PENDING, SYSTEM),
            (s.PENDING, s.SENT, SENDER),
            (s.PENDING, s.DEAD, SENDER),
            (s.DEAD, s.PENDING, ADMIN),
        ],
    )


def _inbox() -> Machine[InboxState]:
    s = InboxState
    return Machine(
        "inbox row",
        "回调事件",
        {s.PENDING: "待处理", s.DONE: "已处理", s.DEAD: "死信"},
        [
            (None, s.PENDING, CALLBACK),
            (s.PENDING, s.DONE, WORKER),
            (s.PENDING, s.DEAD, WORKER),
        ],
    )


TASK, INVITATION, DRAW, CASE = _task(), _invitation(), _draw(), _case()
RESULT, OBJECTION, OUTBOX, INBOX = _result(), _objection(), _outbox(), _inbox()
REPLACEMENT, PART = _replacement(), _part()
MACHINES: tuple[Machine[Any], ...] = (
    TASK,
    INVITATION,
    DRAW,
    CASE,
    PART,
    RESULT,
    OBJECTION,
    REPLACEMENT,
    OUTBOX,
    INBOX,
)
