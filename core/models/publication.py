"""After publication: objections to a published result and referrals (移交/移送) of the
problems found (001 第十七条, 004 第二十一条)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, StateType
from core.states import ObjectionState


class Objection(Base):
    __tablename__ = "objection"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    filed_by: Mapped[str] = mapped_column(String(200))  # the target's representative
    content: Mapped[str] = mapped_column(Text)
    received_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[ObjectionState] = mapped_column(
        StateType(ObjectionState), default=ObjectionState.RECEIVED
    )
    recheck_due_on: Mapped[dt.date] = mapped_column(Date)
    recheck_due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    recheck_finding: Mapped[str] = mapped_column(Text, default="")
    rechecked_on: Mapped[dt.date | None] = mapped_column(Date)
    correction_due_on: Mapped[dt.date | None] = mapped_column(Date)
    reply_due_on: Mapped[dt.date | None] = mapped_column(Date)
    replied_on: Mapped[dt.date | None] = mapped_column(Date)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))


class Referral(Base):
    """移交 / 移送: a problem found handed to the competent department or the judiciary."""

    __tablename__ = "referral"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    kind: Mapped[str] = mapped_column(
        String(16)
    )  # 移送办案机构 | 抄告相关部门 | 移送司法机关 | 其他
    to_department: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    created_at: Mapped[dt.datetime]
    # 移送 to a department of the county (001 第十七条, 004 第二十一条): it must acknowledge
    to_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
