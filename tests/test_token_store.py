"""Issue 11: one access token for several `serve` processes (bot.token_store on the database).

Each "process" here is its own engine, sessionmaker, write gate, adapter and in-process token
cache, sharing only the database and the fake platform, whose token endpoint counts fetches.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.base import Channel, PlatformAdapter
from bot.platforms.dingtalk import DingTalkAdapter
from bot.platforms.tokens import REFRESH_LEASE, WAIT_S
from bot.platforms.wecom import WeComAdapter
from bot.token_store import SharedTokens
from core import platform_tokens
from core.clock import FixedClock
from core.db import make_engine, make_sessionmaker
from core.messages import OutMessage, Platform
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom
from tests.server_helpers import dingtalk_settings, make_services, wecom_settings


@dataclass
class Process:
    adapter: PlatformAdapter
    tokens: SharedTokens | None  # None: the adapter's in-process cache only (the baseline)

    @property
    def shared(self) -> SharedTokens:
        assert self.tokens is not None, "a baseline process has no shared token store"
        return self.tokens


@contextlib.asynccontextmanager
async def processes(
    db_url: str, clock: FixedClock, make: Callable[[SharedTokens], PlatformAdapter], n: int = 2
) -> AsyncIterator[list[Process]]:
    engines: list[AsyncEngine] = [make_engine(db_url) for _ in range(n)]
    procs = []
    for eng in engines:
        tokens = SharedTokens(make_services(make_sessionmaker(eng), clock))
        procs.append(Process(make(tokens), tokens))
    try:
        yield procs
    finally:
        for proc in procs:
            await proc.adapter.close()
        for eng in engines:
            await eng.dispose()


def wecom_maker(
    fake: FakeWeCom, clock: FixedClock
) -> Callable[[SharedTokens | None], WeComAdapter]:
    settings = wecom_settings(fake)
    return lambda tokens: WeComAdapter(settings, clock, tokens)


@contextlib.asynccontextmanager
async def wecom_processes(
    db_url: str, clock: FixedClock, n: int = 2
) -> AsyncIterator[tuple[FakeWeCom, list[Process]]]:
    fake = await FakeWeCom(clock=clock).start()
    try:
        async with processes(db_url, clock, wecom_maker(fake, clock), n) as procs:
            yield fake, procs
    finally:
        await fake.close()


@contextlib.asynccontextmanager
async def dingtalk_processes(
    db_url: str, clock: FixedClock
) -> AsyncIterator[tuple[FakeDingTalk, list[Process]]]:
    fake = await FakeDingTalk(clock=clock).start()
    settings = dingtalk_settings(fake)
    try:
        async with processes(
            db_url, clock, lambda tokens: DingTalkAdapter(settings, clock, None, tokens)
        ) as procs:
            yield fake, procs
    finally:
        await fake.close()


ROUNDS = iter(range(10**6))


async def send_from_each(procs: list[Process], platform: Platform, per_process: int = 5) -> None:
    """Every process sends at once; each message distinct (WeCom merges repeats)."""
    batch = next(ROUNDS)
    results = await asyncio.gather(
        *(
            proc.adapter.send(
                Channel(platform, "user", f"u{p}-{i}"), OutMessage.text(f"{batch}:{p}:{i}")
            )
            for p, proc in enumerate(procs)
            for i in range(per_process)
        )
    )
    assert all(r.ok for r in results), results


async def test_two_processes_starting_together_fetch_one_wecom_token(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """Each process used to fetch its own token: with two processes sending at once, one
    fetches and the other reads the row."""
    async with wecom_processes(db_url, clock, n=3) as (fake, procs):
        await send_from_each(procs, Platform.WECOM)
        assert fake.gettoken_calls == 1
        assert len(fake.delivered) == 15
        # a process started later (a restart) reads the stored token too
        async with processes(db_url, clock, wecom_maker(fake, clock), n=1) as late:
            await send_from_each(late, Platform.WECOM)
        assert fake.gettoken_calls == 1


async def test_a_revoked_wecom_token_is_refetched_once_for_all_processes(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """WeCom may revoke a token early (40014) or let it expire (42001): the first process to
    hear it drops the shared row and fetches; the other finds the new token instead of
    fetching again (its invalidation names the old token, which is no longer stored)."""
    async with wecom_processes(db_url, clock) as (fake, procs):
        await send_from_each(procs, Platform.WECOM, per_process=1)
        fake.revoke_tokens()
        await send_from_each(procs, Platform.WECOM, per_process=3)
        assert fake.gettoken_calls == 2
        assert len(fake.delivered) == 8


async def test_an_expiring_wecom_token_is_refreshed_once_and_used_meanwhile(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """Inside the last five minutes of a token's life one process refreshes; then every
    process uses the new token, and nobody fetched twice."""
    async with wecom_processes(db_url, clock) as (fake, procs):
        await send_from_each(procs, Platform.WECOM, per_process=1)
        clock.advance(dt.timedelta(seconds=fake.token_lifetime_s - 120))
        await send_from_each(procs, Platform.WECOM, per_process=3)
        assert fake.gettoken_calls == 2
        clock.advance(dt.timedelta(seconds=600))  # the old token has expired by now
        await send_from_each(procs, Platform.WECOM, per_process=2)
        assert fake.gettoken_calls == 2
        assert len(fake.delivered) == 2 + 6 + 4


async def test_a_refresher_killed_mid_fetch_holds_the_others_only_for_its_lease(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """A process took the refresh lease and died before saving: the others wait while the
    lease lasts (no stampede on the token endpoint), then one of them takes over."""
    async with wecom_processes(db_url, clock) as (fake, procs):
        dead = procs[0].shared
        key = f"wecom:{fake.corp_id}:{fake.agent_id}"
        assert await dead.claim_refresh(key, "", clock.now(), clock.now() + REFRESH_LEASE)
        waiting = asyncio.create_task(send_from_each(procs[1:], Platform.WECOM, per_process=1))
        await asyncio.sleep(0.3)
        assert not waiting.done() and fake.gettoken_calls == 0
        clock.advance(REFRESH_LEASE + dt.timedelta(seconds=1))
        await asyncio.wait_for(waiting, 5)
        assert fake.gettoken_calls == 1


async def test_a_failed_fetch_gives_the_lease_back_at_once(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """The token endpoint answers 500 to the first fetch: that send fails (retried by the
    sender), and the next caller, in either process, fetches at once instead of waiting for
    the failed fetch's lease."""
    async with wecom_processes(db_url, clock) as (fake, procs):
        fake.outage["/cgi-bin/gettoken"] = 1
        first = await procs[0].adapter.send(
            Channel(Platform.WECOM, "user", "u1"), OutMessage.text("a")
        )
        assert not first.ok
        started = time.monotonic()
        await send_from_each(procs[1:], Platform.WECOM, per_process=1)
        assert time.monotonic() - started < WAIT_S / 3
        assert fake.gettoken_calls == 2
        async with procs[0].shared.services.sessionmaker() as session:
            stored = await platform_tokens.read(session, f"wecom:{fake.corp_id}:{fake.agent_id}")
        assert stored is not None and stored.token and stored.refreshing_until is None


async def test_two_dingtalk_processes_share_one_token_and_one_refetch(
    engine: AsyncEngine, db_url: str, clock: FixedClock
) -> None:
    """DingTalk's OpenAPI token (the same row logic): one fetch for both processes, and after
    the platform rejects it (401 InvalidAuthentication) one refetch."""
    async with dingtalk_processes(db_url, clock) as (fake, procs):
        await send_from_each(procs, Platform.DINGTALK, per_process=3)
        assert fake.token_calls == 1
        fake.revoke_tokens()
        await send_from_each(procs, Platform.DINGTALK, per_process=3)
        assert fake.token_calls == 2
        assert len(fake.delivered) == 12


async def test_without_the_store_each_process_fetches_its_own(clock: FixedClock) -> None:
    """The baseline the store removes (and proof the fetch count above can fail): two
    adapters with in-process caches only fetch one token each."""
    fake = await FakeWeCom(clock=clock).start()
    make = wecom_maker(fake, clock)
    procs = [Process(make(None), None), Process(make(None), None)]
    try:
        await send_from_each(procs, Platform.WECOM)
        assert fake.gettoken_calls == 2
    finally:
        for proc in procs:
            await proc.adapter.close()
        await fake.close()
