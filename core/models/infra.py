"""Infrastructure tables, not a procedure stage: the audit chain, inbox and outbox queues,
used callback signatures, shared platform tokens, stored images, pending conversations, code
counters and daily-tick claims."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, StateType
from core.states import InboxState, OutboxState


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


class UpgradeStep(Base):
    """A data step a migration leaves for the application to run once with the county's rules
    and an audit event (core.deadlines.run_upgrade_steps); the row goes when it has run."""

    __tablename__ = "upgrade_step"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)


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
