"""Stage 9, closing (立卷归档): the audit part of the archive — the task's events with their hashes,
the same events in words, each row's hash recomputed, and the whole chain checked at the time of
archiving."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.archive.contents import Files
from core.models import JointTask
from core.trail import task_trail, trail_text


async def audit_files(session: AsyncSession, task: JointTask, files: Files) -> None:
    """The task's events (core.trail) with their hashes, each row's hash recomputed, and the
    whole chain's check at the time of archiving (an excerpt alone cannot show that nothing
    was deleted)."""
    events = await task_trail(session, task)
    files.add(
        "09-审计/审计摘录.jsonl",
        b"".join(
            _json_line(
                {
                    "id": e.id,
                    "at": e.at.astimezone(dt.UTC).isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "data": e.data,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
            )
            for e in events
        ),
    )
    # the same events in words, as `lianjian audit show` prints them, for a clerk
    text = await trail_text(session, f"任务 {task.code}", events)
    files.add("09-审计/审计记录.txt", text.encode("utf-8"))
    bad = [
        e.id
        for e in events
        if audit.row_hash(e.prev_hash, e.id, e.at, e.actor, e.action, e.subject, e.data) != e.hash
    ]
    problems = await audit.verify_chain(session)
    lines = [
        f"摘录 {len(events)} 条记录；逐条重算哈希："
        + ("全部一致" if not bad else f"第 {bad} 条不一致"),
        "全链校验：" + ("通过" if not problems else "未通过"),
    ]
    lines += [f"✗ {p.problem}" for p in problems]
    files.add("09-审计/审计校验.txt", ("\n".join(lines) + "\n").encode("utf-8"))


def _json_line(obj: dict[str, Any]) -> bytes:
    return (audit.canonical(obj) + "\n").encode("utf-8")
