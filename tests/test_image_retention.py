"""Stored pictures (the leaders' summary charts, 000 §十三) are pruned by the scheduler's daily
housekeeping once older than `scheduler.image_retention_days`, but never while a message still
to be sent names one (pending, or dead and retryable) nor while a link sent with one can still
be opened (DingTalk shows the chart from a signed link valid 30 days after the send)."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages.links import PAGES
from bot.scheduler import run_due_jobs_once
from core import images, outbox
from core.changes import Ctx
from core.clock import CHINA_TZ, FixedClock
from core.messages import Destination, Image, OutMessage
from core.models import AuditEvent, OutboxMessage, StoredImage
from core.states import OutboxState
from tests.server_helpers import make_services

LINK_LIFETIME = PAGES["image"][1]
START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=CHINA_TZ)


def png(shade: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (4, 4), (shade, shade, shade)).save(out, format="PNG")
    return out.getvalue()


async def picture(
    session: AsyncSession,
    shade: int,
    *,
    stored: dt.datetime,
    state: OutboxState | None = None,
    sent: dt.datetime | None = None,
) -> Image:
    """A picture stored at `stored`, with one outbox row naming it in `state` (none if None)."""
    image = await images.store(session, png(shade), now=stored)
    if state is not None:
        row = await outbox.enqueue(
            session, Destination.officer(1), OutMessage.picture("图表", image), now=stored
        )
        assert row is not None
        row.state, row.sent_at = state, sent
    await session.commit()
    return image


async def kept(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(StoredImage.sha256)))


async def test_old_pictures_go_unless_queued_or_still_linked(
    ctx: Ctx, session: AsyncSession, clock: FixedClock
) -> None:
    now = START + dt.timedelta(days=100)
    long_ago = now - dt.timedelta(days=60)
    unused = await picture(session, 1, stored=long_ago)
    sent_long_ago = await picture(
        session, 2, stored=long_ago, state=OutboxState.SENT, sent=long_ago
    )
    pending = await picture(session, 3, stored=long_ago, state=OutboxState.PENDING)
    dead = await picture(session, 4, stored=long_ago, state=OutboxState.DEAD)
    # stored long ago, sent (e.g. an admin's retry) ten days ago: its link still opens
    linked = await picture(
        session, 5, stored=long_ago, state=OutboxState.SENT, sent=now - dt.timedelta(days=10)
    )
    young = await picture(session, 6, stored=now - dt.timedelta(days=5))
    clock.set(now)

    gone = await images.prune(ctx, keep_days=40, links_valid_for=LINK_LIFETIME)
    await session.commit()

    assert sorted(gone) == sorted([unused.sha256, sent_long_ago.sha256])
    assert await kept(session) == {pending.sha256, dead.sha256, linked.sha256, young.sha256}
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "images.pruned"))
    assert event is not None and event.actor == ctx.actor_label
    assert sorted(event.data["sha256"]) == sorted(gone)
    assert event.data["bytes"] == len(png(1)) + len(png(2))
    assert event.data["kept_in_use"] == 3


async def test_a_link_keeps_its_picture_exactly_as_long_as_it_opens(
    ctx: Ctx, session: AsyncSession, clock: FixedClock
) -> None:
    """Sent at S, the link opens until S + 30 days; the picture goes on the first prune after."""
    sent = START
    image = await picture(session, 7, stored=sent, state=OutboxState.SENT, sent=sent)
    clock.set(sent + LINK_LIFETIME - dt.timedelta(minutes=1))
    assert await images.prune(ctx, keep_days=1, links_valid_for=LINK_LIFETIME) == []
    clock.set(sent + LINK_LIFETIME + dt.timedelta(minutes=1))
    assert await images.prune(ctx, keep_days=1, links_valid_for=LINK_LIFETIME) == [image.sha256]
    await session.commit()
    assert await kept(session) == set()


async def test_a_picture_queued_again_after_the_reads_is_kept(
    ctx: Ctx, session: AsyncSession, clock: FixedClock
) -> None:
    """The housekeeping reads before its claim (docs/architecture.md, scheduler): a message
    naming an old picture queued in between (the same chart drawn again is the same row) keeps
    it; the delete checks again, and the audit names only what went."""
    now = START + dt.timedelta(days=100)
    long_ago = now - dt.timedelta(days=60)
    unused = await picture(session, 12, stored=long_ago)
    again = await picture(session, 13, stored=long_ago)
    clock.set(now)
    found = await images.prunable(ctx, keep_days=40, links_valid_for=LINK_LIFETIME)
    assert set(found.old) == {unused.sha256, again.sha256}
    await outbox.enqueue(
        session, Destination.officer(1), OutMessage.picture("图表", again), now=now
    )
    assert await images.delete_pruned(ctx, found) == [unused.sha256]
    await session.commit()
    assert await kept(session) == {again.sha256}
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "images.pruned"))
    assert event is not None and event.data["sha256"] == [unused.sha256]
    assert (event.data["bytes"], event.data["kept_in_use"]) == (len(png(12)), 1)


async def test_nothing_old_means_no_audit_event(ctx: Ctx, session: AsyncSession) -> None:
    await picture(session, 8, stored=ctx.clock.now())
    assert await images.prune(ctx, keep_days=40, links_valid_for=LINK_LIFETIME) == []
    await session.commit()
    assert (
        await session.scalar(select(AuditEvent).where(AuditEvent.action == "images.pruned")) is None
    )


async def test_the_daily_housekeeping_prunes_by_the_configured_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Run by the scheduler once a day (holidays too), with `image_retention_days` from the
    configuration; the queued chart survives."""
    async with sessionmaker() as session:
        old = await picture(session, 9, stored=START, state=OutboxState.SENT, sent=START)
        queued = await picture(session, 10, stored=START, state=OutboxState.PENDING)
        recent = await picture(session, 11, stored=START + dt.timedelta(days=30))
    night = START.replace(hour=4) + dt.timedelta(days=35)  # after 03:20, China time
    clock = FixedClock(night)
    services = make_services(sessionmaker, clock, scheduler={"image_retention_days": 31})
    assert (await run_due_jobs_once(services, night)).get("housekeeping") is True
    assert "housekeeping" not in await run_due_jobs_once(services, night)  # once a day
    async with sessionmaker() as session:
        assert await kept(session) == {queued.sha256, recent.sha256}
        rows = (await session.scalars(select(OutboxMessage))).all()
        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "images.pruned"))
    assert len(rows) == 2  # the messages themselves are untouched
    assert event is not None and event.data["sha256"] == [old.sha256]
    assert event.actor == "system:scheduler"
