"""Consultation stage tables: the joint task, the year's plan, the items a task checks and
the invitations to participating departments (000 §三–五)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, StateType
from core.models.county import Department
from core.states import InvitationState, TaskState


class JointTask(Base):
    __tablename__ = "joint_task"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    lead_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    # an extension the lead recorded with a reason (000 §五.3): inspections may run until then
    window_extended_to: Mapped[dt.date | None] = mapped_column(Date)
    window_extension_reason: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)  # kinds, industries, regions
    rule: Mapped[dict[str, Any]] = mapped_column(
        default=dict
    )  # sampling rule, see core.draws.algorithm
    state: Mapped[TaskState] = mapped_column(StateType(TaskState), default=TaskState.DRAFT)
    seed_hex: Mapped[str] = mapped_column(String(64), default="")  # secret until lock
    commitment: Mapped[str] = mapped_column(String(64), default="")
    reply_due_on: Mapped[dt.date | None] = mapped_column(Date)
    reply_due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    created_at: Mapped[dt.datetime]
    # why a task outside the adopted annual plan was added (003 三(七): 不得随意增加)
    unplanned_reason: Mapped[str] = mapped_column(Text, default="")
    lead_department: Mapped[Department] = relationship(lazy="joined")

    @hybrid_property
    def window_last_day(self) -> dt.date:
        """The window's last day, extended or not: what is shown, and what an uninspected
        case's result deadline counts from (000 §五.3, §十)."""
        return self.window_extended_to or self.window_end

    @window_last_day.inplace.expression
    @classmethod
    def _window_last_day(cls) -> ColumnElement[dt.date]:
        return func.coalesce(cls.window_extended_to, cls.window_end)


class PlanEntry(Base):
    """A row of the year's joint plan (年度抽查计划; 003 三(七), 004 第七条)."""

    __tablename__ = "plan_entry"
    __table_args__ = (UniqueConstraint("year", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    code: Mapped[str] = mapped_column(String(40))  # 计划编号, used by 发起
    title: Mapped[str] = mapped_column(String(200))
    lead_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    participant_ids: Mapped[list[Any]] = mapped_column(default=list)  # department ids
    item_ids: Mapped[list[Any]] = mapped_column(default=list)  # item versions current at import
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)  # kinds, industries, regions
    ratio: Mapped[str] = mapped_column(String(16), default="")  # decimal text, or "" with count
    count: Mapped[int | None] = mapped_column(Integer)
    month: Mapped[int] = mapped_column(Integer)  # 1-12
    task_id: Mapped[int | None] = mapped_column(ForeignKey("joint_task.id"))  # once started


class TaskItem(Base):
    """An item checked in a task, with the department that checks it (one visit, many items)."""

    __tablename__ = "task_item"
    __table_args__ = (UniqueConstraint("task_id", "item_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("joint_task.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))


class Invitation(Base):
    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("task_id", "department_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("joint_task.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    state: Mapped[InvitationState] = mapped_column(
        StateType(InvitationState), default=InvitationState.PENDING
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    responded_at: Mapped[dt.datetime | None]
    department: Mapped[Department] = relationship(lazy="joined")
