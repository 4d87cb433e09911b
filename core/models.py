"""SQLAlchemy 2 typed tables (docs/architecture.md §5). States are the enums of core.states,
stored as strings."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.messages import Platform
from core.states import (
    CaseState,
    DrawState,
    InboxState,
    InvitationState,
    ObjectionState,
    OutboxState,
    PartState,
    ReplacementState,
    ResultState,
    TaskState,
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC, so SQLite and PostgreSQL behave the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


S = TypeVar("S", bound=StrEnum)


class StateType(TypeDecorator[S], Generic[S]):
    """A state column: stored as its plain string value (no database enum type, so adding a
    state needs no migration), read back as the entity's enum; an unknown value is refused."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[S]) -> None:
        super().__init__(16)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> S | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


# ---------------------------------------------------------------- people and departments


class Department(Base):
    __tablename__ = "department"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    short_name: Mapped[str] = mapped_column(String(32), default="")
    # "market" for 市场监管 (its result children are B/C/6/D), else another department
    is_market_regulator: Mapped[bool] = mapped_column(Boolean, default=False)
    counterpart: Mapped[str] = mapped_column(String(100), default="")  # 上级对口部门 (city level)


# Row ids are INTEGER columns: 32 bits on PostgreSQL. An id from outside (a card key, a link,
# a query) past this cannot name a row, and the driver refuses to send it (OverflowError).
MAX_ROW_ID = 2**31 - 1

ROLES = ("liaison", "inspector", "leader", "admin", "expert")


class Officer(Base):
    __tablename__ = "officer"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # officer code, used in draws
    name: Mapped[str] = mapped_column(String(50))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    roles: Mapped[list[Any]] = mapped_column(default=list)  # subset of ROLES
    cert_no: Mapped[str] = mapped_column(String(40), default="")
    expertise: Mapped[list[Any]] = mapped_column(default=list)
    region: Mapped[str] = mapped_column(String(50), default="")
    mobile: Mapped[str] = mapped_column(String(20), default="")
    # False once the officer left (离岗, 调离): kept for history, never drawn again
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    inactive_reason: Mapped[str] = mapped_column(String(100), default="")
    department: Mapped[Department] = relationship(lazy="joined")
    accounts: Mapped[list[PlatformAccount]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="PlatformAccount.id"
    )

    def __init__(self, **fields: Any) -> None:
        # a new officer's accounts are known (none yet): no lazy load, which async forbids
        fields.setdefault("accounts", [])
        super().__init__(**fields)

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])

    def account(self, platform: ChatPlatform, tenant: str = "") -> str | None:
        """The officer's account on that platform and tenant, if bound."""
        return next(
            (a.account for a in self.accounts if a.platform == platform and a.tenant == tenant),
            None,
        )


class ChatPlatform(StrEnum):
    """The chat platforms an officer can hold an account on (the order is the sender's
    preference when an officer has several). Named as the platforms whose app they use; the
    other ways in to a platform (Platform.WECOM_AIBOT) know its users by the same accounts."""

    WECOM = Platform.WECOM.value  # 企业微信, and 政务微信 as another tenant
    DINGTALK = Platform.DINGTALK.value  # 钉钉, and 浙政钉 as another tenant


class PlatformAccount(Base):
    """An officer's account on a chat platform. A tenant is the organisation on the platform
    (corp id), so one county can bind WeCom and 政务微信, or DingTalk and 浙政钉, side by side;
    "" is the deployment's configured one. An account serves one officer, and an officer holds
    one account per platform and tenant."""

    __tablename__ = "platform_account"
    __table_args__ = (
        UniqueConstraint("platform", "tenant", "account"),
        UniqueConstraint("officer_id", "platform", "tenant"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # a ChatPlatform value
    tenant: Mapped[str] = mapped_column(String(64), default="")
    account: Mapped[str] = mapped_column(String(64))


class ChatBinding(Base):
    """A department's (or the office's) group chat on a platform: robot webhook or chat id."""

    __tablename__ = "chat_binding"
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    is_office: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str] = mapped_column(Text, default="")  # a secret: never log it
    sign_secret: Mapped[str] = mapped_column(String(200), default="")  # DingTalk 加签 secret
    chat_id: Mapped[str] = mapped_column(String(128), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")


# ---------------------------------------------------------------- libraries

TARGET_KINDS = ("企业", "个体工商户", "农民专业合作社", "其他组织", "产品", "项目")
TARGET_STATUSES = ("存续", "停业", "注销", "吊销", "撤销", "迁出")
DRAWABLE_STATUSES = ("存续", "停业")
RISK_LEVELS = ("A", "B", "C", "D", "")  # "" = not yet classified
TARGET_FLAGS = ("经营异常名录", "严重违法失信名单", "投诉举报", "重点监管")


class Target(Base):
    __tablename__ = "target"
    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)  # or 15-digit legacy reg. no.
    is_legacy_id: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="企业")
    industry: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(8), default="存续")
    risk_level: Mapped[str] = mapped_column(String(1), default="")
    flags: Mapped[str] = mapped_column(String(200), default="")  # "|"-joined TARGET_FLAGS

    def flag_list(self) -> list[str]:
        return [f for f in self.flags.split("|") if f]


ITEM_CATEGORIES = ("key", "general")


class Item(Base):
    """One version of an entry of a department's item list (抽查事项清单).

    Versions are never edited: a changed entry gets a new row with version + 1 and the old row
    stops being `current`, so a task keeps pointing at the text it was created with.
    """

    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint(
            "department_id", "code", "version", name="uq_item_department_id_code_version"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(8), default="general")  # key | general
    target_scope: Mapped[list[Any]] = mapped_column(default=list)  # kinds / industries it covers
    method: Mapped[str] = mapped_column(String(200), default="")  # 检查方式
    basis: Mapped[str] = mapped_column(Text, default="")  # 检查依据
    ratio_cap: Mapped[str] = mapped_column(String(16), default="")  # decimal text; "" = rules' cap
    version: Mapped[int] = mapped_column(Integer, default=1)
    current: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class Exclusion(Base):
    """An imported 'already inspected' record, e.g. by the city-level counterpart."""

    __tablename__ = "exclusion"
    __table_args__ = (UniqueConstraint("year", "uscc", "department_id", "source"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    source: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")


class OfficerConflict(Base):
    """A declared conflict of interest: the officer never inspects that target."""

    __tablename__ = "officer_conflict"
    __table_args__ = (UniqueConstraint("officer_id", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("target.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


# ---------------------------------------------------------------- joint tasks


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


class Draw(Base):
    """A verifiable draw (docs/architecture.md §3): of targets for a task, or of inspectors, or
    a quick draw."""

    __tablename__ = "draw"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("joint_task.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # targets | inspectors
    task_code: Mapped[str] = mapped_column(String(48))  # the code hashed into every key
    state: Mapped[DrawState] = mapped_column(StateType(DrawState), default=DrawState.FROZEN)
    freeze_no: Mapped[int] = mapped_column(Integer, default=1)  # 1 + freezes before this one
    commitment: Mapped[str] = mapped_column(String(64))
    seed_hex: Mapped[str] = mapped_column(String(64), default="")  # secret until locked
    beacon_source: Mapped[str] = mapped_column(Text, default="")  # announced before the draw
    beacon: Mapped[str] = mapped_column(Text, default="")
    uses_beacon: Mapped[bool] = mapped_column(Boolean, default=True)
    pool_hash: Mapped[str] = mapped_column(String(64))
    pool_size: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rule, scope, counts
    algorithm_version: Mapped[str] = mapped_column(String(32), default="lianjian-draw-1")
    selection: Mapped[list[Any]] = mapped_column(default=list)  # ids in key order
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    frozen_at: Mapped[dt.datetime]
    locked_at: Mapped[dt.datetime | None]


class DrawPool(Base):
    """The frozen pool as zlib-compressed CSV ("id,stratum" lines), kept apart from Draw."""

    __tablename__ = "draw_pool"
    draw_id: Mapped[int] = mapped_column(ForeignKey("draw.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


# ---------------------------------------------------------------- cases


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
    """更换 asked for; the department leader approves (naming the new inspector) or refuses
    with a reason (001 第十四条, 004 第十三条)."""

    __tablename__ = "replacement_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("inspection_case.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))  # to be replaced
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    state: Mapped[ReplacementState] = mapped_column(
        StateType(ReplacementState), default=ReplacementState.PENDING
    )
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]


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
    version: Mapped[int] = mapped_column(Integer)
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


# ---------------------------------------------------------------- working days


class HolidayYear(Base):
    """Official holiday arrangement for a year chinese-calendar does not know (loaded by admins)."""

    __tablename__ = "holiday_year"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ISO dates, days off
    workdays: Mapped[list[Any]] = mapped_column(default=list)  # ISO dates, make-up working days
    source: Mapped[str] = mapped_column(Text, default="")
    loaded_at: Mapped[dt.datetime]


# ---------------------------------------------------------------- audit, inbox, outbox


class AuditEvent(Base):
    """Append-only and hash-chained: hash = SHA-256(prev_hash ‖ canonical JSON of the row)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))  # officer code, "system" or "admin:<name>"
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(80), index=True)  # e.g. "task:LJ-2026-001"
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row, locked while appending, so concurrent processes keep a single chain."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class InboxEvent(Base):
    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        Index("ix_inbox_due", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the neutral Event
    state: Mapped[InboxState] = mapped_column(
        StateType(InboxState), default=InboxState.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed handling attempts
    next_attempt_at: Mapped[dt.datetime]  # retried with backoff after a failure
    claimed_until: Mapped[dt.datetime | None]  # lease of the worker handling it
    received_at: Mapped[dt.datetime]
    processed_at: Mapped[dt.datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")


class UsedSignature(Base):
    """A callback signature already used (DingTalk: the (timestamp, sign) header pair, which
    covers no body). Kept until its timestamp leaves the accepted window; the primary key
    makes the first use win across restarts and processes."""

    __tablename__ = "used_signature"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))  # the platform re-sending is the same body
    keep_until: Mapped[dt.datetime] = mapped_column(index=True)


class PlatformToken(Base):
    """A platform access token (WeCom gettoken, DingTalk accessToken) shared by every process
    on the database: the token endpoints are frequency-blocked, so one process fetches and the
    others read. `refreshing_until` is the refresher's lease, taken with a conditional update;
    a process killed while fetching loses it when it runs out."""

    __tablename__ = "platform_token"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # platform:corp:agent
    token: Mapped[str] = mapped_column(Text, default="")  # "" = none, or rejected by the platform
    fetched_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    refreshing_until: Mapped[dt.datetime | None]


class OutboxMessage(Base):
    __tablename__ = "outbox"
    # ix_outbox_dest_state_sent: a destination's rows by state: the rate limiter's look-up
    # (sent to this destination since …) and the order checks (an earlier row of this
    # destination still pending); without it SQLite walks every sent row through ix_outbox_due,
    # and the claim's order check grew with the square of the queue
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_dest_state_sent", "dest_key", "state", "sent_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    destination: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Destination
    dest_key: Mapped[str] = mapped_column(String(64))
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)  # OutMessage
    state: Mapped[OutboxState] = mapped_column(StateType(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    claimed_until: Mapped[dt.datetime | None]
    channel: Mapped[str] = mapped_column(String(16), default="")  # platform that delivered it
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]


class StoredImage(Base):
    """A picture the bot sends (the leaders' summary chart), stored once by its content hash:
    every leader of a department gets the same chart, and an outbox row names it by hash."""

    __tablename__ = "stored_image"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]


class Conversation(Base):
    """A pending conversation step for an officer (e.g. waiting for a decline reason)."""

    __tablename__ = "conversation"
    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), unique=True)
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[dt.datetime]


class Sequence(Base):
    """Named counters for human-readable codes (task LJ-2026-001, quick draw KC-2026-0001)."""

    __tablename__ = "code_sequence"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class ScheduledRun(Base):
    """One row per daily job and Chinese calendar day that ran: the claim that makes a tick
    run once, whether it comes from the cron trigger, a start-up catch-up or a second process."""

    __tablename__ = "scheduled_run"
    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    ran_at: Mapped[dt.datetime]
