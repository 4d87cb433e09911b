"""Inspection stage tables: cases, their groups, recusals and replacements, result versions
with attachments, item results, reviews and each department's part (000 §六–十)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, StateType
from core.models.county import Department, Officer, Target
from core.states import CaseState, PartState, ReplacementState, ResultState


class Case(Base):
    __tablename__ = "inspection_case"
    __table_args__ = (UniqueConstraint("task_id", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(56), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("joint_task.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("target.id"), index=True)
    state: Mapped[CaseState] = mapped_column(StateType(CaseState), default=CaseState.ASSIGNED)
    inspected_on: Mapped[dt.date | None] = mapped_column(Date)
    result_due_on: Mapped[dt.date | None] = mapped_column(Date, index=True)  # the nudge tick
    result_due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    target: Mapped[Target] = relationship(lazy="joined")


class GroupMember(Base):
    __tablename__ = "group_member"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False after recusal/replacement
    officer: Mapped[Officer] = relationship(lazy="joined")


# the kinds of a group's change, of Recusal and ReplacementRequest alike, in the regulations' words
CHANGE_LABELS = {"recusal": "回避", "replacement": "更换"}


class Recusal(Base):
    """A recusal (redraw) or an approved replacement (no lottery)."""

    __tablename__ = "recusal"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    kind: Mapped[str] = mapped_column(String(16))  # recusal | replacement
    reason: Mapped[str] = mapped_column(Text)
    replacement_officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    created_at: Mapped[dt.datetime]


class ReplacementRequest(Base):
    """更换 or 回避 asked for; the department leader approves — naming the new inspector for a
    更换, the next in draw order taking over a 回避 — or refuses with a reason (001 第十四条:
    经本部门相关负责人同意, 004 第十三条)."""

    __tablename__ = "replacement_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))  # to be replaced
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    kind: Mapped[str] = mapped_column(String(16), default="replacement")  # replacement | recusal
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    state: Mapped[ReplacementState] = mapped_column(
        StateType(ReplacementState), default=ReplacementState.PENDING
    )
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]
    department: Mapped[Department] = relationship(lazy="joined")  # whose leader decides


class CaseResult(Base):
    """One version of a case's result. Published versions are never edited; corrections add one."""

    __tablename__ = "case_result"
    __table_args__ = (
        UniqueConstraint("case_id", "version"),
        # the public results page lists the newest publications first
        Index("ix_case_result_published", "state", "published_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # every entry: each part, each re-entry
    # what people are told, "第 N 版": 1 for the result until it is published, +1 for each
    # correction of the published result (004 第二十条), not for the parts that made it up
    edition: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    state: Mapped[ResultState] = mapped_column(
        StateType(ResultState), default=ResultState.SUBMITTED
    )
    codes: Mapped[list[Any]] = mapped_column(default=list)  # result category codes
    methods: Mapped[list[Any]] = mapped_column(default=list)
    followups: Mapped[list[Any]] = mapped_column(default=list)
    followup_done: Mapped[bool] = mapped_column(Boolean, default=False)
    followup_done_on: Mapped[dt.date | None] = mapped_column(Date)
    inspected_on: Mapped[dt.date | None] = mapped_column(Date)
    remarks: Mapped[str] = mapped_column(Text, default="")
    is_correction: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    entered_at: Mapped[dt.datetime]
    published_at: Mapped[dt.datetime | None]


class Attachment(Base):
    """A file (photo, PDF) carried by one result version; the bytes are stored once by content
    hash (core.attachments.FileStore), so a version carrying a file over costs one row."""

    __tablename__ = "attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("case_result.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))  # as on the officer's phone, path removed
    mime: Mapped[str] = mapped_column(String(40))  # proven by the content, not the name
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    uploaded_at: Mapped[dt.datetime]


class ItemResult(Base):
    __tablename__ = "item_result"
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("case_result.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    codes: Mapped[list[Any]] = mapped_column(default=list)
    # set on a new row, so the version and its items are inserted in one flush; never loaded
    result: Mapped[CaseResult] = relationship(lazy="raise")
    content: Mapped[str] = mapped_column(Text, default="")
    problems: Mapped[str] = mapped_column(Text, default="")
    handling: Mapped[str] = mapped_column(Text, default="")


class Review(Base):
    __tablename__ = "review"
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("case_result.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    decision: Mapped[str] = mapped_column(String(8))  # approve | return
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class CasePart(Base):
    """One department's part of a case result (谁检查、谁录入, 000 §九–十): entered by that
    department's inspectors; the case goes to review once every department with items in the
    task has entered its part (core.result_entry). No row: not entered yet."""

    __tablename__ = "case_part"
    __table_args__ = (UniqueConstraint("case_id", "department_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    state: Mapped[PartState] = mapped_column(StateType(PartState), default=PartState.ENTERED)
    version: Mapped[int] = mapped_column(Integer)  # the result version it was last entered in
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    entered_at: Mapped[dt.datetime]
    # The department's own case-level fields: a version's are merged from every part's
    # (core.result_parts.merged_fields), so no department's entry changes another's.
    methods: Mapped[list[Any]] = mapped_column(default=list)
    followups: Mapped[list[Any]] = mapped_column(default=list)
    followup_done: Mapped[bool] = mapped_column(Boolean, default=False)
    followup_done_on: Mapped[dt.date | None] = mapped_column(Date)
    remarks: Mapped[str] = mapped_column(Text, default="")
