"""Append-only, hash-chained audit log (全程留痕、责任可溯).

hash = hex SHA-256 of prev_hash followed by the canonical JSON of (id, at, actor, action,
subject, data). Editing or deleting any row breaks the chain at that row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuditEvent, AuditHead

GENESIS = "0" * 64
APPENDED = "audit_appended"  # session.info key: this transaction holds the chain head's lock
# session.info key: a transaction that only read until now (a page shown) and writes nothing but
# audit rows (a refusal) takes the database's one writer through this before its first append,
# as every writer takes it before it starts (bot: Services.write_gate); a Callable[[],
# Awaitable[Any]], awaited once
WRITER = "audit_writer"


def canonical(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(
    prev_hash: str,
    event_id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
) -> str:
    body = canonical(
        {
            "id": event_id,
            "at": at.astimezone(dt.UTC).isoformat(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "data": data,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


# Core statements on the tables, built once: an append is three small statements on every
# change, and the ORM's unit of work cost more than the statements themselves (#9)
_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditHead.__table__)
_APPEND = insert(_EVENTS)
_HEAD = select(_HEADS.c.last_id, _HEADS.c.last_hash).where(_HEADS.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_ADVANCE = update(_HEADS).where(_HEADS.c.id == 1)


async def append(
    session: AsyncSession,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one event. Locks the chain head so concurrent writers stay in one chain."""
    data = json.loads(canonical(data or {}))  # normalise so the stored JSON hashes the same
    writer: Callable[[], Awaitable[Any]] | None = session.info.pop(WRITER, None)
    if writer is not None:
        await writer()
    last_id, last_hash = await _locked_head(session)
    event_id = last_id + 1
    digest = row_hash(last_hash, event_id, at, actor, action, subject, data)
    event = {
        "id": event_id,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "data": data,
        "prev_hash": last_hash,
        "hash": digest,
    }
    await session.execute(_APPEND, event)
    await session.execute(_ADVANCE, {"last_id": event_id, "last_hash": digest})
    session.info[APPENDED] = True  # the head stays locked to the end of this transaction


async def _locked_head(session: AsyncSession) -> tuple[int, str]:
    """The chain head (last id, last hash), locked to the end of the transaction. The very
    first append creates it; when several transactions do that at once, one row wins and the
    others wait for it (a plain add made them all start the chain at id 1: duplicate key)."""
    head = (await session.execute(_HEAD_LOCKED)).first()
    if head is None:
        insert_head = (
            pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        await session.execute(
            insert_head(_HEADS)
            .values(id=1, last_id=0, last_hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = (await session.execute(_HEAD_LOCKED)).first()
    assert head is not None  # inserted above or by the transaction that won
    return int(head[0]), str(head[1])


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    problem: str  # Chinese, for the CLI


async def verify_chain(session: AsyncSession) -> list[ChainProblem]:
    """Walk the chain; report edited rows, missing rows and a head that does not match."""
    problems: list[ChainProblem] = []
    prev_hash, expected_id = GENESIS, 1
    result = await session.stream_scalars(select(AuditEvent).order_by(AuditEvent.id))
    async for ev in result:
        if ev.id != expected_id:
            gone = str(expected_id) if ev.id - 1 == expected_id else f"{expected_id}–{ev.id - 1}"
            problems.append(ChainProblem(expected_id, f"第 {gone} 条记录缺失（被删除）"))
        if ev.prev_hash != prev_hash:
            problems.append(ChainProblem(ev.id, f"第 {ev.id} 条记录的前序哈希与链不符"))
        if (
            row_hash(ev.prev_hash, ev.id, ev.at, ev.actor, ev.action, ev.subject, ev.data)
            != ev.hash
        ):
            problems.append(
                ChainProblem(ev.id, f"第 {ev.id} 条记录内容被修改（{ev.action} {ev.subject}）")
            )
        prev_hash, expected_id = ev.hash, ev.id + 1
    head = (await session.execute(_HEAD)).first()  # as stored, not a copy the session holds
    if head is not None and (head.last_id != expected_id - 1 or head.last_hash != prev_hash):
        problems.append(
            ChainProblem(
                head.last_id, f"链尾记录缺失：应有 {head.last_id} 条，实有 {expected_id - 1} 条"
            )
        )
    return problems
