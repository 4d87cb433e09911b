"""Outbox worker (docs/architecture.md §2): claim due rows, resolve each neutral Destination to a
platform Channel, respect per-channel rate limits, send, and record the outcome.

Rows are leased (`claimed_until`) so several `serve` processes never send one row twice; a
lease that runs out (the process died) makes the row due again, so nothing is lost. Rows of
one destination are sent in order, one at a time; destinations are served concurrently.
Rate limits are sliding one-minute windows read from the outbox itself (`sent_at`), so they
hold across restarts and across processes — a token bucket of capacity N would allow almost
2N sends in one minute, which the platforms' per-minute counters refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.pages.invitation import action_link
from bot.pages.links import expand, recipient
from bot.platforms.base import Channel, SendResult
from bot.services import Services
from bot.workers import GroupCommit, poll_loop
from core import bindings, images, officers, outbox, sqlite_async
from core.changes import Ctx
from core.leases import backoff_seconds
from core.messages import Destination, Image, OutMessage, Platform
from core.models import OutboxMessage
from core.states import OutboxState

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(minutes=1)
LEASE_MARGIN = dt.timedelta(seconds=30)  # > an adapter's HTTP timeout


@dataclass(frozen=True)
class Route:
    """Where one row goes: a platform channel, or the simulator when `channel` is None."""

    channel: Channel | None
    binding_id: int | None = None
    mentions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What happened to one row; `pause_until` holds the rest of its destination back."""

    state: str  # sent | sim | dead, or (the row is still to send) waiting | behind | pending | lost
    pause_until: dt.datetime | None = None


# a row in any other state is still to be sent: its destination's later rows wait for it
FINISHED = frozenset({"sent", "sim", "dead"})


@dataclass
class Batch:
    """What the rows of one claim share, looked up once for all of them rather than per row."""

    behind: set[int] = field(default_factory=set)  # rows behind an earlier row of another claim
    # officer → the platform and account a direct message reaches them on
    accounts: dict[int, tuple[Platform, str] | None] = field(default_factory=dict)
    # per destination and channel: when its messages went out in the last minute, oldest first
    recent: dict[tuple[str, str], list[dt.datetime]] = field(default_factory=dict)


# ---------------------------------------------------------------- resolving destinations


async def resolve(
    session: AsyncSession,
    services: Services,
    dest: Destination,
    msg: OutMessage,
    accounts: dict[int, tuple[Platform, str] | None],
) -> Route:
    """`accounts`: officers' first accounts, looked up for the whole batch of rows (one
    missing from it is looked up here and added)."""
    enabled = services.adapters
    if dest.kind in ("chat", "user"):
        if dest.platform is not None and dest.platform in enabled and dest.address:
            if dest.kind == "chat":
                return Route(Channel(dest.platform, "session_webhook", dest.address))
            return Route(Channel(dest.platform, "user", dest.address))
        return Route(None)
    if dest.kind == "officer":
        officer = dest.officer_id
        if officer is not None and officer not in accounts:
            accounts[officer] = await officers.first_account(
                services.core_ctx(session), officer, enabled
            )
        found = accounts.get(officer) if officer is not None else None
        return Route(Channel(found[0], "user", found[1]) if found else None)
    binding = await bindings.robot_for(
        services.core_ctx(session),
        enabled,
        department_id=dest.department_id,
        office=dest.kind != "department",
    )
    if binding is None:
        return Route(None)
    channel = Channel(
        Platform(binding.platform), "group_webhook", binding.webhook_url, binding.sign_secret
    )
    return Route(
        channel, binding.id, await _mentions(services.core_ctx(session), binding.platform, msg)
    )


def _with_links(
    services: Services, dest: Destination, channel: Channel, msg: OutMessage
) -> OutMessage:
    """Where buttons only open URLs (DingTalk), callback buttons of a card sent to one officer
    get the signed H5 page for the same action (docs/architecture.md §2); elsewhere the
    message is as is."""
    if (
        services.adapters[channel.platform].buttons_call_back
        or msg.card is None
        or dest.officer_id is None
    ):
        return msg
    buttons = [
        b
        if b.url or not b.action_key
        else b.model_copy(update={"url": action_link(services, dest.officer_id, b.action_key)})
        for b in msg.card.buttons
    ]
    return msg.model_copy(update={"card": msg.card.model_copy(update={"buttons": buttons})})


async def _mentions(ctx: Ctx, platform: str, msg: OutMessage) -> list[str]:
    if not msg.mention_officer_ids:
        return []
    return await officers.accounts_on(ctx, platform, msg.mention_officer_ids)


# ---------------------------------------------------------------- the worker


class SentMarks:
    """Sends that finish while a mark is waiting for its transaction join it: one UPDATE per
    claim for them all (outbox.mark_sent_many), in a transaction shared with the other small
    writes of the moment (GroupCommit)."""

    def __init__(self, records: GroupCommit) -> None:
        self._records = records
        self._open: tuple[list[outbox.SentMark], asyncio.Future[set[int]]] | None = None

    async def mark(self, mark: outbox.SentMark) -> bool:
        """Whether the row was marked sent (False: its claim was lost)."""
        if self._open is None:
            marks: list[outbox.SentMark] = []

            async def write(session: AsyncSession) -> set[int]:
                if self._open is not None and self._open[0] is marks:
                    self._open = None  # later marks start the next batch
                return await outbox.mark_sent_many(session, marks)

            self._open = (marks, asyncio.ensure_future(self._records.run(write)))
        marks, done = self._open
        marks.append(mark)
        # shielded: a caller that goes away must not cancel the others' write
        return mark.row_id in await asyncio.shield(done)


class Sender:
    def __init__(self, services: Services, *, jitter: Callable[[], float] = random.random) -> None:
        self.services = services
        self.cfg = services.settings.sender
        self._jitter = jitter
        self._stopping = asyncio.Event()
        self._commits = GroupCommit(services)  # the small writes of sends finishing together
        self._records = SentMarks(self._commits)

    def _now(self) -> dt.datetime:
        return self.services.clock.now()

    async def run(self, wake: asyncio.Event) -> None:
        """Deliver until `stop()`; woken early by `wake` (set when rows are queued). Claims,
        look-ups and records are small statements: on SQLite they run on the loop's thread
        (sqlite_async.inline)."""
        with sqlite_async.inline():
            await poll_loop(
                self.run_once,
                wake,
                self._stopping,
                self.cfg.poll_interval_s,
                "sender",
                self.cfg.claim_pace_s,
            )

    def stop(self) -> None:
        """Finish the sends in flight, hand the rest of the batch back, then leave `run`."""
        self._stopping.set()

    async def run_once(self) -> int:
        """One batch: returns how many rows were claimed."""
        async with self._writing() as session:
            rows = await outbox.claim_due(
                session, self.cfg.batch_size, self._now(), dt.timedelta(seconds=self.cfg.lease_s)
            )
            # in the claim's own transaction: no second session (on PostgreSQL a BEGIN and a
            # ROLLBACK fewer); the look-up reads states, not leases, so it finds the same
            batch = await self._look_up(rows, session) if rows else None
            await session.commit()
        if not rows or batch is None:
            return 0
        groups: dict[str, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            groups[row.dest_key].append(row)
        await asyncio.gather(*(self._deliver_group(g, batch) for g in groups.values()))
        return len(rows)

    async def _deliver_group(self, rows: list[OutboxMessage], batch: Batch | None = None) -> None:
        """Send one destination's claimed rows in order."""
        batch = batch or await self._look_up(rows)
        for n, row in enumerate(rows):
            token = row.claimed_until
            assert token is not None  # claim_due just set it
            # never start a send the lease may not outlive: another process could claim the
            # row after it runs out and send it a second time
            if self._stopping.is_set() or self._now() + LEASE_MARGIN >= token:
                await self._release(rows[n:], None)
                return
            try:
                outcome = await self.deliver(row, token, batch)
            except Exception:
                log.exception("delivering outbox row %s failed; its lease will expire", row.id)
                outcome = Outcome("lost")  # until then its lease holds the later rows back
            if outcome.state not in FINISHED:  # the later rows wait for this one (order)
                await self._release(rows[n + 1 :], outcome.pause_until)
                return

    async def _release(self, rows: list[OutboxMessage], until: dt.datetime | None) -> None:
        """Rows not attempted go back to the queue unchanged (or after the channel's pause),
        all in one write: a paused robot must not cost one transaction per queued message."""
        if not rows:
            return
        async with self._writing() as session:
            for row in rows:
                assert row.claimed_until is not None
                await outbox.postpone(
                    session, row.id, row.claimed_until, until=until or row.next_attempt_at
                )
            await session.commit()

    async def deliver(self, row: OutboxMessage, token: dt.datetime, batch: Batch) -> Outcome:
        dest = Destination.model_validate(row.destination)
        msg = OutMessage.model_validate(row.message)
        now = self._now()
        behind = row.id in batch.behind
        async with self.services.sessionmaker() as session:  # reads only: no write gate
            route = (
                Route(None)
                if behind
                else await resolve(session, self.services, dest, msg, batch.accounts)
            )
        wait_until = (
            None if route.channel is None else self._rate_wait(row, route.channel, now, batch)
        )
        if behind:  # an earlier row of this destination is with another sender or waiting
            await self._postpone(row, token, row.next_attempt_at)
            return Outcome("behind")
        if route.channel is None:
            return await self._no_route(row, token, dest, now)
        if wait_until is not None:
            await self._postpone(row, token, wait_until, outbox.RATE_LIMITED)
            return Outcome("waiting", wait_until)
        msg = expand(self.services, recipient(dest), msg)
        if msg.image is not None:  # the outbox names the picture; the platform needs its bytes
            msg = await self._with_picture(msg, msg.image)
        result = await self._send(route, _with_links(self.services, dest, route.channel, msg))
        if result.ok:  # the next row of this destination counts this send against the limit
            batch.recent.setdefault((row.dest_key, route.channel.platform), []).append(now)
        return await self._record(row, token, route, result)

    async def _with_picture(self, msg: OutMessage, image: Image) -> OutMessage:
        async with self.services.sessionmaker() as session:
            data = await images.load(session, image.sha256) or b""
        return msg.model_copy(update={"image": image.model_copy(update={"data": data})})

    async def _postpone(
        self, row: OutboxMessage, token: dt.datetime, until: dt.datetime, reason: str = ""
    ) -> None:
        async with self._writing() as session:
            await outbox.postpone(session, row.id, token, until=until, reason=reason)
            await session.commit()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a write, in line with the other writers: on SQLite an ungated write
        waits in SQLite's sleeping busy handler (and makes the gated writers wait there too,
        callbacks included) instead of queueing."""
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            yield session

    async def _no_route(
        self, row: OutboxMessage, token: dt.datetime, dest: Destination, now: dt.datetime
    ) -> Outcome:
        """No platform reaches this destination. With the simulator on, its page is the chat;
        in production the row is a visible dead letter, never silently "sent"."""
        if self.services.settings.simulator.enabled:  # marked with the other sends of the moment
            done = await self._records.mark(outbox.SentMark(row.id, token, now, Platform.SIM))
            return Outcome("sim" if done else "lost")
        error = outbox.no_route_error(dest)

        async def dead(session: AsyncSession) -> OutboxState | None:
            return await self._mark_failed(session, row, token, error, now, None)

        # a tick's messages to departments without a chat binding die together: one
        # transaction for the rows of the moment, not one each
        state = await self._commits.run(dead)
        return Outcome(state or "lost")

    def _limit(self, channel: Channel) -> int | None:
        if channel.kind == "group_webhook":
            return self.cfg.group_robot_per_minute
        if channel.kind == "user":
            return self.cfg.app_user_per_minute
        return None  # a session webhook answers one conversation message by message

    def _rate_wait(
        self, row: OutboxMessage, channel: Channel, now: dt.datetime, batch: Batch
    ) -> dt.datetime | None:
        limit = self._limit(channel)
        if limit is None:
            return None
        recent = [
            t for t in batch.recent.get((row.dest_key, channel.platform), []) if t > now - WINDOW
        ]
        if len(recent) < limit:
            return None
        return recent[-limit] + WINDOW  # when the oldest send that fills the window leaves it

    async def _look_up(
        self, rows: list[OutboxMessage], session: AsyncSession | None = None
    ) -> Batch:
        """What the claimed rows' sends need to know, in two queries for all of them: which
        wait behind another claim and the destinations' recent sends (the rate limits'
        window; this batch's own sends are added as they go, the destinations' rows being
        this sender's alone until they are sent), and the officers' accounts."""
        officer_ids = {
            officer
            for row in rows
            if row.destination.get("kind") == "officer"
            and (officer := row.destination.get("officer_id")) is not None
        }
        if session is None:
            async with self.services.sessionmaker() as own:  # reads only: no write gate
                return await self._look_up(rows, own)
        ctx = self.services.core_ctx(session)
        behind, recent = await outbox.claim_context(session, rows, self._now() - WINDOW)
        return Batch(
            behind=behind,
            accounts=await officers.first_accounts(ctx, officer_ids, self.services.adapters)
            if officer_ids
            else {},
            recent=recent,
        )

    async def _send(self, route: Route, msg: OutMessage) -> SendResult:
        assert route.channel is not None
        adapter = self.services.adapters[route.channel.platform]
        try:
            return await adapter.send(route.channel, msg, route.mentions)
        except Exception as exc:  # an adapter bug must cost one attempt, not the worker
            log.exception(
                "adapter %s raised %s while sending", route.channel.platform, type(exc).__name__
            )
            return SendResult(False, code="exception", detail=type(exc).__name__)

    async def _record(
        self, row: OutboxMessage, token: dt.datetime, route: Route, result: SendResult
    ) -> Outcome:
        assert route.channel is not None
        now = self._now()
        error = f"{route.channel.platform} {result.code}: {result.detail}".strip()
        if result.ok:  # the busy path: sends finishing together are recorded together
            mark = outbox.SentMark(row.id, token, now, route.channel.platform)
            return Outcome("sent" if await self._records.mark(mark) else "lost")
        retry_at = None if result.permanent else self._retry_at(row, result, now)
        async with self._writing() as session:
            state = await self._mark_failed(session, row, token, error, now, retry_at)
            if result.permanent and route.binding_id is not None and state is not None:
                ctx = dataclasses.replace(
                    self.services.core_ctx(session), actor_label="system:sender"
                )
                await bindings.disable_robot(
                    ctx,
                    route.binding_id,
                    code=result.code,
                    detail=result.detail,
                    outbox_id=row.id,
                )
            await session.commit()
        pause = retry_at if result.retry_after is not None and state == "pending" else None
        outcome = Outcome(state or "lost", pause)
        if outcome.state == "dead":
            log.error("outbox row %s is dead after %s: %s", row.id, route.channel.redacted(), error)
        return outcome

    async def _mark_failed(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        token: dt.datetime,
        error: str,
        now: dt.datetime,
        retry_at: dt.datetime | None,
    ) -> OutboxState | None:
        """A failed attempt, within this sender's attempt budget; no `retry_at` is dead now."""
        return await outbox.mark_failed(
            session,
            row.id,
            token,
            error,
            now=now,
            retry_at=retry_at,
            max_attempts=self.cfg.max_attempts,
        )

    def _retry_at(self, row: OutboxMessage, result: SendResult, now: dt.datetime) -> dt.datetime:
        # Back off exponentially even when the platform names a wait: a short fixed retry
        # would spend the whole attempt budget in a one-minute outage. A named wait (rate
        # limit, busy) is the least we wait, and it holds the whole channel.
        delay = backoff_seconds(
            row.attempts + 1,
            base=self.cfg.backoff_base_s,
            cap=self.cfg.backoff_cap_s,
            jitter=self._jitter(),
        )
        return now + dt.timedelta(seconds=max(delay, result.retry_after or 0.0))
