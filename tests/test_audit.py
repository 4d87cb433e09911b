import datetime as dt

from sqlalchemy import delete, update

from core import audit
from core.models import AuditEvent


async def _three(session, clock):
    for i in range(3):
        await audit.append(
            session,
            at=clock.now(),
            actor="system",
            action="test",
            subject=f"x:{i}",
            data={"n": i, "名": "值"},
        )
    await session.commit()


async def test_intact_chain_verifies(session, clock):
    await _three(session, clock)
    assert await audit.verify_chain(session) == []


async def test_edited_row_is_named(session, clock):
    await _three(session, clock)
    await session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(data={"n": 99}))
    await session.commit()
    problems = await audit.verify_chain(session)
    assert [p.event_id for p in problems] == [2]
    assert "被修改" in problems[0].problem


async def test_deleted_row_is_named(session, clock):
    await _three(session, clock)
    await session.execute(delete(AuditEvent).where(AuditEvent.id == 2))
    await session.commit()
    problems = await audit.verify_chain(session)
    assert problems and problems[0].event_id == 2 and "缺失" in problems[0].problem


async def test_deleted_last_row_is_detected(session, clock):
    await _three(session, clock)
    await session.execute(delete(AuditEvent).where(AuditEvent.id == 3))
    await session.commit()
    assert [p.event_id for p in await audit.verify_chain(session)] == [3]


async def test_times_round_trip_aware(session, clock):
    await _three(session, clock)
    ev = await session.get(AuditEvent, 1)
    assert ev.at.tzinfo is not None and ev.at == clock.now().replace(microsecond=ev.at.microsecond)
    assert isinstance(ev.at, dt.datetime)


async def test_one_deleted_row_is_named_alone_and_a_run_as_a_range(session, clock):
    """The CLI says “第 2 条”, not “第 2–2 条”; a run of deleted rows as “第 2–3 条”."""
    await _three(session, clock)
    await session.execute(delete(AuditEvent).where(AuditEvent.id == 2))
    await session.commit()
    assert (await audit.verify_chain(session))[0].problem == "第 2 条记录缺失（被删除）"
    await _three(session, clock)
    await session.execute(delete(AuditEvent).where(AuditEvent.id.in_([4, 5])))
    await session.commit()
    assert any(
        p.problem == "第 4–5 条记录缺失（被删除）" for p in await audit.verify_chain(session)
    )
