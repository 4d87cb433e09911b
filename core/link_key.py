"""Which key signs the links of a database: every process sharing it must use the same one, or
a link one made is "链接无效或被篡改" in another. The database keeps a fingerprint of the key
(an HMAC of a fixed label under it), never the key or a plain hash of it: whoever reads the
database (a dump, a reporting account) can neither sign a link nor test a guessed key offline
more cheaply than against any signed link.

The first start records it; a deliberate change of key is recorded by `lianjian db
link-secret`. Both are audit events, the newest being the key in force.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select

from core.changes import Ctx, record
from core.models import AuditEvent

ACTION = "link_secret.recorded"
SUBJECT = "link_secret"
_LABEL = b"lianjian-link-secret-fingerprint-v1"


def fingerprint(key: bytes) -> str:
    return hmac.new(key, _LABEL, hashlib.sha256).hexdigest()


async def recorded_fingerprint(ctx: Ctx) -> str | None:
    return await ctx.session.scalar(
        select(AuditEvent.data["fingerprint"].as_string())
        .where(AuditEvent.action == ACTION)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


async def record_link_key(ctx: Ctx, key: bytes, why: str) -> bool:
    """Record `key` as the database's link key; False when it already is."""
    mine = fingerprint(key)
    if await recorded_fingerprint(ctx) == mine:
        return False
    await record(ctx, ACTION, SUBJECT, {"fingerprint": mine, "why": why})
    return True


async def link_key_matches(ctx: Ctx, key: bytes) -> bool:
    """Whether `key` is the database's link key; the first start records it. Two processes
    starting at once on a new database both record theirs: the audit chain's lock orders
    them, and the later one, seeing the other's, is refused (its record rolled back)."""
    mine = fingerprint(key)
    recorded = await recorded_fingerprint(ctx)
    if recorded is not None:
        return recorded == mine
    await record(ctx, ACTION, SUBJECT, {"fingerprint": mine, "why": "首次启动"})
    others = select(AuditEvent.id).where(
        AuditEvent.action == ACTION, AuditEvent.data["fingerprint"].as_string() != mine
    )
    return await ctx.session.scalar(others.limit(1)) is None
