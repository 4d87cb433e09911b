"""Issue 11, crash safety: `lianjian serve` in a subprocess on an SQLite file, signed WeCom
callbacks at a steady rate, and `kill -9` at random moments (3 in the default run, 24 with
`pytest -m slow`); the same with DingTalk HTTP callbacks (1 kill in the default run, 20 with
`-m slow`).

The test plays WeCom: every callback is encrypted and signed (tests/fakes/wecom.py); one that
got no 200 (the server was dead, or died mid-request) is sent again with the same MsgId, a new
timestamp and signature, until it is acknowledged, and now and then an acknowledged one is
sent again too, as WeCom does when it thinks an answer came late. The replies go to a fake
WeCom API in this process (with its duplicate check, as the real one).

Afterwards: every callback was stored once and handled once — each produced exactly one reply
row (officers send a unique unknown word, which the reply echoes; strangers each write from
their own account and get one audited refusal) — the audit chain verifies (what
`lianjian audit verify` runs), every reply marked sent reached WeCom once, and (full run, waiting
out the dead processes' leases) every reply was delivered, once. WeCom app messages carry
the duplicate check, so a reply sent by a process killed before it recorded the send is not
delivered twice (README, "Delivery order and duplicates").

DingTalk: the callback is JSON signed over its timestamp only (every used timestamp/sign
pair is stored, so a re-send gets a new timestamp and sign, as DingTalk's own retries of a
new delivery would); the replies go out through its OpenAPI batchSend. DingTalk has no
duplicate check: a reply sent by a process killed before it recorded the send arrives again
once the lease runs out (at least once), so that variant checks every reply row is produced
once and every one arrives, and counts the second copies instead of forbidding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from core.audit import verify_chain
from core.db import make_engine, make_sessionmaker
from core.models import AuditEvent, Department, InboxEvent, Officer, OutboxMessage, PlatformAccount
from core.schema import upgrade
from tests.fakes.dingtalk import DingTalkCallbackClient, FakeDingTalk, robot_message
from tests.fakes.wecom import FakeWeCom, WeComCallbackClient, text_xml
from tests.server_helpers import random_aes_key

CORP, TOKEN, AGENT = "wwcrashcorp", "crash-token", 1000002
LIANJIAN = str(Path(sys.executable).parent / "lianjian")
SENDER_LEASE_S = 35  # the sender starts no send its lease may not outlive by 30 s
INBOX_LEASE_S = 2
RESEND_S = 1.0  # WeCom re-sends an unanswered callback after about 5 s; sooner here


@dataclass(frozen=True)
class Run:
    kills: int
    rate: float  # new callbacks per second
    up_s: tuple[float, float]  # how long the server runs between kills (uniform)
    officers: int
    seed: int
    deliver_all: bool  # wait out the dead processes' sender leases and check every delivery
    platform: str = "wecom"  # or "dingtalk": HTTP callbacks


CI_RUN = Run(kills=3, rate=30, up_s=(0.1, 1.2), officers=12, seed=11, deliver_all=False)
FULL_RUN = Run(kills=24, rate=50, up_s=(0.1, 2.5), officers=40, seed=2026, deliver_all=True)
DINGTALK_CI_RUN = Run(
    kills=1, rate=30, up_s=(0.3, 1.2), officers=12, seed=12, deliver_all=True, platform="dingtalk"
)
DINGTALK_FULL_RUN = Run(
    kills=20,
    rate=40,
    up_s=(0.1, 2.5),
    officers=40,
    seed=2027,
    deliver_all=True,
    platform="dingtalk",
)
DT_KEY, DT_SECRET = "dingcrashkey", "crash-app-secret"


MSG_ID_BASE = 7_000_000_000_000
WORD = re.compile(r"暗号\d{5}")


def reply_key(address: str, body: str) -> str:
    """Which callback a reply answers: the officer's word it echoes, or the stranger."""
    found = WORD.search(body)
    return found.group(0) if found else address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(db: Path, officers: int, platform: str = "wecom") -> None:
    """A migrated database with one department whose officers are bound to `platform`."""
    engine = make_engine(str(db))
    await upgrade(engine)
    async with make_sessionmaker(engine)() as session:
        dept = Department(code="SJ", name="市场监管局")
        session.add(dept)
        await session.flush()
        for n in range(officers):
            session.add(
                Officer(
                    code=f"P{n:05d}",
                    name=f"人员{n}",
                    department_id=dept.id,
                    roles=["inspector"],
                    accounts=[PlatformAccount(platform=platform, account=f"officer{n}")],
                )
            )
        await session.commit()
    await engine.dispose()


def write_config(
    path: Path, db: Path | str, port: int, aes: str, api: str, platform: str = "wecom"
) -> None:
    section = (
        f"""
[wecom]
corp_id = "{CORP}"
agent_id = {AGENT}
secret = "crash-secret"
token = "{TOKEN}"
encoding_aes_key = "{aes}"
api_base = "{api}"
webhook_base = "{api}"
http_timeout_s = 3.0
"""
        if platform == "wecom"
        else f"""
[dingtalk]
app_key = "{DT_KEY}"
app_secret = "{DT_SECRET}"
robot_code = "{DT_KEY}"
api_base = "{api}"
oapi_base = "{api}"
http_timeout_s = 3.0
"""
    )
    path.write_text(
        f"""
database_url = "{db}"
host = "127.0.0.1"
port = {port}
link_secret = "{"c" * 40}"
log_level = "WARNING"
{section}
[sender]
poll_interval_s = 0.5
lease_s = {SENDER_LEASE_S}
app_user_per_minute = 1000

[inbox]
poll_interval_s = 0.3
lease_s = {INBOX_LEASE_S}
backoff_base_s = 0.5

[scheduler]
enabled = false
""",
        encoding="utf-8",
    )


class Server:
    """One `lianjian serve` at a time on the same database, port and configuration."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [LIANJIAN, "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, http: aiohttp.ClientSession, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise AssertionError("serve did not come up\n" + self.log_tail())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    async def stop(self) -> None:
        """A graceful stop (SIGTERM): sends in flight finish, the rest is handed back. Waited
        for without blocking: the fake WeCom in this loop still answers those sends."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Platform:
    """WeCom's side of the callbacks: message i comes from an officer (a unique unknown
    word) or, every fifth, from a stranger with an account of its own."""

    client: WeComCallbackClient | DingTalkCallbackClient
    officers: int
    rng: random.Random
    acked: set[int] = field(default_factory=set)
    unacked: set[int] = field(default_factory=set)
    posts: int = 0
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    @staticmethod
    def user(i: int, officers: int) -> str:
        return f"stranger{i}" if i % 5 == 4 else f"officer{i % officers}"

    @staticmethod
    def word(i: int) -> str:
        return f"暗号{i:05d}"

    @classmethod
    def reply_key(cls, i: int, officers: int) -> str:
        """reply_key of the one reply callback i must get."""
        user = cls.user(i, officers)
        return user if user.startswith("stranger") else cls.word(i)

    async def _post(self, i: int) -> int:
        """Callback i, signed now: WeCom's encrypted XML or DingTalk's JSON (a private chat
        with no session webhook: the reply goes out through the OpenAPI)."""
        user, msg_id = self.user(i, self.officers), str(MSG_ID_BASE + i)
        if isinstance(self.client, WeComCallbackClient):
            xml = text_xml(
                user, self.word(i), msg_id=msg_id, created=int(time.time()), corp_id=CORP
            )
            status, _ = await self.client.post(xml)
        else:
            body = robot_message(
                self.word(i),
                staff_id=user,
                msg_id=msg_id,
                group=False,
                created_ms=self.client.now_ms(),
                robot_code=DT_KEY,
            )
            status, _ = await self.client.post(body)
        return status

    async def post(self, i: int) -> None:
        self.posts += 1
        try:
            status = await asyncio.wait_for(self._post(i), 5)
        except (aiohttp.ClientError, OSError, TimeoutError):
            status = 0
        if status == 200:
            self.acked.add(i)
            self.unacked.discard(i)
        elif i not in self.acked:
            self.unacked.add(i)

    def send(self, i: int) -> None:
        task = asyncio.create_task(self.post(i))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def traffic(self, rate: float, stop: asyncio.Event, up: asyncio.Event) -> int:
        """New callbacks at `rate` per second while the server is up (so the total does not
        grow with its start-up time), the un-acknowledged re-sent at most every half second,
        now and then an acknowledged one again; returns how many callbacks there were."""
        n, credit, last = 0, 0.0, time.monotonic()
        tried: dict[int, float] = {}
        while not stop.is_set():
            now = time.monotonic()
            if up.is_set():
                credit += (now - last) * rate
            last = now
            while credit >= 1:
                self.send(n)
                tried[n], n, credit = now, n + 1, credit - 1
            for i in [i for i in self.unacked if now - tried[i] >= RESEND_S]:
                self.unacked.discard(i)
                tried[i] = now
                self.send(i)
            if self.acked and self.rng.random() < 0.1:
                self.send(self.rng.choice(sorted(self.acked)))
            await asyncio.sleep(0.02)
        return n

    async def settle(self, total: int, timeout_s: float = 60.0) -> None:
        """Re-send until every callback is acknowledged (the server is up for good)."""
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < total:
            assert time.monotonic() < deadline, f"{total - len(self.acked)} never acknowledged"
            await asyncio.gather(*self.in_flight)
            for i in range(total):
                if i not in self.acked:
                    self.send(i)
            await asyncio.sleep(0.1)
        await asyncio.gather(*self.in_flight)


@contextlib.asynccontextmanager
async def fake_wecom() -> AsyncIterator[FakeWeCom]:
    fake = FakeWeCom(corp_id=CORP, corp_secret="crash-secret", agent_id=AGENT)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@contextlib.asynccontextmanager
async def fake_api(platform: str) -> AsyncIterator[FakeWeCom | FakeDingTalk]:
    if platform == "wecom":
        async with fake_wecom() as wecom:
            yield wecom
        return
    fake = FakeDingTalk(app_key=DT_KEY, app_secret=DT_SECRET, robot_code=DT_KEY)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def token_fetches(api: FakeWeCom | FakeDingTalk) -> int:
    return api.gettoken_calls if isinstance(api, FakeWeCom) else api.token_calls


def arrivals(api: FakeWeCom | FakeDingTalk) -> Counter[str]:
    """How often each reply reached the platform, by reply_key."""
    if isinstance(api, FakeWeCom):
        return Counter(reply_key(b["touser"], b["text"]["content"]) for b in api.delivered)
    found: Counter[str] = Counter()
    for body in api.delivered:
        param = body.get("msgParam") or {}
        text = str(param.get("content") or param.get("text") or "")
        found[reply_key((body.get("userIds") or [""])[0], text)] += 1
    return found


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    "run",
    [
        CI_RUN,
        pytest.param(FULL_RUN, marks=pytest.mark.slow),
        DINGTALK_CI_RUN,
        pytest.param(DINGTALK_FULL_RUN, marks=pytest.mark.slow),
    ],
    ids=["ci", "full", "dingtalk-ci", "dingtalk-full"],
)
async def test_kill_9_at_random_moments_loses_and_repeats_nothing(tmp_path: Path, run: Run) -> None:
    rng = random.Random(run.seed)
    db, config, port, aes = (
        tmp_path / "crash.sqlite3",
        tmp_path / "config.toml",
        free_port(),
        random_aes_key(),
    )
    await prepare(db, run.officers, run.platform)
    async with fake_api(run.platform) as api, aiohttp.ClientSession() as http:
        base = api.base if isinstance(api, FakeWeCom) else api.url()
        write_config(config, db, port, aes, base, run.platform)
        server = Server(config, port, tmp_path / "serve.log")
        client: WeComCallbackClient | DingTalkCallbackClient = (
            WeComCallbackClient(TOKEN, aes, CORP, f"http://127.0.0.1:{port}/wecom/callback")
            if run.platform == "wecom"
            else DingTalkCallbackClient(DT_SECRET, f"http://127.0.0.1:{port}/dingtalk/callback")
        )
        platform = Platform(client, run.officers, rng)
        engine = make_engine(str(db))
        sessions = make_sessionmaker(engine)
        try:
            server.start()
            await server.ready(http)
            stop, up = asyncio.Event(), asyncio.Event()
            up.set()
            traffic = asyncio.create_task(platform.traffic(run.rate, stop, up))
            for _ in range(run.kills):
                await asyncio.sleep(rng.uniform(*run.up_s))
                server.kill()
                up.clear()
                await asyncio.sleep(rng.uniform(0.0, 0.3))  # callbacks fail while it is down
                # an acknowledgement promises the callback is stored: the dead process's
                # database holds every one acknowledged before it died
                async with sessions() as session:
                    stored = set((await session.scalars(select(InboxEvent.event_id))).all())
                lost = {i for i in platform.acked if str(MSG_ID_BASE + i) not in stored}
                assert not lost, f"acknowledged but not stored: {sorted(lost)}"
                server.start()
                await server.ready(http)
                up.set()
            await asyncio.sleep(rng.uniform(*run.up_s))
            stop.set()
            total = await traffic
            await platform.settle(total)

            async def handled() -> bool:
                async with sessions() as session:
                    states = Counter((await session.scalars(select(InboxEvent.state))).all())
                return states == {"done": total}

            await wait_for(handled, "the inbox was not handled", 60)
            if run.deliver_all:  # the dead processes' claims come back after their leases

                async def delivered() -> bool:
                    async with sessions() as session:
                        states = Counter((await session.scalars(select(OutboxMessage.state))).all())
                    return states == {"sent": total}

                await wait_for(delivered, "replies were not all sent", SENDER_LEASE_S + 30)
        finally:
            await server.stop()
            await client.close()

        async with sessions() as session:
            inbox = (await session.execute(select(InboxEvent.event_id, InboxEvent.state))).all()
            outbox = (await session.scalars(select(OutboxMessage))).all()
            refusals = Counter(
                (
                    await session.scalars(
                        select(AuditEvent.subject).where(AuditEvent.action == "auth.unknown_user")
                    )
                ).all()
            )
            problems = await verify_chain(session)
        await engine.dispose()

    arrived = arrivals(api)
    wecom = isinstance(api, FakeWeCom)
    dropped = (
        f"{api.duplicates_dropped} re-sends dropped by WeCom's duplicate check"
        if isinstance(api, FakeWeCom)
        else f"{sum(n - 1 for n in arrived.values())} second copies (at least once)"
    )
    print(
        f"{run.platform}: {server.kills} kills, {total} callbacks, {platform.posts} posts; "
        f"{sum(r.state == 'sent' for r in outbox)} replies sent, {dropped}, "
        f"{token_fetches(api)} access token fetches"
    )
    assert server.kills == run.kills
    # every callback stored once and handled
    assert sorted(int(e) - MSG_ID_BASE for e, _ in inbox) == list(range(total))
    assert {state for _, state in inbox} == {"done"}
    # handled once: exactly one reply row per callback, and one audited refusal per stranger
    expected = sorted(Platform.reply_key(i, run.officers) for i in range(total))
    produced = sorted(
        reply_key(row.destination.get("address") or "", row.message["body"]) for row in outbox
    )
    assert produced == expected
    assert all(n == 1 for n in refusals.values())
    assert sorted(refusals) == sorted(
        f"user:{run.platform}:{k}" for k in expected if k.startswith("stranger")
    )
    # the audit chain is intact
    assert problems == []
    # what reached the platform: every reply marked sent; on WeCom never a reply twice
    if wecom:
        assert max(arrived.values(), default=0) == 1
    sent = {
        reply_key(row.destination.get("address") or "", row.message["body"])
        for row in outbox
        if row.state == "sent"
    }
    assert sent <= set(arrived)
    assert not any(row.state == "dead" for row in outbox)
    # the access token outlives the processes (platform_token): one fetch, or two if a kill
    # hit the moment between fetching and storing it (each process used to fetch its own)
    assert token_fetches(api) <= 2
    if run.deliver_all:
        assert sorted(arrived) == expected
