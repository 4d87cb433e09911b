"""Durable outgoing messages: enqueued in the caller's transaction, delivered by bot.sender."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    case,
    exists,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core import leases
from core.errors import NotFound, ValidationFailed
from core.messages import Destination, OutMessage
from core.models import Department, Officer, OutboxMessage
from core.states import OUTBOX, OutboxState

_OUTBOX = cast(Table, OutboxMessage.__table__)
NO_ROUTE = "no route"  # how the sender's reason for a message nobody can receive begins
RATE_LIMITED = "rate limit: waiting for the one-minute window"  # a postponed row's reason
_PLATFORM_ZH = {
    "wecom": "企业微信",
    "wecom_aibot": "企业微信智能机器人",
    "dingtalk": "钉钉",
    "sim": "模拟器",
}


async def enqueue(
    session: AsyncSession,
    dest: Destination,
    msg: OutMessage,
    *,
    now: dt.datetime,
    key: str | None = None,
) -> OutboxMessage | None:
    """Queue a message. With an idempotency `key`, a second enqueue of the same key is a no-op
    (returns None), so ticks and retries never send a nudge twice."""
    if key is not None:
        exists = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
        )
        if exists is not None:
            return None
    row = _row(dest, msg, key, now)
    session.add(row)
    await session.flush()
    return row


def _row(dest: Destination, msg: OutMessage, key: str | None, now: dt.datetime) -> OutboxMessage:
    return OutboxMessage(**_values(dest, msg, key, now))


_INSERT = insert(_OUTBOX)


def _values(
    dest: Destination, msg: OutMessage, key: str | None, now: dt.datetime
) -> dict[str, Any]:
    """A new outbox row's columns (every column the table has, so a multi-row INSERT binds
    the same ones for each row)."""
    return {
        "idempotency_key": key,
        "destination": dest.model_dump(mode="json"),
        "dest_key": dest.key(),
        "message": msg.model_dump(mode="json", exclude_defaults=True),
        "state": OUTBOX.start(OutboxState.PENDING),
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": None,
        "channel": "",
        "last_error": "",
        "created_at": now,
        "sent_at": None,
    }


async def enqueue_many(
    session: AsyncSession,
    items: list[tuple[Destination, OutMessage, str | None]],
    *,
    now: dt.datetime,
) -> int:
    """Queue several messages as `enqueue` does one by one (a key already queued, or twice
    in `items`, is skipped), with one look-up of the keys and one INSERT: a tick queues
    hundreds. Returns how many rows were added (not loaded into the session)."""
    keys = [key for _, _, key in items if key is not None]
    taken = set(
        await session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_(keys))
        )
        if keys
        else ()
    )
    rows = []
    for dest, msg, key in items:
        if key is not None:
            if key in taken:
                continue
            taken.add(key)
        rows.append(_values(dest, msg, key, now))
    # on the table, no unit of work for rows this transaction never reads: one row (most
    # changes) by the statement built once, several as one executemany in the items' order (ids
    # ascend as listed; a multi-row VALUES would hit SQLite's bound-parameter limit on a tick's
    # thousands of digests)
    if len(rows) == 1:
        await session.execute(_INSERT, rows[0])
    elif rows:
        await session.execute(_INSERT, rows)
    return len(rows)


async def addressed_to(
    session: AsyncSession, dest_keys: list[str], *, after_id: int, limit: int
) -> list[OutboxMessage]:
    """Messages for any of these destinations with an id above `after_id`, oldest first (what
    the simulator shows one officer, page by page)."""
    return list(
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.dest_key.in_(dest_keys), OutboxMessage.id > after_id)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )


# ---------------------------------------------------------------- delivery (bot.sender)


def _held_back(now: dt.datetime) -> ColumnElement[bool]:
    """An earlier pending row of the same destination waits for its retry or is being sent:
    this row waits behind it, so a destination gets its messages in order."""
    earlier = aliased(OutboxMessage)
    return exists().where(
        earlier.dest_key == OutboxMessage.dest_key,
        earlier.id < OutboxMessage.id,
        earlier.state == OutboxState.PENDING,
        or_(earlier.next_attempt_at > now, ~leases.claimable(earlier, now)),
    )


async def claim_due(
    session: AsyncSession, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[OutboxMessage]:
    """Lease due pending rows for one sender, oldest first and none held back by an earlier
    row of its destination; the caller commits straight away. Each row's `claimed_until` is
    the claim token the mark functions check."""
    return await leases.claim_due(
        session, OutboxMessage, limit=limit, now=now, lease=lease, also=~_held_back(now), fifo=True
    )


def _claimed(row_id: int, token: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    # a sender whose lease ran out must not overwrite what a newer claimant did
    return (
        OutboxMessage.id == row_id,
        OutboxMessage.state == OutboxState.PENDING,
        OutboxMessage.claimed_until == token,
    )


async def behind_other_claims(session: AsyncSession, rows: list[OutboxMessage]) -> set[int]:
    """Which of the freshly claimed `rows` must wait after all: an earlier row of their
    destination is still pending and is not among them (another process claimed it in the
    same moment, its claim not yet visible to ours). One look-up for the whole claim, after it
    was committed; the rows of one destination in `rows` are sent in order by this sender."""
    behind, _ = await claim_context(session, rows, None)
    return behind


async def claim_context(
    session: AsyncSession, rows: list[OutboxMessage], since: dt.datetime | None
) -> tuple[set[int], dict[tuple[str, str], list[dt.datetime]]]:
    """What a sender needs to know about its claimed `rows`, in one look-up: which of them are
    `behind_other_claims`, and (with `since`) `sent_since_many` of their destinations."""
    if not rows:
        return set(), {}
    ours = {row.id for row in rows}
    last: dict[str, int] = {}
    for row in rows:
        last[row.dest_key] = max(last.get(row.dest_key, 0), row.id)
    earlier_pending = (OutboxMessage.state == OutboxState.PENDING) & (
        OutboxMessage.id < max(last.values())
    )
    recently_sent = (
        (OutboxMessage.state == OutboxState.SENT) & (OutboxMessage.sent_at > since)
        if since is not None
        else None
    )
    columns = (
        OutboxMessage.dest_key,
        OutboxMessage.id,
        OutboxMessage.state,
        OutboxMessage.channel,
        OutboxMessage.sent_at,
    )
    query: Any = select(*columns).where(OutboxMessage.dest_key.in_(last), earlier_pending)
    if recently_sent is not None:
        # two ranges of ix_outbox_dest_state_sent, not one OR: an OR is read precisely only by
        # a bitmap scan, which the claim's transaction turns off (core.leases); without one it
        # read every row ever sent to these destinations
        query = union_all(
            query, select(*columns).where(OutboxMessage.dest_key.in_(last), recently_sent)
        )
    found = await session.execute(query)
    first_other: dict[str, int] = {}
    recent: dict[tuple[str, str], list[dt.datetime]] = {}
    for dest_key, row_id, state, channel, sent_at in found.all():
        if state == OutboxState.PENDING:
            if row_id not in ours and row_id < last[dest_key]:
                first_other[dest_key] = min(first_other.get(dest_key, row_id), row_id)
        elif sent_at is not None:
            recent.setdefault((dest_key, channel), []).append(sent_at)
    for times in recent.values():
        times.sort()
    behind = {row.id for row in rows if row.id > first_other.get(row.dest_key, row.id)}
    return behind, recent


async def mark_sent(
    session: AsyncSession, row_id: int, token: dt.datetime, *, now: dt.datetime, channel: str
) -> bool:
    return row_id in await mark_sent_many(session, [SentMark(row_id, token, now, channel)])


@dataclass(frozen=True)
class SentMark:
    """One row sent: its claim token, when it went out and on which channel."""

    row_id: int
    token: dt.datetime
    sent_at: dt.datetime
    channel: str


async def mark_sent_many(session: AsyncSession, marks: list[SentMark]) -> set[int]:
    """`mark_sent` of several rows, one UPDATE for the rows of one claim (token) and channel,
    each row's own `sent_at`; the ids marked (one missing lost its claim)."""
    groups: dict[tuple[dt.datetime, str], list[SentMark]] = {}
    for mark in marks:
        groups.setdefault((mark.token, mark.channel), []).append(mark)
    done: set[int] = set()
    for (token, channel), group in groups.items():
        times = {mark.sent_at for mark in group}
        sent_at: Any = (
            group[0].sent_at
            if len(times) == 1
            else case(
                {m.row_id: literal(m.sent_at, OutboxMessage.sent_at.type) for m in group},
                value=OutboxMessage.id,
            )
        )
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_([mark.row_id for mark in group]),
                OutboxMessage.state == OutboxState.PENDING,
                OutboxMessage.claimed_until == token,
            )
            .values(
                state=OUTBOX.edge(OutboxState.PENDING, OutboxState.SENT),
                sent_at=sent_at,
                channel=channel,
                claimed_until=None,
                last_error="",
                attempts=OutboxMessage.attempts + 1,  # the one that went through counts too
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)  # no ORM objects to refresh
        )
        done.update(result.scalars().all())
    return done


async def postpone(
    session: AsyncSession, row_id: int, token: dt.datetime, *, until: dt.datetime, reason: str = ""
) -> bool:
    """Release the row until `until` without counting an attempt (rate limit, paused channel)."""
    values: dict[str, object] = {"next_attempt_at": until, "claimed_until": None}
    if reason:
        values["last_error"] = reason[:2000]
    result = await session.execute(
        update(OutboxMessage)
        .where(*_claimed(row_id, token))
        .values(**values)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)  # no ORM objects to refresh
    )
    return result.scalar() is not None


async def mark_failed(
    session: AsyncSession,
    row_id: int,
    token: dt.datetime,
    error: str,
    *,
    now: dt.datetime,
    retry_at: dt.datetime | None,
    max_attempts: int,
) -> OutboxState | None:
    """Count a failed attempt. `retry_at=None` (a permanent failure) or the last allowed
    attempt makes the row "dead"; otherwise it is due again at `retry_at`. Returns the new
    state, or None when the claim was lost."""
    row = await session.scalar(
        select(OutboxMessage).where(*_claimed(row_id, token)).with_for_update()
    )
    if row is None:
        return None
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_until = None
    if retry_at is None or row.attempts >= max_attempts:
        OUTBOX.move(row, OutboxState.DEAD)
    else:
        row.next_attempt_at = retry_at
    await session.flush()
    return row.state


async def sent_since_many(
    session: AsyncSession, dest_keys: list[str], since: dt.datetime
) -> dict[tuple[str, str], list[dt.datetime]]:
    """`sent_since` of several destinations on every channel in one look-up, by (destination,
    channel): what the sender's batch of rows needs."""
    rows = await session.execute(
        select(OutboxMessage.dest_key, OutboxMessage.channel, OutboxMessage.sent_at)
        .where(
            OutboxMessage.dest_key.in_(dest_keys),
            OutboxMessage.state == OutboxState.SENT,
            OutboxMessage.sent_at > since,
        )
        .order_by(OutboxMessage.sent_at)
    )
    found: dict[tuple[str, str], list[dt.datetime]] = {}
    for dest_key, channel, sent_at in rows.all():
        if sent_at is not None:
            found.setdefault((dest_key, channel), []).append(sent_at)
    return found


async def sent_since(
    session: AsyncSession, dest_key: str, channel: str, since: dt.datetime
) -> list[dt.datetime]:
    """When messages to this destination went out on `channel` after `since` (oldest first):
    the rate limiter's memory, shared by every process and kept across restarts."""
    return (await sent_since_many(session, [dest_key], since)).get((dest_key, channel), [])


async def list_dead(session: AsyncSession, limit: int = 200) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.state == OutboxState.DEAD)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def list_recent(session: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    )
    return list(rows.all())


async def recipients_zh(session: AsyncSession, rows: Sequence[OutboxMessage]) -> dict[str, str]:
    """Each row's recipient for the office, by dest_key: an officer or a department by name
    and code (officer:12 said nothing to them)."""
    dests = {row.dest_key: Destination.model_validate(row.destination) for row in rows}
    officer_ids = {d.officer_id for d in dests.values() if d.officer_id is not None}
    department_ids = {d.department_id for d in dests.values() if d.department_id is not None}
    officers = {o.id: o for o in await session.scalars(_in(Officer, officer_ids))}
    departments = {d.id: d for d in await session.scalars(_in(Department, department_ids))}
    named: dict[str, str] = {}
    for key, d in dests.items():
        found = officers.get(d.officer_id or 0) or departments.get(d.department_id or 0)
        named[key] = (
            f"{found.name}（{found.code}）" if found else _OTHER_RECIPIENTS.get(d.kind, key)
        )
    return named


_OTHER_RECIPIENTS = {"office": "联席会议办公室", "chat": "群会话", "user": "未登记的平台用户"}


def _in(model: type[Officer] | type[Department], ids: set[int]) -> Select[Any]:
    return select(model).where(model.id.in_(ids))


def no_route_error(dest: Destination) -> str:
    """The reason a message nobody can receive is a dead letter (logs: English)."""
    return f"{NO_ROUTE}: {dest.key()} has no platform account or enabled chat binding"


async def reason_zh(session: AsyncSession, row: OutboxMessage) -> str:
    """Why the message is not sent, for the office: who cannot be reached and what to do
    (bind the officer's account, enable a chat robot, then retry); a platform's refusal or an
    adapter's error says whether it is retried and what to do, the platform's own words (the
    sender's, bot/sender.py: "wecom 60020: …") kept in parentheses."""
    error = row.last_error
    if error.startswith(NO_ROUTE):
        dest = Destination.model_validate(row.destination)
        return f"{await _unreachable(session, dest)}，然后 lianjian outbox retry {row.id}"
    if error == RATE_LIMITED:
        return "发送频率已达平台上限，等待一分钟后自动发送"
    dead = row.state == OutboxState.DEAD
    retry = f"lianjian outbox retry {row.id}"
    platform, _, said = error.partition(" ")
    code = said.partition(": ")[0]
    code = code.rstrip(":")  # a refusal without words: "wecom -1:"
    if platform not in _PLATFORM_ZH or not code:
        if dead:
            return f"未能发出：请查看服务日志中的错误记录，处理后 {retry}（原话：{error}）"
        return f"未能发出，将自动重试（原话：{error}）"
    name = _PLATFORM_ZH[platform]
    if code == "exception":  # the adapter raised (bot/sender.py logged it with its class)
        failed = f"联检发送{name}消息时程序错误（已记入日志）"
        log = "请把服务日志中的错误记录交给维护人员"
        if dead:
            return f"{failed}，已停止重试：{log}，修复后 {retry}"
        return f"{failed}，将自动重试；若一再出错，{log}"
    if dead:
        return (
            f"{name}拒收，已停止重试：请按错误码 {code} 查{name}接口说明改正（如应用权限、"
            f"可信 IP、人员账号），然后 {retry}（{name}原话：{said}）"
        )
    return (
        f"{name}暂未发出，将自动重试；若一再失败，请按错误码 {code} 查{name}接口说明"
        f"（{name}原话：{said}）"
    )


async def _unreachable(session: AsyncSession, dest: Destination) -> str:
    if dest.kind == "officer" and (officer := await session.get(Officer, dest.officer_id)):
        return (
            f"{officer.name}（{officer.code}）没有绑定企业微信或钉钉账号：管理员在聊天中发送"
            f"“绑定 {officer.code} 企业微信 账号”，或在人员文件中填写账号后重新导入"
        )
    bind = "lianjian chat bind {} --platform wecom|dingtalk --webhook 机器人地址"
    if dest.kind == "department" and (dep := await session.get(Department, dest.department_id)):
        return f"{dep.name}没有启用的部门群机器人：{bind.format(dep.code)}"
    if dest.kind == "office":
        return f"联席会议办公室群没有启用的群机器人：{bind.format('office')}"
    return "该会话所在的平台未接入，无法送达：在配置文件中启用该平台"


async def dead_ids(session: AsyncSession) -> list[int]:
    """Every dead letter, oldest first."""
    rows = await session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.state == OutboxState.DEAD)
        .order_by(OutboxMessage.id)
    )
    return list(rows)


async def retry(session: AsyncSession, row_id: int, now: dt.datetime) -> OutboxMessage:
    """Put a dead letter back in the queue with a fresh attempt budget."""
    row = await session.get(OutboxMessage, row_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound(f"未找到消息 {row_id}")
    if not OUTBOX.allows(row.state, OutboxState.PENDING):
        raise ValidationFailed(
            f"消息 {row_id} 的状态是{OUTBOX.label(row.state)}，只有死信可以重新发送"
        )
    OUTBOX.move(row, OutboxState.PENDING)
    row.attempts, row.next_attempt_at, row.claimed_until = 0, now, None
    await session.flush()
    return row
