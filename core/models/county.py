"""County setup tables: departments, officers and their platform accounts, group chats, the
target and item libraries, exclusions, conflicts of interest and the holiday calendar — what
exists before any task starts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.messages import Platform
from core.models.base import Base


class Department(Base):
    __tablename__ = "department"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    short_name: Mapped[str] = mapped_column(String(32), default="")
    # "market" for 市场监管 (its result children are B/C/6/D), else another department
    is_market_regulator: Mapped[bool] = mapped_column(Boolean, default=False)
    counterpart: Mapped[str] = mapped_column(String(100), default="")  # 上级对口部门 (city level)


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


CONFLICT_REASON_CHARS = 200  # a declared conflict's 利害关系: the column, so longer is refused


class OfficerConflict(Base):
    """A declared conflict of interest: the officer never inspects that target."""

    __tablename__ = "officer_conflict"
    __table_args__ = (UniqueConstraint("officer_id", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("target.id"), index=True)
    reason: Mapped[str] = mapped_column(String(CONFLICT_REASON_CHARS), default="")


class HolidayYear(Base):
    """Official holiday arrangement for a year chinese-calendar does not know (loaded by admins)."""

    __tablename__ = "holiday_year"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ISO dates, days off
    workdays: Mapped[list[Any]] = mapped_column(default=list)  # ISO dates, make-up working days
    source: Mapped[str] = mapped_column(Text, default="")
    loaded_at: Mapped[dt.datetime]
